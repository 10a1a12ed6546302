/* digest.c - SHA-256 through OpenSSL 3 EVP (SHA-NI when the CPU has it) for
 * streams, buffers and files, and strict parsing of "sha256:<hex>" digests.
 *
 * The SHA-256 implementation is fetched from the default provider once per
 * process (EVP_MD_fetch) instead of on every init, which matters when many
 * small buffers (manifests, configs) are hashed.
 *
 * Pairable hashers (oc_sha256_new_pairable) are the exception: where the
 * CPU has the SHA extensions they keep their own state and run the block
 * function of io/sha256ni.c, so that oc_sha256_update_pair can hash two
 * streams at once (a layer's compressed bytes and its tar); elsewhere they
 * are OpenSSL hashers like the others and a pair is two updates. */
#include "io/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "io/sha256ni.h"

#define FILE_READ_SIZE (1024 * 1024)

struct oc_sha256 {
    EVP_MD_CTX *ctx; /* OpenSSL; NULL for our own SHA-NI state below */
    uint32_t h[8];
    unsigned char buf[64]; /* the partial block */
    size_t buf_len;
    uint64_t total; /* bytes hashed */
};

static const uint32_t sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

static pthread_once_t ni_once = PTHREAD_ONCE_INIT;
static int ni_ok;

static void ni_probe(void)
{
    ni_ok = oc_sha256ni_available();
}

static void ni_reset(oc_sha256 *h)
{
    memcpy(h->h, sha256_iv, sizeof h->h);
    h->buf_len = 0;
    h->total = 0;
}

static void ni_update(oc_sha256 *h, const unsigned char *p, size_t len)
{
    if (len == 0) /* p may be NULL */
        return;
    h->total += len;
    if (h->buf_len) {
        size_t take = 64 - h->buf_len < len ? 64 - h->buf_len : len;
        memcpy(h->buf + h->buf_len, p, take);
        h->buf_len += take;
        p += take;
        len -= take;
        if (h->buf_len < 64)
            return;
        oc_sha256ni_blocks(h->h, h->buf, 1);
        h->buf_len = 0;
    }
    if (len >= 64) {
        oc_sha256ni_blocks(h->h, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
    }
    memcpy(h->buf, p, len);
    h->buf_len = len;
}

static void ni_final(oc_sha256 *h, unsigned char out[32])
{
    uint64_t bits = h->total * 8;
    h->buf[h->buf_len++] = 0x80;
    if (h->buf_len > 56) {
        memset(h->buf + h->buf_len, 0, 64 - h->buf_len);
        oc_sha256ni_blocks(h->h, h->buf, 1);
        h->buf_len = 0;
    }
    memset(h->buf + h->buf_len, 0, 56 - h->buf_len);
    for (int i = 0; i < 8; i++)
        h->buf[63 - i] = (unsigned char)(bits >> (8 * i));
    oc_sha256ni_blocks(h->h, h->buf, 1);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(h->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h->h[i];
    }
}

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_fetched;

static void md_fetch(void)
{
    md_fetched = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

static const EVP_MD *sha256_md(void)
{
    pthread_once(&md_once, md_fetch);
    return md_fetched ? md_fetched : EVP_sha256();
}

static void to_hex(const unsigned char *bin, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

oc_sha256 *oc_sha256_new(void)
{
    oc_sha256 *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || !EVP_DigestInit_ex(h->ctx, sha256_md(), NULL)) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

oc_sha256 *oc_sha256_new_pairable(void)
{
    pthread_once(&ni_once, ni_probe);
    if (!ni_ok)
        return oc_sha256_new();
    oc_sha256 *h = calloc(1, sizeof *h);
    if (h)
        ni_reset(h);
    return h;
}

void oc_sha256_reset(oc_sha256 *h)
{
    if (!h->ctx) {
        ni_reset(h);
        return;
    }
    /* The context keeps its digest type, so no new fetch happens here; SHA-256
     * init cannot fail once the context was set up in oc_sha256_new. */
    (void)EVP_DigestInit_ex(h->ctx, sha256_md(), NULL);
}

void oc_sha256_update(oc_sha256 *h, const void *data, size_t len)
{
    if (!h->ctx)
        ni_update(h, data, len);
    else if (len)
        (void)EVP_DigestUpdate(h->ctx, data, len);
}

void oc_sha256_update_pair(oc_sha256 *a, const void *data_a, size_t len_a, oc_sha256 *b,
                           const void *data_b, size_t len_b)
{
    const unsigned char *pa = data_a, *pb = data_b;
    if (!a->ctx && !b->ctx && a->buf_len == 0 && b->buf_len == 0) {
        size_t blocks = (len_a < len_b ? len_a : len_b) / 64;
        oc_sha256ni_blocks2(a->h, pa, b->h, pb, blocks);
        a->total += blocks * 64;
        b->total += blocks * 64;
        pa += blocks * 64;
        pb += blocks * 64;
        len_a -= blocks * 64;
        len_b -= blocks * 64;
    }
    oc_sha256_update(a, pa, len_a);
    oc_sha256_update(b, pb, len_b);
}

void oc_sha256_final_hex(oc_sha256 *h, char out[OC_SHA256_HEX_LEN + 1])
{
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (h->ctx)
        (void)EVP_DigestFinal_ex(h->ctx, bin, &n);
    else
        ni_final(h, bin);
    to_hex(bin, OC_SHA256_HEX_LEN / 2, out);
    oc_sha256_reset(h);
}

void oc_sha256_free(oc_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void oc_sha256_buf_hex(const void *data, size_t len, char out[OC_SHA256_HEX_LEN + 1])
{
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    (void)EVP_Digest(data, len, bin, &n, sha256_md(), NULL);
    to_hex(bin, OC_SHA256_HEX_LEN / 2, out);
}

int oc_sha256_file_hex(const char *path, char out[OC_SHA256_HEX_LEN + 1], uint64_t *size,
                       oc_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        oc_error_errno(err, errno, "open %s", path);
        return -1;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    unsigned char *buf = malloc(FILE_READ_SIZE);
    oc_sha256 *h = oc_sha256_new();
    if (!buf || !h) {
        oc_error_set(err, OC_E_NOMEM, "hash %s: out of memory", path);
        free(buf);
        oc_sha256_free(h);
        close(fd);
        return -1;
    }

    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, FILE_READ_SIZE);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            oc_error_errno(err, errno, "read %s", path);
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        oc_sha256_update(h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    if (rc == 0) {
        oc_sha256_final_hex(h, out);
        if (size)
            *size = total;
    }
    oc_sha256_free(h);
    free(buf);
    close(fd);
    return rc;
}

/* Copy untrusted input into a short printable form for an error message. */
static void printable(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    size_t i = 0;
    for (; in[i] && o + 4 < outsz; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (in[i]) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int oc_digest_parse(const char *digest, char hex[OC_SHA256_HEX_LEN + 1], oc_error *err)
{
    static const char prefix[] = "sha256:";
    const size_t plen = sizeof prefix - 1;

    if (hex)
        hex[0] = '\0';
    if (!digest) {
        oc_error_set(err, OC_E_FORMAT, "missing digest");
        return -1;
    }

    char shown[100];
    printable(digest, shown, sizeof shown);

    if (strncmp(digest, prefix, plen) != 0) {
        /* An algorithm name per the OCI grammar: [a-z0-9]+ joined by [+._-]. */
        size_t alg =
            strspn(digest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+._-");
        if (alg > 0 && digest[alg] == ':')
            oc_error_set(err, OC_E_FORMAT, "digest \"%s\": unsupported algorithm (want sha256)",
                         shown);
        else
            oc_error_set(err, OC_E_FORMAT, "digest \"%s\": expected \"sha256:<64 hex digits>\"",
                         shown);
        return -1;
    }

    const char *h = digest + plen;
    size_t n = 0;
    while (n <= OC_SHA256_HEX_LEN && h[n]) {
        if (!is_lower_hex(h[n])) {
            oc_error_set(err, OC_E_FORMAT, "digest \"%s\": %s at position %zu", shown,
                         (h[n] >= 'A' && h[n] <= 'F') ? "upper-case hex digit"
                                                      : "character that is not a hex digit",
                         plen + n);
            return -1;
        }
        n++;
    }
    if (n != OC_SHA256_HEX_LEN || h[n] != '\0') {
        oc_error_set(err, OC_E_FORMAT, "digest \"%s\": expected 64 hex digits after \"sha256:\"",
                     shown);
        return -1;
    }
    if (hex)
        memcpy(hex, h, OC_SHA256_HEX_LEN + 1);
    return 0;
}
