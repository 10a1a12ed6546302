/* oci_layout.h - the store's exact bytes on disk: an OCI image layout
 * (image-spec 1.1, layout 1.0.0) in STORE/oci/ beside the 0.2.0 files
 * (DESIGN.md 7.5).
 *
 *   STORE/oci/oci-layout            {"imageLayoutVersion": "1.0.0"}
 *   STORE/oci/index.json            the images and tags (oci_index.h)
 *   STORE/oci/blobs/sha256/<hex>    every blob with the registry's exact
 *                                   bytes: compressed layers, configs,
 *                                   image manifests, indexes
 *
 * A blob appears only by rename (or by link) after its bytes verified
 * against its digest and size, and is never rewritten in place: a second
 * copy that arrives (another process, a repair) replaces it by rename with
 * the same bytes. A config is one inode with STORE/<hex>.json (a hard link;
 * a copy only where the file system refuses links), an index one inode with
 * STORE/.occystrap/index/<hex>.json. Nothing here touches index.json; a
 * descriptor is added there (under the catalog lock) only after every blob
 * it reaches is in place. */
#ifndef OC_ENGINE_STORE_OCI_LAYOUT_H
#define OC_ENGINE_STORE_OCI_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/store/store.h"
#include "io/error.h"

#define OC_STORE_OCI_DIR "oci"
#define OC_STORE_OCI_BLOBS "oci/blobs/sha256"
#define OC_STORE_OCI_LAYOUT_TEXT "{\"imageLayoutVersion\": \"1.0.0\"}"

/* STORE/oci/blobs/sha256 and STORE/oci/oci-layout, made when missing
 * (WRITE mode). Every put below needs it first. */
int oc_store_oci_prepare(oc_store *s, oc_error *err);

/* STORE/oci/blobs/sha256/<hex>, malloc'd. */
char *oc_store_oci_blob_path(const oc_store *s, const char *hex);

/* Is the blob in place: a regular file of size bytes (a stat; verify
 * hashes)? 1 yes, 0 no. */
int oc_store_oci_have(const oc_store *s, const char *hex, uint64_t size);

/* oc_pull_opts.have_blob for this store (opaque is the oc_store). */
int oc_store_have_blob(void *opaque, const char *digest, uint64_t size);

/* Move tmp_path (verified bytes of blob hex, on the store's file system)
 * into place: its size is checked against size, then rename and fsync of
 * the directory. */
int oc_store_oci_put_file(oc_store *s, const char *hex, const char *tmp_path, uint64_t size,
                          oc_error *err);
/* A small verified blob from memory (a manifest): written atomically unless
 * already in place. */
int oc_store_oci_put_bytes(oc_store *s, const char *hex, const void *data, size_t len,
                           oc_error *err);
/* The verified file src (size bytes, e.g. STORE/<hex>.json) as blob hex
 * too: a hard link, so both names are one inode; a copy when the file
 * system refuses the link. Nothing to do when the blob is in place. */
int oc_store_oci_link(oc_store *s, const char *hex, const char *src, uint64_t size, oc_error *err);

#endif
