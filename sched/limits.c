/* limits.c - global and per-key concurrency caps with FIFO waiters (see
 * limits.h). Keys are few (one per registry), so they live in a small array
 * searched linearly. */
#include "sched/limits.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_slot {
    char *key;
    unsigned max;
    unsigned active;
    double rate;   /* requests per second, 0 = unlimited */
    double tokens; /* bucket, at most max(rate, 1) */
    uint64_t refilled_ms;
} key_slot;

struct oc_limiter {
    unsigned global_max;
    unsigned global_active;
    unsigned default_key_max;
    key_slot *keys;
    int n_keys;
    oc_slot_wait *head; /* FIFO of waiters over all keys */
    oc_slot_wait *tail;
    uv_loop_t *loop;    /* set with the first rate */
    uv_timer_t *refill; /* wakes waiters held back only by a rate */
    int draining;       /* oc_limiter_drain: every slot is granted at once */
};

oc_limiter *oc_limiter_new(unsigned global_max, unsigned default_key_max)
{
    oc_limiter *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->global_max = global_max;
    l->default_key_max = default_key_max ? default_key_max : 8;
    return l;
}

void oc_limiter_free(oc_limiter *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n_keys; i++)
        free(l->keys[i].key);
    free(l->keys);
    free(l);
}

static int key_find(oc_limiter *l, const char *key, int create)
{
    for (int i = 0; i < l->n_keys; i++)
        if (strcmp(l->keys[i].key, key) == 0)
            return i;
    if (!create)
        return -1;
    key_slot *grown = realloc(l->keys, sizeof *grown * (size_t)(l->n_keys + 1));
    if (!grown)
        return -1;
    l->keys = grown;
    char *copy = strdup(key);
    if (!copy)
        return -1;
    l->keys[l->n_keys] = (key_slot){.key = copy, .max = l->default_key_max, .active = 0};
    return l->n_keys++;
}

void oc_limiter_set_key_max(oc_limiter *l, const char *key, unsigned max)
{
    int i = key_find(l, key, 1);
    if (i >= 0 && max > 0)
        l->keys[i].max = max;
}

static void refill(oc_limiter *l, key_slot *k)
{
    if (k->rate <= 0 || !l->loop)
        return;
    uint64_t now = uv_now(l->loop);
    double cap = k->rate < 1 ? 1 : k->rate;
    k->tokens += (double)(now - k->refilled_ms) * k->rate / 1000.0;
    if (k->tokens > cap)
        k->tokens = cap;
    k->refilled_ms = now;
}

static int rate_allows(oc_limiter *l, key_slot *k)
{
    refill(l, k);
    return k->rate <= 0 || k->tokens >= 1.0;
}

static int fits(oc_limiter *l, int key_index)
{
    if (l->draining)
        return 1;
    if (l->global_max && l->global_active >= l->global_max)
        return 0;
    key_slot *k = &l->keys[key_index];
    return k->active < k->max && rate_allows(l, k);
}

static void take(oc_limiter *l, int key_index)
{
    l->global_active++;
    l->keys[key_index].active++;
    if (l->keys[key_index].rate > 0)
        l->keys[key_index].tokens -= 1.0;
}

static void arm_refill(oc_limiter *l);

int oc_limiter_acquire(oc_limiter *l, const char *key, oc_slot_wait *w)
{
    int i = key_find(l, key, 1);
    if (i < 0)
        return -1;
    w->key_index = i;
    w->next = NULL;
    /* Nobody overtakes a waiter of the same key. */
    int queued_same_key = 0;
    for (oc_slot_wait *q = l->head; q; q = q->next)
        if (q->key_index == i)
            queued_same_key = 1;
    if (!queued_same_key && fits(l, i)) {
        w->waiting = 0;
        take(l, i);
        w->granted(w);
        return 0;
    }
    w->waiting = 1;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    arm_refill(l);
    return 0;
}

static void unlink_waiter(oc_limiter *l, oc_slot_wait *w)
{
    oc_slot_wait *prev = NULL;
    for (oc_slot_wait *q = l->head; q; prev = q, q = q->next) {
        if (q != w)
            continue;
        if (prev)
            prev->next = q->next;
        else
            l->head = q->next;
        if (l->tail == q)
            l->tail = prev;
        w->next = NULL;
        w->waiting = 0;
        return;
    }
}

static void grant_waiters(oc_limiter *l);

static void on_refill(uv_timer_t *t)
{
    grant_waiters(t->data);
}

/* A waiter held back only by its key's rate: wake up when a token is due. */
static void arm_refill(oc_limiter *l)
{
    if (!l->refill)
        return;
    uint64_t wait_ms = 0;
    for (oc_slot_wait *q = l->head; q; q = q->next) {
        key_slot *k = &l->keys[q->key_index];
        if (k->rate <= 0 || k->active >= k->max || k->tokens >= 1.0)
            continue;
        uint64_t ms = (uint64_t)((1.0 - k->tokens) * 1000.0 / k->rate) + 1;
        if (wait_ms == 0 || ms < wait_ms)
            wait_ms = ms;
    }
    if (wait_ms)
        uv_timer_start(l->refill, on_refill, wait_ms, 0);
}

static void grant_waiters(oc_limiter *l)
{
    for (;;) {
        oc_slot_wait *pick = NULL;
        for (oc_slot_wait *q = l->head; q; q = q->next) {
            if (fits(l, q->key_index)) {
                pick = q;
                break;
            }
        }
        if (!pick)
            break;
        unlink_waiter(l, pick);
        take(l, pick->key_index);
        pick->granted(pick);
    }
    arm_refill(l);
}

void oc_limiter_release(oc_limiter *l, oc_slot_wait *w)
{
    if (l->global_active > 0)
        l->global_active--;
    if (l->keys[w->key_index].active > 0)
        l->keys[w->key_index].active--;
    grant_waiters(l);
}

void oc_limiter_drain(oc_limiter *l)
{
    l->draining = 1;
    grant_waiters(l);
    /* nothing waits for a token any more: a refill due in minutes must not
     * keep the loop (and an interrupted run) alive until then */
    if (l->refill)
        uv_timer_stop(l->refill);
}

void oc_limiter_withdraw(oc_limiter *l, oc_slot_wait *w)
{
    if (w->waiting)
        unlink_waiter(l, w);
}

unsigned oc_limiter_active(const oc_limiter *l, const char *key)
{
    for (int i = 0; i < l->n_keys; i++)
        if (strcmp(l->keys[i].key, key) == 0)
            return l->keys[i].active;
    return 0;
}

int oc_limiter_set_key_rate(oc_limiter *l, uv_loop_t *loop, const char *key, double rps)
{
    int i = key_find(l, key, 1);
    if (i < 0)
        return -1;
    if (rps > 0 && !l->refill) {
        l->refill = malloc(sizeof *l->refill);
        if (!l->refill)
            return -1;
        uv_timer_init(loop, l->refill);
        l->refill->data = l; /* only an armed timer keeps the loop alive */
        l->loop = loop;
    }
    key_slot *k = &l->keys[i];
    if (k->rate <= 0 && rps > 0) {
        k->tokens = 1.0; /* the first request goes at once */
        k->refilled_ms = uv_now(loop);
    }
    k->rate = rps > 0 ? rps : 0;
    return 0;
}

double oc_limiter_key_rate(const oc_limiter *l, const char *key)
{
    for (int i = 0; i < l->n_keys; i++)
        if (strcmp(l->keys[i].key, key) == 0)
            return l->keys[i].rate;
    return 0;
}

static void refill_closed(uv_handle_t *h)
{
    free(h);
}

void oc_limiter_close(oc_limiter *l)
{
    if (l && l->refill) {
        uv_close((uv_handle_t *)l->refill, refill_closed);
        l->refill = NULL;
    }
}
