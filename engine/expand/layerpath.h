/* layerpath.h - the names inside a layer tar: normalisation and OCI
 * whiteouts.
 *
 * A name is untrusted. It is normalised to a relative path without empty
 * or "." components; an absolute name or one with a ".." component is
 * refused (never silently re-rooted). The last component then says what the
 * entry means (OCI image spec, layer changesets): ".wh..wh..opq" makes its
 * directory opaque, ".wh.NAME" deletes NAME from the lower layers, other
 * ".wh..wh."-prefixed names are AUFS bookkeeping and are ignored, anything
 * else is content. A whiteout that names ".", ".." or nothing is refused. */
#ifndef OC_ENGINE_LAYERPATH_H
#define OC_ENGINE_LAYERPATH_H

#include <stddef.h>

typedef enum oc_lp_kind {
    OC_LP_CONTENT = 0, /* an ordinary entry at path */
    OC_LP_ROOT,        /* the layer's root itself ("." or "./") */
    OC_LP_WHITEOUT,    /* delete path (the whited-out name) from lower layers */
    OC_LP_OPAQUE,      /* hide all lower content of directory path ("" = root) */
    OC_LP_META,        /* other ".wh..wh." names: ignored */
} oc_lp_kind;

#define OC_LP_WH_PREFIX ".wh."
#define OC_LP_OPAQUE_NAME ".wh..wh..opq"

/* Normalise name into out, which must hold strlen(name) + 1 bytes. Returns 0,
 * or -1 with *why saying what is wrong ("absolute path", "'..' in path",
 * "empty name"). An empty result means the root. */
int oc_lp_normalize(const char *name, char *out, const char **why);

/* Classify a normalised path. For WHITEOUT and OPAQUE, path is rewritten in
 * place to the affected path (the whited-out name, or the opaque directory).
 * Returns the kind, or -1 with *why for a whiteout naming ".", ".." or
 * nothing. */
int oc_lp_classify(char *path, const char **why);

#endif
