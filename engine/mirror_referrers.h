/* mirror_referrers.h - the referrers of a mirrored image (signatures, SBOMs,
 * attestations) into the store, for mirror --referrers (DESIGN.md 7.5).
 *
 * For each manifest of an image (the tag's digest, and each platform's
 * manifest of an index), its referrers are found:
 *   - through the referrers API (GET /v2/<repo>/referrers/<digest>, with
 *     ?artifactType= when one type is wanted) when the registry has it: the
 *     first request to a registry decides, and the others wait for its
 *     answer (an OCI index: it has; 404, or anything that is not an index:
 *     it has not, for the rest of the run);
 *   - else through the fallback tag sha256-<hex> (an index of referrers);
 *   - and always through cosign's tags sha256-<hex>.sig, .att, .sbom.
 * Tags are not probed blindly: the repository's tag list (tags/list, once
 * per repository and run) says which of those exist, and only those are
 * asked for (a HEAD each; one whose digest index.json records is known and
 * not fetched again). Then recursively: the referrers of each referrer, up
 * to depth levels. Every referrer manifest, index and blob is fetched with
 * its exact bytes, checked against its digest and size, and placed in the
 * store's OCI layout; its index.json descriptor is handed to queue only
 * once everything it reaches is in place:
 *   - a referrer manifest: no ref name, key NAME@DIGEST, annotations naming
 *     NAME and its subject, and its artifactType;
 *   - a tag of the tag schema: NAME:sha256-<hex>[.sig|.att|.sbom], with the
 *     subject annotation, as the registry served it.
 * A referrer that fails (a blob that does not verify, a manifest missing)
 * fails the image's referrers with an error naming the artifact; the others
 * still land. */
#ifndef OC_ENGINE_MIRROR_REFERRERS_H
#define OC_ENGINE_MIRROR_REFERRERS_H

#include <stddef.h>

#include "engine/registry/registry.h"
#include "engine/store/catalog_batch.h"
#include "engine/store/store.h"

#define OC_REFERRERS_DEPTH_DEFAULT 3

typedef struct oc_referrers_opts {
    unsigned depth;           /* levels of referrers of referrers; 0 = the default */
    const char *const *types; /* artifact types to keep; none = every type */
    size_t n_types;
    /* An index.json descriptor ready to be written (key NAME@DIGEST or
     * NAME:TAG; text from oc_oci_descriptor_text). */
    int (*queue)(void *opaque, const char *key, const char *text, oc_error *err);
    void *queue_opaque;
} oc_referrers_opts;

/* The run's shared state: which registries have the referrers API, the
 * repositories' tag lists. view is the index.json the run knows (what is
 * known is not fetched again). */
typedef struct oc_referrers_ctx oc_referrers_ctx;

oc_referrers_ctx *oc_referrers_ctx_new(oc_engine *e, oc_store *store, oc_catalog_batch *view,
                                       const oc_referrers_opts *o, oc_error *err);
void oc_referrers_ctx_free(oc_referrers_ctx *c);

/* stored: referrers and tags fetched now; known: found in the store
 * already; err NULL when every one landed. */
typedef void (*oc_referrers_done)(void *opaque, size_t stored, size_t known, const oc_error *err);

/* The referrers of image name (the store's name) whose manifests are
 * digests, from repository repo of registry r (host: its name in the
 * source annotation). done runs once, from the loop. -1 (done never runs)
 * only when it cannot start. */
int oc_referrers_fetch(oc_referrers_ctx *c, oc_registry *r, const char *host, const char *repo,
                       const char *name, const char *const *digests, size_t n,
                       oc_referrers_done done, void *opaque, oc_error *err);

#endif
