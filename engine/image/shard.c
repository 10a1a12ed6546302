/* shard.c - which entries of a list are this process's (see shard.h). */
#include "engine/image/shard.h"

#include <errno.h>
#include <stdlib.h>

#define SHARDS_MAX 65536

int oc_shard_parse(const char *text, const char *what, oc_shard *s, oc_error *err)
{
    char *end = NULL;
    errno = 0;
    unsigned long k = strtoul(text, &end, 10);
    unsigned long n = 0;
    int ok = end != text && *end == '/' && text[0] != '-' && errno == 0;
    if (ok) {
        const char *ns = end + 1;
        n = strtoul(ns, &end, 10);
        ok = end != ns && *end == '\0' && ns[0] != '-' && errno == 0;
    }
    if (!ok || n < 1 || n > SHARDS_MAX || k < 1 || k > n) {
        oc_error_set(err, OC_E_USAGE, "%s wants K/N with 1 <= K <= N <= %d, not \"%s\"", what,
                     SHARDS_MAX, text);
        return -1;
    }
    s->k = (unsigned)k;
    s->n = (unsigned)n;
    return 0;
}

uint64_t oc_shard_hash(const char *bytes)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)bytes; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

int oc_shard_takes(const oc_shard *s, const char *key)
{
    if (!s || s->n <= 1)
        return 1;
    return oc_shard_hash(key) % s->n == s->k - 1;
}

int oc_shard_takes_ref(const oc_shard *s, const oc_ref *ref)
{
    if (!s || s->n <= 1)
        return 1;
    char *key = oc_ref_string(ref);
    /* out of memory: take it (the run will fail on memory soon anyway, and
     * an entry taken twice is safe where one taken by nobody is not) */
    int takes = key ? oc_shard_takes(s, key) : 1;
    free(key);
    return takes;
}
