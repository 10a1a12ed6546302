/* emit_dir.h - a pulled image as files in a directory (DESIGN 5.2 and 5.3):
 * <config-hex>.json, <layer-hex>/layer.tar, the manifest file and
 * catalog.json. With unique names the manifest file is
 * manifest-<image with / as _>-<tag with / as _>.json carrying "ImageName",
 * layers already present are kept, and catalog.json is merged. Every file
 * appears atomically (temporary in DIR/.tmp, fsync, rename). */
#ifndef OC_ENGINE_EMIT_DIR_H
#define OC_ENGINE_EMIT_DIR_H

#include "engine/pull.h"
#include "io/error.h"

/* DIR/.tmp, created if needed: the work directory for pulls into dir. */
char *oc_emit_dir_workdir(const char *dir, oc_error *err);

/* image and tag are the names the catalog records (IMAGE and TAG as given);
 * repo_tag is the RepoTags value. Layer files are moved into place. */
int oc_emit_dir(oc_pulled_image *img, const char *dir, const char *image, const char *tag,
                const char *repo_tag, int unique_names, oc_error *err);

/* "manifest-<image/->_>-<tag/->_>.json"; malloc'd. */
char *oc_emit_manifest_filename(const char *image, const char *tag);

#endif
