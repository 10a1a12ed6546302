/* budget.h - a server's budget of counted requests: how many it will still
 * answer in its window (Docker Hub's pull limit, "RateLimit-Remaining:
 * 76;w=21600"), handed out to the requests it counts.
 *
 * Only the requests the server counts ask the budget (the caller decides
 * which: for Docker Hub, GETs of manifests); others never wait here. While
 * the budget is unknown or some is left, a counted request goes at once,
 * and never more go than are left (so a burst does not run into 429s).
 * When none is left it waits for the window to give some back only if
 * that is known to happen within max_wait (a Retry-After, or a window no
 * longer than max_wait); otherwise, or after waiting max_wait in all, it is
 * refused at once with a message saying how much is left and when the
 * window resets ("0 of 100 left in its 21600 s window, resets in up to
 * 6 h 00 min; ..."), so a run fails those requests clearly instead of waiting
 * for hours. Waiters are served in FIFO order. One libuv timer (created
 * with the budget) wakes waiters; oc_budget_close must be called and the
 * loop run before the memory is gone. Domain-free: it knows nothing of
 * HTTP or registries. */
#ifndef OC_SCHED_BUDGET_H
#define OC_SCHED_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct oc_budget oc_budget;
typedef struct oc_budget_wait oc_budget_wait;

struct oc_budget_wait {
    /* set by the caller: granted 1 (go; report its answer with
     * oc_budget_answer or oc_budget_refused) or 0 (refused: why says so,
     * valid during the call) */
    void (*done)(oc_budget_wait *w, int granted, const char *why);
    void *opaque;
    /* 0 for a new request (zeroed memory); the first acquire sets it and
     * later ones of the same request keep it, so all its waits together
     * stay within max_wait */
    uint64_t deadline_ms;
    /* private */
    oc_budget_wait *next;
    int waiting;
};

oc_budget *oc_budget_new(uv_loop_t *loop, uint64_t max_wait_ms);
/* Stop the timer and free the budget once the loop has closed it. */
void oc_budget_close(oc_budget *b);

/* An answer from the server, with what it said of the budget (limit,
 * remaining and window in seconds; -1 each when the answer did not say).
 * granted: the answer is for a request this budget granted. */
void oc_budget_answer(oc_budget *b, int granted, long limit, long remaining, long window_s);
/* The server refused a request for the budget (429): nothing is left; it
 * gives some back in retry_after_ms (0: not said). granted as above. */
void oc_budget_refused(oc_budget *b, int granted, uint64_t retry_after_ms, long limit,
                       long window_s);

/* A counted request wants to go: w->done is called at once (before this
 * returns) or later. */
void oc_budget_acquire(oc_budget *b, oc_budget_wait *w);
/* Withdraw a waiter that has not been called yet. */
void oc_budget_withdraw(oc_budget *b, oc_budget_wait *w);
/* The run stops: every waiter and every later acquire is refused with why. */
void oc_budget_cancel(oc_budget *b, const char *why);

/* "0 of 100 left in a window of 21600 s, which gives some back in up to
 * 6h00m" */
void oc_budget_describe(const oc_budget *b, char *buf, size_t cap);
/* 1 when some budget is known to be left or unknown. */
int oc_budget_left(const oc_budget *b);

#endif
