/* image_index.h - the store's image index: what each image's manifest file
 * says, and which markers are valid, kept in one file across runs so that a
 * bulk run reads it once instead of two small files per image.
 *
 * STORE/.occystrap/images.idx is a cache, never the truth: a line per image
 * (image, tag, manifest file, that file's inode, size and mtime, and the
 * fields the up-to-date test needs: our digests, the config and the layers)
 * and a line per known-good marker (its fields and its file's identity). A
 * record is used only while its file's identity is unchanged (one stat
 * instead of an open, a read and a JSON parse); any other file is read as
 * before and its record replaced. So a stale, damaged or missing index
 * costs reads, never a wrong answer. The blobs themselves are still
 * stat'ed on every check (store.h, oc_store_image_intact).
 *
 * It is written at the end of a run that learnt something (under the
 * catalog lock, merged with what another process wrote meanwhile), with
 * one atomic rename; a no-op rerun writes nothing. */
#ifndef OC_ENGINE_STORE_IMAGE_INDEX_H
#define OC_ENGINE_STORE_IMAGE_INDEX_H

#include "engine/store/catalog.h"
#include "engine/store/store.h"
#include "io/error.h"

typedef struct oc_image_index oc_image_index;

/* Read the index (missing or unreadable: empty) and seed the store's marker
 * cache from it. WRITE mode. NULL only when out of memory. */
oc_image_index *oc_image_index_open(oc_store *s);
void oc_image_index_free(oc_image_index *x);

/* oc_store_lookup through the index: 0 found (si filled: config, layers,
 * image name and our digests), 1 the store has no such image, -1 error. */
int oc_image_index_lookup(oc_image_index *x, const oc_catalog *c, const char *image,
                          const char *tag, oc_store_image *si, oc_error *err);
/* Record image:tag's manifest file just written (read back now, from the
 * page cache), so the next run finds it in the index. */
void oc_image_index_note(oc_image_index *x, const char *image, const char *tag);
/* Write the index if this run learnt anything; nothing to do is 0. */
int oc_image_index_save(oc_image_index *x, oc_error *err);
/* Manifest files read because the index had no valid record, so far. */
unsigned oc_image_index_misses(const oc_image_index *x);

#endif
