/* test_limits_rate.c - the per-key request rate of sched/limits: with a
 * rate of R per second, the k-th grant of a burst comes no earlier than
 * (k-1)/R seconds after the first; other keys are not held back; the refill
 * timer keeps the loop alive while waiters wait, and closes cleanly. Only
 * lower bounds on time are asserted, so a slow machine cannot fail it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "sched/limits.h"

typedef struct grant {
    oc_slot_wait w;
    oc_limiter *l;
    uv_loop_t *loop;
    uint64_t at;
    int granted;
} grant;

static void on_granted(oc_slot_wait *w)
{
    grant *g = w->opaque;
    g->granted = 1;
    g->at = uv_now(g->loop);
    oc_limiter_release(g->l, w); /* the request is instant */
}

static void test_rate_spacing(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    oc_limiter *l = oc_limiter_new(0, 8);
    assert_int_equal(oc_limiter_set_key_rate(l, &loop, "slow", 20.0), 0);
    assert_true(oc_limiter_key_rate(l, "slow") == 20.0);
    grant g[6], other;
    uint64_t t0 = uv_now(&loop);
    for (int i = 0; i < 6; i++) {
        g[i] = (grant){.w = {.granted = on_granted}, .l = l, .loop = &loop};
        g[i].w.opaque = &g[i];
        assert_int_equal(oc_limiter_acquire(l, "slow", &g[i].w), 0);
    }
    other = (grant){.w = {.granted = on_granted}, .l = l, .loop = &loop};
    other.w.opaque = &other;
    assert_int_equal(oc_limiter_acquire(l, "fast", &other.w), 0);
    assert_true(other.granted); /* another key is not held back */
    assert_true(g[0].granted);  /* the first token is there at once */
    assert_false(g[1].granted);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns only when every waiter was granted */
    for (int i = 0; i < 6; i++) {
        assert_true(g[i].granted);
        /* 20/s: the i-th grant no earlier than i * 50 ms (1 ms slack for rounding) */
        assert_true(g[i].at - t0 + 1 >= (uint64_t)i * 50);
        if (i > 0)
            assert_true(g[i].at >= g[i - 1].at);
    }
    oc_limiter_close(l);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    oc_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_spacing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
