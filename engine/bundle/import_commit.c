/* import_commit.c - a whole bundle into the store proper (see import.h).
 *
 * Order, so that a crash anywhere leaves a store that verifies and a stage
 * the next import finishes from: first everything is checked without
 * touching the store (every image's manifests, configs and layers at hand,
 * each layer's tar made in the stage and matching its config's diff_id);
 * then the blobs are renamed into STORE/oci/blobs/sha256 (a blob no entry
 * reaches is only garbage for gc), configs linked as STORE/<hex>.json with
 * their markers, layer tars renamed into STORE/<hex>/layer.tar with their
 * markers, the manifest files written; last catalog.json and index.json,
 * under the catalog lock, in one batch. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/bundle/import.h"
#include "engine/image/limits.h"
#include "engine/image/manifest.h"
#include "engine/store/catalog.h"
#include "engine/store/catalog_batch.h"
#include "engine/store/oci_index.h"
#include "engine/store/oci_layout.h"
#include "engine/store/store_image.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/strmap.h"

#define DEPTH_MAX 4

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

/* A document read and parsed, by digest. */
typedef struct doc {
    oc_manifest m;
} doc;

static void doc_free(void *p)
{
    doc *dc = p;
    if (!dc)
        return;
    oc_manifest_free(&dc->m);
    free(dc);
}

/* A layer an image of the bundle needs as layer.tar. */
typedef struct layer {
    char hex[OC_SHA256_HEX_LEN + 1];
    char diff_id[OC_BUNDLE_DIGEST_LEN];
    uint64_t size;
    char *media_type;
    int in_store; /* its layer.tar is in place with a marker */
} layer;

static void layer_free(void *p)
{
    layer *l = p;
    if (l)
        free(l->media_type);
    free(l);
}

/* What one catalog image is made of. */
typedef struct image_parts {
    const oc_manifest *m; /* its image manifest (in docs) */
    char config_hex[OC_SHA256_HEX_LEN + 1];
    uint64_t config_size;
    char **diff_ids;
    size_t n_diff_ids;
} image_parts;

typedef struct commit {
    oc_import_ctx *c;
    oc_strmap *docs;    /* digest -> doc */
    oc_strmap *layers;  /* hex -> layer */
    image_parts *parts; /* per image of the bundle (m NULL: no catalog view) */
    oc_error *err;
} commit;

/* A small blob, whole, checked against its digest. */
static char *read_blob(commit *k, const char *digest, uint64_t size, size_t max, size_t *len)
{
    if (size > max) {
        oc_error_set(k->err, OC_E_LIMIT, "blob %s is %" PRIu64 " bytes, more than %zu", digest,
                     size, max);
        return NULL;
    }
    char *path = oc_import_blob_path(k->c, digest + 7, size);
    if (!path) {
        oc_error_set(k->err, OC_E_NOTFOUND,
                     "blob %s is neither in the bundle nor in the store (the bundle's manifest "
                     "does not add up)",
                     digest);
        return NULL;
    }
    char *body = oc_read_file(path, max + 1, len, k->err);
    free(path);
    if (!body)
        return NULL;
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(body, *len, hex);
    if (*len != size || strcmp(hex, digest + 7) != 0) {
        oc_error_set(k->err, OC_E_DIGEST,
                     "blob %s does not hash to its name (run occystrap verify)", digest);
        free(body);
        return NULL;
    }
    return body;
}

/* Follow a descriptor: its documents parsed into k->docs, every config and
 * layer of an image manifest at hand. An index's child that is neither in
 * the bundle nor in the store is a platform never mirrored: fine. */
static int walk(commit *k, const char *ref, const char *media_type, const char *digest,
                uint64_t size, int depth)
{
    if (oc_strmap_has(k->docs, digest))
        return 0;
    if (depth > 0) {
        char *path = oc_import_blob_path(k->c, digest + 7, size);
        free(path);
        if (!path)
            return 0;
    }
    size_t len = 0;
    char *body = read_blob(k, digest, size, OC_MANIFEST_MAX, &len);
    doc *dc = body ? calloc(1, sizeof *dc) : NULL;
    if (!dc || oc_manifest_parse(&dc->m, media_type, body, len, k->err) != 0 ||
        oc_strmap_set(k->docs, digest, dc) != 0) {
        if (body && !dc)
            oom(k->err);
        free(body);
        free(dc);
        oc_error_prefix(k->err, "image %s", ref);
        return -1;
    }
    free(body);
    if (dc->m.kind == OC_MANIFEST_IMAGE) {
        const oc_descriptor *need[1] = {&dc->m.config};
        for (size_t i = 0; i <= dc->m.n_layers; i++) {
            const oc_descriptor *ds = i == 0 ? need[0] : &dc->m.layers[i - 1];
            char *path = oc_import_blob_path(k->c, ds->digest + 7, (uint64_t)ds->size);
            free(path);
            if (!path) {
                oc_error_set(k->err, OC_E_NOTFOUND,
                             "image %s: %s %s of manifest %s is neither in the bundle nor in the "
                             "store",
                             ref, i == 0 ? "config" : "layer", ds->digest, digest);
                return -1;
            }
        }
    } else if (dc->m.kind == OC_MANIFEST_INDEX && depth < DEPTH_MAX) {
        for (size_t i = 0; i < dc->m.n_manifests; i++)
            if (walk(k, ref, dc->m.manifests[i].media_type, dc->m.manifests[i].digest,
                     (uint64_t)dc->m.manifests[i].size, depth + 1) != 0)
                return -1;
    }
    return 0;
}

/* The catalog view of image i: its manifest reached, its config's
 * diff_ids one per layer, each layer queued. */
static int image_of(commit *k, size_t i)
{
    const oc_bundle_image *im = &k->c->d->images[i];
    image_parts *ip = &k->parts[i];
    const doc *dc = oc_strmap_get(k->docs, im->catalog->manifest_digest);
    if (!dc || dc->m.kind != OC_MANIFEST_IMAGE) {
        oc_error_set(k->err, OC_E_FORMAT,
                     "image %s: its catalog entry describes %s, which is not an image manifest "
                     "its entry reaches",
                     im->ref, im->catalog->manifest_digest);
        return -1;
    }
    ip->m = &dc->m;
    size_t len = 0;
    char *body =
        read_blob(k, dc->m.config.digest, (uint64_t)dc->m.config.size, OC_IMAGE_CONFIG_MAX, &len);
    oc_image_config cfg;
    if (!body || oc_image_config_parse(&cfg, body, len, k->err) != 0) {
        free(body);
        oc_error_prefix(k->err, "image %s: config %s", im->ref, dc->m.config.digest);
        return -1;
    }
    free(body);
    snprintf(ip->config_hex, sizeof ip->config_hex, "%s", dc->m.config.digest + 7);
    ip->config_size = (uint64_t)dc->m.config.size;
    ip->diff_ids = cfg.diff_ids;
    ip->n_diff_ids = cfg.n_diff_ids;
    cfg.diff_ids = NULL;
    cfg.n_diff_ids = 0;
    oc_image_config_free(&cfg);
    if (ip->n_diff_ids != dc->m.n_layers) {
        oc_error_set(k->err, OC_E_FORMAT, "image %s: its config lists %zu diff_ids for %zu layers",
                     im->ref, ip->n_diff_ids, dc->m.n_layers);
        return -1;
    }
    for (size_t l = 0; l < dc->m.n_layers; l++) {
        const oc_descriptor *ds = &dc->m.layers[l];
        layer *ly = oc_strmap_get(k->layers, ds->digest + 7);
        if (ly) {
            if (strcmp(ly->diff_id, ip->diff_ids[l]) != 0) {
                oc_error_set(k->err, OC_E_FORMAT,
                             "layer %s has diff_id %s in one image's config and %s in %s's",
                             ds->digest, ly->diff_id, ip->diff_ids[l], im->ref);
                return -1;
            }
            continue;
        }
        ly = calloc(1, sizeof *ly);
        if (!ly || !(ly->media_type = strdup(ds->media_type ? ds->media_type : "")) ||
            oc_strmap_set(k->layers, ds->digest + 7, ly) != 0) {
            layer_free(ly);
            return oom(k->err);
        }
        snprintf(ly->hex, sizeof ly->hex, "%s", ds->digest + 7);
        snprintf(ly->diff_id, sizeof ly->diff_id, "%s", ip->diff_ids[l]);
        ly->size = (uint64_t)ds->size;
    }
    return 0;
}

/* ---- layers ---- */

typedef struct layer_walk {
    commit *k;
    int rc;
    int pass; /* 0: unpack what is missing; 1: check every staged tar */
} layer_walk;

static void on_layer(const char *key, void *value, void *opaque)
{
    layer_walk *w = opaque;
    layer *ly = value;
    (void)key;
    if (w->rc != 0 || !ly || ly->in_store)
        return;
    commit *k = w->k;
    char digest[OC_BUNDLE_DIGEST_LEN];
    snprintf(digest, sizeof digest, "sha256:%s", ly->hex);
    char *have_path = NULL;
    uint64_t have_size = 0;
    if (w->pass == 0 && oc_store_have_layer(k->c->s, digest, ly->diff_id, &have_path, &have_size)) {
        free(have_path);
        ly->in_store = 1;
        return;
    }
    char diff[OC_BUNDLE_DIGEST_LEN];
    uint64_t tar_size = 0;
    char *tar = NULL;
    if (oc_stage_layer(k->c->st, ly->hex, diff, &tar_size, &tar)) {
        free(tar);
        if (strcmp(diff, ly->diff_id) != 0) {
            oc_error_set(k->err, OC_E_DIGEST,
                         "layer %s inflates to a tar of digest %s, its image's config says %s "
                         "(the bundle's layer or config is not the image's)",
                         digest, diff, ly->diff_id);
            w->rc = -1;
        }
        return;
    }
    if (w->pass == 1) {
        oc_error_set(k->err, OC_E_IO, "layer %s: its tar is not in %s", digest,
                     oc_stage_dir(k->c->st));
        w->rc = -1;
        return;
    }
    char *blob = oc_import_blob_path(k->c, ly->hex, ly->size);
    oc_error e;
    oc_error_clear(&e);
    if (blob && !oc_import_stage(k->c, k->err)) {
        free(blob);
        w->rc = -1;
        return;
    }
    oc_stage_result r =
        blob ? oc_stage_unpack(k->c->st, ly->hex, blob, ly->media_type, &e) : OC_STAGE_FAILED;
    if (!blob)
        oc_error_set(&e, OC_E_NOTFOUND, "layer %s is neither in the bundle nor in the store",
                     digest);
    free(blob);
    if (r != OC_STAGE_OK) {
        *k->err = e;
        w->rc = -1;
    }
}

/* ---- placing ---- */

static int place_blobs(commit *k)
{
    oc_import_ctx *c = k->c;
    const oc_bundle_doc *d = c->d;
    int moved = 0;
    if (oc_store_oci_prepare(c->s, k->err) != 0)
        return -1;
    for (size_t i = 0; i < d->n_files; i++) {
        const oc_bundle_file *f = &d->files[i];
        if (f->segment && i > 0 && d->files[i - 1].segment &&
            strcmp(d->files[i - 1].blob, f->blob) == 0)
            continue; /* the blob of its segments once */
        const char *hex = f->blob + 7;
        if (oc_store_oci_have(c->s, hex, f->blob_size))
            continue;
        char *from = oc_stage_blob(c->st, hex, f->blob_size);
        char *to = oc_store_oci_blob_path(c->s, hex);
        int rc = from && to ? rename(from, to) : -1;
        if (rc != 0)
            oc_error_errno(k->err, from && to ? errno : ENOMEM, "move blob %s into %s", f->blob,
                           to ? to : "the store");
        free(from);
        free(to);
        if (rc != 0)
            return -1;
        moved = 1;
    }
    if (!moved)
        return 0;
    char *dir = oc_store_path(c->s, OC_STORE_OCI_BLOBS);
    int rc = dir ? oc_fsync_dir(dir, k->err) : oom(k->err);
    free(dir);
    return rc;
}

/* path: one inode with blob hex of size bytes (a copy where the file
 * system refuses links), unless already a file of that size. */
static int link_blob(commit *k, const char *hex, uint64_t size, const char *path)
{
    oc_store *s = k->c->s;
    char *blob = oc_store_oci_blob_path(s, hex);
    char *tmp = NULL;
    struct stat sb;
    int rc = -1;
    if (!blob || asprintf(&tmp, "%s/link-%s", oc_store_run_dir(s), hex) < 0) {
        tmp = NULL;
        oom(k->err);
    } else if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == size) {
        rc = 0;
    } else if ((void)unlink(tmp), link(blob, tmp) == 0) {
        rc = rename(tmp, path);
        if (rc != 0) {
            oc_error_errno(k->err, errno, "move sha256:%s into %s", hex, path);
            (void)unlink(tmp);
        }
    } else {
        size_t len = 0;
        char *body = oc_read_file(blob, (size_t)size + 1, &len, k->err);
        rc = body ? oc_atomic_write_file(oc_store_run_dir(s), path, body, len, k->err) : -1;
        free(body);
    }
    free(blob);
    free(tmp);
    return rc;
}

/* STORE/<hex>.json and its marker. */
static int place_config(commit *k, const image_parts *ip)
{
    oc_store *s = k->c->s;
    char name[OC_SHA256_HEX_LEN + 8];
    snprintf(name, sizeof name, "%s.json", ip->config_hex);
    char *path = oc_store_path(s, name);
    int rc = -1;
    if (!path) {
        oom(k->err);
        goto out;
    }
    if (link_blob(k, ip->config_hex, ip->config_size, path) != 0)
        goto out;
    oc_blob_mark m;
    oc_error ignored;
    if (oc_store_mark_read(s, ip->config_hex, &m, &ignored) == 1 && !m.is_layer &&
        m.size == ip->config_size) {
        rc = 0;
        goto out;
    }
    memset(&m, 0, sizeof m);
    snprintf(m.digest, sizeof m.digest, "sha256:%s", ip->config_hex);
    m.size = ip->config_size;
    rc = oc_store_mark_write(s, ip->config_hex, &m, k->err);
out:
    free(path);
    return rc;
}

typedef struct index_walk {
    commit *k;
    int rc;
} index_walk;

/* An index also as STORE/.occystrap/index/<hex>.json, as mirror keeps it. */
static void keep_index(const char *digest, void *value, void *opaque)
{
    index_walk *w = opaque;
    const doc *dc = value;
    if (w->rc != 0 || !dc || dc->m.kind != OC_MANIFEST_INDEX)
        return;
    oc_store *s = w->k->c->s;
    char *dir = oc_store_path(s, ".occystrap/index"), *path = NULL;
    struct stat sb;
    char *blob = oc_store_oci_blob_path(s, digest + 7);
    if (!dir || !blob || asprintf(&path, "%s/%s.json", dir, digest + 7) < 0) {
        path = NULL;
        w->rc = oom(w->k->err);
    } else if (stat(blob, &sb) != 0) {
        w->rc = 0; /* a child the store does not hold */
    } else if (oc_mkdirs(dir, w->k->err) != 0 ||
               link_blob(w->k, digest + 7, (uint64_t)sb.st_size, path) != 0) {
        w->rc = -1;
    }
    free(dir);
    free(path);
    free(blob);
}

typedef struct place_walk {
    commit *k;
    int rc;
} place_walk;

/* A staged tar into STORE/<hex>/layer.tar, then its marker. */
static void place_layer(const char *key, void *value, void *opaque)
{
    place_walk *w = opaque;
    layer *ly = value;
    (void)key;
    if (w->rc != 0 || !ly || ly->in_store)
        return;
    commit *k = w->k;
    oc_store *s = k->c->s;
    char diff[OC_BUNDLE_DIGEST_LEN];
    uint64_t tar_size = 0;
    char *tar = NULL, *dir = oc_store_path(s, ly->hex), *final = NULL;
    if (!dir || asprintf(&final, "%s/layer.tar", dir) < 0) {
        free(dir);
        w->rc = oom(k->err);
        return;
    }
    if (!oc_stage_layer(k->c->st, ly->hex, diff, &tar_size, &tar)) {
        oc_error_set(k->err, OC_E_IO, "layer sha256:%s: its tar left %s", ly->hex,
                     oc_stage_dir(k->c->st));
        w->rc = -1;
    } else if (oc_mkdirs(dir, k->err) != 0) {
        w->rc = -1;
    } else if (rename(tar, final) != 0) {
        oc_error_errno(k->err, errno, "move layer sha256:%s into %s", ly->hex, final);
        w->rc = -1;
    } else if (oc_fsync_dir(dir, k->err) != 0) {
        w->rc = -1;
    } else {
        oc_blob_mark m;
        memset(&m, 0, sizeof m);
        m.is_layer = 1;
        snprintf(m.digest, sizeof m.digest, "sha256:%s", ly->hex);
        snprintf(m.diff_id, sizeof m.diff_id, "%s", ly->diff_id);
        m.size = ly->size;
        m.tar_size = tar_size;
        if (oc_store_mark_write(s, ly->hex, &m, k->err) != 0)
            w->rc = -1;
        else
            k->c->rep->layers_unpacked++;
    }
    free(tar);
    free(dir);
    free(final);
}

/* ---- the 0.2.0 view ---- */

/* The manifest file's text, as mirror writes it. */
static char *manifest_file_text(const oc_bundle_image *im, const image_parts *ip, size_t *len)
{
    const oc_bundle_catalog *cat = im->catalog;
    json_t *entry = json_object(), *layers = json_array(), *tags = json_array();
    oc_store_origin origin = {cat->registry,        cat->repository,   cat->tag,
                              cat->manifest_digest, cat->index_digest, cat->platform,
                              cat->media_type,      cat->fetched_at};
    json_t *ours = oc_store_origin_json(&origin), *doc = json_array();
    char *text = NULL;
    if (!entry || !layers || !tags || !ours || !doc)
        goto out;
    char cfg[OC_SHA256_HEX_LEN + 8];
    snprintf(cfg, sizeof cfg, "%s.json", ip->config_hex);
    json_object_set_new(entry, "Config", json_string(cfg));
    json_object_set_new(entry, "ImageName", json_string(im->name));
    for (size_t i = 0; i < ip->m->n_layers; i++) {
        char l[OC_SHA256_HEX_LEN + 16];
        snprintf(l, sizeof l, "%s/layer.tar", ip->m->layers[i].digest + 7);
        json_array_append_new(layers, json_string(l));
    }
    for (size_t i = 0; i < cat->n_repo_tags; i++)
        json_array_append_new(tags, json_string(cat->repo_tags[i]));
    json_object_set(entry, "Layers", layers);
    json_object_set(entry, "RepoTags", tags);
    json_object_set(entry, "Occystrap", ours);
    json_array_append(doc, entry);
    char *t = json_dumps(doc, JSON_INDENT(4) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (t) {
        size_t n = strlen(t);
        text = realloc(t, n + 2);
        if (!text) {
            free(t);
        } else {
            text[n] = '\n';
            text[n + 1] = '\0';
            *len = n + 1;
        }
    }
out:
    json_decref(entry);
    json_decref(layers);
    json_decref(tags);
    json_decref(ours);
    json_decref(doc);
    return text;
}

/* Write the manifest file unless it already has these bytes. */
static int write_manifest_file(commit *k, const oc_bundle_image *im, const image_parts *ip,
                               const char *name)
{
    oc_store *s = k->c->s;
    size_t len = 0;
    char *text = manifest_file_text(im, ip, &len);
    char *path = text ? oc_store_path(s, name) : NULL;
    int rc = -1;
    if (!path) {
        oom(k->err);
    } else {
        oc_error ignored;
        size_t have_len = 0;
        char *have = oc_read_file(path, len + 1, &have_len, &ignored);
        rc = have && have_len == len && memcmp(have, text, len) == 0
                 ? 0
                 : oc_atomic_write_file(oc_store_run_dir(s), path, text, len, k->err);
        free(have);
    }
    free(text);
    free(path);
    return rc;
}

/* catalog.json and index.json: every image, one batch under the lock. */
static int list_images(commit *k)
{
    oc_import_ctx *c = k->c;
    const oc_bundle_doc *d = c->d;
    oc_catalog_batch *b = oc_catalog_batch_open(c->s, k->err);
    if (!b)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < d->n_images; i++) {
        const oc_bundle_image *im = &d->images[i];
        if (im->catalog) {
            char *name = oc_catalog_manifest_name(im->name, im->tag);
            if (!name)
                rc = oom(k->err);
            else if (!oc_catalog_file_name_ok(name))
                rc = -1,
                oc_error_set(k->err, OC_E_FORMAT, "image %s: no manifest file name", im->ref);
            else if (write_manifest_file(k, im, &k->parts[i], name) != 0)
                rc = -1;
            else {
                const char *listed = oc_catalog_get(oc_catalog_batch_view(b), im->name, im->tag);
                if (!listed || strcmp(listed, name) != 0)
                    rc = oc_catalog_batch_add(b, im->name, im->tag, name, k->err);
            }
            free(name);
        }
        const char *now = oc_oci_index_get(oc_catalog_batch_oci_view(b), im->ref);
        if (rc == 0 && (!now || strcmp(now, im->descriptor) != 0)) {
            const char *was = oc_oci_index_digest(oc_catalog_batch_oci_view(b), im->ref);
            c->changed[i] = !was || strcmp(was, im->digest) != 0;
            rc = oc_catalog_batch_oci_set(b, im->ref, im->descriptor, k->err);
        }
    }
    if (rc == 0)
        rc = oc_catalog_batch_flush(b, k->err);
    oc_catalog_batch_free(b);
    return rc;
}

int oc_import_commit(oc_import_ctx *c, oc_error *err)
{
    const oc_bundle_doc *d = c->d;
    commit k = {.c = c, .err = err};
    k.docs = oc_strmap_new(doc_free);
    k.layers = oc_strmap_new(layer_free);
    k.parts = calloc(d->n_images + 1, sizeof *k.parts);
    c->changed = calloc(d->n_images + 1, sizeof *c->changed);
    int rc = -1;
    if (!k.docs || !k.layers || !k.parts || !c->changed) {
        oom(err);
        goto out;
    }
    /* 1. check, touching nothing */
    for (size_t i = 0; i < d->n_images; i++) {
        const oc_bundle_image *im = &d->images[i];
        if (walk(&k, im->ref, im->media_type, im->digest, im->size, 0) != 0)
            goto out;
        if (im->catalog && image_of(&k, i) != 0)
            goto out;
    }
    layer_walk lw = {.k = &k, .rc = 0, .pass = 0};
    oc_strmap_foreach(k.layers, on_layer, &lw);
    if (lw.rc != 0 || oc_stage_settle(c->st, err) != 0)
        goto out;
    lw.pass = 1;
    oc_strmap_foreach(k.layers, on_layer, &lw);
    if (lw.rc != 0)
        goto out;
    /* 2. into place */
    if (place_blobs(&k) != 0)
        goto out;
    for (size_t i = 0; i < d->n_images; i++)
        if (k.parts[i].m && place_config(&k, &k.parts[i]) != 0)
            goto out;
    index_walk iw = {.k = &k, .rc = 0};
    oc_strmap_foreach(k.docs, keep_index, &iw);
    if (iw.rc != 0)
        goto out;
    place_walk pw = {.k = &k, .rc = 0};
    oc_strmap_foreach(k.layers, place_layer, &pw);
    if (pw.rc != 0 || oc_fsync_dir(oc_store_dir(c->s), err) != 0)
        goto out;
    /* 3. listed */
    if (list_images(&k) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        oc_error_prefix(err, "importing bundle %s into %s", d->id, oc_store_dir(c->s));
    for (size_t i = 0; k.parts && i < d->n_images; i++) {
        for (size_t j = 0; j < k.parts[i].n_diff_ids; j++)
            free(k.parts[i].diff_ids[j]);
        free(k.parts[i].diff_ids);
    }
    free(k.parts);
    oc_strmap_free(k.docs);
    oc_strmap_free(k.layers);
    return rc;
}
