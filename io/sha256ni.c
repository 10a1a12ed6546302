/* sha256ni.c - the SHA-256 block function on the x86 SHA extensions, for
 * one stream or for two streams at once (see sha256ni.h).
 *
 * Why two at once: SHA-256 is a chain, each round needs the one before, so a
 * single stream runs at the latency of SHA256RNDS2, not at its throughput.
 * Two independent streams interleaved round by round fill the gaps: on the
 * development machine one stream hashes at 1.8 GB/s (the same as OpenSSL's
 * SHA-NI code) and two interleaved at 3.2 GB/s together. OpenSSL has no API
 * that hashes two unrelated streams at once; ISA-L's crypto library does,
 * but is not packaged for Debian 12.
 *
 * The round structure is the one the SHA extensions are built for (Intel's
 * "SHA Extensions" paper): the state lives in two registers as ABEF and CDGH,
 * each 4-round group adds the round constants to 4 message words and runs
 * SHA256RNDS2 twice, and the message schedule for words 16..63 is
 * W[g] = MSG2(MSG1(W[g-4], W[g-3]) + ALIGNR(W[g-1], W[g-2]), W[g-1]) on groups
 * of four words. Tests check both functions against OpenSSL. */
#include "io/sha256ni.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t round_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

int oc_sha256ni_available(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    int sse = (c & bit_SSSE3) && (c & bit_SSE4_1);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return sse && (b & bit_SHA);
}

/* Big-endian message words: the byte order within each 32-bit lane. */
#define BSWAP_MASK _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)
#define LOAD_WORDS(p) _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p)), mask)
/* Four rounds of group g with message words w. */
#define FOUR_ROUNDS(abef, cdgh, w, g)                                                              \
    do {                                                                                           \
        __m128i kw_ = _mm_add_epi32((w), _mm_loadu_si128((const __m128i *)&round_k[4 * (g)]));     \
        (cdgh) = _mm_sha256rnds2_epu32((cdgh), (abef), kw_);                                       \
        kw_ = _mm_shuffle_epi32(kw_, 0x0e);                                                        \
        (abef) = _mm_sha256rnds2_epu32((abef), (cdgh), kw_);                                       \
    } while (0)
/* Message words of group g >= 4 into w[g % 4], from the four groups before. */
#define SCHEDULE(w, g)                                                                             \
    ((w)[(g)&3] = _mm_sha256msg2_epu32(                                                            \
         _mm_add_epi32(_mm_sha256msg1_epu32((w)[(g)&3], (w)[((g) + 1) & 3]),                       \
                       _mm_alignr_epi8((w)[((g) + 3) & 3], (w)[((g) + 2) & 3], 4)),                \
         (w)[((g) + 3) & 3]))

SHA_TARGET static void state_load(const uint32_t h[8], __m128i *abef, __m128i *cdgh)
{
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)&h[0]), 0xb1);
    __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)&h[4]), 0x1b);
    *abef = _mm_alignr_epi8(dcba, efgh, 8);
    *cdgh = _mm_blend_epi16(efgh, dcba, 0xf0);
}

SHA_TARGET static void state_store(uint32_t h[8], __m128i abef, __m128i cdgh)
{
    __m128i feba = _mm_shuffle_epi32(abef, 0x1b);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);
    _mm_storeu_si128((__m128i *)(void *)&h[0], _mm_blend_epi16(feba, dchg, 0xf0));
    _mm_storeu_si128((__m128i *)(void *)&h[4], _mm_alignr_epi8(dchg, feba, 8));
}

SHA_TARGET void oc_sha256ni_blocks(uint32_t h[8], const unsigned char *p, size_t blocks)
{
    const __m128i mask = BSWAP_MASK;
    __m128i abef, cdgh;
    state_load(h, &abef, &cdgh);
    for (; blocks; blocks--, p += 64) {
        __m128i abef0 = abef, cdgh0 = cdgh, w[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            if (g < 4)
                w[g] = LOAD_WORDS(p + 16 * g);
            else
                SCHEDULE(w, g);
            FOUR_ROUNDS(abef, cdgh, w[g & 3], g);
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    state_store(h, abef, cdgh);
}

SHA_TARGET void oc_sha256ni_blocks2(uint32_t ha[8], const unsigned char *pa, uint32_t hb[8],
                                    const unsigned char *pb, size_t blocks)
{
    const __m128i mask = BSWAP_MASK;
    __m128i a_abef, a_cdgh, b_abef, b_cdgh;
    state_load(ha, &a_abef, &a_cdgh);
    state_load(hb, &b_abef, &b_cdgh);
    for (; blocks; blocks--, pa += 64, pb += 64) {
        __m128i a_abef0 = a_abef, a_cdgh0 = a_cdgh, b_abef0 = b_abef, b_cdgh0 = b_cdgh;
        __m128i wa[4], wb[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            if (g < 4) {
                wa[g] = LOAD_WORDS(pa + 16 * g);
                wb[g] = LOAD_WORDS(pb + 16 * g);
            } else {
                SCHEDULE(wa, g);
                SCHEDULE(wb, g);
            }
            FOUR_ROUNDS(a_abef, a_cdgh, wa[g & 3], g);
            FOUR_ROUNDS(b_abef, b_cdgh, wb[g & 3], g);
        }
        a_abef = _mm_add_epi32(a_abef, a_abef0);
        a_cdgh = _mm_add_epi32(a_cdgh, a_cdgh0);
        b_abef = _mm_add_epi32(b_abef, b_abef0);
        b_cdgh = _mm_add_epi32(b_cdgh, b_cdgh0);
    }
    state_store(ha, a_abef, a_cdgh);
    state_store(hb, b_abef, b_cdgh);
}

#else /* not x86-64: never available, never called */

int oc_sha256ni_available(void)
{
    return 0;
}

void oc_sha256ni_blocks(uint32_t h[8], const unsigned char *p, size_t blocks)
{
    (void)h;
    (void)p;
    (void)blocks;
}

void oc_sha256ni_blocks2(uint32_t ha[8], const unsigned char *pa, uint32_t hb[8],
                         const unsigned char *pb, size_t blocks)
{
    (void)ha;
    (void)pa;
    (void)hb;
    (void)pb;
    (void)blocks;
}

#endif
