/* names.h - the names serve answers to: which repository a stored image is
 * served as, and whether a request's repository name, tag or digest is one
 * a registry may be asked for (anything else is refused before the store is
 * looked at, so no request text ever becomes part of a file path).
 *
 * Repository names (the shared layout contract): the store's image name
 * with its registry host dropped (Docker Hub's one-part names get
 * "library/": "busybox" -> "library/busybox", "quay.io/org/x" -> "org/x",
 * "127.0.0.1:5000/fixtures/x" -> "fixtures/x"); with keep_host the host
 * stays as the first component ("quay.io/org/x", "docker.io/library/
 * busybox"). */
#ifndef OC_SERVE_NAMES_H
#define OC_SERVE_NAMES_H

#include <stddef.h>

#include "io/digest.h"
#include "io/error.h"

/* The longest repository name served (distribution's limit). */
#define OC_SRV_NAME_MAX 255
/* The longest tag (distribution's grammar). */
#define OC_SRV_TAG_MAX 128

/* The repository a store image name is served as; malloc'd. OC_E_FORMAT
 * when store_name is not an image name. */
char *oc_srv_repo_name(const char *store_name, int keep_host, oc_error *err);

/* A repository name of a request (len bytes): components of the
 * distribution grammar ([a-z0-9]+ joined by '.', '_', '__' or '-'+)
 * separated by '/', at most OC_SRV_NAME_MAX bytes; with keep_host the first
 * component may also be a host[:port]. */
int oc_srv_name_valid(const char *name, size_t len, int keep_host);

/* A tag: [A-Za-z0-9_][A-Za-z0-9_.+-]{0,127} ('+' is accepted because the
 * store names the platforms of an index TAG+os-arch). */
int oc_srv_tag_valid(const char *tag, size_t len);

typedef enum oc_srv_ref_kind {
    OC_SRV_REF_TAG = 0,
    OC_SRV_REF_DIGEST,  /* sha256:<64 lowercase hex>; hex filled in */
    OC_SRV_REF_INVALID, /* has an algorithm part but is no valid sha256 digest */
    OC_SRV_REF_BAD_TAG, /* no digest and not a valid tag */
} oc_srv_ref_kind;

/* What a manifest reference (len bytes) is. */
oc_srv_ref_kind oc_srv_ref_classify(const char *ref, size_t len, char hex[OC_SHA256_HEX_LEN + 1]);

#endif
