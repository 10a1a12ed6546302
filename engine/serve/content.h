/* content.h - one response whose body is a blob or manifest of known
 * digest: from a file of the store, or from memory (a rewritten manifest).
 *
 * Headers: Content-Type, Content-Length, Docker-Content-Digest, ETag (the
 * quoted digest), Accept-Ranges. If-None-Match naming the digest (or "*")
 * answers 304. One Range (bytes=A-B, A-, -N) answers 206 with
 * Content-Range, an unsatisfiable one 416 with "bytes * /SIZE"; several
 * ranges or a malformed header are ignored (200 with everything), as RFC
 * 9110 allows; If-Range naming another entity tag also sends everything.
 * HEAD sends the headers alone.
 *
 * A file is opened without following symlinks, must be a regular file, and
 * is sent in OC_SRV_CHUNK steps as the connection takes them (h2o's
 * generator protocol: the next read happens when the previous bytes were
 * written), so a transfer holds one chunk of memory whatever the blob's
 * size; the file descriptor stays open until the last byte is read, so a
 * blob removed meanwhile (gc) is still sent whole. */
#ifndef OC_SERVE_CONTENT_H
#define OC_SERVE_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

/* Bytes read per step of a file response. */
#define OC_SRV_CHUNK (128u * 1024)

typedef struct oc_srv_content {
    const char *hex;          /* the digest's hex */
    const char *content_type; /* the media type to send */
    const char *path;         /* the file, or NULL for bytes */
    const char *bytes;        /* ... held in memory */
    size_t size;              /* of bytes */
    int immutable;            /* blobs and by-digest manifests: cacheable for a year */
} oc_srv_content;

/* Start the response: 0 sent (or sending); -1 when the file is not there
 * (or not a regular file): nothing was sent and the caller answers. */
int oc_srv_send_content(h2o_req_t *req, const oc_srv_content *c);

/* Parse a Range value against size (exported for the unit test): 1 one
 * satisfiable range [*first, *last]; 0 ignore the header (absent,
 * malformed, several ranges); -1 unsatisfiable (416). */
int oc_srv_parse_range(const char *value, size_t len, uint64_t size, uint64_t *first,
                       uint64_t *last);
/* Does an If-None-Match (or If-Range) value name the entity tag
 * "sha256:<hex>"? ("*" does, for If-None-Match.) */
int oc_srv_etag_matches(const char *value, size_t len, const char *hex, int star_matches);

#endif
