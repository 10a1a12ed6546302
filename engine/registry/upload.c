/* upload.c - a blob's upload and a manifest's PUT (see upload.h).
 *
 * One upload is a chain of registry calls, each started from the previous
 * one's on_done: head -> [mount] -> post -> (put_body | patch... -> commit).
 * Failures go to resume (ask the session's status) or restart (a new
 * session) while the budget lasts; the upload is freed right after its
 * done callback. */
#include "engine/registry/upload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/registry/engine.h"
#include "io/digest.h"

#define OCTET_STREAM "application/octet-stream"

typedef struct upload {
    oc_registry *r;
    oc_engine *e;
    char *repo;
    char *digest;
    char *mount_from;
    char *scope;
    uint64_t size;
    uint64_t chunk;
    int stream;
    oc_upload_source src;
    void (*on_sent)(void *opaque, uint64_t n);
    oc_upload_done done;
    void *opaque;
    char *location;       /* the session's URL, from the registry's last answer */
    uint64_t offset;      /* bytes the registry confirmed in the session */
    uint64_t pending_end; /* end of the PATCH in flight */
    int budget;           /* resumes and restarts left */
    int digest_retried;   /* a commit refused for its digest was started over once */
    int body_out;         /* the source gave a body that is not released yet */
    oc_upload_result res;
} upload;

static void post_session(upload *u);
static void send_next(upload *u);
static void ask_status(upload *u, const oc_error *why);

char *oc_upload_scope(const char *repo)
{
    char *s = NULL;
    if (asprintf(&s, "repository:%s:pull,push", repo) < 0)
        return NULL;
    return s;
}

/* ---- the end ---- */

static void up_free(upload *u)
{
    if (u->body_out && u->src.release)
        u->src.release(u->src.opaque);
    free(u->repo);
    free(u->digest);
    free(u->mount_from);
    free(u->scope);
    free(u->location);
    free(u);
}

static void up_finish(upload *u, oc_upload_outcome how)
{
    u->res.outcome = how;
    u->done(u->opaque, &u->res, NULL);
    up_free(u);
}

static void up_fail(upload *u, const oc_error *why)
{
    oc_error err = *why;
    if (err.code == OC_OK)
        oc_error_set(&err, OC_E_NET, "upload failed");
    oc_error_prefix(&err, "blob %s", u->digest);
    u->done(u->opaque, &u->res, &err);
    up_free(u);
}

static void nothing_done(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    (void)opaque;
    (void)info;
    (void)err;
}

/* DELETE the session (best effort: its bytes are never committed). */
static void drop_session(upload *u)
{
    if (u->location && !u->e->interrupted) {
        oc_reg_call_opts co = {.method = "DELETE", .url = u->location, .scope = u->scope};
        oc_reg_consumer c = {.on_done = nothing_done};
        oc_error ignored;
        oc_registry_call(u->r, u->repo, "blobs", "uploads", &co, &c, &ignored);
    }
}

/* The bytes are not to be committed: drop the session and fail. */
static void abandon(upload *u, const oc_error *why)
{
    drop_session(u);
    up_fail(u, why);
}

/* Errors no resume or restart can help. */
static int hopeless(const oc_error *err)
{
    return err->code == OC_E_AUTH || err->code == OC_E_CANCELLED || err->code == OC_E_NOMEM ||
           err->code == OC_E_IO || err->code == OC_E_USAGE;
}

static int spend(upload *u, const oc_error *why)
{
    if (u->e->interrupted) {
        oc_error err;
        oc_error_set(&err, OC_E_CANCELLED, "%s", u->e->interrupted_why);
        up_fail(u, &err);
        return -1;
    }
    if (u->budget-- <= 0) {
        oc_error err = *why;
        oc_error_prefix(&err, "gave up after %d resumes and %d restarts", u->res.resumes,
                        u->res.restarts);
        up_fail(u, &err);
        return -1;
    }
    return 0;
}

/* A new session from byte 0 (no mount). */
static void restart(upload *u, const oc_error *why)
{
    if (hopeless(why)) {
        up_fail(u, why);
        return;
    }
    if (spend(u, why) != 0)
        return;
    u->res.restarts++;
    oc_engine_log(u->e, "blob %s into %s: starting the upload over: %s", u->digest, u->repo,
                  why->msg);
    free(u->location);
    u->location = NULL;
    u->offset = 0;
    post_session(u);
}

/* ---- small helpers ---- */

static void sent(void *opaque, size_t n)
{
    upload *u = opaque;
    u->res.bytes_sent += n;
    if (u->on_sent)
        u->on_sent(u->opaque, n);
}

/* "0-N" -> N + 1 bytes held (distribution says "0-0" for 0 and for 1 byte:
 * 1 only when more than 0 were confirmed before). -1 if malformed. */
static int64_t range_end(const char *range, uint64_t confirmed)
{
    unsigned long long a = 0, b = 0;
    if (!range)
        return -1;
    if (strncmp(range, "bytes=", 6) == 0)
        range += 6;
    if (sscanf(range, "%llu-%llu", &a, &b) != 2 || a != 0)
        return -1;
    if (b == 0)
        return confirmed >= 1 ? 1 : 0;
    return (int64_t)b + 1;
}

/* The session URL with ?digest= (or &digest=); malloc'd. */
static char *commit_url(const upload *u)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_error err;
    char *url = NULL;
    if (oc_digest_parse(u->digest, hex, &err) != 0 ||
        asprintf(&url, "%s%sdigest=sha256%%3A%s", u->location, strchr(u->location, '?') ? "&" : "?",
                 hex) < 0)
        return NULL;
    return url;
}

static int digest_answer_ok(upload *u, const oc_reg_info *info, oc_error *err)
{
    const char *d = info->docker_content_digest;
    if (d && strcmp(d, u->digest) != 0) {
        oc_error_set(err, OC_E_DIGEST, "the registry stored it as %s", d);
        return 0;
    }
    return 1;
}

static int set_location(upload *u, const oc_reg_info *info, oc_error *err)
{
    if (!info->location || !*info->location) {
        oc_error_set(err, OC_E_FORMAT, "the registry's answer (HTTP %ld) has no Location",
                     info->status);
        return -1;
    }
    char *loc = strdup(info->location);
    if (!loc) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    free(u->location);
    u->location = loc;
    return 0;
}

/* The registry's answer about the session (to a PATCH or a status request):
 * its Location, when it names one, is taken, and *held is what the session
 * holds by its Range (no_range when it gives none). -1 when the Location
 * cannot be taken: the upload has failed and is gone. */
static int session_answer(upload *u, const oc_reg_info *info, int64_t no_range, int64_t *held)
{
    oc_error e;
    if (info->location && set_location(u, info, &e) != 0) {
        up_fail(u, &e);
        return -1;
    }
    *held = range_end(info->range, u->offset);
    if (*held < 0)
        *held = no_range;
    return 0;
}

/* A HEAD's answer, the blob there or not: 1 when it ends the upload (found,
 * with outcome found; or an error other than "not found"), 0 when the blob
 * is not there. */
static int head_ends_upload(upload *u, const oc_error *err, oc_upload_outcome found)
{
    if (!err) {
        up_finish(u, found);
        return 1;
    }
    if (err->code != OC_E_NOTFOUND) {
        up_fail(u, err);
        return 1;
    }
    return 0;
}

/* ---- HEAD after a PUT that broke: did it land? ---- */

static void on_check(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    upload *u = opaque;
    (void)info;
    if (head_ends_upload(u, err, OC_UPLOAD_SENT))
        return;
    /* not there: a monolithic PUT starts over, a commit asks what the
     * session holds */
    oc_error why;
    oc_error_set(&why, OC_E_NET, "the PUT broke and the blob is not in %s", u->repo);
    if (u->stream || u->size > u->chunk)
        ask_status(u, &why);
    else
        restart(u, &why);
}

static void check_present(upload *u, const oc_error *why)
{
    if (hopeless(why)) {
        up_fail(u, why);
        return;
    }
    oc_engine_log(u->e, "blob %s into %s: %s; is it there?", u->digest, u->repo, why->msg);
    oc_reg_call_opts co = {.method = "HEAD", .scope = u->scope};
    oc_reg_consumer c = {.on_done = on_check, .opaque = u};
    oc_error err;
    if (oc_registry_call(u->r, u->repo, "blobs", u->digest, &co, &c, &err) != 0)
        up_fail(u, &err);
}

/* A 400 to the commit: the registry's digest of what it got is not ours. */
static void bytes_refused(upload *u, const oc_error *why)
{
    if (!u->digest_retried++) {
        restart(u, why);
        return;
    }
    oc_error err;
    oc_error_set(&err, OC_E_DIGEST,
                 "the registry refused the bytes sent twice (%s): the source's copy does not "
                 "hash to the digest (for a store, run occystrap verify) or they changed on "
                 "the way",
                 why->msg);
    up_fail(u, &err);
}

/* ---- the commit: PUT ?digest= ---- */

static void release_body(upload *u)
{
    if (u->body_out && u->src.release)
        u->src.release(u->src.opaque);
    u->body_out = 0;
}

static void on_put(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    upload *u = opaque;
    oc_error e;
    release_body(u);
    if (!err) {
        if (!digest_answer_ok(u, info, &e)) {
            up_fail(u, &e);
            return;
        }
        up_finish(u, OC_UPLOAD_SENT);
        return;
    }
    if (hopeless(err))
        up_fail(u, err);
    else if (err->code == OC_E_HTTP && info->status == 400)
        bytes_refused(u, err);
    else if (err->code == OC_E_NOTFOUND || (err->code == OC_E_HTTP && info->status == 416))
        restart(u, err);
    else /* no answer, 5xx, 429: did it land? */
        check_present(u, err);
}

static void put(upload *u, const oc_http_body *body)
{
    char *url = commit_url(u);
    oc_error err;
    if (!url) {
        release_body(u);
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        up_fail(u, &err);
        return;
    }
    oc_reg_call_opts co = {.method = "PUT",
                           .url = url,
                           .scope = u->scope,
                           .body = body,
                           .content_type = OCTET_STREAM,
                           .no_retry = 1,
                           .on_sent = body ? sent : NULL};
    oc_reg_consumer c = {.on_done = on_put, .opaque = u};
    int rc = oc_registry_call(u->r, u->repo, "blobs", "uploads", &co, &c, &err);
    free(url);
    if (rc != 0) {
        release_body(u);
        up_fail(u, &err);
    }
}

static void commit_ready(void *opaque, const oc_error *err)
{
    upload *u = opaque;
    if (err && err->code == OC_E_DIGEST && !u->digest_retried++) {
        /* the source's bytes were wrong: never committed; once more from a new session */
        drop_session(u);
        restart(u, err);
        return;
    }
    if (err) {
        abandon(u, err);
        return;
    }
    put(u, NULL);
}

static void commit(upload *u)
{
    if (u->src.before_commit)
        u->src.before_commit(u->src.opaque, commit_ready, u);
    else
        commit_ready(u, NULL);
}

/* ---- the bytes ---- */

/* The body for [from, from + len), or the upload ends or starts over. */
static int get_body(upload *u, uint64_t from, uint64_t len, oc_http_body *body)
{
    oc_error err;
    oc_error_clear(&err);
    memset(body, 0, sizeof *body);
    body->fd = -1;
    int rc = u->src.body(u->src.opaque, from, len, body, &err);
    if (rc == 0) {
        u->body_out = 1;
        return 0;
    }
    if (rc == OC_UPLOAD_SOURCE_CANNOT) {
        if (err.code == OC_OK)
            oc_error_set(&err, OC_E_NET, "the source cannot give the bytes from %" PRIu64, from);
        restart(u, &err);
    } else {
        if (err.code == OC_OK)
            oc_error_set(&err, OC_E_IO, "the source failed");
        abandon(u, &err);
    }
    return -1;
}

static void on_patch(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    upload *u = opaque;
    oc_error e;
    release_body(u);
    if (err) {
        if (hopeless(err))
            up_fail(u, err);
        else if (err->code == OC_E_NOTFOUND)
            restart(u, err);
        else /* no answer, 5xx, 429, 400, 416: what does the session hold? */
            ask_status(u, err);
        return;
    }
    int64_t held; /* no Range: it took the whole PATCH */
    if (session_answer(u, info, (int64_t)u->pending_end, &held) != 0)
        return;
    if ((uint64_t)held > u->pending_end) {
        oc_error_set(&e, OC_E_NET,
                     "the session holds %" PRId64 " bytes, more than the %" PRIu64 " sent", held,
                     u->pending_end);
        restart(u, &e);
        return;
    }
    if ((uint64_t)held < u->pending_end) {
        u->res.resumes++;
        oc_engine_log(u->e,
                      "blob %s into %s: the registry kept %" PRId64 " of %" PRIu64
                      " bytes; going on from there",
                      u->digest, u->repo, held, u->pending_end);
    }
    u->offset = (uint64_t)held;
    send_next(u);
}

static void patch(upload *u)
{
    uint64_t len = u->stream ? u->size - u->offset
                             : (u->size - u->offset < u->chunk ? u->size - u->offset : u->chunk);
    oc_http_body body;
    if (get_body(u, u->offset, len, &body) != 0)
        return;
    char range[64];
    snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, u->offset, u->offset + len - 1);
    u->pending_end = u->offset + len;
    oc_reg_call_opts co = {.method = "PATCH",
                           .url = u->location,
                           .scope = u->scope,
                           .body = &body,
                           .content_type = OCTET_STREAM,
                           .content_range = range,
                           .no_retry = 1,
                           .on_sent = sent};
    oc_reg_consumer c = {.on_done = on_patch, .opaque = u};
    oc_error err;
    if (oc_registry_call(u->r, u->repo, "blobs", "uploads", &co, &c, &err) != 0) {
        release_body(u);
        up_fail(u, &err);
    }
}

static void send_next(upload *u)
{
    if (!u->stream && u->size <= u->chunk) { /* small: one PUT with the body */
        oc_http_body body;
        if (get_body(u, 0, u->size, &body) == 0)
            put(u, &body);
        return;
    }
    if (u->offset < u->size)
        patch(u);
    else
        commit(u);
}

/* ---- the session's status, after a PATCH or commit that broke ---- */

static void on_status(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    upload *u = opaque;
    oc_error e;
    if (err) {
        if (hopeless(err) || err->code == OC_E_NET)
            up_fail(u, err);
        else /* 404, 400, 416: the session is gone or refused */
            restart(u, err);
        return;
    }
    int64_t held;
    if (session_answer(u, info, 0, &held) != 0)
        return;
    if ((uint64_t)held > u->size) {
        oc_error_set(&e, OC_E_NET, "the session holds %" PRId64 " bytes of a %" PRIu64 "-byte blob",
                     held, u->size);
        restart(u, &e);
        return;
    }
    u->res.resumes++;
    oc_engine_log(u->e,
                  "blob %s into %s: the registry holds bytes 0-%" PRId64
                  " of the session; resuming from byte %" PRId64,
                  u->digest, u->repo, held ? held - 1 : 0, held);
    u->offset = (uint64_t)held;
    send_next(u);
}

static void ask_status(upload *u, const oc_error *why)
{
    if (hopeless(why)) {
        up_fail(u, why);
        return;
    }
    if (!u->location) {
        restart(u, why);
        return;
    }
    if (spend(u, why) != 0)
        return;
    oc_engine_log(u->e, "blob %s into %s: %s; asking the registry what the session holds",
                  u->digest, u->repo, why->msg);
    /* after a backoff: a registry still writing the broken request's bytes
     * would answer with the size before them */
    uint64_t wait =
        oc_retry_delay_ms(&u->e->opts.retry, 2 + u->res.resumes + u->res.restarts, 0, &u->e->rng);
    oc_reg_call_opts co = {
        .method = "GET", .url = u->location, .scope = u->scope, .start_after_ms = wait};
    oc_reg_consumer c = {.on_done = on_status, .opaque = u};
    oc_error err;
    if (oc_registry_call(u->r, u->repo, "blobs", "uploads", &co, &c, &err) != 0)
        up_fail(u, &err);
}

/* ---- the session ---- */

static void on_post(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    upload *u = opaque;
    oc_error e;
    if (err) {
        up_fail(u, err);
        return;
    }
    if (set_location(u, info, &e) != 0) {
        up_fail(u, &e);
        return;
    }
    u->offset = 0;
    send_next(u);
}

static void post_session(upload *u)
{
    char *url = NULL;
    oc_error err;
    if (asprintf(&url, "/v2/%s/blobs/uploads/", u->repo) < 0) {
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        up_fail(u, &err);
        return;
    }
    oc_reg_call_opts co = {.method = "POST", .url = url, .scope = u->scope};
    oc_reg_consumer c = {.on_done = on_post, .opaque = u};
    int rc = oc_registry_call(u->r, u->repo, "blobs", "uploads", &co, &c, &err);
    free(url);
    if (rc != 0)
        up_fail(u, &err);
}

static void on_mount(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    upload *u = opaque;
    oc_error e;
    if (err) {
        if (err->code == OC_E_CANCELLED) {
            up_fail(u, err);
            return;
        }
        oc_engine_log(u->e, "blob %s into %s: mount from %s refused (%s); uploading it", u->digest,
                      u->repo, u->mount_from, err->msg);
        post_session(u);
        return;
    }
    if (info->status == 201) {
        if (!digest_answer_ok(u, info, &e)) {
            up_fail(u, &e);
            return;
        }
        up_finish(u, OC_UPLOAD_MOUNTED);
        return;
    }
    /* 202: the registry did not mount it and opened a session instead */
    oc_engine_log(u->e, "blob %s into %s: not mounted from %s (HTTP %ld); uploading it", u->digest,
                  u->repo, u->mount_from, info->status);
    if (set_location(u, info, &e) != 0) {
        post_session(u);
        return;
    }
    u->offset = 0;
    send_next(u);
}

static void mount(upload *u)
{
    char *url = NULL, *scope = NULL;
    oc_error err;
    char hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(u->digest, hex, &err) != 0) {
        up_fail(u, &err);
        return;
    }
    if (asprintf(&url, "/v2/%s/blobs/uploads/?mount=sha256%%3A%s&from=%s", u->repo, hex,
                 u->mount_from) < 0)
        url = NULL;
    if (asprintf(&scope, "%s repository:%s:pull", u->scope, u->mount_from) < 0)
        scope = NULL;
    if (!url || !scope) {
        free(url);
        free(scope);
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        up_fail(u, &err);
        return;
    }
    oc_reg_call_opts co = {.method = "POST", .url = url, .scope = scope};
    oc_reg_consumer c = {.on_done = on_mount, .opaque = u};
    int rc = oc_registry_call(u->r, u->repo, "blobs", "uploads", &co, &c, &err);
    free(url);
    free(scope);
    if (rc != 0)
        up_fail(u, &err);
}

static void begin(upload *u)
{
    if (u->mount_from && strcmp(u->mount_from, u->repo) != 0)
        mount(u);
    else
        post_session(u);
}

static void on_head(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    upload *u = opaque;
    (void)info;
    if (!head_ends_upload(u, err, OC_UPLOAD_PRESENT))
        begin(u);
}

int oc_upload_blob(oc_registry *r, const oc_upload_opts *o, oc_upload_done done, void *opaque,
                   oc_error *err)
{
    upload *u = calloc(1, sizeof *u);
    if (!u) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    u->r = r;
    u->e = oc_registry_engine(r);
    u->repo = strdup(o->repo);
    u->digest = strdup(o->digest);
    u->mount_from = o->mount_from ? strdup(o->mount_from) : NULL;
    u->scope = oc_upload_scope(o->repo);
    u->size = o->size;
    u->chunk = o->chunk_size ? o->chunk_size : OC_UPLOAD_DEFAULT_CHUNK;
    u->stream = o->stream;
    u->src = o->source;
    u->on_sent = o->on_sent;
    u->done = done;
    u->opaque = opaque;
    u->budget = u->e->opts.retry.max_attempts;
    if (!u->repo || !u->digest || !u->scope || (o->mount_from && !u->mount_from)) {
        up_free(u);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (o->skip_head) {
        begin(u);
        return 0;
    }
    oc_reg_call_opts co = {.method = "HEAD", .scope = u->scope};
    oc_reg_consumer c = {.on_done = on_head, .opaque = u};
    if (oc_registry_call(r, u->repo, "blobs", u->digest, &co, &c, err) != 0) {
        up_free(u);
        return -1;
    }
    return 0;
}

/* ---- manifests ---- */

typedef struct manifest_put {
    char *body;
    size_t len;
    char *digest;
    char *what;
    oc_manifest_put_done done;
    void *opaque;
} manifest_put;

static void on_manifest_put(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    manifest_put *m = opaque;
    oc_error e;
    oc_error_clear(&e);
    if (err) {
        e = *err;
        oc_error_prefix(&e, "%s", m->what);
    } else if (info->docker_content_digest && strcmp(info->docker_content_digest, m->digest) != 0) {
        oc_error_set(&e, OC_E_DIGEST, "%s: the registry stored it as %s, not %s", m->what,
                     info->docker_content_digest, m->digest);
    }
    m->done(m->opaque, e.code == OC_OK ? info->oci_subject : NULL, e.code == OC_OK ? NULL : &e);
    free(m->body);
    free(m->digest);
    free(m->what);
    free(m);
}

int oc_upload_manifest(oc_registry *r, const char *repo, const char *reference,
                       const char *media_type, const char *body, size_t len, const char *digest,
                       oc_manifest_put_done done, void *opaque, oc_error *err)
{
    manifest_put *m = calloc(1, sizeof *m);
    char *scope = oc_upload_scope(repo);
    if (!m || !scope || !(m->body = malloc(len ? len : 1)) || !(m->digest = strdup(digest)) ||
        asprintf(&m->what, "manifest %s as %s:%s", digest, repo, reference) < 0) {
        if (m) {
            free(m->body);
            free(m->digest);
            free(m);
        }
        free(scope);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    memcpy(m->body, body, len);
    m->len = len;
    m->done = done;
    m->opaque = opaque;
    oc_http_body b = {.fd = -1, .data = m->body, .length = len};
    oc_reg_call_opts co = {.method = "PUT", .scope = scope, .body = &b, .content_type = media_type};
    oc_reg_consumer c = {.on_done = on_manifest_put, .opaque = m};
    int rc = oc_registry_call(r, repo, "manifests", reference, &co, &c, err);
    free(scope);
    if (rc != 0) {
        free(m->body);
        free(m->digest);
        free(m->what);
        free(m);
        return -1;
    }
    return 0;
}
