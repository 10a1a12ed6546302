/* test_tagfilter.c - choosing tags of a repository: anchored regexes,
 * exclusions, a semver range, latest N by version or by the list's order,
 * and the registry's order kept in the result; hostile patterns and tags
 * refused or cut off with an error naming them, in bounded time and memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/image/tagfilter.h"

static const char *TAGS[] = {"latest", "1.9.0",  "1.10.0", "1.2.0",      "1.2.0-alpine", "2.0.0",
                             "v1.3",   "1.11.2", "edge",   "2.0.0-rc.1", "1.2.1",        "x1.2.0"};
#define N_TAGS (sizeof TAGS / sizeof TAGS[0])

static void pick(const oc_tag_filter *f, char *out, size_t cap)
{
    oc_error err;
    oc_tag_selector *s = oc_tag_selector_new(f, &err);
    if (!s)
        fail_msg("selector: %s", err.msg);
    size_t *picked = NULL, n = 0;
    assert_int_equal(oc_tag_selector_apply(s, TAGS, N_TAGS, &picked, &n, &err), 0);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(out, " ", cap - strlen(out) - 1);
        strncat(out, TAGS[picked[i]], cap - strlen(out) - 1);
    }
    free(picked);
    oc_tag_selector_free(s);
}

static void test_filters(void **state)
{
    (void)state;
    char got[512];
    oc_tag_filter all = {0};
    pick(&all, got, sizeof got);
    assert_string_equal(got, "latest 1.9.0 1.10.0 1.2.0 1.2.0-alpine 2.0.0 v1.3 1.11.2 edge "
                             "2.0.0-rc.1 1.2.1 x1.2.0");
    /* anchored: "1\.2\..*" does not take x1.2.0 */
    oc_tag_filter re = {.regex = "1\\.2\\..*"};
    pick(&re, got, sizeof got);
    assert_string_equal(got, "1.2.0 1.2.0-alpine 1.2.1");
    oc_tag_filter alt = {.regex = "latest|edge"};
    pick(&alt, got, sizeof got);
    assert_string_equal(got, "latest edge");
    const char *ex[] = {".*-alpine", "2\\..*"};
    oc_tag_filter exclude = {.regex = "[0-9.]+.*", .exclude = ex, .n_exclude = 2};
    pick(&exclude, got, sizeof got);
    assert_string_equal(got, "1.9.0 1.10.0 1.2.0 1.11.2 1.2.1");
    oc_tag_filter range = {.semver = ">=1.2 <2"};
    pick(&range, got, sizeof got);
    assert_string_equal(got, "1.9.0 1.10.0 1.2.0 v1.3 1.11.2 1.2.1");
    /* the three highest versions, in the registry's order */
    oc_tag_filter latest = {.semver = ">=1.2 <2", .latest = 3};
    pick(&latest, got, sizeof got);
    assert_string_equal(got, "1.9.0 1.10.0 1.11.2");
    oc_tag_filter latest_all = {.regex = "[0-9].*", .exclude = ex, .n_exclude = 1, .latest = 2};
    pick(&latest_all, got, sizeof got);
    assert_string_equal(got, "2.0.0 2.0.0-rc.1"); /* a prerelease is a version too */
    /* not all versions: the last N of the list */
    oc_tag_filter by_list = {.latest = 3};
    pick(&by_list, got, sizeof got);
    assert_string_equal(got, "2.0.0-rc.1 1.2.1 x1.2.0");
    oc_tag_filter none = {.regex = "nothing"};
    pick(&none, got, sizeof got);
    assert_string_equal(got, "");
}

static void test_errors(void **state)
{
    (void)state;
    oc_error err;
    oc_tag_filter bad_re = {.regex = "v[0-9"};
    assert_null(oc_tag_selector_new(&bad_re, &err));
    assert_int_equal(err.code, OC_E_USAGE);
    assert_non_null(strstr(err.msg, "v[0-9"));
    const char *ex[] = {"(a"};
    oc_tag_filter bad_ex = {.exclude = ex, .n_exclude = 1};
    assert_null(oc_tag_selector_new(&bad_ex, &err));
    oc_tag_filter bad_range = {.semver = ">=1 <"};
    assert_null(oc_tag_selector_new(&bad_range, &err));
    assert_int_equal(oc_tag_regex_check("[a-z]+", &err), 0);
    assert_int_equal(oc_tag_regex_check("*(", &err), -1);
}

/* Go's syntax, which skopeo sync's tag regexes use: \d, (?i), lazy */
static void test_syntax(void **state)
{
    (void)state;
    char got[512];
    oc_tag_filter digits = {.regex = "v?\\d+\\.\\d+(\\.\\d+)?"};
    pick(&digits, got, sizeof got);
    assert_string_equal(got, "1.9.0 1.10.0 1.2.0 2.0.0 v1.3 1.11.2 1.2.1");
    oc_tag_filter nocase = {.regex = "(?i)EDGE|LATEST"};
    pick(&nocase, got, sizeof got);
    assert_string_equal(got, "latest edge");
    /* anchored by option, not by wrapping: a stray ")" cannot unanchor it */
    oc_error err;
    assert_int_equal(oc_tag_regex_check("1)|(.*", &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
}

/* Patterns that took glibc's regcomp gigabytes or minutes: refused (or
 * compiled) at once. */
static void test_hostile_patterns(void **state)
{
    (void)state;
    oc_error err;
    assert_int_equal(oc_tag_regex_check("((a{1,255}){1,255}){1,255}", &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_non_null(strstr(err.msg, "too large"));
    assert_int_equal(oc_tag_regex_check(":+++++++__+++*+++++++++", &err), -1);
    char stars[7 * 40 + 1] = "";
    for (int i = 0; i < 40; i++)
        strcat(stars, "(a*b*)*");
    assert_int_equal(oc_tag_regex_check(stars, &err), 0);
    char deep[2 * 70 + 2];
    memset(deep, '(', 70);
    deep[70] = 'a';
    memset(deep + 71, ')', 70);
    deep[141] = '\0';
    assert_int_equal(oc_tag_regex_check(deep, &err), -1);
    assert_non_null(strstr(err.msg, "nest"));
    char *longest = malloc(5000);
    memset(longest, 'a', 4999);
    longest[4999] = '\0';
    assert_int_equal(oc_tag_regex_check(longest, &err), -1);
    free(longest);
}

/* A pattern that backtracks exponentially on a long tag: that tag fails
 * with an error naming the regex and the tag, instead of hanging. */
static void test_backtracking_limit(void **state)
{
    (void)state;
    char tag[129]; /* a...abc: "b" is there, but not at the end */
    memset(tag, 'a', 126);
    memcpy(tag + 126, "bc", 3);
    const char *tags[] = {"b", tag};
    oc_tag_filter f = {.regex = "(a|aa)*(a|aa)*(a|aa)*b"};
    oc_error err;
    oc_tag_selector *s = oc_tag_selector_new(&f, &err);
    assert_non_null(s);
    size_t *picked = NULL, n = 0;
    assert_int_equal(oc_tag_selector_apply(s, tags, 2, &picked, &n, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_non_null(strstr(err.msg, "(a|aa)*(a|aa)*(a|aa)*b"));
    assert_non_null(strstr(err.msg, "aaaa"));
    assert_null(picked);
    oc_tag_selector_free(s);
    /* the same pattern on short tags answers */
    const char *fine[] = {"b", "aab", "ac"};
    s = oc_tag_selector_new(&f, &err);
    assert_int_equal(oc_tag_selector_apply(s, fine, 3, &picked, &n, &err), 0);
    assert_int_equal(n, 2);
    free(picked);
    oc_tag_selector_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_hostile_patterns),
        cmocka_unit_test(test_backtracking_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
