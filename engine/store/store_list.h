/* store_list.h - what a store holds, as a JSON document (for `list
 * --json`, and for the table `list` prints).
 *
 *   {"store": DIR,
 *    "images": [{"image", "tag", "manifest_file", "in_catalog", "config",
 *                "repo_tags": [...], "layers": N, "bytes": B,
 *                "registry", "repository", "manifest_digest", "index_digest",
 *                "platform", "fetched_at"   (ours; null in 0.2.0 stores)}],
 *    "problems": ["<file>: <why>", ...],
 *    "distinct_layers": N, "layer_bytes": B,   (each shared layer once)
 *    "bytes_without_sharing": B}               (every image's layers summed)
 * Images are the catalog's entries sorted by image and tag, then manifest
 * files the catalog does not list ("in_catalog": false). Sizes come from
 * stat, nothing is hashed (that is verify's job). */
#ifndef OC_ENGINE_STORE_LIST_H
#define OC_ENGINE_STORE_LIST_H

#include <jansson.h>

#include "engine/store/store.h"
#include "io/error.h"

/* NULL with err when the store cannot be listed or its catalog is damaged;
 * a damaged manifest file is only a "problems" entry. */
json_t *oc_store_list(const oc_store *s, oc_error *err);

#endif
