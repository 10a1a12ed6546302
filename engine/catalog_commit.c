/* catalog_commit.c - group commit of catalog entries (see
 * catalog_commit.h). */
#include "engine/catalog_commit.h"
#include "io/grow.h"

#include <stdlib.h>
#include <string.h>

#define PERIOD_MS 1000
#define COST_FACTOR 10

typedef struct waiter {
    oc_catalog_listed listed;
    void *opaque;
} waiter;

struct oc_catalog_commit {
    uv_timer_t timer;
    uv_loop_t *loop;
    oc_catalog_batch *b;
    waiter *w;
    size_t n_w, cap_w;
    uint64_t last_cost_ms;
    int armed;
    int flushing; /* inside a write's callbacks */
    int again;    /* oc_catalog_commit_now during those callbacks */
};

static void flush(oc_catalog_commit *c);

static void on_timer(uv_timer_t *t)
{
    oc_catalog_commit *c = t->data;
    c->armed = 0;
    flush(c);
}

oc_catalog_commit *oc_catalog_commit_new(uv_loop_t *loop, oc_catalog_batch *b)
{
    oc_catalog_commit *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->b = b;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;
}

static void arm(oc_catalog_commit *c)
{
    if (c->armed)
        return;
    uint64_t period = c->last_cost_ms * COST_FACTOR;
    if (period < PERIOD_MS)
        period = PERIOD_MS;
    c->armed = 1;
    uv_timer_start(&c->timer, on_timer, period, 0);
}

/* Room for one more waiter. */
static int room_for_waiter(oc_catalog_commit *c, oc_error *err)
{
    waiter *grown = oc_grow(c->w, &c->cap_w, c->n_w + 1, sizeof *grown, 64);
    if (!grown) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    c->w = grown;
    return 0;
}

int oc_catalog_commit_add(oc_catalog_commit *c, const char *image, const char *tag,
                          const char *manifest_file, oc_catalog_listed listed, void *opaque,
                          oc_error *err)
{
    /* room first: once the batch holds the entry, queueing its waiter
     * cannot fail */
    if (room_for_waiter(c, err) != 0 ||
        oc_catalog_batch_add(c->b, image, tag, manifest_file, err) != 0)
        return -1;
    return oc_catalog_commit_wait(c, listed, opaque, err);
}

int oc_catalog_commit_add_oci(oc_catalog_commit *c, const char *key, const char *text,
                              oc_error *err)
{
    if (oc_catalog_batch_oci_set(c->b, key, text, err) != 0)
        return -1;
    arm(c);
    return 0;
}

int oc_catalog_commit_wait(oc_catalog_commit *c, oc_catalog_listed listed, void *opaque,
                           oc_error *err)
{
    if (room_for_waiter(c, err) != 0)
        return -1;
    c->w[c->n_w++] = (waiter){listed, opaque};
    arm(c);
    return 0;
}

size_t oc_catalog_commit_pending(const oc_catalog_commit *c)
{
    return c->n_w;
}

static void flush(oc_catalog_commit *c)
{
    if (c->flushing) {
        c->again = 1;
        return;
    }
    do {
        c->again = 0;
        if (c->n_w == 0 && oc_catalog_batch_pending(c->b) == 0)
            break;
        if (c->armed) {
            uv_timer_stop(&c->timer);
            c->armed = 0;
        }
        oc_error err;
        oc_error_clear(&err);
        uv_update_time(c->loop);
        uint64_t start = uv_now(c->loop);
        int rc = oc_catalog_batch_flush(c->b, &err);
        uv_update_time(c->loop);
        c->last_cost_ms = uv_now(c->loop) - start;
        /* the callbacks may queue more: take this batch's list first */
        waiter *done = c->w;
        size_t n = c->n_w;
        c->w = NULL;
        c->n_w = c->cap_w = 0;
        /* after a failure the entries stay queued in the batch and go with
         * a later write; these images are reported as not listed now */
        c->flushing = 1;
        for (size_t i = 0; i < n; i++)
            done[i].listed(done[i].opaque, rc == 0 ? NULL : &err);
        c->flushing = 0;
        free(done);
    } while (c->again);
    if (c->n_w || oc_catalog_batch_pending(c->b))
        arm(c);
}

void oc_catalog_commit_now(oc_catalog_commit *c)
{
    flush(c);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void oc_catalog_commit_close(oc_catalog_commit *c)
{
    if (!c)
        return;
    flush(c);
    free(c->w);
    c->w = NULL;
    c->n_w = 0;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}
