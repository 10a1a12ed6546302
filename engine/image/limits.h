/* limits.h - the sizes of the documents occystrap accepts, defined once.
 *
 * Every JSON document is read whole into memory (they are small; layers are
 * streamed and never held), so each has a bound that a hostile or broken
 * server or file cannot push past. The registries' own limits guide the
 * values: distribution refuses manifests over 4 MiB; image configs of real
 * images reach a few MiB (long histories), so they get 64 MiB. */
#ifndef OC_ENGINE_IMAGE_LIMITS_H
#define OC_ENGINE_IMAGE_LIMITS_H

#include <stdint.h>

/* An image manifest or index, as a registry serves it. */
#define OC_MANIFEST_MAX (4u * 1024 * 1024)
/* An image config blob. */
#define OC_IMAGE_CONFIG_MAX (64u * 1024 * 1024)
/* A settings file of ours or docker's (--config, ~/.docker/config.json). */
#define OC_SETTINGS_FILE_MAX (4u * 1024 * 1024)
/* The store's own JSON files: catalog.json, manifest files, markers' reads. */
#define OC_STORE_JSON_MAX (64u * 1024 * 1024)

/* A bundle's manifest (occystrap-bundle.json) and an inventory: one entry
 * per blob and image, about 150 bytes each, so a few hundred thousand. */
#define OC_BUNDLE_DOC_MAX (64u * 1024 * 1024)

/* The decompression-bomb guard's default (OC_LIMIT_DEFAULT): a layer's tar,
 * or an image's tars in all, may grow to the larger of this floor and this
 * many times the compressed bytes. Real layers stay well inside it: text
 * compresses 3-10 times, binaries 2-4, and the corpus's 1 GiB layer of
 * repeated text 2; a layer of 1 GiB or less passes whatever its ratio. */
#define OC_BOMB_FLOOR ((uint64_t)1 << 30)
#define OC_BOMB_RATIO 100

/* The guard's default bound for a layer of gz compressed bytes:
 * max(OC_BOMB_FLOOR, OC_BOMB_RATIO x gz). Pulls and imports both use it. */
static inline uint64_t oc_bomb_bound(uint64_t gz)
{
    uint64_t r = gz > UINT64_MAX / OC_BOMB_RATIO ? UINT64_MAX : gz * OC_BOMB_RATIO;
    return r > OC_BOMB_FLOOR ? r : OC_BOMB_FLOOR;
}

/* Requests in flight, and the stall bound, when the caller sets none. */
#define OC_DEFAULT_JOBS 32
#define OC_DEFAULT_PER_REGISTRY 8
#define OC_DEFAULT_STALL_SECONDS 30
/* The longest a request waits for a rate limit or a Retry-After. */
#define OC_DEFAULT_RATE_WAIT_SECONDS 60

#endif
