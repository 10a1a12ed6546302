/* test_ref.c - image references: the list-file grammar, the legacy three
 * words, Docker Hub normalisation, familiar names, and hostile input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image/ref.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIG "sha256:" HEX
#define HUB "registry-1.docker.io"

typedef struct parse_case {
    const char *text;
    const char *default_registry;
    const char *registry;
    const char *repository;
    const char *tag;
    const char *digest;
} parse_case;

static const parse_case good_refs[] = {
    {"busybox", NULL, HUB, "library/busybox", "latest", NULL},
    {"busybox:1.36", NULL, HUB, "library/busybox", "1.36", NULL},
    {"docker.io/busybox", NULL, HUB, "library/busybox", "latest", NULL},
    {"index.docker.io/library/busybox:latest", NULL, HUB, "library/busybox", "latest", NULL},
    {"registry-1.docker.io/library/busybox", NULL, HUB, "library/busybox", "latest", NULL},
    {"homeassistant/home-assistant", NULL, HUB, "homeassistant/home-assistant", "latest", NULL},
    {"localhost:5000/a/b:t", NULL, "localhost:5000", "a/b", "t", NULL},
    {"localhost/a", NULL, "localhost", "a", "latest", NULL},
    {"quay.io/org/img@" DIG, NULL, "quay.io", "org/img", NULL, DIG},
    {"img:tag@" DIG, NULL, HUB, "library/img", "tag", DIG},
    {"127.0.0.1:5000/x", NULL, "127.0.0.1:5000", "x", "latest", NULL},
    {"127.0.0.1:5000/fixtures/x:v1", NULL, "127.0.0.1:5000", "fixtures/x", "v1", NULL},
    {"[::1]:5000/x:v1", NULL, "[::1]:5000", "x", "v1", NULL},
    {"Quay.IO/org/img", NULL, "Quay.IO", "org/img", "latest", NULL},
    {"a.b/c__d/e-f.g:T_a.g-1", NULL, "a.b", "c__d/e-f.g", "T_a.g-1", NULL},
    {"a---b_c.d", NULL, HUB, "library/a---b_c.d", "latest", NULL},
    {"busybox", "quay.io", "quay.io", "busybox", "latest", NULL},
    {"busybox", "docker.io", HUB, "library/busybox", "latest", NULL},
    {"org/img:v2", "127.0.0.1:5000", "127.0.0.1:5000", "org/img", "v2", NULL},
    {"docker.io/org/img", "quay.io", HUB, "org/img", "latest", NULL},
    /* docker reads a lone host:port as name:tag */
    {"localhost:5000", NULL, HUB, "library/localhost", "5000", NULL},
    {"quay.io", NULL, HUB, "library/quay.io", "latest", NULL},
    {"x:_", NULL, HUB, "library/x", "_", NULL},
    {"my-registry.example.com:443/team/app/api:2024.01.02", NULL, "my-registry.example.com:443",
     "team/app/api", "2024.01.02", NULL},
};

static void check_ref(const oc_ref *r, const char *registry, const char *repository,
                      const char *tag, const char *digest)
{
    assert_string_equal(r->registry, registry);
    assert_string_equal(r->repository, repository);
    if (tag)
        assert_string_equal(r->tag, tag);
    else
        assert_null(r->tag);
    if (digest)
        assert_string_equal(r->digest, digest);
    else
        assert_null(r->digest);
}

static void test_parse_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_refs / sizeof good_refs[0]; i++) {
        const parse_case *c = &good_refs[i];
        oc_ref r;
        oc_error err = {0};
        if (oc_ref_parse(&r, c->text, c->default_registry, &err) != 0)
            fail_msg("parse \"%s\" failed: %s", c->text, err.msg);
        check_ref(&r, c->registry, c->repository, c->tag, c->digest);
        oc_ref_free(&r);
        assert_null(r.registry);
    }
}

static void test_parse_limits(void **state)
{
    (void)state;
    char text[600];
    oc_ref r;
    oc_error err = {0};

    /* a 128-character tag is fine, 129 is not */
    memset(text, 0, sizeof text);
    memcpy(text, "busybox:", 8);
    memset(text + 8, 't', 128);
    assert_int_equal(oc_ref_parse(&r, text, NULL, &err), 0);
    assert_int_equal(strlen(r.tag), 128);
    oc_ref_free(&r);
    text[8 + 128] = 't';
    assert_int_equal(oc_ref_parse(&r, text, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_non_null(strstr(err.msg, "longer than 128"));
    assert_null(r.registry);

    /* a 255-character name is fine, 256 is not */
    memset(text, 0, sizeof text);
    memset(text, 'a', 255);
    text[100] = '/';
    assert_int_equal(oc_ref_parse(&r, text, NULL, &err), 0);
    oc_ref_free(&r);
    text[255] = 'a';
    assert_int_equal(oc_ref_parse(&r, text, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_non_null(strstr(err.msg, "255"));
}

typedef struct bad_case {
    const char *text;
    const char *why; /* a piece of the message */
} bad_case;

static const bad_case bad_refs[] = {
    {"", "empty"},
    {"Busybox", "lowercase"},
    {"library/BusyBox", "lowercase"},
    {"quay.io/Org/img", "lowercase"},
    {"a//b", "empty path component"},
    {"-a", "start"},
    {"a-", "separator"},
    {"a/", "empty path component"},
    {"/a", "empty path component"},
    {"quay.io/", "empty path component"},
    {"a b", "not allowed"},
    {" busybox", "not allowed"},
    {"busybox ", "not allowed"},
    {"..", "start"},
    {"a/../b", "start"},
    {"a..b", "separator"},
    {"a___b", "separator"},
    {"a._b", "separator"},
    {"a_.b", "separator"},
    {"busybox:", "empty tag"},
    {"busybox@", "empty digest"},
    {"busybox:@" DIG, "empty tag"},
    {"busybox@sha256:abc", "sha256"},
    {"busybox@sha512:" HEX HEX, "algorithm"},
    {"busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "sha256"},
    {"busybox@" DIG "@" DIG, "sha256"},
    {"busybox@" DIG "x", "sha256"},
    {"busybox:tag with space", "tag"},
    {"busybox:-tag", "tag"},
    {"busybox:.tag", "tag"},
    {"busybox:t/x", "port"}, /* "busybox:t" looks like host:port */
    {"a/b:c:d", "tag"},
    {"quay.io:99999/x", "port"},
    {"quay.io:0/x", "port"},
    {"quay.io:/x", "port"},
    {"quay.io:12ab/x", "port"},
    {"-quay.io/x", "registry host"},
    {"quay-.io/x", "registry host"},
    {"quay..io/x", "registry host"},
    {"[::1/x", "registry host"},
    {"[]:5000/x", "registry host"},
    {"https://quay.io/x", "URL scheme"},
    {"docker://busybox", "URL scheme"},
    {"a:b/c", "port"},
    {"busybox\n", "not allowed"},
    {"\x01", "not allowed"},
    {"busy\xc3\xa9", "not allowed"},
    {"@" DIG, "no repository"},
    {":tag", "no repository"},
};

static void test_parse_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_refs / sizeof bad_refs[0]; i++) {
        const bad_case *c = &bad_refs[i];
        oc_ref r;
        oc_error err = {0};
        if (oc_ref_parse(&r, c->text, NULL, &err) != -1)
            fail_msg("parse \"%s\" should fail", c->text);
        assert_int_equal(err.code, OC_E_FORMAT);
        assert_null(r.registry);
        assert_null(r.repository);
        if (!strstr(err.msg, c->why))
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", c->text, err.msg, c->why);
        /* the message names the reference (printable, quoted) */
        if (!strstr(err.msg, "image reference \""))
            fail_msg("\"%s\": message \"%s\" does not quote the reference", c->text, err.msg);
        oc_ref_free(&r); /* safe after failure */
    }
}

static void test_parse_message_quotes_input(void **state)
{
    (void)state;
    oc_ref r;
    oc_error err = {0};
    assert_int_equal(oc_ref_parse(&r, "a//b", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "\"a//b\""));
    assert_int_equal(oc_ref_parse(&r, "bad\nname", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "\"bad\\x0aname\""));
    assert_null(strchr(err.msg, '\n'));
}

static void test_parse_hostile_long(void **state)
{
    (void)state;
    size_t n = 100000;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memset(text, 'a', n);
    text[n] = '\0';
    oc_ref r;
    oc_error err = {0};
    assert_int_equal(oc_ref_parse(&r, text, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_non_null(strstr(err.msg, "..."));
    assert_true(strlen(err.msg) < 300);
    /* just under the text limit: still refused by the name limit */
    text[4000] = '\0';
    assert_int_equal(oc_ref_parse(&r, text, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    free(text);
}

static void test_parse_usage(void **state)
{
    (void)state;
    oc_ref r;
    oc_error err = {0};
    assert_int_equal(oc_ref_parse(&r, NULL, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_int_equal(oc_ref_parse(NULL, "busybox", NULL, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_int_equal(oc_ref_parse(&r, "busybox", "bad host!", &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_non_null(strstr(err.msg, "default registry"));
    /* NULL error pointer is fine */
    assert_int_equal(oc_ref_parse(&r, "a//b", NULL, NULL), -1);
}

typedef struct parts_case {
    const char *registry, *image, *tag;
    const char *want_registry, *want_repository, *want_tag, *want_digest;
} parts_case;

static const parts_case good_parts[] = {
    {"registry-1.docker.io", "library/busybox", "latest", HUB, "library/busybox", "latest", NULL},
    {"docker.io", "busybox", "latest", HUB, "library/busybox", "latest", NULL},
    {"index.docker.io", "busybox", "1", HUB, "library/busybox", "1", NULL},
    {"registry-1.docker.io", "homeassistant/home-assistant", "2021.3.0.dev20210219", HUB,
     "homeassistant/home-assistant", "2021.3.0.dev20210219", NULL},
    {"quay.io", "ukhomeofficedigital/centos-base", "latest", "quay.io",
     "ukhomeofficedigital/centos-base", "latest", NULL},
    {"127.0.0.1:5000", "fixtures/x", DIG, "127.0.0.1:5000", "fixtures/x", NULL, DIG},
    {"localhost:5000", "x", "v1", "localhost:5000", "x", "v1", NULL},
    {"localhost", "x", "v1", "localhost", "x", "v1", NULL},
    {"quay.io", "busybox", "latest", "quay.io", "busybox", "latest", NULL},
};

static void test_from_parts_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_parts / sizeof good_parts[0]; i++) {
        const parts_case *c = &good_parts[i];
        oc_ref r;
        oc_error err = {0};
        if (oc_ref_from_parts(&r, c->registry, c->image, c->tag, &err) != 0)
            fail_msg("%s %s %s failed: %s", c->registry, c->image, c->tag, err.msg);
        check_ref(&r, c->want_registry, c->want_repository, c->want_tag, c->want_digest);
        oc_ref_free(&r);
    }
}

static const struct {
    const char *registry, *image, *tag, *why;
} bad_parts[] = {
    {"", "x", "t", "empty registry"},
    {"https://quay.io", "x", "t", "URL scheme"},
    {"quay.io/", "x", "t", "registry host"},
    {"quay.io:70000", "x", "t", "port"},
    {"quay io", "x", "t", "registry host"},
    {"quay.io", "Bad", "t", "lowercase"},
    {"quay.io", "", "t", "empty path component"},
    {"quay.io", "x:t", "t", "not allowed"},
    {"quay.io", "x/", "t", "empty path component"},
    {"quay.io", "x", "", "empty tag"},
    {"quay.io", "x", "-t", "tag"},
    {"quay.io", "x", "sha256:zz", "sha256"},
    {"quay.io", "x", "sha512:" HEX HEX, "algorithm"},
    {"quay.io", "x", "t@x", "tag"},
};

static void test_from_parts_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_parts / sizeof bad_parts[0]; i++) {
        oc_ref r;
        oc_error err = {0};
        if (oc_ref_from_parts(&r, bad_parts[i].registry, bad_parts[i].image, bad_parts[i].tag,
                              &err) != -1)
            fail_msg("%s %s %s should fail", bad_parts[i].registry, bad_parts[i].image,
                     bad_parts[i].tag);
        assert_int_equal(err.code, OC_E_FORMAT);
        assert_null(r.registry);
        if (!strstr(err.msg, bad_parts[i].why))
            fail_msg("message \"%s\" lacks \"%s\"", err.msg, bad_parts[i].why);
    }
    oc_ref r;
    oc_error err = {0};
    assert_int_equal(oc_ref_from_parts(&r, NULL, "x", "t", &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_int_equal(oc_ref_from_parts(&r, "quay.io", NULL, "t", &err), -1);
    assert_int_equal(oc_ref_from_parts(&r, "quay.io", "x", NULL, &err), -1);
}

/* text, its familiar name, that name without tag or digest, the full string, the tag or digest */
static const struct {
    const char *text, *familiar, *bare, *string, *tag_or_digest;
} names[] = {
    {"busybox", "busybox:latest", "busybox", HUB "/library/busybox:latest", "latest"},
    {"library/busybox:1", "busybox:1", "busybox", HUB "/library/busybox:1", "1"},
    {"homeassistant/home-assistant", "homeassistant/home-assistant:latest",
     "homeassistant/home-assistant", HUB "/homeassistant/home-assistant:latest", "latest"},
    {"library/a/b:t", "library/a/b:t", "library/a/b", HUB "/library/a/b:t", "t"},
    {"quay.io/org/img:tag", "quay.io/org/img:tag", "quay.io/org/img", "quay.io/org/img:tag", "tag"},
    {"quay.io/library/img:tag", "quay.io/library/img:tag", "quay.io/library/img",
     "quay.io/library/img:tag", "tag"},
    {"127.0.0.1:5000/fixtures/x:v1", "127.0.0.1:5000/fixtures/x:v1", "127.0.0.1:5000/fixtures/x",
     "127.0.0.1:5000/fixtures/x:v1", "v1"},
    {"busybox@" DIG, "busybox@" DIG, "busybox", HUB "/library/busybox@" DIG, DIG},
    {"quay.io/org/img@" DIG, "quay.io/org/img@" DIG, "quay.io/org/img", "quay.io/org/img@" DIG,
     DIG},
    {"img:t@" DIG, "img:t", "img", HUB "/library/img:t@" DIG, "t"},
};

static void test_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        oc_ref r;
        oc_error err = {0};
        assert_int_equal(oc_ref_parse(&r, names[i].text, NULL, &err), 0);
        char *f = oc_ref_familiar(&r);
        char *b = oc_ref_familiar_name(&r);
        char *s = oc_ref_string(&r);
        assert_non_null(f);
        assert_non_null(b);
        assert_non_null(s);
        assert_string_equal(f, names[i].familiar);
        assert_string_equal(b, names[i].bare);
        assert_string_equal(s, names[i].string);
        assert_string_equal(oc_ref_tag_or_digest(&r), names[i].tag_or_digest);
        free(f);
        free(b);
        free(s);
        oc_ref_free(&r);
    }
    oc_ref empty = {0};
    assert_null(oc_ref_familiar(&empty));
    assert_null(oc_ref_familiar_name(&empty));
    assert_null(oc_ref_familiar_name(NULL));
    assert_null(oc_ref_string(&empty));
    assert_null(oc_ref_familiar(NULL));
    assert_null(oc_ref_tag_or_digest(NULL));
    oc_ref_free(NULL);
}

static void test_names_from_parts(void **state)
{
    (void)state;
    oc_ref r;
    oc_error err = {0};
    assert_int_equal(oc_ref_from_parts(&r, "docker.io", "busybox", "latest", &err), 0);
    char *f = oc_ref_familiar(&r);
    assert_string_equal(f, "busybox:latest");
    free(f);
    oc_ref_free(&r);
    assert_int_equal(oc_ref_from_parts(&r, "127.0.0.1:5000", "fixtures/x", DIG, &err), 0);
    f = oc_ref_familiar(&r);
    assert_string_equal(f, "127.0.0.1:5000/fixtures/x@" DIG);
    assert_string_equal(oc_ref_tag_or_digest(&r), DIG);
    free(f);
    oc_ref_free(&r);
}

static void test_canonical(void **state)
{
    (void)state;
    assert_string_equal(oc_registry_canonical("docker.io"), HUB);
    assert_string_equal(oc_registry_canonical("index.docker.io"), HUB);
    assert_string_equal(oc_registry_canonical("Docker.IO"), HUB);
    assert_string_equal(oc_registry_canonical(HUB), HUB);
    assert_string_equal(oc_registry_canonical("quay.io"), "quay.io");
    assert_string_equal(oc_registry_canonical("docker.io:5000"), "docker.io:5000");
    assert_null(oc_registry_canonical(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_message_quotes_input),
        cmocka_unit_test(test_parse_hostile_long),
        cmocka_unit_test(test_parse_usage),
        cmocka_unit_test(test_from_parts_good),
        cmocka_unit_test(test_from_parts_bad),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_names_from_parts),
        cmocka_unit_test(test_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
