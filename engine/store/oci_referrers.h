/* oci_referrers.h - the referrers of the store's images (signatures, SBOMs,
 * attestations) as index.json records them (DESIGN.md 7.5), and which of
 * them an image reaches.
 *
 * Two kinds of descriptor in STORE/oci/index.json are referrers. Both carry
 * the annotations org.occystrap.referrer.image (the store image NAME they
 * belong to) and org.occystrap.referrer.subject (the digest they refer to):
 *   - a referrer manifest: no ref name, key "NAME@DIGEST" (oci_index.h); its
 *     subject is the manifest's "subject" (an OCI 1.1 artifact);
 *   - a tag of the tag schema, named like any tag ("NAME:sha256-<hex>.sig",
 *     ".att", ".sbom": cosign's; "NAME:sha256-<hex>": the referrers fallback
 *     tag, an index listing the referrers of sha256:<hex>); its subject is
 *     sha256:<hex>.
 * An image reaches its referrers through its manifests (the tag's digest,
 * and each manifest of an index the store holds): every referrer whose
 * subject is one of them, then, recursively, every referrer of those. A
 * referrer no image reaches (its image was removed, or its tag moved to
 * another digest) is an orphan: gc drops it. */
#ifndef OC_ENGINE_STORE_OCI_REFERRERS_H
#define OC_ENGINE_STORE_OCI_REFERRERS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/store/oci_index.h"
#include "io/error.h"

/* The tag schema: "sha256-<hex>" (the fallback tag) or
 * "sha256-<hex>.sig|.att|.sbom" (cosign's). Returns 1 and the subject
 * "sha256:<hex>" in subject (72 bytes) and the suffix (".sig", or "" for
 * the fallback tag) in *suffix; 0 when tag is not one of those. */
int oc_oci_tag_schema(const char *tag, char subject[72], const char **suffix);

typedef struct oc_oci_referrer {
    char *key;           /* index.json's key: "NAME@DIGEST", or the ref name of a tag */
    char *image;         /* NAME */
    char *tag;           /* a tag-schema tag, or NULL for a referrer manifest */
    char *subject;       /* "sha256:..." */
    char *digest;        /* of the manifest (or index) the descriptor names */
    char *media_type;    /* its media type */
    char *artifact_type; /* the descriptor's artifactType, or NULL */
    uint64_t size;
    int live;  /* some image reaches it (after oc_oci_referrers_resolve) */
    int depth; /* 1: refers to an image's manifest; 2: to a referrer of one; ... */
} oc_oci_referrer;

/* A descriptor's referrer facts: 1 it is one (r filled, strings malloc'd),
 * 0 it is not, -1 out of memory. key is its index.json key. */
int oc_oci_referrer_parse(const char *key, const char *text, oc_oci_referrer *r, oc_error *err);
void oc_oci_referrer_free(oc_oci_referrer *r);

typedef struct oc_oci_referrers oc_oci_referrers;

oc_oci_referrers *oc_oci_referrers_new(void);
void oc_oci_referrers_free(oc_oci_referrers *rs);
/* Every referrer of an index.json, with each image's manifests as
 * subjects: the tag entries' digests and the children of the indexes they
 * name that the store holds (read from blobs; s may be NULL: then the tag
 * entries' digests only). Then resolved. */
oc_oci_referrers *oc_oci_referrers_of_index(const oc_oci_index *x, const oc_store *s,
                                            oc_error *err);
/* Add one descriptor (ignored unless it is a referrer): 1 added, 0 not one,
 * -1 out of memory. */
int oc_oci_referrers_add(oc_oci_referrers *rs, const char *key, const char *text, oc_error *err);
/* The same from fields (an entry of oci_read.h): key, image, subject,
 * digest, media_type needed; tag and artifact_type may be NULL. */
int oc_oci_referrers_add_fields(oc_oci_referrers *rs, const char *key, const char *image,
                                const char *tag, const char *subject, const char *digest,
                                const char *media_type, const char *artifact_type, uint64_t size,
                                oc_error *err);
/* NAME's manifest digest is in the store: its referrers are reachable. */
int oc_oci_referrers_subject(oc_oci_referrers *rs, const char *image, const char *digest,
                             oc_error *err);
/* Mark what the subjects reach (live, depth). */
int oc_oci_referrers_resolve(oc_oci_referrers *rs, oc_error *err);

size_t oc_oci_referrers_count(const oc_oci_referrers *rs);
const oc_oci_referrer *oc_oci_referrers_at(const oc_oci_referrers *rs, size_t i);

/* The referrers NAME reaches from the given manifest digests (its tag's
 * digest and platform manifests), in breadth-first order (depth set in the
 * copy handed to fn). A non-zero return of fn stops and is returned. */
typedef int (*oc_oci_referrer_visit)(void *opaque, const oc_oci_referrer *r, int depth);
int oc_oci_referrers_reach(const oc_oci_referrers *rs, const char *image,
                           const char *const *digests, size_t n, oc_oci_referrer_visit fn,
                           void *opaque);

#endif
