/* workq.h - a fixed pool of worker threads that runs tasks in strands.
 *
 * A strand is an ordered queue: its tasks run one at a time, in the order
 * they were posted, on whichever worker is free; different strands run in
 * parallel. A blob's pipeline is a few strands (hash the compressed bytes,
 * inflate, hash and write the tar), so one blob's stages overlap on
 * different cores and many blobs share the same threads.
 *
 * Tasks are intrusive (the caller embeds an oc_task in its own struct), so
 * posting allocates nothing. A task may block only on work that runs in a
 * different pool. A task that must wait for work of its own pool parks
 * instead: it returns, stays at the head of its strand, and runs again (from
 * its start) once something unparks the strand; meanwhile the worker takes
 * other strands. That is how the pipeline bounds its buffers without
 * deadlock and without idling a core.
 *
 * Ready strands run by priority (higher first; equal ones in turn), so the
 * longest work starts first and short work fills the gaps. */
#ifndef OC_IO_WORKQ_H
#define OC_IO_WORKQ_H

#include <pthread.h>

#include "io/queue.h"

typedef struct oc_task oc_task;
struct oc_task {
    void (*run)(oc_task *task);
    oc_queue node; /* private: in its strand's queue */
};

typedef struct oc_workq oc_workq;

typedef struct oc_strand {
    /* private: protected by the pool's lock */
    oc_workq *q;
    oc_queue tasks;     /* posted, not yet running */
    int queued;         /* on the pool's ready list */
    int running;        /* a worker is running one of its tasks */
    int park_asked;     /* the running task parks when it returns */
    int parked;         /* its head task waits for oc_strand_unpark */
    int wake;           /* unparked while not parked: the next park ends at once */
    long long priority; /* higher runs first */
    oc_queue ready;     /* its node in the pool's ready list */
} oc_strand;

/* threads <= 0: one per online CPU. NULL if no thread could start. */
oc_workq *oc_workq_new(int threads, const char *name);
/* Waits for every posted task to finish, then joins the threads. */
void oc_workq_free(oc_workq *q);
int oc_workq_threads(const oc_workq *q);

/* Priority 0. */
void oc_strand_init(oc_strand *s, oc_workq *q);
/* Higher runs first among ready strands (e.g. a blob's size, so the biggest
 * blob's chain never waits behind small ones). Any time. */
void oc_strand_set_priority(oc_strand *s, long long priority);
void oc_strand_post(oc_strand *s, oc_task *task);
/* From a task running on s: when it returns, it is not done; it stays first
 * in s and runs again once oc_strand_unpark(s) is called (at once if that
 * call came after the last park ended). */
void oc_strand_park(oc_strand *s);
/* Let a parked strand run again; if it is not parked, its next park ends at
 * once (so a wake-up between a task's check and its park is not lost). */
void oc_strand_unpark(oc_strand *s);
/* Block until the strand has no task queued or running, so the memory that
 * holds it may be freed (a worker touches the strand after its last task).
 * A parked strand is not idle. */
void oc_strand_wait_idle(oc_strand *s);

#endif
