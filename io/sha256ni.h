/* sha256ni.h - the SHA-256 block function on the x86 SHA extensions, one
 * stream or two streams interleaved. Only the compression of whole 64-byte
 * blocks: padding and buffering are the caller's (io/digest.c). */
#ifndef OC_IO_SHA256NI_H
#define OC_IO_SHA256NI_H

#include <stddef.h>
#include <stdint.h>

/* 1 when this CPU has the SHA extensions (and SSSE3, SSE4.1); the functions
 * below may only be called then. */
int oc_sha256ni_available(void);

/* Compress blocks * 64 bytes of p into the state h (a, b, ... h as words). */
void oc_sha256ni_blocks(uint32_t h[8], const unsigned char *p, size_t blocks);

/* The same for two independent streams at once, blocks of each. */
void oc_sha256ni_blocks2(uint32_t ha[8], const unsigned char *pa, uint32_t hb[8],
                         const unsigned char *pb, size_t blocks);

#endif
