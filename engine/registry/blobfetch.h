/* blobfetch.h - one blob from a registry into a file, verified: not a
 * layer (nothing is inflated), any media type (a signature's payload, an
 * SBOM, an attestation's envelope, a config).
 *
 * GET /v2/<repo>/blobs/<digest>: the bytes stream through the layer
 * pipeline in digest-only mode (io/blobpipe.h): hashed off the loop thread
 * and written to path as they are hashed, in bounded memory whatever the
 * size, fsynced; a broken body continues with Range. The blob is handed
 * over only when its size and SHA-256 are those asked for; a mismatch is
 * fetched once more from scratch (transport damage), then fails naming the
 * blob. A failed fetch removes path. */
#ifndef OC_ENGINE_REGISTRY_BLOBFETCH_H
#define OC_ENGINE_REGISTRY_BLOBFETCH_H

#include <stdint.h>

#include "engine/registry/registry.h"

/* err NULL: path holds the verified bytes (the caller's from now on). */
typedef void (*oc_blob_fetched)(void *opaque, const oc_error *err);

/* Start fetching digest (size bytes) of repo into path (its directory
 * must exist; work_dir is scratch on the same file system). Returns -1
 * (done never called) only when it cannot start. */
int oc_blob_fetch(oc_registry *r, const char *repo, const char *digest, uint64_t size,
                  const char *path, const char *work_dir, oc_blob_fetched done, void *opaque,
                  oc_error *err);

#endif
