/* test_inflate.c - streaming gzip (ISA-L), zstd and plain decompression.
 *
 * Compressed inputs are made at test time by the gzip and zstd command-line
 * tools in a scratch directory (tests skip when a tool is missing); a few
 * are edited by hand to get gzip headers the tool never writes (FEXTRA,
 * FCOMMENT, FHCRC). Every stream is fed whole, in random chunks and one byte
 * at a time, and checked by the SHA-256 of what the sink received; each of
 * those runs is made again with lent output buffers (oc_inflater_new_lent)
 * from a stingy lender: buffers of random sizes down to one byte, and
 * refusals, so the decoder stops (blocked) at every kind of place and must
 * go on from there when fed again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <string.h>
#include <unistd.h>

#include "io/digest.h"
#include "io/inflate.h"
#include "testutil.h"

#define MIB ((size_t)1024 * 1024)

static char tmpdir[512];

/* ---- helpers ---- */

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Compressible but not trivial data: words from a small vocabulary with
 * occasional long runs, driven by a fixed-seed LCG. */
static unsigned char *gen_data(size_t len, uint32_t seed)
{
    static const char *words[] = {"layer ", "tar ",         "sha256 ",    "manifest ",
                                  "blob ",  "registry\n",   "occystrap ", "zstd ",
                                  "gzip ",  "\x00\x01\x02 "};
    unsigned char *d = malloc(len ? len : 1);
    assert_non_null(d);
    uint32_t x = seed;
    size_t i = 0;
    while (i < len) {
        x = x * 1664525u + 1013904223u;
        if ((x >> 24) < 3) {
            size_t run = (x >> 8) % 5000;
            for (size_t k = 0; k < run && i < len; k++)
                d[i++] = (unsigned char)(x >> 3);
        } else if ((x >> 24) < 40) {
            d[i++] = (unsigned char)(x >> 13);
        } else {
            const char *w = words[(x >> 16) % 10];
            size_t wl = (w[0] == 0) ? 4 : strlen(w);
            for (size_t k = 0; k < wl && i < len; k++)
                d[i++] = (unsigned char)w[k];
        }
    }
    return d;
}

/* Run "cmd IN > OUT" on data and return OUT. */
static unsigned char *compress_with(const char *cmd, const void *data, size_t len, size_t *out_len)
{
    char in[600], out[600], line[2048];
    snprintf(in, sizeof in, "%s/in", tmpdir);
    snprintf(out, sizeof out, "%s/out", tmpdir);
    spit(in, data, len);
    snprintf(line, sizeof line, "%s '%s' > '%s'", cmd, in, out);
    assert_int_equal(system(line), 0);
    unsigned char *got = (unsigned char *)tu_slurp(out, out_len);
    assert_non_null(got);
    return got;
}

static unsigned char *concat(const unsigned char *a, size_t alen, const unsigned char *b,
                             size_t blen, size_t *len)
{
    unsigned char *r = malloc(alen + blen + 1);
    assert_non_null(r);
    memcpy(r, a, alen);
    memcpy(r + alen, b, blen);
    *len = alen + blen;
    return r;
}

typedef struct collector {
    oc_sha256 *h;
    uint64_t n;
    size_t calls;
    size_t last_len;
    int short_before_last; /* a call other than the last one had less than 1 MiB */
    int fail_code;         /* make the sink fail with this code */
} collector;

static int collect(void *opaque, const void *data, size_t len, oc_error *err)
{
    collector *c = opaque;
    assert_true(len > 0);
    if (c->calls > 0 && c->last_len != MIB)
        c->short_before_last = 1;
    c->calls++;
    c->last_len = len;
    if (c->fail_code) {
        oc_error_set(err, (oc_errcode)c->fail_code, "sink refused");
        return -1;
    }
    oc_sha256_update(c->h, data, len);
    c->n += len;
    return 0;
}

static void collector_init(collector *c)
{
    memset(c, 0, sizeof *c);
    c->h = oc_sha256_new();
    assert_non_null(c->h);
}

enum { FEED_WHOLE = 0, FEED_RANDOM = -1 };

/* Feed all of in (in pieces of `chunk` bytes, or random sizes) and finish. */
static int feed_all(oc_inflater *inf, const unsigned char *in, size_t len, long chunk,
                    oc_error *err)
{
    uint32_t x = 99;
    size_t off = 0;
    while (off < len) {
        size_t n;
        if (chunk == FEED_WHOLE) {
            n = len;
        } else if (chunk == FEED_RANDOM) {
            x = x * 1664525u + 1013904223u;
            n = (x >> 28) < 4 ? 1 + (x >> 29) : 1 + (x >> 8) % 70000;
        } else {
            n = (size_t)chunk;
        }
        if (n > len - off)
            n = len - off;
        if (oc_inflater_feed(inf, in + off, n, err) != 0)
            return -1;
        off += n;
    }
    return oc_inflater_finish(inf, err);
}

/* A stingy lender of output buffers: random sizes (often tiny), a refusal
 * now and then; at most one buffer out at a time, as the contract says. */
typedef struct lender {
    oc_sha256 *h;
    uint64_t n;
    uint32_t x;
    unsigned char *buf;
    int out; /* lent and not back */
    size_t gets, puts, drops, refusals;
} lender;

static uint32_t lender_rand(lender *l)
{
    l->x = l->x * 1664525u + 1013904223u;
    return l->x >> 8;
}

static int lend_get(void *opaque, unsigned char **buf, size_t *cap, oc_error *err)
{
    lender *l = opaque;
    (void)err;
    assert_int_equal(l->out, 0);
    if (lender_rand(l) % 3 == 0) {
        l->refusals++;
        return 1;
    }
    uint32_t r = lender_rand(l);
    size_t c = r % 4 == 0 ? 1 + r % 7 : 1 + r % 70000;
    l->buf = malloc(c);
    assert_non_null(l->buf);
    l->out = 1;
    l->gets++;
    *buf = l->buf;
    *cap = c;
    return 0;
}

static int lend_put(void *opaque, unsigned char *buf, size_t len, oc_error *err)
{
    lender *l = opaque;
    (void)err;
    assert_ptr_equal(buf, l->buf);
    assert_true(len > 0);
    oc_sha256_update(l->h, buf, len);
    l->n += len;
    free(buf);
    l->out = 0;
    l->puts++;
    return 0;
}

static void lend_drop(void *opaque, unsigned char *buf)
{
    lender *l = opaque;
    assert_ptr_equal(buf, l->buf);
    free(buf);
    l->out = 0;
    l->drops++;
}

/* feed_all with feed_some: a blocked feed is fed again from where it
 * stopped (possibly with nothing left: output the decoder still holds). */
static int feed_all_lent(oc_inflater *inf, const unsigned char *in, size_t len, long chunk,
                         oc_error *err)
{
    uint32_t x = 7;
    size_t off = 0;
    int more = len > 0;
    while (more) {
        size_t n;
        if (chunk == FEED_WHOLE) {
            n = len - off;
        } else if (chunk == FEED_RANDOM) {
            x = x * 1664525u + 1013904223u;
            n = (x >> 28) < 4 ? 1 + (x >> 29) : 1 + (x >> 8) % 70000;
        } else {
            n = (size_t)chunk;
        }
        if (n > len - off)
            n = len - off;
        size_t used = 0;
        int rc = oc_inflater_feed_some(inf, in + off, n, &used, err);
        if (rc < 0)
            return -1;
        assert_true(used <= n);
        assert_true(rc == 1 || used == n);
        off += used;
        more = rc == 1 || off < len;
    }
    int rc;
    for (int tries = 0; (rc = oc_inflater_finish(inf, err)) == 1; tries++)
        assert_true(tries < 1000000);
    return rc;
}

static void expect_ok_lent(oc_comp comp, const unsigned char *in, size_t len, long chunk,
                           const unsigned char *want, size_t want_len, oc_comp want_comp)
{
    lender l = {.x = (uint32_t)len ^ 0x9e3779b9u};
    l.h = oc_sha256_new();
    assert_non_null(l.h);
    oc_inflate_output out = {lend_get, lend_put, lend_drop, &l};
    oc_inflater *inf = oc_inflater_new_lent(comp, &out, 0);
    assert_non_null(inf);
    oc_error err = {0};
    if (feed_all_lent(inf, in, len, chunk, &err) != 0)
        fail_msg("decoding with lent buffers failed (chunk %ld): %s", chunk, err.msg);
    char got[OC_SHA256_HEX_LEN + 1], exp[OC_SHA256_HEX_LEN + 1];
    oc_sha256_final_hex(l.h, got);
    oc_sha256_buf_hex(want, want_len, exp);
    assert_int_equal(l.n, want_len);
    assert_string_equal(got, exp);
    assert_int_equal(oc_inflater_total_out(inf), want_len);
    assert_int_equal(oc_inflater_comp(inf), want_comp);
    assert_int_equal(l.out, 0); /* every buffer came back */
    assert_int_equal(l.gets, l.puts + l.drops);
    oc_inflater_free(inf);
    oc_sha256_free(l.h);
}

/* Decode in with a fresh inflater and check the output against want. */
static void expect_ok(oc_comp comp, const unsigned char *in, size_t len, long chunk,
                      const unsigned char *want, size_t want_len, oc_comp want_comp)
{
    expect_ok_lent(comp, in, len, chunk, want, want_len, want_comp);
    collector c;
    collector_init(&c);
    oc_inflater *inf = oc_inflater_new(comp, collect, &c, 0);
    assert_non_null(inf);
    oc_error err = {0};
    if (feed_all(inf, in, len, chunk, &err) != 0)
        fail_msg("decoding failed (chunk %ld): %s", chunk, err.msg);
    char got[OC_SHA256_HEX_LEN + 1], exp[OC_SHA256_HEX_LEN + 1];
    oc_sha256_final_hex(c.h, got);
    oc_sha256_buf_hex(want, want_len, exp);
    assert_int_equal(c.n, want_len);
    assert_string_equal(got, exp);
    assert_int_equal(oc_inflater_total_out(inf), want_len);
    assert_int_equal(oc_inflater_comp(inf), want_comp);
    assert_false(c.short_before_last);
    oc_inflater_free(inf);
    oc_sha256_free(c.h);
}

/* Decode in and expect a failure with code; msg_part must be in the message. */
static void expect_fail(oc_inflater *inf, const unsigned char *in, size_t len, long chunk,
                        oc_errcode code, const char *msg_part)
{
    oc_error err = {0};
    oc_inflater_reset(inf);
    if (feed_all(inf, in, len, chunk, &err) == 0)
        fail_msg("decoding of %zu bytes succeeded; wanted %s", len, msg_part);
    if (err.code != code)
        fail_msg("code %s (%s), wanted %s", oc_errcode_name(err.code), err.msg,
                 oc_errcode_name(code));
    if (msg_part && !strstr(err.msg, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
}

static int discard(void *opaque, const void *data, size_t len, oc_error *err)
{
    (void)data;
    (void)err;
    *(uint64_t *)opaque += len;
    return 0;
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static int setup(void **state)
{
    (void)state;
    return tu_mkdtemp(tmpdir, sizeof tmpdir, "inflate");
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmtree(tmpdir);
}

#define NEED(tool)                                                                                 \
    do {                                                                                           \
        if (!tu_have_tool(tool)) {                                                                 \
            print_message("%s not installed: skipping\n", tool);                                   \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- gzip ---- */

static void test_gzip_large(void **state)
{
    (void)state;
    NEED("gzip");
    size_t n = 5 * MIB + 777, zn;
    unsigned char *data = gen_data(n, 1);
    unsigned char *gz = compress_with("gzip -c -6", data, n, &zn);
    expect_ok(OC_COMP_GZIP, gz, zn, FEED_WHOLE, data, n, OC_COMP_GZIP);
    expect_ok(OC_COMP_GZIP, gz, zn, FEED_RANDOM, data, n, OC_COMP_GZIP);
    expect_ok(OC_COMP_GZIP, gz, zn, 4096, data, n, OC_COMP_GZIP);
    expect_ok(OC_COMP_AUTO, gz, zn, FEED_RANDOM, data, n, OC_COMP_GZIP);
    free(gz);
    free(data);
}

static void test_gzip_multi_member(void **state)
{
    (void)state;
    NEED("gzip");
    size_t an = 1500 * 1024, bn = 300 * 1024, azn, bzn, ezn, czn;
    unsigned char *a = gen_data(an, 2);
    unsigned char *b = gen_data(bn, 3);
    unsigned char *az = compress_with("gzip -c -n -1", a, an, &azn);
    unsigned char *bz = compress_with("gzip -c -9", b, bn, &bzn); /* with FNAME, MTIME */
    unsigned char *ez = compress_with("gzip -c -n", "", 0, &ezn); /* an empty member */
    unsigned char *cz = compress_with("gzip -c -n", "x", 1, &czn);

    size_t t1n, t2n, t3n, zn, pn, wn;
    unsigned char *t1 = concat(az, azn, ez, ezn, &t1n);
    unsigned char *t2 = concat(t1, t1n, bz, bzn, &t2n);
    unsigned char *t3 = concat(t2, t2n, ez, ezn, &t3n);
    unsigned char *z = concat(t3, t3n, cz, czn, &zn);
    unsigned char *p = concat(a, an, b, bn, &pn);
    unsigned char *want = concat(p, pn, (const unsigned char *)"x", 1, &wn);

    expect_ok(OC_COMP_GZIP, z, zn, FEED_WHOLE, want, wn, OC_COMP_GZIP);
    expect_ok(OC_COMP_GZIP, z, zn, FEED_RANDOM, want, wn, OC_COMP_GZIP);
    expect_ok(OC_COMP_GZIP, z, zn, 1, want, wn, OC_COMP_GZIP);
    expect_ok(OC_COMP_GZIP, z, zn, 7, want, wn, OC_COMP_GZIP);
    expect_ok(OC_COMP_AUTO, z, zn, 1, want, wn, OC_COMP_GZIP);

    /* every split of the stream into two feeds */
    unsigned char *small = concat(cz, czn, ez, ezn, &t1n);
    unsigned char *small2 = concat(small, t1n, cz, czn, &t2n);
    for (size_t cut = 0; cut <= t2n; cut++) {
        collector c;
        collector_init(&c);
        oc_inflater *inf = oc_inflater_new(OC_COMP_GZIP, collect, &c, 0);
        oc_error err = {0};
        assert_int_equal(oc_inflater_feed(inf, small2, cut, &err), 0);
        assert_int_equal(oc_inflater_feed(inf, small2 + cut, t2n - cut, &err), 0);
        assert_int_equal(oc_inflater_finish(inf, &err), 0);
        assert_int_equal(c.n, 2);
        oc_inflater_free(inf);
        oc_sha256_free(c.h);
    }
    free(small);
    free(small2);
    free(a);
    free(b);
    free(az);
    free(bz);
    free(ez);
    free(cz);
    free(t1);
    free(t2);
    free(t3);
    free(z);
    free(p);
    free(want);
}

/* A member with every optional header field, built from gzip -n output. */
static unsigned char *gzip_with_all_header_fields(const unsigned char *gz, size_t gzn, size_t *n)
{
    size_t extra_len = 700, comment_len = 500;
    const char *name = "layer.tar";
    size_t hn = 10 + 2 + extra_len + strlen(name) + 1 + comment_len + 1 + 2;
    unsigned char *r = malloc(hn + gzn);
    assert_non_null(r);
    memcpy(r, gz, 10);
    r[3] = 0x04 | 0x08 | 0x10 | 0x02; /* FEXTRA FNAME FCOMMENT FHCRC */
    size_t o = 10;
    r[o++] = (unsigned char)(extra_len & 0xff);
    r[o++] = (unsigned char)(extra_len >> 8);
    r[o++] = 'O';
    r[o++] = 'C';
    r[o++] = (unsigned char)((extra_len - 4) & 0xff);
    r[o++] = (unsigned char)((extra_len - 4) >> 8);
    for (size_t i = 0; i < extra_len - 4; i++)
        r[o++] = (unsigned char)(i * 7);
    memcpy(r + o, name, strlen(name) + 1);
    o += strlen(name) + 1;
    memset(r + o, 'c', comment_len);
    o += comment_len;
    r[o++] = 0;
    uint32_t crc = crc32_of(r, o);
    r[o++] = (unsigned char)(crc & 0xff);
    r[o++] = (unsigned char)((crc >> 8) & 0xff);
    assert_int_equal(o, hn);
    memcpy(r + o, gz + 10, gzn - 10);
    *n = hn + gzn - 10;
    return r;
}

static void test_gzip_header_fields(void **state)
{
    (void)state;
    NEED("gzip");
    size_t n = 200 * 1024, zn, hn, mn;
    unsigned char *data = gen_data(n, 4);
    unsigned char *gz = compress_with("gzip -c -n", data, n, &zn);
    assert_int_equal(gz[3], 0); /* no flags from gzip -n */
    unsigned char *h = gzip_with_all_header_fields(gz, zn, &hn);
    expect_ok(OC_COMP_GZIP, h, hn, FEED_WHOLE, data, n, OC_COMP_GZIP);
    expect_ok(OC_COMP_GZIP, h, hn, 1, data, n, OC_COMP_GZIP);
    expect_ok(OC_COMP_GZIP, h, hn, FEED_RANDOM, data, n, OC_COMP_GZIP);

    /* as the second member too */
    unsigned char *m = concat(gz, zn, h, hn, &mn);
    size_t wn;
    unsigned char *want = concat(data, n, data, n, &wn);
    expect_ok(OC_COMP_GZIP, m, mn, 1, want, wn, OC_COMP_GZIP);
    expect_ok(OC_COMP_GZIP, m, mn, FEED_WHOLE, want, wn, OC_COMP_GZIP);

    /* an empty FEXTRA field */
    unsigned char *x = malloc(zn + 2);
    assert_non_null(x);
    memcpy(x, gz, 10);
    x[3] = 0x04;
    x[10] = x[11] = 0;
    memcpy(x + 12, gz + 10, zn - 10);
    expect_ok(OC_COMP_GZIP, x, zn + 2, 1, data, n, OC_COMP_GZIP);
    expect_ok(OC_COMP_GZIP, x, zn + 2, FEED_WHOLE, data, n, OC_COMP_GZIP);
    free(x);

    /* a wrong header CRC16 is caught */
    oc_inflater *inf = oc_inflater_new(OC_COMP_GZIP, discard, &(uint64_t){0}, 0);
    size_t crc_at = 10 + 2 + 700 + 10 + 501;
    h[crc_at] ^= 0x01;
    expect_fail(inf, h, hn, FEED_WHOLE, OC_E_FORMAT, "header checksum");
    expect_fail(inf, h, hn, 1, OC_E_FORMAT, "header checksum");
    h[crc_at] ^= 0x01;
    /* and so is a reserved flag bit or a method that is not deflate */
    h[3] |= 0x20;
    expect_fail(inf, h, hn, FEED_WHOLE, OC_E_FORMAT, "corrupt gzip");
    h[3] &= (unsigned char)~0x20;
    h[2] = 7;
    expect_fail(inf, h, hn, FEED_WHOLE, OC_E_FORMAT, "method");
    oc_inflater_free(inf);
    free(m);
    free(want);
    free(h);
    free(gz);
    free(data);
}

static void test_gzip_trailer_checked(void **state)
{
    (void)state;
    NEED("gzip");
    size_t n = 100 * 1024, zn;
    unsigned char *data = gen_data(n, 5);
    unsigned char *gz = compress_with("gzip -c -n", data, n, &zn);
    oc_inflater *inf = oc_inflater_new(OC_COMP_GZIP, discard, &(uint64_t){0}, 0);
    for (size_t i = zn - 8; i < zn; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            gz[i] ^= (unsigned char)(1u << bit);
            expect_fail(inf, gz, zn, FEED_WHOLE, OC_E_FORMAT, "CRC32/ISIZE");
            expect_fail(inf, gz, zn, 1, OC_E_FORMAT, "CRC32/ISIZE");
            gz[i] ^= (unsigned char)(1u << bit);
        }
    }
    /* intact it decodes, with the same inflater after reset */
    oc_error err = {0};
    oc_inflater_reset(inf);
    assert_int_equal(feed_all(inf, gz, zn, FEED_WHOLE, &err), 0);
    assert_int_equal(oc_inflater_total_out(inf), n);
    oc_inflater_free(inf);
    free(gz);
    free(data);
}

/* XINUSE (XGETBV with ECX = 1): which parts of the extended state are not
 * in their initial configuration. Bit 2 is the upper halves of ymm0-15,
 * bit 6 those of zmm0-15; either set means legacy-SSE code run next on
 * this thread (OpenSSL's SHA-NI SHA-256) pays the transition penalty.
 * Returns -1 where the CPU cannot say. */
static long long dirty_upper_vector_state(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE */
        return -1;
    if (!__get_cpuid_count(0xd, 1, &a, &b, &c, &d) || !(a & (1u << 2))) /* XGETBV ECX=1 */
        return -1;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1));
    return (long long)(lo & ((1u << 2) | (1u << 6)));
#else
    return -1;
#endif
}

/* ISA-L's AVX-512 CRC returns with dirty upper vector state; the inflater
 * must leave the thread clean after a feed and after finish. */
static void test_gzip_leaves_vector_state_clean(void **state)
{
    (void)state;
    NEED("gzip");
    if (dirty_upper_vector_state() < 0) {
        print_message("this CPU cannot report its vector state: skipping\n");
        skip();
    }
    size_t n = 3 * MIB, zn;
    unsigned char *data = gen_data(n, 11);
    unsigned char *gz = compress_with("gzip -c -n", data, n, &zn);
    uint64_t got = 0;
    oc_error err = {0};
    oc_inflater *inf = oc_inflater_new(OC_COMP_GZIP, discard, &got, 0);
    assert_non_null(inf);
    assert_int_equal(oc_inflater_feed(inf, gz, zn / 2, &err), 0);
    assert_int_equal(dirty_upper_vector_state(), 0);
    assert_int_equal(oc_inflater_feed(inf, gz + zn / 2, zn - zn / 2, &err), 0);
    assert_int_equal(dirty_upper_vector_state(), 0);
    assert_int_equal(oc_inflater_finish(inf, &err), 0);
    assert_int_equal(dirty_upper_vector_state(), 0);
    assert_int_equal(got, n);
    oc_inflater_free(inf);
    free(gz);
    free(data);
}

static void test_gzip_truncated(void **state)
{
    (void)state;
    NEED("gzip");
    size_t n = 3000, zn, mn;
    unsigned char *data = gen_data(n, 6);
    unsigned char *gz = compress_with("gzip -c", data, n, &zn);
    oc_inflater *inf = oc_inflater_new(OC_COMP_GZIP, discard, &(uint64_t){0}, 0);
    for (size_t cut = 0; cut < zn; cut++) {
        expect_fail(inf, gz, cut, FEED_WHOLE, OC_E_FORMAT, "truncated gzip stream");
        expect_fail(inf, gz, cut, 1, OC_E_FORMAT, "truncated gzip stream");
    }
    /* two members: only a cut at the member boundary is a complete stream */
    unsigned char *m = concat(gz, zn, gz, zn, &mn);
    for (size_t cut = zn; cut < mn; cut++) {
        oc_error err = {0};
        oc_inflater_reset(inf);
        int rc = feed_all(inf, m, cut, FEED_WHOLE, &err);
        if (cut == zn) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(err.code, OC_E_FORMAT);
            assert_non_null(strstr(err.msg, "truncated gzip stream: member 2"));
        }
    }
    oc_inflater_free(inf);
    free(m);
    free(gz);
    free(data);
}

static void test_gzip_corrupt(void **state)
{
    (void)state;
    NEED("gzip");
    size_t n = 20000, zn;
    unsigned char *data = gen_data(n, 7);
    unsigned char *gz = compress_with("gzip -c -n", data, n, &zn);
    oc_inflater *inf = oc_inflater_new(OC_COMP_GZIP, discard, &(uint64_t){0}, 0);
    /* Any damaged byte of the deflate data or trailer must be noticed, either
     * by the decoder, by the CRC32/ISIZE check, or as a truncated member. */
    for (size_t i = 10; i < zn; i++) {
        gz[i] ^= 0xff;
        expect_fail(inf, gz, zn, FEED_WHOLE, OC_E_FORMAT, "gzip");
        gz[i] ^= 0xff;
    }
    /* and the messages say what went wrong */
    gz[zn / 2] ^= 0x55;
    expect_fail(inf, gz, zn, 333, OC_E_FORMAT, "gzip");
    gz[zn / 2] ^= 0x55;

    /* not gzip at all */
    const char *text = "this is plain text, long enough to fill a gzip header or two";
    expect_fail(inf, (const unsigned char *)text, strlen(text), FEED_WHOLE, OC_E_FORMAT,
                "not a gzip stream: bad magic");
    oc_inflater_free(inf);
    free(gz);
    free(data);
}

static void test_gzip_trailing_data(void **state)
{
    (void)state;
    NEED("gzip");
    size_t n = 5000, zn, tn;
    unsigned char *data = gen_data(n, 8);
    unsigned char *gz = compress_with("gzip -c -n", data, n, &zn);
    oc_inflater *inf = oc_inflater_new(OC_COMP_GZIP, discard, &(uint64_t){0}, 0);

    static const unsigned char zeros[1024];
    static const struct {
        const char *tail;
        size_t len;
        const char *msg;
    } cases[] = {
        {"hello", 5, "trailing data"},
        {"\x1f", 1, "truncated gzip stream: member 2"},
        {"\x1f\x8b", 2, "truncated gzip stream: member 2"},
        {"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10, "truncated gzip stream: member 2"},
        {"\x1f\x8b\x09\x00\x00\x00\x00\x00\x00\x03\x00\x00", 12, "method"},
        {"\x1fX", 2, "trailing data"},
        {"\x00", 1, "trailing data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *t = concat(gz, zn, (const unsigned char *)cases[i].tail, cases[i].len, &tn);
        expect_fail(inf, t, tn, FEED_WHOLE, OC_E_FORMAT, cases[i].msg);
        expect_fail(inf, t, tn, 1, OC_E_FORMAT, cases[i].msg);
        free(t);
    }
    /* padding zeros (a tape-style pad) are refused as well: see inflate.c */
    unsigned char *t = concat(gz, zn, zeros, sizeof zeros, &tn);
    expect_fail(inf, t, tn, FEED_WHOLE, OC_E_FORMAT, "trailing data");
    expect_fail(inf, t, tn, FEED_RANDOM, OC_E_FORMAT, "trailing data");
    free(t);
    oc_inflater_free(inf);
    free(gz);
    free(data);
}

static void test_gzip_empty(void **state)
{
    (void)state;
    oc_inflater *inf = oc_inflater_new(OC_COMP_GZIP, discard, &(uint64_t){0}, 0);
    expect_fail(inf, NULL, 0, FEED_WHOLE, OC_E_FORMAT, "no data");
    oc_inflater_free(inf);
}

/* ---- limits ---- */

static void test_bomb_limit(void **state)
{
    (void)state;
    NEED("gzip");
    NEED("zstd");
    size_t n = 64 * MIB, gzn, zsn;
    unsigned char *zeros = calloc(1, n);
    assert_non_null(zeros);
    unsigned char *gz = compress_with("gzip -c -n -1", zeros, n, &gzn);
    unsigned char *zs = compress_with("zstd -q -c -3", zeros, n, &zsn);
    assert_true(gzn < n / 100);
    assert_true(zsn < n / 100);

    const unsigned char *streams[] = {gz, zs};
    size_t lens[] = {gzn, zsn};
    for (int s = 0; s < 2; s++) {
        for (int auto_ = 0; auto_ < 2; auto_++) {
            oc_comp comp = auto_ ? OC_COMP_AUTO : (s == 0 ? OC_COMP_GZIP : OC_COMP_ZSTD);
            uint64_t got = 0;
            oc_inflater *inf = oc_inflater_new(comp, discard, &got, 3 * MIB + 1);
            oc_error err = {0};
            assert_int_equal(feed_all(inf, streams[s], lens[s], FEED_RANDOM, &err), -1);
            assert_int_equal(err.code, OC_E_LIMIT);
            assert_non_null(strstr(err.msg, "limit of 3145729 bytes"));
            assert_true(got <= 3 * MIB + 1);
            /* the error sticks until reset */
            assert_int_equal(oc_inflater_feed(inf, "x", 1, &err), -1);
            assert_int_equal(oc_inflater_finish(inf, &err), -1);

            /* exactly at the limit is fine, one byte less is not */
            oc_inflater_free(inf);
            got = 0;
            inf = oc_inflater_new(comp, discard, &got, n);
            if (feed_all(inf, streams[s], lens[s], FEED_WHOLE, &err) != 0)
                fail_msg("%s at the limit: %s", oc_comp_name(comp), err.msg);
            assert_int_equal(got, n);
            oc_inflater_free(inf);
            inf = oc_inflater_new(comp, discard, &got, n - 1);
            assert_int_equal(feed_all(inf, streams[s], lens[s], FEED_WHOLE, &err), -1);
            assert_int_equal(err.code, OC_E_LIMIT);
            oc_inflater_free(inf);
        }
    }
    /* plain data obeys the limit too */
    uint64_t got = 0;
    oc_inflater *inf = oc_inflater_new(OC_COMP_NONE, discard, &got, 1000);
    oc_error err = {0};
    assert_int_equal(feed_all(inf, zeros, 1000, 10, &err), 0);
    oc_inflater_reset(inf);
    assert_int_equal(feed_all(inf, zeros, 1001, 10, &err), -1);
    assert_int_equal(err.code, OC_E_LIMIT);
    oc_inflater_free(inf);
    free(gz);
    free(zs);
    free(zeros);
}

/* ---- zstd ---- */

static void test_zstd(void **state)
{
    (void)state;
    NEED("zstd");
    size_t an = 4 * MIB + 3, bn = 100 * 1024, azn, bzn, zn, wn;
    unsigned char *a = gen_data(an, 9);
    unsigned char *b = gen_data(bn, 10);
    unsigned char *az = compress_with("zstd -q -c -3", a, an, &azn);
    unsigned char *bz = compress_with("zstd -q -c --no-check -19", b, bn, &bzn);
    expect_ok(OC_COMP_ZSTD, az, azn, FEED_WHOLE, a, an, OC_COMP_ZSTD);
    expect_ok(OC_COMP_ZSTD, az, azn, FEED_RANDOM, a, an, OC_COMP_ZSTD);
    expect_ok(OC_COMP_AUTO, az, azn, 3, a, an, OC_COMP_ZSTD);

    /* several frames, and a skippable frame in front */
    unsigned char skip[8 + 5] = {0x53, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
    size_t s1n;
    unsigned char *s1 = concat(skip, sizeof skip, bz, bzn, &s1n);
    unsigned char *z = concat(s1, s1n, az, azn, &zn);
    unsigned char *want = concat(b, bn, a, an, &wn);
    expect_ok(OC_COMP_ZSTD, z, zn, FEED_WHOLE, want, wn, OC_COMP_ZSTD);
    expect_ok(OC_COMP_AUTO, z, zn, FEED_RANDOM, want, wn, OC_COMP_ZSTD);
    expect_ok(OC_COMP_AUTO, s1, s1n, 1, b, bn, OC_COMP_ZSTD);
    free(s1);
    free(z);
    free(want);
    free(a);
    free(b);
    free(az);
    free(bz);
}

static void test_zstd_broken(void **state)
{
    (void)state;
    NEED("zstd");
    size_t n = 20000, zn, tn;
    unsigned char *data = gen_data(n, 11);
    unsigned char *zs = compress_with("zstd -q -c", data, n, &zn); /* with checksum */
    oc_inflater *inf = oc_inflater_new(OC_COMP_ZSTD, discard, &(uint64_t){0}, 0);

    expect_fail(inf, NULL, 0, FEED_WHOLE, OC_E_FORMAT, "no data");
    for (size_t cut = 1; cut < zn; cut++) {
        expect_fail(inf, zs, cut, FEED_WHOLE, OC_E_FORMAT, "zstd stream");
        if (cut % 7 == 0)
            expect_fail(inf, zs, cut, 1, OC_E_FORMAT, "truncated zstd stream");
    }
    for (size_t i = 0; i < zn; i++) {
        zs[i] ^= 0xff;
        expect_fail(inf, zs, zn, FEED_WHOLE, OC_E_FORMAT, "zstd stream");
        zs[i] ^= 0xff;
    }
    zs[zn - 1] ^= 1; /* the XXH64 checksum */
    expect_fail(inf, zs, zn, FEED_WHOLE, OC_E_FORMAT, "corrupt zstd stream");
    zs[zn - 1] ^= 1;

    unsigned char *t = concat(zs, zn, (const unsigned char *)"garbage", 7, &tn);
    expect_fail(inf, t, tn, FEED_WHOLE, OC_E_FORMAT, "corrupt zstd stream");
    free(t);
    const char *text = "plain text is not a zstd frame";
    expect_fail(inf, (const unsigned char *)text, strlen(text), FEED_WHOLE, OC_E_FORMAT,
                "corrupt zstd stream");
    oc_inflater_free(inf);
    free(zs);
    free(data);
}

/* ---- plain, sniffing, reuse ---- */

static void test_none_and_auto(void **state)
{
    (void)state;
    size_t n = 2 * MIB + 5;
    unsigned char *data = gen_data(n, 12);
    data[0] = 'p';
    expect_ok(OC_COMP_NONE, data, n, FEED_WHOLE, data, n, OC_COMP_NONE);
    expect_ok(OC_COMP_NONE, data, n, 1, data, n, OC_COMP_NONE);
    expect_ok(OC_COMP_AUTO, data, n, FEED_RANDOM, data, n, OC_COMP_NONE);
    expect_ok(OC_COMP_NONE, (const unsigned char *)"", 0, FEED_WHOLE, data, 0, OC_COMP_NONE);
    expect_ok(OC_COMP_AUTO, (const unsigned char *)"", 0, FEED_WHOLE, data, 0, OC_COMP_NONE);

    /* prefixes of magic numbers that end the stream are plain data */
    static const char *shorts[] = {"\x1f", "\x28", "\x28\xb5", "\x28\xb5\x2f", "\x5a\x2a\x4d"};
    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++) {
        const unsigned char *s = (const unsigned char *)shorts[i];
        expect_ok(OC_COMP_AUTO, s, strlen(shorts[i]), 1, s, strlen(shorts[i]), OC_COMP_NONE);
        expect_ok(OC_COMP_AUTO, s, strlen(shorts[i]), FEED_WHOLE, s, strlen(shorts[i]),
                  OC_COMP_NONE);
    }
    /* ... and so are near misses, whatever the chunking */
    static const char *near[] = {"\x1f\x8c rest", "\x28\xb5\x2f\xfe rest", "\x28\xb4",
                                 "\x50\x2a\x4d\x19xx"};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        const unsigned char *s = (const unsigned char *)near[i];
        size_t len = strlen(near[i]);
        expect_ok(OC_COMP_AUTO, s, len, 1, s, len, OC_COMP_NONE);
        expect_ok(OC_COMP_AUTO, s, len, 2, s, len, OC_COMP_NONE);
        expect_ok(OC_COMP_AUTO, s, len, FEED_WHOLE, s, len, OC_COMP_NONE);
    }
    free(data);
}

static void test_reset_switches_format(void **state)
{
    (void)state;
    NEED("gzip");
    NEED("zstd");
    size_t n = 300 * 1024, gzn, zsn;
    unsigned char *data = gen_data(n, 13);
    unsigned char *gz = compress_with("gzip -c", data, n, &gzn);
    unsigned char *zs = compress_with("zstd -q -c", data, n, &zsn);
    char want[OC_SHA256_HEX_LEN + 1], got[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(data, n, want);

    collector c;
    collector_init(&c);
    oc_inflater *inf = oc_inflater_new(OC_COMP_AUTO, collect, &c, 0);
    oc_error err = {0};
    for (int round = 0; round < 3; round++) {
        const unsigned char *s[] = {gz, zs, data};
        size_t l[] = {gzn, zsn, n};
        oc_comp k[] = {OC_COMP_GZIP, OC_COMP_ZSTD, OC_COMP_NONE};
        for (int i = 0; i < 3; i++) {
            oc_inflater_reset(inf);
            assert_int_equal(oc_inflater_comp(inf), OC_COMP_AUTO);
            assert_int_equal(feed_all(inf, s[i], l[i], FEED_RANDOM, &err), 0);
            assert_int_equal(oc_inflater_comp(inf), k[i]);
            oc_sha256_final_hex(c.h, got);
            assert_string_equal(got, want);
            /* finished: more input is refused */
            assert_int_equal(oc_inflater_feed(inf, "x", 1, &err), -1);
            assert_int_equal(err.code, OC_E_USAGE);
        }
        /* a failure in the middle does not poison the next stream */
        oc_inflater_reset(inf);
        assert_int_equal(feed_all(inf, gz, gzn / 2, FEED_WHOLE, &err), -1);
        oc_sha256_reset(c.h);
    }
    oc_inflater_free(inf);
    oc_sha256_free(c.h);
    free(gz);
    free(zs);
    free(data);
}

static void test_sink_error(void **state)
{
    (void)state;
    NEED("gzip");
    size_t n = 3 * MIB, gzn;
    unsigned char *data = gen_data(n, 14);
    unsigned char *gz = compress_with("gzip -c", data, n, &gzn);
    oc_comp comps[] = {OC_COMP_GZIP, OC_COMP_NONE};
    const unsigned char *ins[] = {gz, data};
    size_t lens[] = {gzn, n};
    for (int i = 0; i < 2; i++) {
        collector c;
        collector_init(&c);
        c.fail_code = OC_E_NOSPACE;
        oc_inflater *inf = oc_inflater_new(comps[i], collect, &c, 0);
        oc_error err = {0};
        assert_int_equal(feed_all(inf, ins[i], lens[i], 65536, &err), -1);
        assert_int_equal(err.code, OC_E_NOSPACE);
        assert_string_equal(err.msg, "sink refused");
        assert_int_equal(c.calls, 1);
        oc_inflater_free(inf);
        oc_sha256_free(c.h);
    }
    /* small output reaches the sink only at finish, and a failure there counts */
    collector c;
    collector_init(&c);
    c.fail_code = OC_E_IO;
    oc_inflater *inf = oc_inflater_new(OC_COMP_NONE, collect, &c, 0);
    oc_error err = {0};
    assert_int_equal(oc_inflater_feed(inf, "abc", 3, &err), 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(oc_inflater_finish(inf, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    oc_inflater_free(inf);
    oc_sha256_free(c.h);
    free(gz);
    free(data);
}

static void test_media_types(void **state)
{
    (void)state;
    static const struct {
        const char *mt;
        oc_comp c;
    } cases[] = {
        {"application/vnd.oci.image.layer.v1.tar+gzip", OC_COMP_GZIP},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", OC_COMP_GZIP},
        {"application/vnd.docker.image.rootfs.diff.tar.gzip", OC_COMP_GZIP},
        {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", OC_COMP_GZIP},
        {"application/vnd.oci.image.layer.v1.tar+zstd", OC_COMP_ZSTD},
        {"application/vnd.oci.image.layer.v1.tar", OC_COMP_NONE},
        {"application/vnd.docker.image.rootfs.diff.tar", OC_COMP_NONE},
        {"application/vnd.oci.image.layer.v1.tar+gzip+encrypted", OC_COMP_AUTO},
        {"application/octet-stream", OC_COMP_AUTO},
        {"", OC_COMP_AUTO},
        {NULL, OC_COMP_AUTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (oc_comp_from_media_type(cases[i].mt) != cases[i].c)
            fail_msg("%s -> %s, wanted %s", cases[i].mt ? cases[i].mt : "(null)",
                     oc_comp_name(oc_comp_from_media_type(cases[i].mt)), oc_comp_name(cases[i].c));
    }
    assert_string_equal(oc_comp_name(OC_COMP_GZIP), "gzip");
    assert_string_equal(oc_comp_name(OC_COMP_ZSTD), "zstd");
    assert_string_equal(oc_comp_name(OC_COMP_NONE), "none");
    assert_string_equal(oc_comp_name(OC_COMP_AUTO), "auto");
    assert_null(oc_inflater_new((oc_comp)42, discard, NULL, 0));
    assert_null(oc_inflater_new(OC_COMP_GZIP, NULL, NULL, 0));
    oc_inflater_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip_large),
        cmocka_unit_test(test_gzip_multi_member),
        cmocka_unit_test(test_gzip_header_fields),
        cmocka_unit_test(test_gzip_trailer_checked),
        cmocka_unit_test(test_gzip_leaves_vector_state_clean),
        cmocka_unit_test(test_gzip_truncated),
        cmocka_unit_test(test_gzip_corrupt),
        cmocka_unit_test(test_gzip_trailing_data),
        cmocka_unit_test(test_gzip_empty),
        cmocka_unit_test(test_bomb_limit),
        cmocka_unit_test(test_zstd),
        cmocka_unit_test(test_zstd_broken),
        cmocka_unit_test(test_none_and_auto),
        cmocka_unit_test(test_reset_switches_format),
        cmocka_unit_test(test_sink_error),
        cmocka_unit_test(test_media_types),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
