/* test_store_image.c - an image's manifest file in a store: ours (with
 * "Occystrap"), occystrap 0.2.0's (pretty-printed, no keys of ours), a plain
 * manifest.json, and names that must never be joined to the store path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/store/store_image.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define HC "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static int parse(oc_store_image *si, const char *text, oc_error *err)
{
    oc_error_clear(err);
    return oc_store_image_parse(si, text, strlen(text), "manifest-x-v1.json", err);
}

static void test_ours(void **state)
{
    (void)state;
    const char *text =
        "[{\"Config\": \"" HC ".json\", \"ImageName\": \"org/img\", "
        "\"Layers\": [\"" H1 "/layer.tar\", \"" H2 "/layer.tar\", \"" H1 "/layer.tar\"], "
        "\"Occystrap\": {\"registry\": \"quay.io\", \"repository\": \"org/img\", "
        "\"tag\": \"v1\", \"manifest_digest\": \"sha256:" H2 "\", "
        "\"platform\": \"linux/amd64\", \"fetched_at\": \"2024-01-02T03:04:05Z\"}, "
        "\"RepoTags\": [\"quay.io/org/img:v1\"]}]";
    oc_store_image si;
    oc_error err;
    assert_int_equal(parse(&si, text, &err), 0);
    assert_string_equal(si.config, HC ".json");
    assert_string_equal(si.config_hex, HC);
    assert_int_equal(si.n_layers, 3);
    assert_string_equal(si.layers[1], H2 "/layer.tar");
    assert_string_equal(si.layer_hex[0], H1);
    assert_string_equal(si.layer_hex[2], H1);
    assert_int_equal(si.n_repo_tags, 1);
    assert_string_equal(si.repo_tags[0], "quay.io/org/img:v1");
    assert_string_equal(si.image_name, "org/img");
    assert_true(si.has_ours);
    assert_string_equal(si.registry, "quay.io");
    assert_string_equal(si.tag, "v1");
    assert_string_equal(si.manifest_digest, "sha256:" H2);
    assert_null(si.index_digest);
    assert_string_equal(si.fetched_at, "2024-01-02T03:04:05Z");

    json_t *entry = oc_store_image_docker_entry(&si, (const char *const *)si.repo_tags, 1);
    char *out = json_dumps(entry, JSON_PRESERVE_ORDER | JSON_COMPACT);
    assert_string_equal(out, "{\"Config\":\"" HC ".json\",\"RepoTags\":[\"quay.io/org/img:v1\"],"
                             "\"Layers\":[\"" H1 "/layer.tar\",\"" H2 "/layer.tar\",\"" H1
                             "/layer.tar\"]}");
    free(out);
    json_decref(entry);
    oc_store_image_free(&si);
}

static void test_legacy(void **state)
{
    (void)state;
    /* json.dumps(indent=4, sort_keys=True) of 0.2.0's tar_manifest */
    const char *text = "[\n    {\n        \"Config\": \"" HC ".json\",\n"
                       "        \"ImageName\": \"homeassistant/home-assistant\",\n"
                       "        \"Layers\": [\n            \"" H1 "/layer.tar\"\n        ],\n"
                       "        \"RepoTags\": [\n            \"home-assistant:latest\"\n"
                       "        ]\n    }\n]";
    oc_store_image si;
    oc_error err;
    assert_int_equal(parse(&si, text, &err), 0);
    assert_false(si.has_ours);
    assert_null(si.registry);
    assert_string_equal(si.image_name, "homeassistant/home-assistant");
    assert_string_equal(si.repo_tags[0], "home-assistant:latest");
    oc_store_image_free(&si);

    /* a plain manifest.json: no ImageName, no RepoTags */
    assert_int_equal(parse(&si, "[{\"Config\": \"" HC ".json\", \"Layers\": []}]", &err), 0);
    assert_null(si.image_name);
    assert_int_equal(si.n_repo_tags, 0);
    assert_int_equal(si.n_layers, 0);
    oc_store_image_free(&si);
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        oc_errcode code;
        const char *needle;
    } cases[] = {
        {"{}", OC_E_FORMAT, "list of one image"},
        {"[]", OC_E_FORMAT, "list of one image"},
        {"[{\"Config\": \"" HC ".json\", \"Layers\": []}, {}]", OC_E_FORMAT, "list of one"},
        {"[{\"Layers\": []}]", OC_E_FORMAT, "Config"},
        {"[{\"Config\": \"../" HC ".json\", \"Layers\": []}]", OC_E_FORMAT, "Config"},
        {"[{\"Config\": \"" HC ".JSON\", \"Layers\": []}]", OC_E_FORMAT, "Config"},
        {"[{\"Config\": \"" HC ".json\"}]", OC_E_FORMAT, "Layers"},
        {"[{\"Config\": \"" HC ".json\", \"Layers\": [\"../../etc/passwd\"]}]", OC_E_FORMAT,
         "layer 0"},
        /* 0.2.0's recreate-image bug must not become a name we accept */
        {"[{\"Config\": \"" HC ".json\", \"Layers\": [\"" H1 "/layer.tar/layer.tar\"]}]",
         OC_E_FORMAT, "layer 0"},
        {"[{\"Config\": \"" HC ".json\", \"Layers\": [\"" H1 "/layer.tgz\"]}]", OC_E_UNSUPPORTED,
         "compressed layer files"},
        {"[{\"Config\": \"" HC ".json\", \"Layers\": [7]}]", OC_E_FORMAT, "not a string"},
        {"[{\"Config\": \"" HC ".json\", \"Layers\": [], \"RepoTags\": [1]}]", OC_E_FORMAT,
         "RepoTags"},
        {"[{\"Config\": \"" HC ".json\", \"Layers\": [], \"Occystrap\": []}]", OC_E_FORMAT,
         "Occystrap"},
        {"[{\"Config\": \"" HC ".json\", \"Layers\": [], \"Occystrap\": {\"tag\": 1}}]",
         OC_E_FORMAT, "\"tag\""},
        {"not json", OC_E_FORMAT, "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        oc_store_image si;
        oc_error err;
        assert_int_equal(parse(&si, cases[i].text, &err), -1);
        if (err.code != cases[i].code || !strstr(err.msg, cases[i].needle))
            fail_msg("case %zu: %s (%d)", i, err.msg, err.code);
        assert_non_null(strstr(err.msg, "manifest-x-v1.json"));
        assert_null(si.config);
        assert_null(si.layers);
    }
}

static void test_name_is_hex(void **state)
{
    (void)state;
    char hex[OC_SHA256_HEX_LEN + 1];
    assert_true(oc_store_name_is_hex(H1, "", hex));
    assert_string_equal(hex, H1);
    assert_true(oc_store_name_is_hex(HC ".json", ".json", NULL));
    assert_false(oc_store_name_is_hex(HC ".json", "", NULL));
    assert_false(oc_store_name_is_hex("ABCDEF" H1, "", NULL));
    assert_false(oc_store_name_is_hex("123", "", NULL));
    assert_false(oc_store_name_is_hex(NULL, "", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ours),
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_name_is_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
