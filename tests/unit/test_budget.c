/* test_budget.c - sched/budget: a server's budget of counted requests.
 * Unknown or some left: requests go at once, never more than are left;
 * none left and a reset beyond the bound: refused at once, saying how much
 * is left and when it resets; a Retry-After within the bound: the request
 * waits for it and goes (one at a time), and a request's waits add up to
 * at most the bound; a cancel refuses the waiters; the timer closes
 * cleanly. Only lower bounds on time are asserted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sched/budget.h"

typedef struct req {
    oc_budget_wait w;
    uv_loop_t *loop;
    int calls, granted;
    uint64_t at;
    char why[512];
} req;

static void on_done(oc_budget_wait *w, int granted, const char *why)
{
    req *r = w->opaque;
    r->calls++;
    r->granted = granted;
    r->at = uv_now(r->loop);
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
}

static void req_init(req *r, uv_loop_t *loop)
{
    memset(r, 0, sizeof *r);
    r->w.done = on_done;
    r->w.opaque = r;
    r->loop = loop;
}

static void close_budget(oc_budget *b, uv_loop_t *loop)
{
    oc_budget_close(b);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_unknown_and_some_left(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    oc_budget *b = oc_budget_new(&loop, 60000);
    req r[4];
    for (int i = 0; i < 4; i++)
        req_init(&r[i], &loop);
    oc_budget_acquire(b, &r[0].w); /* nothing said yet: it goes */
    assert_int_equal(r[0].granted, 1);
    oc_budget_answer(b, 1, 100, 2, 21600); /* 2 left */
    oc_budget_acquire(b, &r[1].w);
    oc_budget_acquire(b, &r[2].w);
    assert_int_equal(r[1].granted, 1);
    assert_int_equal(r[2].granted, 1);
    oc_budget_acquire(b, &r[3].w); /* both in flight: it waits for their answers */
    assert_int_equal(r[3].calls, 0);
    oc_budget_answer(b, 1, 100, 1, 21600);
    assert_int_equal(r[3].calls, 0); /* one still in flight */
    oc_budget_answer(b, 1, 100, 0, 21600);
    assert_int_equal(r[3].calls, 1); /* none left, resets in up to 6 h: refused now */
    assert_int_equal(r[3].granted, 0);
    assert_non_null(strstr(r[3].why, "0 of 100 left in its 21600 s window"));
    assert_non_null(strstr(r[3].why, "resets in up to 6 h 00 min"));
    assert_non_null(strstr(r[3].why, "beyond the 60 s a request waits"));
    close_budget(b, &loop);
}

static void test_retry_after_within_bound(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    oc_budget *b = oc_budget_new(&loop, 1000);
    req a, c;
    req_init(&a, &loop);
    req_init(&c, &loop);
    oc_budget_acquire(b, &a.w);
    assert_int_equal(a.granted, 1);
    uint64_t t0 = uv_now(&loop);
    oc_budget_refused(b, 1, 100, 100, 21600); /* 429, Retry-After 0.1 s */
    a.calls = 0;
    oc_budget_acquire(b, &a.w);
    oc_budget_acquire(b, &c.w);
    assert_int_equal(a.calls + c.calls, 0);
    uv_run(&loop, UV_RUN_ONCE);
    while (a.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(a.granted, 1); /* one probe after the reset */
    assert_true(a.at - t0 + 1 >= 100);
    assert_int_equal(c.calls, 0); /* the next waits for the probe's answer */
    oc_budget_answer(b, 1, 100, 5, 21600);
    assert_int_equal(c.granted, 1);
    close_budget(b, &loop);
}

static void test_waits_add_up_to_the_bound(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    oc_budget *b = oc_budget_new(&loop, 300);
    req a;
    req_init(&a, &loop);
    oc_budget_refused(b, 0, 200, -1, -1);
    uint64_t t0 = uv_now(&loop);
    oc_budget_acquire(b, &a.w);
    while (a.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(a.granted, 1);       /* after 0.2 s */
    oc_budget_refused(b, 1, 200, -1, -1); /* refused again: 0.2 s more is beyond 0.3 s */
    a.calls = 0;
    oc_budget_acquire(b, &a.w);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.granted, 0);
    assert_true(a.at - t0 + 1 >= 200);
    assert_non_null(strstr(a.why, "none came back within the 1 s a request waits"));
    close_budget(b, &loop);
}

static void test_cancel(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    oc_budget *b = oc_budget_new(&loop, 60000);
    req a, c;
    req_init(&a, &loop);
    req_init(&c, &loop);
    oc_budget_refused(b, 0, 30000, 100, 21600); /* Retry-After 30 s: within the bound */
    oc_budget_acquire(b, &a.w);
    assert_int_equal(a.calls, 0);
    oc_budget_cancel(b, "interrupted by SIGTERM");
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.granted, 0);
    assert_string_equal(a.why, "interrupted by SIGTERM");
    oc_budget_acquire(b, &c.w);
    assert_int_equal(c.granted, 0);
    /* nothing keeps the loop alive now */
    uint64_t t0 = uv_now(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(uv_now(&loop) - t0 < 30000);
    close_budget(b, &loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_and_some_left),
        cmocka_unit_test(test_retry_after_within_bound),
        cmocka_unit_test(test_waits_add_up_to_the_bound),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
