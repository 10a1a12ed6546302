/* outstream.h - a byte stream written to a file descriptor as it is, or
 * compressed with zstd on the way (one frame, the content checksum on, as
 * `zstd -dc` and libarchive read it), counting the bytes in and out. The
 * fd stays the caller's; a short write, a full disk or a closed pipe is an
 * error naming what the stream is. */
#ifndef OC_IO_OUTSTREAM_H
#define OC_IO_OUTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

typedef struct oc_outstream oc_outstream;

/* zstd_level 0: the bytes as they are; else zstd at that level, with
 * threads workers (0: compression on the caller's thread). what names the
 * stream in errors. */
oc_outstream *oc_outstream_new(int fd, const char *what, int zstd_level, int threads,
                               oc_error *err);
int oc_outstream_write(oc_outstream *o, const void *data, size_t len, oc_error *err);
/* End the stream (zstd: the end of the frame); the fd is not closed. */
int oc_outstream_finish(oc_outstream *o, oc_error *err);
/* Bytes handed in, and written to the fd so far. */
uint64_t oc_outstream_in(const oc_outstream *o);
uint64_t oc_outstream_out(const oc_outstream *o);
void oc_outstream_free(oc_outstream *o);

/* The most bytes n bytes of input can take on the fd (zstd's bound for
 * compressed output of incompressible data). */
uint64_t oc_outstream_bound(int zstd, uint64_t n);

#endif
