/* relay.h - a blob streamed from one registry into an upload to another
 * (mirror --to), through a bounded buffer, nothing on disk.
 *
 * The relay is an upload source (upload.h) in stream mode: the upload's
 * PATCH body is read from a ring buffer that a GET of the blob from the
 * source registry fills. A full ring pauses the GET, an empty one pauses
 * the PATCH; each side unpauses the other from a zero timer, outside
 * curl's callbacks. The bytes are hashed as they arrive, and the upload's
 * commit (before_commit) waits for the GET to end: only bytes that hash to
 * the digest, of the right size, are committed, so a corrupt source never
 * lands (the upload session is abandoned instead). A GET that broke
 * continues with Range (registry.c); a PATCH that broke cannot go back in
 * the stream: the upload starts over, and the relay with a new GET from
 * byte 0. The GET starts only when the PATCH has its connection and reads
 * its first bytes, and it takes no slot of the limiter (it rides on the
 * PATCH's): a relay never holds one slot while it waits for another, which
 * could wait forever once every slot is held that way. Memory: the ring
 * (1 MiB, made when the upload first wants bytes) plus what curl buffers
 * for a paused transfer. */
#ifndef OC_ENGINE_RELAY_H
#define OC_ENGINE_RELAY_H

#include <stdint.h>

#include "engine/registry/registry.h"
#include "engine/registry/upload.h"

typedef struct oc_relay oc_relay;

/* A relay of digest (size bytes) from repo of src. Nothing is asked for
 * until the upload wants bytes. */
oc_relay *oc_relay_new(oc_registry *src, const char *repo, const char *digest, uint64_t size,
                       oc_error *err);
/* The upload source to hand to oc_upload_blob (stream = 1). */
void oc_relay_source(oc_relay *r, oc_upload_source *out);
/* Bytes received from the source, over every GET. */
uint64_t oc_relay_received(const oc_relay *r);
/* The upload is over: the relay goes once its GET (if one still runs) has
 * ended. */
void oc_relay_free(oc_relay *r);

#endif
