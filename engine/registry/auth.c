/* auth.c - registry authentication without the network: the
 * WWW-Authenticate challenge parser, token-endpoint answers, the Basic
 * header and credentials from docker's config.json.
 *
 * Challenges: one header value may hold several challenges
 * ("Negotiate, Bearer realm=..."); Bearer is preferred, then Basic, and a
 * value with neither is OC_E_UNSUPPORTED. A Bearer realm must be an
 * http(s) URL. Quoted values may not hold control characters.
 *
 * Token lifetime: "expires_in" absent, null, zero or negative means the
 * spec's default of 60 seconds; values above 86400 are cut to 86400 (one
 * day); fractions are dropped. Tokens must be visible ASCII, so they can go
 * into a header as they are.
 *
 * docker config: $DOCKER_CONFIG/config.json when DOCKER_CONFIG is set and
 * not empty, else $HOME/.docker/config.json (no HOME: no credentials). An
 * absent file, no "auths", or a matching entry with no "auth" and no
 * "username" (a credential helper holds it) all mean "not found".
 * Credential helpers ("credsStore", "credHelpers") are not run. */
#include "engine/registry/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/image/ref.h"
#include "engine/image/limits.h"

#define HEADER_MAX 16384
#define EXPIRES_DEFAULT 60
#define EXPIRES_MAX 86400
#define EXCERPT_MAX 80
#define EXCERPT_BUF (EXCERPT_MAX * 4 + 8)
#define HUB_KEY "https://index.docker.io/v1/"

/* A printable excerpt of s for messages (escapes, cut with "..."). */
static const char *excerpt(const char *s, char *out, size_t outsz)
{
    return oc_excerpt(s, s ? strlen(s) : 0, EXCERPT_MAX, out, outsz);
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* ---- WWW-Authenticate ---- */

static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_token68_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~+/", c));
}

static int is_ctl(char c)
{
    unsigned char u = (unsigned char)c;
    return (u < 0x20 && u != '\t') || u == 0x7f;
}

static void skip_ows(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

void oc_auth_challenge_free(oc_auth_challenge *c)
{
    if (!c)
        return;
    free(c->realm);
    free(c->service);
    free(c->scope);
    free(c->error);
    memset(c, 0, sizeof *c);
}

static int challenge_error(oc_error *err, oc_errcode code, const char *header, const char *why)
{
    char ex[EXCERPT_BUF];
    oc_error_set(err, code, "WWW-Authenticate \"%s\": %s", excerpt(header, ex, sizeof ex), why);
    return -1;
}

/* A token68 credential ("Negotiate abc=="): consumed when it is the whole
 * of this challenge's data. */
static int skip_token68(const char **pp)
{
    const char *p = *pp;
    const char *start = p;
    while (is_token68_char(*p))
        p++;
    if (p == start)
        return 0;
    while (*p == '=')
        p++;
    skip_ows(&p);
    if (*p != '\0' && *p != ',')
        return 0;
    *pp = p;
    return 1;
}

/* A quoted-string (at the opening quote) or a bare value, unescaped into a
 * new string; NULL with *why set when malformed or out of memory. */
static char *read_value(const char **pp, const char **why)
{
    const char *p = *pp;
    char *out = malloc(strlen(p) + 1);
    size_t n = 0;
    if (!out) {
        *why = "out of memory";
        return NULL;
    }
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (is_ctl(*p)) {
                *why = "a quoted value holds a control character";
                free(out);
                return NULL;
            }
            out[n++] = *p;
        }
        if (*p != '"') {
            *why = "a quoted value is not terminated";
            free(out);
            return NULL;
        }
        p++;
    } else {
        for (; *p && *p != ',' && *p != ' ' && *p != '\t'; p++) {
            if (is_ctl(*p) || *p == '"' || *p == '\\') {
                *why = "a bare value holds a quote, backslash or control character";
                free(out);
                return NULL;
            }
            out[n++] = *p;
        }
        if (n == 0) {
            *why = "a parameter has no value";
            free(out);
            return NULL;
        }
    }
    out[n] = '\0';
    *pp = p;
    return out;
}

/* The slot in c for parameter name (case-insensitive), or NULL to ignore. */
static char **param_slot(oc_auth_challenge *c, const char *name, size_t n)
{
    static const char *const names[] = {"realm", "service", "scope", "error"};
    char **slots[] = {&c->realm, &c->service, &c->scope, &c->error};
    for (size_t i = 0; i < 4; i++)
        if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
            return slots[i];
    return NULL;
}

/* Reads the parameters of one challenge into c; stops at the end or before
 * the next challenge's scheme. */
static const char *read_params(const char **pp, oc_auth_challenge *c)
{
    const char *p = *pp;
    for (;;) {
        skip_ows(&p);
        if (*p == '\0')
            break;
        if (*p == ',') {
            p++;
            continue;
        }
        const char *name = p;
        while (is_tchar(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        if (nlen == 0)
            return "unexpected character where a parameter name should be";
        skip_ows(&p);
        if (*p != '=') {
            p = name; /* a new challenge starts here */
            break;
        }
        p++;
        skip_ows(&p);
        const char *why = NULL;
        char *value = read_value(&p, &why);
        if (!value)
            return why;
        char **slot = param_slot(c, name, nlen);
        if (slot && *slot) {
            free(value);
            return "a parameter appears twice";
        }
        if (slot)
            *slot = value;
        else
            free(value);
        skip_ows(&p);
        if (*p != '\0' && *p != ',')
            return "parameters must be separated by ','";
    }
    *pp = p;
    return NULL;
}

static int has_http_scheme(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0;
}

int oc_auth_parse_challenge(oc_auth_challenge *c, const char *header_value, oc_error *err)
{
    oc_auth_challenge bearer = {0};
    oc_auth_challenge basic = {0};
    int n_schemes = 0;
    const char *why = NULL;
    oc_errcode code = OC_E_FORMAT;
    if (!c) {
        oc_error_set(err, OC_E_USAGE, "oc_auth_parse_challenge: no challenge to fill");
        return -1;
    }
    memset(c, 0, sizeof *c);
    if (!header_value) {
        oc_error_set(err, OC_E_FORMAT, "no WWW-Authenticate value");
        return -1;
    }
    if (strlen(header_value) > HEADER_MAX)
        return challenge_error(err, OC_E_FORMAT, header_value, "the value is too long");
    const char *p = header_value;
    while (!why) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *scheme = p;
        while (is_tchar(*p))
            p++;
        size_t slen = (size_t)(p - scheme);
        if (slen == 0 || (*p && *p != ' ' && *p != '\t' && *p != ',')) {
            why = "expected an authentication scheme such as Bearer or Basic";
            break;
        }
        n_schemes++;
        oc_auth_challenge cur = {0};
        if (slen == 6 && strncasecmp(scheme, "bearer", 6) == 0)
            cur.scheme = OC_AUTH_BEARER;
        else if (slen == 5 && strncasecmp(scheme, "basic", 5) == 0)
            cur.scheme = OC_AUTH_BASIC;
        skip_ows(&p);
        if (!skip_token68(&p))
            why = read_params(&p, &cur);
        if (!why && cur.scheme == OC_AUTH_BEARER && bearer.scheme == OC_AUTH_NONE)
            bearer = cur;
        else if (!why && cur.scheme == OC_AUTH_BASIC && basic.scheme == OC_AUTH_NONE)
            basic = cur;
        else
            oc_auth_challenge_free(&cur);
    }
    if (!why && n_schemes == 0)
        why = "the value is empty";
    else if (!why && bearer.scheme == OC_AUTH_NONE && basic.scheme == OC_AUTH_NONE) {
        why = "no Bearer or Basic challenge (unsupported authentication scheme)";
        code = OC_E_UNSUPPORTED;
    } else if (!why && bearer.scheme == OC_AUTH_BEARER && !bearer.realm)
        why = "the Bearer challenge has no realm";
    else if (!why && bearer.scheme == OC_AUTH_BEARER && !has_http_scheme(bearer.realm))
        why = "the Bearer realm is not an http:// or https:// URL";
    if (why) {
        oc_auth_challenge_free(&bearer);
        oc_auth_challenge_free(&basic);
        return challenge_error(err, code, header_value, why);
    }
    if (bearer.scheme == OC_AUTH_BEARER) {
        *c = bearer;
        oc_auth_challenge_free(&basic);
    } else {
        *c = basic;
    }
    return 0;
}

/* ---- token endpoint ---- */

static int token_field(const json_t *root, const char *key, const char **out, oc_error *err)
{
    const json_t *j = json_object_get(root, key);
    *out = NULL;
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_string(j)) {
        oc_error_set(err, OC_E_FORMAT, "token response: field \"%s\" is not a string", key);
        return -1;
    }
    if (strlen(json_string_value(j)) != json_string_length(j)) {
        oc_error_set(err, OC_E_FORMAT, "token response: field \"%s\" holds a NUL byte", key);
        return -1;
    }
    if (json_string_length(j) > 0)
        *out = json_string_value(j);
    return 0;
}

int oc_auth_parse_token_response(const char *body, size_t len, char **token, int *expires_in,
                                 oc_error *err)
{
    char ex[EXCERPT_BUF];
    const char *tok;
    const char *access;
    if (!token) {
        oc_error_set(err, OC_E_USAGE, "oc_auth_parse_token_response: nowhere to put the token");
        return -1;
    }
    *token = NULL;
    if (expires_in)
        *expires_in = EXPIRES_DEFAULT;
    if (!body || len == 0) {
        oc_error_set(err, OC_E_FORMAT, "token response is empty");
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root) {
        oc_error_set(err, OC_E_FORMAT, "token response is not valid JSON (line %d, column %d): %s",
                     je.line, je.column, excerpt(je.text, ex, sizeof ex));
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        oc_error_set(err, OC_E_FORMAT, "token response is not a JSON object");
        goto out;
    }
    if (token_field(root, "token", &tok, err) != 0 ||
        token_field(root, "access_token", &access, err) != 0)
        goto out;
    if (!tok)
        tok = access;
    if (!tok) {
        oc_error_set(err, OC_E_FORMAT,
                     "token response has neither a \"token\" nor an \"access_token\"");
        goto out;
    }
    for (const char *c = tok; *c; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            oc_error_set(err, OC_E_FORMAT,
                         "token response: the token holds a character not allowed in an HTTP "
                         "header (byte 0x%02x)",
                         (unsigned char)*c);
            goto out;
        }
    }
    const json_t *exp = json_object_get(root, "expires_in");
    long long seconds = EXPIRES_DEFAULT;
    if (exp && !json_is_null(exp)) {
        if (json_is_integer(exp)) {
            seconds = (long long)json_integer_value(exp);
        } else if (json_is_real(exp)) {
            double d = json_real_value(exp);
            seconds = d >= (double)EXPIRES_MAX ? EXPIRES_MAX : d < 1 ? 0 : (long long)d;
        } else {
            oc_error_set(err, OC_E_FORMAT, "token response: field \"expires_in\" is not a number");
            goto out;
        }
    }
    if (seconds <= 0)
        seconds = EXPIRES_DEFAULT;
    if (seconds > EXPIRES_MAX)
        seconds = EXPIRES_MAX;
    *token = strdup(tok);
    if (!*token) {
        oc_error_set(err, OC_E_NOMEM, "out of memory storing a token");
        goto out;
    }
    if (expires_in)
        *expires_in = (int)seconds;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- Basic ---- */

char *oc_auth_basic_header(const char *user, const char *pass)
{
    if (!user)
        user = "";
    if (!pass)
        pass = "";
    size_t ulen = strlen(user);
    size_t plen = strlen(pass);
    if (ulen > INT_MAX / 4 || plen > INT_MAX / 4)
        return NULL;
    size_t n = ulen + 1 + plen;
    unsigned char *raw = malloc(n);
    size_t b64 = 4 * ((n + 2) / 3);
    char *out = malloc(sizeof "Basic " + b64);
    if (!raw || !out) {
        free(raw);
        free(out);
        return NULL;
    }
    memcpy(raw, user, ulen);
    raw[ulen] = ':';
    memcpy(raw + ulen + 1, pass, plen);
    memcpy(out, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, raw, (int)n);
    out[6 + b64] = '\0';
    OPENSSL_cleanse(raw, n);
    free(raw);
    return out;
}

/* ---- docker config.json ---- */

static int is_b64_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Standard base64 with optional padding; surrounding blanks ignored. The
 * result is NUL-terminated; NULL when malformed or out of memory. */
static char *b64_decode(const char *in, size_t *out_len)
{
    size_t n = strlen(in);
    while (n > 0 && strchr(" \t\r\n", in[n - 1]))
        n--;
    while (n > 0 && strchr(" \t\r\n", *in)) {
        in++;
        n--;
    }
    size_t data = n;
    while (data > 0 && in[data - 1] == '=' && n - data < 2)
        data--;
    for (size_t i = 0; i < data; i++)
        if (!is_b64_char(in[i]))
            return NULL;
    if (data % 4 == 1 || (n != data && n % 4 != 0) || data > INT_MAX / 2)
        return NULL;
    size_t pad = (4 - data % 4) % 4;
    size_t padded_len = data + pad;
    unsigned char *padded = malloc(padded_len + 1);
    unsigned char *out = malloc(padded_len / 4 * 3 + 1);
    if (!padded || !out) {
        free(padded);
        free(out);
        return NULL;
    }
    memcpy(padded, in, data);
    memset(padded + data, '=', pad);
    int got = EVP_DecodeBlock(out, padded, (int)padded_len);
    OPENSSL_cleanse(padded, padded_len);
    free(padded);
    if (got < 0 || (size_t)got < pad) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)got - pad;
    out[*out_len] = '\0';
    return (char *)out;
}

static char *config_path(int *oom)
{
    const char *dir = getenv("DOCKER_CONFIG");
    const char *suffix = "/config.json";
    *oom = 0;
    if (!dir || !*dir) {
        dir = getenv("HOME");
        suffix = "/.docker/config.json";
        if (!dir || !*dir)
            return NULL;
    }
    size_t n = strlen(dir) + strlen(suffix) + 1;
    char *path = malloc(n);
    if (!path) {
        *oom = 1;
        return NULL;
    }
    snprintf(path, n, "%s%s", dir, suffix);
    return path;
}

/* Reads path whole: 1 with *data (NUL-terminated), 0 when absent, -1 on error. */
static int read_config(const char *path, char **data, size_t *len, oc_error *err)
{
    struct stat st;
    *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        oc_error_errno(err, errno, "opening docker config %s", path);
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        oc_error_errno(err, errno, "reading docker config %s", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        oc_error_set(err, OC_E_IO, "docker config %s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size > OC_SETTINGS_FILE_MAX) {
        oc_error_set(err, OC_E_LIMIT, "docker config %s is larger than %d bytes", path,
                     OC_SETTINGS_FILE_MAX);
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap);
    size_t n = 0;
    if (!buf) {
        close(fd);
        oc_error_set(err, OC_E_NOMEM, "out of memory reading docker config");
        return -1;
    }
    for (;;) {
        if (n == cap - 1)
            break; /* the file grew while we read it: what fitted is what we parse */
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            oc_error_errno(err, errno, "reading docker config %s", path);
            close(fd);
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 1;
}

/* Credentials in one "auths" entry: 1 found, 0 none there, -1 malformed. */
static int entry_credentials(const json_t *entry, const char *path, const char *key, char **user,
                             char **pass, oc_error *err)
{
    char kx[EXCERPT_BUF];
    const char *why = NULL;
    if (!json_is_object(entry)) {
        why = "is not an object";
        goto bad;
    }
    const json_t *auth = json_object_get(entry, "auth");
    if (auth && !json_is_null(auth)) {
        if (!json_is_string(auth)) {
            why = "has an \"auth\" that is not a string";
            goto bad;
        }
        if (json_string_length(auth) > 0) {
            size_t n = 0;
            char *plain = b64_decode(json_string_value(auth), &n);
            char *colon = plain ? memchr(plain, ':', n) : NULL;
            if (!plain || memchr(plain, '\0', n) || !colon) {
                if (plain) {
                    OPENSSL_cleanse(plain, n);
                    free(plain);
                }
                why = "has an \"auth\" that is not base64 of user:password";
                goto bad;
            }
            *colon = '\0';
            *user = strdup(plain);
            *pass = strdup(colon + 1);
            OPENSSL_cleanse(plain, n);
            free(plain);
            goto done;
        }
    }
    const json_t *u = json_object_get(entry, "username");
    const json_t *pw = json_object_get(entry, "password");
    if ((u && !json_is_null(u) && !json_is_string(u)) ||
        (pw && !json_is_null(pw) && !json_is_string(pw))) {
        why = "has a \"username\" or \"password\" that is not a string";
        goto bad;
    }
    if (!json_is_string(u) || json_string_length(u) == 0)
        return 0;
    if (strlen(json_string_value(u)) != json_string_length(u) ||
        (json_is_string(pw) && strlen(json_string_value(pw)) != json_string_length(pw))) {
        why = "has a \"username\" or \"password\" holding a NUL byte";
        goto bad;
    }
    *user = strdup(json_string_value(u));
    *pass = strdup(json_is_string(pw) ? json_string_value(pw) : "");
done:
    if (!*user || !*pass) {
        free_secret(*user);
        free_secret(*pass);
        *user = *pass = NULL;
        oc_error_set(err, OC_E_NOMEM, "out of memory reading docker credentials");
        return -1;
    }
    return 1;
bad:
    oc_error_set(err, OC_E_FORMAT, "docker config %s: auths entry \"%s\" %s", path,
                 excerpt(key, kx, sizeof kx), why);
    return -1;
}

/* The host of an auths key: scheme and path removed. */
static char *key_host(const char *key)
{
    if (strncasecmp(key, "https://", 8) == 0)
        key += 8;
    else if (strncasecmp(key, "http://", 7) == 0)
        key += 7;
    return strndup(key, strcspn(key, "/"));
}

static int same_registry(const char *a, const char *b)
{
    return strcasecmp(oc_registry_canonical(a), oc_registry_canonical(b)) == 0;
}

static int lookup(json_t *auths, const char *path, const char *registry, char **user, char **pass,
                  oc_error *err)
{
    /* Exact keys first, in docker's order of preference, then any key whose host matches. */
    static const char *const forms[] = {"%s", "https://%s", "http://%s", "https://%s/v1/"};
    char key[1024];
    for (size_t i = 0; i < sizeof forms / sizeof forms[0] + 1; i++) {
        if (i < sizeof forms / sizeof forms[0])
            snprintf(key, sizeof key, forms[i], registry);
        else if (same_registry(registry, "docker.io"))
            snprintf(key, sizeof key, "%s", HUB_KEY);
        else
            break;
        const json_t *entry = json_object_get(auths, key);
        if (!entry)
            continue;
        int rc = entry_credentials(entry, path, key, user, pass, err);
        if (rc != 0)
            return rc;
    }
    const char *k;
    const json_t *entry;
    json_object_foreach(auths, k, entry)
    {
        char *host = key_host(k);
        if (!host) {
            oc_error_set(err, OC_E_NOMEM, "out of memory reading docker config");
            return -1;
        }
        int match = same_registry(host, registry);
        free(host);
        if (!match)
            continue;
        int rc = entry_credentials(entry, path, k, user, pass, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int oc_auth_docker_config_lookup(const char *registry, char **user, char **pass, oc_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int oom;
    if (!user || !pass) {
        oc_error_set(err, OC_E_USAGE, "oc_auth_docker_config_lookup: nowhere to put credentials");
        return -1;
    }
    *user = *pass = NULL;
    if (!registry || !*registry || strlen(registry) > 512) {
        oc_error_set(err, OC_E_USAGE, "docker config lookup needs a registry host");
        return -1;
    }
    char *path = config_path(&oom);
    if (!path) {
        if (oom)
            oc_error_set(err, OC_E_NOMEM, "out of memory finding the docker config");
        return oom ? -1 : 0;
    }
    int rc = read_config(path, &data, &len, err);
    if (rc <= 0) {
        free(path);
        return rc;
    }
    json_error_t je;
    json_t *root = json_loadb(data, len, 0, &je);
    OPENSSL_cleanse(data, len);
    free(data);
    if (!root) {
        char tx[EXCERPT_BUF];
        oc_error_set(err, OC_E_FORMAT,
                     "docker config %s is not valid JSON (line %d, column %d): %s", path, je.line,
                     je.column, excerpt(je.text, tx, sizeof tx));
        free(path);
        return -1;
    }
    json_t *auths = json_object_get(root, "auths");
    if (!json_is_object(root)) {
        oc_error_set(err, OC_E_FORMAT, "docker config %s is not a JSON object", path);
        rc = -1;
    } else if (!auths || json_is_null(auths)) {
        rc = 0;
    } else if (!json_is_object(auths)) {
        oc_error_set(err, OC_E_FORMAT, "docker config %s: \"auths\" is not an object", path);
        rc = -1;
    } else {
        rc = lookup(auths, path, registry, user, pass, err);
    }
    json_decref(root);
    free(path);
    return rc;
}
