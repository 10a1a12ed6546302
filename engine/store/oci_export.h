/* oci_export.h - export --format oci: images of a store as one OCI image
 * layout in a tar (an "oci-archive", as `skopeo copy oci-archive:` and
 * `podman load` read it), made of the store's exact bytes (DESIGN.md 7.5).
 *
 * Members: oci-layout, index.json (the entries of STORE/oci/index.json
 * for the images asked for, annotations and all, sorted by ref name), the
 * directories blobs/ and blobs/sha256/, then every blob those entries
 * reach, each once: manifests and indexes, configs, compressed layers (an
 * index's children the store does not hold are left out; they are
 * platforms it never mirrored). Every image is found and every blob
 * checked in place (size) before the first byte is written; the tar is
 * written under a temporary name beside TARFILE, fsynced and renamed, so
 * a failure leaves no TARFILE. Blob data is copied by the kernel
 * (io/tarcopy.h). */
#ifndef OC_ENGINE_STORE_OCI_EXPORT_H
#define OC_ENGINE_STORE_OCI_EXPORT_H

#include <stddef.h>

#include "engine/store/store.h"
#include "io/error.h"
#include "occystrap/occystrap.h"

/* An image without its exact bytes in the store is OC_E_NOTFOUND naming
 * it; stats may be NULL (images: entries written, layers: layer blobs). */
int oc_store_oci_export(const oc_store *s, const oc_image_tag *items, size_t n, const char *tarfile,
                        int force_readwrite, oc_export_stats *stats, oc_error *err);

#endif
