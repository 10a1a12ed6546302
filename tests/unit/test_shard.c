/* test_shard.c - splitting a list over N processes: K/N parsing, every
 * reference in exactly one shard, shards of even size, tags that differ
 * only in high bits of a byte spread too (the finaliser), and one shard for
 * one image whatever way it is spelled. (The hash itself is checked against
 * an independent implementation in integration/mirror_shard.sh.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/image/shard.h"

static void test_parse(void **state)
{
    (void)state;
    oc_shard s;
    oc_error err;
    assert_int_equal(oc_shard_parse("1/4", "--shard", &s, &err), 0);
    assert_int_equal(s.k, 1);
    assert_int_equal(s.n, 4);
    assert_int_equal(oc_shard_parse("4/4", "--shard", &s, &err), 0);
    assert_int_equal(oc_shard_parse("1/1", "--shard", &s, &err), 0);
    const char *bad[] = {"0/4", "5/4",  "1/0",  "4",    "/4",      "1/",
                         "a/4", "1/4x", "-1/4", "1/-4", "1/65537", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oc_error_clear(&err);
        if (oc_shard_parse(bad[i], "--shard", &s, &err) == 0)
            fail_msg("\"%s\" parsed", bad[i]);
        assert_int_equal(err.code, OC_E_USAGE);
        assert_non_null(strstr(err.msg, "--shard"));
    }
}

static void test_split(void **state)
{
    (void)state;
    enum { N = 4, REFS = 2187 };
    unsigned count[N] = {0};
    for (int i = 0; i < REFS; i++) {
        /* tags written with the digits 0, 4 and 8 only, which share their
         * low two bits: FNV-1a alone puts all of them in one shard of 4 */
        char key[128] = "registry.example/team/app:1.";
        size_t len = strlen(key);
        for (int d = 0, v = i; d < 7; d++, v /= 3)
            key[len++] = "048"[v % 3];
        key[len] = '\0';
        int owners = 0;
        for (unsigned k = 1; k <= N; k++) {
            oc_shard s = {k, N};
            if (oc_shard_takes(&s, key)) {
                owners++;
                count[k - 1]++;
            }
        }
        assert_int_equal(owners, 1);
    }
    for (int k = 0; k < N; k++) {
        if (count[k] < REFS / N * 8 / 10 || count[k] > REFS / N * 12 / 10)
            fail_msg("shard %d of %d has %u of %d references", k + 1, N, count[k], REFS);
    }
    oc_shard none = {0, 0}, one = {1, 1};
    assert_true(oc_shard_takes(&none, "anything"));
    assert_true(oc_shard_takes(&one, "anything"));
    assert_true(oc_shard_takes(NULL, "anything"));
}

static void test_normalised(void **state)
{
    (void)state;
    const char *spellings[] = {"busybox", "busybox:latest", "docker.io/library/busybox:latest",
                               "index.docker.io/library/busybox"};
    oc_error err;
    for (unsigned n = 2; n <= 7; n++) {
        for (unsigned k = 1; k <= n; k++) {
            oc_shard s = {k, n};
            int first = -1;
            for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
                oc_ref ref;
                assert_int_equal(oc_ref_parse(&ref, spellings[i], NULL, &err), 0);
                int t = oc_shard_takes_ref(&s, &ref);
                oc_ref_free(&ref);
                if (first < 0)
                    first = t;
                assert_int_equal(t, first);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_normalised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
