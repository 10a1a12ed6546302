/* expand_image.h - an image's layers expanded into directories: from a
 * store without network (oc_expand_image, public in occystrap.h: the merged
 * root filesystem of IMAGE:TAG), and the --expand step of
 * fetch-to-extracted. Both read the store through its files (catalog.json
 * -> manifest file -> Layers, DESIGN.md 7.1), and check every name taken
 * from them, so a damaged store cannot point the expand outside itself. */
#ifndef OC_ENGINE_EXPAND_IMAGE_H
#define OC_ENGINE_EXPAND_IMAGE_H

#include "engine/expand/expand.h"
#include "engine/registry/engine.h"
#include "engine/registry/pull.h"
#include "io/error.h"

/* After img was written into dir: each layer as-is into dir/<hex>/layer/
 * (kept when already there) and the merged tree into dir/manifest/ or, with
 * unique names, dir/manifest-<image>-<tag>/ (replaced). A summary (INFO) and
 * what could not be restored (WARNING) go to e's events. */
int oc_fetch_expand(const oc_engine *e, const oc_pulled_image *img, const char *dir,
                    const char *image, const char *tag, int unique_names, const oc_expand_opts *xo,
                    oc_error *err);

#endif
