/* emit_tar.h - the docker-load tarball (DESIGN.md 6.1): <config-hex>.json with
 * the registry's exact bytes, <layer-hex>/layer.tar per distinct layer in
 * manifest order, manifest.json last; written under a temporary name beside
 * TARFILE and renamed only when complete.
 *
 * Layers are placed in manifest order as soon as the ones before them are
 * in: the next layer streams straight into the tarball while it downloads
 * (pull.h layer_output; its member's header is reserved and written when
 * its size is known), so its bytes are written once instead of to a temp
 * file and again into the tarball; a layer that verified before its turn
 * is copied in when its turn comes (pull.h layer_verified). The result is
 * byte for byte what an unstreamed emission writes. */
#ifndef OC_ENGINE_EMIT_TAR_H
#define OC_ENGINE_EMIT_TAR_H

#include <stdint.h>

#include <jansson.h>

#include "engine/registry/pull.h"
#include "io/error.h"
#include "io/outfile.h"

/* The manifest.json entry of one image:
 * {"Config": "<hex>.json", "RepoTags": [repo_tag], "Layers": ["<hex>/layer.tar", ...]}.
 * repo_tag may be NULL (no RepoTags, for a digest-only reference). */
json_t *oc_emit_manifest_entry(const oc_pulled_image *img, const char *repo_tag);

typedef struct oc_tarball oc_tarball;

/* The temporary file beside tarfile and its writer; layer data copied in
 * is written as mode says (io/outfile.h). */
oc_tarball *oc_tarball_open(const char *tarfile, oc_write_mode mode, oc_error *err);
/* pull.h layer_output for a tarball (opaque is the oc_tarball): the next
 * layer to place goes straight into it, once the layers before it are in. */
int oc_tarball_layer_output(void *opaque, const oc_pulled_image *img, size_t index, int *fd,
                            uint64_t *base, oc_error *err);
/* pull.h layer_verified for a tarball: places what can be placed now; an
 * error is kept and reported by oc_tarball_finish. */
void oc_tarball_layer_verified(void *opaque, const oc_pulled_image *img, size_t index,
                               const char *path, uint64_t tar_size);
/* Write the rest, close, fsync and rename into place; frees tb. */
int oc_tarball_finish(oc_tarball *tb, const oc_pulled_image *img, const char *repo_tag,
                      oc_error *err);
/* Remove the temporary; frees tb. NULL is fine. */
void oc_tarball_abort(oc_tarball *tb);

/* open + finish: the whole tarball from layer files. */
int oc_emit_tarball(const oc_pulled_image *img, const char *repo_tag, const char *tarfile,
                    oc_error *err);

#endif
