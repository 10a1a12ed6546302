/* recreate.h - docker-load tarballs out of a store, with no network
 * (DESIGN.md 6.1): recreate-image for one image, export for several.
 *
 * Members: for each image in the order given, its config <hex>.json (the
 * store's bytes) unless already written, then each of its layers not yet
 * written as <hex>/ and <hex>/layer.tar; manifest.json last, a list with one
 * entry per distinct image ({"Config", "RepoTags", "Layers"}, as
 * fetch-to-tarfile writes it; two tags of one image share an entry, as in
 * `docker save a:1 a:2`). RepoTags are those recorded in the image's
 * manifest file. So a shared layer is stored once, and a one-image tarball
 * equals, member for member, what fetch-to-tarfile writes for that image.
 *
 * Every image, config and layer is located (and each layer's size checked
 * against its known-good marker when it has one) before the first byte is
 * written; the tarball is written under a temporary name beside TARFILE,
 * fsynced and renamed, so a failure leaves no TARFILE. Layer data is copied
 * by the kernel (io/tarcopy.h). */
#ifndef OC_ENGINE_RECREATE_H
#define OC_ENGINE_RECREATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/store/store.h"
#include "io/error.h"
#include "io/tarcopy.h"
#include "occystrap/occystrap.h"

/* An image of the store by name and tag (the public oc_image_tag). */
typedef oc_image_tag oc_recreate_item;

typedef struct oc_recreate_stats {
    size_t images;      /* distinct images (manifest.json entries) */
    size_t layers;      /* layer members written */
    size_t layers_dups; /* layer references served by a member written earlier */
    oc_tarcopy_stats copy;
} oc_recreate_stats;

typedef struct oc_recreate_opts {
    int force_readwrite; /* no copy_file_range / sendfile (measurements) */
} oc_recreate_opts;

/* stats and opts may be NULL. */
int oc_recreate(const oc_store *s, const oc_recreate_item *items, size_t n_items,
                const char *tarfile, const oc_recreate_opts *opts, oc_recreate_stats *stats,
                oc_error *err);

#endif
