/* once.c - in-flight deduplication table (see once.h). An open-addressing
 * hash table of keys; each slot holds the state and a FIFO of waiters. */
#include "sched/once.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_EMPTY = 0, SLOT_RUNNING, SLOT_DONE, SLOT_GONE };

typedef struct slot {
    int state;
    char *key;
    char *value;
    oc_queue waiters; /* FIFO; its nodes point at this slot: fixed up when slots move */
} slot;

struct oc_once {
    slot *slots;
    size_t cap;  /* power of two */
    size_t used; /* RUNNING + DONE + GONE */
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

oc_once *oc_once_new(void)
{
    oc_once *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cap = 64;
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return NULL;
    }
    return t;
}

void oc_once_free(oc_once *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slots[i].key);
        free(t->slots[i].value);
    }
    free(t->slots);
    free(t);
}

/* The slot holding key, or NULL. */
static slot *find(oc_once *t, const char *key)
{
    size_t mask = t->cap - 1;
    for (size_t i = hash_key(key) & mask, n = 0; n < t->cap; i = (i + 1) & mask, n++) {
        slot *s = &t->slots[i];
        if (s->state == SLOT_EMPTY)
            return NULL;
        if (s->state != SLOT_GONE && strcmp(s->key, key) == 0)
            return s;
    }
    return NULL;
}

static int grow(oc_once *t)
{
    size_t old_cap = t->cap;
    slot *old = t->slots;
    slot *fresh = calloc(old_cap * 2, sizeof *fresh);
    if (!fresh)
        return -1;
    t->slots = fresh;
    t->cap = old_cap * 2;
    t->used = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].state == SLOT_RUNNING || old[i].state == SLOT_DONE) {
            size_t mask = t->cap - 1;
            size_t j = hash_key(old[i].key) & mask;
            while (t->slots[j].state != SLOT_EMPTY)
                j = (j + 1) & mask;
            t->slots[j] = old[i];
            oc_queue_init(&t->slots[j].waiters);
            oc_queue_move(&old[i].waiters, &t->slots[j].waiters);
            t->used++;
        } else {
            free(old[i].key);
            free(old[i].value);
        }
    }
    free(old);
    return 0;
}

static slot *insert(oc_once *t, const char *key)
{
    if ((t->used + 1) * 2 > t->cap && grow(t) != 0)
        return NULL;
    size_t mask = t->cap - 1;
    size_t i = hash_key(key) & mask;
    while (t->slots[i].state == SLOT_RUNNING || t->slots[i].state == SLOT_DONE)
        i = (i + 1) & mask;
    slot *s = &t->slots[i];
    char *copy = strdup(key);
    if (!copy)
        return NULL;
    if (s->state == SLOT_EMPTY)
        t->used++;
    free(s->key);
    free(s->value);
    memset(s, 0, sizeof *s);
    oc_queue_init(&s->waiters);
    s->key = copy;
    s->state = SLOT_RUNNING;
    return s;
}

int oc_once_claim(oc_once *t, const char *key, oc_once_waiter *w, const char **value)
{
    slot *s = find(t, key);
    if (s && s->state == SLOT_DONE) {
        *value = s->value;
        return OC_ONCE_DONE;
    }
    if (s) {
        oc_queue_insert_tail(&s->waiters, &w->node);
        return OC_ONCE_WAIT;
    }
    return insert(t, key) ? OC_ONCE_OWNER : -1;
}

const char *oc_once_peek(oc_once *t, const char *key)
{
    slot *s = find(t, key);
    return s && s->state == SLOT_DONE ? s->value : NULL;
}

void oc_once_withdraw(oc_once *t, const char *key, oc_once_waiter *w)
{
    slot *s = find(t, key);
    if (!s)
        return;
    oc_queue *q;
    OC_QUEUE_FOREACH(q, &s->waiters)
    {
        if (q == &w->node) {
            oc_queue_remove(q);
            return;
        }
    }
}

void oc_once_complete(oc_once *t, const char *key, int ok, const char *value, const oc_error *err)
{
    slot *s = find(t, key);
    if (!s)
        return;
    oc_queue waiters;
    oc_queue_init(&waiters);
    oc_queue_move(&s->waiters, &waiters);
    const char *v = NULL;
    if (ok) {
        s->state = SLOT_DONE;
        s->value = value ? strdup(value) : NULL;
        v = s->value;
    } else {
        s->state = SLOT_GONE; /* forgotten: the next claim becomes the owner */
        free(s->key);
        s->key = NULL;
    }
    /* A waiter's callback may claim again, which may move slots: hold on to
     * our own copy of the value. */
    char *vcopy = v ? strdup(v) : NULL;
    oc_queue *n;
    while ((n = oc_queue_head(&waiters))) {
        oc_queue_remove(n);
        oc_once_waiter *w = OC_QUEUE_DATA(n, oc_once_waiter, node);
        w->ready(w, ok, vcopy, err);
    }
    free(vcopy);
}
