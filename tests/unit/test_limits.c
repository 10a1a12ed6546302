/* test_limits.c - concurrency caps with FIFO waiters (sched/limits.h).
 *
 * A global cap and per-key caps (default and configured); a slot granted at
 * once runs its callback before acquire returns; waiters of one key are
 * granted in FIFO order and a newcomer never overtakes a queued waiter of
 * its key; a waiter of key A does not hold up key B when B has room (neither
 * for the per-key nor for the global cap); release grants the next waiter
 * that fits; withdraw removes a waiter (granted ones are unaffected); and
 * granted callbacks may acquire and release re-entrantly; drain grants every
 * waiter and later acquire at once. The counts are
 * cross-checked against a model after every step of a random run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/limits.h"

/* Every waiter records the order in which it was granted. */
typedef struct rec {
    oc_slot_wait w; /* first member */
    int id;
    int granted;
    int grant_seq;
    const char *key;
} rec;

static int grant_clock;
static int grant_log[256];
static int grant_log_n;

static void on_granted(oc_slot_wait *w)
{
    rec *r = w->opaque;
    assert_ptr_equal(&r->w, w);
    assert_int_equal(r->granted, 0); /* never granted twice */
    r->granted = 1;
    r->grant_seq = grant_clock++;
    if (grant_log_n < (int)(sizeof grant_log / sizeof grant_log[0]))
        grant_log[grant_log_n++] = r->id;
}

static void rec_init(rec *r, int id, const char *key)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->key = key;
    r->w.granted = on_granted;
    r->w.opaque = r;
    r->grant_seq = -1;
}

static int reset_log(void **state)
{
    (void)state;
    grant_clock = 0;
    grant_log_n = 0;
    return 0;
}

static void acquire(oc_limiter *l, rec *r)
{
    assert_int_equal(oc_limiter_acquire(l, r->key, &r->w), 0);
}

static void test_key_cap_default_and_set(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(0, 2); /* no global cap, 2 per key */
    assert_non_null(l);
    rec r[4];
    for (int i = 0; i < 4; i++)
        rec_init(&r[i], i, "a.example");
    acquire(l, &r[0]);
    assert_true(r[0].granted); /* granted before acquire returned */
    acquire(l, &r[1]);
    assert_true(r[1].granted);
    acquire(l, &r[2]);
    assert_false(r[2].granted);
    assert_int_equal(oc_limiter_active(l, "a.example"), 2);
    assert_int_equal(oc_limiter_active(l, "unknown"), 0);

    /* a configured key has its own cap */
    oc_limiter_set_key_max(l, "b.example", 3);
    rec b[4];
    for (int i = 0; i < 4; i++) {
        rec_init(&b[i], 10 + i, "b.example");
        acquire(l, &b[i]);
    }
    assert_true(b[0].granted && b[1].granted && b[2].granted);
    assert_false(b[3].granted);
    assert_int_equal(oc_limiter_active(l, "b.example"), 3);

    /* max 0 keeps the cap that was there */
    oc_limiter_set_key_max(l, "c.example", 0);
    rec c[3];
    for (int i = 0; i < 3; i++) {
        rec_init(&c[i], 20 + i, "c.example");
        acquire(l, &c[i]);
    }
    assert_true(c[0].granted && c[1].granted);
    assert_false(c[2].granted);

    /* release: the waiter of that key, and only that one, is granted */
    oc_limiter_release(l, &r[0].w);
    assert_true(r[2].granted);
    assert_false(b[3].granted);
    assert_false(c[2].granted);
    assert_int_equal(oc_limiter_active(l, "a.example"), 2);
    oc_limiter_release(l, &b[1].w);
    assert_true(b[3].granted);
    assert_false(c[2].granted);

    /* drain everything */
    oc_limiter_release(l, &r[1].w);
    oc_limiter_release(l, &r[2].w);
    oc_limiter_release(l, &b[0].w);
    oc_limiter_release(l, &b[2].w);
    oc_limiter_release(l, &b[3].w);
    oc_limiter_release(l, &c[0].w);
    assert_true(c[2].granted);
    oc_limiter_release(l, &c[1].w);
    oc_limiter_release(l, &c[2].w);
    assert_int_equal(oc_limiter_active(l, "a.example"), 0);
    assert_int_equal(oc_limiter_active(l, "b.example"), 0);
    assert_int_equal(oc_limiter_active(l, "c.example"), 0);
    oc_limiter_free(l);
}

static void test_default_key_max_zero_means_8(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(0, 0);
    assert_non_null(l);
    rec r[9];
    for (int i = 0; i < 9; i++) {
        rec_init(&r[i], i, "k");
        acquire(l, &r[i]);
    }
    for (int i = 0; i < 8; i++)
        assert_true(r[i].granted);
    assert_false(r[8].granted);
    oc_limiter_withdraw(l, &r[8].w);
    for (int i = 0; i < 8; i++)
        oc_limiter_release(l, &r[i].w);
    assert_false(r[8].granted);
    oc_limiter_free(l);
    oc_limiter_free(NULL);
}

static void test_global_cap(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(3, 10);
    assert_non_null(l);
    rec r[6];
    const char *keys[] = {"a", "b", "c", "a", "b", "c"};
    for (int i = 0; i < 6; i++) {
        rec_init(&r[i], i, keys[i]);
        acquire(l, &r[i]);
    }
    assert_true(r[0].granted && r[1].granted && r[2].granted);
    assert_false(r[3].granted || r[4].granted || r[5].granted);
    /* global FIFO across keys: the oldest waiter gets the freed slot, even
     * when the slot was freed under another key */
    oc_limiter_release(l, &r[2].w); /* a "c" slot */
    assert_true(r[3].granted);      /* an "a" waiter */
    assert_false(r[4].granted || r[5].granted);
    oc_limiter_release(l, &r[0].w);
    assert_true(r[4].granted);
    assert_false(r[5].granted);
    oc_limiter_release(l, &r[1].w);
    assert_true(r[5].granted);
    assert_int_equal(grant_log_n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(grant_log[i], i);
    for (int i = 3; i < 6; i++)
        oc_limiter_release(l, &r[i].w);
    oc_limiter_free(l);
}

/* A stopping run: drain grants every waiter at once, in FIFO order, and
 * every later acquire at once, whatever the caps. */
static void test_drain(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(2, 1);
    assert_non_null(l);
    rec r[6];
    const char *keys[] = {"a", "b", "a", "b", "c", "a"};
    for (int i = 0; i < 5; i++) {
        rec_init(&r[i], i, keys[i]);
        acquire(l, &r[i]);
    }
    assert_true(r[0].granted && r[1].granted);
    assert_false(r[2].granted || r[3].granted || r[4].granted);
    oc_limiter_drain(l);
    for (int i = 0; i < 5; i++)
        assert_true(r[i].granted);
    assert_int_equal(grant_log_n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(grant_log[i], i);
    rec_init(&r[5], 5, keys[5]);
    acquire(l, &r[5]); /* "a" is over its cap of 1 and the global cap of 2 */
    assert_true(r[5].granted);
    assert_int_equal(oc_limiter_active(l, "a"), 3);
    for (int i = 0; i < 6; i++)
        oc_limiter_release(l, &r[i].w);
    assert_int_equal(oc_limiter_active(l, "a"), 0);
    oc_limiter_free(l);
}

static void test_fifo_within_key(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(0, 1);
    assert_non_null(l);
    enum { N = 20 };
    rec r[N];
    for (int i = 0; i < N; i++) {
        rec_init(&r[i], i, "reg");
        acquire(l, &r[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_true(r[i].granted);
        for (int k = i + 1; k < N; k++)
            assert_false(r[k].granted);
        oc_limiter_release(l, &r[i].w);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(grant_log[i], i);
    assert_int_equal(oc_limiter_active(l, "reg"), 0);
    oc_limiter_free(l);
}

/* A newcomer must queue behind a waiter of its key even when, at that
 * moment, the key has room (the waiter was held back by the global cap). */
static void test_no_overtaking_within_key(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(2, 5);
    assert_non_null(l);
    rec x, y, a1, a2;
    rec_init(&x, 0, "x");
    rec_init(&y, 1, "y");
    rec_init(&a1, 2, "a");
    rec_init(&a2, 3, "a");
    acquire(l, &x);
    acquire(l, &y);
    acquire(l, &a1); /* global full: waits */
    assert_false(a1.granted);
    oc_limiter_release(l, &x.w); /* a1 granted */
    assert_true(a1.granted);
    /* global full again (y, a1). Another "a" waits; a "z" waits too */
    acquire(l, &a2);
    assert_false(a2.granted);
    rec z;
    rec_init(&z, 4, "z");
    acquire(l, &z);
    assert_false(z.granted);
    oc_limiter_release(l, &y.w); /* one slot: a2 is older than z */
    assert_true(a2.granted);
    assert_false(z.granted);
    oc_limiter_release(l, &a1.w);
    assert_true(z.granted);
    oc_limiter_release(l, &a2.w);
    oc_limiter_release(l, &z.w);
    oc_limiter_free(l);
}

/* A key-capped waiter of A does not block B, neither when B arrives (B has
 * room) nor when a slot frees (the first waiter that fits is granted). */
static void test_waiter_of_a_does_not_block_b(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(10, 1);
    assert_non_null(l);
    rec a1, a2, b1, b2, b3;
    rec_init(&a1, 0, "A");
    rec_init(&a2, 1, "A");
    rec_init(&b1, 2, "B");
    rec_init(&b2, 3, "B");
    rec_init(&b3, 4, "B");
    acquire(l, &a1);
    acquire(l, &a2);
    assert_false(a2.granted); /* A is full */
    acquire(l, &b1);
    assert_true(b1.granted); /* B has room although A has a waiter ahead */
    acquire(l, &b2);
    assert_false(b2.granted);
    acquire(l, &b3);
    assert_false(b3.granted);
    /* a B slot frees: b2 (behind a2 in the queue) is granted, a2 still waits */
    oc_limiter_release(l, &b1.w);
    assert_true(b2.granted);
    assert_false(a2.granted);
    assert_false(b3.granted);
    oc_limiter_release(l, &a1.w);
    assert_true(a2.granted);
    assert_false(b3.granted);
    oc_limiter_release(l, &b2.w);
    assert_true(b3.granted);
    oc_limiter_release(l, &a2.w);
    oc_limiter_release(l, &b3.w);
    assert_int_equal(oc_limiter_active(l, "A"), 0);
    assert_int_equal(oc_limiter_active(l, "B"), 0);
    oc_limiter_free(l);
}

/* Raising a key's cap at run time does not grant by itself (the header:
 * waiters are granted when a slot is released), but a newcomer must still
 * not overtake the waiter that was queued first. */
static void test_raised_cap_keeps_fifo(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(0, 1);
    assert_non_null(l);
    rec h, w1, a;
    rec_init(&h, 0, "k");
    rec_init(&w1, 1, "k");
    rec_init(&a, 2, "k");
    acquire(l, &h);
    acquire(l, &w1);
    assert_false(w1.granted);
    oc_limiter_set_key_max(l, "k", 2);
    acquire(l, &a);
    assert_false(a.granted && !w1.granted); /* no overtaking */
    oc_limiter_release(l, &h.w);
    /* two slots: both waiters, in order */
    assert_true(w1.granted);
    assert_true(a.granted);
    assert_true(w1.grant_seq < a.grant_seq);
    assert_int_equal(oc_limiter_active(l, "k"), 2);
    oc_limiter_release(l, &w1.w);
    oc_limiter_release(l, &a.w);
    oc_limiter_free(l);
}

static void test_withdraw(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(0, 1);
    assert_non_null(l);
    rec r[5];
    for (int i = 0; i < 5; i++) {
        rec_init(&r[i], i, "k");
        acquire(l, &r[i]);
    }
    /* withdraw from the middle, the tail and the head of the queue */
    oc_limiter_withdraw(l, &r[2].w);
    oc_limiter_withdraw(l, &r[4].w);
    oc_limiter_withdraw(l, &r[1].w);
    /* twice is harmless, and so is withdrawing the granted one */
    oc_limiter_withdraw(l, &r[2].w);
    oc_limiter_withdraw(l, &r[0].w);
    assert_int_equal(oc_limiter_active(l, "k"), 1);
    oc_limiter_release(l, &r[0].w);
    assert_true(r[3].granted);
    assert_false(r[1].granted || r[2].granted || r[4].granted);
    /* the queue is consistent after removing its tail: a new waiter queues
     * and is granted next */
    rec n;
    rec_init(&n, 9, "k");
    acquire(l, &n);
    assert_false(n.granted);
    oc_limiter_release(l, &r[3].w);
    assert_true(n.granted);
    oc_limiter_release(l, &n.w);
    assert_int_equal(oc_limiter_active(l, "k"), 0);
    assert_false(r[1].granted || r[2].granted || r[4].granted);
    /* withdrawing the only waiter empties the queue: the next acquire of the
     * key is granted at once */
    rec a, b, c;
    rec_init(&a, 20, "k");
    rec_init(&b, 21, "k");
    rec_init(&c, 22, "k");
    acquire(l, &a);
    acquire(l, &b);
    oc_limiter_withdraw(l, &b.w);
    oc_limiter_release(l, &a.w);
    acquire(l, &c);
    assert_true(c.granted);
    assert_false(b.granted);
    oc_limiter_release(l, &c.w);
    oc_limiter_free(l);
}

/* ---- re-entrancy ---- */

/* A chain: each granted callback releases its own slot at once (a request
 * that fails synchronously) and the next waiter must then be granted. */
typedef struct chain {
    oc_slot_wait w;
    oc_limiter *l;
    int granted;
    int release_in_cb;
    struct chain *acquire_next; /* acquire this one from inside the callback */
    const char *key;
} chain;

static int chain_depth, chain_max_depth;

static void chain_granted(oc_slot_wait *w)
{
    chain *c = w->opaque;
    c->granted++;
    chain_depth++;
    if (chain_depth > chain_max_depth)
        chain_max_depth = chain_depth;
    if (c->acquire_next)
        assert_int_equal(oc_limiter_acquire(c->l, c->acquire_next->key, &c->acquire_next->w), 0);
    if (c->release_in_cb)
        oc_limiter_release(c->l, &c->w);
    chain_depth--;
}

static void chain_init(chain *c, oc_limiter *l, const char *key)
{
    memset(c, 0, sizeof *c);
    c->l = l;
    c->key = key;
    c->w.granted = chain_granted;
    c->w.opaque = c;
}

static void test_reentrant_release_in_grant(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(0, 1);
    assert_non_null(l);
    enum { N = 10 };
    chain holder, c[N];
    chain_init(&holder, l, "k");
    assert_int_equal(oc_limiter_acquire(l, "k", &holder.w), 0);
    assert_int_equal(holder.granted, 1);
    for (int i = 0; i < N; i++) {
        chain_init(&c[i], l, "k");
        c[i].release_in_cb = 1;
        assert_int_equal(oc_limiter_acquire(l, "k", &c[i].w), 0);
        assert_int_equal(c[i].granted, 0);
    }
    oc_limiter_release(l, &holder.w);
    for (int i = 0; i < N; i++)
        assert_int_equal(c[i].granted, 1);
    assert_int_equal(oc_limiter_active(l, "k"), 0);
    /* and the limiter still works afterwards */
    chain after;
    chain_init(&after, l, "k");
    assert_int_equal(oc_limiter_acquire(l, "k", &after.w), 0);
    assert_int_equal(after.granted, 1);
    assert_int_equal(oc_limiter_active(l, "k"), 1);
    oc_limiter_release(l, &after.w);
    oc_limiter_free(l);
}

static void test_reentrant_acquire_in_grant(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(0, 2);
    assert_non_null(l);
    /* granted immediately, and its callback acquires the next one (also
     * granted immediately, nested), whose callback acquires a third that
     * must wait */
    chain a, b, c, d;
    chain_init(&a, l, "k");
    chain_init(&b, l, "k");
    chain_init(&c, l, "k");
    chain_init(&d, l, "other");
    a.acquire_next = &b;
    b.acquire_next = &c;
    c.acquire_next = &d;
    chain_depth = chain_max_depth = 0;
    assert_int_equal(oc_limiter_acquire(l, "k", &a.w), 0);
    assert_int_equal(a.granted, 1);
    assert_int_equal(b.granted, 1);
    assert_int_equal(c.granted, 0);
    assert_int_equal(d.granted, 0);
    assert_int_equal(oc_limiter_active(l, "k"), 2);
    /* release a: c is granted and from its callback acquires d (another key,
     * room) which is granted at once */
    oc_limiter_release(l, &a.w);
    assert_int_equal(c.granted, 1);
    assert_int_equal(d.granted, 1);
    assert_int_equal(oc_limiter_active(l, "k"), 2);
    assert_int_equal(oc_limiter_active(l, "other"), 1);
    oc_limiter_release(l, &b.w);
    oc_limiter_release(l, &c.w);
    oc_limiter_release(l, &d.w);
    assert_int_equal(oc_limiter_active(l, "k"), 0);
    assert_int_equal(oc_limiter_active(l, "other"), 0);
    oc_limiter_free(l);
}

/* Callback releases a *different* granted slot, which grants further
 * waiters while the outer grant loop is still running. */
typedef struct cross {
    oc_slot_wait w;
    oc_limiter *l;
    int granted;
    oc_slot_wait *release_other;
} cross;

static void cross_granted(oc_slot_wait *w)
{
    cross *c = w->opaque;
    c->granted++;
    if (c->release_other) {
        oc_slot_wait *o = c->release_other;
        c->release_other = NULL;
        oc_limiter_release(c->l, o);
    }
}

static void test_reentrant_release_other(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(2, 2);
    assert_non_null(l);
    cross h1 = {0}, h2 = {0}, w[4];
    memset(w, 0, sizeof w);
    cross *all[] = {&h1, &h2, &w[0], &w[1], &w[2], &w[3]};
    for (size_t i = 0; i < 6; i++) {
        all[i]->l = l;
        all[i]->w.granted = cross_granted;
        all[i]->w.opaque = all[i];
    }
    assert_int_equal(oc_limiter_acquire(l, "k", &h1.w), 0);
    assert_int_equal(oc_limiter_acquire(l, "k", &h2.w), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(oc_limiter_acquire(l, "k", &w[i].w), 0);
    w[0].release_other = &h2.w; /* when w0 is granted it frees h2's slot */
    oc_limiter_release(l, &h1.w);
    assert_int_equal(w[0].granted, 1);
    assert_int_equal(w[1].granted, 1);
    assert_int_equal(w[2].granted, 0);
    assert_int_equal(oc_limiter_active(l, "k"), 2);
    oc_limiter_release(l, &w[0].w);
    oc_limiter_release(l, &w[1].w);
    assert_int_equal(w[2].granted, 1);
    assert_int_equal(w[3].granted, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(w[i].granted, 1);
    oc_limiter_release(l, &w[2].w);
    oc_limiter_release(l, &w[3].w);
    assert_int_equal(oc_limiter_active(l, "k"), 0);
    oc_limiter_free(l);
}

/* The registry client's pattern: a granted callback fails to start its
 * request, releases its slot and asks again with the same waiter. The slot
 * must go to the next waiter and the retrying one queue behind it. */
typedef struct retrier {
    oc_slot_wait w;
    oc_limiter *l;
    int granted;
    int retries_left;
    int order[8];
} retrier;

static int retr_clock;

static void retrier_granted(oc_slot_wait *w)
{
    retrier *r = w->opaque;
    if (r->granted < 8)
        r->order[r->granted] = retr_clock;
    retr_clock++;
    r->granted++;
    if (r->retries_left > 0) {
        r->retries_left--;
        oc_limiter_release(r->l, &r->w);
        assert_int_equal(oc_limiter_acquire(r->l, "k", &r->w), 0);
    }
}

static void test_reentrant_release_and_reacquire_self(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(0, 1);
    assert_non_null(l);
    retrier h, a, b;
    retrier *all[] = {&h, &a, &b};
    for (int i = 0; i < 3; i++) {
        memset(all[i], 0, sizeof *all[i]);
        all[i]->l = l;
        all[i]->w.granted = retrier_granted;
        all[i]->w.opaque = all[i];
    }
    retr_clock = 0;
    a.retries_left = 2;
    assert_int_equal(oc_limiter_acquire(l, "k", &h.w), 0); /* clock 0 */
    assert_int_equal(oc_limiter_acquire(l, "k", &a.w), 0);
    assert_int_equal(oc_limiter_acquire(l, "k", &b.w), 0);
    assert_int_equal(a.granted, 0);
    oc_limiter_release(l, &h.w);
    /* a granted (1), gives up its slot at once: b granted (2), a queued */
    assert_int_equal(a.granted, 1);
    assert_int_equal(b.granted, 1);
    assert_int_equal(a.order[0], 1);
    assert_int_equal(b.order[0], 2);
    assert_int_equal(oc_limiter_active(l, "k"), 1);
    oc_limiter_release(l, &b.w);
    /* a again (3), retries once more: nobody else waits, so it is granted
     * again at once, inside its own callback (4), and keeps the slot */
    assert_int_equal(a.granted, 3);
    assert_int_equal(a.retries_left, 0);
    assert_int_equal(oc_limiter_active(l, "k"), 1);
    oc_limiter_release(l, &a.w);
    assert_int_equal(oc_limiter_active(l, "k"), 0);
    /* nothing is left queued: a fresh acquire is granted at once */
    retrier c;
    memset(&c, 0, sizeof c);
    c.l = l;
    c.w.granted = retrier_granted;
    c.w.opaque = &c;
    assert_int_equal(oc_limiter_acquire(l, "k", &c.w), 0);
    assert_int_equal(c.granted, 1);
    oc_limiter_release(l, &c.w);
    oc_limiter_free(l);
}

/* ---- a random run against a model ---- */

enum { M_KEYS = 4, M_REQS = 200 };

typedef struct mreq {
    oc_slot_wait w;
    int key;
    int state; /* 0 idle, 1 waiting, 2 granted */
    long seq;  /* when it asked */
} mreq;

static const char *mkeys[M_KEYS] = {"k0", "k1", "k2", "k3"};
static unsigned mcap[M_KEYS] = {1, 2, 3, 8};
static const unsigned mglobal = 6;
static int mgranted_bad;

static void m_granted(oc_slot_wait *w)
{
    mreq *r = w->opaque;
    if (r->state != 1 && r->state != 0)
        mgranted_bad++;
    r->state = 2;
}

static void test_random_model(void **state)
{
    (void)state;
    oc_limiter *l = oc_limiter_new(mglobal, 1);
    assert_non_null(l);
    for (int k = 0; k < M_KEYS; k++)
        oc_limiter_set_key_max(l, mkeys[k], mcap[k]);
    mreq *r = calloc(M_REQS, sizeof *r);
    assert_non_null(r);
    for (int i = 0; i < M_REQS; i++) {
        r[i].key = i % M_KEYS;
        r[i].w.granted = m_granted;
        r[i].w.opaque = &r[i];
    }
    mgranted_bad = 0;
    uint32_t x = 99;
    long clock = 0;
    for (int step = 0; step < 20000; step++) {
        x = x * 1664525u + 1013904223u;
        mreq *q = &r[(x >> 8) % M_REQS];
        long asked = clock++;
        switch (q->state) {
        case 0:
            q->seq = asked;
            q->state = 1;
            assert_int_equal(oc_limiter_acquire(l, mkeys[q->key], &q->w), 0);
            break;
        case 1:
            if ((x >> 20) & 1) {
                oc_limiter_withdraw(l, &q->w);
                q->state = 0;
            }
            break;
        case 2:
            q->state = 0;
            oc_limiter_release(l, &q->w);
            break;
        }
        /* invariants */
        unsigned per[M_KEYS] = {0}, total = 0;
        for (int i = 0; i < M_REQS; i++)
            if (r[i].state == 2) {
                per[r[i].key]++;
                total++;
            }
        assert_true(total <= mglobal);
        for (int k = 0; k < M_KEYS; k++) {
            assert_true(per[k] <= mcap[k]);
            assert_int_equal(oc_limiter_active(l, mkeys[k]), per[k]);
        }
        /* work conservation: a waiting request may only be waiting because
         * its key or the global cap is full, or because an older waiter of
         * its key is still queued */
        for (int i = 0; i < M_REQS; i++) {
            if (r[i].state != 1)
                continue;
            int k = r[i].key;
            int older_same_key = 0;
            for (int j = 0; j < M_REQS; j++)
                if (r[j].state == 1 && r[j].key == k && r[j].seq < r[i].seq)
                    older_same_key = 1;
            if (!older_same_key && total < mglobal && per[k] < mcap[k])
                fail_msg("step %d: request %d (key %d) waits although there is room", step, i, k);
        }
        /* FIFO per key: no granted request of a key is younger than a
         * waiting one of the same key... unless it was granted before the
         * older one asked, which the seq comparison cannot tell apart; so
         * only check that the oldest waiter of a full key is not bypassed
         * at the time of granting (covered by test_fifo_within_key). */
    }
    assert_int_equal(mgranted_bad, 0);
    for (int i = 0; i < M_REQS; i++) {
        if (r[i].state == 1)
            oc_limiter_withdraw(l, &r[i].w);
        else if (r[i].state == 2)
            oc_limiter_release(l, &r[i].w);
        r[i].state = 0;
    }
    for (int k = 0; k < M_KEYS; k++)
        assert_int_equal(oc_limiter_active(l, mkeys[k]), 0);
    free(r);
    oc_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_key_cap_default_and_set, reset_log),
        cmocka_unit_test_setup(test_default_key_max_zero_means_8, reset_log),
        cmocka_unit_test_setup(test_global_cap, reset_log),
        cmocka_unit_test_setup(test_drain, reset_log),
        cmocka_unit_test_setup(test_fifo_within_key, reset_log),
        cmocka_unit_test_setup(test_no_overtaking_within_key, reset_log),
        cmocka_unit_test_setup(test_waiter_of_a_does_not_block_b, reset_log),
        cmocka_unit_test_setup(test_raised_cap_keeps_fifo, reset_log),
        cmocka_unit_test_setup(test_withdraw, reset_log),
        cmocka_unit_test_setup(test_reentrant_release_in_grant, reset_log),
        cmocka_unit_test_setup(test_reentrant_acquire_in_grant, reset_log),
        cmocka_unit_test_setup(test_reentrant_release_other, reset_log),
        cmocka_unit_test_setup(test_reentrant_release_and_reacquire_self, reset_log),
        cmocka_unit_test_setup(test_random_model, reset_log),
    };
    /* OCCY_TEST_FILTER=test_x runs a subset (handy under valgrind) */
    if (getenv("OCCY_TEST_FILTER"))
        cmocka_set_test_filter(getenv("OCCY_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
