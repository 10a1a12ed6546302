/* store_dirsync.h - when the names a writer places in the store's shared
 * directories become durable.
 *
 * Every file is written whole and fsynced before its rename (atomicfile.h);
 * its name, a directory entry, is durable once its directory is fsynced.
 * A store opened to write does that after every file, unless the writer
 * defers it (oc_store_defer_dir_syncs). mirror does: it places thousands
 * of small files (configs, markers, manifests) in three shared directories,
 * the store root, oci/blobs/sha256 and .occystrap/blobs, and one fsync of
 * each per group commit replaces five an image. The group commit
 * (catalog_batch.c) calls oc_store_sync_dirs before catalog.json or
 * index.json names anything, so what they list is durable. A name a power
 * cut takes before then belongs to an image the catalog does not list: the
 * next run fetches it again (oc_store_image_intact) and verify reports it
 * as a note. Each sync covers every name in its directory, this process's
 * and another's, so a writer that reuses a blob another process has just
 * placed makes its name durable with its own sync. A layer's own directory
 * is still synced at once (store_put.c). */
#ifndef OC_ENGINE_STORE_DIRSYNC_H
#define OC_ENGINE_STORE_DIRSYNC_H

#include <stddef.h>

#include "engine/store/store.h"
#include "io/error.h"

/* From now on, names placed in the shared directories wait for
 * oc_store_sync_dirs. Call before any pipeline of the run starts. */
void oc_store_defer_dir_syncs(oc_store *s);
int oc_store_dir_syncs_deferred(const oc_store *s);
/* A file was renamed into dir, one of the shared directories: fsync dir
 * now, or leave it to the next oc_store_sync_dirs. */
int oc_store_name_placed(oc_store *s, const char *dir, oc_error *err);
/* Write a small file (path in a shared directory) whole, through the run
 * directory; its name durable now or at the next oc_store_sync_dirs. */
int oc_store_put_small(oc_store *s, const char *path, const void *data, size_t len, oc_error *err);
/* fsync the shared directories when names wait for it (a directory not
 * made yet has nothing to sync). */
int oc_store_sync_dirs(oc_store *s, oc_error *err);

#endif
