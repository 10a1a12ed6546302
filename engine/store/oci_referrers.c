/* oci_referrers.c - the referrers of the store's images (see
 * oci_referrers.h). */
#include "engine/store/oci_referrers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/image/limits.h"
#include "engine/image/manifest.h"
#include "engine/store/oci_layout.h"
#include "engine/store/oci_read.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/grow.h"
#include "io/strmap.h"

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

int oc_oci_tag_schema(const char *tag, char subject[72], const char **suffix)
{
    static const char *const suffixes[] = {"", ".sig", ".att", ".sbom"};
    if (strncmp(tag, "sha256-", 7) != 0 || strlen(tag) < 7 + OC_SHA256_HEX_LEN)
        return 0;
    const char *hex = tag + 7, *rest = hex + OC_SHA256_HEX_LEN;
    for (size_t i = 0; i < OC_SHA256_HEX_LEN; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return 0;
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        if (strcmp(rest, suffixes[i]) != 0)
            continue;
        snprintf(subject, 72, "sha256:%.*s", OC_SHA256_HEX_LEN, hex);
        if (suffix)
            *suffix = suffixes[i];
        return 1;
    }
    return 0;
}

void oc_oci_referrer_free(oc_oci_referrer *r)
{
    if (!r)
        return;
    free(r->key);
    free(r->image);
    free(r->tag);
    free(r->subject);
    free(r->digest);
    free(r->media_type);
    free(r->artifact_type);
    memset(r, 0, sizeof *r);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int oc_oci_referrer_parse(const char *key, const char *text, oc_oci_referrer *r, oc_error *err)
{
    memset(r, 0, sizeof *r);
    json_error_t jerr;
    json_t *d = json_loads(text, 0, &jerr);
    json_t *ann = json_object_get(d, "annotations");
    const char *image = json_string_value(json_object_get(ann, OC_OCI_REFERRER_IMAGE));
    const char *subject = json_string_value(json_object_get(ann, OC_OCI_REFERRER_SUBJECT));
    const char *ref = json_string_value(json_object_get(ann, OC_OCI_REF_NAME));
    const char *digest = json_string_value(json_object_get(d, "digest"));
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    json_t *size = json_object_get(d, "size");
    char hex[OC_SHA256_HEX_LEN + 1];
    if (!image || !subject || !digest || !mt || !json_is_integer(size) ||
        oc_digest_parse(subject, hex, NULL) != 0 || oc_digest_parse(digest, hex, NULL) != 0) {
        json_decref(d);
        return 0;
    }
    const char *tag = NULL;
    if (ref) { /* NAME:TAG of the tag schema */
        size_t n = strlen(image);
        if (strncmp(ref, image, n) != 0 || ref[n] != ':') {
            json_decref(d);
            return 0;
        }
        tag = ref + n + 1;
    }
    r->key = strdup(key);
    r->image = strdup(image);
    r->tag = dup_or_null(tag);
    r->subject = strdup(subject);
    r->digest = strdup(digest);
    r->media_type = strdup(mt);
    r->artifact_type = dup_or_null(json_string_value(json_object_get(d, "artifactType")));
    r->size = (uint64_t)json_integer_value(size);
    int ok = r->key && r->image && r->subject && r->digest && r->media_type && (!tag || r->tag) &&
             (!json_object_get(d, "artifactType") || r->artifact_type);
    json_decref(d);
    if (!ok) {
        oc_oci_referrer_free(r);
        return oom(err);
    }
    return 1;
}

/* ---- the set ---- */

typedef struct idx_list {
    size_t *v;
    size_t n, cap;
} idx_list;

struct oc_oci_referrers {
    oc_oci_referrer *v;
    size_t n, cap;
    oc_strmap *by_image; /* NAME -> idx_list of its referrers */
    oc_strmap *subjects; /* "NAME\nDIGEST" of every manifest of NAME's tags */
};

static void idx_list_free(void *p)
{
    idx_list *l = p;
    if (l)
        free(l->v);
    free(l);
}

oc_oci_referrers *oc_oci_referrers_new(void)
{
    oc_oci_referrers *rs = calloc(1, sizeof *rs);
    if (rs &&
        (!(rs->by_image = oc_strmap_new(idx_list_free)) || !(rs->subjects = oc_strmap_new(NULL)))) {
        oc_strmap_free(rs->by_image);
        free(rs);
        rs = NULL;
    }
    return rs;
}

void oc_oci_referrers_free(oc_oci_referrers *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++)
        oc_oci_referrer_free(&rs->v[i]);
    free(rs->v);
    oc_strmap_free(rs->by_image);
    oc_strmap_free(rs->subjects);
    free(rs);
}

static char *pair(const char *image, const char *digest)
{
    char *k = NULL;
    return asprintf(&k, "%s\n%s", image, digest) < 0 ? NULL : k;
}

static int add_parsed(oc_oci_referrers *rs, oc_oci_referrer r, oc_error *err);

int oc_oci_referrers_add(oc_oci_referrers *rs, const char *key, const char *text, oc_error *err)
{
    oc_oci_referrer r;
    int got = oc_oci_referrer_parse(key, text, &r, err);
    if (got <= 0)
        return got;
    return add_parsed(rs, r, err);
}

int oc_oci_referrers_add_fields(oc_oci_referrers *rs, const char *key, const char *image,
                                const char *tag, const char *subject, const char *digest,
                                const char *media_type, const char *artifact_type, uint64_t size,
                                oc_error *err)
{
    oc_oci_referrer r = {.key = strdup(key),
                         .image = strdup(image),
                         .tag = dup_or_null(tag),
                         .subject = strdup(subject),
                         .digest = strdup(digest),
                         .media_type = strdup(media_type),
                         .artifact_type = dup_or_null(artifact_type),
                         .size = size};
    if (!r.key || !r.image || (tag && !r.tag) || !r.subject || !r.digest || !r.media_type ||
        (artifact_type && !r.artifact_type)) {
        oc_oci_referrer_free(&r);
        return oom(err);
    }
    return add_parsed(rs, r, err);
}

static int add_parsed(oc_oci_referrers *rs, oc_oci_referrer r, oc_error *err)
{
    oc_oci_referrer *grown = oc_grow(rs->v, &rs->cap, rs->n + 1, sizeof *grown, 16);
    idx_list *l = grown ? oc_strmap_get(rs->by_image, r.image) : NULL;
    if (grown)
        rs->v = grown;
    if (grown && !l) {
        l = calloc(1, sizeof *l);
        if (l && oc_strmap_set(rs->by_image, r.image, l) != 0) {
            free(l);
            l = NULL;
        }
    }
    size_t *v = l ? oc_grow(l->v, &l->cap, l->n + 1, sizeof *v, 4) : NULL;
    if (!v) {
        oc_oci_referrer_free(&r);
        return oom(err);
    }
    l->v = v;
    l->v[l->n++] = rs->n;
    rs->v[rs->n++] = r;
    return 1;
}

int oc_oci_referrers_subject(oc_oci_referrers *rs, const char *image, const char *digest,
                             oc_error *err)
{
    char *k = pair(image, digest);
    int rc = k && oc_strmap_set(rs->subjects, k, (void *)1) == 0 ? 0 : oom(err);
    free(k);
    return rc;
}

typedef struct bfs {
    const char **digests; /* the frontier and everything reached, in order */
    int *depths;
    size_t n, cap;
    oc_strmap *seen; /* digests in the list */
} bfs;

static int bfs_push(bfs *b, const char *digest, int depth)
{
    if (oc_strmap_has(b->seen, digest))
        return 0;
    const char **d = oc_grow(b->digests, &b->cap, b->n + 1, sizeof *d, 8);
    if (!d)
        return -1;
    b->digests = d;
    size_t cap = b->cap;
    int *dp = realloc(b->depths, cap * sizeof *dp);
    if (!dp)
        return -1;
    b->depths = dp;
    if (oc_strmap_set(b->seen, digest, NULL) != 0)
        return -1;
    b->digests[b->n] = digest;
    b->depths[b->n++] = depth;
    return 0;
}

/* Breadth-first from the digests: fn (if any) for each referrer of image
 * reached; live and depth marked when mark. */
static int walk(oc_oci_referrers *rs, const char *image, const char *const *digests, size_t n,
                oc_oci_referrer_visit fn, void *opaque, int mark)
{
    const idx_list *l = oc_strmap_get(rs->by_image, image);
    if (!l)
        return 0;
    bfs b = {.seen = oc_strmap_new(NULL)};
    char *used = calloc(l->n + 1, 1);
    int rc = b.seen && used ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = bfs_push(&b, digests[i], 0);
    for (size_t at = 0; rc == 0 && at < b.n; at++) {
        for (size_t k = 0; rc == 0 && k < l->n; k++) {
            oc_oci_referrer *r = &rs->v[l->v[k]];
            if (used[k] || strcmp(r->subject, b.digests[at]) != 0)
                continue;
            used[k] = 1;
            int depth = b.depths[at] + 1;
            if (mark && (!r->live || depth < r->depth)) {
                r->live = 1;
                r->depth = depth;
            }
            if (fn) {
                oc_oci_referrer copy = *r;
                copy.depth = depth;
                rc = fn(opaque, &copy, depth);
                if (rc != 0)
                    break;
            }
            if (bfs_push(&b, r->digest, depth) != 0)
                rc = -1;
        }
    }
    free(used);
    free(b.digests);
    free(b.depths);
    oc_strmap_free(b.seen);
    return rc;
}

int oc_oci_referrers_reach(const oc_oci_referrers *rs, const char *image,
                           const char *const *digests, size_t n, oc_oci_referrer_visit fn,
                           void *opaque)
{
    return walk((oc_oci_referrers *)rs, image, digests, n, fn, opaque, 0);
}

typedef struct resolve_ctx {
    oc_oci_referrers *rs;
    int rc;
} resolve_ctx;

static void resolve_one(const char *key, void *value, void *opaque)
{
    resolve_ctx *c = opaque;
    (void)value;
    const char *nl = strchr(key, '\n');
    if (!nl || c->rc != 0)
        return;
    char *image = strndup(key, (size_t)(nl - key));
    const char *digest = nl + 1;
    if (!image || walk(c->rs, image, &digest, 1, NULL, NULL, 1) != 0)
        c->rc = -1;
    free(image);
}

int oc_oci_referrers_resolve(oc_oci_referrers *rs, oc_error *err)
{
    for (size_t i = 0; i < rs->n; i++)
        rs->v[i].live = rs->v[i].depth = 0;
    resolve_ctx c = {.rs = rs};
    oc_strmap_foreach(rs->subjects, resolve_one, &c);
    return c.rc == 0 ? 0 : oom(err);
}

size_t oc_oci_referrers_count(const oc_oci_referrers *rs)
{
    return rs->n;
}

const oc_oci_referrer *oc_oci_referrers_at(const oc_oci_referrers *rs, size_t i)
{
    return i < rs->n ? &rs->v[i] : NULL;
}

/* ---- from index.json ---- */

typedef struct collect_ctx {
    oc_oci_referrers *rs;
    const oc_store *s;
    oc_error *err;
} collect_ctx;

/* The children of index digest that the store holds, as subjects of image. */
static int index_children(collect_ctx *c, const char *image, const char *media_type,
                          const char *digest)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(digest, hex, NULL) != 0)
        return 0;
    char *path = oc_store_oci_blob_path(c->s, hex);
    oc_error ignored;
    size_t len = 0;
    char *body = path ? oc_read_file(path, OC_MANIFEST_MAX, &len, &ignored) : NULL;
    free(path);
    oc_manifest m;
    int rc = 0;
    if (body && oc_manifest_parse(&m, media_type, body, len, &ignored) == 0) {
        for (size_t i = 0; rc == 0 && i < m.n_manifests; i++) {
            char chex[OC_SHA256_HEX_LEN + 1];
            if (oc_digest_parse(m.manifests[i].digest, chex, NULL) == 0 &&
                oc_store_oci_have(c->s, chex, (uint64_t)m.manifests[i].size))
                rc = oc_oci_referrers_subject(c->rs, image, m.manifests[i].digest, c->err);
        }
        oc_manifest_free(&m);
    }
    free(body);
    return rc;
}

static int collect(void *opaque, const char *key, const char *digest, const char *text)
{
    collect_ctx *c = opaque;
    if (!key)
        return 0;
    int got = oc_oci_referrers_add(c->rs, key, text, c->err);
    if (got != 0)
        return got < 0 ? -1 : 0;
    /* an image's tag: its manifest (and an index's children) are subjects */
    char *name = NULL, *tag = NULL, *mt = NULL, *dg = NULL;
    uint64_t size = 0;
    oc_error ignored;
    if (strchr(key, '@') || oc_oci_split_ref_name(key, &name, &tag) != 0)
        return 0; /* not a NAME:TAG of ours */
    int rc = oc_oci_referrers_subject(c->rs, name, digest, c->err);
    if (rc == 0 && c->s && oc_oci_descriptor_parse(text, &mt, &dg, &size, &ignored) == 0 &&
        (strcmp(mt, OC_MT_OCI_INDEX) == 0 || strcmp(mt, OC_MT_DOCKER_LIST) == 0))
        rc = index_children(c, name, mt, dg);
    free(name);
    free(tag);
    free(mt);
    free(dg);
    return rc;
}

oc_oci_referrers *oc_oci_referrers_of_index(const oc_oci_index *x, const oc_store *s, oc_error *err)
{
    oc_oci_referrers *rs = oc_oci_referrers_new();
    if (!rs) {
        oom(err);
        return NULL;
    }
    collect_ctx c = {.rs = rs, .s = s, .err = err};
    if (oc_oci_index_foreach(x, collect, &c) != 0 || oc_oci_referrers_resolve(rs, err) != 0) {
        if (err->code == OC_OK)
            oom(err);
        oc_oci_referrers_free(rs);
        return NULL;
    }
    return rs;
}
