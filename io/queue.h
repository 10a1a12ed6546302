/* queue.h - one intrusive doubly-linked FIFO for every list of waiters and
 * tasks (the model is libuv's queue.h): a node lives inside the element it
 * links, so queueing never allocates, removal from the middle is O(1), and
 * OC_QUEUE_DATA finds the element from its node. A head is a node of its
 * own; an empty queue's head points at itself, as does a node that is in
 * no queue after oc_queue_remove. Not thread-safe: the owner locks. */
#ifndef OC_IO_QUEUE_H
#define OC_IO_QUEUE_H

#include <stddef.h>

typedef struct oc_queue {
    struct oc_queue *next;
    struct oc_queue *prev;
} oc_queue;

/* The element of type `type` whose member `field` is the node ptr. */
#define OC_QUEUE_DATA(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

/* for (q in h): q must not be removed inside the loop. */
#define OC_QUEUE_FOREACH(q, h) for ((q) = (h)->next; (q) != (h); (q) = (q)->next)

static inline void oc_queue_init(oc_queue *q)
{
    q->next = q;
    q->prev = q;
}

static inline int oc_queue_empty(const oc_queue *h)
{
    return h->next == h;
}

/* The first node, or NULL when empty. */
static inline oc_queue *oc_queue_head(const oc_queue *h)
{
    return h->next == h ? NULL : h->next;
}

static inline void oc_queue_insert_tail(oc_queue *h, oc_queue *n)
{
    n->next = h;
    n->prev = h->prev;
    h->prev->next = n;
    h->prev = n;
}

static inline void oc_queue_insert_head(oc_queue *h, oc_queue *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

/* Unlink n (it then points at itself: removing it again is harmless). */
static inline void oc_queue_remove(oc_queue *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n;
    n->prev = n;
}

/* 1 when n is linked into some queue (initialised nodes only). */
static inline int oc_queue_linked(const oc_queue *n)
{
    return n->next != n;
}

/* Move every node of from to the (empty or not) tail of to; from ends empty. */
static inline void oc_queue_move(oc_queue *from, oc_queue *to)
{
    if (oc_queue_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    oc_queue_init(from);
}

#endif
