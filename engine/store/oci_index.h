/* oci_index.h - STORE/oci/index.json, the images and tags of the store's
 * OCI image layout (DESIGN.md 7.5), as a document: parsed, looked up by
 * ref name, changed, written back.
 *
 * The file is an image index:
 *   {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
 *    "manifests": [DESCRIPTOR, ...]}
 * with one descriptor per stored name and tag, sorted by its ref name
 * (annotation org.opencontainers.image.ref.name = "NAME:TAG"), and one per
 * referrer manifest of an image (a signature, an SBOM: DESIGN.md 7.5), which
 * has no ref name but our annotations org.occystrap.referrer.image = NAME
 * and org.occystrap.referrer.subject = the digest it refers to; its key is
 * "NAME@DIGEST" (a ref name never holds '@' in our store). Descriptors
 * without a ref name that are not ours are kept, after the keyed ones. We
 * write each descriptor on a line of its own as compact JSON with sorted
 * keys, so that a run reads a large index one small object at a time; any
 * other well-formed index.json is read too (then as one document).
 *
 * In memory a descriptor is its ref name, its digest and its text (about
 * 400 bytes), not a JSON tree. Writing is the caller's business, under the
 * store's catalog lock (oc_store_oci_index_replace). */
#ifndef OC_ENGINE_STORE_OCI_INDEX_H
#define OC_ENGINE_STORE_OCI_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "engine/store/store.h"
#include "io/error.h"

#define OC_OCI_REF_NAME "org.opencontainers.image.ref.name"
#define OC_OCI_CONTAINERD_NAME "io.containerd.image.name"
#define OC_OCI_SOURCE "org.occystrap.source"
/* A referrer (a signature, an SBOM, an attestation) and the tag-schema tags
 * (cosign's sha256-<hex>.sig/.att/.sbom, the fallback sha256-<hex>) carry
 * the store image they belong to and the digest they refer to. */
#define OC_OCI_REFERRER_IMAGE "org.occystrap.referrer.image"
#define OC_OCI_REFERRER_SUBJECT "org.occystrap.referrer.subject"

typedef struct oc_oci_index oc_oci_index;

oc_oci_index *oc_oci_index_new(void);
void oc_oci_index_free(oc_oci_index *x);
/* Parse index.json text; what names it in errors. Every descriptor needs a
 * mediaType, a valid sha256 digest and a size, else OC_E_FORMAT naming it. */
oc_oci_index *oc_oci_index_parse(const char *text, size_t len, const char *what, oc_error *err);
/* STORE/oci/index.json as on disk now; a missing file is an empty index. */
int oc_store_oci_index_load(const oc_store *s, oc_oci_index **out, oc_error *err);
/* Write x as STORE/oci/index.json atomically: a temporary in the store's
 * scratch, fsync, rename, fsync of STORE/oci. The caller holds the catalog
 * lock and has merged with what is on disk. */
int oc_store_oci_index_replace(oc_store *s, const oc_oci_index *x, oc_error *err);

/* One descriptor set (text) or dropped (text NULL) in index.json on its
 * own: under the catalog lock, merged with the file as it is now, written
 * atomically (a drop from a store without index.json writes nothing). */
int oc_store_oci_index_update(oc_store *s, const char *ref_name, const char *text, oc_error *err);

/* Below, ref_name is a descriptor's key: its ref name "NAME:TAG", or a
 * referrer's "NAME@DIGEST". */

/* The digest of the descriptor named ref_name ("NAME:TAG"), or NULL. */
const char *oc_oci_index_digest(const oc_oci_index *x, const char *ref_name);
/* Its text (compact JSON), or NULL. */
const char *oc_oci_index_get(const oc_oci_index *x, const char *ref_name);
/* Add or replace the descriptor named ref_name (text: compact JSON from
 * oc_oci_descriptor_text, whose ref name annotation must be ref_name). */
int oc_oci_index_set(oc_oci_index *x, const char *ref_name, const char *text, oc_error *err);
/* Drop it; 1 if it was there. */
int oc_oci_index_remove(oc_oci_index *x, const char *ref_name);
/* Descriptors held (named and unnamed). */
size_t oc_oci_index_count(const oc_oci_index *x);

/* Each descriptor in the order written (keyed ones sorted by key, then
 * the unnamed); ref_name NULL for those. A non-zero return stops the walk
 * and is returned. */
typedef int (*oc_oci_index_visit)(void *opaque, const char *ref_name, const char *digest,
                                  const char *text);
int oc_oci_index_foreach(const oc_oci_index *x, oc_oci_index_visit fn, void *opaque);

/* The file's text (see the top of this header); malloc'd, *len without the
 * NUL. */
char *oc_oci_index_dump(const oc_oci_index *x, size_t *len, oc_error *err);

/* ---- descriptors ---- */

typedef struct oc_oci_desc {
    const char *media_type; /* as served (canonical spelling) */
    const char *digest;     /* "sha256:<hex>" */
    uint64_t size;
    const char *image;      /* the store's name: docker's familiar name */
    const char *tag;        /* a tag, "TAG+os-arch[-variant]", or a digest */
    const char *registry;   /* where it came from, for the source annotation */
    const char *repository; /* (NULL: no source annotation) */
    const char *source_tag; /* the tag it was mirrored by, or NULL for a digest */
    const char *platform;   /* "os/arch[/variant]" for a platform's descriptor, or NULL */
    /* Referrers (DESIGN.md 7.5): the digest the manifest refers to (its
     * subject; for a tag-schema tag, the digest the tag names), or NULL.
     * With a subject and no tag: a referrer's descriptor, keyed IMAGE@DIGEST
     * (no ref name); with both: a tag-schema tag's. */
    const char *subject;
    const char *artifact_type; /* its artifactType, or NULL */
} oc_oci_desc;

/* The descriptor as compact JSON with sorted keys: mediaType, digest,
 * size, platform and artifactType when given, the referrer annotations
 * with a subject, and (with a tag) the annotations ref.name "IMAGE:TAG",
 * io.containerd.image.name (the fully qualified name: REGISTRY/REPOSITORY
 * with Docker Hub as docker.io when they are given, else from IMAGE) and
 * org.occystrap.source "REGISTRY/REPOSITORY[:TAG]@DIGEST". malloc'd. */
char *oc_oci_descriptor_text(const oc_oci_desc *d, oc_error *err);
/* The key a descriptor (a jansson object) is kept under in index.json:
 * its ref name, or for a referrer's "IMAGE@DIGEST"; malloc'd, NULL when it
 * has neither (another tool's unnamed descriptor) or memory ran out. */
struct json_t;
char *oc_oci_descriptor_key(struct json_t *d);
/* The key of a referrer's descriptor: "IMAGE@DIGEST"; malloc'd. */
char *oc_oci_referrer_key(const char *image, const char *digest);
/* "IMAGE:TAG" (ref.name); malloc'd. */
char *oc_oci_ref_name(const char *image, const char *tag);
/* The fully qualified name of a store image and tag, as containerd names
 * images: "docker.io/library/busybox:latest" for "busybox", the name as it
 * is when its first component is a host; "@sha256:..." for a digest.
 * malloc'd. */
char *oc_oci_qualified_name(const char *image, const char *tag);

/* A descriptor's fields from its text: 0, or -1 (OC_E_FORMAT) when it has
 * no mediaType, valid digest or size. Strings malloc'd. */
int oc_oci_descriptor_parse(const char *text, char **media_type, char **digest, uint64_t *size,
                            oc_error *err);

#endif
