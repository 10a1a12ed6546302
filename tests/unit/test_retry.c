/* test_retry.c - retry policy (sched/retry.h): which HTTP statuses are
 * transient, Retry-After parsing (delta seconds, an IMF-fixdate in the future
 * or the past, garbage), and the backoff delay: for attempt n it lies in
 * [ceiling/4, ceiling] with ceiling = min(max_ms, base_ms * 2^(n-2)), it
 * really varies (full jitter), and a Retry-After wins but is capped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched/retry.h"

/* the jitter state the engine keeps per engine */
static uint64_t test_rng = 1;

static void test_policy_default(void **state)
{
    (void)state;
    oc_retry_policy p;
    memset(&p, 0xab, sizeof p);
    oc_retry_policy_default(&p);
    assert_int_equal(p.max_attempts, 5);
    assert_int_equal(p.base_ms, 250);
    assert_int_equal(p.max_ms, 8000);
    assert_int_equal(p.retry_after_cap_ms, 60000);
}

static void test_transient_statuses(void **state)
{
    (void)state;
    static const long yes[] = {408, 425, 429, 500, 502, 503, 504};
    static const long no[] = {0,   100, 200, 201, 204, 206, 301, 302, 304, 307, 400, 401,
                              403, 404, 405, 409, 416, 418, 499, 501, 505, 599, -1};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!oc_retry_status_is_transient(yes[i]))
            fail_msg("%ld should be transient", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (oc_retry_status_is_transient(no[i]))
            fail_msg("%ld should not be transient", no[i]);
}

/* ---- Retry-After ---- */

static void test_retry_after_seconds(void **state)
{
    (void)state;
    time_t now = 1700000000;
    uint64_t ms = 12345;
    assert_int_equal(oc_retry_after_parse("120", now, &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(oc_retry_after_parse("0", now, &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(oc_retry_after_parse("  7  ", now, &ms), 0);
    assert_int_equal(ms, 7000);
    assert_int_equal(oc_retry_after_parse("1", now, &ms), 0);
    assert_int_equal(ms, 1000);
    /* absurd values are bounded (a year), never wrap around */
    assert_int_equal(oc_retry_after_parse("99999999999999999999999999", now, &ms), 0);
    assert_true(ms > 0);
    assert_true(ms <= 86400ULL * 365 * 1000);
    assert_int_equal(oc_retry_after_parse("18446744073709551615", now, &ms), 0);
    assert_true(ms > 0 && ms <= 86400ULL * 365 * 1000);
}

static void fmt_http_date(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void test_retry_after_date(void **state)
{
    (void)state;
    uint64_t ms = 1;
    /* the RFC's example date, with "now" 59 seconds before it */
    time_t when = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(oc_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", when - 59, &ms), 0);
    assert_int_equal(ms, 59000);
    /* the same date seen from after it: in the past -> 0 */
    ms = 1;
    assert_int_equal(oc_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", when + 3600, &ms), 0);
    assert_int_equal(ms, 0);
    /* exactly now -> 0 */
    ms = 1;
    assert_int_equal(oc_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", when, &ms), 0);
    assert_int_equal(ms, 0);
    /* Retry-After from "now" in real time, both ways */
    time_t now = time(NULL);
    char buf[64];
    fmt_http_date(now + 300, buf, sizeof buf);
    assert_int_equal(oc_retry_after_parse(buf, now, &ms), 0);
    assert_int_equal(ms, 300000);
    fmt_http_date(now - 300, buf, sizeof buf);
    ms = 1;
    assert_int_equal(oc_retry_after_parse(buf, now, &ms), 0);
    assert_int_equal(ms, 0);
    /* a date far away: a leap-year day, end of a year */
    assert_int_equal(oc_retry_after_parse("Thu, 29 Feb 2024 00:00:10 GMT", 1709164800, &ms), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(oc_retry_after_parse("Fri, 31 Dec 1999 23:59:59 GMT", 946684798, &ms), 0);
    assert_int_equal(ms, 1000);
}

static void test_retry_after_garbage(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "   ",
        "soon",
        "12abc",
        "1.5",
        "-5",
        "+5",
        "0x10",
        "120 seconds",
        "Sun, 06 Nov 1994 08:49:37",          /* no zone */
        "Sun, 06 Nov 1994 08:49:37 GMT junk", /* trailing text */
        "Sun, 06 Nov 1994 25:61:99 GMT",      /* impossible time */
        "Sun, 32 Nov 1994 08:49:37 GMT",      /* impossible day */
        "Sun, 06 Foo 1994 08:49:37 GMT",      /* not a month */
        "tomorrow at noon",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 4242;
        if (oc_retry_after_parse(bad[i], 1700000000, &ms) != -1)
            fail_msg("\"%s\" parsed as %llu ms, wanted -1", bad[i], (unsigned long long)ms);
        assert_int_equal(ms, 4242); /* untouched on failure */
    }
    uint64_t ms = 4242;
    assert_int_equal(oc_retry_after_parse(NULL, 1700000000, &ms), -1);
    assert_int_equal(ms, 4242);
}

/* ---- backoff ---- */

static uint64_t ceiling_for(const oc_retry_policy *p, int attempt)
{
    int shift = attempt - 2 < 0 ? 0 : attempt - 2;
    uint64_t c = p->base_ms;
    for (int i = 0; i < shift && c < p->max_ms; i++)
        c *= 2;
    return c < p->max_ms ? c : p->max_ms;
}

static void check_bounds(const oc_retry_policy *p, int attempts)
{
    for (int attempt = 1; attempt <= attempts; attempt++) {
        uint64_t ceil = ceiling_for(p, attempt);
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < 4000; i++) {
            uint64_t d = oc_retry_delay_ms(p, attempt, 0, &test_rng);
            if (d < ceil / 4 || d > ceil)
                fail_msg("attempt %d: delay %llu outside [%llu, %llu]", attempt,
                         (unsigned long long)d, (unsigned long long)(ceil / 4),
                         (unsigned long long)ceil);
            if (d < lo)
                lo = d;
            if (d > hi)
                hi = d;
        }
        /* full jitter: the values spread over most of the range */
        if (ceil >= 16) {
            uint64_t span = ceil - ceil / 4;
            if (hi - lo < span / 2)
                fail_msg("attempt %d: delays only in [%llu, %llu] of [%llu, %llu]", attempt,
                         (unsigned long long)lo, (unsigned long long)hi,
                         (unsigned long long)(ceil / 4), (unsigned long long)ceil);
        }
    }
}

static void test_delay_bounds_default(void **state)
{
    (void)state;
    test_rng = 1;
    oc_retry_policy p;
    oc_retry_policy_default(&p);
    check_bounds(&p, 12);
    /* the ceilings of the default policy, spelled out */
    assert_int_equal(ceiling_for(&p, 2), 250);
    assert_int_equal(ceiling_for(&p, 3), 500);
    assert_int_equal(ceiling_for(&p, 4), 1000);
    assert_int_equal(ceiling_for(&p, 7), 8000);
    assert_int_equal(ceiling_for(&p, 8), 8000);
}

static void test_delay_bounds_custom(void **state)
{
    (void)state;
    test_rng = 2;
    oc_retry_policy p = {
        .max_attempts = 10, .base_ms = 100, .max_ms = 1000, .retry_after_cap_ms = 5000};
    check_bounds(&p, 10);
    /* the cap is not a power-of-two multiple of base */
    for (int i = 0; i < 1000; i++) {
        uint64_t d = oc_retry_delay_ms(&p, 6, 0, &test_rng); /* 100 * 16 = 1600 -> capped at 1000 */
        assert_true(d >= 250 && d <= 1000);
    }
    /* a tiny base: ceiling 1 or 2 ms, floor 0 */
    oc_retry_policy t = {.max_attempts = 5, .base_ms = 1, .max_ms = 2, .retry_after_cap_ms = 10};
    check_bounds(&t, 5);
    /* base 0: no delay at all */
    oc_retry_policy z = {.max_attempts = 5, .base_ms = 0, .max_ms = 0, .retry_after_cap_ms = 0};
    for (int a = 1; a < 6; a++)
        assert_int_equal(oc_retry_delay_ms(&z, a, 0, &test_rng), 0);
}

/* Large attempt numbers must neither overflow the shift nor exceed max_ms. */
static void test_delay_large_attempts(void **state)
{
    (void)state;
    test_rng = 3;
    oc_retry_policy p;
    oc_retry_policy_default(&p);
    int attempts[] = {20, 21, 22, 30, 63, 64, 65, 100, 1000, 2147483647};
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
        for (int k = 0; k < 100; k++) {
            uint64_t d = oc_retry_delay_ms(&p, attempts[i], 0, &test_rng);
            if (d < p.max_ms / 4 || d > p.max_ms)
                fail_msg("attempt %d: delay %llu", attempts[i], (unsigned long long)d);
        }
    }
    /* attempt 1 and below behave as the first retry */
    for (int k = 0; k < 200; k++) {
        uint64_t d0 = oc_retry_delay_ms(&p, 0, 0, &test_rng);
        uint64_t d1 = oc_retry_delay_ms(&p, 1, 0, &test_rng);
        assert_true(d0 >= 62 && d0 <= 250);
        assert_true(d1 >= 62 && d1 <= 250);
    }
    /* a base so large that base << 20 would overflow 64 bits */
    oc_retry_policy big = {.max_attempts = 5,
                           .base_ms = (uint64_t)1 << 50,
                           .max_ms = (uint64_t)1 << 52,
                           .retry_after_cap_ms = 1000};
    for (int a = 2; a < 40; a++) {
        uint64_t d = oc_retry_delay_ms(&big, a, 0, &test_rng);
        if (d > big.max_ms)
            fail_msg("attempt %d: delay %llu above max %llu", a, (unsigned long long)d,
                     (unsigned long long)big.max_ms);
        /* from attempt 4 on the ceiling is max_ms, never a wrapped product */
        if (a >= 4 && d < big.max_ms / 4)
            fail_msg("attempt %d: delay %llu below max/4 (the backoff wrapped)", a,
                     (unsigned long long)d);
    }
}

static void test_retry_after_wins_and_is_capped(void **state)
{
    (void)state;
    test_rng = 4;
    oc_retry_policy p;
    oc_retry_policy_default(&p);
    /* Retry-After wins over the backoff, whatever the attempt */
    for (int a = 2; a < 10; a++) {
        assert_int_equal(oc_retry_delay_ms(&p, a, 3000, &test_rng), 3000);
        assert_int_equal(oc_retry_delay_ms(&p, a, 1, &test_rng), 1);
        /* even when longer than the backoff's max */
        assert_int_equal(oc_retry_delay_ms(&p, a, 30000, &test_rng), 30000);
        /* and capped */
        assert_int_equal(oc_retry_delay_ms(&p, a, 60000, &test_rng), 60000);
        assert_int_equal(oc_retry_delay_ms(&p, a, 60001, &test_rng), 60000);
        assert_int_equal(oc_retry_delay_ms(&p, a, 86400000, &test_rng), 60000);
        assert_int_equal(oc_retry_delay_ms(&p, a, UINT64_MAX, &test_rng), 60000);
    }
    oc_retry_policy small = p;
    small.retry_after_cap_ms = 500;
    assert_int_equal(oc_retry_delay_ms(&small, 2, 120000, &test_rng), 500);
    /* parse + delay together, as the registry client uses them */
    uint64_t ra = 0;
    assert_int_equal(oc_retry_after_parse("120", 0, &ra), 0);
    assert_int_equal(oc_retry_delay_ms(&p, 3, ra, &test_rng), 60000);
    assert_int_equal(oc_retry_after_parse("2", 0, &ra), 0);
    assert_int_equal(oc_retry_delay_ms(&p, 3, ra, &test_rng), 2000);
    /* Retry-After 0 (or a past date): the ordinary backoff applies */
    for (int k = 0; k < 200; k++) {
        uint64_t d = oc_retry_delay_ms(&p, 3, 0, &test_rng);
        assert_true(d >= 125 && d <= 500);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_default),
        cmocka_unit_test(test_transient_statuses),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_date),
        cmocka_unit_test(test_retry_after_garbage),
        cmocka_unit_test(test_delay_bounds_default),
        cmocka_unit_test(test_delay_bounds_custom),
        cmocka_unit_test(test_delay_large_attempts),
        cmocka_unit_test(test_retry_after_wins_and_is_capped),
    };
    /* OCCY_TEST_FILTER=test_x runs a subset (handy under valgrind) */
    if (getenv("OCCY_TEST_FILTER"))
        cmocka_set_test_filter(getenv("OCCY_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
