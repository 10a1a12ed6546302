/* mirror_referrers.c - an image's referrers into the store (see
 * mirror_referrers.h).
 *
 * A fetch (rjob) is a set of small asynchronous steps, each holding the job
 * (pending counts them); the job ends when the last step has. The steps:
 *   explore(S, depth)   find the referrers of manifest S: the API (after the
 *                       registry's first answer decided whether it has it),
 *                       the tag schema from the repository's tag list
 *   listed(desc)        a referrer the API or a fallback index names: known
 *                       (explore it), or fetch it (doc_fetch), then explore
 *   tag_schema(tag)     HEAD the tag; known at that digest, or fetch it
 *   doc_fetch           a manifest (or index) by digest, checked, its blobs
 *                       (and an index's children) fetched and placed; then
 *                       its bytes placed and its descriptor queued (group)
 * A group counts what a descriptor reaches; when the count falls to zero
 * and nothing failed, the document's bytes are placed and the descriptor
 * queued. */
#include "engine/mirror_referrers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/image/limits.h"
#include "engine/image/manifest.h"
#include "engine/registry/blobfetch.h"
#include "engine/registry/resolve.h"
#include "engine/registry/tags.h"
#include "engine/store/oci_index.h"
#include "engine/store/oci_layout.h"
#include "engine/store/oci_referrers.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/strmap.h"

#define API_UNKNOWN 0
#define API_PROBING 1
#define API_YES 2
#define API_NO 3

typedef struct waiter {
    void (*ready)(void *opaque);
    void *opaque;
    struct waiter *next;
} waiter;

/* Does a registry answer the referrers API? */
typedef struct api_state {
    int state;
    waiter *waiting;
} api_state;

/* A repository's tags, listed once per run. */
typedef struct tag_list {
    int state; /* 0 not asked, 1 listing, 2 listed, 3 failed */
    oc_strmap *tags;
    oc_error err;
    waiter *waiting;
} tag_list;

struct oc_referrers_ctx {
    oc_engine *e;
    oc_store *store;
    oc_catalog_batch *view;
    oc_referrers_opts o;
    char **types;
    oc_strmap *apis; /* registry host -> api_state */
    oc_strmap *tags; /* "host/repo" -> tag_list */
    unsigned seq;
};

typedef struct rjob {
    oc_referrers_ctx *c;
    oc_registry *r;
    char *host, *repo, *name;
    size_t pending;
    size_t stored, known;
    oc_error err;    /* the first failure */
    oc_strmap *seen; /* manifests explored, referrers taken up */
    oc_referrers_done done;
    void *opaque;
} rjob;

/* ---- the shared state ---- */

static void api_free(void *p)
{
    free(p);
}

static void tag_list_free(void *p)
{
    tag_list *t = p;
    if (t)
        oc_strmap_free(t->tags);
    free(t);
}

oc_referrers_ctx *oc_referrers_ctx_new(oc_engine *e, oc_store *store, oc_catalog_batch *view,
                                       const oc_referrers_opts *o, oc_error *err)
{
    oc_referrers_ctx *c = calloc(1, sizeof *c);
    if (!c)
        goto nomem;
    c->e = e;
    c->store = store;
    c->view = view;
    c->o = *o;
    if (!c->o.depth)
        c->o.depth = OC_REFERRERS_DEPTH_DEFAULT;
    c->types = calloc(o->n_types + 1, sizeof *c->types);
    c->apis = oc_strmap_new(api_free);
    c->tags = oc_strmap_new(tag_list_free);
    if (!c->types || !c->apis || !c->tags)
        goto nomem;
    for (size_t i = 0; i < o->n_types; i++)
        if (!(c->types[i] = strdup(o->types[i])))
            goto nomem;
    c->o.types = (const char *const *)c->types;
    return c;
nomem:
    oc_referrers_ctx_free(c);
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return NULL;
}

void oc_referrers_ctx_free(oc_referrers_ctx *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->types && c->types[i]; i++)
        free(c->types[i]);
    free(c->types);
    oc_strmap_free(c->apis);
    oc_strmap_free(c->tags);
    free(c);
}

static void wake(waiter **list)
{
    waiter *w = *list;
    *list = NULL;
    while (w) {
        waiter *next = w->next;
        w->ready(w->opaque);
        free(w);
        w = next;
    }
}

static int wait_on(waiter **list, void (*ready)(void *), void *opaque)
{
    waiter *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->ready = ready;
    w->opaque = opaque;
    w->next = *list;
    *list = w;
    return 0;
}

/* ---- the job ---- */

static void job_fail(rjob *j, const oc_error *err)
{
    if (j->err.code == OC_OK)
        j->err = *err;
    oc_engine_log(j->c->e, "referrers of %s: %s", j->name, err->msg);
}

static void job_nomem(rjob *j)
{
    oc_error err;
    oc_error_set(&err, OC_E_NOMEM, "out of memory");
    job_fail(j, &err);
}

static void job_free(rjob *j)
{
    oc_strmap_free(j->seen);
    free(j->host);
    free(j->repo);
    free(j->name);
    free(j);
}

/* One step of the job is over. */
static void step_done(rjob *j)
{
    if (--j->pending > 0)
        return;
    j->done(j->opaque, j->stored, j->known, j->err.code == OC_OK ? NULL : &j->err);
    job_free(j);
}

/* What a step about one subject (the API's answer, exploring, the tag
 * schema's tag list) carries first: the job it holds, the subject, its
 * depth. */
typedef struct subject_step {
    rjob *j;
    char *subject;
    unsigned depth;
} subject_step;

/* A step of size bytes (a subject_step first), holding the job; NULL (the
 * job failed) when out of memory. */
static void *step_new(rjob *j, size_t size, const char *subject, unsigned depth)
{
    subject_step *s = calloc(1, size);
    if (s && (s->subject = strdup(subject))) {
        s->j = j;
        s->depth = depth;
        j->pending++;
        return s;
    }
    free(s);
    job_nomem(j);
    return NULL;
}

/* The step is over: freed, its hold on the job released. */
static void step_end(subject_step *s)
{
    rjob *j = s->j;
    free(s->subject);
    free(s);
    step_done(j);
}

static int type_wanted(const rjob *j, const char *type)
{
    if (!j->c->o.n_types)
        return 1;
    for (size_t i = 0; type && i < j->c->o.n_types; i++)
        if (strcmp(j->c->o.types[i], type) == 0)
            return 1;
    return 0;
}

static int is_known(const rjob *j, const char *key, const char *digest)
{
    const char *have = oc_oci_index_digest(oc_catalog_batch_oci_view(j->c->view), key);
    return have && strcmp(have, digest) == 0;
}

/* "once": the first time key is met in this job. */
static int first_time(rjob *j, const char *what, const char *digest)
{
    char key[160];
    snprintf(key, sizeof key, "%s %s", what, digest);
    if (oc_strmap_has(j->seen, key))
        return 0;
    if (oc_strmap_set(j->seen, key, NULL) != 0) {
        job_nomem(j);
        return 0;
    }
    return 1;
}

static void explore(rjob *j, const char *subject, unsigned depth);

/* ---- a group: a descriptor queued once what it reaches is in place ---- */

typedef struct group {
    rjob *j;
    size_t count;
    int failed;
    char *key, *text; /* the descriptor, queued at the end */
    char *body;       /* the document's bytes, placed at the end */
    size_t len;
    char hex[OC_SHA256_HEX_LEN + 1];
    char *then_explore; /* a digest to explore once placed (the referrer itself) */
    unsigned depth;
    int is_referrer;      /* counts as stored (a referrer, a cosign tag; not an index) */
    char *expect_subject; /* a referrer's manifest must name this subject (if any) */
    struct group *notify; /* a fallback index's group waiting for this referrer */
} group;

static void group_free(group *g)
{
    free(g->key);
    free(g->text);
    free(g->body);
    free(g->then_explore);
    free(g->expect_subject);
    free(g);
}

static void group_settle(group *g)
{
    if (--g->count > 0)
        return;
    rjob *j = g->j;
    group *notify = g->notify;
    oc_error err;
    oc_error_clear(&err);
    if (!g->failed) {
        if (oc_store_oci_put_bytes(j->c->store, g->hex, g->body, g->len, &err) != 0 ||
            j->c->o.queue(j->c->o.queue_opaque, g->key, g->text, &err) != 0) {
            job_fail(j, &err);
        } else {
            j->stored += g->is_referrer;
            oc_engine_log(j->c->e, "referrers of %s: %s in the store", j->name, g->key);
            if (g->then_explore)
                explore(j, g->then_explore, g->depth + 1);
        }
    }
    if (notify && g->failed)
        notify->failed = 1; /* the fallback index is kept only with what it lists */
    group_free(g);
    if (notify)
        group_settle(notify);
    step_done(j);
}

/* ---- blobs ---- */

typedef struct blob_op {
    group *g;
    char hex[OC_SHA256_HEX_LEN + 1];
    char *path;
    uint64_t size;
    char *what;
} blob_op;

static void on_blob(void *opaque, const oc_error *err)
{
    blob_op *b = opaque;
    rjob *j = b->g->j;
    oc_error e;
    oc_error_clear(&e);
    if (err)
        e = *err;
    else
        (void)oc_store_oci_put_file(j->c->store, b->hex, b->path, b->size, &e);
    if (e.code != OC_OK) {
        oc_error_prefix(&e, "%s", b->what);
        job_fail(j, &e);
        b->g->failed = 1;
    }
    group_settle(b->g);
    free(b->path);
    free(b->what);
    free(b);
}

/* A blob the document needs, unless the store has it. */
static void need_blob(group *g, const oc_descriptor *d, const char *what)
{
    rjob *j = g->j;
    char hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(d->digest, hex, NULL) != 0 || d->size < 0 ||
        oc_store_oci_have(j->c->store, hex, (uint64_t)d->size))
        return;
    blob_op *b = calloc(1, sizeof *b);
    oc_error err;
    oc_error_clear(&err);
    if (!b ||
        asprintf(&b->path, "%s/referrer-%u", oc_store_run_dir(j->c->store), ++j->c->seq) < 0 ||
        asprintf(&b->what, "%s", what) < 0) {
        if (b)
            free(b->path);
        free(b);
        job_nomem(j);
        g->failed = 1;
        return;
    }
    memcpy(b->hex, hex, sizeof hex);
    b->size = (uint64_t)d->size;
    b->g = g;
    g->count++;
    if (oc_blob_fetch(j->r, j->repo, d->digest, b->size, b->path, oc_store_run_dir(j->c->store),
                      on_blob, b, &err) != 0) {
        g->count--;
        oc_error_prefix(&err, "%s", what);
        job_fail(j, &err);
        g->failed = 1;
        free(b->path);
        free(b->what);
        free(b);
    }
}

/* ---- documents ---- */

static void doc_fetch(rjob *j, group *parent, const char *digest, int64_t size, const char *what,
                      group *g_for_top);

typedef struct doc_op {
    rjob *j;
    group *g; /* the group this document completes (its own, or its parent's child) */
    char *digest;
    int64_t size;
    char *what;
    int top; /* the group is this document's own */
} doc_op;

/* What an image manifest or an index reaches, into group g. */
static void doc_reaches(doc_op *d, const oc_manifest *m)
{
    if (m->kind == OC_MANIFEST_IMAGE) {
        need_blob(d->g, &m->config, d->what);
        for (size_t i = 0; i < m->n_layers; i++)
            need_blob(d->g, &m->layers[i], d->what);
        return;
    }
    for (size_t i = 0; i < m->n_manifests; i++) /* an index: its manifests, one level */
        doc_fetch(d->j, d->g, m->manifests[i].digest, m->manifests[i].size, d->what, NULL);
}

static void on_doc(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                   const oc_error *call_err)
{
    doc_op *d = opaque;
    rjob *j = d->j;
    oc_error err;
    oc_error_clear(&err);
    char hex[OC_SHA256_HEX_LEN + 1], want[OC_SHA256_HEX_LEN + 1];
    oc_manifest m;
    int parsed = 0;
    if (call_err) {
        err = *call_err;
    } else {
        oc_sha256_buf_hex(body, len, hex);
        if (oc_digest_parse(d->digest, want, &err) == 0 && strcmp(hex, want) != 0)
            oc_error_set(&err, OC_E_DIGEST, "manifest %s: its bytes hash to sha256:%s", d->digest,
                         hex);
        else if (err.code == OC_OK && d->size >= 0 && (size_t)d->size != len)
            oc_error_set(&err, OC_E_DIGEST, "manifest %s: %zu bytes, not the %" PRId64 " listed",
                         d->digest, len, d->size);
        else if (err.code == OC_OK &&
                 oc_manifest_parse(&m, info->content_type, body, len, &err) == 0)
            parsed = 1;
    }
    if (parsed && d->top && d->g->expect_subject) {
        /* a referrer names its subject itself */
        json_t *doc = json_loadb(body, len, 0, NULL);
        const char *named =
            json_string_value(json_object_get(json_object_get(doc, "subject"), "digest"));
        if (named && strcmp(named, d->g->expect_subject) != 0)
            oc_error_set(&err, OC_E_FORMAT, "manifest %s refers to %s, not to %s", d->digest, named,
                         d->g->expect_subject);
        json_decref(doc);
    }
    if (err.code != OC_OK) {
        oc_error_prefix(&err, "%s", d->what);
        job_fail(j, &err);
        d->g->failed = 1;
    } else if (d->top && !(d->g->body = malloc(len ? len : 1))) {
        job_nomem(j);
        d->g->failed = 1;
    } else if (d->top) {
        /* the group's document: its bytes are placed once all it reaches is */
        memcpy(d->g->body, body, len);
        d->g->len = len;
        memcpy(d->g->hex, hex, sizeof hex);
        doc_reaches(d, &m);
    } else if (oc_store_oci_put_bytes(j->c->store, hex, body, len, &err) != 0) {
        /* an index's manifest: placed now (nothing names it before the
         * index's descriptor), its blobs counted into the index's group */
        job_fail(j, &err);
        d->g->failed = 1;
    } else {
        doc_reaches(d, &m);
    }
    if (parsed)
        oc_manifest_free(&m);
    group_settle(d->g);
    free(d->digest);
    free(d->what);
    free(d);
}

/* Fetch a manifest by digest into parent (a child of an index: top NULL)
 * or as the document of group top. */
static void doc_fetch(rjob *j, group *parent, const char *digest, int64_t size, const char *what,
                      group *top)
{
    doc_op *d = calloc(1, sizeof *d);
    oc_error err;
    oc_error_clear(&err);
    group *g = top ? top : parent;
    if (!d || !(d->digest = strdup(digest)) || !(d->what = strdup(what))) {
        if (d)
            free(d->digest);
        free(d);
        job_nomem(j);
        g->failed = 1;
        return;
    }
    d->j = j;
    d->g = g;
    d->size = size;
    d->top = top != NULL;
    g->count++;
    if (oc_registry_fetch_small(j->r, j->repo, "manifests", digest, OC_MANIFEST_ACCEPT,
                                OC_MANIFEST_MAX, on_doc, d, &err) != 0) {
        oc_error_prefix(&err, "%s", what);
        job_fail(j, &err);
        g->failed = 1;
        g->count--;
        free(d->digest);
        free(d->what);
        free(d);
    }
}

/* A new group for a descriptor: the caller adds what it reaches, then
 * settles its own hold. */
static group *group_new(rjob *j, const char *key, const char *text, const char *explore_digest,
                        unsigned depth, int is_referrer)
{
    group *g = calloc(1, sizeof *g);
    if (!g || !(g->key = strdup(key)) || !(g->text = strdup(text)) ||
        (explore_digest && !(g->then_explore = strdup(explore_digest)))) {
        if (g) {
            free(g->key);
            free(g->text);
        }
        free(g);
        job_nomem(j);
        return NULL;
    }
    g->j = j;
    g->count = 1; /* the caller's hold */
    g->depth = depth;
    g->is_referrer = is_referrer;
    j->pending++;
    return g;
}

/* ---- a referrer listed by the API or a fallback index ---- */

static char *referrer_text(rjob *j, const char *subject, const char *media_type, const char *digest,
                           uint64_t size, const char *artifact_type, const char *tag, oc_error *err)
{
    oc_oci_desc d = {.media_type = media_type,
                     .digest = digest,
                     .size = size,
                     .image = j->name,
                     .tag = tag,
                     .registry = j->host,
                     .repository = j->repo,
                     .source_tag = tag,
                     .subject = subject,
                     .artifact_type = artifact_type};
    return oc_oci_descriptor_text(&d, err);
}

/* The listing descriptor d names a referrer of subject at depth; a
 * fallback index's group (wait, or NULL) waits for it to be placed. */
static void listed(rjob *j, json_t *d, const char *subject, unsigned depth, group *wait)
{
    const char *digest = json_string_value(json_object_get(d, "digest"));
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    const char *at = json_string_value(json_object_get(d, "artifactType"));
    json_t *size = json_object_get(d, "size");
    char hex[OC_SHA256_HEX_LEN + 1];
    if (!digest || !mt || !json_is_integer(size) || oc_digest_parse(digest, hex, NULL) != 0) {
        oc_error err;
        oc_error_set(&err, OC_E_FORMAT,
                     "the referrers of %s list a descriptor without a digest, mediaType or size",
                     subject);
        job_fail(j, &err);
        return;
    }
    if (!type_wanted(j, at) || !first_time(j, "referrer", digest))
        return;
    char *key = oc_oci_referrer_key(j->name, digest);
    if (!key) {
        job_nomem(j);
        return;
    }
    if (is_known(j, key, digest)) {
        j->known++;
        free(key);
        explore(j, digest, depth + 1);
        return;
    }
    oc_error err;
    oc_error_clear(&err);
    char *text =
        referrer_text(j, subject, mt, digest, (uint64_t)json_integer_value(size), at, NULL, &err);
    char what[300];
    snprintf(what, sizeof what, "artifact %s (%s) referring to %s", digest,
             at ? at : "no artifactType", subject);
    group *g = text ? group_new(j, key, text, digest, depth, 1) : NULL;
    if (!text)
        job_fail(j, &err);
    if (g && !(g->expect_subject = strdup(subject))) {
        g->failed = 1;
        job_nomem(j);
    }
    if (g) {
        if (wait) {
            g->notify = wait;
            wait->count++;
        }
        doc_fetch(j, NULL, digest, json_integer_value(size), what, g);
        group_settle(g); /* the hold */
    }
    free(key);
    free(text);
}

/* ---- the referrers API ---- */

typedef struct api_op {
    subject_step s;
    int probe; /* this request decides the registry's api_state */
} api_op;

static void explore_tags(rjob *j, const char *subject, unsigned depth, int with_fallback);

static api_state *api_of(rjob *j)
{
    api_state *a = oc_strmap_get(j->c->apis, j->host);
    if (a)
        return a;
    a = calloc(1, sizeof *a);
    if (a && oc_strmap_set(j->c->apis, j->host, a) != 0) {
        free(a);
        a = NULL;
    }
    return a;
}

static void on_api(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                   const oc_error *call_err)
{
    api_op *op = opaque;
    rjob *j = op->s.j;
    api_state *a = api_of(j);
    json_error_t jerr;
    json_t *doc = call_err ? NULL : json_loadb(body, len, 0, &jerr);
    json_t *list = json_object_get(doc, "manifests");
    const char *ct = info ? info->content_type : NULL;
    int is_index = doc && json_is_array(list) && ct &&
                   strncmp(ct, OC_MT_OCI_INDEX, strlen(OC_MT_OCI_INDEX)) == 0;
    /* 404, another refusal (400, 405), an HTML page or anything but an
     * index: the registry has no referrers API; a failure after the
     * retries (the network, 5xx, auth) decides nothing */
    int no_api =
        !is_index && (!call_err || call_err->code == OC_E_NOTFOUND || call_err->code == OC_E_HTTP);
    if (op->probe && a) {
        a->state = is_index ? API_YES : no_api ? API_NO : API_UNKNOWN;
        if (a->state != API_UNKNOWN)
            oc_engine_log(j->c->e, "%s %s the referrers API", j->host,
                          is_index ? "answers" : "does not answer");
        wake(&a->waiting);
    }
    if (is_index) {
        size_t i;
        json_t *d;
        json_array_foreach(list, i, d)
        {
            listed(j, d, op->s.subject, op->s.depth, NULL);
        }
        explore_tags(j, op->s.subject, op->s.depth, 0); /* cosign's tags too */
    } else if (op->probe ? no_api : (call_err && call_err->code == OC_E_NOTFOUND)) {
        explore_tags(j, op->s.subject, op->s.depth, op->probe);
    } else {
        oc_error err;
        if (call_err)
            err = *call_err;
        else
            oc_error_set(&err, OC_E_FORMAT, "the answer is not an OCI image index");
        oc_error_prefix(&err, "the referrers of %s", op->s.subject);
        job_fail(j, &err);
    }
    json_decref(doc);
    step_end(&op->s);
}

static void ask_api(rjob *j, const char *subject, unsigned depth, int probe)
{
    char *ref = NULL;
    oc_error err;
    oc_error_clear(&err);
    const char *type = j->c->o.n_types == 1 ? j->c->o.types[0] : NULL;
    /* artifactType=TYPE: '/' and '+' escaped */
    char esc[400] = "";
    for (size_t i = 0, k = 0; type && type[i] && k + 4 < sizeof esc; i++) {
        char ch = type[i];
        if (ch == '/' || ch == '+' || ch == ' ' || ch == '&' || ch == '=' || ch == '%' ||
            ch == '#' || ch == '?')
            k += (size_t)snprintf(esc + k, sizeof esc - k, "%%%02X", (unsigned char)ch);
        else
            esc[k++] = ch, esc[k] = '\0';
    }
    if (asprintf(&ref, "%s%s%s", subject, type ? "?artifactType=" : "", type ? esc : "") < 0) {
        job_nomem(j);
        return;
    }
    api_op *op = step_new(j, sizeof *op, subject, depth);
    if (!op) {
        free(ref);
        return;
    }
    op->probe = probe;
    if (oc_registry_fetch_small(j->r, j->repo, "referrers", ref, OC_MT_OCI_INDEX, OC_MANIFEST_MAX,
                                on_api, op, &err) != 0) {
        if (probe) {
            api_state *a = api_of(j);
            if (a) {
                a->state = API_UNKNOWN;
                wake(&a->waiting);
            }
        }
        job_fail(j, &err);
        step_end(&op->s);
    }
    free(ref);
}

static void explore_go(subject_step *op);

static void on_api_known(void *opaque)
{
    subject_step *op = opaque;
    explore_go(op);
}

/* The API's state is known (or ours to find out): ask it, or the tags. */
static void explore_go(subject_step *op)
{
    rjob *j = op->j;
    api_state *a = api_of(j);
    if (!a) {
        job_nomem(j);
    } else if (a->state == API_PROBING) {
        if (wait_on(&a->waiting, on_api_known, op) == 0)
            return; /* still pending */
        job_nomem(j);
    } else if (a->state == API_UNKNOWN) {
        a->state = API_PROBING;
        ask_api(j, op->subject, op->depth, 1);
    } else if (a->state == API_YES) {
        ask_api(j, op->subject, op->depth, 0);
    } else {
        explore_tags(j, op->subject, op->depth, 1);
    }
    step_end(op);
}

/* The referrers of subject, at depth (1: of the image's manifests). */
static void explore(rjob *j, const char *subject, unsigned depth)
{
    if (depth > j->c->o.depth || !first_time(j, "explore", subject))
        return;
    subject_step *op = step_new(j, sizeof *op, subject, depth);
    if (op)
        explore_go(op);
}

/* ---- the tag schema ---- */

typedef struct tags_op {
    subject_step s;
    int with_fallback;
    tag_list *t;
} tags_op;

static void tag_schema(rjob *j, const char *tag, const char *subject, int fallback, unsigned depth);

static void tags_ready(void *opaque)
{
    tags_op *op = opaque;
    rjob *j = op->s.j;
    if (op->t->state == 3) {
        oc_error err = op->t->err;
        oc_error_prefix(&err, "the tags of %s (for the tag schema of %s)", j->repo, op->s.subject);
        job_fail(j, &err);
    } else {
        static const char *const suffixes[] = {"", ".sig", ".att", ".sbom"};
        for (size_t i = op->with_fallback ? 0 : 1; i < sizeof suffixes / sizeof *suffixes; i++) {
            char tag[8 + OC_SHA256_HEX_LEN + 8];
            snprintf(tag, sizeof tag, "sha256-%s%s", op->s.subject + 7, suffixes[i]);
            if (oc_strmap_has(op->t->tags, tag))
                tag_schema(j, tag, op->s.subject, i == 0, op->s.depth);
        }
    }
    step_end(&op->s);
}

static void on_tags(void *opaque, char **tags, size_t n, const oc_error *err)
{
    tag_list *t = opaque;
    if (err) {
        t->state = 3;
        t->err = *err;
    } else {
        t->state = 2;
        for (size_t i = 0; i < n; i++) {
            char subject[72];
            /* only the tag schema's tags matter here */
            if (oc_oci_tag_schema(tags[i], subject, NULL) &&
                oc_strmap_set(t->tags, tags[i], NULL) != 0) {
                t->state = 3;
                oc_error_set(&t->err, OC_E_NOMEM, "out of memory");
                break;
            }
        }
    }
    oc_tags_free(tags, n);
    wake(&t->waiting);
}

static void explore_tags(rjob *j, const char *subject, unsigned depth, int with_fallback)
{
    char key[600];
    snprintf(key, sizeof key, "%s/%s", j->host, j->repo);
    tag_list *t = oc_strmap_get(j->c->tags, key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (t && (!(t->tags = oc_strmap_new(NULL)) || oc_strmap_set(j->c->tags, key, t) != 0)) {
            oc_strmap_free(t->tags);
            free(t);
            t = NULL;
        }
    }
    if (!t) {
        job_nomem(j);
        return;
    }
    tags_op *op = step_new(j, sizeof *op, subject, depth);
    if (!op)
        return;
    op->with_fallback = with_fallback;
    op->t = t;
    if (t->state >= 2) {
        tags_ready(op);
        return;
    }
    if (wait_on(&t->waiting, tags_ready, op) != 0) {
        job_nomem(j);
        step_end(&op->s);
        return;
    }
    if (t->state == 0) {
        t->state = 1;
        oc_error err;
        oc_error_clear(&err);
        if (oc_registry_list_tags(j->r, j->repo, 0, on_tags, t, &err) != 0) {
            t->state = 3;
            t->err = err;
            wake(&t->waiting);
        }
    }
}

typedef struct tag_op {
    rjob *j;
    char *tag, *subject;
    int fallback;
    unsigned depth;
    char *digest; /* what the tag names */
} tag_op;

static void tag_op_free(tag_op *t)
{
    free(t->tag);
    free(t->subject);
    free(t->digest);
    free(t);
}

/* A fallback index the store holds: its referrers, known or fetched now. */
static void stored_fallback(tag_op *t)
{
    rjob *j = t->j;
    char hex[OC_SHA256_HEX_LEN + 1];
    char *path = NULL;
    size_t len = 0;
    oc_error err;
    oc_error_clear(&err);
    char *body = oc_digest_parse(t->digest, hex, NULL) == 0 &&
                         (path = oc_store_oci_blob_path(j->c->store, hex))
                     ? oc_read_file(path, OC_MANIFEST_MAX, &len, &err)
                     : NULL;
    free(path);
    json_t *doc = body ? json_loadb(body, len, 0, NULL) : NULL;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(doc, "manifests"), i, d)
    {
        listed(j, d, t->subject, t->depth, NULL);
    }
    json_decref(doc);
    free(body);
}

static void on_tag_doc(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                       const oc_error *call_err);

static void on_tag_resolved(void *opaque, const char *digest, const char *body, size_t len,
                            const char *content_type, const oc_error *call_err)
{
    tag_op *t = opaque;
    rjob *j = t->j;
    if (call_err) {
        oc_error err = *call_err;
        oc_error_prefix(&err, "tag %s", t->tag);
        job_fail(j, &err);
        tag_op_free(t);
        step_done(j);
        return;
    }
    char *ref = oc_oci_ref_name(j->name, t->tag);
    t->digest = strdup(digest);
    if (!ref || !t->digest) {
        free(ref);
        job_nomem(j);
        tag_op_free(t);
        step_done(j);
        return;
    }
    int known = is_known(j, ref, digest);
    free(ref);
    if (known) {
        j->known++;
        if (t->fallback)
            stored_fallback(t);
        else
            explore(j, digest, t->depth + 1);
        tag_op_free(t);
        step_done(j);
        return;
    }
    if (body) { /* resolving took a GET: the bytes are here */
        oc_reg_info info = {.status = 200, .content_type = (char *)content_type};
        on_tag_doc(t, body, len, &info, NULL);
        return;
    }
    oc_error err;
    oc_error_clear(&err);
    if (oc_registry_fetch_small(j->r, j->repo, "manifests", digest, OC_MANIFEST_ACCEPT,
                                OC_MANIFEST_MAX, on_tag_doc, t, &err) != 0) {
        job_fail(j, &err);
        tag_op_free(t);
        step_done(j);
    }
}

/* The type a cosign tag's manifest stands for: its artifactType, else its
 * first layer's media type (simple signing for .sig, a DSSE envelope for
 * .att, the SBOM's format for .sbom). */
static const char *cosign_type(json_t *doc)
{
    const char *at = json_string_value(json_object_get(doc, "artifactType"));
    if (at)
        return at;
    return json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "layers"), 0), "mediaType"));
}

static void on_tag_doc(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                       const oc_error *call_err)
{
    tag_op *t = opaque;
    rjob *j = t->j;
    oc_error err;
    oc_error_clear(&err);
    char hex[OC_SHA256_HEX_LEN + 1], want[OC_SHA256_HEX_LEN + 1];
    oc_manifest m;
    char what[300];
    snprintf(what, sizeof what, "tag %s (%s)", t->tag, t->digest);
    if (call_err) {
        err = *call_err;
        oc_error_prefix(&err, "%s", what);
        job_fail(j, &err);
        tag_op_free(t);
        step_done(j);
        return;
    }
    oc_sha256_buf_hex(body, len, hex);
    if (oc_digest_parse(t->digest, want, &err) == 0 && strcmp(hex, want) != 0)
        oc_error_set(&err, OC_E_DIGEST, "%s: its bytes hash to sha256:%s", what, hex);
    if (err.code != OC_OK || oc_manifest_parse(&m, info->content_type, body, len, &err) != 0) {
        if (!strstr(err.msg, t->tag))
            oc_error_prefix(&err, "%s", what);
        job_fail(j, &err);
        tag_op_free(t);
        step_done(j);
        return;
    }
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *type = t->fallback ? NULL : cosign_type(doc);
    size_t wanted = 0, i;
    json_t *d;
    json_array_foreach(json_object_get(doc, "manifests"), i, d)
    {
        wanted += type_wanted(j, json_string_value(json_object_get(d, "artifactType")));
    }
    if (t->fallback ? wanted == 0 : !type_wanted(j, type)) {
        /* not of the types asked for (a fallback index: none it lists is) */
        json_decref(doc);
        oc_manifest_free(&m);
        tag_op_free(t);
        step_done(j);
        return;
    }
    char *text = referrer_text(j, t->subject, m.media_type, t->digest, len, type, t->tag, &err);
    char *key = oc_oci_ref_name(j->name, t->tag);
    group *g = text && key
                   ? group_new(j, key, text, t->fallback ? NULL : t->digest, t->depth, !t->fallback)
                   : NULL;
    if (!text)
        job_fail(j, &err);
    else if (!key)
        job_nomem(j);
    if (g && !(g->body = malloc(len ? len : 1))) {
        g->failed = 1;
        job_nomem(j);
    } else if (g) {
        memcpy(g->body, body, len);
        g->len = len;
        memcpy(g->hex, hex, sizeof hex);
        if (t->fallback) {
            /* an index of referrers: each one (known or fetched) is its own
             * descriptor; the tag's waits for those it lists to be placed */
            json_array_foreach(json_object_get(doc, "manifests"), i, d)
            {
                listed(j, d, t->subject, t->depth, g);
            }
        } else {
            need_blob(g, &m.config, what);
            for (i = 0; i < m.n_layers; i++)
                need_blob(g, &m.layers[i], what);
        }
        group_settle(g); /* the hold */
    }
    free(text);
    free(key);
    json_decref(doc);
    oc_manifest_free(&m);
    tag_op_free(t);
    step_done(j);
}

static void tag_schema(rjob *j, const char *tag, const char *subject, int fallback, unsigned depth)
{
    tag_op *t = calloc(1, sizeof *t);
    oc_error err;
    oc_error_clear(&err);
    if (!t || !(t->tag = strdup(tag)) || !(t->subject = strdup(subject))) {
        if (t)
            free(t->tag);
        free(t);
        job_nomem(j);
        return;
    }
    t->j = j;
    t->fallback = fallback;
    t->depth = depth;
    j->pending++;
    if (oc_resolve_tag(j->r, j->repo, tag, OC_MANIFEST_ACCEPT, OC_MANIFEST_MAX, on_tag_resolved, t,
                       &err) != 0) {
        job_fail(j, &err);
        tag_op_free(t);
        step_done(j);
    }
}

/* ---- the start ---- */

int oc_referrers_fetch(oc_referrers_ctx *c, oc_registry *r, const char *host, const char *repo,
                       const char *name, const char *const *digests, size_t n,
                       oc_referrers_done done, void *opaque, oc_error *err)
{
    rjob *j = calloc(1, sizeof *j);
    if (!j || !(j->host = strdup(host)) || !(j->repo = strdup(repo)) || !(j->name = strdup(name)) ||
        !(j->seen = oc_strmap_new(NULL))) {
        if (j)
            job_free(j);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    j->c = c;
    j->r = r;
    j->done = done;
    j->opaque = opaque;
    oc_error_clear(&j->err);
    j->pending = 1; /* the start's hold */
    for (size_t i = 0; i < n; i++)
        explore(j, digests[i], 1);
    step_done(j);
    return 0;
}
