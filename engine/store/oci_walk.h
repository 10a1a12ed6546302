/* oci_walk.h - what a descriptor of the store's OCI layout reaches: the
 * blob it names, and when that is an image manifest its config and layers,
 * when an index each child it names (and what those reach). verify, gc,
 * list and export --format oci all follow index.json this way.
 *
 * Each blob met is reported once per walk with whether it is in place (a
 * regular file of the size its descriptor gives: a stat, no hashing). A
 * document that is there is read and parsed (manifests and indexes are
 * small, bounded by OC_MANIFEST_MAX); one that does not parse is reported
 * BAD and not followed. An index's child that is missing is reported
 * MISSING too, with kind CHILD: a platform the store does not hold (the
 * index keeps its registry bytes, which name every platform), which is not
 * damage, while a missing config or layer of a manifest that is there is. */
#ifndef OC_ENGINE_STORE_OCI_WALK_H
#define OC_ENGINE_STORE_OCI_WALK_H

#include <stdint.h>

#include "engine/store/store.h"

typedef enum oc_oci_ref_kind {
    OC_OCI_TOP = 0, /* what index.json's descriptor names */
    OC_OCI_CHILD,   /* a manifest (or index) an index names */
    OC_OCI_CONFIG,
    OC_OCI_LAYER,
} oc_oci_ref_kind;

typedef enum oc_oci_ref_state {
    OC_OCI_PRESENT = 0,
    OC_OCI_MISSING,
    OC_OCI_WRONG_SIZE,
    OC_OCI_BAD, /* a manifest or index that cannot be read or parsed (why) */
} oc_oci_ref_state;

typedef struct oc_oci_ref {
    oc_oci_ref_kind kind;
    oc_oci_ref_state state;
    const char *digest; /* "sha256:<hex>" */
    const char *hex;
    const char *media_type;
    uint64_t size;      /* as its descriptor says */
    const char *parent; /* the digest of the document that names it (NULL: TOP) */
    const char *why;    /* BAD: why */
} oc_oci_ref;

typedef void (*oc_oci_ref_cb)(void *opaque, const oc_oci_ref *r);

/* Walk the descriptor (media_type, digest, size). Returns the number of
 * refs that are not PRESENT, not counting missing CHILDren. */
unsigned oc_store_oci_walk(const oc_store *s, const char *media_type, const char *digest,
                           uint64_t size, oc_oci_ref_cb cb, void *opaque);

#endif
