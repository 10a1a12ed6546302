/* inventory.c - what a store holds, as a document (see inventory.h). */
#include "engine/bundle/inventory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/bundle/doc_text.h"
#include "engine/store/oci_index.h"
#include "engine/store/oci_read.h"
#include "engine/store/oci_walk.h"
#include "io/grow.h"
#include "io/strmap.h"

typedef struct blob {
    char hex[OC_SHA256_HEX_LEN + 1];
    uint64_t size;
} blob;

typedef struct image {
    oc_inv_image pub;
    char *ref, *media_type, *digest;
} image;

struct oc_inventory {
    blob *blobs;
    size_t n_blobs, cap_blobs;
    size_t sorted; /* blobs[0..sorted) are sorted and unique */
    oc_strmap *images;
    char *created;
};

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

static void image_free(void *p)
{
    image *im = p;
    if (!im)
        return;
    free(im->ref);
    free(im->media_type);
    free(im->digest);
    free(im);
}

oc_inventory *oc_inventory_new(void)
{
    oc_inventory *inv = calloc(1, sizeof *inv);
    if (inv && !(inv->images = oc_strmap_new(image_free))) {
        free(inv);
        inv = NULL;
    }
    return inv;
}

void oc_inventory_free(oc_inventory *inv)
{
    if (!inv)
        return;
    free(inv->blobs);
    oc_strmap_free(inv->images);
    free(inv->created);
    free(inv);
}

static int cmp_blob(const void *a, const void *b)
{
    return strcmp(((const blob *)a)->hex, ((const blob *)b)->hex);
}

/* Sort and drop duplicates (the first size met wins: qsort is not stable,
 * so duplicates are dropped in order of appearance before sorting). */
static void settle(oc_inventory *inv)
{
    if (inv->sorted == inv->n_blobs)
        return;
    qsort(inv->blobs, inv->n_blobs, sizeof *inv->blobs, cmp_blob);
    size_t w = 0;
    for (size_t i = 0; i < inv->n_blobs; i++)
        if (w == 0 || strcmp(inv->blobs[w - 1].hex, inv->blobs[i].hex) != 0)
            inv->blobs[w++] = inv->blobs[i];
    inv->n_blobs = inv->sorted = w;
}

static const blob *find_blob(oc_inventory *inv, const char *hex)
{
    settle(inv);
    blob key = {.size = 0};
    snprintf(key.hex, sizeof key.hex, "%s", hex);
    return inv->n_blobs ? bsearch(&key, inv->blobs, inv->n_blobs, sizeof key, cmp_blob) : NULL;
}

int oc_inventory_add_blob(oc_inventory *inv, const char *digest, uint64_t size, oc_error *err)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(digest, hex, err) != 0)
        return -1;
    if (inv->sorted == inv->n_blobs && find_blob(inv, hex))
        return 0;
    blob *grown = oc_grow(inv->blobs, &inv->cap_blobs, inv->n_blobs + 1, sizeof *grown, 64);
    if (!grown)
        return oom(err);
    inv->blobs = grown;
    memcpy(inv->blobs[inv->n_blobs].hex, hex, sizeof hex);
    inv->blobs[inv->n_blobs++].size = size;
    return 0;
}

int oc_inventory_has_blob(oc_inventory *inv, const char *digest, uint64_t *size)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(digest, hex, NULL) != 0)
        return 0;
    const blob *b = find_blob(inv, hex);
    if (b && size)
        *size = b->size;
    return b != NULL;
}

int oc_inventory_set_image(oc_inventory *inv, const char *ref, const char *media_type,
                           const char *digest, uint64_t size, oc_error *err)
{
    image *im = calloc(1, sizeof *im);
    if (!im || !(im->ref = strdup(ref)) || !(im->media_type = strdup(media_type)) ||
        !(im->digest = strdup(digest))) {
        image_free(im);
        return oom(err);
    }
    im->pub = (oc_inv_image){im->ref, im->media_type, im->digest, size};
    if (oc_strmap_set(inv->images, ref, im) != 0) {
        image_free(im);
        return oom(err);
    }
    return 0;
}

const oc_inv_image *oc_inventory_image(const oc_inventory *inv, const char *ref)
{
    const image *im = oc_strmap_get(inv->images, ref);
    return im ? &im->pub : NULL;
}

size_t oc_inventory_n_blobs(oc_inventory *inv)
{
    settle(inv);
    return inv->n_blobs;
}

size_t oc_inventory_n_images(const oc_inventory *inv)
{
    return oc_strmap_count(inv->images);
}

const char *oc_inventory_created(const oc_inventory *inv)
{
    return inv->created;
}

typedef struct merge_ctx {
    oc_inventory *into;
    oc_error *err;
    int rc;
} merge_ctx;

static void merge_image(const char *key, void *value, void *opaque)
{
    merge_ctx *m = opaque;
    const image *im = value;
    (void)key;
    if (m->rc == 0 && im)
        m->rc = oc_inventory_set_image(m->into, im->ref, im->media_type, im->digest, im->pub.size,
                                       m->err);
}

int oc_inventory_merge(oc_inventory *into, oc_inventory *from, oc_error *err)
{
    settle(from);
    for (size_t i = 0; i < from->n_blobs; i++) {
        char digest[8 + OC_SHA256_HEX_LEN];
        snprintf(digest, sizeof digest, "sha256:%s", from->blobs[i].hex);
        if (oc_inventory_add_blob(into, digest, from->blobs[i].size, err) != 0)
            return -1;
    }
    merge_ctx m = {into, err, 0};
    oc_strmap_foreach(from->images, merge_image, &m);
    return m.rc;
}

/* ---- of a store ---- */

typedef struct walk_ctx {
    oc_inventory *inv;
    oc_error *err;
    int rc;
} walk_ctx;

static void on_ref(void *opaque, const oc_oci_ref *r)
{
    walk_ctx *w = opaque;
    if (w->rc == 0 && r->state == OC_OCI_PRESENT)
        w->rc = oc_inventory_add_blob(w->inv, r->digest, r->size, w->err);
}

typedef struct entry_ctx {
    const oc_store *s;
    walk_ctx w;
} entry_ctx;

static int on_entry(void *opaque, const char *ref_name, const char *digest, const char *text)
{
    entry_ctx *e = opaque;
    char *mt = NULL, *dg = NULL;
    uint64_t size = 0;
    (void)digest;
    if (!ref_name) /* another tool's entry: not an image of ours */
        return 0;
    if (oc_oci_descriptor_parse(text, &mt, &dg, &size, e->w.err) != 0)
        return -1;
    int rc = oc_inventory_set_image(e->w.inv, ref_name, mt, dg, size, e->w.err);
    if (rc == 0) {
        (void)oc_store_oci_walk(e->s, mt, dg, size, on_ref, &e->w);
        rc = e->w.rc;
    }
    free(mt);
    free(dg);
    return rc;
}

int oc_inventory_of_store(const oc_store *s, oc_inventory **out, oc_error *err)
{
    *out = NULL;
    oc_oci_index *x = NULL;
    oc_inventory *inv = oc_inventory_new();
    if (!inv)
        return oom(err);
    entry_ctx e = {s, {inv, err, 0}};
    if (oc_store_oci_index_load(s, &x, err) != 0 || oc_oci_index_foreach(x, on_entry, &e) != 0) {
        if (err && err->code == OC_OK)
            oom(err);
        oc_oci_index_free(x);
        oc_inventory_free(inv);
        return -1;
    }
    oc_oci_index_free(x);
    *out = inv;
    return 0;
}

/* ---- the document ---- */

typedef struct img_list {
    const image **v;
    size_t n;
} img_list;

static void collect(const char *key, void *value, void *opaque)
{
    img_list *l = opaque;
    (void)key;
    if (value)
        l->v[l->n++] = value;
}

static int cmp_img(const void *a, const void *b)
{
    return strcmp((*(const image *const *)a)->ref, (*(const image *const *)b)->ref);
}

char *oc_inventory_dump(oc_inventory *inv, size_t *len, oc_error *err)
{
    settle(inv);
    json_t *doc = json_object(), *blobs = json_array(), *images = json_array();
    img_list l = {calloc(oc_strmap_count(inv->images) + 1, sizeof *l.v), 0};
    char *text = NULL;
    if (!doc || !blobs || !images || !l.v) {
        oom(err);
        goto out;
    }
    char now[32];
    oc_store_now(now);
    for (size_t i = 0; i < inv->n_blobs; i++) {
        char digest[8 + OC_SHA256_HEX_LEN];
        snprintf(digest, sizeof digest, "sha256:%s", inv->blobs[i].hex);
        json_t *b =
            json_pack("{s:s,s:I}", "digest", digest, "size", (json_int_t)inv->blobs[i].size);
        if (!b || json_array_append_new(blobs, b) != 0) {
            oom(err);
            goto out;
        }
    }
    oc_strmap_foreach(inv->images, collect, &l);
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, cmp_img);
    for (size_t i = 0; i < l.n; i++) {
        json_t *o =
            json_pack("{s:s,s:s,s:s,s:I}", "ref", l.v[i]->ref, "mediaType", l.v[i]->media_type,
                      "digest", l.v[i]->digest, "size", (json_int_t)l.v[i]->pub.size);
        if (!o || json_array_append_new(images, o) != 0) {
            oom(err);
            goto out;
        }
    }
    json_object_set_new(doc, "mediaType", json_string(OC_INVENTORY_MEDIA_TYPE));
    json_object_set_new(doc, "version", json_integer(OC_INVENTORY_VERSION));
    json_object_set_new(doc, "created", json_string(now));
    json_object_set(doc, "blobs", blobs);
    json_object_set(doc, "images", images);
    text = oc_doc_text(doc, len, err);
out:
    free(l.v);
    json_decref(doc);
    json_decref(blobs);
    json_decref(images);
    return text;
}

/* A size field: a non-negative integer. */
static int size_of(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

oc_inventory *oc_inventory_parse(const char *text, size_t len, const char *what, oc_error *err)
{
    json_t *doc = oc_doc_parse(text, len, what, err);
    if (!doc)
        return NULL;
    oc_inventory *inv = oc_inventory_new();
    const char *mt = json_string_value(json_object_get(doc, "mediaType"));
    json_t *version = json_object_get(doc, "version");
    json_t *blobs = json_object_get(doc, "blobs"), *images = json_object_get(doc, "images");
    const char *created = json_string_value(json_object_get(doc, "created"));
    int rc = -1;
    if (!inv) {
        oom(err);
        goto out;
    }
    if (!mt || strcmp(mt, OC_INVENTORY_MEDIA_TYPE) != 0 || !json_is_integer(version)) {
        oc_error_set(err, OC_E_FORMAT, "%s is not an occystrap inventory (mediaType %s, version)",
                     what, OC_INVENTORY_MEDIA_TYPE);
        goto out;
    }
    if (json_integer_value(version) != OC_INVENTORY_VERSION) {
        oc_error_set(err, OC_E_FORMAT,
                     "%s is an inventory of version %lld; this occystrap reads version %d", what,
                     (long long)json_integer_value(version), OC_INVENTORY_VERSION);
        goto out;
    }
    if (!json_is_array(blobs) || !json_is_array(images) || !created) {
        oc_error_set(err, OC_E_FORMAT, "%s needs \"blobs\", \"images\" and \"created\"", what);
        goto out;
    }
    if (!(inv->created = strdup(created))) {
        oom(err);
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(blobs, i, v)
    {
        uint64_t size;
        const char *dg = json_string_value(json_object_get(v, "digest"));
        if (!dg || size_of(json_object_get(v, "size"), &size) != 0 ||
            oc_inventory_add_blob(inv, dg, size, err) != 0) {
            oc_error_set(err, OC_E_FORMAT, "%s: blob %zu needs a sha256 digest and a size", what,
                         i + 1);
            goto out;
        }
    }
    json_array_foreach(images, i, v)
    {
        uint64_t size;
        const char *ref = json_string_value(json_object_get(v, "ref"));
        const char *imt = json_string_value(json_object_get(v, "mediaType"));
        const char *dg = json_string_value(json_object_get(v, "digest"));
        char *name = NULL, *tag = NULL;
        int good = ref && imt && dg && oc_digest_parse(dg, NULL, NULL) == 0 &&
                   size_of(json_object_get(v, "size"), &size) == 0 &&
                   oc_bundle_ref_ok(ref, &name, &tag);
        free(name);
        free(tag);
        if (!good) {
            oc_error_set(err, OC_E_FORMAT,
                         "%s: image %zu needs a ref NAME:TAG, a mediaType, a sha256 digest and a "
                         "size",
                         what, i + 1);
            goto out;
        }
        if (oc_inventory_set_image(inv, ref, imt, dg, size, err) != 0)
            goto out;
    }
    settle(inv);
    rc = 0;
out:
    json_decref(doc);
    if (rc != 0) {
        oc_inventory_free(inv);
        return NULL;
    }
    return inv;
}

/* ---- names ---- */

static int tag_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 7 + OC_SHA256_HEX_LEN && strncmp(t, "sha256:", 7) == 0) {
        char d[8 + OC_SHA256_HEX_LEN];
        snprintf(d, sizeof d, "%s", t);
        return oc_digest_parse(d, NULL, NULL) == 0;
    }
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '_' && (i == 0 || (c != '.' && c != '-' && c != '+')))
            return 0;
    }
    return 1;
}

/* A store name: components of [A-Za-z0-9._-] (the first may hold a port's
 * ':'), none empty, ".", ".." or starting with '.'. */
static int name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 255)
        return 0;
    int first = 1;
    for (const char *p = n; *p;) {
        size_t k = strcspn(p, "/");
        if (k == 0 || p[0] == '.')
            return 0;
        for (size_t i = 0; i < k; i++) {
            char c = p[i];
            int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '_' || c == '-' || (first && c == ':' && p[k] == '/');
            if (!ok)
                return 0;
        }
        first = 0;
        p += k;
        if (*p == '/' && !*++p)
            return 0;
    }
    return 1;
}

int oc_bundle_ref_ok(const char *text, char **name, char **tag)
{
    *name = *tag = NULL;
    if (oc_oci_split_ref_name(text, name, tag) != 0)
        return 0;
    if (name_ok(*name) && tag_ok(*tag))
        return 1;
    free(*name);
    free(*tag);
    *name = *tag = NULL;
    return 0;
}
