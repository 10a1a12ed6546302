/* expand_plan.h - the merged root filesystem worked out in memory, so that
 * every final file is written once (the "write-once" expand strategy).
 *
 * The layers' tar headers (never their data) are fed oldest layer first. The
 * plan applies them to a tree of nodes exactly as extracting them one after
 * the other would: a layer's whiteouts first (".wh.NAME" and opaque markers
 * act on lower layers only, wherever they stand in the layer), then its
 * entries in tar order, a directory merging into a directory and anything
 * else replacing what was there (a file by a directory and the reverse), a
 * hard link sharing its target's inode. Content is named by the entry that
 * provides it (layer, index in the layer's tar), so a file that a later layer
 * overwrites or deletes costs nothing, and a hard link to a file of a lower
 * layer, even one deleted later, still finds the entry holding its bytes.
 *
 * The result answers, for each (layer, entry): skip it, make it a directory,
 * or write it at a path and hard-link it at others. Hostile shapes (an entry
 * through a symlink, a hard link to a missing, directory or escaping target)
 * are errors naming the entry. Memory: one node per path ever seen. */
#ifndef OC_ENGINE_EXPAND_PLAN_H
#define OC_ENGINE_EXPAND_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

typedef struct oc_plan oc_plan;
typedef struct oc_plan_node oc_plan_node;

typedef enum oc_plan_type {
    OC_PLAN_DIR = 0,
    OC_PLAN_FILE,     /* regular file, FIFO, device: anything without children */
    OC_PLAN_SYMLINK,  /* like FILE, but nothing may be written through it */
    OC_PLAN_HARDLINK, /* link: the existing path the entry links to */
} oc_plan_type;

/* Metadata the plan keeps for directories (applied after everything is
 * written). */
typedef struct oc_plan_dirmeta {
    unsigned mode; /* permission bits incl. setuid/setgid/sticky */
    int64_t uid, gid;
    int64_t mtime;
    long mtime_ns;
} oc_plan_dirmeta;

oc_plan *oc_plan_new(void);
void oc_plan_free(oc_plan *p);

/* Feed one layer: its entries in tar order, indexed from 0 by every entry
 * of the tar (also those not added), then end_layer. path is normalised
 * (layerpath.h); name is the entry's name as in the tar, for errors. */
int oc_plan_begin_layer(oc_plan *p, unsigned layer, oc_error *err);
int oc_plan_add_whiteout(oc_plan *p, const char *path, int opaque, oc_error *err);
int oc_plan_add(oc_plan *p, uint32_t idx, const char *name, const char *path, oc_plan_type type,
                const char *link, const oc_plan_dirmeta *meta, oc_error *err);
/* Applies the layer; a hostile entry fails here. */
int oc_plan_end_layer(oc_plan *p, oc_error *err);

/* After the last layer: resolve which entry writes which paths. */
int oc_plan_finish(oc_plan *p, oc_error *err);

typedef enum oc_plan_act {
    OC_ACT_SKIP = 0,
    OC_ACT_DIR,   /* the entry supplies the metadata of directory paths[0] */
    OC_ACT_WRITE, /* write the entry at paths[0], then hard-link paths[1..] to it */
} oc_plan_act;

typedef struct oc_plan_action {
    oc_plan_act act;
    oc_plan_node *const *paths;
    size_t n_paths;
} oc_plan_action;

/* What to do with entry idx of layer (after finish). */
void oc_plan_action_for(const oc_plan *p, unsigned layer, uint32_t idx, oc_plan_action *out);

/* The final directories, parents before children (root excluded). */
size_t oc_plan_n_dirs(const oc_plan *p);
const oc_plan_node *oc_plan_dir(const oc_plan *p, size_t i);
/* The root's metadata (from a "." entry), or NULL. */
const oc_plan_dirmeta *oc_plan_root_meta(const oc_plan *p);

/* A node's path into buf (NUL-terminated); -1 if it does not fit. */
int oc_plan_node_path(const oc_plan_node *n, char *buf, size_t cap);
/* A directory's metadata, or NULL for one only implied by its children. */
const oc_plan_dirmeta *oc_plan_node_meta(const oc_plan_node *n);

/* Totals after finish: final paths, distinct contents written, bytes of
 * node storage. */
typedef struct oc_plan_stats {
    uint64_t nodes, final_dirs, final_other, contents;
} oc_plan_stats;
void oc_plan_get_stats(const oc_plan *p, oc_plan_stats *out);

#endif
