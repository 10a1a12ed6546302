/* relay.c - a blob from one registry's GET into another's upload (see
 * relay.h).
 *
 * State: a ring of RING_CAP bytes between the GET (writer) and the PATCH
 * body (reader). `received` counts the blob's bytes taken from the current
 * GET (and hashed), `delivered` those handed to the PATCH. A GET that is
 * abandoned (the upload started over, or the relay is freed) lives on until
 * its call ends: it refuses every byte, and the relay is freed only when no
 * GET of it is alive. Unpausing either transfer happens in the kick timer,
 * never inside curl's callbacks. */
#include "engine/registry/relay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/registry/engine.h"
#include "io/digest.h"

#define RING_CAP (1024u * 1024)

typedef struct relay_get {
    oc_relay *r;
    oc_reg_call *call; /* for unpausing, once the answer began */
    int paused;        /* its last bytes did not fit: the transfer waits */
    int abandoned;     /* refuse everything: the relay moved on */
} relay_get;

struct oc_relay {
    oc_engine *e;
    oc_registry *src;
    char *repo;
    char *digest;
    uint64_t size;
    char *ring;
    size_t head, len;
    uint64_t received;  /* bytes of the blob taken from this GET generation */
    uint64_t delivered; /* bytes handed to the PATCH */
    uint64_t skip;      /* bytes of a body that started over at 0 to drop */
    uint64_t total_received;
    oc_sha256 *hash;
    relay_get *get; /* the GET of this generation, or NULL */
    int gets_alive; /* GETs whose call has not ended, abandoned ones included */
    int src_done;   /* every byte arrived and hashed to the digest */
    int src_failed; /* src_err says why */
    int src_wrong;  /* the failure is the bytes' (digest, size): worth one more GET */
    oc_error src_err;
    oc_http_transfer *send_t;                         /* the PATCH, paused on an empty ring */
    void (*ready)(void *opaque, const oc_error *err); /* before_commit waiting */
    void *ready_opaque;
    uv_timer_t kick;
    int want_get; /* the PATCH is sending: its GET may start (from the kick) */
    int freeing, closing;
};

static void on_kick(uv_timer_t *timer);

/* Unpause what can go on, and answer a waiting commit, from the loop. */
static void kick(oc_relay *r)
{
    if (!r->closing)
        uv_timer_start(&r->kick, on_kick, 0, 0);
}

static void relay_closed(uv_handle_t *h)
{
    oc_relay *r = h->data;
    free(r->ring);
    oc_sha256_free(r->hash);
    free(r->repo);
    free(r->digest);
    free(r);
}

static void maybe_free(oc_relay *r)
{
    if (!r->freeing || r->gets_alive > 0 || r->closing)
        return;
    r->closing = 1;
    uv_timer_stop(&r->kick);
    uv_close((uv_handle_t *)&r->kick, relay_closed);
}

static void fail_source(oc_relay *r, const oc_error *err)
{
    if (r->src_failed)
        return;
    r->src_failed = 1;
    r->src_err = *err;
    if (err->code != OC_E_CANCELLED)
        oc_error_prefix(&r->src_err, "%s from %s/%s", r->digest, oc_registry_host(r->src), r->repo);
}

/* The GET ends for the relay: it keeps running until its call ends, but
 * takes nothing more. */
static void abandon(oc_relay *r)
{
    relay_get *g = r->get;
    r->get = NULL;
    if (!g)
        return;
    g->abandoned = 1;
    if (g->paused && g->call) {
        g->paused = 0;
        oc_reg_call_unpause(g->call); /* its next bytes are refused: the call ends */
    }
}

/* ---- the GET ---- */

static int get_begin(void *opaque, uint64_t offset, const oc_reg_info *info, oc_error *err)
{
    relay_get *g = opaque;
    oc_relay *r = g->r;
    if (g->abandoned) {
        oc_error_set(err, OC_E_CANCELLED, "no longer wanted");
        return -1;
    }
    g->call = info->call;
    if (info->content_length >= 0 && (uint64_t)info->content_length != r->size) {
        oc_error_set(err, OC_E_DIGEST,
                     "the source serves %" PRId64 " bytes, the manifest says %" PRIu64,
                     info->content_length, r->size);
        return -1;
    }
    if (offset == r->received)
        return 0;
    if (offset == 0) { /* a 200 to our Range: the bytes we have come again */
        r->skip = r->received;
        return 0;
    }
    oc_error_set(err, OC_E_NET, "the source resumed at byte %" PRIu64 ", not %" PRIu64, offset,
                 r->received);
    return -1;
}

static int get_body(void *opaque, const char *data, size_t len, oc_error *err)
{
    relay_get *g = opaque;
    oc_relay *r = g->r;
    if (g->abandoned) {
        oc_error_set(err, OC_E_CANCELLED, "no longer wanted");
        return -1;
    }
    size_t drop = r->skip < len ? (size_t)r->skip : len;
    size_t rest = len - drop;
    if (r->received + rest > r->size) {
        oc_error_set(err, OC_E_DIGEST, "the source sends more than the %" PRIu64 " bytes it has",
                     r->size);
        return -1;
    }
    if (rest > RING_CAP - r->len) {
        g->paused = 1; /* none taken: offered again after the unpause */
        return 1;
    }
    r->skip -= drop;
    data += drop;
    size_t tail = (r->head + r->len) % RING_CAP;
    size_t first = rest < RING_CAP - tail ? rest : RING_CAP - tail;
    memcpy(r->ring + tail, data, first);
    memcpy(r->ring, data + first, rest - first);
    r->len += rest;
    oc_sha256_update(r->hash, data, rest);
    r->received += rest;
    r->total_received += rest;
    if (r->send_t)
        kick(r);
    return 0;
}

static void get_done(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    relay_get *g = opaque;
    oc_relay *r = g->r;
    (void)info;
    int abandoned = g->abandoned;
    free(g);
    r->gets_alive--;
    if (abandoned) {
        maybe_free(r);
        return;
    }
    r->get = NULL;
    oc_error e;
    if (err) {
        fail_source(r, err);
    } else if (r->received != r->size) {
        oc_error_set(&e, OC_E_DIGEST,
                     "the source's body ended after %" PRIu64 " of %" PRIu64 " bytes", r->received,
                     r->size);
        fail_source(r, &e);
    } else {
        char got[OC_SHA256_HEX_LEN + 1], want[OC_SHA256_HEX_LEN + 1];
        oc_sha256_final_hex(r->hash, got);
        if (oc_digest_parse(r->digest, want, &e) != 0 || strcmp(got, want) != 0) {
            oc_error_set(&e, OC_E_DIGEST,
                         "digest mismatch: the source's bytes hash to sha256:%s (the upload is "
                         "abandoned, never committed)",
                         got);
            fail_source(r, &e);
            r->src_wrong = 1;
        } else {
            r->src_done = 1;
        }
    }
    kick(r);
    maybe_free(r);
}

static int start_get(oc_relay *r, oc_error *err)
{
    relay_get *g = calloc(1, sizeof *g);
    if (!g) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    g->r = r;
    oc_reg_call_opts co = {.resumable = 1, .no_slot = 1};
    oc_reg_consumer c = {
        .on_begin = get_begin, .on_body = get_body, .on_done = get_done, .opaque = g};
    if (oc_registry_call(r->src, r->repo, "blobs", r->digest, &co, &c, err) != 0) {
        free(g);
        return -1;
    }
    r->get = g;
    r->gets_alive++;
    return 0;
}

/* ---- the PATCH body ---- */

static long body_read(void *opaque, oc_http_transfer *t, char *buf, size_t max, oc_error *err)
{
    oc_relay *r = opaque;
    if (r->len > 0) {
        size_t n = max < r->len ? max : r->len;
        size_t first = n < RING_CAP - r->head ? n : RING_CAP - r->head;
        memcpy(buf, r->ring + r->head, first);
        memcpy(buf + first, r->ring, n - first);
        r->head = (r->head + n) % RING_CAP;
        r->len -= n;
        r->delivered += n;
        if (r->get && r->get->paused && RING_CAP - r->len >= RING_CAP / 2)
            kick(r);
        return (long)n;
    }
    if (r->src_failed) {
        *err = r->src_err;
        return OC_HTTP_READ_ABORT;
    }
    if (r->delivered >= r->size)
        return 0;
    r->send_t = t;
    if (!r->get && !r->src_done) { /* the PATCH has its connection: now the GET */
        r->want_get = 1;
        kick(r);
    }
    return OC_HTTP_READ_PAUSE;
}

static void body_ended(void *opaque, oc_http_transfer *t)
{
    oc_relay *r = opaque;
    if (r->send_t == t)
        r->send_t = NULL;
}

static void on_kick(uv_timer_t *timer)
{
    oc_relay *r = timer->data;
    if (r->want_get && !r->freeing) {
        r->want_get = 0;
        oc_error err;
        if (!r->get && !r->src_done && !r->src_failed && start_get(r, &err) != 0)
            fail_source(r, &err);
    }
    if (r->send_t && (r->len > 0 || r->src_failed || r->src_done)) {
        oc_http_transfer *t = r->send_t;
        r->send_t = NULL;
        oc_http_unpause(t);
    }
    if (r->get && r->get->paused && RING_CAP - r->len >= RING_CAP / 2) {
        r->get->paused = 0;
        oc_reg_call_unpause(r->get->call);
    }
    if (r->ready && (r->src_done || r->src_failed)) { /* last: it may free the relay */
        void (*ready)(void *, const oc_error *) = r->ready;
        r->ready = NULL;
        ready(r->ready_opaque, r->src_failed ? &r->src_err : NULL);
    }
}

/* ---- the upload source ---- */

static int src_body(void *opaque, uint64_t from, uint64_t len, oc_http_body *out, oc_error *err)
{
    oc_relay *r = opaque;
    if (r->src_failed && r->src_wrong && from == 0) {
        /* wrong bytes (the upload never committed them): a new GET */
        r->src_failed = r->src_wrong = 0;
        oc_error_clear(&r->src_err);
    }
    if (r->src_failed) {
        *err = r->src_err;
        return OC_UPLOAD_SOURCE_FAILED;
    }
    if (from == 0 && (r->delivered > 0 || r->get || r->src_done || r->received)) {
        /* the upload starts over: so does the stream */
        abandon(r);
        r->head = r->len = 0;
        r->received = r->delivered = r->skip = 0;
        r->src_done = 0;
        oc_sha256_reset(r->hash);
    } else if (from != r->delivered) {
        oc_error_set(err, OC_E_NET, "a streamed blob cannot go back to byte %" PRIu64, from);
        return OC_UPLOAD_SOURCE_CANNOT;
    }
    /* the ring, once: the GET starts when the PATCH reads its first bytes */
    if (!r->ring && !(r->ring = malloc(RING_CAP))) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return OC_UPLOAD_SOURCE_FAILED;
    }
    memset(out, 0, sizeof *out);
    out->fd = -1;
    out->length = len;
    out->read = body_read;
    out->ended = body_ended;
    out->opaque = r;
    return 0;
}

static void src_before_commit(void *opaque, void (*ready)(void *ready_opaque, const oc_error *err),
                              void *ready_opaque)
{
    oc_relay *r = opaque;
    r->ready = ready;
    r->ready_opaque = ready_opaque;
    kick(r);
}

void oc_relay_source(oc_relay *r, oc_upload_source *out)
{
    memset(out, 0, sizeof *out);
    out->body = src_body;
    out->before_commit = src_before_commit;
    out->opaque = r;
}

uint64_t oc_relay_received(const oc_relay *r)
{
    return r->total_received;
}

oc_relay *oc_relay_new(oc_registry *src, const char *repo, const char *digest, uint64_t size,
                       oc_error *err)
{
    oc_relay *r = calloc(1, sizeof *r);
    if (!r || !(r->hash = oc_sha256_new()) || !(r->repo = strdup(repo)) ||
        !(r->digest = strdup(digest))) {
        if (r) {
            oc_sha256_free(r->hash);
            free(r->repo);
            free(r);
        }
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    r->src = src;
    r->e = oc_registry_engine(src);
    r->size = size;
    uv_timer_init(r->e->loop, &r->kick);
    r->kick.data = r;
    return r;
}

void oc_relay_free(oc_relay *r)
{
    if (!r)
        return;
    r->freeing = 1;
    r->ready = NULL;
    r->send_t = NULL;
    abandon(r);
    maybe_free(r);
}
