/* workq.c - worker threads running ordered strands of tasks (see workq.h).
 *
 * One mutex guards the ready list and every strand of the pool; tasks are
 * coarse (hundreds of KiB of hashing or inflating each), so the lock is
 * taken a few thousand times per GiB. The ready list is ordered by priority;
 * a worker runs one task of a strand, then puts the strand back behind the
 * ready strands of its priority if it has more, so streams of one priority
 * take turns, and a higher one goes first. */
#include "io/workq.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct oc_workq {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t idle;
    pthread_cond_t strand_idle;
    oc_queue ready; /* strands with a task to run, FIFO */
    int busy;       /* tasks posted and not finished */
    int stopping;
    int n_threads;
    pthread_t *threads;
};

/* Behind every ready strand of its priority or higher. The list is short
 * (strands with work now), and most strands share a few priorities. */
static void ready_push(oc_workq *q, oc_strand *s)
{
    oc_queue *at = &q->ready; /* insert before at */
    while (at->prev != &q->ready &&
           OC_QUEUE_DATA(at->prev, oc_strand, ready)->priority < s->priority)
        at = at->prev;
    oc_queue_insert_tail(at, &s->ready);
    s->queued = 1;
}

static oc_strand *ready_pop(oc_workq *q)
{
    oc_queue *n = oc_queue_head(&q->ready);
    if (!n)
        return NULL;
    oc_queue_remove(n);
    oc_strand *s = OC_QUEUE_DATA(n, oc_strand, ready);
    s->queued = 0;
    return s;
}

static void *worker_main(void *arg)
{
    oc_workq *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        oc_strand *s;
        while (!(s = ready_pop(q)) && !q->stopping)
            pthread_cond_wait(&q->wake, &q->lock);
        if (!s)
            break;
        oc_queue *n = oc_queue_head(&s->tasks);
        oc_queue_remove(n);
        oc_task *t = OC_QUEUE_DATA(n, oc_task, node);
        s->running = 1;
        pthread_mutex_unlock(&q->lock);
        t->run(t);
        pthread_mutex_lock(&q->lock);
        s->running = 0;
        if (s->park_asked) {
            /* not done: first in its strand again, still counted busy */
            s->park_asked = 0;
            oc_queue_insert_head(&s->tasks, &t->node);
            if (s->wake) {
                s->wake = 0;
                ready_push(q, s);
            } else {
                s->parked = 1;
            }
            continue;
        }
        if (!oc_queue_empty(&s->tasks))
            ready_push(q, s);
        else
            pthread_cond_broadcast(&q->strand_idle);
        if (--q->busy == 0)
            pthread_cond_broadcast(&q->idle);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

oc_workq *oc_workq_new(int threads, const char *name)
{
    (void)name;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 2;
    }
    oc_workq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->threads = calloc((size_t)threads, sizeof *q->threads);
    if (!q->threads) {
        free(q);
        return NULL;
    }
    oc_queue_init(&q->ready);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    pthread_cond_init(&q->idle, NULL);
    pthread_cond_init(&q->strand_idle, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0)
            break;
        q->n_threads++;
    }
    if (q->n_threads == 0) {
        oc_workq_free(q);
        return NULL;
    }
    return q;
}

void oc_workq_free(oc_workq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    while (q->busy > 0)
        pthread_cond_wait(&q->idle, &q->lock);
    q->stopping = 1;
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->n_threads; i++)
        pthread_join(q->threads[i], NULL);
    pthread_cond_destroy(&q->idle);
    pthread_cond_destroy(&q->strand_idle);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q->threads);
    free(q);
}

int oc_workq_threads(const oc_workq *q)
{
    return q->n_threads;
}

void oc_strand_init(oc_strand *s, oc_workq *q)
{
    memset(s, 0, sizeof *s);
    s->q = q;
    oc_queue_init(&s->tasks);
    oc_queue_init(&s->ready);
}

void oc_strand_set_priority(oc_strand *s, long long priority)
{
    oc_workq *q = s->q;
    pthread_mutex_lock(&q->lock);
    s->priority = priority;
    if (s->queued) { /* take its place by the new priority */
        oc_queue_remove(&s->ready);
        ready_push(q, s);
    }
    pthread_mutex_unlock(&q->lock);
}

void oc_strand_post(oc_strand *s, oc_task *task)
{
    oc_workq *q = s->q;
    pthread_mutex_lock(&q->lock);
    oc_queue_insert_tail(&s->tasks, &task->node);
    q->busy++;
    if (!s->queued && !s->running && !s->parked) {
        ready_push(q, s);
        pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->lock);
}

void oc_strand_park(oc_strand *s)
{
    oc_workq *q = s->q;
    pthread_mutex_lock(&q->lock);
    s->park_asked = 1;
    pthread_mutex_unlock(&q->lock);
}

void oc_strand_unpark(oc_strand *s)
{
    oc_workq *q = s->q;
    pthread_mutex_lock(&q->lock);
    if (s->parked) {
        s->parked = 0;
        ready_push(q, s);
        pthread_cond_signal(&q->wake);
    } else {
        s->wake = 1;
    }
    pthread_mutex_unlock(&q->lock);
}

void oc_strand_wait_idle(oc_strand *s)
{
    oc_workq *q = s->q;
    pthread_mutex_lock(&q->lock);
    while (!oc_queue_empty(&s->tasks) || s->running || s->queued)
        pthread_cond_wait(&q->strand_idle, &q->lock);
    pthread_mutex_unlock(&q->lock);
}
