/* test_blobsink.c - io/blobsink: a blob hashed and kept, and inflated and
 * hashed, on worker strands, fed from the caller's thread.
 *
 * The streams are made at test time (gzip by the gzip tool, zstd by
 * libzstd) and fed in odd piece sizes through a sink with tiny buffers, so
 * the caller blocks for free chunks and the inflater for free output
 * buffers; the results are checked against SHA-256 of the inputs and the
 * files against the bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "io/blobsink.h"
#include "io/digest.h"
#include "testutil.h"

static char tmpdir[512];

static int setup(void **state)
{
    (void)state;
    return tu_mkdtemp(tmpdir, sizeof tmpdir, "blobsink");
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmtree(tmpdir);
}

static char *path_in(const char *name)
{
    static char buf[4][700];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

/* Text-like data that compresses (a fixed-seed LCG over a few words). */
static unsigned char *gen(size_t len, uint32_t seed)
{
    static const char *words[] = {"layer ", "tar ", "occystrap ", "blob\n", "sha256 ", "zz"};
    unsigned char *d = malloc(len);
    assert_non_null(d);
    for (size_t i = 0; i < len;) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 6];
        for (; *w && i < len; w++)
            d[i++] = (unsigned char)*w;
    }
    return d;
}

static oc_blobsink_pool *tiny_pool(void)
{
    oc_blobsink_opts o = {.threads = 2, .chunk_size = 4096, .in_chunks = 2, .out_bufs = 2};
    oc_error err;
    oc_blobsink_pool *p = oc_blobsink_pool_new(&o, &err);
    assert_non_null(p);
    return p;
}

/* Feed data in pieces of 1, 7, 4096, 10000 ... bytes. */
static int feed(oc_blobsink *s, const unsigned char *data, size_t len, oc_error *err)
{
    static const size_t steps[] = {1, 7, 4096, 10000, 333, 65536};
    size_t at = 0;
    for (int k = 0; at < len; k++) {
        size_t n = steps[k % 6] < len - at ? steps[k % 6] : len - at;
        if (oc_blobsink_write(s, data + at, n, err) != 0)
            return -1;
        at += n;
    }
    return 0;
}

static void check_stream(const unsigned char *comp, size_t comp_len, oc_comp comp_kind,
                         const unsigned char *raw, size_t raw_len)
{
    oc_blobsink_pool *pool = tiny_pool();
    oc_error err;
    oc_error_clear(&err);
    oc_blobsink *s = oc_blobsink_open(pool, "test blob", path_in("copy"), path_in("tar"), comp_kind,
                                      comp_len, 0, &err);
    assert_non_null(s);
    assert_int_equal(feed(s, comp, comp_len, &err), 0);
    oc_blobsink_result res;
    assert_int_equal(oc_blobsink_finish(s, &res, &err), 0);
    oc_blobsink_free(s, 1);
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(comp, comp_len, hex);
    assert_string_equal(res.hex, hex);
    assert_int_equal(res.size, comp_len);
    assert_true(res.stream_ok);
    oc_sha256_buf_hex(raw, raw_len, hex);
    assert_string_equal(res.tar_hex, hex);
    assert_int_equal(res.tar_size, raw_len);
    size_t n = 0;
    char *copy = tu_slurp(path_in("copy"), &n);
    assert_int_equal(n, comp_len);
    assert_memory_equal(copy, comp, comp_len);
    free(copy);
    char *tar = tu_slurp(path_in("tar"), &n);
    assert_int_equal(n, raw_len);
    assert_memory_equal(tar, raw, raw_len);
    free(tar);
    oc_blobsink_pool_free(pool);
}

static void test_gzip(void **state)
{
    (void)state;
    if (!tu_have_tool("gzip"))
        skip();
    size_t raw_len = 700000;
    unsigned char *raw = gen(raw_len, 1);
    assert_int_equal(tu_write_file(path_in("raw"), raw, raw_len), 0);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "gzip -1 -n -c '%s' > '%s'", path_in("raw"), path_in("raw.gz"));
    assert_int_equal(system(cmd), 0);
    size_t comp_len = 0;
    unsigned char *comp = (unsigned char *)tu_slurp(path_in("raw.gz"), &comp_len);
    check_stream(comp, comp_len, OC_COMP_GZIP, raw, raw_len);
    free(comp);
    free(raw);
}

static void test_zstd(void **state)
{
    (void)state;
    size_t raw_len = 900000;
    unsigned char *raw = gen(raw_len, 2);
    size_t cap = ZSTD_compressBound(raw_len);
    unsigned char *comp = malloc(cap);
    size_t comp_len = ZSTD_compress(comp, cap, raw, raw_len, 3);
    assert_false(ZSTD_isError(comp_len));
    check_stream(comp, comp_len, OC_COMP_AUTO, raw, raw_len);
    free(comp);
    free(raw);
}

static void test_copy_only(void **state)
{
    (void)state;
    oc_blobsink_pool *pool = tiny_pool();
    size_t len = 50000;
    unsigned char *data = gen(len, 3);
    oc_error err;
    oc_blobsink *s =
        oc_blobsink_open(pool, "plain", path_in("plain"), NULL, OC_COMP_AUTO, 0, 0, &err);
    assert_non_null(s);
    assert_int_equal(feed(s, data, len, &err), 0);
    oc_blobsink_result res;
    assert_int_equal(oc_blobsink_finish(s, &res, &err), 0);
    oc_blobsink_free(s, 1);
    assert_false(res.inflated);
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(data, len, hex);
    assert_string_equal(res.hex, hex);
    size_t n = 0;
    char *copy = tu_slurp(path_in("plain"), &n);
    assert_int_equal(n, len);
    assert_memory_equal(copy, data, len);
    free(copy);
    free(data);
    oc_blobsink_pool_free(pool);
}

/* A gzip stream cut short: the bytes are hashed as they are, the stream is
 * reported as not inflating (the stream's fault, not a local failure). */
static void test_cut_stream(void **state)
{
    (void)state;
    if (!tu_have_tool("gzip"))
        skip();
    size_t raw_len = 300000;
    unsigned char *raw = gen(raw_len, 4);
    assert_int_equal(tu_write_file(path_in("cut"), raw, raw_len), 0);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "gzip -n -c '%s' > '%s'", path_in("cut"), path_in("cut.gz"));
    assert_int_equal(system(cmd), 0);
    size_t comp_len = 0;
    unsigned char *comp = (unsigned char *)tu_slurp(path_in("cut.gz"), &comp_len);
    comp_len -= 100;
    oc_blobsink_pool *pool = tiny_pool();
    oc_error err;
    oc_blobsink *s =
        oc_blobsink_open(pool, "cut", NULL, path_in("cut.tar"), OC_COMP_GZIP, comp_len, 0, &err);
    assert_non_null(s);
    assert_int_equal(feed(s, comp, comp_len, &err), 0);
    oc_blobsink_result res;
    assert_int_equal(oc_blobsink_finish(s, &res, &err), 0);
    assert_false(res.stream_ok);
    assert_non_null(strstr(res.stream_err.msg, "cut"));
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(comp, comp_len, hex);
    assert_string_equal(res.hex, hex);
    oc_blobsink_free(s, 0);
    assert_int_equal(access(path_in("cut.tar"), F_OK), -1);
    oc_blobsink_pool_free(pool);
    free(comp);
    free(raw);
}

/* A copy that cannot be created: open fails naming it; a sink abandoned
 * half-way: its files go, nothing hangs. */
static void test_failures(void **state)
{
    (void)state;
    oc_blobsink_pool *pool = tiny_pool();
    oc_error err;
    oc_error_clear(&err);
    assert_null(
        oc_blobsink_open(pool, "x", path_in("no/such/dir/x"), NULL, OC_COMP_AUTO, 0, 0, &err));
    assert_non_null(strstr(err.msg, "no/such/dir/x"));
    size_t len = 200000;
    unsigned char *data = gen(len, 5);
    oc_blobsink *s = oc_blobsink_open(pool, "half", path_in("half"), path_in("half.tar"),
                                      OC_COMP_NONE, 0, 0, &err);
    assert_non_null(s);
    assert_int_equal(feed(s, data, len / 2, &err), 0);
    oc_blobsink_free(s, 0);
    assert_int_equal(access(path_in("half"), F_OK), -1);
    assert_int_equal(access(path_in("half.tar"), F_OK), -1);
    free(data);
    oc_blobsink_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zstd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
