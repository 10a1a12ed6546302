/* emit_dir.h - a pulled image written into a store directory (DESIGN.md 6.2
 * and 5.3): <config-hex>.json, <layer-hex>/layer.tar, the manifest file
 * and the catalog entry.
 *
 * Order, so that a crash at any point leaves a store that verifies: the
 * config and its marker; each fetched layer renamed from the run directory
 * into <hex>/layer.tar, the directories fsynced, then its marker; the
 * manifest file (atomically); last the catalog entry (merged under the
 * catalog lock). A layer the store already held (have_layer) is left as it
 * is. With unique names the manifest file is manifest-<image>-<tag>.json
 * with "ImageName" and our "Occystrap" keys (store_image.h); without, it is
 * a plain docker manifest.json. */
#ifndef OC_ENGINE_EMIT_DIR_H
#define OC_ENGINE_EMIT_DIR_H

#include "engine/registry/pull.h"
#include "engine/store/store.h"
#include "io/error.h"

typedef struct oc_emit_dir_opts {
    const char *image;    /* the catalog's name: IMAGE as given */
    const char *tag;      /* TAG as given (a tag or a digest) */
    const char *repo_tag; /* RepoTags value, or NULL for none */
    int unique_names;
    const char *registry;   /* recorded in our keys */
    const char *repository; /* recorded in our keys */
    int no_catalog;         /* the caller lists the image (a batch: catalog_commit.h) */
    /* The registry's exact bytes too (oci_layout.h): the config linked as its
     * blob, the layers' compressed blobs placed, the manifest (and the
     * index the tag named) written as blobs; unless no_catalog, the tag's
     * descriptor then goes into index.json. Without it and unless
     * no_catalog, a descriptor index.json held for image:tag is dropped (it
     * would name what the tag named before). oc_store_oci_prepare first. */
    int exact;
} oc_emit_dir_opts;

/* img's layer files must be in the store's run directory (same file
 * system); they are moved into place and their paths set to NULL. */
int oc_emit_dir(oc_store *s, oc_pulled_image *img, const oc_emit_dir_opts *o, oc_error *err);

/* The descriptor (compact JSON, malloc'd) of what the tag named: the index
 * when there was one, else the image manifest, with the annotations of
 * oci_index.h. */
char *oc_emit_dir_descriptor(const oc_pulled_image *img, const oc_emit_dir_opts *o, oc_error *err);

#endif
