/* test_oci_referrers.c - referrers in STORE/oci/index.json: a referrer's
 * descriptor has no ref name and is keyed NAME@DIGEST (set, replaced,
 * removed, written and read back, never taken for another's unnamed
 * descriptor); the tag schema's names (sha256-<hex>, .sig, .att, .sbom, and
 * nothing else); which referrers an image reaches (through its manifests,
 * recursively, breadth first, not another image's, not orphans). */
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
#include "engine/store/oci_referrers.h"

#define HEX(c)                                                                                     \
    c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
        c c c c c c c c c c c c c c c c c
#define IMG "sha256:" HEX("1")
#define SBOM "sha256:" HEX("2")
#define SIG "sha256:" HEX("3")
#define SSIG "sha256:" HEX("4")
#define OTHER "sha256:" HEX("5")
#define MT "application/vnd.oci.image.manifest.v1+json"

static char *text(const char *image, const char *tag, const char *digest, const char *subject,
                  const char *artifact_type)
{
    oc_oci_desc d = {.media_type = MT,
                     .digest = digest,
                     .size = 42,
                     .image = image,
                     .tag = tag,
                     .registry = "127.0.0.1:5000",
                     .repository = "signed/app",
                     .source_tag = tag,
                     .subject = subject,
                     .artifact_type = artifact_type};
    oc_error err;
    char *t = oc_oci_descriptor_text(&d, &err);
    assert_non_null(t);
    return t;
}

static void test_keys(void **state)
{
    (void)state;
    oc_error err;
    char *img = text("app", "v1", IMG, NULL, NULL);
    char *sbom = text("app", NULL, SBOM, IMG, "application/spdx+json");
    json_t *d = json_loads(sbom, 0, NULL);
    json_t *ann = json_object_get(d, "annotations");
    assert_null(json_object_get(ann, "org.opencontainers.image.ref.name"));
    assert_null(json_object_get(ann, "io.containerd.image.name"));
    assert_string_equal(json_string_value(json_object_get(ann, OC_OCI_REFERRER_IMAGE)), "app");
    assert_string_equal(json_string_value(json_object_get(ann, OC_OCI_REFERRER_SUBJECT)), IMG);
    assert_string_equal(json_string_value(json_object_get(d, "artifactType")),
                        "application/spdx+json");
    json_decref(d);

    oc_oci_index *x = oc_oci_index_new();
    char *key = oc_oci_referrer_key("app", SBOM);
    assert_string_equal(key, "app@" SBOM);
    assert_int_equal(oc_oci_index_set(x, "app:v1", img, &err), 0);
    assert_int_equal(oc_oci_index_set(x, key, sbom, &err), 0);
    /* a referrer's text under another key is refused */
    assert_int_not_equal(oc_oci_index_set(x, "app@" OTHER, sbom, &err), 0);
    assert_int_not_equal(oc_oci_index_set(x, "app:sbom", sbom, &err), 0);
    assert_string_equal(oc_oci_index_digest(x, key), SBOM);
    assert_int_equal(oc_oci_index_count(x), 2);

    /* written and read back: still keyed, not an anonymous descriptor */
    size_t len = 0;
    char *dump = oc_oci_index_dump(x, &len, &err);
    oc_oci_index *y = oc_oci_index_parse(dump, len, "index.json", &err);
    assert_non_null(y);
    assert_int_equal(oc_oci_index_count(y), 2);
    assert_string_equal(oc_oci_index_get(y, key), sbom);
    assert_int_equal(oc_oci_index_remove(y, key), 1);
    assert_int_equal(oc_oci_index_count(y), 1);

    /* an unnamed descriptor of another tool stays unnamed */
    const char *foreign = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT
                          "\",\"digest\":\"" OTHER "\",\"size\":1}]}";
    oc_oci_index *z = oc_oci_index_parse(foreign, strlen(foreign), "index.json", &err);
    assert_non_null(z);
    assert_null(oc_oci_index_get(z, "@" OTHER));
    assert_int_equal(oc_oci_index_count(z), 1);
    oc_oci_index_free(x);
    oc_oci_index_free(y);
    oc_oci_index_free(z);
    free(dump);
    free(key);
    free(img);
    free(sbom);
}

static void test_tag_schema(void **state)
{
    (void)state;
    char subject[72];
    const char *suffix = NULL;
    assert_int_equal(oc_oci_tag_schema("sha256-" HEX("a"), subject, &suffix), 1);
    assert_string_equal(subject, "sha256:" HEX("a"));
    assert_string_equal(suffix, "");
    const char *ok[] = {".sig", ".att", ".sbom"};
    for (size_t i = 0; i < 3; i++) {
        char tag[100];
        snprintf(tag, sizeof tag, "sha256-%s%s", HEX("b"), ok[i]);
        assert_int_equal(oc_oci_tag_schema(tag, subject, &suffix), 1);
        assert_string_equal(suffix, ok[i]);
    }
    const char *no[] = {"v1",
                        "sha256-" HEX("a") ".txt",
                        "sha256-" HEX("A"),
                        "sha256-abc.sig",
                        "sha512-" HEX("a"),
                        "sha256-" HEX("a") "a"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_int_equal(oc_oci_tag_schema(no[i], subject, &suffix), 0);
}

static int collect(void *opaque, const oc_oci_referrer *r, int depth)
{
    char *out = opaque;
    char line[120];
    snprintf(line, sizeof line, "%d:%c%s;", depth, r->tag ? 't' : 'r',
             r->digest + strlen(r->digest) - 1);
    strcat(out, line);
    return 0;
}

static void test_reach(void **state)
{
    (void)state;
    oc_error err;
    oc_oci_index *x = oc_oci_index_new();
    struct {
        const char *key, *image, *tag, *digest, *subject;
    } e[] = {
        {"app:v1", "app", "v1", IMG, NULL},
        {"app@" SBOM, "app", NULL, SBOM, IMG},
        {"app:sha256-" HEX("1") ".sig", "app", "sha256-" HEX("1") ".sig", SIG, IMG},
        {"app@" SSIG, "app", NULL, SSIG, SBOM},
        /* another image's referrer of the same digest, and an orphan */
        {"other@" SBOM, "other", NULL, SBOM, IMG},
        {"app@" OTHER, "app", NULL, OTHER, "sha256:" HEX("9")},
    };
    for (size_t i = 0; i < sizeof e / sizeof *e; i++) {
        char *t = text(e[i].image, e[i].tag, e[i].digest, e[i].subject, NULL);
        assert_int_equal(oc_oci_index_set(x, e[i].key, t, &err), 0);
        free(t);
    }
    oc_oci_referrers *rs = oc_oci_referrers_of_index(x, NULL, &err);
    assert_non_null(rs);
    assert_int_equal(oc_oci_referrers_count(rs), 5);
    const char *from[] = {IMG};
    char got[400] = "";
    assert_int_equal(oc_oci_referrers_reach(rs, "app", from, 1, collect, got), 0);
    /* breadth first: the image's referrers (in index.json's key order),
     * then the SBOM's signature */
    assert_string_equal(got, "1:t3;1:r2;2:r4;");
    for (size_t i = 0; i < oc_oci_referrers_count(rs); i++) {
        const oc_oci_referrer *r = oc_oci_referrers_at(rs, i);
        int orphan = strcmp(r->key, "app@" OTHER) == 0 || strcmp(r->image, "other") == 0;
        assert_int_equal(r->live, !orphan);
        if (strcmp(r->key, "app@" SSIG) == 0)
            assert_int_equal(r->depth, 2);
    }
    got[0] = '\0';
    const char *from_sbom[] = {SBOM};
    assert_int_equal(oc_oci_referrers_reach(rs, "app", from_sbom, 1, collect, got), 0);
    assert_string_equal(got, "1:r4;");
    oc_oci_referrers_free(rs);
    oc_oci_index_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_tag_schema),
        cmocka_unit_test(test_reach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
