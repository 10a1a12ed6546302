/* manifest.h - image manifests, indexes and configs: parsing, media types
 * and platform selection.
 *
 * Handles Docker schema 2 manifests and manifest lists, OCI manifests and
 * indexes. Schema 1 is recognised and refused as unsupported. Content-Type
 * values may carry parameters ("; charset=utf-8"); when the type is missing
 * or generic the body's mediaType / schemaVersion decides. */
#ifndef OC_ENGINE_MANIFEST_H
#define OC_ENGINE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

#define OC_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OC_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define OC_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OC_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OC_MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define OC_MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* The Accept header value for manifest requests (all four supported types). */
#define OC_MANIFEST_ACCEPT                                                                         \
    OC_MT_DOCKER_MANIFEST ", " OC_MT_DOCKER_LIST ", " OC_MT_OCI_MANIFEST ", " OC_MT_OCI_INDEX

typedef enum oc_manifest_kind {
    OC_MANIFEST_UNKNOWN = 0,
    OC_MANIFEST_IMAGE, /* docker schema 2 or OCI image manifest */
    OC_MANIFEST_INDEX, /* docker manifest list or OCI index */
    OC_MANIFEST_SCHEMA1,
} oc_manifest_kind;

typedef struct oc_descriptor {
    char *media_type;
    char *digest; /* "sha256:..." (validated) */
    int64_t size;
} oc_descriptor;

typedef struct oc_platform {
    char *os;
    char *arch;
    char *variant; /* NULL when none */
} oc_platform;

typedef struct oc_manifest {
    oc_manifest_kind kind;
    char *media_type; /* resolved media type */
    /* image manifest */
    oc_descriptor config;
    oc_descriptor *layers;
    size_t n_layers;
    /* index */
    oc_descriptor *manifests;
    oc_platform *platforms; /* platforms[i] belongs to manifests[i]; fields NULL if absent */
    size_t n_manifests;
} oc_manifest;

/* Decide the kind from Content-Type (parameters ignored) and the body.
 * Schema 1 -> OC_MANIFEST_SCHEMA1; JSON that is none of these -> UNKNOWN. */
oc_manifest_kind oc_manifest_sniff(const char *content_type, const char *body, size_t len);

/* Parse a manifest or index. Schema 1 is OC_E_UNSUPPORTED with a message that
 * says it is deprecated; malformed JSON or descriptors are OC_E_FORMAT naming
 * the field. Every digest is validated. */
int oc_manifest_parse(oc_manifest *m, const char *content_type, const char *body, size_t len,
                      oc_error *err);
void oc_manifest_free(oc_manifest *m);

/* "os/arch[/variant]"; OC_E_USAGE when malformed. */
int oc_platform_parse(oc_platform *p, const char *text, oc_error *err);
void oc_platform_free(oc_platform *p);
/* "linux/arm64/v8"; malloc'd. */
char *oc_platform_string(const oc_platform *p);
/* Does have satisfy want? os and arch equal; a wanted variant must equal,
 * except that arm64 treats "v8" and no variant as the same; no wanted variant
 * matches any (arm: prefers the highest, see select). */
int oc_platform_matches(const oc_platform *want, const oc_platform *have);

/* Index entry for want; OC_E_PLATFORM listing every platform the index offers
 * ("linux/amd64, linux/arm64/v8, ...") when none matches. Returns the index
 * into m->manifests or -1. */
int oc_manifest_select_platform(const oc_manifest *m, const oc_platform *want, oc_error *err);

/* An image config's rootfs.diff_ids (each validated "sha256:..."), plus its
 * os/architecture/variant when present. */
typedef struct oc_image_config {
    char **diff_ids;
    size_t n_diff_ids;
    oc_platform platform;
} oc_image_config;

int oc_image_config_parse(oc_image_config *c, const char *body, size_t len, oc_error *err);
void oc_image_config_free(oc_image_config *c);

#endif
