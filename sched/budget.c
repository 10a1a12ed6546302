/* budget.c - a server's budget of counted requests (see budget.h).
 *
 * State: what is left as we count it (the last figure the server gave,
 * less the granted requests not answered yet), the requests in flight,
 * and when the server gives some back (reset_at, loop time; exact after a
 * Retry-After, an upper bound from the window otherwise). pump() serves the
 * FIFO of waiters after every change and arms the one timer for the next
 * reset or waiter deadline. */
#include "sched/budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct oc_budget {
    uv_loop_t *loop;
    uv_timer_t timer;
    uint64_t max_wait_ms;
    int known;         /* the server said something of its budget */
    long limit;        /* -1 unknown */
    long window_s;     /* -1 unknown */
    long left;         /* as we count it */
    long inflight;     /* granted, not answered */
    uint64_t reset_at; /* 0: not exhausted, or no idea when it resets */
    int reset_exact;   /* reset_at from a Retry-After */
    oc_budget_wait *head, *tail;
    char cancelled[128];
};

static void pump(oc_budget *b);

oc_budget *oc_budget_new(uv_loop_t *loop, uint64_t max_wait_ms)
{
    oc_budget *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->loop = loop;
    b->max_wait_ms = max_wait_ms;
    b->limit = b->window_s = -1;
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
    return b;
}

static void budget_closed(uv_handle_t *h)
{
    free(h->data);
}

void oc_budget_close(oc_budget *b)
{
    if (!b)
        return;
    oc_budget_cancel(b, "stopped");
    uv_close((uv_handle_t *)&b->timer, budget_closed);
}

static uint64_t now_ms(oc_budget *b)
{
    uv_update_time(b->loop);
    return uv_now(b->loop);
}

/* "45 s", "5 min 30 s", "6 h 00 min" */
static void duration(uint64_t ms, char *buf, size_t cap)
{
    uint64_t s = (ms + 999) / 1000;
    if (s < 120)
        snprintf(buf, cap, "%llu s", (unsigned long long)s);
    else if (s < 3600)
        snprintf(buf, cap, "%llu min %02llu s", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(buf, cap, "%llu h %02llu min", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
}

void oc_budget_describe(const oc_budget *b, char *buf, size_t cap)
{
    char of[32] = "", win[48] = "", reset[80] = "";
    long left = b->left > 0 ? b->left : 0;
    if (b->limit >= 0)
        snprintf(of, sizeof of, " of %ld", b->limit);
    if (b->window_s > 0)
        snprintf(win, sizeof win, " in its %ld s window", b->window_s);
    if (left == 0) {
        uint64_t now = uv_now(b->loop);
        if (b->reset_at > now) {
            char d[32];
            duration(b->reset_at - now, d, sizeof d);
            snprintf(reset, sizeof reset, ", resets in %s%s", b->reset_exact ? "" : "up to ", d);
        } else {
            snprintf(reset, sizeof reset, ", resets at a time it did not say");
        }
    }
    snprintf(buf, cap, "%ld%s left%s%s", left, of, win, reset);
}

int oc_budget_left(const oc_budget *b)
{
    return !b->known || b->left > 0;
}

static void unlink_head(oc_budget *b)
{
    oc_budget_wait *w = b->head;
    b->head = w->next;
    if (!b->head)
        b->tail = NULL;
    w->next = NULL;
    w->waiting = 0;
}

static void grant(oc_budget *b, oc_budget_wait *w)
{
    if (b->known)
        b->left--;
    b->inflight++;
    w->done(w, 1, NULL);
}

static void refuse(oc_budget_wait *w, const char *why)
{
    w->done(w, 0, why);
}

static int can_go(const oc_budget *b)
{
    return !b->known || b->left > 0;
}

static void on_timer(uv_timer_t *t)
{
    oc_budget *b = t->data;
    uint64_t now = now_ms(b);
    if (b->reset_at && b->reset_at <= now && b->left <= 0) {
        /* the window gave some back: one request goes and its answer
         * tells how much */
        b->reset_at = 0;
        b->left = 1;
    }
    pump(b);
}

static void pump(oc_budget *b)
{
    char why[512], state[256], d[32];
    for (;;) {
        oc_budget_wait *w = b->head;
        if (!w)
            break;
        if (b->cancelled[0]) {
            unlink_head(b);
            refuse(w, b->cancelled);
            continue;
        }
        if (can_go(b)) {
            unlink_head(b);
            grant(b, w);
            continue;
        }
        if (b->inflight > 0)
            break; /* their answers say what is left; deadlines still hold below */
        oc_budget_describe(b, state, sizeof state);
        if (b->reset_at && b->reset_at <= w->deadline_ms)
            break; /* it gives some back before this waiter's bound: wait */
        if (b->reset_at) {
            uint64_t now = now_ms(b), began = w->deadline_ms - b->max_wait_ms;
            duration(b->max_wait_ms, d, sizeof d);
            snprintf(why, sizeof why, "%s; %s the %s a request waits for it (--rate-limit-wait)",
                     state, now > began ? "none came back within" : "that is beyond", d);
        } else {
            snprintf(why, sizeof why, "%s", state);
        }
        unlink_head(b);
        refuse(w, why);
    }
    /* wake up at the next reset or waiter deadline */
    uint64_t next = 0;
    for (oc_budget_wait *w = b->head; w; w = w->next)
        if (!next || w->deadline_ms < next)
            next = w->deadline_ms;
    if (b->head && b->reset_at && (!next || b->reset_at < next))
        next = b->reset_at;
    if (next) {
        uint64_t now = now_ms(b);
        uv_timer_start(&b->timer, on_timer, next > now ? next - now : 0, 0);
    } else {
        uv_timer_stop(&b->timer);
    }
}

void oc_budget_acquire(oc_budget *b, oc_budget_wait *w)
{
    w->next = NULL;
    if (!w->deadline_ms)
        w->deadline_ms = now_ms(b) + b->max_wait_ms;
    w->waiting = 1;
    if (b->tail)
        b->tail->next = w;
    else
        b->head = w;
    b->tail = w;
    pump(b);
}

void oc_budget_withdraw(oc_budget *b, oc_budget_wait *w)
{
    if (!w->waiting)
        return;
    oc_budget_wait *prev = NULL;
    for (oc_budget_wait *q = b->head; q; prev = q, q = q->next) {
        if (q != w)
            continue;
        if (prev)
            prev->next = q->next;
        else
            b->head = q->next;
        if (b->tail == q)
            b->tail = prev;
        q->next = NULL;
        q->waiting = 0;
        break;
    }
    pump(b);
}

static void settle(oc_budget *b, int granted, long limit, long window_s)
{
    if (granted && b->inflight > 0)
        b->inflight--;
    b->known = 1;
    if (limit >= 0)
        b->limit = limit;
    if (window_s > 0)
        b->window_s = window_s;
}

void oc_budget_answer(oc_budget *b, int granted, long limit, long remaining, long window_s)
{
    if (remaining < 0) { /* the answer said nothing of the budget */
        if (granted && b->inflight > 0)
            b->inflight--;
        pump(b);
        return;
    }
    settle(b, granted, limit, window_s);
    b->left = remaining - b->inflight;
    if (remaining > 0) {
        b->reset_at = 0;
    } else if (!b->reset_exact || b->reset_at <= now_ms(b)) {
        b->reset_exact = 0;
        b->reset_at = b->window_s > 0 ? now_ms(b) + (uint64_t)b->window_s * 1000 : 0;
    }
    pump(b);
}

void oc_budget_refused(oc_budget *b, int granted, uint64_t retry_after_ms, long limit,
                       long window_s)
{
    settle(b, granted, limit, window_s);
    b->left = 0;
    uint64_t now = now_ms(b);
    if (retry_after_ms) {
        b->reset_at = now + retry_after_ms;
        b->reset_exact = 1;
    } else {
        b->reset_exact = 0;
        b->reset_at = b->window_s > 0 ? now + (uint64_t)b->window_s * 1000 : 0;
    }
    pump(b);
}

void oc_budget_cancel(oc_budget *b, const char *why)
{
    snprintf(b->cancelled, sizeof b->cancelled, "%s", why && *why ? why : "stopped");
    pump(b);
    uv_timer_stop(&b->timer);
}
