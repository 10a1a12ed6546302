/* digest.h - SHA-256 of streams, buffers and files (OpenSSL EVP, which uses
 * SHA-NI where the CPU has it), and parsing of "sha256:<hex>" digests. */
#ifndef OC_IO_DIGEST_H
#define OC_IO_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

#define OC_SHA256_HEX_LEN 64

typedef struct oc_sha256 oc_sha256;

oc_sha256 *oc_sha256_new(void);
void oc_sha256_reset(oc_sha256 *h);
void oc_sha256_update(oc_sha256 *h, const void *data, size_t len);
/* Writes 64 lowercase hex digits and a NUL into out; the hasher may be reset
 * and reused afterwards. */
void oc_sha256_final_hex(oc_sha256 *h, char out[OC_SHA256_HEX_LEN + 1]);
void oc_sha256_free(oc_sha256 *h);

/* A hasher that oc_sha256_update_pair can run together with another one:
 * on a CPU with the SHA extensions, two streams hash in little more time
 * than one (io/sha256ni.c); elsewhere it is the same as oc_sha256_new. The
 * other functions above take it like any hasher. */
oc_sha256 *oc_sha256_new_pairable(void);
/* oc_sha256_update(a, data_a, len_a) and oc_sha256_update(b, data_b,
 * len_b), interleaved where both are pairable and block-aligned; the
 * lengths may differ. */
void oc_sha256_update_pair(oc_sha256 *a, const void *data_a, size_t len_a, oc_sha256 *b,
                           const void *data_b, size_t len_b);

void oc_sha256_buf_hex(const void *data, size_t len, char out[OC_SHA256_HEX_LEN + 1]);

/* Hash a whole file; size (may be NULL) receives its length. */
int oc_sha256_file_hex(const char *path, char out[OC_SHA256_HEX_LEN + 1], uint64_t *size,
                       oc_error *err);

/* Accepts exactly "sha256:" followed by 64 lowercase hex digits; copies the
 * hex part into hex. Anything else (other algorithms, upper case, wrong
 * length, trailing bytes) is OC_E_FORMAT naming the input. */
int oc_digest_parse(const char *digest, char hex[OC_SHA256_HEX_LEN + 1], oc_error *err);

#endif
