/* inventory.h - what a store holds, as a document that travels between
 * stores (DESIGN.md 7.8): `occystrap inventory STORE` writes one on the far
 * side of an air gap to be carried back, and every bundle carries the one
 * its import leaves behind, so the next bundle can be made against it with
 * no way back at all.
 *
 *   {"blobs": [{"digest": "sha256:...", "size": N}, ...],   sorted by digest
 *    "created": "YYYY-MM-DDTHH:MM:SSZ",
 *    "images": [{"digest", "mediaType", "ref": "NAME:TAG", "size"}, ...],  by ref
 *    "mediaType": "application/vnd.occystrap.inventory.v1+json",
 *    "version": 1}
 *
 * blobs are the blobs of the store's OCI layout that its index.json entries
 * reach (the ones gc keeps), images its named index.json entries. Written
 * in doc_text.h's form; read back strictly (every digest valid, sizes
 * integers, a bounded file: OC_BUNDLE_DOC_MAX); a newer version is refused
 * naming it. */
#ifndef OC_ENGINE_BUNDLE_INVENTORY_H
#define OC_ENGINE_BUNDLE_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/store/store.h"
#include "io/digest.h"
#include "io/error.h"

#define OC_INVENTORY_MEDIA_TYPE "application/vnd.occystrap.inventory.v1+json"
#define OC_INVENTORY_VERSION 1

typedef struct oc_inventory oc_inventory;

typedef struct oc_inv_image {
    const char *ref;        /* "NAME:TAG" */
    const char *media_type; /* of what the tag names */
    const char *digest;
    uint64_t size;
} oc_inv_image;

oc_inventory *oc_inventory_new(void);
void oc_inventory_free(oc_inventory *inv);

/* digest "sha256:<hex>"; a blob added twice keeps its first size. */
int oc_inventory_add_blob(oc_inventory *inv, const char *digest, uint64_t size, oc_error *err);
/* 1 and *size (may be NULL) when listed, else 0. */
int oc_inventory_has_blob(oc_inventory *inv, const char *digest, uint64_t *size);
/* Add or replace the image ref. */
int oc_inventory_set_image(oc_inventory *inv, const char *ref, const char *media_type,
                           const char *digest, uint64_t size, oc_error *err);
/* The image ref, or NULL; valid until the inventory changes. */
const oc_inv_image *oc_inventory_image(const oc_inventory *inv, const char *ref);
size_t oc_inventory_n_blobs(oc_inventory *inv);
size_t oc_inventory_n_images(const oc_inventory *inv);
/* "created" as read, or NULL for a new one. */
const char *oc_inventory_created(const oc_inventory *inv);
/* Every blob of from into into, and every image of from (replacing into's). */
int oc_inventory_merge(oc_inventory *into, oc_inventory *from, oc_error *err);

/* What the store holds: its named index.json entries and every blob they
 * reach that is in place. */
int oc_inventory_of_store(const oc_store *s, oc_inventory **out, oc_error *err);

/* The document (see the top), created now. malloc'd, *len without NUL. */
char *oc_inventory_dump(oc_inventory *inv, size_t *len, oc_error *err);
/* Parse a document; what names it in errors. */
oc_inventory *oc_inventory_parse(const char *text, size_t len, const char *what, oc_error *err);

/* Is text "NAME:TAG" as a store names an image (a name, ':' and a tag of the
 * distribution grammar or '+' platform tag, or a digest)? Split into
 * malloc'd parts when so. */
int oc_bundle_ref_ok(const char *text, char **name, char **tag);

#endif
