/* retry.h - when to try a failed request again and how long to wait.
 *
 * Exponential backoff with full jitter, capped; a server's Retry-After
 * (delta seconds or an HTTP-date) is honoured, up to a cap. Which failures
 * are worth a retry is decided here too, so every request kind agrees. */
#ifndef OC_SCHED_RETRY_H
#define OC_SCHED_RETRY_H

#include <stdint.h>
#include <time.h>

typedef struct oc_retry_policy {
    int max_attempts;            /* total tries including the first; default 5 */
    uint64_t base_ms;            /* first backoff; default 250 */
    uint64_t max_ms;             /* backoff cap; default 8000 */
    uint64_t retry_after_cap_ms; /* longest Retry-After obeyed; default 60000 */
} oc_retry_policy;

void oc_retry_policy_default(oc_retry_policy *p);

/* 1 when an HTTP status is transient (408, 425, 429, 500, 502, 503, 504). */
int oc_retry_status_is_transient(long status);

/* Parse Retry-After: "120" or "Fri, 31 Dec 1999 23:59:59 GMT". Returns 0 and
 * the delay in ms from now (0 for a date in the past), -1 if unparsable. */
int oc_retry_after_parse(const char *value, time_t now, uint64_t *delay_ms);

/* Delay before attempt number `attempt` (2 for the first retry): a uniform
 * random value in [0, min(max, base * 2^(attempt-2))] ("full jitter"), at
 * least 1/4 of that ceiling; when retry_after_ms > 0 it wins, capped. rng
 * is the caller's jitter state (one per engine, see oc_rng_next). */
uint64_t oc_retry_delay_ms(const oc_retry_policy *p, int attempt, uint64_t retry_after_ms,
                           uint64_t *rng);

/* The next value of a splitmix64 sequence: fast, statistically good,
 * not cryptographic; state is any 64-bit seed. */
uint64_t oc_rng_next(uint64_t *state);

#endif
