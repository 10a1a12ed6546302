/* limits.h - concurrency caps: a global number of requests in flight and a
 * number per key (a registry host), and optionally a rate per key (requests
 * started per second, a token bucket holding at most one second's worth).
 * Callers that find no free slot wait in FIFO order and are granted the slot
 * when another request releases it, or when the bucket refills (a libuv
 * timer, created when a rate is first set). */
#ifndef OC_SCHED_LIMITS_H
#define OC_SCHED_LIMITS_H

#include <uv.h>

#include "io/queue.h"

typedef struct oc_limiter oc_limiter;

typedef struct oc_slot_wait oc_slot_wait;
struct oc_slot_wait {
    /* set by the caller */
    void (*granted)(oc_slot_wait *w);
    void *opaque;
    /* private */
    oc_queue node;          /* in its key's queue while it waits */
    unsigned long long seq; /* order of arrival, across keys */
    int key_index;
    int waiting;
};

/* global_max 0 = unlimited; default_key_max used for keys never configured. */
oc_limiter *oc_limiter_new(unsigned global_max, unsigned default_key_max);
void oc_limiter_free(oc_limiter *l);
void oc_limiter_set_key_max(oc_limiter *l, const char *key, unsigned max);

/* Ask for a slot under key. w->granted runs when it is free: immediately
 * (before this returns) when a slot is free now. Returns -1 on allocation
 * failure. */
int oc_limiter_acquire(oc_limiter *l, const char *key, oc_slot_wait *w);
/* Give a granted slot back; the next waiter that fits is granted. */
void oc_limiter_release(oc_limiter *l, oc_slot_wait *w);
/* Withdraw a waiter that has not been granted yet. */
void oc_limiter_withdraw(oc_limiter *l, oc_slot_wait *w);

/* For a run that stops: caps and rates are off from now on, every waiter is
 * granted now (so each can fail at once) and every later acquire at once;
 * the refill timer stops. */
void oc_limiter_drain(oc_limiter *l);

unsigned oc_limiter_active(const oc_limiter *l, const char *key);

/* Start at most rps requests a second under key (0 = no rate). The first
 * call creates the refill timer on loop; lowering a rate later is allowed
 * (a registry asking us to slow down). Returns -1 on allocation failure. */
int oc_limiter_set_key_rate(oc_limiter *l, uv_loop_t *loop, const char *key, double rps);
double oc_limiter_key_rate(const oc_limiter *l, const char *key);
/* Close the refill timer (if any); the loop must run afterwards, before
 * oc_limiter_free. */
void oc_limiter_close(oc_limiter *l);

#endif
