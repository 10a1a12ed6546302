/* blobsink.h - one blob's bytes, handed over by the caller's own thread,
 * hashed and written to a file, and optionally inflated into a second file
 * that is hashed too, on worker strands (io/workq.h), in bounded memory.
 *
 *   caller's thread    copies its bytes into an input chunk (the only copy)
 *   strand "digest"    SHA-256 of the bytes, write(2) of the copy
 *   strand "inflate"   gzip (ISA-L) / zstd / plain -> output buffers
 *   strand "tar"       SHA-256 of the inflated bytes, write(2) of them
 *
 * It is blobpipe's pipeline for a caller without a loop (an import reads a
 * bundle from a file or a pipe): when every input chunk is in use, write()
 * blocks until one is free instead of answering "pause", and finish()
 * blocks until both files are written. The digest and inflate strands read
 * the same chunk in parallel; the tar strand runs in a second pool, so an
 * inflate strand that waits for a free output buffer never blocks the work
 * it waits for. Nothing is fsynced here: the caller makes the files durable
 * (one syncfs for many) before it renames them into place. */
#ifndef OC_IO_BLOBSINK_H
#define OC_IO_BLOBSINK_H

#include <stddef.h>
#include <stdint.h>

#include "io/digest.h"
#include "io/error.h"
#include "io/inflate.h"

typedef struct oc_blobsink_pool oc_blobsink_pool;
typedef struct oc_blobsink oc_blobsink;

typedef struct oc_blobsink_opts {
    int threads;       /* per pool; 0 = one per CPU */
    size_t chunk_size; /* input chunk and output buffer size; 0 = 1 MiB */
    int in_chunks;     /* input chunks per blob; 0 = 4 */
    int out_bufs;      /* output buffers per blob; 0 = 4 */
    int write_mode;    /* how the files reach the disk (oc_write_mode of
                          io/outfile.h); 0 = auto: direct I/O where the file
                          system does it well */
} oc_blobsink_opts;

/* The worker threads, shared by the sinks of one run (one sink at a time or
 * several: each has its own strands). NULL with err when none can start. */
oc_blobsink_pool *oc_blobsink_pool_new(const oc_blobsink_opts *o, oc_error *err);
/* The sinks must be freed first. */
void oc_blobsink_pool_free(oc_blobsink_pool *p);

typedef struct oc_blobsink_result {
    char hex[OC_SHA256_HEX_LEN + 1]; /* SHA-256 of the bytes written */
    uint64_t size;
    int inflated; /* a tar_path was given */
    char tar_hex[OC_SHA256_HEX_LEN + 1];
    uint64_t tar_size;
    oc_comp comp;        /* what the stream turned out to be */
    int stream_ok;       /* inflated cleanly and completely (else stream_err) */
    oc_error stream_err; /* the stream's fault: not a local failure */
} oc_blobsink_result;

/* A sink writing the bytes to copy_path (NULL: hashed only) and, when
 * tar_path is given, their inflation (comp, or AUTO) to tar_path; both are
 * created (replacing what was there, never through a symlink). size_hint
 * sizes the buffers of small blobs; max_tar bounds the inflated size (0 =
 * none: a decompression bomb then fails as OC_E_LIMIT in stream_err).
 * label names the blob in errors. */
oc_blobsink *oc_blobsink_open(oc_blobsink_pool *p, const char *label, const char *copy_path,
                              const char *tar_path, oc_comp comp, uint64_t size_hint,
                              uint64_t max_tar, oc_error *err);
/* Hand over bytes; blocks while every input chunk is in use. -1 when a local
 * failure (disk full, I/O) happened earlier: err says which. */
int oc_blobsink_write(oc_blobsink *s, const void *data, size_t len, oc_error *err);
/* End of the bytes: waits until both files are written, then res says what
 * the bytes were. -1 on a local failure (err); a stream that does not
 * inflate is not one (res->stream_ok). */
int oc_blobsink_finish(oc_blobsink *s, oc_blobsink_result *res, oc_error *err);
/* Waits for work in flight; the files are removed unless keep (then they
 * are the caller's: finish succeeded and it renames or removes them). NULL
 * is fine. */
void oc_blobsink_free(oc_blobsink *s, int keep);

#endif
