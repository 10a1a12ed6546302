/* store_list.c - a store's contents as JSON (see store_list.h). */
#include "engine/store/store_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/store/oci_index.h"
#include "engine/store/oci_referrers.h"

typedef struct lctx {
    const oc_store *s;
    oc_store_entries e;
    json_t *images;
    json_t *problems;
    int *listed;          /* parallel to e.manifests: named by the catalog */
    uint64_t *layer_size; /* parallel to e.layers: layer.tar size, or 0 */
    int *layer_used;      /* parallel to e.layers */
    uint64_t unshared;
    oc_oci_index *oci;      /* STORE/oci/index.json (empty when none or unreadable) */
    size_t exact;           /* images whose exact bytes are in the store */
    oc_oci_referrers *refs; /* their signatures, SBOMs, attestations */
} lctx;

/* Does index.json name image:tag at the digest the image was stored at? */
static int has_exact(lctx *c, const char *image, const char *tag, const oc_store_image *si)
{
    char *ref = image && tag ? oc_oci_ref_name(image, tag) : NULL;
    const char *d = ref ? oc_oci_index_digest(c->oci, ref) : NULL;
    free(ref);
    return d && ((si->index_digest && strcmp(d, si->index_digest) == 0) ||
                 (si->manifest_digest && strcmp(d, si->manifest_digest) == 0));
}

static void problem(lctx *c, const char *file, const char *why)
{
    char line[1300];
    snprintf(line, sizeof line, "%s: %s", file, why);
    json_array_append_new(c->problems, json_string(line));
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static int add_referrer(void *opaque, const oc_oci_referrer *r, int depth)
{
    json_t *list = opaque;
    json_t *o = json_object();
    json_object_set_new(o, "digest", json_string(r->digest));
    json_object_set_new(o, "media_type", json_string(r->media_type));
    json_object_set_new(o, "artifact_type", str_or_null(r->artifact_type));
    json_object_set_new(o, "size", json_integer((json_int_t)r->size));
    json_object_set_new(o, "subject", json_string(r->subject));
    json_object_set_new(o, "tag", str_or_null(r->tag));
    json_object_set_new(o, "depth", json_integer(depth));
    json_array_append_new(list, o);
    return 0;
}

/* The referrers the image's manifests reach (its tag's and its index's). */
static json_t *referrers_of(lctx *c, const char *image, const oc_store_image *si)
{
    json_t *list = json_array();
    const char *digests[2];
    size_t n = 0;
    if (si->index_digest)
        digests[n++] = si->index_digest;
    if (si->manifest_digest)
        digests[n++] = si->manifest_digest;
    if (list && c->refs && image && n)
        (void)oc_oci_referrers_reach(c->refs, image, digests, n, add_referrer, list);
    return list;
}

static void add_image(lctx *c, const char *image, const char *tag, const char *file, int in_catalog)
{
    oc_store_image si;
    oc_error err;
    oc_error_clear(&err);
    char *path = oc_store_path(c->s, file);
    int ok = path && oc_store_image_load(&si, path, &err) == 0;
    free(path);
    if (!ok) {
        problem(c, file, err.code ? err.msg : "out of memory");
        return;
    }
    uint64_t bytes = 0;
    for (size_t l = 0; l < si.n_layers; l++) {
        long k = oc_store_entries_find(c->e.layers, c->e.n_layers, si.layer_hex[l]);
        if (k < 0) {
            char why[200];
            snprintf(why, sizeof why, "layer %s is missing", si.layer_hex[l]);
            problem(c, file, why);
            continue;
        }
        bytes += c->layer_size[k];
        c->layer_used[k] = 1;
    }
    c->unshared += bytes;
    json_t *tags = json_array();
    for (size_t t = 0; t < si.n_repo_tags; t++)
        json_array_append_new(tags, json_string(si.repo_tags[t]));
    json_t *o = json_object();
    json_object_set_new(o, "image", str_or_null(image ? image : si.image_name));
    json_object_set_new(o, "tag", str_or_null(tag ? tag : si.tag));
    json_object_set_new(o, "manifest_file", json_string(file));
    json_object_set_new(o, "in_catalog", json_boolean(in_catalog));
    json_object_set_new(o, "config", json_string(si.config));
    json_object_set_new(o, "repo_tags", tags);
    json_object_set_new(o, "layers", json_integer((json_int_t)si.n_layers));
    json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(o, "registry", str_or_null(si.registry));
    json_object_set_new(o, "repository", str_or_null(si.repository));
    json_object_set_new(o, "manifest_digest", str_or_null(si.manifest_digest));
    json_object_set_new(o, "index_digest", str_or_null(si.index_digest));
    json_object_set_new(o, "platform", str_or_null(si.platform));
    json_object_set_new(o, "fetched_at", str_or_null(si.fetched_at));
    int exact = has_exact(c, image ? image : si.image_name, tag ? tag : si.tag, &si);
    c->exact += exact;
    json_object_set_new(o, "exact", json_boolean(exact));
    json_object_set_new(o, "referrers", referrers_of(c, image ? image : si.image_name, &si));
    json_array_append_new(c->images, o);
    oc_store_image_free(&si);
}

static int visit(void *opaque, const char *image, const char *tag, const char *file)
{
    lctx *c = opaque;
    long k = oc_catalog_file_name_ok(file)
                 ? oc_store_entries_find(c->e.manifests, c->e.n_manifests, file)
                 : -1;
    if (k < 0) {
        char why[600];
        snprintf(why, sizeof why, "%s:%s names %s, which is missing", image, tag, file);
        problem(c, "catalog.json", why);
        return 0;
    }
    c->listed[k] = 1;
    add_image(c, image, tag, file, 1);
    return 0;
}

json_t *oc_store_list(const oc_store *s, oc_error *err)
{
    lctx c = {.s = s};
    oc_catalog *cat = NULL;
    json_t *out = NULL;
    if (oc_store_entries_read(s, &c.e, err) != 0)
        return NULL;
    if (oc_store_catalog_load(s, &cat, err) != 0)
        goto done;
    oc_error oerr;
    oc_error_clear(&oerr);
    if (oc_store_oci_index_load(s, &c.oci, &oerr) != 0) {
        c.oci = oc_oci_index_new();
        if (!c.oci) {
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            goto done;
        }
        c.problems = c.problems ? c.problems : json_array();
        json_array_append_new(c.problems, json_string(oerr.msg));
    }
    c.refs = oc_oci_referrers_of_index(c.oci, s, err);
    if (!c.refs)
        goto done;
    c.images = json_array();
    if (!c.problems)
        c.problems = json_array();
    c.listed = calloc(c.e.n_manifests + 1, sizeof *c.listed);
    c.layer_size = calloc(c.e.n_layers + 1, sizeof *c.layer_size);
    c.layer_used = calloc(c.e.n_layers + 1, sizeof *c.layer_used);
    if (!c.images || !c.problems || !c.listed || !c.layer_size || !c.layer_used) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < c.e.n_layers; k++) {
        char name[80];
        snprintf(name, sizeof name, "%s/layer.tar", c.e.layers[k]);
        char *path = oc_store_path(s, name);
        struct stat st;
        if (path && stat(path, &st) == 0)
            c.layer_size[k] = (uint64_t)st.st_size;
        free(path);
    }
    oc_catalog_foreach(cat, visit, &c);
    for (size_t k = 0; k < c.e.n_manifests; k++)
        if (!c.listed[k])
            add_image(&c, NULL, NULL, c.e.manifests[k], 0);
    size_t distinct = 0;
    uint64_t layer_bytes = 0;
    for (size_t k = 0; k < c.e.n_layers; k++)
        if (c.layer_used[k]) {
            distinct++;
            layer_bytes += c.layer_size[k];
        }
    out = json_object();
    if (out) {
        json_object_set_new(out, "store", json_string(oc_store_dir(s)));
        json_object_set(out, "images", c.images);
        json_object_set(out, "problems", c.problems);
        json_object_set_new(out, "distinct_layers", json_integer((json_int_t)distinct));
        json_object_set_new(out, "layer_bytes", json_integer((json_int_t)layer_bytes));
        json_object_set_new(out, "bytes_without_sharing", json_integer((json_int_t)c.unshared));
        json_object_set_new(out, "exact_images", json_integer((json_int_t)c.exact));
        size_t live = 0, n = oc_oci_referrers_count(c.refs);
        for (size_t i = 0; i < n; i++)
            live += oc_oci_referrers_at(c.refs, i)->live;
        json_object_set_new(out, "referrers", json_integer((json_int_t)live));
        json_object_set_new(out, "orphan_referrers", json_integer((json_int_t)(n - live)));
    } else {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    }
done:
    json_decref(c.images);
    json_decref(c.problems);
    free(c.listed);
    free(c.layer_size);
    free(c.layer_used);
    oc_catalog_free(cat);
    oc_oci_index_free(c.oci);
    oc_oci_referrers_free(c.refs);
    oc_store_entries_free(&c.e);
    return out;
}
