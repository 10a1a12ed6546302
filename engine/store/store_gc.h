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
#include "occystrap/occystrap.h"
#include "io/error.h"

/* report (the public oc_gc_cb) is called for each file removed (or, with
 * dry_run, that would be): name relative to the store, bytes the sum of its
 * files' sizes. The stats are the public oc_gc_stats (occystrap.h). */
int oc_store_gc(oc_store *s, int dry_run, oc_gc_cb report, void *opaque, oc_gc_stats *stats,
                oc_error *err);

#endif
