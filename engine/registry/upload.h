/* upload.h - putting a blob and a manifest into a repository of a registry:
 * the push half of the distribution API.
 *
 * A blob upload walks: HEAD the blob (present: done) -> mount it from
 * another repository of the registry when one may hold it (POST
 * ?mount=&from=: 201 mounted; 202 means the registry opened an upload
 * session instead, which is used) -> POST an upload session -> the bytes:
 * a blob up to the chunk size in one PUT ?digest= with the body, a larger
 * one in PATCHes of the chunk size, each from the offset the registry
 * confirmed (its Range), then PUT ?digest= without a body -> the
 * registry's Docker-Content-Digest must be the digest.
 *
 * A PATCH that broke (connection, stall, 5xx, 429) is not sent again
 * blindly: the session's status is asked (GET of its URL: 204 with
 * Range "0-N") and the next PATCH starts at N+1. A session the registry
 * no longer accepts (404, 400, 416: distribution 2.8 refuses a session
 * whose stored size moved past its last answer) is started over; so is a
 * monolithic PUT that broke and left nothing behind (HEAD), and a commit
 * the registry refused because the bytes did not hash to the digest (once:
 * the bytes may have been damaged on the way). Every resume and restart
 * counts against the engine's retry budget. Uploads use the scope
 * "repository:REPO:pull,push" (and "repository:FROM:pull" for a mount);
 * a mount the registry or its token service refuses falls back to an
 * upload.
 *
 * The bytes come from a source: a file region (a store's blob) or a
 * stream that can only go on or start over (mirror --to); a stream source
 * may check the bytes before the commit (before_commit), so that a blob
 * whose source was corrupt is never committed. */
#ifndef OC_ENGINE_UPLOAD_H
#define OC_ENGINE_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "engine/registry/registry.h"

typedef enum oc_upload_outcome {
    OC_UPLOAD_PRESENT = 0, /* the repository had it already */
    OC_UPLOAD_MOUNTED,     /* linked from another repository of the registry */
    OC_UPLOAD_SENT,        /* its bytes were uploaded */
} oc_upload_outcome;

/* body's answers besides 0. */
enum { OC_UPLOAD_SOURCE_CANNOT = -1, OC_UPLOAD_SOURCE_FAILED = -2 };

typedef struct oc_upload_source {
    /* The request body for the blob's bytes [from, from + len): 0 with *out
     * filled; OC_UPLOAD_SOURCE_CANNOT when the source cannot give those
     * bytes (a stream asked to go back: the upload starts over from 0);
     * OC_UPLOAD_SOURCE_FAILED with err when the source failed for good. */
    int (*body)(void *opaque, uint64_t from, uint64_t len, oc_http_body *out, oc_error *err);
    /* The request that carried the last body ended: its resources (a file
     * descriptor) may go until the next body. NULL: nothing to release. */
    void (*release)(void *opaque);
    /* Every byte was sent: check them before the commit. ready(ready_opaque,
     * NULL) commits, ready(ready_opaque, err) abandons the upload with err.
     * NULL: nothing to check (the registry checks the digest at the commit). */
    void (*before_commit)(void *opaque, void (*ready)(void *ready_opaque, const oc_error *err),
                          void *ready_opaque);
    void *opaque;
} oc_upload_source;

typedef struct oc_upload_opts {
    const char *repo;       /* the repository the blob goes into */
    const char *digest;     /* "sha256:..." */
    uint64_t size;          /* its size in bytes */
    const char *mount_from; /* a repository of the same registry that may hold it, or NULL */
    int skip_head;          /* known to be absent: no HEAD first */
    uint64_t chunk_size;    /* bytes per PATCH; a blob up to this goes in one PUT; 0 = default */
    int stream;             /* the source is a stream: one PATCH, then the commit */
    oc_upload_source source;
    void (*on_sent)(void *opaque, uint64_t n); /* body bytes sent (again, after a resume) */
} oc_upload_opts;

#define OC_UPLOAD_DEFAULT_CHUNK (32u * 1024 * 1024)

typedef struct oc_upload_result {
    oc_upload_outcome outcome;
    uint64_t bytes_sent; /* body bytes sent, those sent again included */
    int resumes;         /* sends continued from the registry's offset */
    int restarts;        /* upload sessions started over */
} oc_upload_result;

typedef void (*oc_upload_done)(void *opaque, const oc_upload_result *res, const oc_error *err);

/* Start one blob's upload; done runs once, from the loop. -1 (done never
 * called) only when it cannot start. */
int oc_upload_blob(oc_registry *r, const oc_upload_opts *o, oc_upload_done done, void *opaque,
                   oc_error *err);

/* PUT /v2/<repo>/manifests/<reference> with the exact bytes and their media
 * type as Content-Type; the registry's Docker-Content-Digest must be digest.
 * done gets NULL on success, and the OCI-Subject the registry answered (it
 * took the manifest's subject: it keeps referrers itself), or NULL. */
typedef void (*oc_manifest_put_done)(void *opaque, const char *oci_subject, const oc_error *err);
int oc_upload_manifest(oc_registry *r, const char *repo, const char *reference,
                       const char *media_type, const char *body, size_t len, const char *digest,
                       oc_manifest_put_done done, void *opaque, oc_error *err);

/* "repository:REPO:pull,push": the scope every call of a push uses. */
char *oc_upload_scope(const char *repo);

#endif
