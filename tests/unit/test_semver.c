/* test_semver.c - version tags and ranges: what parses, semver precedence
 * (the order listed in the Semantic Versioning 2.0.0 text), and which
 * versions each kind of range takes, prereleases included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/image/semver.h"

static void test_parse(void **state)
{
    (void)state;
    oc_semver v;
    assert_int_equal(oc_semver_parse("1.2.3", &v), 0);
    assert_int_equal(v.part[0], 1);
    assert_int_equal(v.part[1], 2);
    assert_int_equal(v.part[2], 3);
    assert_int_equal(v.n_parts, 3);
    assert_string_equal(v.pre, "");
    assert_int_equal(oc_semver_parse("v1.36", &v), 0);
    assert_int_equal(v.n_parts, 2);
    assert_int_equal(v.part[1], 36);
    assert_int_equal(v.part[2], 0);
    assert_int_equal(oc_semver_parse("2", &v), 0);
    assert_int_equal(oc_semver_parse("1.0.0-rc.1+build.5", &v), 0);
    assert_string_equal(v.pre, "rc.1");
    const char *bad[] = {
        "",          "v",    "latest", "1.",         "1..2", "1.2.3.4", "1.2-",
        "1.2-rc..1", "1.2+", "-1",     "1.2.3-rc_1", "x1.2", "1.2a",    "123456789012345678901"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (oc_semver_parse(bad[i], &v) == 0)
            fail_msg("\"%s\" parsed as a version", bad[i]);
    }
}

static void test_order(void **state)
{
    (void)state;
    const char *ordered[] = {"0.9.9",      "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
                             "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
                             "1.0.0",      "1.0.1",        "1.2",           "1.10.0",
                             "2.0.0"};
    size_t n = sizeof ordered / sizeof ordered[0];
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n; k++) {
            oc_semver a, b;
            assert_int_equal(oc_semver_parse(ordered[i], &a), 0);
            assert_int_equal(oc_semver_parse(ordered[k], &b), 0);
            int c = oc_semver_cmp(&a, &b);
            int want = i < k ? -1 : i > k;
            if ((c < 0 ? -1 : c > 0) != want)
                fail_msg("cmp(%s, %s) = %d", ordered[i], ordered[k], c);
        }
    }
    oc_semver a, b;
    assert_int_equal(oc_semver_parse("v1.2.0+x", &a), 0);
    assert_int_equal(oc_semver_parse("1.2", &b), 0);
    assert_int_equal(oc_semver_cmp(&a, &b), 0); /* build metadata and "v" do not count */
}

/* The tags of all[] range selects, joined by spaces. */
static void selected(const char *range, const char *const *all, size_t n, char *out, size_t cap)
{
    oc_error err;
    oc_semver_range *r = oc_semver_range_parse(range, &err);
    if (!r)
        fail_msg("range \"%s\": %s", range, err.msg);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        oc_semver v;
        if (oc_semver_parse(all[i], &v) == 0 && oc_semver_range_matches(r, &v)) {
            if (out[0])
                strncat(out, " ", cap - strlen(out) - 1);
            strncat(out, all[i], cap - strlen(out) - 1);
        }
    }
    oc_semver_range_free(r);
}

static void test_ranges(void **state)
{
    (void)state;
    const char *all[] = {"0.1.0",      "0.2.3", "0.2.9", "0.3.0",      "1.0.0",
                         "1.1.9",      "1.2.0", "1.2.5", "1.3.0",      "1.9.9",
                         "2.0.0-rc.1", "2.0.0", "2.1.0", "3.0.0-beta", "latest"};
    size_t n = sizeof all / sizeof all[0];
    struct {
        const char *range, *want;
    } cases[] = {
        {">=1.2 <2", "1.2.0 1.2.5 1.3.0 1.9.9"},
        {">= 1.2 < 2", "1.2.0 1.2.5 1.3.0 1.9.9"},
        {">1.2", "1.3.0 1.9.9 2.0.0 2.1.0"},
        {"<=1.2", "0.1.0 0.2.3 0.2.9 0.3.0 1.0.0 1.1.9 1.2.0 1.2.5"},
        {">1.2.0 <=1.3.0", "1.2.5 1.3.0"},
        {"1.2", "1.2.0 1.2.5"},
        {"=2.0.0", "2.0.0"},
        {"~1.2.3", "1.2.5"},
        {"~1", "1.0.0 1.1.9 1.2.0 1.2.5 1.3.0 1.9.9"},
        {"^1.2", "1.2.0 1.2.5 1.3.0 1.9.9"},
        {"^0.2.3", "0.2.3 0.2.9"},
        {"<1 || >=2.1", "0.1.0 0.2.3 0.2.9 0.3.0 2.1.0"},
        {">=2.0.0-rc.1 <2.0.0", "2.0.0-rc.1"},
        {">=2.0.0-rc.0", "2.0.0-rc.1 2.0.0 2.1.0"},
        {"*", "0.1.0 0.2.3 0.2.9 0.3.0 1.0.0 1.1.9 1.2.0 1.2.5 1.3.0 1.9.9 2.0.0 2.1.0"},
    };
    char got[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        selected(cases[i].range, all, n, got, sizeof got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("range \"%s\" selected \"%s\", wanted \"%s\"", cases[i].range, got,
                     cases[i].want);
    }
    oc_error err;
    const char *bad[] = {"", ">=", "1.2 ||", ">=x", "~", "1.2.3.4", ">=1.2 <two"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oc_error_clear(&err);
        oc_semver_range *r = oc_semver_range_parse(bad[i], &err);
        if (r)
            fail_msg("range \"%s\" parsed", bad[i]);
        assert_int_equal(err.code, OC_E_USAGE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
