/* oci_read.h - reading an OCI image layout (image-spec 1.1, layout 1.0.0)
 * such as the store's exact bytes in STORE/oci/: its index.json entries
 * with their annotations, and its blobs by digest.
 *
 * Each entry of index.json names one image and tag by the annotation
 * org.opencontainers.image.ref.name = "NAME:TAG" (NAME the store's image
 * name, e.g. "busybox", "quay.io/org/x", "127.0.0.1:5000/fixtures/x"; a
 * digest entry's TAG is the digest "sha256:..."). Reading never writes;
 * small blobs (manifests, indexes) are read whole and checked against
 * their digest and size, large ones are opened for the caller to stream. */
#ifndef OC_ENGINE_OCI_READ_H
#define OC_ENGINE_OCI_READ_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

#define OC_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define OC_ANNOTATION_SOURCE "org.occystrap.source"
#define OC_ANNOTATION_REFERRER_IMAGE "org.occystrap.referrer.image"
#define OC_ANNOTATION_REFERRER_SUBJECT "org.occystrap.referrer.subject"

typedef struct oc_oci_entry {
    char *ref_name;   /* the annotation as written, NULL when absent */
    char *name;       /* NAME of "NAME:TAG", or NULL when ref_name is not of that form */
    char *tag;        /* TAG (a tag, or a digest "sha256:...") */
    char *media_type; /* of the manifest or index it points at */
    char *digest;     /* "sha256:..." (validated) */
    int64_t size;
    int has_platform; /* the descriptor carries a "platform" */
    char *source;     /* org.occystrap.source, or NULL */
    /* A referrer or a tag of the tag schema (oci_referrers.h): the store
     * image it belongs to and the digest it refers to; NULL for images. */
    char *referrer_of;
    char *subject;
    char *artifact_type; /* the descriptor's artifactType, or NULL */
} oc_oci_entry;

typedef struct oc_oci_layout {
    char *dir;
    oc_oci_entry *entries; /* in index.json's order */
    size_t n_entries;
} oc_oci_layout;

/* Read DIR/oci-layout and DIR/index.json. OC_E_NOTFOUND when DIR has no
 * index.json (the store holds no exact bytes); OC_E_FORMAT naming the file
 * and the field when either is malformed or the layout version is not
 * 1.x. */
int oc_oci_layout_read(oc_oci_layout *l, const char *dir, oc_error *err);
void oc_oci_layout_free(oc_oci_layout *l);

/* Split "NAME:TAG" (TAG after the last ':' that follows the last '/', or
 * a trailing ":sha256:<hex>" / "@sha256:<hex>"); malloc'd parts. -1 when
 * text has no tag. */
int oc_oci_split_ref_name(const char *text, char **name, char **tag);

/* DIR/blobs/sha256/<hex>, malloc'd; NULL for a malformed digest or no
 * memory. */
char *oc_oci_blob_path(const oc_oci_layout *l, const char *digest);

/* A small blob, whole, after checking that it exists, has size bytes (when
 * size >= 0), at most max, and hashes to digest. *body is malloc'd and
 * NUL-terminated. OC_E_NOTFOUND when the file is missing. */
int oc_oci_read_small(const oc_oci_layout *l, const char *digest, int64_t size, size_t max,
                      char **body, size_t *len, oc_error *err);

/* Open a blob for reading after checking it is a regular file of size
 * bytes (stat only, no hashing: the registry it is pushed to checks the
 * digest). Returns the fd, or -1 (OC_E_NOTFOUND when missing, OC_E_DIGEST
 * when its size is not size). */
int oc_oci_open_blob(const oc_oci_layout *l, const char *digest, uint64_t size, oc_error *err);

#endif
