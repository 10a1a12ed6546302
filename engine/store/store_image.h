/* store_image.h - the manifest file of one image in a store
 * (manifest-<image>-<tag>.json, or manifest.json of a plain directory).
 *
 * The file is docker's manifest.json for that image, a one-element list:
 *   [{"Config": "<config-hex>.json",
 *     "ImageName": "<image>",              (unique names only)
 *     "Layers": ["<layer-hex>/layer.tar", ...],
 *     "Occystrap": {...},                  (ours; absent in 0.2.0 stores)
 *     "RepoTags": ["<name>:<tag>"]}]
 * "Occystrap" records where and when the image came from, for incremental
 * sync: registry, repository, tag, manifest_digest, index_digest (when the
 * tag named an index), platform, media_type, fetched_at (UTC, RFC 3339).
 *
 * Parsing is strict about the names it will later join to the store path:
 * Config must be <64 hex>.json and each layer <64 hex>/layer.tar, so a
 * hostile or damaged file can never point outside the store. */
#ifndef OC_ENGINE_STORE_IMAGE_H
#define OC_ENGINE_STORE_IMAGE_H

#include <stddef.h>

#include <jansson.h>

#include "io/digest.h"
#include "io/error.h"

typedef struct oc_store_image {
    char *config; /* "<hex>.json" */
    char config_hex[OC_SHA256_HEX_LEN + 1];
    char **repo_tags;
    size_t n_repo_tags;
    char **layers;                            /* "<hex>/layer.tar", manifest order */
    char (*layer_hex)[OC_SHA256_HEX_LEN + 1]; /* hex part of layers[i] */
    size_t n_layers;
    char *image_name; /* "ImageName", or NULL */
    /* "Occystrap" (NULL fields when absent) */
    int has_ours;
    char *registry;
    char *repository;
    char *tag;
    char *manifest_digest;
    char *index_digest;
    char *platform;
    char *media_type;
    char *fetched_at;
} oc_store_image;

/* Parse a manifest file; what names it in errors. */
int oc_store_image_parse(oc_store_image *si, const char *text, size_t len, const char *what,
                         oc_error *err);
/* Read and parse path. */
int oc_store_image_load(oc_store_image *si, const char *path, oc_error *err);
void oc_store_image_free(oc_store_image *si);

/* docker's manifest.json entry {"Config", "RepoTags", "Layers"} (in that
 * order, as fetch-to-tarfile writes it) with the given RepoTags. */
json_t *oc_store_image_docker_entry(const oc_store_image *si, const char *const *repo_tags,
                                    size_t n_repo_tags);

/* The "Occystrap" object of a manifest file: where and when the image came
 * from (see the top); a NULL field is left out. NULL if memory ran out.
 * Mirror's writer, import and the bundle's manifest all write it so. */
typedef struct oc_store_origin {
    const char *registry, *repository, *tag, *manifest_digest, *index_digest, *platform,
        *media_type, *fetched_at;
} oc_store_origin;
json_t *oc_store_origin_json(const oc_store_origin *o);

/* Is name "<64 lowercase hex><suffix>"? Copies the hex into hex if so. */
int oc_store_name_is_hex(const char *name, const char *suffix, char hex[OC_SHA256_HEX_LEN + 1]);

#endif
