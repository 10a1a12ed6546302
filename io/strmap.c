/* strmap.c - string-keyed hash map (see strmap.h). */
#include "io/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *key; /* NULL: empty */
    uint64_t hash;
    void *value;
} entry;

struct oc_strmap {
    entry *slots;
    size_t cap; /* a power of two */
    size_t used;
    void (*free_value)(void *);
};

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

oc_strmap *oc_strmap_new(void (*free_value)(void *))
{
    oc_strmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->free_value = free_value;
    return m;
}

void oc_strmap_clear(oc_strmap *m, void (*free_value)(void *))
{
    if (!free_value)
        free_value = m->free_value;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        free(m->slots[i].key);
        if (free_value)
            free_value(m->slots[i].value);
        m->slots[i].key = NULL;
        m->slots[i].value = NULL;
    }
    m->used = 0;
}

void oc_strmap_free_with(oc_strmap *m, void (*free_value)(void *))
{
    if (!m)
        return;
    oc_strmap_clear(m, free_value);
    free(m->slots);
    free(m);
}

void oc_strmap_free(oc_strmap *m)
{
    oc_strmap_free_with(m, NULL);
}

static entry *find(const oc_strmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        entry *e = &m->slots[i];
        if (!e->key || (e->hash == h && strcmp(e->key, key) == 0))
            return e;
    }
}

void *oc_strmap_get(const oc_strmap *m, const char *key)
{
    entry *e = find(m, key, hash_of(key));
    return e->key ? e->value : NULL;
}

int oc_strmap_has(const oc_strmap *m, const char *key)
{
    return find(m, key, hash_of(key))->key != NULL;
}

static int grow(oc_strmap *m)
{
    size_t cap = m->cap * 2;
    entry *fresh = calloc(cap, sizeof *fresh);
    if (!fresh)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (fresh[j].key)
            j = (j + 1) & (cap - 1);
        fresh[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = fresh;
    m->cap = cap;
    return 0;
}

int oc_strmap_put(oc_strmap *m, const char *key, void *value, void **old)
{
    if (old)
        *old = NULL;
    uint64_t h = hash_of(key);
    entry *e = find(m, key, h);
    if (e->key) {
        if (old)
            *old = e->value;
        e->value = value;
        return 0;
    }
    if ((m->used + 1) * 2 > m->cap) {
        if (grow(m) != 0)
            return -1;
        e = find(m, key, h);
    }
    char *copy = strdup(key);
    if (!copy)
        return -1;
    e->key = copy;
    e->hash = h;
    e->value = value;
    m->used++;
    return 0;
}

int oc_strmap_set(oc_strmap *m, const char *key, void *value)
{
    void *old = NULL;
    if (oc_strmap_put(m, key, value, &old) != 0)
        return -1;
    if (old && old != value && m->free_value)
        m->free_value(old);
    return 0;
}

size_t oc_strmap_count(const oc_strmap *m)
{
    return m->used;
}

void oc_strmap_foreach(const oc_strmap *m, void (*fn)(const char *key, void *value, void *opaque),
                       void *opaque)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            fn(m->slots[i].key, m->slots[i].value, opaque);
}
