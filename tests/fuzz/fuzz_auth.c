/* fuzz_auth.c - libFuzzer harness for the authentication parsers
 * (engine/auth.h): WWW-Authenticate challenges and token responses.
 *
 * Input: H [NUL U [NUL P]]. H (up to the first NUL) is one WWW-Authenticate
 * value for oc_auth_parse_challenge; the whole input is a token endpoint
 * answer for oc_auth_parse_token_response; when U is there,
 * oc_auth_basic_header(U, P) is decoded again.
 *
 * Properties: a parsed challenge is Bearer or Basic; a Bearer challenge has
 * an http(s) realm; no parsed value holds a control character other than
 * tab (they end up in URLs and headers); a failure says why and leaves
 * nothing allocated. A token is non-empty visible ASCII and its lifetime is
 * 1 to 86400 seconds. The Basic header is "Basic " and base64 of "U:P". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "engine/registry/auth.h"
#include "fuzz_common.h"

static void check_value(const char *v, const char *what)
{
    if (!v)
        return;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        FZ_CHECK((*p >= 0x20 && *p != 0x7f) || *p == '\t', "%s holds byte 0x%02x", what, *p);
}

static void check_challenge(const char *header)
{
    oc_auth_challenge c;
    oc_error err;
    err.msg[0] = '\0';
    if (oc_auth_parse_challenge(&c, header, &err) != 0) {
        FZ_CHECK(err.msg[0] != '\0', "failure without a message");
        FZ_CHECK(err.code == OC_E_FORMAT || err.code == OC_E_UNSUPPORTED, "failure code %d",
                 (int)err.code);
        FZ_CHECK(c.scheme == OC_AUTH_NONE && !c.realm && !c.service && !c.scope && !c.error,
                 "a failed parse left fields set");
        return;
    }
    FZ_CHECK(c.scheme == OC_AUTH_BEARER || c.scheme == OC_AUTH_BASIC, "scheme %d", (int)c.scheme);
    if (c.scheme == OC_AUTH_BEARER)
        FZ_CHECK(c.realm && (strncasecmp(c.realm, "https://", 8) == 0 ||
                             strncasecmp(c.realm, "http://", 7) == 0),
                 "bearer realm \"%s\"", fz_str(c.realm));
    check_value(c.realm, "realm");
    check_value(c.service, "service");
    check_value(c.scope, "scope");
    check_value(c.error, "error");
    oc_auth_challenge_free(&c);
}

static void check_token(const uint8_t *data, size_t size)
{
    /* a buffer of exactly size bytes, so ASan sees reads past its end */
    char *body = fz_xmalloc(size);
    if (size)
        memcpy(body, data, size);
    char *token = (char *)1;
    int expires = -1;
    oc_error err;
    err.msg[0] = '\0';
    if (oc_auth_parse_token_response(body, size, &token, &expires, &err) != 0) {
        FZ_CHECK(token == NULL, "a failed token parse left a token");
        FZ_CHECK(err.msg[0] != '\0', "failure without a message");
    } else {
        FZ_CHECK(token && *token, "empty token");
        for (const unsigned char *p = (const unsigned char *)token; *p; p++)
            FZ_CHECK(*p > 0x20 && *p < 0x7f, "token byte 0x%02x", *p);
        FZ_CHECK(expires >= 1 && expires <= 86400, "expires_in %d", expires);
        free(token);
    }
    free(body);
}

static void check_basic(const char *user, const char *pass)
{
    char *h = oc_auth_basic_header(user, pass);
    FZ_CHECK(h != NULL, "basic header NULL");
    FZ_CHECK(strncmp(h, "Basic ", 6) == 0, "basic header \"%s\"", h);
    size_t ulen = strlen(user), plen = strlen(pass);
    size_t b64 = strlen(h + 6);
    FZ_CHECK(b64 == 4 * ((ulen + 1 + plen + 2) / 3), "base64 length %zu", b64);
    unsigned char *raw = fz_xmalloc(b64 / 4 * 3 + 1);
    int n = EVP_DecodeBlock(raw, (const unsigned char *)h + 6, (int)b64);
    FZ_CHECK(n >= 0, "base64 does not decode");
    /* EVP_DecodeBlock keeps the padding's zero bytes: drop them */
    size_t got =
        (size_t)n - (b64 >= 1 && h[6 + b64 - 1] == '=') - (b64 >= 2 && h[6 + b64 - 2] == '=');
    FZ_CHECK(got == ulen + 1 + plen && memcmp(raw, user, ulen) == 0 && raw[ulen] == ':' &&
                 memcmp(raw + ulen + 1, pass, plen) == 0,
             "basic header does not decode to user:pass");
    free(raw);
    free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;
    char *p[3];
    size_t n = fz_split(data, size, &buf, p, 3);
    check_challenge(p[0]);
    check_token(data, size);
    if (n >= 2)
        check_basic(p[1], n >= 3 ? p[2] : "");
    free(buf);
    return 0;
}
