/* test_catalog.c - catalog.json as a document (parse, set, merge, remove,
 * sorted walk, exact serialisation as 0.2.0 writes it) and the store's
 * naming rules (manifest file names, safe file names, IMAGE:TAG). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/store/catalog.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static oc_catalog *parse(const char *text)
{
    oc_error err;
    oc_error_clear(&err);
    oc_catalog *c = oc_catalog_parse(text, strlen(text), "catalog.json", &err);
    if (!c)
        fail_msg("parse failed: %s", err.msg);
    return c;
}

static void test_manifest_names(void **state)
{
    (void)state;
    static const struct {
        const char *image, *tag, *want;
    } cases[] = {
        {"homeassistant/home-assistant", "latest",
         "manifest-homeassistant_home-assistant-latest.json"},
        {"busybox", "1.36", "manifest-busybox-1.36.json"},
        {"library/centos", "7", "manifest-library_centos-7.json"},
        {"a/b/c", "x/y", "manifest-a_b_c-x_y.json"},
        {"quay.io:443/org/img", "v1", "manifest-quay.io:443_org_img-v1.json"},
        {"img", "sha256:" HEX, "manifest-img-sha256:" HEX ".json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *name = oc_catalog_manifest_name(cases[i].image, cases[i].tag);
        assert_non_null(name);
        assert_string_equal(name, cases[i].want);
        assert_true(oc_catalog_file_name_ok(name));
        free(name);
    }
}

static void test_file_name_ok(void **state)
{
    (void)state;
    assert_true(oc_catalog_file_name_ok("manifest.json"));
    assert_true(oc_catalog_file_name_ok("manifest-a_b-v1.json"));
    assert_false(oc_catalog_file_name_ok(NULL));
    assert_false(oc_catalog_file_name_ok(""));
    assert_false(oc_catalog_file_name_ok("."));
    assert_false(oc_catalog_file_name_ok(".."));
    assert_false(oc_catalog_file_name_ok("../etc/passwd"));
    assert_false(oc_catalog_file_name_ok("/etc/passwd"));
    assert_false(oc_catalog_file_name_ok("a/b.json"));
    assert_false(oc_catalog_file_name_ok("a\nb.json"));
}

/* What occystrap 0.2.0 writes: json.dumps(indent=4, sort_keys=True), no
 * trailing newline. */
static const char *legacy_catalog =
    "{\n"
    "    \"homeassistant/home-assistant\": {\n"
    "        \"latest\": \"manifest-homeassistant_home-assistant-latest.json\",\n"
    "        \"stable\": \"manifest-homeassistant_home-assistant-stable.json\"\n"
    "    }\n"
    "}";

static void test_parse_legacy_and_dump(void **state)
{
    (void)state;
    oc_catalog *c = parse(legacy_catalog);
    assert_int_equal(oc_catalog_count(c), 2);
    assert_string_equal(oc_catalog_get(c, "homeassistant/home-assistant", "stable"),
                        "manifest-homeassistant_home-assistant-stable.json");
    assert_null(oc_catalog_get(c, "homeassistant/home-assistant", "dev"));
    assert_null(oc_catalog_get(c, "busybox", "latest"));
    assert_true(oc_catalog_has_image(c, "homeassistant/home-assistant"));
    assert_false(oc_catalog_has_image(c, "busybox"));
    /* our serialisation is 0.2.0's plus one newline */
    size_t len = 0;
    char *text = oc_catalog_dump(c, &len, NULL);
    assert_non_null(text);
    assert_int_equal(len, strlen(legacy_catalog) + 1);
    assert_memory_equal(text, legacy_catalog, strlen(legacy_catalog));
    assert_int_equal(text[len - 1], '\n');
    free(text);
    oc_catalog_free(c);
}

static void test_set_sorts_and_replaces(void **state)
{
    (void)state;
    oc_catalog *c = oc_catalog_new(NULL);
    assert_non_null(c);
    assert_int_equal(oc_catalog_set(c, "zeta", "v1", "mz1", NULL), 0);
    assert_int_equal(oc_catalog_set(c, "alpha", "v2", "ma2", NULL), 0);
    assert_int_equal(oc_catalog_set(c, "alpha", "v1", "old", NULL), 0);
    assert_int_equal(oc_catalog_set(c, "alpha", "v1", "ma1", NULL), 0);
    assert_int_equal(oc_catalog_count(c), 3);
    char *text = oc_catalog_dump(c, NULL, NULL);
    assert_string_equal(text, "{\n"
                              "    \"alpha\": {\n"
                              "        \"v1\": \"ma1\",\n"
                              "        \"v2\": \"ma2\"\n"
                              "    },\n"
                              "    \"zeta\": {\n"
                              "        \"v1\": \"mz1\"\n"
                              "    }\n"
                              "}\n");
    free(text);
    char *tags = oc_catalog_tags_of(c, "alpha");
    char *images = oc_catalog_images(c);
    char *none = oc_catalog_tags_of(c, "nope");
    assert_string_equal(tags, "v1, v2");
    assert_string_equal(images, "alpha, zeta");
    assert_string_equal(none, "");
    free(tags);
    free(images);
    free(none);
    oc_catalog_free(c);
}

static void test_non_ascii_is_escaped(void **state)
{
    (void)state;
    oc_catalog *c = oc_catalog_new(NULL);
    assert_int_equal(oc_catalog_set(c, "img", "t\xc3\xa9", "m", NULL), 0);
    char *text = oc_catalog_dump(c, NULL, NULL);
    assert_non_null(strstr(text, "\"t\\u00E9\"")); /* jansson writes upper-case hex */
    free(text);
    oc_catalog_free(c);
}

typedef struct walk {
    char seen[8][64];
    int n;
    int stop_at;
} walk;

static int visit(void *opaque, const char *image, const char *tag, const char *file)
{
    walk *w = opaque;
    snprintf(w->seen[w->n], sizeof w->seen[0], "%s:%s=%s", image, tag, file);
    w->n++;
    return w->n == w->stop_at ? 7 : 0;
}

static void test_foreach_sorted_and_stops(void **state)
{
    (void)state;
    oc_catalog *c =
        parse("{\"b\": {\"2\": \"f4\", \"1\": \"f3\"}, \"a\": {\"z\": \"f2\", \"y\": \"f1\"}}");
    walk w = {.stop_at = 0};
    assert_int_equal(oc_catalog_foreach(c, visit, &w), 0);
    assert_int_equal(w.n, 4);
    assert_string_equal(w.seen[0], "a:y=f1");
    assert_string_equal(w.seen[1], "a:z=f2");
    assert_string_equal(w.seen[2], "b:1=f3");
    assert_string_equal(w.seen[3], "b:2=f4");
    walk w2 = {.stop_at = 2};
    assert_int_equal(oc_catalog_foreach(c, visit, &w2), 7);
    assert_int_equal(w2.n, 2);
    oc_catalog_free(c);
}

/* Two writers each read the catalog, add their image and merge with what
 * is on disk: both entries survive, and the later writer wins a tag both
 * wrote. */
static void test_merge(void **state)
{
    (void)state;
    oc_catalog *disk = parse("{\"a\": {\"v1\": \"ma1\"}, \"shared\": {\"t\": \"old\"}}");
    oc_catalog *mine = parse("{\"b\": {\"v1\": \"mb1\"}, \"a\": {\"v2\": \"ma2\"}, "
                             "\"shared\": {\"t\": \"new\"}}");
    assert_int_equal(oc_catalog_merge(disk, mine, NULL), 0);
    assert_int_equal(oc_catalog_count(disk), 4);
    assert_string_equal(oc_catalog_get(disk, "a", "v1"), "ma1");
    assert_string_equal(oc_catalog_get(disk, "a", "v2"), "ma2");
    assert_string_equal(oc_catalog_get(disk, "b", "v1"), "mb1");
    assert_string_equal(oc_catalog_get(disk, "shared", "t"), "new");
    /* merging the same twice changes nothing */
    assert_int_equal(oc_catalog_merge(disk, mine, NULL), 0);
    assert_int_equal(oc_catalog_count(disk), 4);
    oc_catalog_free(disk);
    oc_catalog_free(mine);
}

static void test_remove(void **state)
{
    (void)state;
    oc_catalog *c = parse("{\"a\": {\"v1\": \"m1\", \"v2\": \"m2\"}, \"b\": {\"v1\": \"m3\"}}");
    assert_int_equal(oc_catalog_remove(c, "a", "v1"), 1);
    assert_int_equal(oc_catalog_remove(c, "a", "v1"), 0);
    assert_true(oc_catalog_has_image(c, "a"));
    assert_int_equal(oc_catalog_remove(c, "b", "v1"), 1);
    assert_false(oc_catalog_has_image(c, "b")); /* no tags left: image gone */
    assert_int_equal(oc_catalog_remove(c, "nope", "x"), 0);
    assert_int_equal(oc_catalog_count(c), 1);
    oc_catalog_free(c);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"", "not valid JSON"},
        {"{\"a\": {\"v1\": \"m\"}", "not valid JSON"},
        {"[]", "not a JSON object"},
        {"\"x\"", "not valid JSON"},
        {"{\"a\": \"manifest.json\"}", "image \"a\""},
        {"{\"a\": [\"v1\"]}", "image \"a\""},
        {"{\"a\": {\"v1\": 3}}", "tag \"v1\""},
        {"{\"a\": {\"v1\": null}}", "tag \"v1\""},
        {"{\"a\": {\"v1\": \"m\"}, \"a\": {\"v2\": \"n\"}}", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        oc_error err;
        oc_error_clear(&err);
        oc_catalog *c =
            oc_catalog_parse(cases[i].text, strlen(cases[i].text), "/s/catalog.json", &err);
        assert_null(c);
        assert_int_equal(err.code, OC_E_FORMAT);
        assert_non_null(strstr(err.msg, "/s/catalog.json"));
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("case %zu: \"%s\" does not mention %s", i, err.msg, cases[i].needle);
    }
}

static void check_split(const char *text, const char *image, const char *tag)
{
    char *i = NULL, *t = NULL;
    oc_error err;
    oc_error_clear(&err);
    if (oc_catalog_split_ref(text, &i, &t, &err) != 0)
        fail_msg("%s: %s", text, err.msg);
    assert_string_equal(i, image);
    assert_string_equal(t, tag);
    free(i);
    free(t);
}

static void test_split_ref(void **state)
{
    (void)state;
    check_split("busybox:1.36", "busybox", "1.36");
    check_split("busybox", "busybox", "latest");
    check_split("fixtures/shared-a:v1", "fixtures/shared-a", "v1");
    check_split("127.0.0.1:5000/fixtures/x:v1", "127.0.0.1:5000/fixtures/x", "v1");
    check_split("127.0.0.1:5000/fixtures/x", "127.0.0.1:5000/fixtures/x", "latest");
    check_split("img@sha256:" HEX, "img", "sha256:" HEX);
    check_split("a/img:sha256:" HEX, "a/img", "sha256:" HEX);
    static const char *bad[] = {":v1", "img:", "img@", "@sha256:" HEX, ""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *i = NULL, *t = NULL;
        oc_error err;
        oc_error_clear(&err);
        assert_int_equal(oc_catalog_split_ref(bad[k], &i, &t, &err), -1);
        assert_int_equal(err.code, OC_E_USAGE);
        assert_null(i);
        assert_null(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_names),
        cmocka_unit_test(test_file_name_ok),
        cmocka_unit_test(test_parse_legacy_and_dump),
        cmocka_unit_test(test_set_sorts_and_replaces),
        cmocka_unit_test(test_non_ascii_is_escaped),
        cmocka_unit_test(test_foreach_sorted_and_stops),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_split_ref),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
