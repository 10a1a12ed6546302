/* layertar.h - a layer's uncompressed tar read the way containerd reads it.
 *
 * containerd and moby unpack layers with Go's archive/tar; we read them
 * with libarchive, which is more forgiving. Where the two would give a
 * different tree, the entry is refused with an error naming the layer and
 * the entry, never written differently (DESIGN 7.2, "Reading a layer's
 * tar"):
 * - a warning from libarchive's reader (a malformed PAX record, a bad ACL)
 *   is an error; only its notice that a UTF-8 name is not in the current
 *   locale is not (the name's bytes are kept, as Go keeps them);
 * - a header that fails its checksum (libarchive's ARCHIVE_RETRY) is an
 *   error, not the next entry;
 * - a regular, non-sparse entry is as large as its header (or its PAX
 *   "size") says: one whose old-GNU "realsize" field, or PAX
 *   "GNU.sparse.realsize"/"SCHILY.realsize" without a sparse map, gives
 *   another size is refused (libarchive would use that size and pad the
 *   file with zeros; Go ignores the field);
 * - one zero block followed by more headers is refused (libarchive stops
 *   there and drops the rest silently; Go reports a bad header).
 * Every error names the layer and the entry it concerns, or the last entry
 * read before a header that could not be read, and never prints a NULL
 * where libarchive gave no reason. */
#ifndef OC_ENGINE_EXPAND_LAYERTAR_H
#define OC_ENGINE_EXPAND_LAYERTAR_H

#include <stddef.h>

#include <archive.h>
#include <archive_entry.h>

#include "io/error.h"

typedef struct oc_layertar oc_layertar;

/* Read the tar in fd (rewound to 0 first; the caller keeps the fd). label
 * names the layer in errors, path the file. */
oc_layertar *oc_layertar_open(int fd, const char *label, const char *path, oc_error *err);
void oc_layertar_free(oc_layertar *t);

/* The next entry: 1 and *e, 0 at the end, -1 with err set. */
int oc_layertar_next(oc_layertar *t, struct archive_entry **e, oc_error *err);

/* The libarchive reader, for the current entry's data. */
struct archive *oc_layertar_archive(oc_layertar *t);

/* libarchive's message for a's last error, else a cause made from its
 * errno, else "libarchive gave no reason": never NULL. buf holds cap bytes
 * and is used only when a message has to be made. */
const char *oc_archive_why(struct archive *a, char *buf, size_t cap);

#endif
