/* layersink.h - where a layer blob's bytes go as they arrive: SHA-256 of the
 * compressed stream, decompression (gzip, zstd or none), SHA-256 of the
 * uncompressed tar (the diff_id), and the tar written to a temporary file.
 * Memory is fixed (the inflater's buffers) whatever the layer size.
 *
 * A transfer that broke off continues with restart(offset == bytes so far);
 * a transfer that starts over calls restart(0), which truncates the file
 * and resets both hashes and the inflater. */
#ifndef OC_IO_LAYERSINK_H
#define OC_IO_LAYERSINK_H

#include <stddef.h>
#include <stdint.h>

#include "io/digest.h"
#include "io/error.h"
#include "io/inflate.h"

typedef struct oc_layer_sink oc_layer_sink;

typedef struct oc_layer_result {
    char compressed_hex[OC_SHA256_HEX_LEN + 1];
    uint64_t compressed_size;
    char diff_hex[OC_SHA256_HEX_LEN + 1];
    uint64_t diff_size;
    oc_comp comp; /* what the stream turned out to be */
    /* The compressed bytes are always hashed to the end; a stream that could
     * not be decompressed (or exceeded max_out) is reported here, so the
     * caller can check the digest first: a digest mismatch explains a broken
     * stream, a matching digest makes it the publisher's fault. */
    int stream_ok;
    oc_error stream_err;
} oc_layer_result;

/* The temporary file is created in tmp_dir; label names the layer in errors.
 * max_out bounds the uncompressed size (0 = unlimited). */
oc_layer_sink *oc_layer_sink_new(const char *tmp_dir, const char *label, oc_comp comp,
                                 uint64_t max_out, oc_error *err);
/* offset must be 0 or the number of compressed bytes accepted so far. */
int oc_layer_sink_restart(oc_layer_sink *s, uint64_t offset, oc_error *err);
int oc_layer_sink_write(oc_layer_sink *s, const void *data, size_t len, oc_error *err);
uint64_t oc_layer_sink_received(const oc_layer_sink *s);
/* End of stream: fills res (both hashes, sizes, whether the stream was
 * sound and complete) and fsyncs the file. Returns -1 only for local
 * failures (fsync). The file stays until oc_layer_sink_free. */
int oc_layer_sink_finish(oc_layer_sink *s, oc_layer_result *res, oc_error *err);
const char *oc_layer_sink_path(const oc_layer_sink *s);
/* Hand the file over: the sink will not unlink it. Returns its path
 * (malloc'd). */
char *oc_layer_sink_take_file(oc_layer_sink *s);
/* Close and unlink the temporary file (unless taken). */
void oc_layer_sink_free(oc_layer_sink *s);

#endif
