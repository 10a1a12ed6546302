/* ref.h - image references: registry host, repository, tag or digest.
 *
 * Two ways in: the legacy CLI's three words (REGISTRY IMAGE TAG) and the
 * list-file form [REGISTRY/]REPO(:TAG|@sha256:DIGEST) with docker's rules
 * (the first component is a registry if it has a '.' or ':' or is
 * "localhost"). "docker.io" and "index.docker.io" mean
 * "registry-1.docker.io", and a one-part Docker Hub repository gets
 * "library/". Repository components follow the distribution grammar
 * ([a-z0-9]+ joined by '.', '_', '__' or '-'+, separated by '/'), tags
 * [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, digests sha256:<64 hex>. */
#ifndef OC_ENGINE_REF_H
#define OC_ENGINE_REF_H

#include "io/error.h"

typedef struct oc_ref {
    char *registry;   /* host[:port] used for requests, e.g. "registry-1.docker.io" */
    char *repository; /* e.g. "library/busybox" */
    char *tag;        /* NULL when the reference is by digest only */
    char *digest;     /* "sha256:...", or NULL */
} oc_ref;

/* REGISTRY IMAGE TAG of the legacy commands; TAG may be "sha256:...". */
int oc_ref_from_parts(oc_ref *ref, const char *registry, const char *image,
                      const char *tag_or_digest, oc_error *err);
/* [REGISTRY/]REPO[:TAG][@sha256:DIGEST]; no tag and no digest means "latest".
 * default_registry is used when the text names none (NULL = docker.io). */
int oc_ref_parse(oc_ref *ref, const char *text, const char *default_registry, oc_error *err);
void oc_ref_free(oc_ref *ref);

/* The tag, or the digest when there is no tag. */
const char *oc_ref_tag_or_digest(const oc_ref *ref);

/* docker's familiar name for RepoTags: "busybox:latest" for Docker Hub's
 * library/busybox, "org/img:tag" for other Docker Hub repositories,
 * "quay.io/org/img:tag" elsewhere; by digest: "name@sha256:...". malloc'd. */
char *oc_ref_familiar(const oc_ref *ref);
/* The same name without tag or digest: "busybox", "org/img",
 * "quay.io/org/img". malloc'd. */
char *oc_ref_familiar_name(const oc_ref *ref);

/* "registry/repository:tag" or "...@digest", for messages. malloc'd. */
char *oc_ref_string(const oc_ref *ref);

/* Registry host normalisation alone ("docker.io" -> "registry-1.docker.io"). */
const char *oc_registry_canonical(const char *registry);

#endif
