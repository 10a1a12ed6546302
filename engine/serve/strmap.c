/* strmap.c - the string-keyed hash table of strmap.h: FNV-1a hashes,
 * linear probing, the table doubled when it is 2/3 full. */
#include "engine/serve/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    char *key; /* NULL: empty */
    uint64_t hash;
    void *value;
} slot;

struct oc_strmap {
    slot *slots;
    size_t cap; /* a power of two */
    size_t count;
};

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

oc_strmap *oc_strmap_new(void)
{
    oc_strmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void oc_strmap_clear(oc_strmap *m, void (*free_value)(void *))
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        if (free_value)
            free_value(m->slots[i].value);
        free(m->slots[i].key);
        m->slots[i].key = NULL;
    }
    m->count = 0;
}

void oc_strmap_free(oc_strmap *m, void (*free_value)(void *))
{
    if (!m)
        return;
    oc_strmap_clear(m, free_value);
    free(m->slots);
    free(m);
}

static slot *find(const oc_strmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
            return s;
    }
}

static int grow(oc_strmap *m)
{
    size_t cap = m->cap * 2;
    slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    slot *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key)
            *find(m, old[i].key, old[i].hash) = old[i];
    free(old);
    return 0;
}

int oc_strmap_put(oc_strmap *m, const char *key, void *value, void **old)
{
    if (old)
        *old = NULL;
    if ((m->count + 1) * 3 > m->cap * 2 && grow(m) != 0)
        return -1;
    uint64_t h = hash_of(key);
    slot *s = find(m, key, h);
    if (s->key) {
        if (old)
            *old = s->value;
        s->value = value;
        return 0;
    }
    s->key = strdup(key);
    if (!s->key)
        return -1;
    s->hash = h;
    s->value = value;
    m->count++;
    return 0;
}

void *oc_strmap_get(const oc_strmap *m, const char *key)
{
    if (!m)
        return NULL;
    const slot *s = find(m, key, hash_of(key));
    return s->key ? s->value : NULL;
}

size_t oc_strmap_count(const oc_strmap *m)
{
    return m ? m->count : 0;
}

int oc_strmap_foreach(const oc_strmap *m, oc_strmap_visit fn, void *opaque)
{
    if (!m)
        return 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        int r = fn(opaque, m->slots[i].key, m->slots[i].value);
        if (r)
            return r;
    }
    return 0;
}
