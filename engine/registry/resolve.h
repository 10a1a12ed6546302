/* resolve.h - what a tag names now: the digest of its manifest.
 *
 * The distribution spec has HEAD of /v2/<repo>/manifests/<tag> answer with
 * Docker-Content-Digest, and that is what we ask first: it costs no body
 * and Docker Hub does not count it against its pull limit. Some registries
 * and pull-through proxies (Nexus, Artifactory set-ups) answer HEAD with 405
 * or with 404 while GET of the same manifest works; then the manifest is
 * fetched with GET and its digest is the SHA-256 of the bytes, and the
 * registry is remembered (oc_registry_set_head_refused) so the rest of the
 * run asks it with GET straight away. A 404 is "not found" only when GET
 * says so too. A HEAD answer without a usable digest is followed by a GET
 * as well. */
#ifndef OC_ENGINE_RESOLVE_H
#define OC_ENGINE_RESOLVE_H

#include <stddef.h>

#include "engine/registry/registry.h"

/* digest: "sha256:..."; body, len and content_type: the manifest when it
 * was fetched with GET (else NULL, 0, NULL), valid during the call; err is
 * NULL on success. */
typedef void (*oc_resolve_done)(void *opaque, const char *digest, const char *body, size_t len,
                                const char *content_type, const oc_error *err);

/* Start resolving repo:tag on r (Accept: accept; a manifest larger than
 * max is refused). Returns -1 (done never called) only if it cannot
 * start. */
int oc_resolve_tag(oc_registry *r, const char *repo, const char *tag, const char *accept,
                   size_t max, oc_resolve_done done, void *opaque, oc_error *err);

#endif
