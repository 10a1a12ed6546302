/* expand_plan.c - the merged tree in memory (see expand_plan.h).
 *
 * Nodes live in an arena and are never freed one by one: a deleted node is
 * only marked dead and unlinked from its parent and the hash table, so
 * pointers the per-layer slots hold stay valid. Children are found through
 * one hash table keyed by (parent, name); each node also keeps a list of its
 * children so a subtree can be deleted. A non-directory points to an
 * "inode": the entry that supplies its bytes, shared by hard links. */
#include "engine/expand/expand_plan.h"
#include "io/grow.h"

#include <stdlib.h>
#include <string.h>

enum { NODE_DIR = OC_PLAN_DIR, NODE_FILE = OC_PLAN_FILE, NODE_SYMLINK = OC_PLAN_SYMLINK };

typedef struct plan_inode plan_inode;

struct oc_plan_node {
    const char *name;
    oc_plan_node *parent;
    oc_plan_node *child, *next, *prev; /* children; siblings */
    oc_plan_node *hnext;               /* hash chain */
    uint32_t hash;
    uint8_t type;
    uint8_t dead;
    uint8_t has_meta;
    int32_t src_layer; /* directory: entry that supplied the metadata */
    uint32_t src_idx;
    plan_inode *ino; /* non-directory */
    oc_plan_dirmeta meta;
};

struct plan_inode {
    uint32_t layer, idx;
    oc_plan_node *origin;
    oc_plan_node **paths;
    size_t n, cap;
};

typedef struct slot {
    oc_plan_node *node; /* directory entry */
    plan_inode *ino;    /* content entry */
} slot;

typedef struct layer_slots {
    slot *v;
    size_t n;
} layer_slots;

typedef struct pending {
    uint32_t idx;
    char *name, *path, *link;
    oc_plan_type type;
    int has_meta;
    oc_plan_dirmeta meta;
} pending;

typedef struct whiteout {
    char *path;
    int opaque;
} whiteout;

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_chunk;

struct oc_plan {
    arena_chunk *arena;
    oc_plan_node root;
    oc_plan_node **buckets;
    size_t n_buckets, n_nodes_live;
    uint64_t n_nodes;
    plan_inode **inodes;
    size_t n_inodes, cap_inodes;
    layer_slots *layers;
    size_t n_layers;
    unsigned cur_layer;
    int in_layer;
    pending *pend;
    size_t n_pend, cap_pend;
    whiteout *wh;
    size_t n_wh, cap_wh;
    oc_plan_node **dirs;
    size_t n_dirs, cap_dirs;
    uint64_t final_other;
};

/* ---- memory ---- */

static void *arena_alloc(oc_plan *p, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!p->arena || p->arena->cap - p->arena->used < size) {
        size_t cap = size > (1u << 20) ? size : (1u << 20);
        arena_chunk *c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = p->arena;
        c->used = 0;
        c->cap = cap;
        p->arena = c;
    }
    void *r = p->arena->data + p->arena->used;
    p->arena->used += size;
    return r;
}

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory planning the merged tree");
    return -1;
}

oc_plan *oc_plan_new(void)
{
    oc_plan *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_buckets = 1024;
    p->buckets = calloc(p->n_buckets, sizeof *p->buckets);
    if (!p->buckets) {
        free(p);
        return NULL;
    }
    p->root.name = "";
    p->root.type = NODE_DIR;
    p->root.src_layer = -1;
    return p;
}

static void free_pending(oc_plan *p)
{
    for (size_t i = 0; i < p->n_pend; i++) {
        free(p->pend[i].name);
        free(p->pend[i].path);
        free(p->pend[i].link);
    }
    p->n_pend = 0;
    for (size_t i = 0; i < p->n_wh; i++)
        free(p->wh[i].path);
    p->n_wh = 0;
}

void oc_plan_free(oc_plan *p)
{
    if (!p)
        return;
    free_pending(p);
    free(p->pend);
    free(p->wh);
    for (size_t i = 0; i < p->n_inodes; i++)
        free(p->inodes[i]->paths);
    free(p->inodes);
    for (size_t i = 0; i < p->n_layers; i++)
        free(p->layers[i].v);
    free(p->layers);
    free(p->dirs);
    free(p->buckets);
    while (p->arena) {
        arena_chunk *n = p->arena->next;
        free(p->arena);
        p->arena = n;
    }
    free(p);
}

/* ---- the tree ---- */

static uint32_t hash_of(const oc_plan_node *parent, const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)parent;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static oc_plan_node *lookup(const oc_plan *p, const oc_plan_node *parent, const char *name,
                            size_t len)
{
    uint32_t h = hash_of(parent, name, len);
    for (oc_plan_node *n = p->buckets[h & (p->n_buckets - 1)]; n; n = n->hnext)
        if (n->hash == h && n->parent == parent && strncmp(n->name, name, len) == 0 &&
            n->name[len] == '\0')
            return n;
    return NULL;
}

static int rehash(oc_plan *p)
{
    size_t nb = p->n_buckets * 2;
    oc_plan_node **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < p->n_buckets; i++) {
        oc_plan_node *n = p->buckets[i];
        while (n) {
            oc_plan_node *next = n->hnext;
            n->hnext = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(p->buckets);
    p->buckets = b;
    p->n_buckets = nb;
    return 0;
}

static oc_plan_node *add_node(oc_plan *p, oc_plan_node *parent, const char *name, size_t len,
                              int type)
{
    if (p->n_nodes_live >= p->n_buckets && rehash(p) != 0)
        return NULL;
    oc_plan_node *n = arena_alloc(p, sizeof *n);
    char *nm = arena_alloc(p, len + 1);
    if (!n || !nm)
        return NULL;
    memset(n, 0, sizeof *n);
    memcpy(nm, name, len);
    nm[len] = '\0';
    n->name = nm;
    n->parent = parent;
    n->type = (uint8_t)type;
    n->src_layer = -1;
    n->hash = hash_of(parent, name, len);
    n->hnext = p->buckets[n->hash & (p->n_buckets - 1)];
    p->buckets[n->hash & (p->n_buckets - 1)] = n;
    n->next = parent->child;
    if (parent->child)
        parent->child->prev = n;
    parent->child = n;
    p->n_nodes_live++;
    p->n_nodes++;
    return n;
}

static void unhash(oc_plan *p, oc_plan_node *n)
{
    oc_plan_node **pp = &p->buckets[n->hash & (p->n_buckets - 1)];
    while (*pp && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = n->hnext;
    p->n_nodes_live--;
}

static void kill_children(oc_plan *p, oc_plan_node *dir);

static void kill_node(oc_plan *p, oc_plan_node *n)
{
    kill_children(p, n);
    unhash(p, n);
    if (n->prev)
        n->prev->next = n->next;
    else
        n->parent->child = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->dead = 1;
}

static void kill_children(oc_plan *p, oc_plan_node *dir)
{
    while (dir->child)
        kill_node(p, dir->child);
}

typedef enum walk_status {
    WALK_OK,
    WALK_MISSING,
    WALK_SYMLINK,
    WALK_NOTDIR,
    WALK_NOMEM
} walk_status;

/* Walk the directories of path: all components (full) or all but the last.
 * create: make missing ones (implicit directories) and replace files. On
 * success *dir is the last directory and *leaf and *leaf_len the last component
 * (when !full). *bad is the length of the offending prefix otherwise. */
static walk_status walk(oc_plan *p, const char *path, int full, int create, oc_plan_node **dir,
                        const char **leaf, size_t *leaf_len, size_t *bad)
{
    oc_plan_node *cur = &p->root;
    const char *s = path;
    for (;;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (!e && !full) {
            *dir = cur;
            *leaf = s;
            *leaf_len = len;
            return WALK_OK;
        }
        if (len == 0) { /* "" path with full: the root */
            *dir = cur;
            return WALK_OK;
        }
        oc_plan_node *n = lookup(p, cur, s, len);
        *bad = (size_t)(s - path) + len;
        if (!e && full) { /* the last component itself, whatever it is */
            if (!n)
                return WALK_MISSING;
            *dir = n;
            return WALK_OK;
        }
        if (!n) {
            if (!create)
                return WALK_MISSING;
            n = add_node(p, cur, s, len, NODE_DIR);
            if (!n)
                return WALK_NOMEM;
        } else if (n->type == NODE_SYMLINK) {
            return WALK_SYMLINK;
        } else if (n->type != NODE_DIR) {
            if (!create)
                return WALK_NOTDIR;
            kill_node(p, n);
            n = add_node(p, cur, s, len, NODE_DIR);
            if (!n)
                return WALK_NOMEM;
        }
        cur = n;
        if (!e) {
            *dir = cur;
            return WALK_OK;
        }
        s = e + 1;
    }
}

/* ---- feeding layers ---- */

int oc_plan_begin_layer(oc_plan *p, unsigned layer, oc_error *err)
{
    if (layer >= p->n_layers) {
        layer_slots *nl = realloc(p->layers, (layer + 1) * sizeof *nl);
        if (!nl)
            return oom(err);
        memset(nl + p->n_layers, 0, (layer + 1 - p->n_layers) * sizeof *nl);
        p->layers = nl;
        p->n_layers = layer + 1;
    }
    p->cur_layer = layer;
    p->in_layer = 1;
    free_pending(p);
    return 0;
}

int oc_plan_add_whiteout(oc_plan *p, const char *path, int opaque, oc_error *err)
{
    whiteout *wh = oc_grow(p->wh, &p->cap_wh, p->n_wh + 1, sizeof *wh, 16);
    if (!wh)
        return oom(err);
    p->wh = wh;
    char *c = strdup(path);
    if (!c)
        return oom(err);
    p->wh[p->n_wh].path = c;
    p->wh[p->n_wh].opaque = opaque;
    p->n_wh++;
    return 0;
}

int oc_plan_add(oc_plan *p, uint32_t idx, const char *name, const char *path, oc_plan_type type,
                const char *link, const oc_plan_dirmeta *meta, oc_error *err)
{
    pending *pend = oc_grow(p->pend, &p->cap_pend, p->n_pend + 1, sizeof *pend, 16);
    if (!pend)
        return oom(err);
    p->pend = pend;
    pending *e = &p->pend[p->n_pend];
    memset(e, 0, sizeof *e);
    e->idx = idx;
    e->type = type;
    e->name = strdup(name);
    e->path = strdup(path);
    e->link = link ? strdup(link) : NULL;
    if (!e->name || !e->path || (link && !e->link)) {
        free(e->name);
        free(e->path);
        free(e->link);
        return oom(err);
    }
    if (meta) {
        e->has_meta = 1;
        e->meta = *meta;
    }
    p->n_pend++;
    return 0;
}

static int set_slot(oc_plan *p, uint32_t idx, oc_plan_node *node, plan_inode *ino, oc_error *err)
{
    layer_slots *ls = &p->layers[p->cur_layer];
    if (idx >= ls->n) {
        size_t nn = ls->n ? ls->n : 64;
        while (nn <= idx)
            nn *= 2;
        slot *nv = realloc(ls->v, nn * sizeof *nv);
        if (!nv)
            return oom(err);
        memset(nv + ls->n, 0, (nn - ls->n) * sizeof *nv);
        ls->v = nv;
        ls->n = nn;
    }
    ls->v[idx].node = node;
    ls->v[idx].ino = ino;
    return 0;
}

static void apply_whiteout(oc_plan *p, const whiteout *w)
{
    oc_plan_node *dir = NULL;
    const char *leaf = NULL;
    size_t leaf_len = 0, bad = 0;
    if (w->opaque) {
        if (walk(p, w->path, 1, 0, &dir, &leaf, &leaf_len, &bad) == WALK_OK &&
            dir->type == NODE_DIR)
            kill_children(p, dir);
        return;
    }
    if (walk(p, w->path, 0, 0, &dir, &leaf, &leaf_len, &bad) != WALK_OK)
        return; /* a parent is missing or not a directory: nothing to delete */
    oc_plan_node *n = lookup(p, dir, leaf, leaf_len);
    if (n)
        kill_node(p, n);
}

static int walk_error(const pending *e, walk_status st, const char *what, const char *path,
                      size_t bad, oc_error *err)
{
    switch (st) {
    case WALK_NOMEM:
        return oom(err);
    case WALK_SYMLINK:
        oc_error_set(err, OC_E_FORMAT, "entry '%s': %s through the symlink '%.*s' refused", e->name,
                     what, (int)bad, path);
        return -1;
    case WALK_MISSING:
    case WALK_NOTDIR:
        oc_error_set(err, OC_E_FORMAT, "entry '%s': %s '%s' does not exist", e->name, what, path);
        return -1;
    default:
        return 0;
    }
}

static int apply_entry(oc_plan *p, const pending *e, oc_error *err)
{
    oc_plan_node *dir = NULL, *target = NULL;
    const char *leaf = NULL;
    size_t leaf_len = 0, bad = 0;
    walk_status st;

    if (e->path[0] == '\0') { /* the root: only a directory, checked by the caller */
        if (e->has_meta) {
            p->root.meta = e->meta;
            p->root.has_meta = 1;
            p->root.src_layer = (int32_t)p->cur_layer;
            p->root.src_idx = e->idx;
        }
        return 0;
    }
    if (e->type == OC_PLAN_HARDLINK) {
        if (!e->link || !e->link[0]) {
            oc_error_set(err, OC_E_FORMAT, "entry '%s': hard link without a target", e->name);
            return -1;
        }
        st = walk(p, e->link, 1, 0, &target, &leaf, &leaf_len, &bad);
        if (st != WALK_OK)
            return walk_error(e, st, "hard link target", e->link, bad, err);
        if (target->type == NODE_DIR) {
            oc_error_set(err, OC_E_FORMAT, "entry '%s': hard link to the directory '%s' refused",
                         e->name, e->link);
            return -1;
        }
    }
    st = walk(p, e->path, 0, 1, &dir, &leaf, &leaf_len, &bad);
    if (st != WALK_OK)
        return walk_error(e, st, "write", e->path, bad, err);
    oc_plan_node *old = lookup(p, dir, leaf, leaf_len);

    if (e->type == OC_PLAN_DIR) {
        oc_plan_node *n = old;
        if (n && n->type != NODE_DIR) {
            kill_node(p, n);
            n = NULL;
        }
        if (!n && !(n = add_node(p, dir, leaf, leaf_len, NODE_DIR)))
            return oom(err);
        if (e->has_meta) {
            n->meta = e->meta;
            n->has_meta = 1;
        }
        n->src_layer = (int32_t)p->cur_layer;
        n->src_idx = e->idx;
        return set_slot(p, e->idx, n, NULL, err);
    }
    if (e->type == OC_PLAN_HARDLINK && target == old)
        return 0; /* a link to itself changes nothing */
    if (old)
        kill_node(p, old);
    if (e->type == OC_PLAN_HARDLINK) {
        if (target->dead) {
            oc_error_set(err, OC_E_FORMAT, "entry '%s': hard link target '%s' does not exist",
                         e->name, e->link);
            return -1;
        }
        oc_plan_node *n = add_node(p, dir, leaf, leaf_len, target->type);
        if (!n)
            return oom(err);
        n->ino = target->ino;
        return 0;
    }
    oc_plan_node *n =
        add_node(p, dir, leaf, leaf_len, e->type == OC_PLAN_SYMLINK ? NODE_SYMLINK : NODE_FILE);
    plan_inode *ino = arena_alloc(p, sizeof *ino);
    plan_inode **inodes = oc_grow(p->inodes, &p->cap_inodes, p->n_inodes + 1, sizeof *inodes, 16);
    if (!n || !ino || !inodes)
        return oom(err);
    p->inodes = inodes;
    memset(ino, 0, sizeof *ino);
    ino->layer = p->cur_layer;
    ino->idx = e->idx;
    ino->origin = n;
    p->inodes[p->n_inodes++] = ino;
    n->ino = ino;
    return set_slot(p, e->idx, NULL, ino, err);
}

int oc_plan_end_layer(oc_plan *p, oc_error *err)
{
    for (size_t i = 0; i < p->n_wh; i++)
        apply_whiteout(p, &p->wh[i]);
    for (size_t i = 0; i < p->n_pend; i++)
        if (apply_entry(p, &p->pend[i], err) != 0) {
            free_pending(p);
            return -1;
        }
    free_pending(p);
    p->in_layer = 0;
    return 0;
}

/* ---- the result ---- */

static int collect(oc_plan *p, oc_plan_node *dir, oc_error *err)
{
    for (oc_plan_node *n = dir->child; n; n = n->next) {
        if (n->type == NODE_DIR) {
            oc_plan_node **dirs = oc_grow(p->dirs, &p->cap_dirs, p->n_dirs + 1, sizeof *dirs, 16);
            if (!dirs)
                return oom(err);
            p->dirs = dirs;
            p->dirs[p->n_dirs++] = n;
            if (collect(p, n, err) != 0)
                return -1;
            continue;
        }
        plan_inode *ino = n->ino;
        oc_plan_node **paths = oc_grow(ino->paths, &ino->cap, ino->n + 1, sizeof *paths, 16);
        if (!paths)
            return oom(err);
        ino->paths = paths;
        ino->paths[ino->n++] = n;
        if (n == ino->origin && ino->n > 1) { /* write at the entry's own path when it lives */
            ino->paths[ino->n - 1] = ino->paths[0];
            ino->paths[0] = n;
        }
        p->final_other++;
    }
    return 0;
}

int oc_plan_finish(oc_plan *p, oc_error *err)
{
    p->n_dirs = 0;
    p->final_other = 0;
    return collect(p, &p->root, err);
}

void oc_plan_action_for(const oc_plan *p, unsigned layer, uint32_t idx, oc_plan_action *out)
{
    memset(out, 0, sizeof *out);
    if (layer >= p->n_layers || idx >= p->layers[layer].n)
        return;
    const slot *s = &p->layers[layer].v[idx];
    if (s->node) {
        const oc_plan_node *n = s->node;
        if (!n->dead && n->src_layer == (int32_t)layer && n->src_idx == idx) {
            out->act = OC_ACT_DIR;
            out->paths = &s->node;
            out->n_paths = 1;
        }
    } else if (s->ino && s->ino->n > 0) {
        out->act = OC_ACT_WRITE;
        out->paths = s->ino->paths;
        out->n_paths = s->ino->n;
    }
}

size_t oc_plan_n_dirs(const oc_plan *p)
{
    return p->n_dirs;
}

const oc_plan_node *oc_plan_dir(const oc_plan *p, size_t i)
{
    return i < p->n_dirs ? p->dirs[i] : NULL;
}

const oc_plan_dirmeta *oc_plan_root_meta(const oc_plan *p)
{
    return p->root.has_meta ? &p->root.meta : NULL;
}

int oc_plan_node_path(const oc_plan_node *n, char *buf, size_t cap)
{
    size_t len = 0;
    for (const oc_plan_node *c = n; c && c->parent; c = c->parent)
        len += strlen(c->name) + 1;
    if (len == 0) {
        if (cap < 1)
            return -1;
        buf[0] = '\0';
        return 0;
    }
    if (len > cap)
        return -1;
    size_t pos = len - 1;
    buf[pos] = '\0';
    for (const oc_plan_node *c = n; c && c->parent; c = c->parent) {
        size_t l = strlen(c->name);
        pos -= l;
        memcpy(buf + pos, c->name, l);
        if (pos > 0)
            buf[--pos] = '/';
    }
    return 0;
}

const oc_plan_dirmeta *oc_plan_node_meta(const oc_plan_node *n)
{
    return n->has_meta ? &n->meta : NULL;
}

void oc_plan_get_stats(const oc_plan *p, oc_plan_stats *out)
{
    out->nodes = p->n_nodes;
    out->final_dirs = p->n_dirs;
    out->final_other = p->final_other;
    uint64_t c = 0;
    for (size_t i = 0; i < p->n_inodes; i++)
        c += p->inodes[i]->n > 0;
    out->contents = c;
}
