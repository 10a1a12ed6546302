/* emit_tar.h - the docker-load tarball (DESIGN 5.1): <config-hex>.json with
 * the registry's exact bytes, <layer-hex>/layer.tar per distinct layer in
 * manifest order, manifest.json last; written under a temporary name beside
 * TARFILE and renamed only when complete. */
#ifndef OC_ENGINE_EMIT_TAR_H
#define OC_ENGINE_EMIT_TAR_H

#include <jansson.h>

#include "engine/pull.h"
#include "io/error.h"

/* The manifest.json entry of one image:
 * {"Config": "<hex>.json", "RepoTags": [repo_tag], "Layers": ["<hex>/layer.tar", ...]}.
 * repo_tag may be NULL (no RepoTags, for a digest-only reference). */
json_t *oc_emit_manifest_entry(const oc_pulled_image *img, const char *repo_tag);

int oc_emit_tarball(const oc_pulled_image *img, const char *repo_tag, const char *tarfile,
                    oc_error *err);

#endif
