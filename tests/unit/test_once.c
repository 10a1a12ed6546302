/* test_once.c - in-flight deduplication: one owner, waiters woken in order,
 * success remembered (and seen by peek), failure forgotten so a waiter can
 * take over, and a table that grows past its first size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sched/once.h"

typedef struct rec {
    oc_once_waiter w;
    int calls;
    int ok;
    char value[64];
    int order;
} rec;

static int counter;
static oc_once *reclaim_table;
static int reclaim_result;

static void on_ready(oc_once_waiter *w, int ok, const char *value, const oc_error *err)
{
    (void)err;
    rec *r = w->opaque;
    r->calls++;
    r->ok = ok;
    r->order = ++counter;
    snprintf(r->value, sizeof r->value, "%s", value ? value : "");
}

static void on_ready_reclaim(oc_once_waiter *w, int ok, const char *value, const oc_error *err)
{
    on_ready(w, ok, value, err);
    const char *v = NULL;
    if (!ok)
        reclaim_result = oc_once_claim(reclaim_table, "k", w, &v);
}

static void test_owner_and_waiters(void **state)
{
    (void)state;
    oc_once *t = oc_once_new();
    rec a = {.w = {.ready = on_ready}}, b = {.w = {.ready = on_ready}};
    a.w.opaque = &a;
    b.w.opaque = &b;
    const char *v = NULL;
    counter = 0;
    assert_int_equal(oc_once_claim(t, "sha256:x", &a.w, &v), OC_ONCE_OWNER);
    assert_int_equal(oc_once_claim(t, "sha256:x", &a.w, &v), OC_ONCE_WAIT);
    assert_int_equal(oc_once_claim(t, "sha256:x", &b.w, &v), OC_ONCE_WAIT);
    oc_once_complete(t, "sha256:x", 1, "/store/x", NULL);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_true(a.order < b.order);
    assert_string_equal(b.value, "/store/x");
    rec c = {.w = {.ready = on_ready}};
    c.w.opaque = &c;
    assert_int_equal(oc_once_claim(t, "sha256:x", &c.w, &v), OC_ONCE_DONE);
    assert_string_equal(v, "/store/x");
    assert_int_equal(c.calls, 0);
    oc_once_free(t);
}

static void test_failure_hands_over(void **state)
{
    (void)state;
    oc_once *t = oc_once_new();
    reclaim_table = t;
    rec a = {.w = {.ready = on_ready_reclaim}}, b = {.w = {.ready = on_ready_reclaim}};
    a.w.opaque = &a;
    b.w.opaque = &b;
    const char *v = NULL;
    assert_int_equal(oc_once_claim(t, "k", NULL, &v), OC_ONCE_OWNER);
    assert_int_equal(oc_once_claim(t, "k", &a.w, &v), OC_ONCE_WAIT);
    assert_int_equal(oc_once_claim(t, "k", &b.w, &v), OC_ONCE_WAIT);
    oc_error err;
    oc_error_set(&err, OC_E_CANCELLED, "cancelled");
    oc_once_complete(t, "k", 0, NULL, &err);
    /* a re-claimed first and became the owner; b re-claimed and waits on a */
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(reclaim_result, OC_ONCE_WAIT);
    oc_once_complete(t, "k", 1, "v2", NULL);
    assert_int_equal(b.calls, 2);
    assert_true(b.ok);
    assert_string_equal(b.value, "v2");
    oc_once_free(t);
}

/* peek gives a remembered success and nothing else, and claims nothing. */
static void test_peek(void **state)
{
    (void)state;
    oc_once *t = oc_once_new();
    const char *v = NULL;
    assert_null(oc_once_peek(t, "k"));
    assert_int_equal(oc_once_claim(t, "k", NULL, &v), OC_ONCE_OWNER);
    assert_null(oc_once_peek(t, "k"));
    oc_once_complete(t, "k", 0, NULL, NULL);
    assert_null(oc_once_peek(t, "k"));
    assert_int_equal(oc_once_claim(t, "k", NULL, &v), OC_ONCE_OWNER);
    oc_once_complete(t, "k", 1, "v", NULL);
    assert_string_equal(oc_once_peek(t, "k"), "v");
    assert_null(oc_once_peek(t, "other"));
    assert_int_equal(oc_once_claim(t, "other", NULL, &v), OC_ONCE_OWNER);
    oc_once_free(t);
}

static void test_withdraw_and_grow(void **state)
{
    (void)state;
    oc_once *t = oc_once_new();
    rec a = {.w = {.ready = on_ready}};
    a.w.opaque = &a;
    const char *v = NULL;
    assert_int_equal(oc_once_claim(t, "w", NULL, &v), OC_ONCE_OWNER);
    assert_int_equal(oc_once_claim(t, "w", &a.w, &v), OC_ONCE_WAIT);
    oc_once_withdraw(t, "w", &a.w);
    oc_once_complete(t, "w", 1, "x", NULL);
    assert_int_equal(a.calls, 0);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(oc_once_claim(t, key, NULL, &v), OC_ONCE_OWNER);
        if (i % 3 == 0)
            oc_once_complete(t, key, 1, key, NULL);
        else if (i % 3 == 1)
            oc_once_complete(t, key, 0, NULL, NULL);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        int r = oc_once_claim(t, key, &a.w, &v);
        if (i % 3 == 0) {
            assert_int_equal(r, OC_ONCE_DONE);
            assert_string_equal(v, key);
        } else if (i % 3 == 1) {
            assert_int_equal(r, OC_ONCE_OWNER);
        } else {
            assert_int_equal(r, OC_ONCE_WAIT);
            oc_once_withdraw(t, key, &a.w);
        }
    }
    assert_int_equal(oc_once_claim(t, "w", NULL, &v), OC_ONCE_DONE);
    oc_once_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_owner_and_waiters),
        cmocka_unit_test(test_failure_hands_over),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_withdraw_and_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
