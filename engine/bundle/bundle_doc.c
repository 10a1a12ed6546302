/* bundle_doc.c - the bundle manifest (see bundle_doc.h). */
#include "engine/bundle/bundle_doc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/bundle/doc_text.h"
#include "engine/bundle/inventory.h"
#include "engine/store/oci_index.h"
#include "engine/store/store_image.h"
#include "io/grow.h"
#include "io/strmap.h"

#define PARTS_MAX 100000u
#define STRING_MAX 1024
#define REPO_TAGS_MAX 64

const char *const oc_bundle_meta_names[OC_BUNDLE_META_N] = {OC_BUNDLE_INVENTORY_NAME, "oci-layout",
                                                            "index.json"};

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

oc_bundle_doc *oc_bundle_doc_new(void)
{
    return calloc(1, sizeof(oc_bundle_doc));
}

void oc_bundle_catalog_free(oc_bundle_catalog *c)
{
    if (!c)
        return;
    free(c->manifest_digest);
    free(c->registry);
    free(c->repository);
    free(c->tag);
    free(c->index_digest);
    free(c->platform);
    free(c->media_type);
    free(c->fetched_at);
    for (size_t i = 0; i < c->n_repo_tags; i++)
        free(c->repo_tags[i]);
    free(c->repo_tags);
    free(c);
}

void oc_bundle_doc_free(oc_bundle_doc *d)
{
    if (!d)
        return;
    free(d->creator);
    free(d->since_created);
    free(d->since_from);
    for (size_t i = 0; i < d->n_images; i++) {
        oc_bundle_image *im = &d->images[i];
        free(im->ref);
        free(im->name);
        free(im->tag);
        free(im->descriptor);
        free(im->media_type);
        oc_bundle_catalog_free(im->catalog);
    }
    free(d->images);
    for (size_t i = 0; i < d->n_files; i++) {
        free(d->files[i].path);
        free(d->files[i].media_type);
    }
    free(d->files);
    free(d->requires);
    free(d);
}

oc_bundle_file *oc_bundle_doc_add_file(oc_bundle_doc *d, const char *path, oc_error *err)
{
    oc_bundle_file *grown = oc_grow(d->files, &d->cap_files, d->n_files + 1, sizeof *grown, 32);
    char *copy = grown ? strdup(path) : NULL;
    if (!copy) {
        if (grown)
            d->files = grown;
        oom(err);
        return NULL;
    }
    d->files = grown;
    oc_bundle_file *f = &d->files[d->n_files++];
    memset(f, 0, sizeof *f);
    f->path = copy;
    return f;
}

oc_bundle_image *oc_bundle_doc_add_image(oc_bundle_doc *d, const char *ref, const char *descriptor,
                                         oc_error *err)
{
    oc_bundle_image *grown = oc_grow(d->images, &d->cap_images, d->n_images + 1, sizeof *grown, 8);
    if (!grown) {
        oom(err);
        return NULL;
    }
    d->images = grown;
    oc_bundle_image *im = &d->images[d->n_images];
    memset(im, 0, sizeof *im);
    char *mt = NULL, *dg = NULL;
    if (!oc_bundle_ref_ok(ref, &im->name, &im->tag)) {
        oc_error_set(err, OC_E_FORMAT, "\"%.300s\" is not an image name and tag", ref);
        return NULL;
    }
    if (oc_oci_descriptor_parse(descriptor, &mt, &dg, &im->size, err) != 0) {
        free(im->name);
        free(im->tag);
        return NULL;
    }
    snprintf(im->digest, sizeof im->digest, "%s", dg);
    free(dg);
    im->media_type = mt;
    if (!(im->ref = strdup(ref)) || !(im->descriptor = strdup(descriptor))) {
        free(im->ref);
        free(im->name);
        free(im->tag);
        free(im->media_type);
        oom(err);
        return NULL;
    }
    d->n_images++;
    return im;
}

int oc_bundle_doc_add_require(oc_bundle_doc *d, const char *digest, uint64_t size, oc_error *err)
{
    oc_bundle_blob_ref *grown =
        oc_grow(d->requires, &d->cap_requires, d->n_requires + 1, sizeof *grown, 32);
    if (!grown)
        return oom(err);
    d->requires = grown;
    snprintf(d->requires[d->n_requires].digest, OC_BUNDLE_DIGEST_LEN, "%s", digest);
    d->requires[d->n_requires++].size = size;
    return 0;
}

/* ---- to JSON ---- */

static json_t *catalog_json(const oc_bundle_catalog *c)
{
    oc_store_origin origin = {c->registry,     c->repository, c->tag,        c->manifest_digest,
                              c->index_digest, c->platform,   c->media_type, c->fetched_at};
    json_t *o = json_object(), *ours = oc_store_origin_json(&origin), *tags = json_array();
    if (!o || !ours || !tags) {
        json_decref(o);
        json_decref(ours);
        json_decref(tags);
        return NULL;
    }
    for (size_t i = 0; i < c->n_repo_tags; i++)
        json_array_append_new(tags, json_string(c->repo_tags[i]));
    json_object_set_new(o, "occystrap", ours);
    json_object_set_new(o, "repoTags", tags);
    return o;
}

static json_t *blob_ref_json(const oc_bundle_blob_ref *r)
{
    return json_pack("{s:s,s:I}", "digest", r->digest, "size", (json_int_t)r->size);
}

static json_t *to_json(const oc_bundle_doc *d, const char *id, unsigned part)
{
    json_t *doc = json_object(), *files = json_array(), *images = json_array();
    json_t *meta = json_array(), *req = json_array();
    int bad = !doc || !files || !images || !meta || !req;
    for (size_t i = 0; !bad && i < d->n_files; i++) {
        const oc_bundle_file *f = &d->files[i];
        json_t *o = json_pack("{s:s,s:s,s:I,s:I}", "path", f->path, "digest", f->digest, "size",
                              (json_int_t)f->size, "part", (json_int_t)f->part);
        if (o && f->media_type)
            json_object_set_new(o, "mediaType", json_string(f->media_type));
        if (o && f->segment) {
            json_object_set_new(o, "blob", json_string(f->blob));
            json_object_set_new(o, "blobSize", json_integer((json_int_t)f->blob_size));
            json_object_set_new(o, "offset", json_integer((json_int_t)f->offset));
        }
        bad = !o || json_array_append_new(files, o) != 0;
    }
    for (size_t i = 0; !bad && i < d->n_images; i++) {
        const oc_bundle_image *im = &d->images[i];
        json_t *desc = json_loads(im->descriptor, 0, NULL);
        json_t *cat = im->catalog ? catalog_json(im->catalog) : json_null();
        json_t *o = desc && cat ? json_pack("{s:s,s:o,s:o}", "ref", im->ref, "descriptor", desc,
                                            "catalog", cat)
                                : NULL;
        if (!o) {
            json_decref(desc);
            json_decref(cat);
        }
        bad = !o || json_array_append_new(images, o) != 0;
    }
    for (int i = 0; !bad && i < OC_BUNDLE_META_N; i++) {
        json_t *o = blob_ref_json(&d->meta[i]);
        if (o)
            json_object_set_new(o, "path", json_string(oc_bundle_meta_names[i]));
        bad = !o || json_array_append_new(meta, o) != 0;
    }
    for (size_t i = 0; !bad && i < d->n_requires; i++) {
        json_t *o = blob_ref_json(&d->requires[i]);
        bad = !o || json_array_append_new(req, o) != 0;
    }
    json_t *since = json_null();
    if (!bad && d->has_since)
        since = json_pack("{s:s,s:s,s:s,s:I,s:I}", "digest", d->since_digest, "created",
                          d->since_created ? d->since_created : "", "from",
                          d->since_from ? d->since_from : "", "blobs", (json_int_t)d->since_blobs,
                          "images", (json_int_t)d->since_images);
    if (bad || !since) {
        json_decref(doc);
        json_decref(files);
        json_decref(images);
        json_decref(meta);
        json_decref(req);
        json_decref(since);
        return NULL;
    }
    json_object_set_new(doc, "mediaType", json_string(OC_BUNDLE_MEDIA_TYPE));
    json_object_set_new(doc, "version", json_integer(OC_BUNDLE_VERSION));
    json_object_set_new(doc, "id", json_string(id));
    json_object_set_new(doc, "created", json_string(d->created));
    json_object_set_new(doc, "creator", json_string(d->creator ? d->creator : ""));
    json_object_set_new(doc, "part", json_integer(part));
    json_object_set_new(doc, "parts", json_integer(d->parts));
    json_object_set_new(doc, "bytes", json_integer((json_int_t)d->bytes));
    json_object_set_new(doc, "since", since);
    json_object_set_new(doc, "files", files);
    json_object_set_new(doc, "images", images);
    json_object_set_new(doc, "meta", meta);
    json_object_set_new(doc, "requires", req);
    return doc;
}

static int compute_id(const oc_bundle_doc *d, char out[OC_BUNDLE_DIGEST_LEN], oc_error *err)
{
    json_t *doc = to_json(d, "", 0);
    size_t len = 0;
    char *text = doc ? oc_doc_text(doc, &len, err) : NULL;
    json_decref(doc);
    if (!text)
        return doc ? -1 : oom(err);
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(text, len, hex);
    free(text);
    snprintf(out, OC_BUNDLE_DIGEST_LEN, "sha256:%s", hex);
    return 0;
}

int oc_bundle_doc_seal(oc_bundle_doc *d, oc_error *err)
{
    d->bytes = 0;
    for (size_t i = 0; i < d->n_files; i++)
        d->bytes += d->files[i].size;
    return compute_id(d, d->id, err);
}

char *oc_bundle_doc_text(const oc_bundle_doc *d, unsigned part, size_t *len, oc_error *err)
{
    json_t *doc = to_json(d, d->id, part);
    if (!doc) {
        oom(err);
        return NULL;
    }
    char *text = oc_doc_text(doc, len, err);
    json_decref(doc);
    return text;
}

/* ---- parsing ---- */

typedef struct pctx {
    const char *what;
    oc_error *err;
} pctx;

static int bad(pctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(pctx *p, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    oc_error_set(p->err, OC_E_FORMAT, "%s: %s", p->what, msg);
    return -1;
}

static int get_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* A printable string of at most STRING_MAX bytes, or absent (NULL). -1
 * when present and not such a string. */
static int opt_str(json_t *o, const char *key, char **out)
{
    *out = NULL;
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    if (!s || strlen(s) > STRING_MAX || json_string_length(v) != strlen(s))
        return -1;
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return -1;
    return (*out = strdup(s)) ? 0 : -1;
}

static int digest_field(json_t *o, const char *key, char out[OC_BUNDLE_DIGEST_LEN])
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s || oc_digest_parse(s, NULL, NULL) != 0)
        return -1;
    snprintf(out, OC_BUNDLE_DIGEST_LEN, "%s", s);
    return 0;
}

static int parse_catalog(pctx *p, json_t *v, const char *ref, oc_bundle_catalog **out)
{
    *out = NULL;
    if (json_is_null(v))
        return 0;
    json_t *ours = json_object_get(v, "occystrap"), *tags = json_object_get(v, "repoTags");
    oc_bundle_catalog *c = calloc(1, sizeof *c);
    if (!c)
        return oom(p->err);
    *out = c;
    if (!json_is_object(v) || !json_is_object(ours) || !json_is_array(tags) ||
        json_array_size(tags) > REPO_TAGS_MAX)
        return bad(p, "image %s: \"catalog\" needs \"occystrap\" and \"repoTags\"", ref);
    if (opt_str(ours, "manifest_digest", &c->manifest_digest) != 0 || !c->manifest_digest ||
        oc_digest_parse(c->manifest_digest, NULL, NULL) != 0)
        return bad(p, "image %s: the catalog's manifest_digest is not a sha256 digest", ref);
    if (opt_str(ours, "registry", &c->registry) || opt_str(ours, "repository", &c->repository) ||
        opt_str(ours, "tag", &c->tag) || opt_str(ours, "index_digest", &c->index_digest) ||
        opt_str(ours, "platform", &c->platform) || opt_str(ours, "media_type", &c->media_type) ||
        opt_str(ours, "fetched_at", &c->fetched_at))
        return bad(p, "image %s: a field of the catalog's \"occystrap\" is not a short string",
                   ref);
    if (c->index_digest && oc_digest_parse(c->index_digest, NULL, NULL) != 0)
        return bad(p, "image %s: the catalog's index_digest is not a sha256 digest", ref);
    c->repo_tags = calloc(json_array_size(tags) + 1, sizeof *c->repo_tags);
    if (!c->repo_tags)
        return oom(p->err);
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        json_t *holder = json_pack("{s:O}", "t", t);
        int rc = holder ? opt_str(holder, "t", &c->repo_tags[i]) : -1;
        json_decref(holder);
        if (rc != 0 || !c->repo_tags[i])
            return bad(p, "image %s: repoTags[%zu] is not a short string", ref, i);
        c->n_repo_tags++;
    }
    return 0;
}

static int parse_images(pctx *p, oc_bundle_doc *d, json_t *images)
{
    oc_strmap *seen = oc_strmap_new(NULL);
    if (!seen)
        return oom(p->err);
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(images, i, v)
    {
        if (rc != 0)
            break;
        const char *ref = json_string_value(json_object_get(v, "ref"));
        json_t *desc = json_object_get(v, "descriptor");
        json_t *cat = json_object_get(v, "catalog");
        if (!ref || !json_is_object(desc) || !cat) {
            rc = bad(p, "image %zu needs a ref, a descriptor and a catalog (or null)", i + 1);
            break;
        }
        char shown[80];
        oc_excerpt(ref, strlen(ref), 60, shown, sizeof shown);
        /* The key index.json will keep it under: a ref name, or for a
         * referrer (a signature, an SBOM) IMAGE@DIGEST from our annotations. */
        char *named = oc_oci_descriptor_key(desc);
        int names_it = named && strcmp(named, ref) == 0;
        free(named);
        if (!names_it) {
            rc = bad(p, "image \"%s\": its descriptor does not name it (%s, or %s and %s)", shown,
                     OC_OCI_REF_NAME, OC_OCI_REFERRER_IMAGE, OC_OCI_REFERRER_SUBJECT);
            break;
        }
        if (oc_strmap_has(seen, ref)) {
            rc = bad(p, "image \"%s\" is listed twice", shown);
            break;
        }
        char *text = json_dumps(desc, JSON_COMPACT | JSON_SORT_KEYS);
        oc_bundle_image *im = text ? oc_bundle_doc_add_image(d, ref, text, p->err) : NULL;
        free(text);
        if (!im) {
            oc_error_prefix(p->err, "%s: image \"%s\"", p->what, shown);
            rc = -1;
            break;
        }
        if (oc_strmap_set(seen, ref, NULL) != 0) {
            rc = oom(p->err);
            break;
        }
        rc = parse_catalog(p, cat, shown, &im->catalog);
    }
    oc_strmap_free(seen);
    return rc;
}

/* "segments/sha256/<hex>/<20 digits>": the hex and the offset. */
static int segment_path(const char *path, char hex[OC_SHA256_HEX_LEN + 1], uint64_t *offset)
{
    const char *pre = "segments/sha256/";
    size_t pl = strlen(pre);
    if (strncmp(path, pre, pl) != 0 || strlen(path) != pl + OC_SHA256_HEX_LEN + 1 + 20 ||
        path[pl + OC_SHA256_HEX_LEN] != '/')
        return -1;
    char digest[OC_BUNDLE_DIGEST_LEN];
    snprintf(digest, sizeof digest, "sha256:%.*s", OC_SHA256_HEX_LEN, path + pl);
    if (oc_digest_parse(digest, hex, NULL) != 0)
        return -1;
    uint64_t v = 0;
    for (const char *c = path + pl + OC_SHA256_HEX_LEN + 1; *c; c++) {
        if (*c < '0' || *c > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*c - '0');
    }
    *offset = v;
    return 0;
}

typedef struct seg_state {
    uint64_t next; /* where the next segment must start */
    uint64_t size;
} seg_state;

static int parse_files(pctx *p, oc_bundle_doc *d, json_t *files)
{
    oc_strmap *paths = oc_strmap_new(NULL), *segs = oc_strmap_new(free);
    int rc = 0;
    if (!paths || !segs) {
        oc_strmap_free(paths);
        oc_strmap_free(segs);
        return oom(p->err);
    }
    size_t i;
    json_t *v;
    json_array_foreach(files, i, v)
    {
        const char *path = json_string_value(json_object_get(v, "path"));
        char digest[OC_BUNDLE_DIGEST_LEN];
        uint64_t size = 0, part = 0;
        char *mt = NULL;
        if (!path || strlen(path) > 200 || digest_field(v, "digest", digest) != 0 ||
            get_u64(v, "size", &size) != 0 || get_u64(v, "part", &part) != 0 ||
            opt_str(v, "mediaType", &mt) != 0) {
            rc = bad(p, "file %zu needs a path, a sha256 digest, a size and a part", i + 1);
            break;
        }
        char shown[300];
        oc_excerpt(path, strlen(path), 200, shown, sizeof shown);
        oc_bundle_file *f = oc_bundle_doc_add_file(d, path, p->err);
        if (!f) {
            free(mt);
            rc = -1;
            break;
        }
        f->media_type = mt;
        snprintf(f->digest, sizeof f->digest, "%s", digest);
        f->size = size;
        if (part < 1 || part > d->parts) {
            rc = bad(p, "%s: part %" PRIu64 " is not one of the %u parts", shown, part, d->parts);
            break;
        }
        f->part = (unsigned)part;
        if (oc_strmap_has(paths, path)) {
            rc = bad(p, "%s is listed twice", shown);
            break;
        }
        char hex[OC_SHA256_HEX_LEN + 1];
        uint64_t offset = 0;
        if (strncmp(path, "blobs/sha256/", 13) == 0) {
            if (strlen(path) != 13 + OC_SHA256_HEX_LEN || strcmp(path + 13, digest + 7) != 0) {
                rc = bad(p, "%s: a blob's name must be its digest (%s)", shown, digest);
                break;
            }
            memcpy(f->blob, f->digest, sizeof f->blob);
            f->blob_size = size;
            if (oc_strmap_has(segs, path + 13)) {
                rc = bad(p, "%s is also carried in segments", shown);
                break;
            }
            if (oc_strmap_set(paths, path + 13, NULL) != 0) { /* the blob, by hex */
                rc = oom(p->err);
                break;
            }
        } else if (segment_path(path, hex, &offset) == 0) {
            uint64_t bsize = 0, off = 0;
            char blob[OC_BUNDLE_DIGEST_LEN];
            if (digest_field(v, "blob", blob) != 0 || get_u64(v, "blobSize", &bsize) != 0 ||
                get_u64(v, "offset", &off) != 0 || strcmp(blob + 7, hex) != 0 || off != offset) {
                rc = bad(p, "%s: a segment needs its blob, blobSize and offset, as its path says",
                         shown);
                break;
            }
            if (oc_strmap_has(paths, hex)) {
                rc = bad(p, "%s: its blob is also carried whole", shown);
                break;
            }
            seg_state *st = oc_strmap_get(segs, hex);
            if (!st) {
                st = calloc(1, sizeof *st);
                if (!st || oc_strmap_set(segs, hex, st) != 0) {
                    free(st);
                    rc = oom(p->err);
                    break;
                }
                st->size = bsize;
            }
            if (st->size != bsize || off != st->next || size == 0 || size > bsize - off) {
                rc = bad(p, "%s: segments of blob %s do not follow each other in order", shown,
                         blob);
                break;
            }
            st->next = off + size;
            f->segment = 1;
            memcpy(f->blob, blob, sizeof f->blob);
            f->blob_size = bsize;
            f->offset = off;
        } else {
            rc = bad(p, "\"%s\" is not a name a bundle file may have", shown);
            break;
        }
        if (oc_strmap_set(paths, path, NULL) != 0) {
            rc = oom(p->err);
            break;
        }
    }
    /* every segmented blob whole */
    for (size_t k = 0; rc == 0 && k < d->n_files; k++) {
        const oc_bundle_file *f = &d->files[k];
        const seg_state *st = f->segment ? oc_strmap_get(segs, f->blob + 7) : NULL;
        if (st && st->next != st->size)
            rc = bad(p, "the segments of blob %s cover %" PRIu64 " of its %" PRIu64 " bytes",
                     f->blob, st->next, st->size);
    }
    oc_strmap_free(paths);
    oc_strmap_free(segs);
    return rc;
}

static int parse_meta(pctx *p, oc_bundle_doc *d, json_t *meta)
{
    if (json_array_size(meta) != OC_BUNDLE_META_N)
        return bad(p, "\"meta\" must list %s, oci-layout and index.json", OC_BUNDLE_INVENTORY_NAME);
    for (int i = 0; i < OC_BUNDLE_META_N; i++) {
        json_t *v = json_array_get(meta, (size_t)i);
        const char *path = json_string_value(json_object_get(v, "path"));
        if (!path || strcmp(path, oc_bundle_meta_names[i]) != 0 ||
            digest_field(v, "digest", d->meta[i].digest) != 0 ||
            get_u64(v, "size", &d->meta[i].size) != 0)
            return bad(p, "meta %d must be %s with its digest and size", i + 1,
                       oc_bundle_meta_names[i]);
    }
    return 0;
}

static int parse_since(pctx *p, oc_bundle_doc *d, json_t *since)
{
    if (json_is_null(since))
        return 0;
    d->has_since = 1;
    if (!json_is_object(since) || digest_field(since, "digest", d->since_digest) != 0 ||
        get_u64(since, "blobs", &d->since_blobs) != 0 ||
        get_u64(since, "images", &d->since_images) != 0 ||
        opt_str(since, "created", &d->since_created) != 0 ||
        opt_str(since, "from", &d->since_from) != 0)
        return bad(p, "\"since\" needs the inventory's digest, created, from, blobs and images");
    return 0;
}

oc_bundle_doc *oc_bundle_doc_parse(const char *text, size_t len, const char *what, oc_error *err)
{
    pctx p = {what, err};
    json_t *doc = oc_doc_parse(text, len, what, err);
    if (!doc)
        return NULL;
    oc_bundle_doc *d = oc_bundle_doc_new();
    const char *mt = json_string_value(json_object_get(doc, "mediaType"));
    json_t *version = json_object_get(doc, "version");
    const char *created = json_string_value(json_object_get(doc, "created"));
    json_t *files = json_object_get(doc, "files"), *images = json_object_get(doc, "images");
    json_t *meta = json_object_get(doc, "meta"), *req = json_object_get(doc, "requires");
    json_t *since = json_object_get(doc, "since");
    uint64_t part = 0, parts = 0, bytes = 0;
    int rc = -1;
    if (!d) {
        oom(err);
        goto out;
    }
    if (!mt || strcmp(mt, OC_BUNDLE_MEDIA_TYPE) != 0 || !json_is_integer(version)) {
        bad(&p, "not an occystrap bundle manifest (mediaType %s, version)", OC_BUNDLE_MEDIA_TYPE);
        goto out;
    }
    if (json_integer_value(version) != OC_BUNDLE_VERSION) {
        bad(&p, "a bundle of version %lld; this occystrap reads version %d (a newer one made it)",
            (long long)json_integer_value(version), OC_BUNDLE_VERSION);
        goto out;
    }
    if (digest_field(doc, "id", d->id) != 0 || !created || strlen(created) >= sizeof d->created ||
        get_u64(doc, "part", &part) != 0 || get_u64(doc, "parts", &parts) != 0 ||
        get_u64(doc, "bytes", &bytes) != 0 || parts < 1 || parts > PARTS_MAX || part < 1 ||
        part > parts || !json_is_array(files) || !json_is_array(images) || !json_is_array(meta) ||
        !json_is_array(req) || !since || opt_str(doc, "creator", &d->creator) != 0) {
        bad(&p, "needs id, created, creator, part (1..parts), parts, bytes, files, images, meta, "
                "requires and since");
        goto out;
    }
    snprintf(d->created, sizeof d->created, "%s", created);
    d->part = (unsigned)part;
    d->parts = (unsigned)parts;
    if (parse_since(&p, d, since) != 0 || parse_meta(&p, d, meta) != 0 ||
        parse_images(&p, d, images) != 0 || parse_files(&p, d, files) != 0)
        goto out;
    size_t i;
    json_t *v;
    json_array_foreach(req, i, v)
    {
        char dg[OC_BUNDLE_DIGEST_LEN];
        uint64_t size;
        if (digest_field(v, "digest", dg) != 0 || get_u64(v, "size", &size) != 0) {
            bad(&p, "requires %zu needs a sha256 digest and a size", i + 1);
            goto out;
        }
        if (oc_bundle_doc_add_require(d, dg, size, err) != 0)
            goto out;
    }
    uint64_t sum = 0;
    for (size_t k = 0; k < d->n_files; k++)
        sum += d->files[k].size;
    if (sum != bytes) {
        bad(&p, "\"bytes\" says %" PRIu64 ", its files add up to %" PRIu64, bytes, sum);
        goto out;
    }
    d->bytes = bytes;
    char id[OC_BUNDLE_DIGEST_LEN];
    if (compute_id(d, id, err) != 0)
        goto out;
    if (strcmp(id, d->id) != 0) {
        bad(&p, "its id %s is not that of its content (%s): the manifest was changed", d->id, id);
        goto out;
    }
    rc = 0;
out:
    json_decref(doc);
    if (rc != 0) {
        oc_bundle_doc_free(d);
        return NULL;
    }
    return d;
}
