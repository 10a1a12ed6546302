/* bundle_write.h - writing a planned bundle (plan.h) as tar files, plain or
 * zstd-compressed, to files or a stream (DESIGN.md 7.8).
 *
 * Each part is a tar (POSIX ustar headers, mode 0644, owner 0, mtime 0, no
 * padding beyond the two end blocks) of: occystrap-bundle.json (the
 * manifest, with this part's number), inventory.json, oci-layout,
 * index.json, then the part's files in the manifest's order. Blob bytes
 * are read from STORE/oci/blobs/sha256 and hashed on the way: a blob that
 * does not hash to its name (or a segment to its digest) stops the bundle
 * naming it, so damage in the store is never carried across. A part goes
 * to a temporary name beside its final one and is fsynced and renamed when
 * complete; on failure no part of the bundle is left. One part is OUT (or
 * standard output for "-"); several are OUT.001, OUT.002, ... (as many
 * digits as the count needs, at least three). */
#ifndef OC_ENGINE_BUNDLE_BUNDLE_WRITE_H
#define OC_ENGINE_BUNDLE_BUNDLE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/bundle/plan.h"
#include "engine/store/store.h"
#include "io/error.h"

typedef struct oc_bundle_write_opts {
    const char *out; /* a path, or "-" (one part only) */
    int zstd_level;  /* 0 = plain tar */
    int threads;     /* zstd workers */
    uint64_t split;  /* the bound every part must keep (checked), 0 = none */
    /* each part as it is complete (path "-" for standard output) */
    void (*on_part)(void *opaque, unsigned part, unsigned parts, const char *path, uint64_t bytes);
    void *opaque;
} oc_bundle_write_opts;

/* The name of part k of n for out (malloc'd). */
char *oc_bundle_part_path(const char *out, unsigned k, unsigned n);

/* Write every part; *bytes (may be NULL) receives what was written in all. */
int oc_bundle_write(const oc_store *s, const oc_bundle_plan *p, const oc_bundle_write_opts *o,
                    uint64_t *bytes, oc_error *err);

#endif
