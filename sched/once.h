/* once.h - in-flight deduplication: work keyed by a string (a blob digest)
 * is done once, however many jobs want it at the same time.
 *
 * The first job to claim a key becomes its owner and does the work; later
 * claimants wait and are called back when the owner completes. A success is
 * remembered (later claims return DONE with the value at once); a failure
 * forgets the key and wakes the waiters with ok = 0, so each may claim again
 * (the first becomes the new owner): one job's failure, or cancellation,
 * never decides another job's outcome. Single-threaded: the loop thread. */
#ifndef OC_SCHED_ONCE_H
#define OC_SCHED_ONCE_H

#include "io/error.h"
#include "io/queue.h"

typedef struct oc_once oc_once;

typedef struct oc_once_waiter oc_once_waiter;
struct oc_once_waiter {
    /* set by the caller; value is valid during the call */
    void (*ready)(oc_once_waiter *w, int ok, const char *value, const oc_error *err);
    void *opaque;
    oc_queue node; /* private: in its key's queue of waiters */
};

enum { OC_ONCE_OWNER = 0, OC_ONCE_WAIT = 1, OC_ONCE_DONE = 2 };

oc_once *oc_once_new(void);
void oc_once_free(oc_once *t);

/* OWNER: do the work, then oc_once_complete. WAIT: w->ready will be called.
 * DONE: *value (owned by the table) is the remembered result. -1: no memory. */
int oc_once_claim(oc_once *t, const char *key, oc_once_waiter *w, const char **value);
/* The remembered value of a key that completed with success, else NULL
 * (unknown, running or failed); claims nothing. */
const char *oc_once_peek(oc_once *t, const char *key);
/* Withdraw a waiter (its job was cancelled). */
void oc_once_withdraw(oc_once *t, const char *key, oc_once_waiter *w);
/* The owner's result: ok with value (copied), or a failure. Waiters are
 * called in claim order. */
void oc_once_complete(oc_once *t, const char *key, int ok, const char *value, const oc_error *err);

#endif
