/* layout.h - serve's view of a store: the repositories, tags, manifests and
 * blobs it answers for, read from the store's exact bytes (STORE/oci/, the
 * OCI image layout of DESIGN.md 7.4) and, with allow_rewritten, from the
 * 0.2.0 layout for images that have no exact bytes.
 *
 * What is served. Every descriptor of STORE/oci/index.json with an
 * org.opencontainers.image.ref.name "NAME:TAG" makes NAME's repository
 * (names.h) answer for TAG (a digest "tag", NAME:sha256:<hex>, is reachable
 * by digest only); so do the tag schema's tags (sha256-<hex>.sig, the
 * fallback sha256-<hex>), which are named like any tag. A referrer's
 * descriptor (no ref name; org.occystrap.referrer.image = NAME) makes NAME's
 * repository answer for it by digest, and the referrers API list it under
 * its subject. A repository answers for a manifest only if it is listed
 * that way or is a child of a listed index, and for a blob only if one of
 * those manifests names it; the store side guarantees that everything a
 * listed descriptor reaches is in place (blobs appear by rename after they
 * verified). Each manifest is read once, its bytes checked against its
 * digest, and kept parsed (children, blobs, subject, artifactType,
 * annotations) for as long as some repository reaches it: manifests never
 * change under a digest, so a reload reads only the new ones.
 *
 * Reloads. oc_srv_layout_refresh stats index.json and catalog.json and
 * rebuilds the view when either changed (inode, size or mtime: both are
 * replaced by rename); otherwise it costs two stat calls. A file that does
 * not parse keeps the previous view, is reported once, and is not read
 * again until it changes.
 *
 * Rewritten images (allow_rewritten): a catalog.json entry whose NAME:TAG
 * index.json lacks is served as an OCI image manifest made here: the config
 * as stored (its digest is that of its bytes), each layer.tar as an
 * uncompressed layer (application/vnd.oci.image.layer.v1.tar, digest =
 * diff_id, size = the file's). Its digest is not the registry's, which is
 * logged once per image. Without allow_rewritten such images are counted
 * and logged as not served. */
#ifndef OC_SERVE_LAYOUT_H
#define OC_SERVE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "io/digest.h"
#include "io/error.h"
#include "occystrap/occystrap.h"

typedef enum oc_srv_blob_kind {
    OC_SRV_BLOB_OCI = 0,   /* STORE/oci/blobs/sha256/<digest hex> */
    OC_SRV_BLOB_LAYER_TAR, /* STORE/<file_hex>/layer.tar (rewritten images) */
    OC_SRV_BLOB_CONFIG,    /* STORE/<file_hex>.json (rewritten images) */
} oc_srv_blob_kind;

typedef struct oc_srv_blob {
    oc_srv_blob_kind kind;
    char file_hex[OC_SHA256_HEX_LEN + 1]; /* LAYER_TAR, CONFIG */
} oc_srv_blob;

typedef struct oc_srv_manifest {
    char hex[OC_SHA256_HEX_LEN + 1];
    char *media_type;
    uint64_t size;
    char *bytes; /* rewritten: the manifest itself; NULL: the OCI blob */
    int is_index;
    char (*children)[OC_SHA256_HEX_LEN + 1]; /* an index's manifests */
    char **child_types;                      /* their descriptors' media types */
    size_t n_children;
    char (*blobs)[OC_SHA256_HEX_LEN + 1]; /* an image's config and layers */
    oc_srv_blob *blob_locs;               /* where each is (rewritten), else NULL */
    size_t n_blobs;
    char subject[OC_SHA256_HEX_LEN + 1]; /* "" when none */
    char *artifact_type;                 /* artifactType, else config.mediaType; or NULL */
    json_t *annotations;                 /* or NULL */
    unsigned gen;                        /* the last view that reached or kept it */
} oc_srv_manifest;

typedef struct oc_srv_tag {
    char *tag;
    const oc_srv_manifest *m;
} oc_srv_tag;

typedef struct oc_srv_repo oc_srv_repo;
typedef struct oc_srv_layout oc_srv_layout;

typedef void (*oc_srv_log_fn)(void *opaque, oc_log_level level, const char *line);

typedef struct oc_srv_layout_opts {
    const char *store;
    int keep_host;
    int allow_rewritten;
    /* A repository keeps serving by digest, for this long, the manifests
     * and blobs an earlier view reached and the current one does not (a
     * pull that resolved a tag before it moved): 0 an hour, < 0 not at all */
    int retire_seconds;
    oc_srv_log_fn log; /* warnings and notes about what is (not) served */
    void *log_opaque;
} oc_srv_layout_opts;

/* A view of store (which must be a directory); nothing is read until the
 * first refresh. */
oc_srv_layout *oc_srv_layout_new(const oc_srv_layout_opts *o, oc_error *err);
void oc_srv_layout_free(oc_srv_layout *l);
/* Rebuild the view if the store's index.json or catalog.json changed: 1
 * rebuilt, 0 unchanged, -1 the new files could not be used (the previous
 * view stays; err says why; the same files give 0 from then on). */
int oc_srv_layout_refresh(oc_srv_layout *l, oc_error *err);

/* The view's numbers, for the start line. */
typedef struct oc_srv_layout_stats {
    size_t repos, tags, manifests, rewritten, not_served;
    unsigned reloads;
} oc_srv_layout_stats;
void oc_srv_layout_get_stats(const oc_srv_layout *l, oc_srv_layout_stats *st);

/* Repository names, sorted. */
const char *const *oc_srv_layout_repo_names(const oc_srv_layout *l, size_t *n);
const oc_srv_repo *oc_srv_layout_repo(const oc_srv_layout *l, const char *name);

/* A repository's tags, sorted (byte order). */
const oc_srv_tag *oc_srv_repo_tags(const oc_srv_repo *r, size_t *n);
const oc_srv_manifest *oc_srv_repo_tag(const oc_srv_repo *r, const char *tag);
const oc_srv_manifest *oc_srv_repo_manifest(const oc_srv_repo *r, const char *hex);
const oc_srv_blob *oc_srv_repo_blob(const oc_srv_repo *r, const char *hex);
/* The manifests of the repository whose subject is hex (none: n = 0). */
const oc_srv_manifest *const *oc_srv_repo_referrers(const oc_srv_repo *r, const char *hex,
                                                    size_t *n);

/* The file holding a manifest (not rewritten) or a blob, malloc'd. */
char *oc_srv_layout_file(const oc_srv_layout *l, const char *hex, const oc_srv_blob *where);

#endif
