/* test_manifest.c - media-type sniffing, manifest/index/config parsing with
 * every field checked, platform parsing and matching, and index platform
 * selection, with malformed and hostile documents. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image/manifest.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"
#define D1 "sha256:" H1
#define D2 "sha256:" H2
#define D3 "sha256:" H3

#define DOCKER_CFG "application/vnd.docker.container.image.v1+json"
#define OCI_CFG "application/vnd.oci.image.config.v1+json"
#define DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define OCI_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"

#define DESC(mt, d, sz) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":" #sz "}"

static const char docker_image[] = "{\"schemaVersion\":2,\"mediaType\":\"" OC_MT_DOCKER_MANIFEST
                                   "\",\"config\":" DESC(DOCKER_CFG, D1, 1469) ",\"layers\":[" DESC(
                                       DOCKER_LAYER, D2, 2479) "," DESC(DOCKER_LAYER, D3, 0) "]}";

static const char oci_image_bare[] = /* no mediaType: OCI allows that */
    "{\"schemaVersion\":2,\"config\":" DESC(OCI_CFG, D1, 10) ",\"layers\":[],"
                                                             "\"annotations\":{\"a\":\"b\"}}";

static const char docker_image_bare[] =
    "{\"schemaVersion\":2,\"config\":" DESC(DOCKER_CFG, D1, 10) ",\"layers\":[]}";

static const char oci_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" OC_MT_OCI_INDEX "\",\"manifests\":["
    "{\"mediaType\":\"" OC_MT_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":100,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"mediaType\":\"" OC_MT_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":101,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"" OC_MT_OCI_MANIFEST "\",\"digest\":\"" D3 "\",\"size\":102,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
    "{\"mediaType\":\"" OC_MT_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":103,"
    "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"},"
    "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}},"
    "{\"mediaType\":\"" OC_MT_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":104}"
    "]}";

static const char docker_list_bare[] =
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OC_MT_DOCKER_MANIFEST
    "\",\"digest\":\"" D1 "\",\"size\":5,\"platform\":{\"os\":\"linux\",\"architecture\":"
    "\"amd64\",\"variant\":\"\"}}]}";

static const char schema1[] = "{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"t\",\"fsLayers\":[]}";

static oc_manifest_kind sniff(const char *ct, const char *body)
{
    return oc_manifest_sniff(ct, body, body ? strlen(body) : 0);
}

static void test_sniff(void **state)
{
    (void)state;
    const struct {
        const char *ct, *body;
        oc_manifest_kind want;
    } cases[] = {
        {OC_MT_DOCKER_MANIFEST, NULL, OC_MANIFEST_IMAGE},
        {OC_MT_OCI_MANIFEST, "garbage", OC_MANIFEST_IMAGE},
        {OC_MT_DOCKER_LIST, NULL, OC_MANIFEST_INDEX},
        {"application/vnd.oci.image.index.v1+json; charset=utf-8", "", OC_MANIFEST_INDEX},
        {"APPLICATION/VND.DOCKER.DISTRIBUTION.MANIFEST.LIST.V2+JSON", NULL, OC_MANIFEST_INDEX},
        {" application/vnd.oci.image.manifest.v1+json ;x=y", NULL, OC_MANIFEST_IMAGE},
        {OC_MT_DOCKER_V1, NULL, OC_MANIFEST_SCHEMA1},
        {OC_MT_DOCKER_V1_SIGNED, NULL, OC_MANIFEST_SCHEMA1},
        {NULL, oci_index, OC_MANIFEST_INDEX},
        {"", docker_image, OC_MANIFEST_IMAGE},
        {"application/json", schema1, OC_MANIFEST_SCHEMA1},
        {"Application/JSON; charset=utf-8", docker_image, OC_MANIFEST_IMAGE},
        {"text/plain; charset=utf-8", docker_list_bare, OC_MANIFEST_INDEX},
        {"application/octet-stream", oci_image_bare, OC_MANIFEST_IMAGE},
        {NULL, "{\"manifests\":[]}", OC_MANIFEST_INDEX},
        {NULL, "{\"config\":{},\"layers\":[]}", OC_MANIFEST_IMAGE},
        {NULL, "{\"config\":{}}", OC_MANIFEST_UNKNOWN},
        {NULL, "not json", OC_MANIFEST_UNKNOWN},
        {NULL, "[]", OC_MANIFEST_UNKNOWN},
        {NULL, "{\"foo\":1}", OC_MANIFEST_UNKNOWN},
        {NULL, "{\"mediaType\":\"application/vnd.foo+json\",\"manifests\":[]}",
         OC_MANIFEST_UNKNOWN},
        {NULL, "{\"mediaType\":5,\"manifests\":[]}", OC_MANIFEST_UNKNOWN},
        {NULL, "{\"manifests\":[],\"manifests\":[]}", OC_MANIFEST_UNKNOWN},
        {"text/html", docker_image, OC_MANIFEST_UNKNOWN},
        {"application/vnd.oci.image.config.v1+json", docker_image, OC_MANIFEST_UNKNOWN},
        {NULL, NULL, OC_MANIFEST_UNKNOWN},
        {NULL, "", OC_MANIFEST_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sniff(cases[i].ct, cases[i].body) != cases[i].want)
            fail_msg("case %zu (%s): got %d, want %d", i, cases[i].ct ? cases[i].ct : "(null)",
                     sniff(cases[i].ct, cases[i].body), cases[i].want);
    /* the length is honoured: a valid document followed by junk beyond len */
    char buf[sizeof docker_image + 10];
    memcpy(buf, docker_image, sizeof docker_image - 1);
    memcpy(buf + sizeof docker_image - 1, "JUNKJUNK", 9);
    assert_int_equal(oc_manifest_sniff(NULL, buf, sizeof docker_image - 1), OC_MANIFEST_IMAGE);
    assert_int_equal(oc_manifest_sniff(NULL, buf, strlen(buf)), OC_MANIFEST_UNKNOWN);
}

static void test_parse_docker_image(void **state)
{
    (void)state;
    oc_manifest m;
    oc_error err = {0};
    assert_int_equal(oc_manifest_parse(&m, OC_MT_DOCKER_MANIFEST "; charset=utf-8", docker_image,
                                       strlen(docker_image), &err),
                     0);
    assert_int_equal(m.kind, OC_MANIFEST_IMAGE);
    assert_string_equal(m.media_type, OC_MT_DOCKER_MANIFEST);
    assert_string_equal(m.config.media_type, DOCKER_CFG);
    assert_string_equal(m.config.digest, D1);
    assert_int_equal(m.config.size, 1469);
    assert_int_equal(m.n_layers, 2);
    assert_string_equal(m.layers[0].media_type, DOCKER_LAYER);
    assert_string_equal(m.layers[0].digest, D2);
    assert_int_equal(m.layers[0].size, 2479);
    assert_string_equal(m.layers[1].digest, D3);
    assert_int_equal(m.layers[1].size, 0);
    assert_int_equal(m.n_manifests, 0);
    assert_null(m.manifests);
    oc_manifest_free(&m);
    assert_null(m.media_type);
    oc_manifest_free(&m); /* twice is harmless */
}

static void test_parse_resolved_types(void **state)
{
    (void)state;
    const struct {
        const char *ct, *body, *media_type;
        oc_manifest_kind kind;
    } cases[] = {
        {NULL, oci_image_bare, OC_MT_OCI_MANIFEST, OC_MANIFEST_IMAGE},
        {"application/json", docker_image_bare, OC_MT_DOCKER_MANIFEST, OC_MANIFEST_IMAGE},
        {OC_MT_OCI_MANIFEST, oci_image_bare, OC_MT_OCI_MANIFEST, OC_MANIFEST_IMAGE},
        {"text/plain", docker_image, OC_MT_DOCKER_MANIFEST, OC_MANIFEST_IMAGE},
        {NULL, docker_list_bare, OC_MT_OCI_INDEX, OC_MANIFEST_INDEX},
        {OC_MT_DOCKER_LIST, docker_list_bare, OC_MT_DOCKER_LIST, OC_MANIFEST_INDEX},
        {"APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON", oci_index, OC_MT_OCI_INDEX, OC_MANIFEST_INDEX},
        /* header and body agree on the kind, not necessarily on the vendor */
        {OC_MT_DOCKER_LIST, oci_index, OC_MT_DOCKER_LIST, OC_MANIFEST_INDEX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        oc_manifest m;
        oc_error err = {0};
        if (oc_manifest_parse(&m, cases[i].ct, cases[i].body, strlen(cases[i].body), &err) != 0)
            fail_msg("case %zu: %s", i, err.msg);
        assert_int_equal(m.kind, cases[i].kind);
        assert_string_equal(m.media_type, cases[i].media_type);
        oc_manifest_free(&m);
    }
}

static void test_parse_index(void **state)
{
    (void)state;
    oc_manifest m;
    oc_error err = {0};
    assert_int_equal(oc_manifest_parse(&m, NULL, oci_index, strlen(oci_index), &err), 0);
    assert_int_equal(m.kind, OC_MANIFEST_INDEX);
    assert_int_equal(m.n_manifests, 5);
    assert_string_equal(m.manifests[0].digest, D1);
    assert_int_equal(m.manifests[0].size, 100);
    assert_string_equal(m.platforms[0].os, "linux");
    assert_string_equal(m.platforms[0].arch, "amd64");
    assert_null(m.platforms[0].variant);
    assert_string_equal(m.platforms[1].variant, "v8");
    assert_string_equal(m.platforms[3].os, "unknown");
    assert_null(m.platforms[4].os);
    assert_null(m.platforms[4].arch);
    assert_int_equal(m.n_layers, 0);
    oc_manifest_free(&m);

    /* "variant": "" is no variant; an empty index is well-formed */
    assert_int_equal(oc_manifest_parse(&m, NULL, docker_list_bare, strlen(docker_list_bare), &err),
                     0);
    assert_null(m.platforms[0].variant);
    oc_manifest_free(&m);
    const char *empty =
        "{\"schemaVersion\":2,\"mediaType\":\"" OC_MT_OCI_INDEX "\",\"manifests\":[]}";
    assert_int_equal(oc_manifest_parse(&m, NULL, empty, strlen(empty), &err), 0);
    assert_int_equal(m.n_manifests, 0);
    oc_manifest_free(&m);
}

typedef struct bad_doc {
    const char *ct;
    const char *body;
    oc_errcode code;
    const char *why;
} bad_doc;

#define IMG(cfg, layers) "{\"schemaVersion\":2,\"config\":" cfg ",\"layers\":" layers "}"
#define CFG_OK DESC(OCI_CFG, D1, 1)

static const bad_doc bad_docs[] = {
    {NULL, "not json", OC_E_FORMAT, "not valid JSON"},
    {NULL, "{\"config\":", OC_E_FORMAT, "not valid JSON"},
    {NULL, "[1,2]", OC_E_FORMAT, "not a JSON object"},
    {OC_MT_OCI_MANIFEST, "\"str\"", OC_E_FORMAT, "not valid JSON"},
    {NULL, "{\"foo\":1}", OC_E_FORMAT, "not an image manifest or index"},
    {OC_MT_OCI_MANIFEST, "{\"layers\":[]}", OC_E_FORMAT, "\"config\" is missing"},
    {OC_MT_OCI_MANIFEST, "{\"config\":" CFG_OK "}", OC_E_FORMAT, "\"layers\" is missing"},
    {NULL, IMG(CFG_OK, "{}"), OC_E_FORMAT, "\"layers\" is not an array"},
    {NULL, IMG("[]", "[]"), OC_E_FORMAT, "\"config\" is not a descriptor"},
    {NULL, IMG(CFG_OK, "[1]"), OC_E_FORMAT, "\"layers[0]\" is not a descriptor"},
    {NULL, IMG(CFG_OK, "[" CFG_OK ",{\"mediaType\":\"x\",\"size\":1}]"), OC_E_FORMAT,
     "\"layers[1].digest\" is missing"},
    {NULL, IMG(CFG_OK, "[{\"digest\":\"" D1 "\",\"size\":1}]"), OC_E_FORMAT,
     "\"layers[0].mediaType\" is missing"},
    {NULL, IMG(CFG_OK, "[{\"mediaType\":7,\"digest\":\"" D1 "\",\"size\":1}]"), OC_E_FORMAT,
     "\"layers[0].mediaType\" is not a string"},
    {NULL, IMG(CFG_OK, "[{\"mediaType\":\"\",\"digest\":\"" D1 "\",\"size\":1}]"), OC_E_FORMAT,
     "\"layers[0].mediaType\" is empty"},
    {NULL, IMG(CFG_OK, "[{\"mediaType\":\"x\",\"digest\":\"" D1 "\"}]"), OC_E_FORMAT,
     "\"layers[0].size\" is missing"},
    {NULL, IMG(CFG_OK, "[" DESC("x", D1, -1) "]"), OC_E_FORMAT, "\"layers[0].size\" is negative"},
    {NULL, IMG(CFG_OK, "[" DESC("x", D1, "1") "]"), OC_E_FORMAT, "not an integer"},
    {NULL, IMG(CFG_OK, "[" DESC("x", D1, 1.5) "]"), OC_E_FORMAT, "not an integer"},
    {NULL, IMG(CFG_OK, "[" DESC("x", D1, 1e3) "]"), OC_E_FORMAT, "not an integer"},
    {NULL, IMG(CFG_OK, "[" DESC("x", D1, null) "]"), OC_E_FORMAT, "not an integer"},
    {NULL, IMG(CFG_OK, "[" DESC("x", D1, 99999999999999999999999) "]"), OC_E_FORMAT,
     "not valid JSON"},
    {NULL, IMG(CFG_OK, "[" DESC("x", D1, 1e400) "]"), OC_E_FORMAT, "not valid JSON"},
    {NULL, IMG(CFG_OK, "[" DESC("x", "sha512:" H1 H1, 1) "]"), OC_E_FORMAT, "layers[0].digest"},
    {NULL, IMG(CFG_OK, "[" DESC("x", "sha256:" H1 "0", 1) "]"), OC_E_FORMAT, "layers[0].digest"},
    {NULL, IMG(CFG_OK, "[" DESC("x", "sha256:abc", 1) "]"), OC_E_FORMAT, "layers[0].digest"},
    {NULL, IMG(CFG_OK, "[" DESC("x", "SHA256:" H1, 1) "]"), OC_E_FORMAT, "layers[0].digest"},
    {NULL,
     IMG(CFG_OK,
         "[" DESC("x", "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                  1) "]"),
     OC_E_FORMAT, "layers[0].digest"},
    {NULL, IMG(CFG_OK, "[" DESC("x", "../../etc/passwd", 1) "]"), OC_E_FORMAT, "layers[0].digest"},
    {NULL, IMG(CFG_OK, "[{\"mediaType\":\"x\",\"digest\":5,\"size\":1}]"), OC_E_FORMAT,
     "\"layers[0].digest\" is not a string"},
    {NULL, IMG(DESC("x", "sha256:" H1 "\\u0000", 1), "[]"), OC_E_FORMAT, "not valid JSON"},
    {NULL, IMG(CFG_OK, "[]") "{}", OC_E_FORMAT, "not valid JSON"},
    {NULL, "{\"schemaVersion\":2,\"config\":" CFG_OK ",\"config\":" CFG_OK ",\"layers\":[]}",
     OC_E_FORMAT, "not valid JSON"},
    {OC_MT_DOCKER_V1_SIGNED, schema1, OC_E_UNSUPPORTED, "deprecated"},
    {OC_MT_DOCKER_V1, "", OC_E_UNSUPPORTED, "deprecated"},
    {NULL, schema1, OC_E_UNSUPPORTED, "deprecated"},
    {"application/json", schema1, OC_E_UNSUPPORTED, "schema 1"},
    {OC_MT_DOCKER_MANIFEST, schema1, OC_E_UNSUPPORTED, "deprecated"},
    {"text/html; charset=utf-8", docker_image, OC_E_UNSUPPORTED, "\"text/html\""},
    {NULL, "{\"mediaType\":\"application/vnd.oci.artifact.manifest.v1+json\"}", OC_E_UNSUPPORTED,
     "artifact"},
    {NULL, "{\"mediaType\":[],\"manifests\":[]}", OC_E_FORMAT, "mediaType"},
    {OC_MT_DOCKER_MANIFEST, oci_index, OC_E_FORMAT, "Content-Type says"},
    {OC_MT_OCI_INDEX, docker_image, OC_E_FORMAT, "Content-Type says"},
    {OC_MT_OCI_INDEX, "{\"mediaType\":\"foo\"}", OC_E_FORMAT, "Content-Type says"},
    {OC_MT_OCI_INDEX, oci_image_bare, OC_E_FORMAT, "\"manifests\" is missing"},
    {NULL, "{\"schemaVersion\":3,\"manifests\":[]}", OC_E_FORMAT, "expected 2"},
    {NULL, "{\"schemaVersion\":\"2\",\"manifests\":[]}", OC_E_FORMAT, "schemaVersion"},
    {NULL, "{\"manifests\":{}}", OC_E_FORMAT, "\"manifests\" is not an array"},
    {NULL, "{\"manifests\":[" DESC("x", D1, 1) ",7]}", OC_E_FORMAT, "manifests[1]"},
    {NULL,
     "{\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1,"
     "\"platform\":[]}]}",
     OC_E_FORMAT, "\"manifests[0].platform\" is not an object"},
    {NULL,
     "{\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1,"
     "\"platform\":{\"architecture\":\"amd64\"}}]}",
     OC_E_FORMAT, "\"manifests[0].platform.os\" is missing"},
    {NULL,
     "{\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1,"
     "\"platform\":{\"os\":\"linux\",\"architecture\":64}}]}",
     OC_E_FORMAT, "\"manifests[0].platform.architecture\" is not a string"},
    {NULL,
     "{\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1,"
     "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":7}}]}",
     OC_E_FORMAT, "\"manifests[0].platform.variant\" is not a string"},
    {NULL, "{\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:1\",\"size\":1}]}",
     OC_E_FORMAT, "manifests[0].digest"},
};

static void test_parse_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_docs / sizeof bad_docs[0]; i++) {
        const bad_doc *c = &bad_docs[i];
        oc_manifest m;
        oc_error err = {0};
        if (oc_manifest_parse(&m, c->ct, c->body, strlen(c->body), &err) != -1)
            fail_msg("case %zu (%s) should fail", i, c->body);
        if (err.code != c->code || !strstr(err.msg, c->why))
            fail_msg("case %zu: got %d \"%s\", want %d with \"%s\"", i, err.code, err.msg, c->code,
                     c->why);
        assert_int_equal(m.kind, OC_MANIFEST_UNKNOWN);
        assert_null(m.media_type);
        assert_null(m.layers);
        assert_null(m.manifests);
        oc_manifest_free(&m);
    }
}

static void test_parse_raw_bytes(void **state)
{
    (void)state;
    oc_manifest m;
    oc_error err = {0};
    /* a NUL byte inside the buffer */
    char buf[sizeof docker_image];
    memcpy(buf, docker_image, sizeof docker_image);
    buf[20] = '\0';
    assert_int_equal(oc_manifest_parse(&m, NULL, buf, sizeof docker_image - 1, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    /* invalid UTF-8 */
    const char *latin = "{\"manifests\":[],\"x\":\"\xe9\"}";
    assert_int_equal(oc_manifest_parse(&m, NULL, latin, strlen(latin), &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    /* empty or missing body */
    assert_int_equal(oc_manifest_parse(&m, NULL, NULL, 0, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_int_equal(oc_manifest_parse(&m, OC_MT_OCI_MANIFEST, "", 0, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    /* a truncated document: len cuts it */
    assert_int_equal(oc_manifest_parse(&m, NULL, docker_image, 40, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_int_equal(oc_manifest_parse(NULL, NULL, docker_image, 40, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    /* deep nesting does not crash */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    assert_int_equal(oc_manifest_parse(&m, NULL, deep, 2 * depth, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    free(deep);
}

static void test_parse_many_layers(void **state)
{
    (void)state;
    size_t n = 2000;
    size_t cap = n * 200 + 400;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t o = (size_t)snprintf(body, cap, "{\"schemaVersion\":2,\"config\":%s,\"layers\":[",
                                DESC(OCI_CFG, D1, 1));
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(body + o, cap - o,
                              "%s{\"mediaType\":\"%s\",\"digest\":\"%s\","
                              "\"size\":%llu}",
                              i ? "," : "", OCI_LAYER, D2, (unsigned long long)i * 1000000000ull);
    snprintf(body + o, cap - o, "]}");
    oc_manifest m;
    oc_error err = {0};
    assert_int_equal(oc_manifest_parse(&m, NULL, body, strlen(body), &err), 0);
    assert_int_equal(m.n_layers, n);
    assert_int_equal(m.layers[n - 1].size, (int64_t)(n - 1) * 1000000000);
    oc_manifest_free(&m);
    /* the last one broken: everything already parsed is released */
    char *last = NULL;
    for (char *p = body; (p = strstr(p, "\"size\"")) != NULL; p++)
        last = p;
    assert_non_null(last);
    memcpy(last, "\"sizf\"", 6); /* the last layer loses its size */
    assert_int_equal(oc_manifest_parse(&m, NULL, body, strlen(body), &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_non_null(strstr(err.msg, "layers[1999].size"));
    free(body);
}

static void test_platform_parse(void **state)
{
    (void)state;
    const struct {
        const char *text, *os, *arch, *variant;
    } good[] = {
        {"linux/amd64", "linux", "amd64", NULL},     {"linux/arm64/v8", "linux", "arm64", "v8"},
        {"linux/arm/v7", "linux", "arm", "v7"},      {"Linux/AMD64", "linux", "amd64", NULL},
        {"linux/x86_64", "linux", "amd64", NULL},    {"linux/aarch64", "linux", "arm64", NULL},
        {"linux/arm64/8", "linux", "arm64", "v8"},   {"linux/armhf", "linux", "arm", "v7"},
        {"linux/armel", "linux", "arm", "v6"},       {"linux/arm/7", "linux", "arm", "v7"},
        {"linux/i386", "linux", "386", NULL},        {"windows/amd64", "windows", "amd64", NULL},
        {"linux/ppc64le", "linux", "ppc64le", NULL}, {"linux/amd64/v3", "linux", "amd64", "v3"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        oc_platform p;
        oc_error err = {0};
        if (oc_platform_parse(&p, good[i].text, &err) != 0)
            fail_msg("%s: %s", good[i].text, err.msg);
        assert_string_equal(p.os, good[i].os);
        assert_string_equal(p.arch, good[i].arch);
        if (good[i].variant)
            assert_string_equal(p.variant, good[i].variant);
        else
            assert_null(p.variant);
        oc_platform_free(&p);
    }
    char long_text[400];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    long_text[5] = '/';
    const char *bad[] = {"",
                         "linux",
                         "linux/",
                         "/amd64",
                         "linux/amd64/v8/x",
                         "linux amd64",
                         "linux//amd64",
                         "linux/amd64/",
                         "linux/am\"d64",
                         "linux/\n",
                         "all",
                         long_text};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oc_platform p;
        oc_error err = {0};
        if (oc_platform_parse(&p, bad[i], &err) != -1)
            fail_msg("\"%s\" should fail", bad[i]);
        assert_int_equal(err.code, OC_E_USAGE);
        assert_non_null(strstr(err.msg, "invalid platform \""));
        assert_null(p.os);
        assert_null(p.arch);
        assert_null(p.variant);
    }
    oc_platform p;
    oc_error err = {0};
    assert_int_equal(oc_platform_parse(&p, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
}

static void test_platform_string(void **state)
{
    (void)state;
    oc_platform p = {"linux", "arm64", "v8"};
    char *s = oc_platform_string(&p);
    assert_string_equal(s, "linux/arm64/v8");
    free(s);
    p.variant = NULL;
    s = oc_platform_string(&p);
    assert_string_equal(s, "linux/arm64");
    free(s);
    oc_platform none = {NULL, NULL, NULL};
    s = oc_platform_string(&none);
    assert_string_equal(s, "unknown/unknown");
    free(s);
}

static int matches(const char *want, const char *have)
{
    oc_platform w;
    oc_platform h;
    assert_int_equal(oc_platform_parse(&w, want, NULL), 0);
    assert_int_equal(oc_platform_parse(&h, have, NULL), 0);
    int r = oc_platform_matches(&w, &h);
    oc_platform_free(&w);
    oc_platform_free(&h);
    return r;
}

static void test_platform_matches(void **state)
{
    (void)state;
    const struct {
        const char *want, *have;
        int match;
    } cases[] = {
        {"linux/amd64", "linux/amd64", 1},       {"linux/amd64", "linux/arm64", 0},
        {"linux/amd64", "windows/amd64", 0},     {"linux/arm64", "linux/arm64/v8", 1},
        {"linux/arm64/v8", "linux/arm64", 1},    {"linux/arm64/v8", "linux/arm64/v8", 1},
        {"linux/arm64", "linux/arm64", 1},       {"linux/arm64", "linux/arm64/v9", 0},
        {"linux/arm64/v8", "linux/arm64/v9", 0}, {"linux/arm64/v9", "linux/arm64/v9", 1},
        {"linux/arm64/v9", "linux/arm64", 0},    {"linux/arm/v7", "linux/arm/v7", 1},
        {"linux/arm/v7", "linux/arm/v6", 0},     {"linux/arm/v7", "linux/arm", 0},
        {"linux/arm", "linux/arm/v6", 1},        {"linux/arm", "linux/arm", 1},
        {"linux/arm", "linux/arm64", 0},         {"linux/amd64", "linux/amd64/v3", 1},
        {"linux/amd64/v3", "linux/amd64", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (matches(cases[i].want, cases[i].have) != cases[i].match)
            fail_msg("want %s have %s: expected %d", cases[i].want, cases[i].have, cases[i].match);
    oc_platform w = {"linux", "amd64", NULL};
    oc_platform h = {NULL, NULL, NULL};
    assert_int_equal(oc_platform_matches(&w, &h), 0);
    assert_int_equal(oc_platform_matches(&h, &w), 0);
    assert_int_equal(oc_platform_matches(NULL, &w), 0);
    assert_int_equal(oc_platform_matches(&w, NULL), 0);
}

/* An index with entries "os/arch[/variant]" ("-" for no platform). */
static void make_index(oc_manifest *m, const char *const *platforms, size_t n)
{
    size_t cap = 256 + n * 300;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t o = (size_t)snprintf(body, cap, "{\"schemaVersion\":2,\"manifests\":[");
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(body + o, cap - o,
                              "%s{\"mediaType\":\"" OC_MT_OCI_MANIFEST "\",\"digest\":\"" D1
                              "\",\"size\":1",
                              i ? "," : "");
        if (strcmp(platforms[i], "-") != 0) {
            char os[64], arch[64], variant[64] = "";
            int k = sscanf(platforms[i], "%63[^/]/%63[^/]/%63s", os, arch, variant);
            assert_true(k >= 2);
            o += (size_t)snprintf(body + o, cap - o,
                                  ",\"platform\":{\"os\":\"%s\",\"architecture\":\"%s\"", os, arch);
            if (k == 3)
                o += (size_t)snprintf(body + o, cap - o, ",\"variant\":\"%s\"", variant);
            o += (size_t)snprintf(body + o, cap - o, "}");
        }
        o += (size_t)snprintf(body + o, cap - o, "}");
    }
    snprintf(body + o, cap - o, "]}");
    oc_error err = {0};
    if (oc_manifest_parse(m, NULL, body, strlen(body), &err) != 0)
        fail_msg("index: %s", err.msg);
    free(body);
}

static int select_in(const oc_manifest *m, const char *want, oc_error *err)
{
    oc_platform w;
    assert_int_equal(oc_platform_parse(&w, want, NULL), 0);
    int r = oc_manifest_select_platform(m, &w, err);
    oc_platform_free(&w);
    return r;
}

static void test_select(void **state)
{
    (void)state;
    const char *const plats[] = {"-",
                                 "unknown/unknown",
                                 "linux/amd64",
                                 "linux/arm64/v8",
                                 "linux/arm/v6",
                                 "linux/arm/v7",
                                 "linux/arm/v5",
                                 "windows/amd64",
                                 "linux/amd64"};
    oc_manifest m;
    make_index(&m, plats, sizeof plats / sizeof plats[0]);
    const struct {
        const char *want;
        int index;
    } cases[] = {
        {"linux/amd64", 2},      {"linux/arm64", 3},     {"linux/arm64/v8", 3},
        {"linux/aarch64", 3},    {"linux/arm", 5},       {"linux/arm/v6", 4},
        {"linux/arm/v5", 6},     {"linux/armhf", 5},     {"windows/amd64", 7},
        {"linux/x86_64", 2},     {"linux/s390x", -1},    {"linux/arm/v8", -1},
        {"unknown/unknown", -1}, {"linux/arm64/v9", -1}, {"darwin/amd64", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        oc_error err = {0};
        int got = select_in(&m, cases[i].want, &err);
        if (got != cases[i].index)
            fail_msg("%s: got %d want %d (%s)", cases[i].want, got, cases[i].index, err.msg);
        if (got < 0)
            assert_int_equal(err.code, OC_E_PLATFORM);
    }
    oc_error err = {0};
    assert_int_equal(select_in(&m, "linux/s390x", &err), -1);
    assert_string_equal(err.msg, "no manifest for platform linux/s390x; the index offers: "
                                 "linux/amd64, linux/arm64/v8, linux/arm/v6, linux/arm/v7, "
                                 "linux/arm/v5, windows/amd64");
    oc_manifest_free(&m);
}

static void test_select_message(void **state)
{
    (void)state;
    oc_manifest m;
    oc_error err = {0};
    assert_int_equal(oc_manifest_parse(&m, NULL, oci_index, strlen(oci_index), &err), 0);
    assert_int_equal(select_in(&m, "linux/s390x", &err), -1);
    assert_int_equal(err.code, OC_E_PLATFORM);
    assert_string_equal(err.msg, "no manifest for platform linux/s390x; the index offers: "
                                 "linux/amd64, linux/arm64/v8, linux/arm/v7");
    assert_int_equal(select_in(&m, "linux/arm64", &err), 1);
    assert_int_equal(select_in(&m, "linux/arm", &err), 2);
    oc_manifest_free(&m);

    /* nothing selectable */
    const char *const none[] = {"-", "unknown/unknown"};
    make_index(&m, none, 2);
    assert_int_equal(select_in(&m, "linux/amd64", &err), -1);
    assert_non_null(strstr(err.msg, "the index offers: no usable platforms"));
    oc_manifest_free(&m);

    /* a huge index: the list is cut, the message stays one bounded line */
    const char *many[200];
    char names[200][32];
    for (size_t i = 0; i < 200; i++) {
        snprintf(names[i], sizeof names[i], "linux/arch%zu", i);
        many[i] = names[i];
    }
    make_index(&m, many, 200);
    assert_int_equal(select_in(&m, "linux/amd64", &err), -1);
    assert_non_null(strstr(err.msg, "linux/arch0, linux/arch1"));
    assert_non_null(strstr(err.msg, ", ..."));
    assert_true(strlen(err.msg) < sizeof err.msg - 1);
    oc_manifest_free(&m);
}

static void test_select_preferences(void **state)
{
    (void)state;
    oc_manifest m;
    oc_error err = {0};
    /* amd64 without a wanted variant prefers the entry without one */
    const char *const amd[] = {"linux/amd64/v3", "linux/amd64", "linux/amd64/v2"};
    make_index(&m, amd, 3);
    assert_int_equal(select_in(&m, "linux/amd64", &err), 1);
    assert_int_equal(select_in(&m, "linux/amd64/v3", &err), 0);
    oc_manifest_free(&m);
    /* ...and takes the first variant when there is no plain entry */
    const char *const amd3[] = {"linux/amd64/v3", "linux/amd64/v2"};
    make_index(&m, amd3, 2);
    assert_int_equal(select_in(&m, "linux/amd64", &err), 0);
    oc_manifest_free(&m);
    /* arm64: v8 and no variant are the same: the first wins */
    const char *const a64[] = {"linux/arm64", "linux/arm64/v8"};
    make_index(&m, a64, 2);
    assert_int_equal(select_in(&m, "linux/arm64/v8", &err), 0);
    assert_int_equal(select_in(&m, "linux/arm64", &err), 0);
    oc_manifest_free(&m);
    /* duplicates are listed once */
    const char *const dup[] = {"linux/amd64", "linux/amd64", "linux/arm/v7", "linux/amd64"};
    make_index(&m, dup, 4);
    assert_int_equal(select_in(&m, "linux/riscv64", &err), -1);
    assert_string_equal(err.msg, "no manifest for platform linux/riscv64; the index offers: "
                                 "linux/amd64, linux/arm/v7");
    oc_manifest_free(&m);
}

static void test_select_usage(void **state)
{
    (void)state;
    oc_manifest m;
    oc_error err = {0};
    assert_int_equal(oc_manifest_parse(&m, NULL, docker_image, strlen(docker_image), &err), 0);
    oc_platform w = {"linux", "amd64", NULL};
    assert_int_equal(oc_manifest_select_platform(&m, &w, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    oc_manifest_free(&m);
    assert_int_equal(oc_manifest_select_platform(NULL, &w, &err), -1);
    assert_int_equal(oc_manifest_parse(&m, NULL, oci_index, strlen(oci_index), &err), 0);
    oc_platform empty = {NULL, "amd64", NULL};
    assert_int_equal(oc_manifest_select_platform(&m, &empty, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_int_equal(oc_manifest_select_platform(&m, NULL, &err), -1);
    oc_manifest_free(&m);
}

static void test_config(void **state)
{
    (void)state;
    const char *body = "{\"architecture\":\"arm64\",\"variant\":\"v8\",\"os\":\"linux\","
                       "\"config\":{\"Env\":[\"PATH=/bin\"]},\"history\":[{}],"
                       "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
    oc_image_config c;
    oc_error err = {0};
    assert_int_equal(oc_image_config_parse(&c, body, strlen(body), &err), 0);
    assert_int_equal(c.n_diff_ids, 2);
    assert_string_equal(c.diff_ids[0], D1);
    assert_string_equal(c.diff_ids[1], D2);
    assert_string_equal(c.platform.os, "linux");
    assert_string_equal(c.platform.arch, "arm64");
    assert_string_equal(c.platform.variant, "v8");
    oc_image_config_free(&c);
    assert_null(c.diff_ids);
    oc_image_config_free(&c);

    const char *minimal = "{\"rootfs\":{\"diff_ids\":[]}}";
    assert_int_equal(oc_image_config_parse(&c, minimal, strlen(minimal), &err), 0);
    assert_int_equal(c.n_diff_ids, 0);
    assert_null(c.platform.os);
    assert_null(c.platform.arch);
    assert_null(c.platform.variant);
    oc_image_config_free(&c);
}

static void test_config_bad(void **state)
{
    (void)state;
    const struct {
        const char *body, *why;
    } cases[] = {
        {"", "empty"},
        {"nope", "not valid JSON"},
        {"[]", "not a JSON object"},
        {"{}", "\"rootfs\" is missing"},
        {"{\"rootfs\":[]}", "\"rootfs\" is not an object"},
        {"{\"rootfs\":{}}", "\"rootfs.diff_ids\" is missing"},
        {"{\"rootfs\":{\"diff_ids\":{}}}", "\"rootfs.diff_ids\" is not an array"},
        {"{\"rootfs\":{\"diff_ids\":[5]}}", "\"rootfs.diff_ids[0]\" is not a string"},
        {"{\"rootfs\":{\"diff_ids\":[\"" D1 "\",\"md5:abc\"]}}", "rootfs.diff_ids[1]"},
        {"{\"rootfs\":{\"diff_ids\":[\"sha512:" H1 H1 "\"]}}", "rootfs.diff_ids[0]"},
        {"{\"rootfs\":{\"diff_ids\":[\"sha256:" H1 "\\u0000\"]}}", "not valid JSON"},
        {"{\"rootfs\":{\"type\":\"tarballs\",\"diff_ids\":[]}}", "\"rootfs.type\" is not"},
        {"{\"rootfs\":{\"type\":1,\"diff_ids\":[]}}", "\"rootfs.type\" is not a string"},
        {"{\"os\":1,\"rootfs\":{\"diff_ids\":[]}}", "\"os\" is not a string"},
        {"{\"architecture\":[],\"rootfs\":{\"diff_ids\":[]}}", "\"architecture\" is not"},
        {"{\"variant\":{},\"rootfs\":{\"diff_ids\":[]}}", "\"variant\" is not"},
        {"{\"rootfs\":{\"diff_ids\":[]},\"rootfs\":{\"diff_ids\":[]}}", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        oc_image_config c;
        oc_error err = {0};
        if (oc_image_config_parse(&c, cases[i].body, strlen(cases[i].body), &err) != -1)
            fail_msg("config %s should fail", cases[i].body);
        if (err.code != OC_E_FORMAT || !strstr(err.msg, cases[i].why))
            fail_msg("config %s: got %d \"%s\", want \"%s\"", cases[i].body, err.code, err.msg,
                     cases[i].why);
        assert_null(c.diff_ids);
        assert_int_equal(c.n_diff_ids, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_parse_docker_image),
        cmocka_unit_test(test_parse_resolved_types),
        cmocka_unit_test(test_parse_index),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_raw_bytes),
        cmocka_unit_test(test_parse_many_layers),
        cmocka_unit_test(test_platform_parse),
        cmocka_unit_test(test_platform_string),
        cmocka_unit_test(test_platform_matches),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_message),
        cmocka_unit_test(test_select_preferences),
        cmocka_unit_test(test_select_usage),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
