/* test_oci_read.c - reading an OCI image layout (engine/store/oci_read.h):
 * NAME:TAG ref names split as the store writes them (host ports, digest
 * tags), index.json entries with their annotations, a layout that is not
 * there (OC_E_NOTFOUND) or is damaged (OC_E_FORMAT naming the file), and
 * blobs checked against their size and digest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/store/oci_read.h"
#include "io/digest.h"
#include "io/atomicfile.h"
#include "io/fsutil.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_split_ref_name(void **state)
{
    (void)state;
    static const struct {
        const char *text, *name, *tag;
    } cases[] = {
        {"busybox:latest", "busybox", "latest"},
        {"quay.io/org/x:v1", "quay.io/org/x", "v1"},
        {"127.0.0.1:5000/fixtures/x:v1", "127.0.0.1:5000/fixtures/x", "v1"},
        {"127.0.0.1:5000/fixtures/x:sha256:" HEX, "127.0.0.1:5000/fixtures/x", "sha256:" HEX},
        {"busybox@sha256:" HEX, "busybox", "sha256:" HEX},
        {"img:v1+linux-arm64-v8", "img", "v1+linux-arm64-v8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *name = NULL, *tag = NULL;
        assert_int_equal(oc_oci_split_ref_name(cases[i].text, &name, &tag), 0);
        assert_string_equal(name, cases[i].name);
        assert_string_equal(tag, cases[i].tag);
        free(name);
        free(tag);
    }
    const char *bad[] = {"busybox", "127.0.0.1:5000/fixtures/x", "x:", ":x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *name = NULL, *tag = NULL;
        assert_int_equal(oc_oci_split_ref_name(bad[i], &name, &tag), -1);
        assert_null(name);
        assert_null(tag);
    }
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* dir/blobs/sha256/<hex of text>, returned as "sha256:<hex>" in digest */
static void put_blob(const char *dir, const char *text, char digest[8 + OC_SHA256_HEX_LEN])
{
    char hex[OC_SHA256_HEX_LEN + 1], name[128];
    oc_sha256_buf_hex(text, strlen(text), hex);
    snprintf(digest, 8 + OC_SHA256_HEX_LEN, "sha256:%s", hex);
    snprintf(name, sizeof name, "blobs/sha256/%s", hex);
    put(dir, name, text);
}

static void test_layout(void **state)
{
    (void)state;
    char dir[] = "/tmp/occy-oci-XXXXXX";
    assert_non_null(mkdtemp(dir));
    oc_oci_layout l;
    oc_error err;
    oc_error_clear(&err);
    assert_int_equal(oc_oci_layout_read(&l, dir, &err), -1);
    assert_int_equal(err.code, OC_E_NOTFOUND);

    char sub[600];
    snprintf(sub, sizeof sub, "%s/blobs/sha256", dir);
    assert_int_equal(oc_mkdirs(sub, &err), 0);
    const char *manifest = "{\"schemaVersion\":2}";
    char md[8 + OC_SHA256_HEX_LEN];
    put_blob(dir, manifest, md);
    char index[2048];
    snprintf(index, sizeof index,
             "{\"schemaVersion\":2,\"manifests\":["
             "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
             "\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":"
             "\"127.0.0.1:5000/a/b:v1\",\"org.occystrap.source\":\"127.0.0.1:5000/a/b:v1@%s\"}},"
             "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
             "\"size\":%zu,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"},"
             "\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
             md, strlen(manifest), md, md, strlen(manifest));
    put(dir, "index.json", index);
    /* no oci-layout file: not a layout */
    assert_int_equal(oc_oci_layout_read(&l, dir, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    put(dir, "oci-layout", "{\"imageLayoutVersion\": \"2.0.0\"}");
    assert_int_equal(oc_oci_layout_read(&l, dir, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_non_null(strstr(err.msg, "oci-layout"));
    put(dir, "oci-layout", "{\"imageLayoutVersion\": \"1.0.0\"}");
    assert_int_equal(oc_oci_layout_read(&l, dir, &err), 0);
    assert_int_equal(l.n_entries, 2);
    assert_string_equal(l.entries[0].name, "127.0.0.1:5000/a/b");
    assert_string_equal(l.entries[0].tag, "v1");
    assert_string_equal(l.entries[0].digest, md);
    assert_non_null(l.entries[0].source);
    assert_int_equal(l.entries[0].has_platform, 0);
    assert_null(l.entries[1].name); /* "latest" names no image */
    assert_int_equal(l.entries[1].has_platform, 1);

    char *body = NULL;
    size_t len = 0;
    assert_int_equal(oc_oci_read_small(&l, md, (int64_t)strlen(manifest), 4096, &body, &len, &err),
                     0);
    assert_int_equal(len, strlen(manifest));
    assert_memory_equal(body, manifest, len);
    free(body);
    /* the wrong size, a missing blob, bytes that are not the digest's */
    assert_int_equal(oc_oci_read_small(&l, md, 3, 4096, &body, &len, &err), -1);
    assert_int_equal(err.code, OC_E_DIGEST);
    assert_int_equal(oc_oci_open_blob(&l, "sha256:" HEX, 1, &err), -1);
    assert_int_equal(err.code, OC_E_NOTFOUND);
    char path[700];
    snprintf(path, sizeof path, "%s/blobs/sha256/%s", dir, md + 7);
    put(dir, path + strlen(dir) + 1, "{\"schemaVersion\":3}");
    assert_int_equal(oc_oci_read_small(&l, md, (int64_t)strlen(manifest), 4096, &body, &len, &err),
                     -1);
    assert_int_equal(err.code, OC_E_DIGEST);
    assert_non_null(strstr(err.msg, "verify"));
    int fd = oc_oci_open_blob(&l, md, strlen(manifest), &err);
    assert_true(fd >= 0); /* open checks the size only */
    close(fd);
    oc_oci_layout_free(&l);

    put(dir, "index.json",
        "{\"manifests\": [{\"digest\": \"sha256:nothex\", \"size\": 1, "
        "\"mediaType\": \"x\"}]}");
    assert_int_equal(oc_oci_layout_read(&l, dir, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_non_null(strstr(err.msg, "index.json"));
    assert_int_equal(oc_remove_tree(dir, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_ref_name),
        cmocka_unit_test(test_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
