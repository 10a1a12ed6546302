/* test_workq.c - the worker pool and its strands (io/workq.h).
 *
 * Checks the contract the blob pipeline relies on: the tasks of one strand
 * run in posting order and never two at a time (overlap is detected with an
 * atomic "inside" counter and short sleeps, not with timing); different
 * strands do run at the same time when the pool has two threads or more;
 * oc_strand_wait_idle returns only after the strand's last task finished;
 * oc_workq_free runs every posted task before it returns, including tasks
 * posted by tasks; and a stress run (64 strands x 1000 tasks) loses, repeats
 * and reorders nothing (per-strand sequence checks and a global checksum).
 * Priorities: ready strands run highest first, equal ones in posting order.
 * Parking: a parked task frees its worker for other strands, keeps its
 * strand's later tasks behind it, runs again from its start when unparked,
 * and an unpark that comes before the park is not lost. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/workq.h"

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- a strand's tasks: order and mutual exclusion ---- */

typedef struct seq_strand {
    oc_strand s;
    atomic_int inside;  /* tasks of this strand running now */
    atomic_int overlap; /* times two of its tasks ran at once */
    atomic_int next;    /* sequence number the next task must have */
    atomic_int order_errors;
    atomic_int done;
} seq_strand;

typedef struct seq_task {
    oc_task t; /* first member: the task pointer is the struct pointer */
    seq_strand *owner;
    int seq;
    long sleep_us;
} seq_task;

static void run_seq(oc_task *t)
{
    seq_task *st = (seq_task *)t;
    seq_strand *ss = st->owner;
    if (atomic_fetch_add(&ss->inside, 1) != 0)
        atomic_fetch_add(&ss->overlap, 1);
    if (atomic_load(&ss->next) != st->seq)
        atomic_fetch_add(&ss->order_errors, 1);
    atomic_store(&ss->next, st->seq + 1);
    if (st->sleep_us)
        sleep_us(st->sleep_us);
    atomic_fetch_sub(&ss->inside, 1);
    atomic_fetch_add(&ss->done, 1);
}

static void seq_strand_init(seq_strand *ss, oc_workq *q)
{
    oc_strand_init(&ss->s, q);
    atomic_init(&ss->inside, 0);
    atomic_init(&ss->overlap, 0);
    atomic_init(&ss->next, 0);
    atomic_init(&ss->order_errors, 0);
    atomic_init(&ss->done, 0);
}

static void test_threads_count(void **state)
{
    (void)state;
    oc_workq *q = oc_workq_new(3, "t");
    assert_non_null(q);
    assert_int_equal(oc_workq_threads(q), 3);
    oc_workq_free(q);

    q = oc_workq_new(0, "t"); /* one per CPU */
    assert_non_null(q);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(oc_workq_threads(q), cpus > 0 ? (int)cpus : 2);
    oc_workq_free(q);

    oc_workq_free(NULL);
}

/* Many threads, one strand: the pool must still run its tasks one by one,
 * in order, although every worker is free to take them. */
static void test_strand_order_and_exclusion(void **state)
{
    (void)state;
    enum { N = 400 };
    oc_workq *q = oc_workq_new(8, "t");
    assert_non_null(q);
    seq_strand ss;
    seq_strand_init(&ss, q);
    seq_task *tasks = calloc(N, sizeof *tasks);
    assert_non_null(tasks);
    for (int i = 0; i < N; i++) {
        tasks[i].t.run = run_seq;
        tasks[i].owner = &ss;
        tasks[i].seq = i;
        tasks[i].sleep_us = (i % 7 == 0) ? 300 : 20;
        oc_strand_post(&ss.s, &tasks[i].t);
        if (i % 50 == 0)
            sleep_us(200); /* let the strand drain and restart now and then */
    }
    oc_strand_wait_idle(&ss.s);
    assert_int_equal(atomic_load(&ss.done), N);
    assert_int_equal(atomic_load(&ss.overlap), 0);
    assert_int_equal(atomic_load(&ss.order_errors), 0);
    assert_int_equal(atomic_load(&ss.next), N);
    oc_workq_free(q);
    free(tasks);
}

/* Several strands posted from several threads at once, each checked for
 * order and exclusion. */
typedef struct poster_arg {
    seq_strand *ss;
    seq_task *tasks;
    int n;
} poster_arg;

static void *poster_main(void *arg)
{
    poster_arg *pa = arg;
    for (int i = 0; i < pa->n; i++) {
        pa->tasks[i].t.run = run_seq;
        pa->tasks[i].owner = pa->ss;
        pa->tasks[i].seq = i;
        pa->tasks[i].sleep_us = (i % 13 == 0) ? 100 : 0;
        oc_strand_post(&pa->ss->s, &pa->tasks[i].t);
    }
    return NULL;
}

static void test_strands_posted_from_threads(void **state)
{
    (void)state;
    enum { STRANDS = 6, N = 2000 };
    oc_workq *q = oc_workq_new(4, "t");
    assert_non_null(q);
    seq_strand ss[STRANDS];
    poster_arg pa[STRANDS];
    pthread_t th[STRANDS];
    for (int k = 0; k < STRANDS; k++) {
        seq_strand_init(&ss[k], q);
        pa[k].ss = &ss[k];
        pa[k].n = N;
        pa[k].tasks = calloc(N, sizeof(seq_task));
        assert_non_null(pa[k].tasks);
    }
    for (int k = 0; k < STRANDS; k++)
        assert_int_equal(pthread_create(&th[k], NULL, poster_main, &pa[k]), 0);
    for (int k = 0; k < STRANDS; k++)
        assert_int_equal(pthread_join(th[k], NULL), 0);
    for (int k = 0; k < STRANDS; k++) {
        oc_strand_wait_idle(&ss[k].s);
        assert_int_equal(atomic_load(&ss[k].done), N);
        assert_int_equal(atomic_load(&ss[k].overlap), 0);
        assert_int_equal(atomic_load(&ss[k].order_errors), 0);
    }
    oc_workq_free(q);
    for (int k = 0; k < STRANDS; k++)
        free(pa[k].tasks);
}

/* ---- parallelism across strands ---- */

/* Each task announces itself, then waits (bounded) until it sees a task of
 * another strand running at the same time, and stays until both have seen
 * each other. With two threads and two strands posted together, both must
 * meet; a pool that ran strands one after the other would time out. */
static atomic_int par_inside;
static atomic_int par_max_inside;
static atomic_int par_met;

typedef struct par_task {
    oc_task t;
} par_task;

static void par_note_max(int now)
{
    int seen = atomic_load(&par_max_inside);
    while (now > seen && !atomic_compare_exchange_weak(&par_max_inside, &seen, now))
        ;
}

static void run_par(oc_task *t)
{
    (void)t;
    int now = atomic_fetch_add(&par_inside, 1) + 1;
    par_note_max(now);
    /* wait up to 2 s for company */
    for (int i = 0; i < 2000; i++) {
        now = atomic_load(&par_inside);
        if (now >= 2) {
            par_note_max(now);
            atomic_fetch_add(&par_met, 1);
            break;
        }
        sleep_us(1000);
    }
    /* stay until the other one has seen us too (2 s at most) */
    for (int i = 0; i < 2000 && atomic_load(&par_met) < 2; i++)
        sleep_us(1000);
    atomic_fetch_sub(&par_inside, 1);
}

static void test_strands_run_in_parallel(void **state)
{
    (void)state;
    atomic_store(&par_inside, 0);
    atomic_store(&par_max_inside, 0);
    atomic_store(&par_met, 0);
    oc_workq *q = oc_workq_new(2, "t");
    assert_non_null(q);
    oc_strand a, b;
    oc_strand_init(&a, q);
    oc_strand_init(&b, q);
    par_task ta = {{run_par, {NULL, NULL}}}, tb = {{run_par, {NULL, NULL}}};
    oc_strand_post(&a, &ta.t);
    oc_strand_post(&b, &tb.t);
    oc_strand_wait_idle(&a);
    oc_strand_wait_idle(&b);
    assert_int_equal(atomic_load(&par_max_inside), 2);
    assert_int_equal(atomic_load(&par_met), 2);
    oc_workq_free(q);
}

/* With four strands and four threads, all four must be seen running at once:
 * a pool that serialised strands (or lost a wake-up) would stay at 1 or 2. */
static atomic_int quad_inside;
static atomic_int quad_max;

static void run_quad(oc_task *t)
{
    (void)t;
    int now = atomic_fetch_add(&quad_inside, 1) + 1;
    for (int i = 0; i < 3000 && now < 4; i++) {
        sleep_us(1000);
        now = atomic_load(&quad_inside);
    }
    int seen = atomic_load(&quad_max);
    while (now > seen && !atomic_compare_exchange_weak(&quad_max, &seen, now))
        ;
    sleep_us(3000);
    atomic_fetch_sub(&quad_inside, 1);
}

static void test_four_strands_four_threads(void **state)
{
    (void)state;
    atomic_store(&quad_inside, 0);
    atomic_store(&quad_max, 0);
    oc_workq *q = oc_workq_new(4, "t");
    assert_non_null(q);
    oc_strand s[4];
    par_task t[4];
    for (int i = 0; i < 4; i++) {
        oc_strand_init(&s[i], q);
        t[i].t.run = run_quad;
    }
    for (int i = 0; i < 4; i++)
        oc_strand_post(&s[i], &t[i].t);
    for (int i = 0; i < 4; i++)
        oc_strand_wait_idle(&s[i]);
    assert_int_equal(atomic_load(&quad_max), 4);
    oc_workq_free(q);
}

/* One thread: strands are interleaved (a long strand does not starve a
 * short one posted after it): the short strand's task runs before the long
 * strand's last task. */
static atomic_int fair_clock;
static atomic_int fair_short_at;
static atomic_int fair_long_last_at;

typedef struct fair_task {
    oc_task t;
    int is_short;
    int is_last;
} fair_task;

static void run_fair(oc_task *t)
{
    fair_task *ft = (fair_task *)t;
    int now = atomic_fetch_add(&fair_clock, 1);
    if (ft->is_short)
        atomic_store(&fair_short_at, now);
    if (ft->is_last)
        atomic_store(&fair_long_last_at, now);
    sleep_us(200);
}

static void test_single_thread_round_robin(void **state)
{
    (void)state;
    enum { LONG_N = 50 };
    atomic_store(&fair_clock, 0);
    atomic_store(&fair_short_at, -1);
    atomic_store(&fair_long_last_at, -1);
    oc_workq *q = oc_workq_new(1, "t");
    assert_non_null(q);
    oc_strand lng, shrt;
    oc_strand_init(&lng, q);
    oc_strand_init(&shrt, q);
    fair_task lt[LONG_N];
    memset(lt, 0, sizeof lt);
    for (int i = 0; i < LONG_N; i++) {
        lt[i].t.run = run_fair;
        lt[i].is_last = i == LONG_N - 1;
        oc_strand_post(&lng, &lt[i].t);
    }
    sleep_us(1000); /* the long strand is under way */
    fair_task st = {{run_fair, {NULL, NULL}}, 1, 0};
    oc_strand_post(&shrt, &st.t);
    oc_strand_wait_idle(&lng);
    oc_strand_wait_idle(&shrt);
    assert_int_equal(atomic_load(&fair_clock), LONG_N + 1);
    assert_true(atomic_load(&fair_short_at) >= 0);
    assert_true(atomic_load(&fair_short_at) < atomic_load(&fair_long_last_at));
    oc_workq_free(q);
}

/* ---- wait_idle ---- */

typedef struct idle_task {
    oc_task t;
    atomic_int *finished;
    long sleep_us;
} idle_task;

static void run_idle(oc_task *t)
{
    idle_task *it = (idle_task *)t;
    sleep_us(it->sleep_us);
    atomic_fetch_add(it->finished, 1);
}

static void test_wait_idle_after_last_task(void **state)
{
    (void)state;
    oc_workq *q = oc_workq_new(2, "t");
    assert_non_null(q);
    for (int round = 0; round < 20; round++) {
        atomic_int finished;
        atomic_init(&finished, 0);
        oc_strand s;
        oc_strand_init(&s, q);
        idle_task t[5];
        for (int i = 0; i < 5; i++) {
            t[i].t.run = run_idle;
            t[i].finished = &finished;
            t[i].sleep_us = i == 4 ? 20000 : 1000; /* the last one is slowest */
            oc_strand_post(&s, &t[i].t);
        }
        oc_strand_wait_idle(&s);
        assert_int_equal(atomic_load(&finished), 5);
    }
    /* called while the strand's only task is already running (nothing is
     * queued any more): must still wait for it */
    for (int round = 0; round < 10; round++) {
        atomic_int finished;
        atomic_init(&finished, 0);
        oc_strand s;
        oc_strand_init(&s, q);
        idle_task t = {{run_idle, {NULL, NULL}}, &finished, 30000};
        oc_strand_post(&s, &t.t);
        sleep_us(5000); /* a worker has taken it */
        oc_strand_wait_idle(&s);
        assert_int_equal(atomic_load(&finished), 1);
    }
    /* an idle (never used) strand returns at once */
    oc_strand s;
    oc_strand_init(&s, q);
    oc_strand_wait_idle(&s);
    oc_workq_free(q);
}

/* wait_idle of one strand is not held up by another, busy strand. */
static atomic_int gate_open;

static void run_gate(oc_task *t)
{
    (void)t;
    for (int i = 0; i < 5000 && !atomic_load(&gate_open); i++)
        sleep_us(1000);
}

static void test_wait_idle_ignores_other_strands(void **state)
{
    (void)state;
    atomic_store(&gate_open, 0);
    oc_workq *q = oc_workq_new(2, "t");
    assert_non_null(q);
    oc_strand busy, quick;
    oc_strand_init(&busy, q);
    oc_strand_init(&quick, q);
    par_task g = {{run_gate, {NULL, NULL}}};
    oc_strand_post(&busy, &g.t);
    atomic_int finished;
    atomic_init(&finished, 0);
    idle_task it = {{run_idle, {NULL, NULL}}, &finished, 1000};
    oc_strand_post(&quick, &it.t);
    oc_strand_wait_idle(&quick); /* would hang 5 s and fail below if it waited for busy */
    assert_int_equal(atomic_load(&finished), 1);
    assert_int_equal(atomic_load(&gate_open), 0);
    atomic_store(&gate_open, 1);
    oc_strand_wait_idle(&busy);
    oc_workq_free(q);
}

/* The strand may be freed right after wait_idle (a worker touches the
 * strand after its last task): ASan catches a use after free. */
static void test_wait_idle_then_free_strand(void **state)
{
    (void)state;
    oc_workq *q = oc_workq_new(4, "t");
    assert_non_null(q);
    for (int round = 0; round < 500; round++) {
        atomic_int finished;
        atomic_init(&finished, 0);
        oc_strand *s = malloc(sizeof *s);
        idle_task *t = calloc(3, sizeof *t);
        assert_non_null(s);
        assert_non_null(t);
        oc_strand_init(s, q);
        for (int i = 0; i < 3; i++) {
            t[i].t.run = run_idle;
            t[i].finished = &finished;
            t[i].sleep_us = 0;
            oc_strand_post(s, &t[i].t);
        }
        oc_strand_wait_idle(s);
        assert_int_equal(atomic_load(&finished), 3);
        free(s);
        free(t);
    }
    oc_workq_free(q);
}

/* ---- free waits for all work, including work posted by work ---- */

typedef struct chain_task {
    oc_task t;
    oc_strand *next_strand;
    struct chain_task *next_task;
    atomic_int *done;
    long sleep_us;
} chain_task;

static void run_chain(oc_task *t)
{
    chain_task *ct = (chain_task *)t;
    sleep_us(ct->sleep_us);
    atomic_fetch_add(ct->done, 1);
    if (ct->next_task)
        oc_strand_post(ct->next_strand, &ct->next_task->t);
}

static void test_free_waits_for_all(void **state)
{
    (void)state;
    enum { CHAINS = 8, LEN = 30 };
    atomic_int done;
    atomic_init(&done, 0);
    oc_workq *q = oc_workq_new(3, "t");
    assert_non_null(q);
    oc_strand s[CHAINS];
    chain_task *t = calloc(CHAINS * LEN, sizeof *t);
    assert_non_null(t);
    for (int c = 0; c < CHAINS; c++) {
        oc_strand_init(&s[c], q);
        for (int i = 0; i < LEN; i++) {
            chain_task *ct = &t[c * LEN + i];
            ct->t.run = run_chain;
            ct->done = &done;
            ct->sleep_us = 500;
            /* each task posts the next one, to the next strand */
            ct->next_strand = &s[(c + 1) % CHAINS];
            ct->next_task = i + 1 < LEN ? &t[c * LEN + i + 1] : NULL;
        }
    }
    for (int c = 0; c < CHAINS; c++)
        oc_strand_post(&s[c], &t[c * LEN].t);
    oc_workq_free(q); /* must not return before the last link ran */
    assert_int_equal(atomic_load(&done), CHAINS * LEN);
    free(t);
}

static void test_free_idle_pool(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++) {
        oc_workq *q = oc_workq_new(4, "t");
        assert_non_null(q);
        oc_workq_free(q);
    }
}

/* ---- stress: 64 strands x 1000 tasks ---- */

enum { ST_STRANDS = 64, ST_TASKS = 1000 };

typedef struct stress_strand {
    oc_strand s;
    atomic_int inside;
    int next; /* only touched by the strand's own tasks: a data race if
                 two ran at once, which TSan/helgrind would report */
    int errors;
    uint64_t sum;
} stress_strand;

typedef struct stress_task {
    oc_task t;
    stress_strand *owner;
    int seq;
    uint32_t value;
} stress_task;

static atomic_uint_fast64_t stress_total;
static atomic_int stress_overlap;

static void run_stress(oc_task *t)
{
    stress_task *st = (stress_task *)t;
    stress_strand *ss = st->owner;
    if (atomic_fetch_add(&ss->inside, 1) != 0)
        atomic_fetch_add(&stress_overlap, 1);
    if (ss->next != st->seq)
        ss->errors++;
    ss->next = st->seq + 1;
    ss->sum += st->value;
    atomic_fetch_add(&stress_total, st->value);
    /* some tasks dawdle, so strands pile up and get interleaved */
    if ((st->value & 0x3ff) == 0)
        sleep_us(50);
    atomic_fetch_sub(&ss->inside, 1);
}

static void test_stress(void **state)
{
    (void)state;
    atomic_store(&stress_total, 0);
    atomic_store(&stress_overlap, 0);
    oc_workq *q = oc_workq_new(0, "stress");
    assert_non_null(q);
    stress_strand *ss = calloc(ST_STRANDS, sizeof *ss);
    stress_task *tasks = calloc((size_t)ST_STRANDS * ST_TASKS, sizeof *tasks);
    assert_non_null(ss);
    assert_non_null(tasks);
    uint64_t want_total = 0;
    uint64_t want_sum[ST_STRANDS];
    memset(want_sum, 0, sizeof want_sum);
    uint32_t x = 12345;
    for (int k = 0; k < ST_STRANDS; k++) {
        oc_strand_init(&ss[k].s, q);
        atomic_init(&ss[k].inside, 0);
    }
    /* post round-robin so all strands are live at once */
    for (int i = 0; i < ST_TASKS; i++) {
        for (int k = 0; k < ST_STRANDS; k++) {
            stress_task *st = &tasks[(size_t)k * ST_TASKS + (size_t)i];
            x = x * 1664525u + 1013904223u;
            st->t.run = run_stress;
            st->owner = &ss[k];
            st->seq = i;
            st->value = x;
            want_total += x;
            want_sum[k] += x;
            oc_strand_post(&ss[k].s, &st->t);
        }
    }
    for (int k = 0; k < ST_STRANDS; k++)
        oc_strand_wait_idle(&ss[k].s);
    assert_int_equal(atomic_load(&stress_overlap), 0);
    assert_true(atomic_load(&stress_total) == want_total);
    for (int k = 0; k < ST_STRANDS; k++) {
        assert_int_equal(ss[k].errors, 0);
        assert_int_equal(ss[k].next, ST_TASKS);
        assert_true(ss[k].sum == want_sum[k]);
    }
    oc_workq_free(q);
    free(tasks);
    free(ss);
}

/* Two pools, tasks of pool A blocking on work of pool B (the pipeline's
 * pattern: inflate waits for a free output buffer that the write pool
 * returns). Must not deadlock even with one thread per pool. */
typedef struct xpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int tokens;
    oc_strand *writer;
    atomic_int written;
} xpool;

typedef struct xtask {
    oc_task t;
    xpool *x;
} xtask;

static void run_consume(oc_task *t)
{
    xtask *xt = (xtask *)t;
    xpool *x = xt->x;
    atomic_fetch_add(&x->written, 1);
    pthread_mutex_lock(&x->lock);
    x->tokens++;
    pthread_cond_signal(&x->cond);
    pthread_mutex_unlock(&x->lock);
    free(xt);
}

static void run_produce(oc_task *t)
{
    xtask *xt = (xtask *)t;
    xpool *x = xt->x;
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&x->lock);
        while (x->tokens == 0)
            pthread_cond_wait(&x->cond, &x->lock);
        x->tokens--;
        pthread_mutex_unlock(&x->lock);
        xtask *w = malloc(sizeof *w);
        if (!w)
            abort(); /* not assert: this runs on a worker thread */
        w->t.run = run_consume;
        w->x = x;
        oc_strand_post(x->writer, &w->t);
    }
}

static void test_two_pools_blocking(void **state)
{
    (void)state;
    oc_workq *a = oc_workq_new(1, "a");
    oc_workq *b = oc_workq_new(1, "b");
    assert_non_null(a);
    assert_non_null(b);
    xpool x;
    pthread_mutex_init(&x.lock, NULL);
    pthread_cond_init(&x.cond, NULL);
    x.tokens = 1;
    atomic_init(&x.written, 0);
    oc_strand sa, sb;
    oc_strand_init(&sa, a);
    oc_strand_init(&sb, b);
    x.writer = &sb;
    xtask p1 = {{run_produce, {NULL, NULL}}, &x}, p2 = {{run_produce, {NULL, NULL}}, &x};
    oc_strand_post(&sa, &p1.t);
    oc_strand_post(&sa, &p2.t);
    oc_strand_wait_idle(&sa);
    oc_workq_free(a);
    oc_workq_free(b);
    assert_int_equal(atomic_load(&x.written), 400);
    pthread_cond_destroy(&x.cond);
    pthread_mutex_destroy(&x.lock);
}

/* ---- priorities ---- */

/* A one-thread pool held by a gate task while strands of priorities 1, 5,
 * 3 and 5 get work: once the gate opens they run 5, 5 (in the order they
 * became ready), 3, 1. */
typedef struct prio_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open, entered;
} prio_gate;

typedef struct prio_gate_task {
    oc_task t;
    prio_gate *g;
} prio_gate_task;

static void run_prio_gate(oc_task *t)
{
    prio_gate *g = ((prio_gate_task *)t)->g;
    pthread_mutex_lock(&g->lock);
    g->entered = 1;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static atomic_int order_log[8];
static atomic_int order_n;

typedef struct tag_task {
    oc_task t;
    int tag;
} tag_task;

static void run_tag(oc_task *t)
{
    int i = atomic_fetch_add(&order_n, 1);
    if (i < 8)
        atomic_store(&order_log[i], ((tag_task *)t)->tag);
}

static void test_priority_order(void **state)
{
    (void)state;
    oc_workq *q = oc_workq_new(1, "t");
    assert_non_null(q);
    prio_gate g = {.open = 0};
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.cond, NULL);
    oc_strand sg, s[4];
    oc_strand_init(&sg, q);
    prio_gate_task gt = {{run_prio_gate, {NULL, NULL}}, &g};
    oc_strand_post(&sg, &gt.t);
    pthread_mutex_lock(&g.lock);
    while (!g.entered)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
    static const int prio[4] = {1, 5, 3, 5};
    tag_task tt[4];
    atomic_init(&order_n, 0);
    for (int i = 0; i < 4; i++) {
        oc_strand_init(&s[i], q);
        oc_strand_set_priority(&s[i], prio[i]);
        tt[i].t.run = run_tag;
        tt[i].tag = i;
        oc_strand_post(&s[i], &tt[i].t);
    }
    pthread_mutex_lock(&g.lock);
    g.open = 1;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    for (int i = 0; i < 4; i++)
        oc_strand_wait_idle(&s[i]);
    assert_int_equal(atomic_load(&order_n), 4);
    assert_int_equal(atomic_load(&order_log[0]), 1); /* 5, first ready */
    assert_int_equal(atomic_load(&order_log[1]), 3); /* 5 */
    assert_int_equal(atomic_load(&order_log[2]), 2); /* 3 */
    assert_int_equal(atomic_load(&order_log[3]), 0); /* 1 */
    oc_workq_free(q);
    pthread_cond_destroy(&g.cond);
    pthread_mutex_destroy(&g.lock);
}

/* ---- parking ---- */

typedef struct park_task {
    oc_task t;
    oc_strand *s;
    atomic_int runs;
    int parks;       /* park this many times before finishing */
    int self_unpark; /* unpark itself before each park (the early wake) */
    atomic_int done;
} park_task;

static void run_park(oc_task *t)
{
    park_task *pt = (park_task *)t;
    int run = atomic_fetch_add(&pt->runs, 1);
    if (run < pt->parks) {
        if (pt->self_unpark)
            oc_strand_unpark(pt->s); /* a wake-up that comes before the park */
        oc_strand_park(pt->s);
        return;
    }
    atomic_store(&pt->done, 1);
}

/* A one-thread pool: a parked task does not hold the worker (another
 * strand's task runs meanwhile), the task's strand keeps its next task
 * behind it, and unpark runs it again; an unpark before the park is kept. */
static void test_park_and_unpark(void **state)
{
    (void)state;
    oc_workq *q = oc_workq_new(1, "t");
    assert_non_null(q);
    oc_strand a, b;
    oc_strand_init(&a, q);
    oc_strand_init(&b, q);
    park_task pa = {.s = &a, .parks = 1};
    pa.t.run = run_park;
    atomic_init(&pa.runs, 0);
    atomic_init(&pa.done, 0);
    tag_task after = {.tag = 7}, other = {.tag = 9};
    after.t.run = run_tag;
    other.t.run = run_tag;
    atomic_init(&order_n, 0);
    oc_strand_post(&a, &pa.t);
    oc_strand_post(&a, &after.t); /* must wait for pa */
    while (atomic_load(&pa.runs) < 1)
        sleep_us(100);
    oc_strand_post(&b, &other.t); /* the worker is free: runs now */
    oc_strand_wait_idle(&b);
    assert_int_equal(atomic_load(&order_n), 1);
    assert_int_equal(atomic_load(&order_log[0]), 9);
    sleep_us(2000);
    assert_int_equal(atomic_load(&pa.runs), 1); /* still parked */
    assert_int_equal(atomic_load(&order_n), 1); /* and after is behind it */
    oc_strand_unpark(&a);
    oc_strand_wait_idle(&a);
    assert_int_equal(atomic_load(&pa.runs), 2);
    assert_int_equal(atomic_load(&pa.done), 1);
    assert_int_equal(atomic_load(&order_n), 2);
    assert_int_equal(atomic_load(&order_log[1]), 7);

    /* the early wake: parks three times, waking itself first each time */
    park_task pe = {.s = &a, .parks = 3, .self_unpark = 1};
    pe.t.run = run_park;
    atomic_init(&pe.runs, 0);
    atomic_init(&pe.done, 0);
    oc_strand_post(&a, &pe.t);
    oc_strand_wait_idle(&a);
    assert_int_equal(atomic_load(&pe.runs), 4);
    assert_int_equal(atomic_load(&pe.done), 1);
    oc_workq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_count),
        cmocka_unit_test(test_strand_order_and_exclusion),
        cmocka_unit_test(test_strands_posted_from_threads),
        cmocka_unit_test(test_strands_run_in_parallel),
        cmocka_unit_test(test_four_strands_four_threads),
        cmocka_unit_test(test_single_thread_round_robin),
        cmocka_unit_test(test_wait_idle_after_last_task),
        cmocka_unit_test(test_wait_idle_ignores_other_strands),
        cmocka_unit_test(test_wait_idle_then_free_strand),
        cmocka_unit_test(test_free_waits_for_all),
        cmocka_unit_test(test_free_idle_pool),
        cmocka_unit_test(test_stress),
        cmocka_unit_test(test_two_pools_blocking),
        cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_park_and_unpark),
    };
    /* OCCY_TEST_FILTER=test_x runs a subset (handy under valgrind) */
    if (getenv("OCCY_TEST_FILTER"))
        cmocka_set_test_filter(getenv("OCCY_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
