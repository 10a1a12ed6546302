/* test_tags.c - the pieces of listing a repository's tags: a page's JSON
 * (null and empty lists, bad tags refused with the tag named), and the
 * Link header (relative and absolute, rel among others, several links,
 * another repository or garbage refused). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/registry/tags.h"

static void test_pages(void **state)
{
    (void)state;
    char **tags = NULL;
    size_t n = 0, cap = 0;
    oc_error err;
    const char *p1 = "{\"name\": \"a/b\", \"tags\": [\"v1\", \"v2\", \"latest\"]}";
    assert_int_equal(oc_tags_parse_page(p1, strlen(p1), "a/b", &tags, &n, &cap, &err), 0);
    const char *p2 = "{\"name\": \"a/b\", \"tags\": null}";
    assert_int_equal(oc_tags_parse_page(p2, strlen(p2), "a/b", &tags, &n, &cap, &err), 0);
    const char *p3 = "{\"name\": \"a/b\", \"tags\": [\"1.0_x-y.z\"]}";
    assert_int_equal(oc_tags_parse_page(p3, strlen(p3), "a/b", &tags, &n, &cap, &err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(tags[0], "v1");
    assert_string_equal(tags[3], "1.0_x-y.z");
    const char *bad[] = {"[]",
                         "{\"tags\": {}}",
                         "{\"tags\": [1]}",
                         "{\"tags\": [\"a/b\"]}",
                         "{\"tags\": [\".hidden\"]}",
                         "{\"tags\": [\"\"]}",
                         "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oc_error_clear(&err);
        if (oc_tags_parse_page(bad[i], strlen(bad[i]), "a/b", &tags, &n, &cap, &err) == 0)
            fail_msg("page %s accepted", bad[i]);
        assert_non_null(strstr(err.msg, "a/b"));
    }
    oc_tags_free(tags, n);
}

static void test_links(void **state)
{
    (void)state;
    char *next = NULL;
    oc_error err;
    assert_int_equal(oc_tags_next_page(NULL, "a/b", &next, &err), 0);
    assert_int_equal(
        oc_tags_next_page("</v2/a/b/tags/list?n=100&last=v9>; rel=\"next\"", "a/b", &next, &err),
        1);
    assert_string_equal(next, "list?n=100&last=v9");
    free(next);
    assert_int_equal(oc_tags_next_page("<https://r.example:5000/v2/a/b/tags/list?last=x%2By&n=2>;"
                                       " rel=\"prev next\"",
                                       "a/b", &next, &err),
                     1);
    assert_string_equal(next, "list?last=x%2By&n=2");
    free(next);
    assert_int_equal(oc_tags_next_page("</v2/a/b/tags/list?last=a>; rel=\"prev\", "
                                       "</v2/a/b/tags/list?last=z>; rel=next",
                                       "a/b", &next, &err),
                     1);
    assert_string_equal(next, "list?last=z");
    free(next);
    assert_int_equal(
        oc_tags_next_page("</v2/a/b/tags/list?last=a>; rel=\"prev\"", "a/b", &next, &err), 0);
    assert_null(next);
    const char *bad[] = {"</v2/other/tags/list?last=a>; rel=\"next\"",
                         "</v2/a/b/tags/listx>; rel=\"next\"",
                         "</v2/a/b/manifests/x>; rel=\"next\"", "garbage; rel=\"next\"",
                         "</v2/a/b/tags/list?last=a; rel=\"next\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oc_error_clear(&err);
        if (oc_tags_next_page(bad[i], "a/b", &next, &err) != -1)
            fail_msg("link %s accepted", bad[i]);
        assert_null(next);
        assert_int_equal(err.code, OC_E_FORMAT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
