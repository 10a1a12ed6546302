/* inflate.h - streaming decompression of layer blobs: gzip through ISA-L's
 * igzip (multi-member streams included), zstd through libzstd, and plain tar
 * passed through. Input is fed in chunks of any size; output goes to a
 * callback in large chunks. Memory use is fixed, whatever the stream size. */
#ifndef OC_IO_INFLATE_H
#define OC_IO_INFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

typedef enum oc_comp {
    OC_COMP_AUTO = 0, /* decide from the first bytes: gzip magic, zstd magic, else none */
    OC_COMP_NONE,
    OC_COMP_GZIP,
    OC_COMP_ZSTD,
} oc_comp;

/* From a layer media type: "...tar+gzip"/".tar.gzip"/docker "...rootfs.diff.tar.gzip"
 * -> GZIP, "+zstd" -> ZSTD, plain "...tar" -> NONE, unknown -> AUTO. */
oc_comp oc_comp_from_media_type(const char *media_type);
const char *oc_comp_name(oc_comp c);

/* Receives decompressed bytes. Return 0, or -1 with err set to stop. */
typedef int (*oc_inflate_sink)(void *opaque, const void *data, size_t len, oc_error *err);

/* Output into the caller's buffers, without a copy: the decoder writes
 * straight into a buffer get() lends it and put() hands it back filled (len
 * bytes: the whole cap, except for a stream's last one). get() returns 0
 * with a buffer, 1 when none can be had now (the feed then stops, see
 * oc_inflater_feed_some), -1 with err to stop. drop() takes back a lent
 * buffer that holds nothing (at finish and free). */
typedef struct oc_inflate_output {
    int (*get)(void *opaque, unsigned char **buf, size_t *cap, oc_error *err);
    int (*put)(void *opaque, unsigned char *buf, size_t len, oc_error *err);
    void (*drop)(void *opaque, unsigned char *buf);
    void *opaque;
} oc_inflate_output;

typedef struct oc_inflater oc_inflater;

/* max_out: stop with OC_E_LIMIT once more than this many bytes came out
 * (0 = no limit), so a decompression bomb is bounded. The sink gets the
 * output from a 1 MiB buffer of the inflater's own. */
oc_inflater *oc_inflater_new(oc_comp comp, oc_inflate_sink sink, void *opaque, uint64_t max_out);
/* The same with the caller's buffers (out is copied). */
oc_inflater *oc_inflater_new_lent(oc_comp comp, const oc_inflate_output *out, uint64_t max_out);
/* A sink inflater takes every byte: 0, or -1 with err. */
int oc_inflater_feed(oc_inflater *inf, const void *data, size_t len, oc_error *err);
/* 0: all len bytes taken; 1: get() had no buffer: *used bytes were taken,
 * feed the rest (possibly none: the decoder may still hold output) again
 * later; -1 with err. */
int oc_inflater_feed_some(oc_inflater *inf, const void *data, size_t len, size_t *used,
                          oc_error *err);
/* End of input: fails with OC_E_FORMAT if the stream is truncated. A lent
 * inflater may answer 1 (no buffer for what is left): call it again later. */
int oc_inflater_finish(oc_inflater *inf, oc_error *err);
/* Start over for a new stream with the same settings. */
void oc_inflater_reset(oc_inflater *inf);
uint64_t oc_inflater_total_out(const oc_inflater *inf);
/* The compression actually in use (after AUTO resolved on the first bytes). */
oc_comp oc_inflater_comp(const oc_inflater *inf);
void oc_inflater_free(oc_inflater *inf);

#endif
