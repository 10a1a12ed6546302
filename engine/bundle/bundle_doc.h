/* bundle_doc.h - the bundle manifest, occystrap-bundle.json, the first
 * member of every part of a bundle (DESIGN.md 7.8): what the whole bundle
 * holds and which part holds each piece.
 *
 *   {"bytes": N,                       the sum of the files' sizes
 *    "created": "...", "creator": "occystrap 0.3.0",
 *    "files": [{"digest", "mediaType", "part", "path", "size"}            a whole blob
 *              {"blob", "blobSize", "digest", "mediaType", "offset",      a segment of
 *               "part", "path", "size"}, ...],                            a larger one
 *    "id": "sha256:...",               names the bundle (the same in every part)
 *    "images": [{"catalog": {...} | null, "descriptor": {...}, "ref": "NAME:TAG"}],
 *    "mediaType": "application/vnd.occystrap.bundle.v1+json",
 *    "meta": [{"digest", "path": "inventory.json" | "oci-layout" | "index.json", "size"}],
 *    "part": K, "parts": N,
 *    "requires": [{"digest", "size"}], the blobs its images reach that it does
 *                                       not carry: the receiving store must hold them
 *    "since": null | {"blobs", "created", "digest", "from", "images"},
 *    "version": 1}
 *
 * A whole blob's path is blobs/sha256/<hex> and its digest sha256:<hex>; a
 * segment's path is segments/sha256/<blob hex>/<offset, 20 digits> and its
 * digest that of its own bytes. id is the SHA-256 of the manifest's text
 * with "id" empty and "part" 0, so every part of one bundle carries the
 * same id and a manifest edited by hand no longer matches it. Parsing is
 * strict: the version, every name, digest, size, part number, that a
 * blob's segments tile it exactly, that no path is listed twice, and that
 * each image's descriptor names its ref. */
#ifndef OC_ENGINE_BUNDLE_BUNDLE_DOC_H
#define OC_ENGINE_BUNDLE_BUNDLE_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "io/digest.h"
#include "io/error.h"

#define OC_BUNDLE_MEDIA_TYPE "application/vnd.occystrap.bundle.v1+json"
#define OC_BUNDLE_VERSION 1
#define OC_BUNDLE_MANIFEST_NAME "occystrap-bundle.json"
#define OC_BUNDLE_INVENTORY_NAME "inventory.json"
#define OC_BUNDLE_DIGEST_LEN (8 + OC_SHA256_HEX_LEN) /* "sha256:<hex>" and NUL */

/* The meta files every part carries, in this order after the manifest. */
enum {
    OC_BUNDLE_META_INVENTORY = 0,
    OC_BUNDLE_META_LAYOUT,
    OC_BUNDLE_META_INDEX,
    OC_BUNDLE_META_N
};
extern const char *const oc_bundle_meta_names[OC_BUNDLE_META_N];

typedef struct oc_bundle_file {
    char *path;
    char digest[OC_BUNDLE_DIGEST_LEN]; /* of this member's bytes */
    uint64_t size;
    unsigned part;    /* 1-based */
    char *media_type; /* of the blob, as the descriptor that reaches it says (or NULL) */
    int segment;      /* a piece of blob */
    char blob[OC_BUNDLE_DIGEST_LEN]; /* the whole blob (equal to digest when not a segment) */
    uint64_t blob_size;
    uint64_t offset;
} oc_bundle_file;

/* The 0.2.0 view of an image (its manifest file), when the source store
 * had one: the "Occystrap" keys and RepoTags of that file. The file's
 * Config and Layers are not carried: the import takes them from the
 * verified image manifest. */
typedef struct oc_bundle_catalog {
    char *manifest_digest; /* the image manifest the file describes (required) */
    char *registry, *repository, *tag, *index_digest, *platform, *media_type, *fetched_at;
    char **repo_tags;
    size_t n_repo_tags;
} oc_bundle_catalog;

typedef struct oc_bundle_image {
    char *ref; /* "NAME:TAG" */
    char *name, *tag;
    char *descriptor; /* compact JSON, as index.json holds it */
    char *media_type; /* parsed from it */
    char digest[OC_BUNDLE_DIGEST_LEN];
    uint64_t size;
    oc_bundle_catalog *catalog; /* or NULL */
} oc_bundle_image;

typedef struct oc_bundle_blob_ref {
    char digest[OC_BUNDLE_DIGEST_LEN];
    uint64_t size;
} oc_bundle_blob_ref;

typedef struct oc_bundle_doc {
    char id[OC_BUNDLE_DIGEST_LEN];
    char created[32];
    char *creator;
    unsigned part, parts;
    /* the inventory it was made against */
    int has_since;
    char since_digest[OC_BUNDLE_DIGEST_LEN];
    char *since_created;
    char *since_from; /* "inventory FILE" or "bundle sha256:..." */
    uint64_t since_blobs, since_images;
    oc_bundle_blob_ref meta[OC_BUNDLE_META_N];
    oc_bundle_image *images;
    size_t n_images, cap_images;
    oc_bundle_file *files;
    size_t n_files, cap_files;
    oc_bundle_blob_ref *requires;
    size_t n_requires, cap_requires;
    uint64_t bytes;
} oc_bundle_doc;

oc_bundle_doc *oc_bundle_doc_new(void);
void oc_bundle_doc_free(oc_bundle_doc *d);
void oc_bundle_catalog_free(oc_bundle_catalog *c);

/* Appending while a bundle is planned (strings are copied). */
oc_bundle_file *oc_bundle_doc_add_file(oc_bundle_doc *d, const char *path, oc_error *err);
oc_bundle_image *oc_bundle_doc_add_image(oc_bundle_doc *d, const char *ref, const char *descriptor,
                                         oc_error *err);
int oc_bundle_doc_add_require(oc_bundle_doc *d, const char *digest, uint64_t size, oc_error *err);

/* Set id from the content (call once everything is in). */
int oc_bundle_doc_seal(oc_bundle_doc *d, oc_error *err);
/* The text of part `part` (1..parts); malloc'd, *len without NUL. */
char *oc_bundle_doc_text(const oc_bundle_doc *d, unsigned part, size_t *len, oc_error *err);
/* Parse and check a manifest; what names it in errors (OC_E_FORMAT). */
oc_bundle_doc *oc_bundle_doc_parse(const char *text, size_t len, const char *what, oc_error *err);

#endif
