/* retry.c - backoff, jitter and Retry-After (see retry.h). */
#include "sched/retry.h"

#include <stdlib.h>
#include <string.h>

void oc_retry_policy_default(oc_retry_policy *p)
{
    p->max_attempts = 5;
    p->base_ms = 250;
    p->max_ms = 8000;
    p->retry_after_cap_ms = 60000;
}

int oc_retry_status_is_transient(long status)
{
    switch (status) {
    case 408:
    case 425:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return 1;
    default:
        return 0;
    }
}

int oc_retry_after_parse(const char *value, time_t now, uint64_t *delay_ms)
{
    if (!value)
        return -1;
    while (*value == ' ')
        value++;
    if (*value >= '0' && *value <= '9') {
        char *end = NULL;
        unsigned long long s = strtoull(value, &end, 10);
        while (end && *end == ' ')
            end++;
        if (!end || *end != '\0')
            return -1;
        if (s > 86400ULL * 365)
            s = 86400ULL * 365;
        *delay_ms = (uint64_t)s * 1000;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end != '\0')
        return -1;
    time_t when = timegm(&tm);
    if (when == (time_t)-1)
        return -1;
    *delay_ms = when > now ? (uint64_t)(when - now) * 1000 : 0;
    return 0;
}

uint64_t oc_retry_delay_ms(const oc_retry_policy *p, int attempt, uint64_t retry_after_ms,
                           uint64_t *rng)
{
    if (retry_after_ms > 0)
        return retry_after_ms < p->retry_after_cap_ms ? retry_after_ms : p->retry_after_cap_ms;
    int shift = attempt - 2;
    if (shift < 0)
        shift = 0;
    if (shift > 20)
        shift = 20;
    /* base << shift, saturating at max_ms (no overflow whatever base is) */
    uint64_t ceiling = p->base_ms > (p->max_ms >> shift) ? p->max_ms : p->base_ms << shift;
    if (ceiling > p->max_ms)
        ceiling = p->max_ms;
    uint64_t floor = ceiling / 4;
    /* jitter need not be cryptographic: the caller's splitmix64 state */
    uint64_t span = ceiling - floor + 1;
    return floor + oc_rng_next(rng) % span;
}

uint64_t oc_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
