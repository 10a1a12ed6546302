/* test_bundle_doc.c - the bundle manifest and the inventory as documents
 * (engine/bundle/bundle_doc.h, inventory.h): what is written reads back
 * with the same id and the same text; every check parsing makes refuses
 * the document that breaks it, naming what is wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bundle/bundle_doc.h"
#include "engine/bundle/inventory.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define DESC                                                                                       \
    "{\"annotations\":{\"org.opencontainers.image.ref.name\":\"quay.io/org/x:v1\"},"               \
    "\"digest\":\"sha256:" HEX_A "\",\"mediaType\":"                                               \
    "\"application/vnd.oci.image.manifest.v1+json\",\"size\":100}"

/* A bundle of two parts: a manifest, a layer cut in two segments. */
static oc_bundle_doc *sample(void)
{
    oc_error err;
    oc_bundle_doc *d = oc_bundle_doc_new();
    assert_non_null(d);
    snprintf(d->created, sizeof d->created, "2026-01-01T00:00:00Z");
    d->creator = strdup("occystrap test");
    d->parts = 2;
    for (int i = 0; i < OC_BUNDLE_META_N; i++) {
        snprintf(d->meta[i].digest, sizeof d->meta[i].digest, "sha256:" HEX_C);
        d->meta[i].size = 10 + (uint64_t)i;
    }
    oc_bundle_image *im = oc_bundle_doc_add_image(d, "quay.io/org/x:v1", DESC, &err);
    assert_non_null(im);
    im->catalog = calloc(1, sizeof *im->catalog);
    im->catalog->manifest_digest = strdup("sha256:" HEX_A);
    im->catalog->fetched_at = strdup("2026-01-01T00:00:00Z");
    im->catalog->repo_tags = calloc(2, sizeof(char *));
    im->catalog->repo_tags[0] = strdup("quay.io/org/x:v1");
    im->catalog->n_repo_tags = 1;
    oc_bundle_file *f = oc_bundle_doc_add_file(d, "blobs/sha256/" HEX_A, &err);
    snprintf(f->digest, sizeof f->digest, "sha256:" HEX_A);
    snprintf(f->blob, sizeof f->blob, "sha256:" HEX_A);
    f->size = f->blob_size = 100;
    f->part = 1;
    const uint64_t offs[2] = {0, 600}, sizes[2] = {600, 400};
    for (int i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof path, "segments/sha256/" HEX_B "/%020llu",
                 (unsigned long long)offs[i]);
        f = oc_bundle_doc_add_file(d, path, &err);
        snprintf(f->digest, sizeof f->digest, "sha256:%s", i ? HEX_C : HEX_A);
        snprintf(f->blob, sizeof f->blob, "sha256:" HEX_B);
        f->segment = 1;
        f->offset = offs[i];
        f->size = sizes[i];
        f->blob_size = 1000;
        f->part = (unsigned)i + 1;
        f->media_type = strdup("application/vnd.oci.image.layer.v1.tar+gzip");
    }
    assert_int_equal(oc_bundle_doc_seal(d, &err), 0);
    return d;
}

static void test_round_trip(void **state)
{
    (void)state;
    oc_error err;
    oc_bundle_doc *d = sample();
    size_t len = 0;
    char *text = oc_bundle_doc_text(d, 2, &len, &err);
    assert_non_null(text);
    oc_bundle_doc *back = oc_bundle_doc_parse(text, len, "t", &err);
    assert_non_null(back);
    assert_string_equal(back->id, d->id);
    assert_int_equal(back->part, 2);
    assert_int_equal(back->n_files, 3);
    assert_true(back->files[2].segment);
    assert_int_equal(back->files[2].offset, 600);
    assert_int_equal(back->bytes, 1100);
    assert_non_null(back->images[0].catalog);
    assert_string_equal(back->images[0].catalog->repo_tags[0], "quay.io/org/x:v1");
    size_t len2 = 0;
    char *again = oc_bundle_doc_text(back, 2, &len2, &err);
    assert_int_equal(len, len2);
    assert_memory_equal(text, again, len);
    /* every part carries the same id */
    char *one = oc_bundle_doc_text(d, 1, &len2, &err);
    oc_bundle_doc *p1 = oc_bundle_doc_parse(one, len2, "t", &err);
    assert_non_null(p1);
    assert_string_equal(p1->id, d->id);
    free(one);
    free(again);
    free(text);
    oc_bundle_doc_free(p1);
    oc_bundle_doc_free(back);
    oc_bundle_doc_free(d);
}

/* text with the first occurrence of from replaced by to */
static char *edit(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    assert_non_null(at);
    char *out = malloc(strlen(text) + strlen(to) + 1);
    size_t pre = (size_t)(at - text);
    memcpy(out, text, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

static void refused(const char *text, const char *why)
{
    oc_error err;
    oc_error_clear(&err);
    oc_bundle_doc *d = oc_bundle_doc_parse(text, strlen(text), "m", &err);
    if (d)
        fail_msg("accepted; wanted a refusal mentioning '%s'", why);
    if (!strstr(err.msg, why))
        fail_msg("refused with '%s', not '%s'", err.msg, why);
}

static void test_refusals(void **state)
{
    (void)state;
    oc_error err;
    oc_bundle_doc *d = sample();
    size_t len = 0;
    char *text = oc_bundle_doc_text(d, 1, &len, &err);
    char *t;
    refused((t = edit(text, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")),
            "is not that of its content");
    free(t);
    refused((t = edit(text, "\"version\": 1", "\"version\": 2")), "version 2");
    free(t);
    refused((t = edit(text, "\"part\": 1,", "\"part\": 3,")), "part (1..parts)");
    free(t);
    refused((t = edit(text, "\"path\":\"blobs/sha256/" HEX_A, "\"path\":\"blobs/sha256/" HEX_B)),
            "a blob's name must be its digest");
    free(t);
    refused((t = edit(text, "\"size\":600", "\"size\":500")), "do not follow each other");
    free(t);
    refused((t = edit(text, "\"path\":\"blobs/sha256/" HEX_A, "\"path\":\"../" HEX_A)),
            "is not a name a bundle file may have");
    free(t);
    refused((t = edit(text, "\"ref\":\"quay.io/org/x:v1\"", "\"ref\":\"quay.io/org/y:v1\"")),
            "its descriptor does not name it");
    free(t);
    refused("[1]", "not a JSON object");
    refused("{\"mediaType\": \"application/json\"}", "not an occystrap bundle manifest");
    free(text);
    oc_bundle_doc_free(d);
}

static void test_inventory(void **state)
{
    (void)state;
    oc_error err;
    oc_inventory *inv = oc_inventory_new();
    assert_int_equal(oc_inventory_add_blob(inv, "sha256:" HEX_B, 5, &err), 0);
    assert_int_equal(oc_inventory_add_blob(inv, "sha256:" HEX_A, 7, &err), 0);
    assert_int_equal(oc_inventory_add_blob(inv, "sha256:" HEX_A, 9, &err), 0);
    assert_int_equal(
        oc_inventory_set_image(inv, "busybox:latest", "application/x", "sha256:" HEX_C, 3, &err),
        0);
    assert_int_not_equal(oc_inventory_add_blob(inv, "md5:abc", 1, &err), 0);
    size_t len = 0;
    char *text = oc_inventory_dump(inv, &len, &err);
    assert_non_null(text);
    assert_true(strstr(text, HEX_A) < strstr(text, HEX_B)); /* sorted */
    oc_inventory *back = oc_inventory_parse(text, len, "inv", &err);
    assert_non_null(back);
    uint64_t size = 0;
    assert_true(oc_inventory_has_blob(back, "sha256:" HEX_A, &size));
    assert_int_equal(size, 7);
    assert_false(oc_inventory_has_blob(back, "sha256:" HEX_C, NULL));
    assert_int_equal(oc_inventory_n_blobs(back), 2);
    assert_string_equal(oc_inventory_image(back, "busybox:latest")->digest, "sha256:" HEX_C);
    char *t = edit(text, "\"version\": 1", "\"version\": 7");
    assert_null(oc_inventory_parse(t, strlen(t), "inv", &err));
    assert_non_null(strstr(err.msg, "version 7"));
    free(t);
    t = edit(text, "\"size\":5", "\"size\":-5");
    assert_null(oc_inventory_parse(t, strlen(t), "inv", &err));
    free(t);
    t = edit(text, "busybox:latest", "../evil:latest");
    assert_null(oc_inventory_parse(t, strlen(t), "inv", &err));
    free(t);
    free(text);
    oc_inventory_free(back);
    oc_inventory_free(inv);
}

static void test_refs(void **state)
{
    (void)state;
    const char *good[] = {"busybox:latest", "quay.io/org/x:v1",
                          "127.0.0.1:5000/fixtures/x:v1+linux-amd64", "a/b:sha256:" HEX_A};
    const char *bad[] = {"busybox",  "../x:v1", "/abs:v1", "a//b:v1", "a/.hidden:v1",
                         "a:-start", "a:b/c",   "a:",      "a b:v1",  "host:5000:v1"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char *n = NULL, *t = NULL;
        if (!oc_bundle_ref_ok(good[i], &n, &t))
            fail_msg("refused %s", good[i]);
        free(n);
        free(t);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *n = NULL, *t = NULL;
        if (oc_bundle_ref_ok(bad[i], &n, &t))
            fail_msg("accepted %s", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_inventory),
        cmocka_unit_test(test_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
