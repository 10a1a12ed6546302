/* mirror.h - the bulk job: every entry of a LIST into one merged store, all
 * scheduled on one loop at once.
 *
 * Per entry: a tag costs one HEAD of its manifest; when the digest the
 * registry answers is the one the store recorded for that name and tag,
 * nothing else is requested. A digest entry already in the store costs no
 * request. Otherwise the image is pulled by that digest with the store's
 * known-good layers reused and layers shared with other entries in flight
 * fetched once (sched/once.h); each layer moves into the store as soon as
 * it verified, so a killed run keeps what it finished. An entry that fails
 * is reported and the others go on (unless fail_fast). Names in the store
 * are docker's familiar names (registry host included outside Docker Hub),
 * so they never collide across registries; with several platforms each is
 * stored under "<tag>+<os>-<arch>[-<variant>]" ('+' cannot occur in a tag).
 *
 * The run is a job on the caller's loop: oc_mirror_start (occystrap.h)
 * takes the store's mirror lock (waiting on a timer, never blocking the
 * loop), starts every entry, reports each through an ENTRY_FINISHED event
 * as it ends, and once the last has ended hands the report to the caller's
 * callback. */
#ifndef OC_ENGINE_MIRROR_H
#define OC_ENGINE_MIRROR_H

#include "engine/image/manifest.h"
#include "engine/image/shard.h"
#include "engine/registry/engine.h"

/* The public oc_mirror_start (occystrap.h) turns its options into these. */
typedef struct oc_mirror_opts {
    const char *list_path; /* "-" = stdin */
    const char *store_dir;
    const char *default_registry; /* for entries that name none; NULL = Docker Hub */
    oc_platform *platforms;       /* wanted platforms; none = linux/amd64 */
    size_t n_platforms;
    int all_platforms;
    int fail_fast;
    int dry_run;
    long lock_wait_s;         /* wait this long for another mirror run; 0 = don't wait */
    oc_shard shard;           /* this process's part of the list (n 0 or 1: all of it) */
    int exact;                /* the registry's exact bytes too (STORE/oci/) */
    uint64_t max_layer_bytes; /* bounds of each pull (oc_pull_opts) */
    uint64_t max_image_bytes;
    int referrers; /* oc_referrers_mode (the config's per registry and repository win) */
    unsigned referrers_depth;
    char **referrer_types; /* NULL-terminated, owned */
    size_t n_referrer_types;
} oc_mirror_opts;

#endif
