/* bundle_read.h - reading one part of a bundle (a file, or standard input
 * for "-"), plain or zstd-compressed, and refusing anything that is not
 * exactly what its manifest says (DESIGN.md 7.8).
 *
 * The first member must be occystrap-bundle.json (at most
 * OC_BUNDLE_DOC_MAX bytes, checked from its header before a byte is read),
 * then inventory.json (bounded the same way), oci-layout and index.json,
 * each with the digest and size the manifest gives; then the part's files
 * in the manifest's order, each a regular file with exactly the path and
 * size listed; then the end of the archive. A symlink, a hard link, a
 * device, a directory, an absolute path, a path with "..", a member out of
 * order or not listed, a size that differs, and a tar that ends early
 * (truncated) are each an error naming the part and the member. The bytes
 * of the files are the caller's to check against their digests. */
#ifndef OC_ENGINE_BUNDLE_BUNDLE_READ_H
#define OC_ENGINE_BUNDLE_BUNDLE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "engine/bundle/bundle_doc.h"
#include "engine/bundle/inventory.h"
#include "io/error.h"

typedef struct oc_bundle_reader oc_bundle_reader;

/* Open a part and read its manifest and meta files (checked). */
oc_bundle_reader *oc_bundle_reader_open(const char *path, oc_error *err);
void oc_bundle_reader_close(oc_bundle_reader *r);

const char *oc_bundle_reader_path(const oc_bundle_reader *r);
const oc_bundle_doc *oc_bundle_reader_doc(const oc_bundle_reader *r);
/* The inventory it carries (parsed; the reader keeps it). */
oc_inventory *oc_bundle_reader_inventory(oc_bundle_reader *r);
/* The inventory, now the caller's (the reader keeps none). */
oc_inventory *oc_bundle_reader_take_inventory(oc_bundle_reader *r);
/* Its inventory's digest, "sha256:..." */
const char *oc_bundle_reader_inventory_digest(const oc_bundle_reader *r);

/* The next file of this part: 1 and *f, 0 when the part has ended as its
 * manifest says, -1 (err names the part and the member). */
int oc_bundle_reader_next(oc_bundle_reader *r, const oc_bundle_file **f, oc_error *err);
/* The current file's bytes, block by block: 1 and (buf, len), 0 at its end
 * (all its bytes given), -1 (truncated, a damaged stream). */
int oc_bundle_reader_data(oc_bundle_reader *r, const void **buf, size_t *len, oc_error *err);

#endif
