/* test_oci_index.c - STORE/oci/index.json as a document: our one-line-per-
 * descriptor form round-trips, sorted by ref name; another tool's form
 * (one line, unnamed descriptors) is read and kept; set, replace, remove;
 * malformed files and descriptors are refused naming them; descriptors
 * carry the media type, digest, size, platform and the three annotations,
 * with docker's fully qualified names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/store/oci_index.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static char *desc(const char *image, const char *tag, const char *digest, const char *platform)
{
    oc_oci_desc d = {.media_type = "application/vnd.oci.image.manifest.v1+json",
                     .digest = digest,
                     .size = 42,
                     .image = image,
                     .tag = tag,
                     .registry = "127.0.0.1:5000",
                     .repository = "fixtures/x",
                     .source_tag = "v1",
                     .platform = platform};
    oc_error err;
    char *t = oc_oci_descriptor_text(&d, &err);
    assert_non_null(t);
    return t;
}

static int collect(void *opaque, const char *ref_name, const char *digest, const char *text)
{
    char *out = opaque;
    (void)text;
    strcat(out, ref_name ? ref_name : "(unnamed)");
    strcat(out, "=");
    strcat(out, digest + 7 + 60); /* the last 4 hex digits */
    strcat(out, ";");
    return 0;
}

static void test_round_trip(void **state)
{
    (void)state;
    oc_error err;
    oc_oci_index *x = oc_oci_index_new();
    assert_non_null(x);
    char *a = desc("zeta", "v1", D1, NULL), *b = desc("alpha", "v2", D2, NULL);
    char *c = desc("alpha", "v2+linux-arm64-v8", D3, "linux/arm64/v8");
    assert_int_equal(oc_oci_index_set(x, "zeta:v1", a, &err), 0);
    assert_int_equal(oc_oci_index_set(x, "alpha:v2", b, &err), 0);
    assert_int_equal(oc_oci_index_set(x, "alpha:v2+linux-arm64-v8", c, &err), 0);
    assert_int_equal(oc_oci_index_count(x), 3);
    assert_string_equal(oc_oci_index_digest(x, "zeta:v1"), D1);
    assert_null(oc_oci_index_digest(x, "zeta:v2"));
    size_t len = 0;
    char *text = oc_oci_index_dump(x, &len, &err);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    /* a valid image index, one descriptor a line, sorted by ref name */
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "schemaVersion")), 2);
    assert_string_equal(json_string_value(json_object_get(doc, "mediaType")),
                        "application/vnd.oci.image.index.v1+json");
    assert_int_equal(json_array_size(json_object_get(doc, "manifests")), 3);
    json_decref(doc);
    assert_non_null(strstr(text, "\n        {\"annotations\""));
    char *p1 = strstr(text, "alpha:v2\""), *p2 = strstr(text, "alpha:v2+linux"),
         *p3 = strstr(text, "zeta:v1");
    assert_true(p1 && p2 && p3 && p1 < p2 && p2 < p3);
    /* parsed back: the same */
    oc_oci_index *y = oc_oci_index_parse(text, len, "index.json", &err);
    assert_non_null(y);
    char order[400] = "";
    assert_int_equal(oc_oci_index_foreach(y, collect, order), 0);
    assert_string_equal(order, "alpha:v2=2222;alpha:v2+linux-arm64-v8=3333;zeta:v1=1111;");
    size_t len2 = 0;
    char *again = oc_oci_index_dump(y, &len2, &err);
    assert_string_equal(again, text);
    /* replace and remove; a text naming another ref is refused */
    assert_int_equal(oc_oci_index_set(y, "zeta:v1", b, &err), -1);
    char *z2 = desc("zeta", "v1", D2, NULL);
    assert_int_equal(oc_oci_index_set(y, "zeta:v1", z2, &err), 0);
    free(z2);
    assert_string_equal(oc_oci_index_digest(y, "zeta:v1"), D2);
    assert_int_equal(oc_oci_index_remove(y, "alpha:v2"), 1);
    assert_int_equal(oc_oci_index_remove(y, "alpha:v2"), 0);
    assert_int_equal(oc_oci_index_count(y), 2);
    order[0] = '\0';
    oc_oci_index_foreach(y, collect, order);
    assert_string_equal(order, "alpha:v2+linux-arm64-v8=3333;zeta:v1=2222;");
    /* empty */
    oc_oci_index *e = oc_oci_index_new();
    char *none = oc_oci_index_dump(e, &len, &err);
    oc_oci_index *e2 = oc_oci_index_parse(none, len, "index.json", &err);
    assert_non_null(e2);
    assert_int_equal(oc_oci_index_count(e2), 0);
    free(none);
    oc_oci_index_free(e);
    oc_oci_index_free(e2);
    free(again);
    free(text);
    free(a);
    free(b);
    free(c);
    oc_oci_index_free(x);
    oc_oci_index_free(y);
}

/* What skopeo writes: one line, no mediaType, an unnamed descriptor. */
static void test_foreign(void **state)
{
    (void)state;
    oc_error err;
    const char *text =
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest."
        "v1+json\",\"digest\":\"" D1 "\",\"size\":5},{\"mediaType\":\"application/vnd.oci."
        "image.index.v1+json\",\"digest\":\"" D2 "\",\"size\":7,\"annotations\":{\"org."
        "opencontainers.image.ref.name\":\"x:1\"}}]}";
    oc_oci_index *x = oc_oci_index_parse(text, strlen(text), "index.json", &err);
    assert_non_null(x);
    assert_int_equal(oc_oci_index_count(x), 2);
    assert_string_equal(oc_oci_index_digest(x, "x:1"), D2);
    char order[200] = "";
    oc_oci_index_foreach(x, collect, order);
    assert_string_equal(order, "x:1=2222;(unnamed)=1111;");
    /* written in our form, still both */
    size_t len = 0;
    char *ours = oc_oci_index_dump(x, &len, &err);
    oc_oci_index *y = oc_oci_index_parse(ours, len, "index.json", &err);
    assert_non_null(y);
    assert_int_equal(oc_oci_index_count(y), 2);
    free(ours);
    oc_oci_index_free(x);
    oc_oci_index_free(y);
}

static void test_malformed(void **state)
{
    (void)state;
    oc_error err;
    const char *bad[] = {
        "not json",
        "{\"schemaVersion\":1,\"manifests\":[]}",
        "{\"schemaVersion\":2}",
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"size\":1}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:12\","
        "\"size\":1}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\","
        "\"size\":-1}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oc_error_clear(&err);
        assert_null(oc_oci_index_parse(bad[i], strlen(bad[i]), "STORE/oci/index.json", &err));
        assert_int_equal(err.code, OC_E_FORMAT);
        assert_non_null(strstr(err.msg, "STORE/oci/index.json"));
    }
    /* a bad line in our own form is refused too, naming the descriptor */
    char *text = NULL;
    assert_true(asprintf(&text,
                         "{\n    \"schemaVersion\": 2,\n    \"mediaType\": "
                         "\"application/vnd.oci.image.index.v1+json\",\n    \"manifests\": [\n"
                         "        {\"mediaType\":\"x\",\"digest\":\"%s\",\"size\":1},\n"
                         "        {\"mediaType\":\"x\",\"size\":1}\n    ]\n}\n",
                         D1) > 0);
    assert_null(oc_oci_index_parse(text, strlen(text), "i.json", &err));
    assert_non_null(strstr(err.msg, "descriptor 2"));
    free(text);
}

static void test_descriptor(void **state)
{
    (void)state;
    char *t = desc("127.0.0.1:5000/fixtures/x", "v1+linux-arm-v7", D1, "linux/arm/v7");
    json_error_t jerr;
    json_t *d = json_loads(t, 0, &jerr);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "digest")), D1);
    assert_int_equal(json_integer_value(json_object_get(d, "size")), 42);
    json_t *ann = json_object_get(d, "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, OC_OCI_REF_NAME)),
                        "127.0.0.1:5000/fixtures/x:v1+linux-arm-v7");
    assert_string_equal(json_string_value(json_object_get(ann, OC_OCI_CONTAINERD_NAME)),
                        "127.0.0.1:5000/fixtures/x:v1+linux-arm-v7");
    assert_string_equal(json_string_value(json_object_get(ann, OC_OCI_SOURCE)),
                        "127.0.0.1:5000/fixtures/x:v1@" D1);
    json_t *plat = json_object_get(d, "platform");
    assert_string_equal(json_string_value(json_object_get(plat, "os")), "linux");
    assert_string_equal(json_string_value(json_object_get(plat, "architecture")), "arm");
    assert_string_equal(json_string_value(json_object_get(plat, "variant")), "v7");
    json_decref(d);
    free(t);
    char *mt = NULL, *dg = NULL;
    uint64_t size = 0;
    oc_error err;
    /* a fetch's store name has no registry: the source gives it */
    t = desc("x", "v1", D2, NULL);
    assert_non_null(strstr(t, "\"io.containerd.image.name\":\"127.0.0.1:5000/fixtures/x:v1\""));
    assert_int_equal(oc_oci_descriptor_parse(t, &mt, &dg, &size, &err), 0);
    assert_string_equal(dg, D2);
    assert_int_equal(size, 42);
    assert_null(strstr(t, "platform"));
    free(mt);
    free(dg);
    free(t);

    struct {
        const char *image, *tag, *want;
    } q[] = {
        {"busybox", "latest", "docker.io/library/busybox:latest"},
        {"org/img", "1.0", "docker.io/org/img:1.0"},
        {"quay.io/org/img", "v2", "quay.io/org/img:v2"},
        {"127.0.0.1:5000/fixtures/x", "v1", "127.0.0.1:5000/fixtures/x:v1"},
        {"localhost/x", "v1", "localhost/x:v1"},
        {"busybox", D1, "docker.io/library/busybox@" D1},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        char *got = oc_oci_qualified_name(q[i].image, q[i].tag);
        assert_string_equal(got, q[i].want);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_foreign),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_descriptor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
