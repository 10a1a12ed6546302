/* cmd_expand.h - the command-line side of expanding: the `expand STORE
 * IMAGE TAG DIR` command (a merged root filesystem from a store, no
 * network) and the --expand step of fetch-to-extracted. Both read the store
 * through its files (DESIGN 5.3: catalog.json -> manifest file -> Layers),
 * print one summary line, and report not-restored owners and device nodes
 * once. */
#ifndef OC_ENGINE_CMD_EXPAND_H
#define OC_ENGINE_CMD_EXPAND_H

#include "engine/expand/expand.h"
#include "engine/registry/pull.h"
#include "io/error.h"

/* `expand STORE IMAGE TAG DIR`: returns the exit status (0, 1, 2). DIR must
 * not exist or be empty. */
int oc_cmd_expand(int argc, char **argv, const oc_expand_opts *xo, int quiet);

/* After img was written into dir: each layer as-is into dir/<hex>/layer/
 * (kept when already there) and the merged tree into dir/manifest/ or, with
 * unique names, dir/manifest-<image>-<tag>/ (replaced). */
int oc_fetch_expand(const oc_pulled_image *img, const char *dir, const char *image, const char *tag,
                    int unique_names, const oc_expand_opts *xo, int quiet, oc_error *err);

#endif
