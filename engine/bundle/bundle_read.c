/* bundle_read.c - one part of a bundle, read strictly (see bundle_read.h). */
#include "engine/bundle/bundle_read.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "engine/image/limits.h"
#include "engine/store/oci_layout.h"

#define READ_BLOCK ((size_t)1 << 20)

struct oc_bundle_reader {
    char *path;
    struct archive *a;
    oc_bundle_doc *doc;
    oc_inventory *inventory;
    char inventory_digest[OC_BUNDLE_DIGEST_LEN];
    size_t next;               /* index into doc->files to look at next */
    const oc_bundle_file *cur; /* being read */
    uint64_t cur_done;
    int ended;
};

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

const char *oc_bundle_reader_path(const oc_bundle_reader *r)
{
    return r->path;
}

const oc_bundle_doc *oc_bundle_reader_doc(const oc_bundle_reader *r)
{
    return r->doc;
}

oc_inventory *oc_bundle_reader_inventory(oc_bundle_reader *r)
{
    return r->inventory;
}

oc_inventory *oc_bundle_reader_take_inventory(oc_bundle_reader *r)
{
    oc_inventory *inv = r->inventory;
    r->inventory = NULL;
    return inv;
}

const char *oc_bundle_reader_inventory_digest(const oc_bundle_reader *r)
{
    return r->inventory_digest;
}

void oc_bundle_reader_close(oc_bundle_reader *r)
{
    if (!r)
        return;
    if (r->a)
        archive_read_free(r->a);
    oc_bundle_doc_free(r->doc);
    oc_inventory_free(r->inventory);
    free(r->path);
    free(r);
}

/* libarchive's word for what went wrong: a cut stream is "truncated". */
static void archive_failed(oc_bundle_reader *r, const char *during, oc_error *err)
{
    const char *why = archive_error_string(r->a);
    int cut = why && (strstr(why, "runcated") || strstr(why, "Premature end") ||
                      strstr(why, "unexpected end"));
    oc_error_set(err, OC_E_FORMAT, "bundle part %s: %s%s: %s", r->path,
                 cut ? "truncated " : "damaged tar ", during, why ? why : "unreadable");
}

/* Why the member e is not acceptable as want (NULL: anything listed), or
 * NULL when it is. */
static const char *refuse_why(struct archive_entry *e, char *buf, size_t cap)
{
    const char *name = archive_entry_pathname(e);
    char shown[300];
    oc_excerpt(name ? name : "", name ? strlen(name) : 0, 200, shown, sizeof shown);
    if (!name || !*name) {
        snprintf(buf, cap, "a member without a name");
        return buf;
    }
    if (name[0] == '/') {
        snprintf(buf, cap, "an absolute path '%s'", shown);
        return buf;
    }
    for (const char *p = name; *p;) {
        size_t k = strcspn(p, "/");
        if (k == 2 && p[0] == '.' && p[1] == '.') {
            snprintf(buf, cap, "a path with '..': '%s'", shown);
            return buf;
        }
        p += k;
        if (*p)
            p++;
    }
    const char *hl = archive_entry_hardlink(e);
    if (hl) {
        char t[300];
        oc_excerpt(hl, strlen(hl), 200, t, sizeof t);
        snprintf(buf, cap, "a hard link '%s' -> '%s'", shown, t);
        return buf;
    }
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(e);
        char t[300];
        oc_excerpt(target ? target : "", target ? strlen(target) : 0, 200, t, sizeof t);
        snprintf(buf, cap, "a symlink '%s' -> '%s'", shown, t);
        return buf;
    }
    if (type != AE_IFREG) {
        snprintf(buf, cap, "'%s', which is not a regular file (type %o)", shown,
                 (unsigned)type >> 12);
        return buf;
    }
    if (archive_entry_size_is_set(e) == 0 || archive_entry_size(e) < 0) {
        snprintf(buf, cap, "'%s' without a size", shown);
        return buf;
    }
    return NULL;
}

/* The next member, which must be a regular file named want of size bytes
 * (size UINT64_MAX: at most max bytes, any size under). 1 read, 0 the
 * archive ended, -1 error. */
static int next_member(oc_bundle_reader *r, const char *want, uint64_t size, uint64_t max,
                       struct archive_entry **out, oc_error *err)
{
    struct archive_entry *e = NULL;
    int rc = archive_read_next_header(r->a, &e);
    if (rc == ARCHIVE_EOF)
        return 0;
    char during[200];
    snprintf(during, sizeof during, "where %s should begin", want);
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        archive_failed(r, during, err);
        return -1;
    }
    char why[800];
    if (refuse_why(e, why, sizeof why)) {
        oc_error_set(err, OC_E_FORMAT, "bundle part %s: refused: %s", r->path, why);
        return -1;
    }
    const char *name = archive_entry_pathname(e);
    if (strcmp(name, want) != 0) {
        char shown[300];
        oc_excerpt(name, strlen(name), 200, shown, sizeof shown);
        oc_error_set(err, OC_E_FORMAT,
                     "bundle part %s: member '%s' is not what its manifest lists next (%s)",
                     r->path, shown, want);
        return -1;
    }
    uint64_t got = (uint64_t)archive_entry_size(e);
    if (size != UINT64_MAX && got != size) {
        oc_error_set(err, OC_E_FORMAT,
                     "bundle part %s: %s holds %" PRIu64 " bytes, its manifest says %" PRIu64,
                     r->path, want, got, size);
        return -1;
    }
    if (size == UINT64_MAX && got > max) {
        oc_error_set(err, OC_E_LIMIT,
                     "bundle part %s: %s is %" PRIu64 " bytes, more than the %" PRIu64
                     " bytes it may have (oversize)",
                     r->path, want, got, max);
        return -1;
    }
    *out = e;
    return 1;
}

/* A whole small member into memory. */
static char *read_whole(oc_bundle_reader *r, const char *name, uint64_t size, oc_error *err)
{
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
        oom(err);
        return NULL;
    }
    size_t have = 0;
    while (have < size) {
        la_ssize_t n = archive_read_data(r->a, buf + have, (size_t)size - have);
        if (n <= 0) {
            char during[200];
            snprintf(during, sizeof during, "inside %s after %zu of %" PRIu64 " bytes", name, have,
                     size);
            if (n == 0)
                oc_error_set(err, OC_E_FORMAT, "bundle part %s: truncated %s", r->path, during);
            else
                archive_failed(r, during, err);
            free(buf);
            return NULL;
        }
        have += (size_t)n;
    }
    buf[size] = '\0';
    return buf;
}

/* A meta member: present, of the manifest's size and digest. */
static char *read_meta(oc_bundle_reader *r, int which, size_t *len, oc_error *err)
{
    const char *name = oc_bundle_meta_names[which];
    const oc_bundle_blob_ref *m = &r->doc->meta[which];
    struct archive_entry *e = NULL;
    if (m->size > OC_BUNDLE_DOC_MAX) {
        oc_error_set(err, OC_E_LIMIT,
                     "bundle part %s: %s is %" PRIu64 " bytes, more than the %u bytes it may "
                     "have (oversize)",
                     r->path, name, m->size, OC_BUNDLE_DOC_MAX);
        return NULL;
    }
    int rc = next_member(r, name, m->size, 0, &e, err);
    if (rc == 0)
        oc_error_set(err, OC_E_FORMAT, "bundle part %s: truncated: it ends before %s", r->path,
                     name);
    if (rc != 1)
        return NULL;
    char *text = read_whole(r, name, m->size, err);
    if (!text)
        return NULL;
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(text, (size_t)m->size, hex);
    if (strcmp(hex, m->digest + 7) != 0) {
        oc_error_set(err, OC_E_DIGEST,
                     "bundle part %s: %s hashes to sha256:%s, its manifest says %s (damaged)",
                     r->path, name, hex, m->digest);
        free(text);
        return NULL;
    }
    *len = (size_t)m->size;
    return text;
}

oc_bundle_reader *oc_bundle_reader_open(const char *path, oc_error *err)
{
    oc_bundle_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(strcmp(path, "-") == 0 ? "standard input" : path)) ||
        !(r->a = archive_read_new())) {
        oc_bundle_reader_close(r);
        oom(err);
        return NULL;
    }
    archive_read_support_format_tar(r->a);
    archive_read_support_filter_zstd(r->a);
    int orc = strcmp(path, "-") == 0 ? archive_read_open_fd(r->a, STDIN_FILENO, READ_BLOCK)
                                     : archive_read_open_filename(r->a, path, READ_BLOCK);
    if (orc != ARCHIVE_OK) {
        const char *why = archive_error_string(r->a);
        oc_error_set(err, errno == ENOENT ? OC_E_NOTFOUND : OC_E_FORMAT, "bundle part %s: %s",
                     r->path, why ? why : "cannot be read");
        oc_bundle_reader_close(r);
        return NULL;
    }
    struct archive_entry *e = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = next_member(r, OC_BUNDLE_MANIFEST_NAME, UINT64_MAX, OC_BUNDLE_DOC_MAX, &e, err);
    if (rc == 0)
        oc_error_set(err, OC_E_FORMAT, "bundle part %s: empty: no %s", r->path,
                     OC_BUNDLE_MANIFEST_NAME);
    if (rc == 1) {
        uint64_t size = (uint64_t)archive_entry_size(e);
        text = read_whole(r, OC_BUNDLE_MANIFEST_NAME, size, err);
        len = (size_t)size;
    }
    char what[600];
    snprintf(what, sizeof what, "bundle part %s: %s", r->path, OC_BUNDLE_MANIFEST_NAME);
    if (!text || !(r->doc = oc_bundle_doc_parse(text, len, what, err))) {
        free(text);
        oc_bundle_reader_close(r);
        return NULL;
    }
    free(text);
    snprintf(what, sizeof what, "bundle part %s: %s", r->path, OC_BUNDLE_INVENTORY_NAME);
    text = read_meta(r, OC_BUNDLE_META_INVENTORY, &len, err);
    if (!text || !(r->inventory = oc_inventory_parse(text, len, what, err))) {
        free(text);
        oc_bundle_reader_close(r);
        return NULL;
    }
    snprintf(r->inventory_digest, sizeof r->inventory_digest, "%s",
             r->doc->meta[OC_BUNDLE_META_INVENTORY].digest);
    free(text);
    for (int i = OC_BUNDLE_META_LAYOUT; i < OC_BUNDLE_META_N; i++) {
        text = read_meta(r, i, &len, err);
        if (!text) {
            oc_bundle_reader_close(r);
            return NULL;
        }
        free(text);
    }
    return r;
}

int oc_bundle_reader_next(oc_bundle_reader *r, const oc_bundle_file **f, oc_error *err)
{
    const oc_bundle_doc *d = r->doc;
    if (r->cur && r->cur_done < r->cur->size) {
        /* the caller did not want the rest of it */
        if (archive_read_data_skip(r->a) != ARCHIVE_OK) {
            char during[400];
            snprintf(during, sizeof during, "inside %s", r->cur->path);
            archive_failed(r, during, err);
            return -1;
        }
    }
    r->cur = NULL;
    while (r->next < d->n_files && d->files[r->next].part != d->part)
        r->next++;
    if (r->next == d->n_files) {
        struct archive_entry *e = NULL;
        int rc = archive_read_next_header(r->a, &e);
        if (rc == ARCHIVE_EOF) {
            r->ended = 1;
            return 0;
        }
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            archive_failed(r, "after its last file", err);
            return -1;
        }
        const char *name = archive_entry_pathname(e);
        char shown[300];
        oc_excerpt(name ? name : "", name ? strlen(name) : 0, 200, shown, sizeof shown);
        oc_error_set(err, OC_E_FORMAT,
                     "bundle part %s: member '%s' after the last file its manifest lists", r->path,
                     shown);
        return -1;
    }
    const oc_bundle_file *want = &d->files[r->next];
    struct archive_entry *e = NULL;
    int rc = next_member(r, want->path, want->size, 0, &e, err);
    if (rc == 0) {
        oc_error_set(err, OC_E_FORMAT, "bundle part %s: truncated: it ends before %s", r->path,
                     want->path);
        return -1;
    }
    if (rc < 0)
        return -1;
    r->next++;
    r->cur = want;
    r->cur_done = 0;
    *f = want;
    return 1;
}

int oc_bundle_reader_data(oc_bundle_reader *r, const void **buf, size_t *len, oc_error *err)
{
    if (!r->cur || r->cur_done == r->cur->size)
        return 0;
    la_int64_t offset = 0;
    size_t n = 0;
    int rc = archive_read_data_block(r->a, buf, &n, &offset);
    if (rc == ARCHIVE_EOF || (rc == ARCHIVE_OK && n == 0)) {
        oc_error_set(err, OC_E_FORMAT,
                     "bundle part %s: truncated inside %s after %" PRIu64 " of %" PRIu64 " bytes",
                     r->path, r->cur->path, r->cur_done, r->cur->size);
        return -1;
    }
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        char during[400];
        snprintf(during, sizeof during, "inside %s after %" PRIu64 " of %" PRIu64 " bytes",
                 r->cur->path, r->cur_done, r->cur->size);
        archive_failed(r, during, err);
        return -1;
    }
    if ((uint64_t)offset != r->cur_done || n > r->cur->size - r->cur_done) {
        oc_error_set(err, OC_E_FORMAT, "bundle part %s: %s is not one run of bytes (sparse?)",
                     r->path, r->cur->path);
        return -1;
    }
    r->cur_done += n;
    *len = n;
    return 1;
}
