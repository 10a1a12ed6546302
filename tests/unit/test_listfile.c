/* test_listfile.c - the mirror's LIST parser: comments, blanks, line
 * numbers, bad lines kept as bad entries, registries and digests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/listfile.h"

static const char *DIGEST =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void test_basic(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text,
             "# a comment\n"
             "\n"
             "   busybox\n"
             "quay.io/org/img:1.2   # trailing comment\n"
             "127.0.0.1:5000/fixtures/x@%s\r\n"
             "\tlocalhost:5000/a/b:tag#not-a-comment\n"
             "Bad/UPPER:tag\n"
             "last:without-newline",
             DIGEST);
    oc_list l;
    oc_error err;
    assert_int_equal(oc_list_parse(&l, text, strlen(text), NULL, &err), 0);
    assert_int_equal(l.n, 6);
    assert_int_equal(l.entries[0].line, 3);
    assert_true(l.entries[0].ok);
    assert_string_equal(l.entries[0].ref.registry, "registry-1.docker.io");
    assert_string_equal(l.entries[0].ref.repository, "library/busybox");
    assert_string_equal(l.entries[0].ref.tag, "latest");
    assert_int_equal(l.entries[1].line, 4);
    assert_string_equal(l.entries[1].text, "quay.io/org/img:1.2");
    assert_string_equal(l.entries[1].ref.registry, "quay.io");
    assert_string_equal(l.entries[1].ref.tag, "1.2");
    assert_true(l.entries[2].ok);
    assert_string_equal(l.entries[2].ref.digest, DIGEST);
    assert_null(l.entries[2].ref.tag);
    /* '#' inside a token is not a comment: the tag is invalid */
    assert_false(l.entries[3].ok);
    assert_int_equal(l.entries[3].line, 6);
    assert_false(l.entries[4].ok);
    assert_int_equal(l.entries[4].line, 7);
    assert_non_null(strstr(l.entries[4].err->msg, "line 7"));
    assert_true(l.entries[5].ok);
    assert_int_equal(oc_list_count_bad(&l), 2);
    oc_list_free(&l);
}

static void test_default_registry(void **state)
{
    (void)state;
    const char *text = "fixtures/a:v1\nother.example:443/b\n";
    oc_list l;
    oc_error err;
    assert_int_equal(oc_list_parse(&l, text, strlen(text), "127.0.0.1:5000", &err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.entries[0].ref.registry, "127.0.0.1:5000");
    assert_string_equal(l.entries[1].ref.registry, "other.example:443");
    oc_list_free(&l);
}

static void test_hostile(void **state)
{
    (void)state;
    /* a NUL inside a line, an overlong line, only comments */
    char text[6000];
    size_t n = 0;
    memcpy(text + n, "a\0b:tag\n", 8);
    n += 8;
    memset(text + n, 'a', 5000);
    n += 5000;
    text[n++] = '\n';
    memcpy(text + n, "#x\n#y\n", 6);
    n += 6;
    oc_list l;
    oc_error err;
    assert_int_equal(oc_list_parse(&l, text, n, NULL, &err), 0);
    assert_int_equal(l.n, 2);
    assert_false(l.entries[0].ok);
    assert_non_null(strstr(l.entries[0].err->msg, "NUL"));
    assert_false(l.entries[1].ok);
    assert_non_null(strstr(l.entries[1].err->msg, "longer"));
    oc_list_free(&l);
    assert_int_equal(oc_list_parse(&l, "", 0, NULL, &err), 0);
    assert_int_equal(l.n, 0);
    oc_list_free(&l);
}

static void test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/occy-list-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "busybox:1\nalpine\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    oc_list l;
    oc_error err;
    assert_int_equal(oc_list_load(&l, path, NULL, &err), 0);
    assert_int_equal(l.n, 2);
    oc_list_free(&l);
    unlink(path);
    assert_int_equal(oc_list_load(&l, "/nonexistent/list", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/list"));
}

static void test_repositories(void **state)
{
    (void)state;
    const char *text =
        "127.0.0.1:5000/team/app:*\n"
        "quay.io/org/img:/v1\\.[0-9]+(-[a-z]+)?/\n"
        "busybox:*   # every tag\n"
        "127.0.0.1:5000/x:/[/\n"
        "a/b:v1:*\n"
        "a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef:*\n"
        "c/d:/v1/x/\n";
    oc_list l;
    oc_error err;
    assert_int_equal(oc_list_parse(&l, text, strlen(text), NULL, &err), 0);
    assert_int_equal(l.n, 7);
    assert_true(l.entries[0].ok);
    assert_int_equal(l.entries[0].kind, OC_LIST_ALL_TAGS);
    assert_string_equal(l.entries[0].ref.registry, "127.0.0.1:5000");
    assert_string_equal(l.entries[0].ref.repository, "team/app");
    assert_null(l.entries[0].ref.tag);
    assert_null(l.entries[0].ref.digest);
    assert_true(l.entries[1].ok);
    assert_int_equal(l.entries[1].kind, OC_LIST_TAG_REGEX);
    assert_string_equal(l.entries[1].tag_regex, "v1\\.[0-9]+(-[a-z]+)?");
    assert_string_equal(l.entries[1].ref.repository, "org/img");
    assert_true(l.entries[2].ok);
    assert_string_equal(l.entries[2].ref.repository, "library/busybox");
    /* a regex that does not compile, a tag or digest before the filter */
    assert_false(l.entries[3].ok);
    assert_non_null(strstr(l.entries[3].err->msg, "line 4"));
    assert_false(l.entries[4].ok);
    assert_non_null(strstr(l.entries[4].err->msg, "REPO:*"));
    assert_false(l.entries[5].ok);
    /* a regex may hold '/': the first ":/" ends the repository */
    assert_true(l.entries[6].ok);
    assert_string_equal(l.entries[6].tag_regex, "v1/x");
    /* expansion: an image entry per tag, text and line from the repository's */
    oc_list out;
    memset(&out, 0, sizeof out);
    assert_int_equal(oc_list_append_tag(&out, &l.entries[0], "v2"), 0);
    assert_int_equal(oc_list_append_copy(&out, &l.entries[3]), 0);
    assert_int_equal(oc_list_append_bad(&out, 9, "z:*", l.entries[3].err), 0);
    assert_int_equal(out.n, 3);
    assert_string_equal(out.entries[0].text, "127.0.0.1:5000/team/app:v2");
    assert_int_equal(out.entries[0].line, 1);
    assert_int_equal(out.entries[0].kind, OC_LIST_IMAGE);
    assert_string_equal(out.entries[0].ref.tag, "v2");
    assert_false(out.entries[1].ok);
    assert_string_equal(out.entries[1].err->msg, l.entries[3].err->msg);
    assert_int_equal(out.entries[2].line, 9);
    oc_list_free(&out);
    oc_list_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),        cmocka_unit_test(test_default_registry),
        cmocka_unit_test(test_hostile),      cmocka_unit_test(test_load),
        cmocka_unit_test(test_repositories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
