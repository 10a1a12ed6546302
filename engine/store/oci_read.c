/* oci_read.c - reading an OCI image layout (see oci_read.h). */
#include "engine/store/oci_read.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "io/atomicfile.h"
#include "io/digest.h"

#define INDEX_MAX (64u * 1024 * 1024)

static void entry_free(oc_oci_entry *e)
{
    free(e->ref_name);
    free(e->name);
    free(e->tag);
    free(e->media_type);
    free(e->digest);
    free(e->source);
    free(e->referrer_of);
    free(e->subject);
    free(e->artifact_type);
}

void oc_oci_layout_free(oc_oci_layout *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_entries; i++)
        entry_free(&l->entries[i]);
    free(l->entries);
    free(l->dir);
    memset(l, 0, sizeof *l);
}

int oc_oci_split_ref_name(const char *text, char **name, char **tag)
{
    *name = *tag = NULL;
    size_t n = strlen(text);
    const char *cut = NULL;
    /* a digest as the tag: "NAME:sha256:<hex>" or "NAME@sha256:<hex>" */
    if (n > 8 + OC_SHA256_HEX_LEN && strncmp(text + n - OC_SHA256_HEX_LEN - 7, "sha256:", 7) == 0 &&
        (text[n - OC_SHA256_HEX_LEN - 8] == ':' || text[n - OC_SHA256_HEX_LEN - 8] == '@')) {
        cut = text + n - OC_SHA256_HEX_LEN - 8;
    } else {
        const char *slash = strrchr(text, '/');
        const char *colon = strrchr(text, ':');
        if (colon && (!slash || colon > slash))
            cut = colon;
    }
    if (!cut || cut == text || !cut[1])
        return -1;
    *name = strndup(text, (size_t)(cut - text));
    *tag = strdup(cut + 1);
    if (!*name || !*tag) {
        free(*name);
        free(*tag);
        *name = *tag = NULL;
        return -1;
    }
    return 0;
}

static char *dup_field(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? strdup(v) : NULL;
}

static int check_layout_file(const char *dir, oc_error *err)
{
    char *path = NULL;
    if (asprintf(&path, "%s/oci-layout", dir) < 0) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    size_t len = 0;
    char *text = oc_read_file(path, 65536, &len, err);
    if (!text) {
        free(path);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    free(text);
    const char *v = root ? json_string_value(json_object_get(root, "imageLayoutVersion")) : NULL;
    int rc = 0;
    if (!v || strncmp(v, "1.", 2) != 0) {
        oc_error_set(err, OC_E_FORMAT, "%s: %s", path,
                     !root ? jerr.text
                     : v   ? "imageLayoutVersion is not 1.x"
                           : "no imageLayoutVersion");
        rc = -1;
    }
    json_decref(root);
    free(path);
    return rc;
}

int oc_oci_layout_read(oc_oci_layout *l, const char *dir, oc_error *err)
{
    memset(l, 0, sizeof *l);
    char *path = NULL;
    if (!(l->dir = strdup(dir)) || asprintf(&path, "%s/index.json", dir) < 0) {
        free(l->dir);
        l->dir = NULL;
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        oc_error_set(err, OC_E_NOTFOUND, "%s: no such file (no OCI layout)", path);
        free(path);
        oc_oci_layout_free(l);
        return -1;
    }
    size_t len = 0;
    char *text = oc_read_file(path, INDEX_MAX, &len, err);
    int was_read = text != NULL;
    json_error_t jerr;
    json_t *root = text ? json_loadb(text, len, 0, &jerr) : NULL;
    free(text);
    json_t *mans = root ? json_object_get(root, "manifests") : NULL;
    if (!was_read) {
        free(path);
        oc_oci_layout_free(l);
        return -1;
    }
    if (!root || !json_is_array(mans)) {
        oc_error_set(err, OC_E_FORMAT, "%s: %s", path, root ? "no \"manifests\" array" : jerr.text);
        json_decref(root);
        free(path);
        oc_oci_layout_free(l);
        return -1;
    }
    if (check_layout_file(dir, err) != 0) {
        json_decref(root);
        free(path);
        oc_oci_layout_free(l);
        return -1;
    }
    size_t n = json_array_size(mans);
    l->entries = calloc(n ? n : 1, sizeof *l->entries);
    if (!l->entries) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        json_decref(root);
        free(path);
        oc_oci_layout_free(l);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *d = json_array_get(mans, i);
        oc_oci_entry *e = &l->entries[l->n_entries++];
        json_t *ann = json_object_get(d, "annotations");
        json_t *size = json_object_get(d, "size");
        e->digest = dup_field(d, "digest");
        e->media_type = dup_field(d, "mediaType");
        e->ref_name = ann ? dup_field(ann, OC_ANNOTATION_REF_NAME) : NULL;
        e->source = ann ? dup_field(ann, OC_ANNOTATION_SOURCE) : NULL;
        e->referrer_of = ann ? dup_field(ann, OC_ANNOTATION_REFERRER_IMAGE) : NULL;
        e->subject = ann ? dup_field(ann, OC_ANNOTATION_REFERRER_SUBJECT) : NULL;
        e->artifact_type = dup_field(d, "artifactType");
        e->size = json_is_integer(size) ? (int64_t)json_integer_value(size) : -1;
        e->has_platform = json_object_get(d, "platform") != NULL;
        char hex[OC_SHA256_HEX_LEN + 1];
        if (!e->digest || !e->media_type || e->size < 0) {
            oc_error_set(err, OC_E_FORMAT, "%s: manifests[%zu] lacks a digest, mediaType or size",
                         path, i);
            rc = -1;
        } else if (oc_digest_parse(e->digest, hex, err) != 0) {
            oc_error_prefix(err, "%s: manifests[%zu]", path, i);
            rc = -1;
        } else if (e->ref_name) {
            oc_oci_split_ref_name(e->ref_name, &e->name, &e->tag);
        }
        if (rc == 0 && (!e->referrer_of != !e->subject ||
                        (e->subject && oc_digest_parse(e->subject, hex, NULL) != 0))) {
            oc_error_set(err, OC_E_FORMAT,
                         "%s: manifests[%zu] names a referrer without its image or a valid subject",
                         path, i);
            rc = -1;
        }
    }
    json_decref(root);
    free(path);
    if (rc != 0)
        oc_oci_layout_free(l);
    return rc;
}

char *oc_oci_blob_path(const oc_oci_layout *l, const char *digest)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_error err;
    char *path = NULL;
    if (oc_digest_parse(digest, hex, &err) != 0 ||
        asprintf(&path, "%s/blobs/sha256/%s", l->dir, hex) < 0)
        return NULL;
    return path;
}

/* The blob's path after a stat: a regular file of size bytes (when size
 * >= 0). */
static char *blob_checked(const oc_oci_layout *l, const char *digest, int64_t size, oc_error *err)
{
    char *path = oc_oci_blob_path(l, digest);
    if (!path) {
        oc_error_set(err, OC_E_FORMAT, "malformed digest '%s'", digest);
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            oc_error_set(err, OC_E_NOTFOUND, "%s is not in %s (no such file %s)", digest, l->dir,
                         path);
        else
            oc_error_errno(err, errno, "stat %s", path);
        free(path);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (size >= 0 && st.st_size != size)) {
        oc_error_set(err, OC_E_DIGEST,
                     "%s: %s of %" PRId64 " bytes, not the %" PRId64 " its "
                     "descriptor says (damaged: run occystrap verify)",
                     path, S_ISREG(st.st_mode) ? "a file" : "not a regular file",
                     (int64_t)st.st_size, size);
        free(path);
        return NULL;
    }
    return path;
}

int oc_oci_read_small(const oc_oci_layout *l, const char *digest, int64_t size, size_t max,
                      char **body, size_t *len, oc_error *err)
{
    *body = NULL;
    *len = 0;
    char *path = blob_checked(l, digest, size, err);
    if (!path)
        return -1;
    char *text = oc_read_file(path, max, len, err);
    if (!text) {
        free(path);
        return -1;
    }
    char got[OC_SHA256_HEX_LEN + 1], want[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(text, *len, got);
    if (oc_digest_parse(digest, want, err) != 0 || strcmp(got, want) != 0) {
        oc_error_set(err, OC_E_DIGEST,
                     "%s: hashes to sha256:%s, not its name (damaged: run occystrap verify)", path,
                     got);
        free(text);
        free(path);
        return -1;
    }
    free(path);
    *body = text;
    return 0;
}

int oc_oci_open_blob(const oc_oci_layout *l, const char *digest, uint64_t size, oc_error *err)
{
    char *path = blob_checked(l, digest, (int64_t)size, err);
    if (!path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        oc_error_errno(err, errno, "open %s", path);
    else
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    free(path);
    return fd;
}
