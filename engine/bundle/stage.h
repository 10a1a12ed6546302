/* stage.h - where an import keeps what it has verified until the whole
 * bundle is there (DESIGN.md 7.8): STORE/.occystrap/import/<bundle id>/,
 * outside the store proper, so that a bundle that is damaged, cut short or
 * missing a part changes nothing a reader of the store sees, while every
 * file that did verify is kept for the next import of the same bundle (a
 * part carried again completes it).
 *
 *   blobs/<hex>                a whole blob, verified against its name
 *   segments/<hex>/<offset>    a segment of blob hex, verified against its
 *                              digest; when all are there they are joined
 *                              (and the whole blob verified) into blobs/
 *   layers/<hex>.tar           blob hex inflated (made as it arrived)
 *   layers/<hex>.json          {"digest", "diff_id", "tar_size"}: the tar's
 *                              digest and size, written after it
 *
 * A file is written under NAME.tmp and gets its name only after the whole
 * of it verified and a syncfs made it durable (the pending renames of a
 * part are done together, one syncfs for all). The directory is locked
 * (flock of STORE/.occystrap/import/<id>.lock) by the import at work, so a
 * second import of the same bundle at once is refused. */
#ifndef OC_ENGINE_BUNDLE_STAGE_H
#define OC_ENGINE_BUNDLE_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/bundle/bundle_doc.h"
#include "engine/bundle/bundle_read.h"
#include "engine/store/store.h"
#include "io/blobsink.h"
#include "io/error.h"

typedef struct oc_stage oc_stage;

oc_stage *oc_stage_open(oc_store *s, const char *id, oc_blobsink_pool *pool, oc_error *err);
/* The bound on an unpacked layer's tar: OC_LIMIT_DEFAULT (as opened) =
 * max(1 GiB, 100x its compressed size), a number of bytes, or 0 = none. */
void oc_stage_set_max_layer(oc_stage *st, uint64_t max_layer);
/* Has an earlier import left a stage for bundle id? */
int oc_stage_exists(const oc_store *s, const char *id);
/* remove: the import is complete, the directory goes. */
void oc_stage_close(oc_stage *st, int remove);
const char *oc_stage_dir(const oc_stage *st);

/* The queries below take a NULL stage (none opened: nothing staged). */

/* A staged whole blob of that size: its path (malloc'd), else NULL. */
char *oc_stage_blob(const oc_stage *st, const char *hex, uint64_t size);
int oc_stage_has_segment(const oc_stage *st, const char *hex, uint64_t offset, uint64_t size);

/* A staged layer tar of blob hex: 1 with its diff_id ("sha256:...") and
 * tar path (malloc'd), 0 when none. */
int oc_stage_layer(const oc_stage *st, const char *hex, char diff_id[OC_BUNDLE_DIGEST_LEN],
                   uint64_t *tar_size, char **tar_path);

typedef enum oc_stage_result {
    OC_STAGE_OK = 0,     /* verified; renamed into place by the next oc_stage_settle */
    OC_STAGE_DAMAGED,    /* the bytes are not what the manifest says (err says how); go on */
    OC_STAGE_UNREADABLE, /* the part cannot be read on (err): stop reading it */
    OC_STAGE_FAILED,     /* a local failure (disk full, ...): stop the import */
} oc_stage_result;

/* The current file of r into the stage. unpack: it is a layer, inflate it
 * as it comes (comp from its media type). *bytes: bytes read. */
oc_stage_result oc_stage_receive(oc_stage *st, oc_bundle_reader *r, const oc_bundle_file *f,
                                 int unpack, uint64_t *bytes, oc_error *err);
/* Join the segments of the blob files[first] (all staged) into the whole
 * blob, verified against its name (and inflated when unpack). */
oc_stage_result oc_stage_join(oc_stage *st, const oc_bundle_doc *d, size_t first, int unpack,
                              oc_error *err);
/* Inflate a blob already in place (the stage's or the store's, at path)
 * into a staged layer tar. */
oc_stage_result oc_stage_unpack(oc_stage *st, const char *hex, const char *path,
                                const char *media_type, oc_error *err);
/* Make every file received since the last call durable (one syncfs of the
 * store's file system) and give it its name. */
int oc_stage_settle(oc_stage *st, oc_error *err);

/* Is this media type a layer's (a tar, compressed or not)? */
int oc_stage_is_layer_type(const char *media_type);

#endif
