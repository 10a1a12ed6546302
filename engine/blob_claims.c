/* blob_claims.c - one download of a blob across processes (see
 * blob_claims.h). */
#include "engine/blob_claims.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/pidlock.h"
#include "io/strmap.h"
#include "io/grow.h"

#define TICK_MS 200
#define RECHECK_TICKS 5    /* the owner's liveness: every second */
#define HEARTBEAT_TICKS 50 /* touch our locks every 10 s */
#define STALE_S 60         /* another host's lock untouched this long is dead */

typedef struct waiter {
    char *path;
    void (*again)(void *);
    void *opaque;
} waiter;

struct oc_blob_claims {
    uv_timer_t timer;
    oc_engine *e;
    char *dir;       /* STORE/.occystrap/fetching */
    char *mutex;     /* STORE/.occystrap/fetching.lock */
    oc_strmap *held; /* digest -> lock path */
    waiter *w;
    size_t n_w, cap_w;
    unsigned ticks;
    unsigned taken, waits;
    int running;
};

static void free_str(void *p)
{
    free(p);
}

oc_blob_claims *oc_blob_claims_new(oc_engine *e, oc_store *s, oc_error *err)
{
    oc_blob_claims *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = oc_store_path(s, ".occystrap/fetching")) ||
        !(c->mutex = oc_store_path(s, ".occystrap/fetching.lock")) ||
        !(c->held = oc_strmap_new(free_str))) {
        if (c) {
            free(c->dir);
            free(c->mutex);
            free(c);
        }
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    if (oc_mkdirs(c->dir, err) != 0) {
        oc_strmap_free(c->held);
        free(c->dir);
        free(c->mutex);
        free(c);
        return NULL;
    }
    c->e = e;
    uv_timer_init(e->loop, &c->timer);
    c->timer.data = c;
    return c;
}

static char *lock_path(const oc_blob_claims *c, const char *digest)
{
    char hex[OC_SHA256_HEX_LEN + 1], *p = NULL;
    if (oc_digest_parse(digest, hex, NULL) != 0 || asprintf(&p, "%s/%s.lock", c->dir, hex) < 0)
        return NULL;
    return p;
}

/* Wake waiter i (removed from the list first: again may claim anew). */
static void wake(oc_blob_claims *c, size_t i)
{
    waiter w = c->w[i];
    c->w[i] = c->w[--c->n_w];
    free(w.path);
    w.again(w.opaque);
}

static void touch_held(const char *digest, void *path, void *opaque)
{
    (void)digest;
    (void)opaque;
    if (path)
        oc_pidlock_touch(path);
}

static void release_held(const char *digest, void *path, void *opaque)
{
    (void)digest;
    if (path)
        oc_pidlock_release(path, ((oc_blob_claims *)opaque)->mutex);
}

static void on_tick(uv_timer_t *t)
{
    oc_blob_claims *c = t->data;
    c->ticks++;
    int recheck = c->e->interrupted || c->ticks % RECHECK_TICKS == 0;
    /* wake from the end, so that a waiter added by a wake is not seen */
    for (size_t i = c->n_w; i-- > 0;) {
        if (i >= c->n_w)
            continue;
        struct stat st;
        if (recheck || stat(c->w[i].path, &st) != 0)
            wake(c, i);
    }
    if (c->ticks % HEARTBEAT_TICKS == 0)
        oc_strmap_foreach(c->held, touch_held, NULL);
    if (c->n_w == 0)
        uv_unref((uv_handle_t *)&c->timer);
}

/* The timer runs from the first claim on (heartbeats); it keeps the loop
 * alive only while someone waits. */
static void ensure_timer(oc_blob_claims *c)
{
    if (!c->running) {
        uv_timer_start(&c->timer, on_tick, TICK_MS, TICK_MS);
        c->running = 1;
        uv_unref((uv_handle_t *)&c->timer);
    }
}

static int add_waiter(oc_blob_claims *c, char *path, void (*again)(void *), void *opaque)
{
    waiter *grown = oc_grow(c->w, &c->cap_w, c->n_w + 1, sizeof *grown, 16);
    if (!grown)
        return -1;
    c->w = grown;
    c->w[c->n_w++] = (waiter){path, again, opaque};
    ensure_timer(c);
    uv_ref((uv_handle_t *)&c->timer);
    return 0;
}

int oc_blob_claims_claim(void *opaque, const char *digest, void (*again)(void *),
                         void *again_opaque, oc_error *err)
{
    oc_blob_claims *c = opaque;
    if (c->e->interrupted) {
        oc_error_set(err, OC_E_CANCELLED, "layer %s: %s", digest, c->e->interrupted_why);
        return -1;
    }
    char *path = lock_path(c, digest);
    if (!path) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    char owner[300] = "";
    int r = oc_pidlock_try(path, c->mutex, STALE_S, owner, sizeof owner, err);
    if (r == 0) {
        if (oc_strmap_set(c->held, digest, path) != 0) {
            oc_pidlock_release(path, c->mutex);
            free(path);
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            return -1;
        }
        c->taken++;
        ensure_timer(c);
        return 0;
    }
    if (r < 0) {
        free(path);
        oc_error_prefix(err, "layer %s", digest);
        return -1;
    }
    oc_engine_log(c->e, "layer %s: process %s is fetching it into this store; waiting", digest,
                  owner);
    if (add_waiter(c, path, again, again_opaque) != 0) {
        free(path);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    c->waits++;
    return 1;
}

void oc_blob_claims_release(void *opaque, const char *digest)
{
    oc_blob_claims *c = opaque;
    const char *path = oc_strmap_get(c->held, digest);
    if (!path)
        return;
    oc_pidlock_release(path, c->mutex);
    oc_strmap_set(c->held, digest, NULL); /* frees the path */
}

unsigned oc_blob_claims_taken(const oc_blob_claims *c)
{
    return c->taken;
}

unsigned oc_blob_claims_waits(const oc_blob_claims *c)
{
    return c->waits;
}

static void on_closed(uv_handle_t *h)
{
    oc_blob_claims *c = h->data;
    oc_strmap_free(c->held);
    free(c->w);
    free(c->dir);
    free(c->mutex);
    free(c);
}

void oc_blob_claims_close(oc_blob_claims *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_w; i++)
        free(c->w[i].path);
    c->n_w = 0;
    oc_strmap_foreach(c->held, release_held, c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}
