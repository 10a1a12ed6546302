/* emit_dir.c - write a pulled image into a store directory (see
 * emit_dir.h). */
#include "engine/emit_dir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "engine/store/catalog.h"
#include "engine/store/oci_index.h"
#include "engine/store/store_image.h"
#include "engine/store/oci_layout.h"
#include "engine/store/store_dirsync.h"
#include "engine/emit_tar.h"
#include "engine/store_put.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "engine/image/limits.h"

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

/* Is path already a file with exactly these bytes? */
static int same_content(const char *path, const char *data, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != len)
        return 0;
    oc_error ignored;
    size_t got = 0;
    char *text = oc_read_file(path, OC_IMAGE_CONFIG_MAX, &got, &ignored);
    int same = text && got == len && memcmp(text, data, len) == 0;
    free(text);
    return same;
}

static int write_config(oc_store *s, const oc_pulled_image *img, int exact, oc_error *err)
{
    char name[OC_SHA256_HEX_LEN + 8];
    snprintf(name, sizeof name, "%s.json", img->config_hex);
    char *path = oc_store_path(s, name);
    if (!path)
        return oom(err);
    int rc = 0;
    /* A 0.2.0 store holds a re-serialised config: replace it by the
     * registry's bytes. */
    if (!same_content(path, img->config_body, img->config_len))
        rc = oc_store_put_small(s, path, img->config_body, img->config_len, err);
    /* the exact bytes: the same inode as its blob */
    if (rc == 0 && exact)
        rc = oc_store_oci_link(s, img->config_hex, path, img->config_len, err);
    free(path);
    if (rc != 0)
        return -1;
    oc_blob_mark m;
    oc_error ignored;
    if (oc_store_mark_read(s, img->config_hex, &m, &ignored) == 1 && !m.is_layer)
        return 0;
    memset(&m, 0, sizeof m);
    snprintf(m.digest, sizeof m.digest, "sha256:%s", img->config_hex);
    m.size = img->config_len;
    return oc_store_mark_write(s, img->config_hex, &m, err);
}

/* The manifest, and the index the tag named, as blobs. */
static int write_documents(oc_store *s, const oc_pulled_image *img, oc_error *err)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(img->manifest_digest, hex, err) != 0 ||
        oc_store_oci_put_bytes(s, hex, img->manifest_body, img->manifest_len, err) != 0)
        return -1;
    if (!img->index_digest || !img->index_body)
        return 0;
    if (oc_digest_parse(img->index_digest, hex, err) != 0)
        return -1;
    return oc_store_oci_put_bytes(s, hex, img->index_body, img->index_len, err);
}

/* A fetched layer into <hex>/layer.tar with its marker (store_put.c);
 * every occurrence of the moved file then forgets its path. */
static int place_layer(oc_store *s, oc_pulled_image *img, size_t i, oc_error *err)
{
    oc_pulled_layer *l = &img->layers[i];
    /* moved by an earlier occurrence, or already in the store (with, when
     * its blob was fetched alone, its exact bytes to place) */
    if (!l->path || (l->reused && !l->blob_path))
        return 0;
    char *final = NULL;
    if (oc_store_put_layer(s, l, l->reused ? NULL : l->path, &final, err) != 0)
        return -1;
    free(final);
    const char *moved = l->reused ? NULL : l->path, *blob = l->blob_path;
    for (size_t k = 0; k < img->n_layers; k++) {
        if (moved && img->layers[k].path == moved && k != i)
            img->layers[k].path = NULL;
        if (blob && img->layers[k].blob_path == blob && k != i)
            img->layers[k].blob_path = NULL;
    }
    if (moved)
        l->path = NULL;
    l->blob_path = NULL;
    return 0;
}

static json_t *manifest_doc(const oc_pulled_image *img, const oc_emit_dir_opts *o)
{
    json_t *entry = oc_emit_manifest_entry(img, o->repo_tag);
    json_t *doc = json_array();
    if (!entry || !doc) {
        json_decref(entry);
        json_decref(doc);
        return NULL;
    }
    if (o->unique_names) {
        char now[32];
        oc_store_now(now);
        oc_store_origin origin = {o->registry,
                                  o->repository,
                                  o->tag,
                                  img->manifest_digest,
                                  img->index_digest,
                                  img->platform,
                                  img->manifest_media_type,
                                  now};
        json_t *ours = oc_store_origin_json(&origin);
        json_object_set_new(entry, "ImageName", json_string(o->image));
        json_object_set_new(entry, "Occystrap", ours);
    }
    json_array_append_new(doc, entry);
    return doc;
}

static int write_manifest_file(oc_store *s, const oc_pulled_image *img, const oc_emit_dir_opts *o,
                               const char *name, oc_error *err)
{
    json_t *doc = manifest_doc(img, o);
    char *text = doc ? json_dumps(doc, JSON_INDENT(4) | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
    json_decref(doc);
    char *path = oc_store_path(s, name);
    int rc = -1;
    if (!text || !path) {
        oom(err);
    } else {
        size_t len = strlen(text);
        char *nl = realloc(text, len + 2);
        if (!nl) {
            oom(err);
        } else {
            text = nl;
            text[len] = '\n';
            text[len + 1] = '\0';
            rc = oc_store_put_small(s, path, text, len + 1, err);
        }
    }
    free(text);
    free(path);
    return rc;
}

char *oc_emit_dir_descriptor(const oc_pulled_image *img, const oc_emit_dir_opts *o, oc_error *err)
{
    int index = img->index_digest && img->index_body;
    oc_oci_desc d = {
        .media_type = index ? img->index_media_type : img->manifest_media_type,
        .digest = index ? img->index_digest : img->manifest_digest,
        .size = index ? img->index_len : img->manifest_len,
        .image = o->image,
        .tag = o->tag,
        .registry = o->registry,
        .repository = o->repository,
        .source_tag = strncmp(o->tag, "sha256:", 7) == 0 ? NULL : o->tag,
    };
    return oc_oci_descriptor_text(&d, err);
}

/* index.json after the catalog: the tag's descriptor (exact), or none. */
static int list_exact(oc_store *s, const oc_pulled_image *img, const oc_emit_dir_opts *o,
                      oc_error *err)
{
    char *ref = oc_oci_ref_name(o->image, o->tag);
    char *text = ref && o->exact ? oc_emit_dir_descriptor(img, o, err) : NULL;
    int rc = -1;
    if (!ref)
        oom(err);
    else if (!o->exact || text)
        rc = oc_store_oci_index_update(s, ref, text, err);
    free(ref);
    free(text);
    return rc;
}

int oc_emit_dir(oc_store *s, oc_pulled_image *img, const oc_emit_dir_opts *o, oc_error *err)
{
    char *name =
        o->unique_names ? oc_catalog_manifest_name(o->image, o->tag) : strdup("manifest.json");
    int rc = -1;
    if (!name) {
        oom(err);
        goto out;
    }
    if (!oc_catalog_file_name_ok(name)) {
        oc_error_set(err, OC_E_USAGE, "\"%s\" cannot be a file name", name);
        goto out;
    }
    if (write_config(s, img, o->exact, err) != 0)
        goto out;
    for (size_t i = 0; i < img->n_layers; i++)
        if (place_layer(s, img, i, err) != 0)
            goto out;
    if (o->exact && write_documents(s, img, err) != 0)
        goto out;
    if (write_manifest_file(s, img, o, name, err) != 0)
        goto out;
    oc_store_crash_point("manifest-written");
    if (!o->no_catalog && oc_store_catalog_add(s, o->image, o->tag, name, err) != 0)
        goto out;
    if (!o->no_catalog && o->unique_names && list_exact(s, img, o, err) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        oc_error_prefix(err, "writing %s:%s into %s", o->image, o->tag, oc_store_dir(s));
    free(name);
    return rc;
}
