/* htpasswd.c - Basic authentication from an htpasswd file (see
 * htpasswd.h). */
#include "engine/serve/htpasswd.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "engine/image/limits.h"
#include "io/strmap.h"
#include "io/atomicfile.h"

/* The longest Authorization value looked at: user and password of a few
 * hundred bytes each. */
#define HEADER_MAX 1024

struct oc_htpasswd {
    oc_strmap *users;      /* user -> hash */
    oc_strmap *good;       /* header value -> user */
    oc_strmap *bad;        /* header value -> (void *)1 */
    struct crypt_data *cd; /* crypt_r's 32 KiB of state, kept */
};

static int is_bcrypt(const char *h)
{
    return strncmp(h, "$2y$", 4) == 0 || strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0;
}

oc_htpasswd *oc_htpasswd_load(const char *path, oc_error *err)
{
    size_t len = 0;
    char *text = oc_read_file(path, OC_SETTINGS_FILE_MAX, &len, err);
    if (!text) {
        oc_error_prefix(err, "htpasswd file");
        return NULL;
    }
    oc_htpasswd *h = calloc(1, sizeof *h);
    if (!h || !(h->users = oc_strmap_new(NULL)) || !(h->good = oc_strmap_new(NULL)) ||
        !(h->bad = oc_strmap_new(NULL)) || !(h->cd = calloc(1, sizeof *h->cd))) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto fail;
    }
    int line = 0;
    for (char *p = text, *next; p && *p; p = next) {
        line++;
        char *nl = strchr(p, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        size_t n = strlen(p);
        if (n && p[n - 1] == '\r')
            p[--n] = '\0';
        if (n == 0 || p[0] == '#')
            continue;
        char *colon = strchr(p, ':');
        if (!colon || colon == p) {
            oc_error_set(err, OC_E_FORMAT, "%s line %d: not USER:HASH", path, line);
            goto fail;
        }
        *colon = '\0';
        const char *hash = colon + 1;
        if (!is_bcrypt(hash) && strncmp(hash, "{SHA}", 5) != 0) {
            oc_error_set(err, OC_E_UNSUPPORTED,
                         "%s line %d (user %s): only bcrypt ($2y$, htpasswd -B) and {SHA} "
                         "(htpasswd -s) entries are supported",
                         path, line, p);
            goto fail;
        }
        char *copy = strdup(hash);
        void *old = NULL;
        if (!copy || oc_strmap_put(h->users, p, copy, &old) != 0) {
            free(copy);
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            goto fail;
        }
        free(old); /* a user given twice: the last line counts */
    }
    if (oc_strmap_count(h->users) == 0) {
        oc_error_set(err, OC_E_FORMAT, "%s names no user", path);
        goto fail;
    }
    free(text);
    return h;
fail:
    free(text);
    oc_htpasswd_free(h);
    return NULL;
}

void oc_htpasswd_free(oc_htpasswd *h)
{
    if (!h)
        return;
    oc_strmap_free_with(h->users, free);
    oc_strmap_free_with(h->good, free);
    oc_strmap_free_with(h->bad, NULL);
    if (h->cd)
        OPENSSL_cleanse(h->cd, sizeof *h->cd);
    free(h->cd);
    free(h);
}

static int password_ok(oc_htpasswd *h, const char *hash, const char *password)
{
    size_t hlen = strlen(hash);
    if (is_bcrypt(hash)) {
        memset(h->cd, 0, sizeof *h->cd);
        const char *out = crypt_r(password, hash, h->cd);
        int ok = out && out[0] != '*' && strlen(out) == hlen && CRYPTO_memcmp(out, hash, hlen) == 0;
        OPENSSL_cleanse(h->cd, sizeof *h->cd);
        return ok;
    }
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    SHA1((const unsigned char *)password, strlen(password), md);
    int n = EVP_EncodeBlock(b64, md, SHA_DIGEST_LENGTH);
    return (size_t)n + 5 == hlen && CRYPTO_memcmp(b64, hash + 5, (size_t)n) == 0;
}

/* "Basic <base64 of user:password>" -> the two parts in buf (NUL-terminated);
 * -1 when malformed. */
static int decode_basic(const char *value, size_t len, char *buf, size_t cap, char **password)
{
    if (len < 6 || strncasecmp(value, "Basic ", 6) != 0)
        return -1;
    value += 6;
    len -= 6;
    while (len && *value == ' ') {
        value++;
        len--;
    }
    while (len && value[len - 1] == ' ')
        len--;
    if (len == 0 || len % 4 != 0 || len / 4 * 3 + 1 > cap)
        return -1;
    int n = EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)value, (int)len);
    if (n < 0)
        return -1;
    if (value[len - 1] == '=')
        n--;
    if (value[len - 2] == '=')
        n--;
    buf[n] = '\0';
    if (memchr(buf, '\0', (size_t)n)) /* a NUL inside: no C string holds it */
        return -1;
    char *colon = strchr(buf, ':');
    if (!colon || colon == buf)
        return -1;
    *colon = '\0';
    *password = colon + 1;
    return 0;
}

static void remember(oc_strmap *cache, const char *key, void *value, void (*free_value)(void *))
{
    if (oc_strmap_count(cache) >= OC_HTPASSWD_CACHE)
        oc_strmap_clear(cache, free_value);
    if (oc_strmap_put(cache, key, value, NULL) != 0 && free_value)
        free_value(value);
}

int oc_htpasswd_check(oc_htpasswd *h, const char *value, size_t len, char *user, size_t user_cap)
{
    if (user_cap)
        user[0] = '\0';
    if (!value || len == 0 || len > HEADER_MAX)
        return 0;
    char key[HEADER_MAX + 1];
    memcpy(key, value, len);
    key[len] = '\0';
    const char *known = oc_strmap_get(h->good, key);
    if (known) {
        snprintf(user, user_cap, "%s", known);
        return 1;
    }
    if (oc_strmap_get(h->bad, key))
        return 0;
    char buf[HEADER_MAX];
    char *password = NULL;
    int ok = 0;
    if (decode_basic(value, len, buf, sizeof buf, &password) == 0) {
        const char *hash = oc_strmap_get(h->users, buf);
        ok = hash && password_ok(h, hash, password);
    }
    if (ok) {
        snprintf(user, user_cap, "%s", buf);
        remember(h->good, key, strdup(buf), free);
    } else {
        remember(h->bad, key, (void *)1, NULL);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return ok;
}
