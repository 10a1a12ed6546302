/* test_strmap.c - the string map: insert, replace (the old value freed),
 * absent keys, NULL values, growth past many resizes, and a walk that sees
 * every entry once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/strmap.h"

static int freed;

static void count_free(void *p)
{
    if (p)
        freed++;
    free(p);
}

static void sum(const char *key, void *value, void *opaque)
{
    (void)key;
    *(long *)opaque += value ? *(int *)value : 0;
}

static void test_map(void **state)
{
    (void)state;
    enum { N = 20000 };
    freed = 0;
    oc_strmap *m = oc_strmap_new(count_free);
    assert_non_null(m);
    assert_null(oc_strmap_get(m, "missing"));
    assert_false(oc_strmap_has(m, "missing"));
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "sha256:%08x", i);
        int *v = malloc(sizeof *v);
        assert_non_null(v);
        *v = i;
        assert_int_equal(oc_strmap_set(m, key, v), 0);
    }
    assert_int_equal(oc_strmap_count(m), N);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "sha256:%08x", i);
        int *v = oc_strmap_get(m, key);
        assert_non_null(v);
        assert_int_equal(*v, i);
    }
    int *v = malloc(sizeof *v);
    *v = -1;
    assert_int_equal(oc_strmap_set(m, "sha256:00000005", v), 0); /* replaces, frees the old */
    assert_int_equal(freed, 1);
    assert_int_equal(oc_strmap_count(m), N);
    assert_int_equal(*(int *)oc_strmap_get(m, "sha256:00000005"), -1);
    assert_int_equal(oc_strmap_set(m, "null", NULL), 0);
    assert_true(oc_strmap_has(m, "null"));
    assert_null(oc_strmap_get(m, "null"));
    long total = 0;
    oc_strmap_foreach(m, sum, &total);
    assert_int_equal(total, (long)N * (N - 1) / 2 - 5 - 1);
    oc_strmap_free(m);
    assert_int_equal(freed, N + 1); /* the replaced one and every value left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
