/* test_serve.c - serve's small parts: repository names (the contract's
 * mapping and the request grammar), manifest references, Range and
 * If-None-Match parsing, the hash table, and htpasswd checking (bcrypt and
 * {SHA}, the caches). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "engine/serve/content.h"
#include "engine/serve/htpasswd.h"
#include "engine/serve/names.h"
#include "io/strmap.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void repo_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int keep_host;
        const char *want;
    } cases[] = {
        {"busybox", 0, "library/busybox"},
        {"busybox", 1, "docker.io/library/busybox"},
        {"library/busybox", 0, "library/busybox"},
        {"homeassistant/home-assistant", 0, "homeassistant/home-assistant"},
        {"quay.io/org/x", 0, "org/x"},
        {"quay.io/org/x", 1, "quay.io/org/x"},
        {"127.0.0.1:5000/fixtures/x", 0, "fixtures/x"},
        {"127.0.0.1:5000/fixtures/x", 1, "127.0.0.1:5000/fixtures/x"},
        {"docker.io/library/busybox", 1, "docker.io/library/busybox"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        oc_error err;
        char *got = oc_srv_repo_name(cases[i].name, cases[i].keep_host, &err);
        assert_non_null(got);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
    oc_error err;
    assert_null(oc_srv_repo_name("Bad Name", 0, &err));
    assert_null(oc_srv_repo_name("x@sha256:" HEX, 0, &err));
}

static int valid(const char *name, int keep_host)
{
    return oc_srv_name_valid(name, strlen(name), keep_host);
}

static void request_names(void **state)
{
    (void)state;
    assert_true(valid("library/busybox", 0));
    assert_true(valid("a", 0));
    assert_true(valid("a.b/c__d/e-f.g/h---i", 0));
    assert_true(valid("fixtures/multi-layer_x.y", 0));
    assert_false(valid("", 0));
    assert_false(valid("..", 0));
    assert_false(valid("a/../b", 0));
    assert_false(valid("a/./b", 0));
    assert_false(valid("%2e%2e/x", 0));
    assert_false(valid("a//b", 0));
    assert_false(valid("/a", 0));
    assert_false(valid("a/", 0));
    assert_false(valid("A/b", 0));
    assert_false(valid("a_/b", 0));
    assert_false(valid("a___b", 0));
    assert_false(valid("a.-b", 0));
    assert_false(valid("a b", 0));
    assert_false(valid("a\\b", 0));
    /* a host first only with keep_host */
    assert_false(valid("127.0.0.1:5000/x", 0));
    assert_true(valid("127.0.0.1:5000/x", 1));
    assert_true(valid("Quay.IO/x", 1));
    assert_false(valid("x/127.0.0.1:5000", 1));
    assert_false(valid("host:/x", 1));
    assert_false(valid("host:123456/x", 1));
    char long_name[400];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_false(valid(long_name, 0));
    long_name[OC_SRV_NAME_MAX] = '\0';
    assert_true(valid(long_name, 0));
}

static void references(void **state)
{
    (void)state;
    char hex[OC_SHA256_HEX_LEN + 1];
    const char *d = "sha256:" HEX;
    assert_int_equal(oc_srv_ref_classify(d, strlen(d), hex), OC_SRV_REF_DIGEST);
    assert_string_equal(hex, HEX);
    assert_int_equal(oc_srv_ref_classify("v1", 2, hex), OC_SRV_REF_TAG);
    assert_int_equal(oc_srv_ref_classify("v1+linux-arm64-v8", 17, hex), OC_SRV_REF_TAG);
    assert_int_equal(oc_srv_ref_classify("_x", 2, hex), OC_SRV_REF_TAG);
    assert_int_equal(oc_srv_ref_classify("sha256:zz", 9, hex), OC_SRV_REF_INVALID);
    assert_int_equal(oc_srv_ref_classify("sha512:" HEX, 71, hex), OC_SRV_REF_INVALID);
    const char *upper = "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(oc_srv_ref_classify(upper, strlen(upper), hex), OC_SRV_REF_INVALID);
    assert_int_equal(oc_srv_ref_classify("..", 2, hex), OC_SRV_REF_BAD_TAG);
    assert_int_equal(oc_srv_ref_classify(".v1", 3, hex), OC_SRV_REF_BAD_TAG);
    assert_int_equal(oc_srv_ref_classify("a/b", 3, hex), OC_SRV_REF_BAD_TAG);
    assert_int_equal(oc_srv_ref_classify("", 0, hex), OC_SRV_REF_BAD_TAG);
    char tag[200];
    memset(tag, 'a', sizeof tag);
    assert_int_equal(oc_srv_ref_classify(tag, 128, hex), OC_SRV_REF_TAG);
    assert_int_equal(oc_srv_ref_classify(tag, 129, hex), OC_SRV_REF_BAD_TAG);
}

static int range(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
    return oc_srv_parse_range(v, strlen(v), size, a, b);
}

static void ranges(void **state)
{
    (void)state;
    uint64_t a = 0, b = 0;
    assert_int_equal(range("bytes=10-19", 100, &a, &b), 1);
    assert_true(a == 10 && b == 19);
    assert_int_equal(range("bytes=10-", 100, &a, &b), 1);
    assert_true(a == 10 && b == 99);
    assert_int_equal(range("bytes=-5", 100, &a, &b), 1);
    assert_true(a == 95 && b == 99);
    assert_int_equal(range("bytes=-500", 100, &a, &b), 1);
    assert_true(a == 0 && b == 99);
    assert_int_equal(range("bytes=90-1000", 100, &a, &b), 1);
    assert_true(a == 90 && b == 99);
    /* an end too large for 64 bits reads as "to the end" */
    assert_int_equal(range("bytes=0-99999999999999999999999999", 100, &a, &b), 1);
    assert_true(a == 0 && b == 99);
    assert_int_equal(range("bytes=-99999999999999999999999999", 100, &a, &b), 1);
    assert_true(a == 0 && b == 99);
    /* unsatisfiable */
    assert_int_equal(range("bytes=100-", 100, &a, &b), -1);
    assert_int_equal(range("bytes=99999999999999999999999999-", 100, &a, &b), -1);
    assert_int_equal(range("bytes=-0", 100, &a, &b), -1);
    assert_int_equal(range("bytes=0-", 0, &a, &b), -1);
    /* ignored: malformed, several ranges, other units, reversed */
    assert_int_equal(range("bytes=0-1,5-6", 100, &a, &b), 0);
    assert_int_equal(range("items=0-1", 100, &a, &b), 0);
    assert_int_equal(range("bytes=a-b", 100, &a, &b), 0);
    assert_int_equal(range("bytes=5-2", 100, &a, &b), 0);
    assert_int_equal(range("bytes=-", 100, &a, &b), 0);
    assert_int_equal(range("bytes=", 100, &a, &b), 0);
    assert_int_equal(range("bytes=1-2x", 100, &a, &b), 0);
}

static int etag(const char *v, int star)
{
    return oc_srv_etag_matches(v, strlen(v), HEX, star);
}

static void etags(void **state)
{
    (void)state;
    assert_true(etag("\"sha256:" HEX "\"", 1));
    assert_true(etag("sha256:" HEX, 1));
    assert_true(etag("W/\"sha256:" HEX "\"", 1));
    assert_true(etag("\"x\", \"sha256:" HEX "\"", 1));
    assert_true(etag("*", 1));
    assert_false(etag("*", 0));
    assert_false(etag("\"sha256:" HEX "0\"", 1));
    assert_false(etag("\"x\"", 1));
    assert_false(etag("", 1));
}

static void count_one(const char *key, void *value, void *opaque)
{
    (void)key;
    (void)value;
    (*(int *)opaque)++;
}

static void strmap(void **state)
{
    (void)state;
    oc_strmap *m = oc_strmap_new(NULL);
    assert_non_null(m);
    char key[32];
    for (long i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%ld", i);
        assert_int_equal(oc_strmap_put(m, key, (void *)(i + 1), NULL), 0);
    }
    assert_int_equal(oc_strmap_count(m), 5000);
    for (long i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%ld", i);
        assert_ptr_equal(oc_strmap_get(m, key), (void *)(i + 1));
    }
    assert_null(oc_strmap_get(m, "nope"));
    void *old = NULL;
    assert_int_equal(oc_strmap_put(m, "k7", (void *)99, &old), 0);
    assert_ptr_equal(old, (void *)8);
    assert_int_equal(oc_strmap_count(m), 5000);
    int n = 0;
    oc_strmap_foreach(m, count_one, &n);
    assert_int_equal(n, 5000);
    oc_strmap_clear(m, NULL);
    assert_int_equal(oc_strmap_count(m), 0);
    assert_null(oc_strmap_get(m, "k7"));
    oc_strmap_free_with(m, NULL);
}

static char *basic(const char *user, const char *password)
{
    char plain[256];
    int n = snprintf(plain, sizeof plain, "%s:%s", user, password);
    unsigned char b64[400];
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    char *out = malloc(512);
    snprintf(out, 512, "Basic %s", b64);
    return out;
}

static int check(oc_htpasswd *h, const char *header, char *user)
{
    return oc_htpasswd_check(h, header, strlen(header), user, 64);
}

static void htpasswd(void **state)
{
    (void)state;
    /* a bcrypt entry made here (cost 5: quick), a {SHA} one */
    char salt[64];
    assert_non_null(crypt_gensalt_rn("$2y$", 5, NULL, 0, salt, sizeof salt));
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *bc = crypt_r("s3cret", salt, &cd);
    assert_non_null(bc);
    assert_memory_equal(bc, "$2y$", 4);
    unsigned char md[SHA_DIGEST_LENGTH], sha[64];
    SHA1((const unsigned char *)"other pw", 8, md);
    EVP_EncodeBlock(sha, md, SHA_DIGEST_LENGTH);
    char path[] = "/tmp/test_serve_htpasswd_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# users\nalice:%s\r\n\nbob:{SHA}%s\n", bc, sha);
    fclose(f);
    oc_error err;
    oc_htpasswd *h = oc_htpasswd_load(path, &err);
    assert_non_null(h);
    char user[64];
    char *good = basic("alice", "s3cret"), *bad = basic("alice", "s3cret!"),
         *sha_good = basic("bob", "other pw"), *sha_bad = basic("bob", "other"),
         *nobody = basic("carol", "s3cret");
    for (int round = 0; round < 2; round++) { /* the second from the caches */
        assert_true(check(h, good, user));
        assert_string_equal(user, "alice");
        assert_false(check(h, bad, user));
        assert_true(check(h, sha_good, user));
        assert_string_equal(user, "bob");
        assert_false(check(h, sha_bad, user));
        assert_false(check(h, nobody, user));
    }
    assert_false(check(h, "Bearer abc", user));
    assert_false(check(h, "Basic !!!!", user));
    assert_false(check(h, "Basic YWxpY2U=", user)); /* "alice": no password part */
    assert_false(check(h, "Basic ", user));
    oc_htpasswd_free(h);
    free(good);
    free(bad);
    free(sha_good);
    free(sha_bad);
    free(nobody);

    /* schemes not supported are refused at load, naming the line */
    f = fopen(path, "w");
    fprintf(f, "alice:%s\nbob:$apr1$abc$def\n", bc);
    fclose(f);
    assert_null(oc_htpasswd_load(path, &err));
    assert_non_null(strstr(err.msg, "line 2"));
    f = fopen(path, "w");
    fprintf(f, "# nobody\n");
    fclose(f);
    assert_null(oc_htpasswd_load(path, &err));
    unlink(path);
    assert_null(oc_htpasswd_load(path, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(repo_names), cmocka_unit_test(request_names), cmocka_unit_test(references),
        cmocka_unit_test(ranges),     cmocka_unit_test(etags),         cmocka_unit_test(strmap),
        cmocka_unit_test(htpasswd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
