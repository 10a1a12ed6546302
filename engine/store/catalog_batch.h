/* catalog_batch.h - catalog.json of a store held in memory for one run,
 * with the run's new entries written in batches (group commit).
 *
 * A bulk run reads catalog.json once (under the catalog lock) and looks
 * entries up in memory from then on. Entries it adds are queued; a flush
 * takes the catalog lock, reads the file again only when another process
 * changed it since we last read or wrote it (its inode, size or mtime
 * differ: the cheap check), sets every queued entry, and writes the result
 * with one atomic rename. So n images cost a handful of catalog writes, not
 * n, and each write costs O(size of the catalog).
 *
 * Crash safety is that of oc_store_catalog_add: an entry is queued only
 * after its manifest file is in place, so a crash before the flush leaves
 * complete images the catalog does not list yet; the next run (or verify
 * --repair) lists them. The store must be open in WRITE mode.
 *
 * The store's OCI index (STORE/oci/index.json, oci_index.h) rides in the
 * same batches: it is read once with the catalog, descriptors set or
 * dropped are queued beside the catalog entries, and a flush writes
 * catalog.json and then index.json under the one catalog lock, each merged
 * with what another process wrote meanwhile (read again when its inode,
 * size or mtime changed). A descriptor is queued only after every blob it
 * reaches is in place. */
#ifndef OC_ENGINE_STORE_CATALOG_BATCH_H
#define OC_ENGINE_STORE_CATALOG_BATCH_H

#include <stddef.h>

#include "engine/store/catalog.h"
#include "engine/store/oci_index.h"
#include "engine/store/store.h"
#include "io/error.h"

typedef struct oc_catalog_batch oc_catalog_batch;

/* Read catalog.json (a missing file is an empty catalog). */
oc_catalog_batch *oc_catalog_batch_open(oc_store *s, oc_error *err);
void oc_catalog_batch_free(oc_catalog_batch *b);

/* What this run knows: the catalog as last read or written, plus the
 * queued entries. Valid until the next add or flush. */
const oc_catalog *oc_catalog_batch_view(const oc_catalog_batch *b);
/* Queue image:tag -> manifest_file (it shows in the view at once). */
int oc_catalog_batch_add(oc_catalog_batch *b, const char *image, const char *tag,
                         const char *manifest_file, oc_error *err);
/* Entries queued and not yet written. */
size_t oc_catalog_batch_pending(const oc_catalog_batch *b);
/* Write the queued entries (nothing to do: 0 at once). On failure they
 * stay queued and catalog.json is as it was. */
int oc_catalog_batch_flush(oc_catalog_batch *b, oc_error *err);
/* The OCI index as this run knows it (the view's twin). */
const oc_oci_index *oc_catalog_batch_oci_view(const oc_catalog_batch *b);
/* Queue ref_name -> descriptor text (text NULL: drop ref_name; nothing is
 * queued for a drop of a name the view does not hold). */
int oc_catalog_batch_oci_set(oc_catalog_batch *b, const char *ref_name, const char *text,
                             oc_error *err);

/* catalog.json renamed into place by this batch so far; times it was read
 * again because another process had changed it. */
unsigned oc_catalog_batch_writes(const oc_catalog_batch *b);
unsigned oc_catalog_batch_rereads(const oc_catalog_batch *b);

#endif
