/* blobpipe.h - a layer blob's bytes processed off the loop thread, as they
 * arrive, in bounded memory.
 *
 *   loop thread        copies curl's bytes into an input chunk (the only copy)
 *   strand "inflate"   gzip (ISA-L) / zstd / plain, straight into \  cpu pool,
 *                      output buffers                            |  one thread
 *   strand "hash"      SHA-256 of the compressed stream and of   |  per core,
 *                      the tar (the diff_id), two at once        /  never blocks
 *   strand "write"     the tar into its file (io/outfile.h)      \  io pool:
 *   strand "keep"      the compressed bytes into a partial file  /  waits on disk
 *
 * "inflate" and "keep" read the same input chunk in parallel, then "hash"
 * does; "hash" and "write" read the same output buffer. At most in_chunks input
 * chunks and out_bufs output buffers exist per blob: when the output buffers
 * are all in use the inflate strand parks (its worker goes on with other
 * work) until one is free; when the input chunks are all in use, write()
 * answers "pause" without taking any byte, the transfer is paused, and
 * on_writable runs on the loop thread when there is room again. A blob's
 * strands have its size as their priority, so the biggest blob's chain runs
 * first and small ones fill the gaps. Results and notifications reach the
 * loop through one uv_async; the loop thread never hashes, inflates or
 * touches the disk. */
#ifndef OC_IO_BLOBPIPE_H
#define OC_IO_BLOBPIPE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "io/digest.h"
#include "io/error.h"
#include "io/inflate.h"
#include "io/outfile.h"
#include "io/workq.h"

typedef struct oc_blobpipe_ctx oc_blobpipe_ctx;
typedef struct oc_blobpipe oc_blobpipe;

typedef struct oc_blobpipe_opts {
    int threads;              /* the cpu pool; 0 = one per CPU */
    int io_threads;           /* the io pool; 0 = the cpu pool's + 2 */
    size_t chunk_size;        /* input chunk and output buffer size; 0 = 1 MiB */
    int in_chunks;            /* input chunks per blob; 0 = 4 */
    int out_bufs;             /* output buffers per blob; 0 = 4 */
    oc_write_mode write_mode; /* how files that are synced get to the disk */
} oc_blobpipe_opts;

oc_blobpipe_ctx *oc_blobpipe_ctx_new(uv_loop_t *loop, const oc_blobpipe_opts *opts, oc_error *err);
/* Waits for all work, frees released pipes and closes the async handle; the
 * loop must run afterwards so the handle's close completes, when
 * closed(opaque) is called (NULL: no call). */
void oc_blobpipe_ctx_close(oc_blobpipe_ctx *ctx, void (*closed)(void *opaque), void *opaque);

typedef struct oc_blob_result {
    char compressed_hex[OC_SHA256_HEX_LEN + 1];
    uint64_t compressed_size;
    char diff_hex[OC_SHA256_HEX_LEN + 1];
    uint64_t diff_size;
    oc_comp comp;  /* what the stream turned out to be */
    int stream_ok; /* decompressed cleanly and completely (else stream_err) */
    oc_error stream_err;
} oc_blob_result;

typedef struct oc_blobpipe_cbs {
    /* Loop thread: there is room again after write() answered pause. */
    void (*on_writable)(void *opaque);
    /* Loop thread: finish() completed. err is a local failure (disk full,
     * I/O); otherwise res tells what the bytes were. */
    void (*on_finished)(void *opaque, const oc_blob_result *res, const oc_error *err);
    void *opaque;
} oc_blobpipe_cbs;

/* Disk work of the pipeline's users (a verified layer's placement: renames
 * and fsyncs that must not hold up the loop) on the io pool: work(o) runs
 * on an io thread, then done(o) on the loop thread. The struct is the
 * caller's, untouched by the pipeline after done is called. */
typedef struct oc_offload oc_offload;
struct oc_offload {
    void (*work)(oc_offload *o);
    void (*done)(oc_offload *o);
    /* private */
    oc_task task;
    oc_strand strand;
    oc_blobpipe_ctx *ctx;
    oc_offload *next;
};
/* Loop thread. */
void oc_blobpipe_offload(oc_blobpipe_ctx *ctx, oc_offload *o);

/* size_hint (the manifest's size) sizes the buffers of small blobs; max_out
 * bounds the uncompressed size (0 = none). */
oc_blobpipe *oc_blobpipe_new(oc_blobpipe_ctx *ctx, const char *tmp_dir, const char *label,
                             oc_comp comp, uint64_t size_hint, uint64_t max_out,
                             const oc_blobpipe_cbs *cbs, oc_error *err);

/* A bound on the tar bytes several pipes produce together (an image's
 * layers): each pipe adds what comes out of its decoder, and the one that
 * takes the sum beyond max fails its stream with OC_E_LIMIT. Reference
 * counted: the creator and every pipe it is given to hold one. */
typedef struct oc_blobpipe_budget oc_blobpipe_budget;
oc_blobpipe_budget *oc_blobpipe_budget_new(uint64_t max);
void oc_blobpipe_budget_unref(oc_blobpipe_budget *b);
/* Tar bytes counted so far. */
uint64_t oc_blobpipe_budget_used(const oc_blobpipe_budget *b);
/* Count this pipe's output against b too. Call before any byte arrives. */
void oc_blobpipe_set_budget(oc_blobpipe *p, oc_blobpipe_budget *b);

/* Write the tar into the caller's fd from offset base on (pwrite; a start
 * over truncates the file back to base) instead of a temp file of our own:
 * a tarball emitter lets one layer land at its final place, saving a copy.
 * The fd stays the caller's; it is a final file, written to reach the disk
 * as it goes (the caller syncs it). Call before any byte arrives. */
int oc_blobpipe_set_output(oc_blobpipe *p, int fd, uint64_t base, oc_error *err);

/* Loop thread, while the blob streams into a temp file of ours: from now
 * on write the tar into the caller's fd from offset base on, as
 * oc_blobpipe_set_output would have; what was written so far is copied
 * there first (on the write strand, in order with the data) and the temp
 * file removed. 1 moved (take_file will give NULL), 0 too late (the blob is
 * finishing, or failed: its output stays where it is), -1 error. A tarball
 * emitter lets each layer stream into place once the layers before it are
 * there. */
int oc_blobpipe_move_output(oc_blobpipe *p, int fd, uint64_t base, oc_error *err);

/* The blob's strands' priority (default: its size_hint, so the biggest
 * blob runs first); higher runs first. */
void oc_blobpipe_set_priority(oc_blobpipe *p, long long priority);

/* Skip the fsync of the output at finish (a temp file whose content is
 * copied elsewhere and the file deleted, e.g. into a tarball that is
 * fsynced itself: such a temp file stays in the page cache). Default:
 * fsync. */
void oc_blobpipe_set_no_sync(oc_blobpipe *p, int no_sync);

/* Keep the compressed bytes in path as they are hashed, so a later run can
 * continue a broken download. When path already holds a prefix shorter than
 * max (the blob size), it is replayed through the pipeline (read by the
 * worker strands, not the loop) and its length returned: the transfer then
 * asks for the rest with Range. Call right after oc_blobpipe_new. */
uint64_t oc_blobpipe_keep_partial(oc_blobpipe *p, const char *path, uint64_t max);
/* The same, but the copy is the caller's result (the store keeps the
 * registry's exact bytes): a file that cannot be opened is an error here,
 * one that cannot be written fails the blob (a local failure, like the
 * tar's), and it is fsynced before on_finished. *resumed is the prefix
 * replayed (0 or bytes a broken earlier download left). After on_finished
 * the file holds exactly the compressed_size bytes that were hashed; it is
 * never removed by the pipe. */
int oc_blobpipe_keep_compressed(oc_blobpipe *p, const char *path, uint64_t max, uint64_t *resumed,
                                oc_error *err);
/* Hash (and keep, see above) the compressed bytes only: nothing is inflated
 * or written as a tar (a store that holds the tar already and lacks the
 * blob). The result then has stream_ok set and no diff_id; take_file gives
 * NULL. Call right after oc_blobpipe_new. */
void oc_blobpipe_set_digest_only(oc_blobpipe *p);
/* The blob verified (or is abandoned for good): remove the partial file. */
void oc_blobpipe_drop_partial(oc_blobpipe *p);

/* Loop thread. offset is 0 (start over: file truncated, hashes and inflater
 * reset, in order behind the work in flight) or the bytes received so far. */
int oc_blobpipe_restart(oc_blobpipe *p, uint64_t offset, oc_error *err);
/* Loop thread. 0: all bytes taken; 1: none taken, pause (on_writable will
 * follow); -1: a local failure happened earlier (err says which). */
int oc_blobpipe_write(oc_blobpipe *p, const void *data, size_t len, oc_error *err);
uint64_t oc_blobpipe_received(const oc_blobpipe *p);
/* Loop thread: end of the stream; on_finished follows. */
void oc_blobpipe_finish(oc_blobpipe *p);
/* After on_finished: the temp file's path, which the pipe will not delete
 * any more (malloc'd). */
char *oc_blobpipe_take_file(oc_blobpipe *p);
/* Loop thread: no more calls or callbacks; memory and the temp file (unless
 * taken) go once the work in flight has drained. */
void oc_blobpipe_release(oc_blobpipe *p);

#endif
