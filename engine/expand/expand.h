/* expand.h - layers expanded into directories (DESIGN.md 7.2): one layer as it
 * is (whiteout files kept visible), or all layers of an image merged into
 * its root filesystem with the OCI whiteout rules.
 *
 * Input is each layer's uncompressed tar on local disk (streamed with
 * libarchive, never held in memory). Output is built in a scratch directory
 * beside the target and renamed into place when complete, so a failed
 * expand leaves nothing at the target. Safety: every name is normalised and
 * an absolute or ".." name refused; directories are walked beneath the root
 * without following symlinks; entries are written by libarchive with
 * ARCHIVE_EXTRACT_SECURE_SYMLINKS, _SECURE_NODOTDOT and
 * _SECURE_NOABSOLUTEPATHS on a thread whose working directory is the root
 * (unshare(CLONE_FS): the process's own cwd never changes); hard-link
 * targets and whiteout names are checked by us. A hostile entry fails the
 * expand with an error naming the layer and the entry. Bytes written are
 * bounded by max_bytes. No per-file fsync; one syncfs at the end.
 *
 * Two strategies give the same tree (tests compare them):
 * - oldest-first: extract each layer in turn, deleting what its whiteouts
 *   name before writing its entries;
 * - write-once: read every layer's headers first, work the merged tree out
 *   in memory (expand_plan.h), then write each final file once, in one
 *   pass over each layer.
 * AUTO is write-once: on a 4-layer, 1.9 GB image made from /usr (51,476
 * paths, usr/bin written twice, a deleted and an opaque directory;
 * tests/integration/lib/expand_realistic.sh) it took 2.6 s against
 * oldest-first's 4.6 s (medians of 5, target on tmpfs), umoci unpack 30 s. */
#ifndef OC_ENGINE_EXPAND_H
#define OC_ENGINE_EXPAND_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"
#include "occystrap/occystrap.h"

/* oc_expand_strategy, oc_expand_opts and oc_expand_stats are public
 * (occystrap.h), with oc_expand_strategy_parse, oc_expand_strategy_name and
 * oc_expand_stats_format. */

typedef struct oc_expand_layer {
    const char *tar_path; /* uncompressed layer tar */
    const char *label;    /* names the layer in errors (its digest hex) */
} oc_expand_layer;

/* Merge layers (oldest first) into the root filesystem dir. dir must not
 * exist, or be an empty directory, or (replace) be an earlier result,
 * which is swapped out and removed. stats may be NULL. */
int oc_expand_merge(const oc_expand_layer *layers, size_t n, const char *dir, int replace,
                    const oc_expand_opts *opts, oc_expand_stats *stats, oc_error *err);

/* One layer as it is into dir (same rules for dir), whiteout files kept as
 * the empty files they are. */
int oc_expand_as_is(const oc_expand_layer *layer, const char *dir, int replace,
                    const oc_expand_opts *opts, oc_expand_stats *stats, oc_error *err);

#endif
