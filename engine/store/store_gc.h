/* store_gc.h - drop the blobs no image of a store references.
 *
 * Run on a store opened with OC_STORE_GC (exclusive lock: no fetch writes
 * meanwhile; .tmp already emptied). The images are the catalog's entries and
 * every manifest file on disk (a manifest file the catalog lacks is an image
 * whose run died before its catalog write: it is kept, not collected). A
 * layer directory <hex>/ (with anything expanded in it) or a config
 * <hex>.json that none of them names is removed, its marker first; a marker
 * whose blob is gone is removed too. Anything else in the store is never
 * touched. If catalog.json or any manifest file does not parse, or the
 * catalog names a missing manifest file, nothing is removed: what is
 * referenced cannot be known (run verify). */
#ifndef OC_ENGINE_STORE_GC_H
#define OC_ENGINE_STORE_GC_H

#include <stddef.h>
#include <stdint.h>

#include "engine/store/store.h"
#include "io/error.h"

/* One removal (or, with dry_run, one that would be made); name relative to
 * the store, bytes the sum of its files' sizes. */
typedef void (*oc_gc_report)(void *opaque, const char *name, uint64_t bytes);

typedef struct oc_gc_stats {
    size_t layers;  /* layer directories removed */
    size_t configs; /* configs removed */
    size_t markers; /* markers removed (with their blob or stale) */
    uint64_t bytes; /* freed */
    size_t kept_layers;
    size_t kept_configs;
} oc_gc_stats;

int oc_store_gc(oc_store *s, int dry_run, oc_gc_report report, void *opaque, oc_gc_stats *stats,
                oc_error *err);

#endif
