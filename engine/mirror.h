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
 * stored under "<tag>+<os>-<arch>[-<variant>]" ('+' cannot occur in a tag). */
#ifndef OC_ENGINE_MIRROR_H
#define OC_ENGINE_MIRROR_H

#include <stdio.h>

#include "engine/registry/engine.h"
#include "engine/image/manifest.h"
#include "engine/image/shard.h"
#include "sched/progress.h"

typedef struct oc_mirror_opts {
    const char *list_path; /* "-" = stdin */
    const char *store_dir;
    const char *default_registry; /* for entries that name none; NULL = Docker Hub */
    oc_platform *platforms;       /* wanted platforms; none = linux/amd64 */
    size_t n_platforms;
    int all_platforms;
    int fail_fast;
    int dry_run;
    oc_progress_mode progress;
    const char *json_path; /* report file, "-" = stdout, NULL = none */
    long lock_wait_s;      /* wait this long for another mirror run; 0 = don't wait */
    int quiet;
    oc_shard shard; /* this process's part of the list (n 0 or 1: all of it) */
} oc_mirror_opts;

/* Returns the exit status: 0 all entries done, 1 some failed (each
 * reported), 2 usage or configuration errors (err set). */
int oc_mirror_run(oc_engine *e, const oc_mirror_opts *o, oc_error *err);

#endif
