/* test_digest.c - SHA-256 against the FIPS 180-2 vectors, streaming vs
 * one-shot vs file hashing, and strict "sha256:<hex>" parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/digest.h"

#define HEX_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HEX_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HEX_MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
#define HEX_448 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define MSG_448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"

static void test_vectors_buf(void **state)
{
    (void)state;
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex("", 0, hex);
    assert_string_equal(hex, HEX_EMPTY);
    oc_sha256_buf_hex("abc", 3, hex);
    assert_string_equal(hex, HEX_ABC);
    oc_sha256_buf_hex(MSG_448, strlen(MSG_448), hex);
    assert_string_equal(hex, HEX_448);

    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    oc_sha256_buf_hex(a, 1000000, hex);
    assert_string_equal(hex, HEX_MILLION_A);
    free(a);
}

static void test_streaming_and_reuse(void **state)
{
    (void)state;
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256 *h = oc_sha256_new();
    assert_non_null(h);

    /* one million 'a' in uneven pieces */
    char chunk[977];
    memset(chunk, 'a', sizeof chunk);
    size_t left = 1000000;
    size_t step = 1;
    while (left > 0) {
        size_t n = step < left ? step : left;
        if (n > sizeof chunk)
            n = sizeof chunk;
        oc_sha256_update(h, chunk, n);
        left -= n;
        step = step * 3 + 1;
        if (step > sizeof chunk)
            step = 1;
    }
    oc_sha256_final_hex(h, hex);
    assert_string_equal(hex, HEX_MILLION_A);

    /* final resets: the same hasher hashes the next message from scratch */
    oc_sha256_update(h, "a", 1);
    oc_sha256_update(h, "", 0);
    oc_sha256_update(h, "bc", 2);
    oc_sha256_final_hex(h, hex);
    assert_string_equal(hex, HEX_ABC);

    oc_sha256_final_hex(h, hex);
    assert_string_equal(hex, HEX_EMPTY);

    /* explicit reset drops what was fed */
    oc_sha256_update(h, "garbage", 7);
    oc_sha256_reset(h);
    oc_sha256_update(h, "abc", 3);
    oc_sha256_final_hex(h, hex);
    assert_string_equal(hex, HEX_ABC);

    oc_sha256_free(h);
    oc_sha256_free(NULL);
}

static char *make_temp_file(const void *data, size_t len)
{
    char *path = strdup("/tmp/occy-test-digest-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
    close(fd);
    return path;
}

/* h's digest (which resets it) is OpenSSL's one-shot digest of data. */
static void assert_final_is(oc_sha256 *h, const void *data, size_t len)
{
    char hex[OC_SHA256_HEX_LEN + 1], want[OC_SHA256_HEX_LEN + 1];
    oc_sha256_final_hex(h, hex);
    oc_sha256_buf_hex(data, len, want);
    assert_string_equal(hex, want);
}

/* Pairable hashers (our SHA-NI block function where the CPU has it) give
 * OpenSSL's digests: the FIPS vectors, every length around the block and
 * padding edges, and two streams of different lengths fed as pairs in
 * random pieces, block-aligned or not. */
static void test_pairable(void **state)
{
    (void)state;
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256 *a = oc_sha256_new_pairable(), *b = oc_sha256_new_pairable();
    assert_non_null(a);
    assert_non_null(b);
    oc_sha256_update(a, NULL, 0);
    oc_sha256_final_hex(a, hex);
    assert_string_equal(hex, HEX_EMPTY);
    oc_sha256_update(a, "abc", 3);
    oc_sha256_final_hex(a, hex);
    assert_string_equal(hex, HEX_ABC);
    oc_sha256_update(a, MSG_448, strlen(MSG_448));
    oc_sha256_final_hex(a, hex);
    assert_string_equal(hex, HEX_448);
    char thousand_a[1000];
    memset(thousand_a, 'a', sizeof thousand_a);
    for (int i = 0; i < 1000; i++)
        oc_sha256_update(a, thousand_a, sizeof thousand_a);
    oc_sha256_final_hex(a, hex);
    assert_string_equal(hex, HEX_MILLION_A);

    size_t n = 300000;
    unsigned char *x = malloc(n), *y = malloc(n);
    assert_non_null(x);
    assert_non_null(y);
    uint32_t r = 12345;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (unsigned char)(r >> 24);
        y[i] = (unsigned char)(r >> 13);
    }
    /* every length across two blocks, for the padding */
    for (size_t len = 0; len <= 130; len++) {
        oc_sha256_update(a, x, len);
        assert_final_is(a, x, len);
    }
    /* pairs: x whole into a, the first ylen bytes of y into b */
    for (int round = 0; round < 40; round++) {
        size_t ylen = n - (size_t)round * 997;
        size_t ia = 0, ib = 0;
        while (ia < n || ib < ylen) {
            r = r * 1664525u + 1013904223u;
            /* block multiples most of the time, odd pieces now and then */
            size_t la = (r >> 28) < 12 ? ((r >> 8) % 64) * 64 : (r >> 8) % 5000;
            size_t lb = (r >> 28) < 12 ? ((r >> 16) % 64) * 64 : (r >> 12) % 5000;
            la = la > n - ia ? n - ia : la;
            lb = lb > ylen - ib ? ylen - ib : lb;
            if (round % 2)
                oc_sha256_update_pair(a, x + ia, la, b, y + ib, lb);
            else
                oc_sha256_update_pair(b, y + ib, lb, a, x + ia, la);
            ia += la;
            ib += lb;
        }
        assert_final_is(a, x, n);
        assert_final_is(b, y, ylen);
    }
    /* a pairable hasher paired with a plain one still gives both digests */
    oc_sha256 *plain = oc_sha256_new();
    assert_non_null(plain);
    oc_sha256_update_pair(a, x, 4096, plain, y, 8192);
    assert_final_is(a, x, 4096);
    assert_final_is(plain, y, 8192);
    oc_sha256_free(plain);
    oc_sha256_free(a);
    oc_sha256_free(b);
    free(x);
    free(y);
}

static void test_file(void **state)
{
    (void)state;
    char hex[OC_SHA256_HEX_LEN + 1];
    uint64_t size = 1;
    oc_error err = {0};

    char *empty = make_temp_file("", 0);
    assert_int_equal(oc_sha256_file_hex(empty, hex, &size, &err), 0);
    assert_string_equal(hex, HEX_EMPTY);
    assert_int_equal(size, 0);
    unlink(empty);
    free(empty);

    char *abc = make_temp_file("abc", 3);
    assert_int_equal(oc_sha256_file_hex(abc, hex, NULL, &err), 0);
    assert_string_equal(hex, HEX_ABC);
    unlink(abc);
    free(abc);

    /* several 1 MiB reads and a partial one, compared with the one-shot hash */
    size_t big = 3 * 1024 * 1024 + 12345;
    unsigned char *data = malloc(big);
    assert_non_null(data);
    uint32_t x = 12345;
    for (size_t i = 0; i < big; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
    }
    char want[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(data, big, want);
    char *path = make_temp_file(data, big);
    assert_int_equal(oc_sha256_file_hex(path, hex, &size, &err), 0);
    assert_string_equal(hex, want);
    assert_int_equal(size, big);
    unlink(path);
    free(path);
    free(data);
}

static void test_file_missing(void **state)
{
    (void)state;
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_error err = {0};
    assert_int_equal(oc_sha256_file_hex("/nonexistent/occy/blob", hex, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/occy/blob"));
    assert_non_null(strstr(err.msg, "No such file"));

    /* a directory opens but cannot be read */
    assert_int_equal(oc_sha256_file_hex("/", hex, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
}

static void test_parse_good(void **state)
{
    (void)state;
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_error err = {0};
    assert_int_equal(oc_digest_parse("sha256:" HEX_ABC, hex, &err), 0);
    assert_string_equal(hex, HEX_ABC);
    assert_int_equal(oc_digest_parse("sha256:" HEX_EMPTY, hex, NULL), 0);
    assert_string_equal(hex, HEX_EMPTY);
}

static void expect_bad(const char *digest, const char *why)
{
    char hex[OC_SHA256_HEX_LEN + 1] = "untouched";
    oc_error err = {0};
    if (oc_digest_parse(digest, hex, &err) != -1)
        fail_msg("accepted bad digest %s", digest ? digest : "(null)");
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_string_equal(hex, "");
    if (why && !strstr(err.msg, why))
        fail_msg("message for %s is \"%s\", wanted \"%s\"", digest, err.msg, why);
}

static void test_parse_bad(void **state)
{
    (void)state;
    expect_bad(NULL, "missing");
    expect_bad("", "expected");
    expect_bad("sha256:", "64 hex digits");
    expect_bad("sha256", "expected");
    expect_bad(HEX_ABC, "expected");
    expect_bad("sha512:" HEX_ABC HEX_ABC, "unsupported algorithm");
    expect_bad("SHA256:" HEX_ABC, "unsupported algorithm");
    expect_bad("sha256:" HEX_ABC "0", "64 hex digits");
    expect_bad("sha256:" HEX_ABC "\n", "not a hex digit");
    expect_bad("sha256:" HEX_ABC " ", "not a hex digit");
    expect_bad(" sha256:" HEX_ABC, "expected");
    expect_bad("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a", "64 hex");
    expect_bad("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
               "upper-case");
    expect_bad("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015aG",
               "not a hex digit");
    expect_bad("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a/",
               "not a hex digit");
    expect_bad("sha256:../../../../etc/passwd", "not a hex digit");

    /* the message quotes the input, shortened and printable */
    char longer[600];
    memset(longer, 'z', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memcpy(longer, "sha256:\x01", 8);
    oc_error err = {0};
    char hex[OC_SHA256_HEX_LEN + 1];
    assert_int_equal(oc_digest_parse(longer, hex, &err), -1);
    assert_non_null(strstr(err.msg, "sha256:?zz"));
    assert_non_null(strstr(err.msg, "..."));
    assert_null(strchr(err.msg, '\x01'));
    assert_true(strlen(err.msg) < 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_buf),  cmocka_unit_test(test_streaming_and_reuse),
        cmocka_unit_test(test_pairable),     cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_missing), cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
