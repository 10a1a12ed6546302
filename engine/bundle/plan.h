/* plan.h - what a bundle holds (DESIGN.md 7.8): the images asked for (or
 * every image of the store's OCI index), each image only when it is not
 * already what the inventory it is made against names, every blob their
 * entries reach that the inventory does not list, and the parts they go
 * into.
 *
 * Selecting: IMAGE:TAG is that entry of STORE/oci/index.json and its
 * platform entries (TAG+os-arch); IMAGE alone every tag of it; none, every
 * named entry. An image the catalog has but the OCI index lacks has no
 * exact bytes and cannot be carried: named, it is an error ("mirror it
 * again"); with none named, it is left out and counted.
 *
 * Splitting: a part is at most `split` bytes (with zstd: compressed, by
 * zstd's bound on what the tar can become). Every part holds the manifest,
 * the inventory, oci-layout and index.json first, then its share of the
 * files in order; a blob that does not fit in what is left of a part is
 * cut there into segments (unless that room is under an eighth of a part,
 * or 1 MiB: then the part is closed), so parts are filled and only blobs
 * larger than the room left are cut. Segment digests are left empty: the
 * writer fills them (oc_bundle_hash_segments) so a dry run reads no
 * blob. */
#ifndef OC_ENGINE_BUNDLE_PLAN_H
#define OC_ENGINE_BUNDLE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "engine/bundle/bundle_doc.h"
#include "engine/bundle/inventory.h"
#include "engine/store/store.h"
#include "io/error.h"

typedef struct oc_bundle_plan_opts {
    const char *const *images; /* IMAGE[:TAG]; none = every image */
    size_t n_images;
    oc_inventory *since;    /* what the receiving store holds, or NULL */
    const char *since_from; /* "inventory FILE" / "bundle sha256:..." */
    const char *since_digest;
    uint64_t split; /* bytes per part; 0 = one part */
    int zstd;
    const char *creator;
} oc_bundle_plan_opts;

typedef struct oc_bundle_plan {
    oc_bundle_doc *doc;   /* sealed once the segments are hashed */
    oc_inventory *after;  /* what the receiving store holds after the import */
    char *inventory_text; /* its document (the member inventory.json) */
    size_t inventory_len;
    char *index_text; /* index.json: the bundle's images' descriptors */
    size_t index_len;
    uint64_t *part_bytes; /* each part's tar size (before compression) */
    size_t unchanged;     /* images left out: the inventory names them at the same digest */
    size_t no_exact;      /* catalog images without exact bytes, left out */
    uint64_t required_bytes;
} oc_bundle_plan;

int oc_bundle_plan_make(const oc_store *s, const oc_bundle_plan_opts *o, oc_bundle_plan *p,
                        oc_error *err);
void oc_bundle_plan_free(oc_bundle_plan *p);

/* Read the blobs that are cut into segments, check each against its
 * digest, and fill in the segments' digests; then seal the manifest. */
int oc_bundle_hash_segments(const oc_store *s, oc_bundle_plan *p, oc_error *err);

/* The tar header (and its length) of a member: what the writer writes. */
int oc_bundle_member_header(const char *name, uint64_t size, unsigned char **hdr, size_t *len,
                            oc_error *err);
/* A member's size in the tar: its header, its bytes, their padding. */
uint64_t oc_bundle_member_size(size_t header_len, uint64_t size);

#endif
