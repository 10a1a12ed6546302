/* ref.c - image references: parsing the list-file form and the legacy
 * REGISTRY IMAGE TAG words, normalising Docker Hub names, and printing
 * references back (see ref.h for the grammar). */
#include "engine/image/ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/digest.h"

#define DOCKER_HUB "registry-1.docker.io"
#define NAME_MAX_LEN 255 /* distribution's limit on [registry/]repository */
#define TAG_MAX_LEN 128
#define TEXT_MAX_LEN 4096 /* anything longer cannot be a valid reference */
#define EXCERPT_MAX 80

/* A printable copy of s for messages: bytes outside printable ASCII and
 * backslashes and quotes become escapes, and long input is cut with "...". */
static const char *excerpt(const char *s, char *out, size_t outsz)
{
    return oc_excerpt(s, s ? strlen(s) : 0, EXCERPT_MAX, out, outsz);
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex_or_colon(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* One repository path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
 * Returns NULL when valid, else why not. */
static const char *component_problem(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return "has an empty path component (leading, trailing or doubled '/')";
    for (;;) {
        size_t start = i;
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i < n && s[i] >= 'A' && s[i] <= 'Z')
            return "has upper-case letters; repository names must be lowercase";
        if (i == start && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return "has a character that is not allowed in a repository name (only a-z, 0-9, "
                   "'.', '_', '-' and '/')";
        if (i == start)
            return "has a path component that does not start and end with a lowercase letter "
                   "or digit, or has a bad separator ('.', '_', '__' or dashes between "
                   "letters or digits)";
        if (i == n)
            return NULL;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return "has a character that is not allowed in a repository name (only a-z, 0-9, "
                   "'.', '_', '-' and '/')";
        }
        if (i == n)
            return "has a path component that ends with a separator";
    }
}

/* Repository: components separated by '/'. */
static const char *repository_problem(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            const char *why = component_problem(s + start, i - start);
            if (why)
                return why;
            start = i + 1;
        }
    }
    return NULL;
}

/* Port: 1 to 65535, digits only. */
static const char *port_problem(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return "has a bad port (1 to 65535 expected)";
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return "has a bad port (1 to 65535 expected)";
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return "has a bad port (1 to 65535 expected)";
    return NULL;
}

/* Registry: host labels ([A-Za-z0-9] or [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])
 * joined by '.', or a bracketed IPv6 address, optionally ":port". */
static const char *registry_problem(const char *s, size_t n)
{
    static const char bad_host[] = "has a bad registry host (letters, digits, '-' and '.' "
                                   "expected, optionally followed by :port)";
    size_t i = 0;
    if (n == 0)
        return "has an empty registry";
    if (n >= 8 && (strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0))
        return "names the registry with a URL scheme; give just host[:port]";
    if (s[0] == '[') {
        i = 1;
        while (i < n && is_hex_or_colon(s[i]))
            i++;
        if (i == 1 || i == n || s[i] != ']')
            return bad_host;
        i++;
    } else {
        for (;;) {
            size_t start = i;
            while (i < n && (is_alnum(s[i]) || s[i] == '-'))
                i++;
            if (i == start || s[start] == '-' || s[i - 1] == '-')
                return bad_host;
            if (i < n && s[i] == '.') {
                i++;
                continue;
            }
            break;
        }
    }
    if (i == n)
        return NULL;
    if (s[i] != ':')
        return bad_host;
    return port_problem(s + i + 1, n - i - 1);
}

/* Tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
static const char *tag_problem(const char *s, size_t n)
{
    if (n == 0)
        return "has an empty tag";
    if (n > TAG_MAX_LEN)
        return "has a tag longer than 128 characters";
    if (!(is_alnum(s[0]) || s[0] == '_'))
        return "has a tag that does not start with a letter, digit or '_'";
    for (size_t i = 1; i < n; i++)
        if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return "has a tag with a character other than letters, digits, '_', '.' and '-'";
    return NULL;
}

const char *oc_registry_canonical(const char *registry)
{
    if (!registry)
        return NULL;
    if (strcasecmp(registry, "docker.io") == 0 || strcasecmp(registry, "index.docker.io") == 0 ||
        strcasecmp(registry, DOCKER_HUB) == 0)
        return DOCKER_HUB;
    return registry;
}

void oc_ref_free(oc_ref *ref)
{
    if (!ref)
        return;
    free(ref->registry);
    free(ref->repository);
    free(ref->tag);
    free(ref->digest);
    memset(ref, 0, sizeof *ref);
}

/* Fills ref from validated pieces; adds "library/" for one-part Docker Hub
 * repositories. The pieces need not be NUL-terminated. */
static int build(oc_ref *ref, const char *registry, size_t reg_len, const char *repo,
                 size_t repo_len, const char *tag, size_t tag_len, const char *digest,
                 size_t digest_len, oc_error *err)
{
    char *reg = dup_n(registry, reg_len);
    if (!reg)
        goto nomem;
    const char *canon = oc_registry_canonical(reg);
    if (canon != reg) {
        free(reg);
        reg = strdup(canon);
        if (!reg)
            goto nomem;
    }
    ref->registry = reg;
    if (strcmp(reg, DOCKER_HUB) == 0 && !memchr(repo, '/', repo_len)) {
        ref->repository = malloc(repo_len + sizeof "library/");
        if (!ref->repository)
            goto nomem;
        memcpy(ref->repository, "library/", 8);
        memcpy(ref->repository + 8, repo, repo_len);
        ref->repository[8 + repo_len] = '\0';
    } else {
        ref->repository = dup_n(repo, repo_len);
        if (!ref->repository)
            goto nomem;
    }
    if (tag && !(ref->tag = dup_n(tag, tag_len)))
        goto nomem;
    if (digest && !(ref->digest = dup_n(digest, digest_len)))
        goto nomem;
    return 0;
nomem:
    oc_ref_free(ref);
    oc_error_set(err, OC_E_NOMEM, "out of memory building an image reference");
    return -1;
}

/* Validates "sha256:<64 hex>" through oc_digest_parse; what (if not NULL)
 * and text name the input in the message. */
static int check_digest(const char *what, const char *text, const char *digest, size_t len,
                        oc_error *err)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    char ex[EXCERPT_MAX * 4 + 8];
    char *d = dup_n(digest, len);
    if (!d) {
        oc_error_set(err, OC_E_NOMEM, "out of memory checking a digest");
        return -1;
    }
    int rc = oc_digest_parse(d, hex, err);
    free(d);
    if (rc != 0) {
        if (what)
            oc_error_prefix(err, "invalid %s \"%s\"", what, excerpt(text, ex, sizeof ex));
        return -1;
    }
    return 0;
}

static int fail(oc_error *err, const char *what, const char *text, const char *why)
{
    char ex[EXCERPT_MAX * 4 + 8];
    oc_error_set(err, OC_E_FORMAT, "invalid %s \"%s\": it %s", what, excerpt(text, ex, sizeof ex),
                 why);
    return -1;
}

int oc_ref_from_parts(oc_ref *ref, const char *registry, const char *image,
                      const char *tag_or_digest, oc_error *err)
{
    const char *why = NULL;
    if (!ref) {
        oc_error_set(err, OC_E_USAGE, "oc_ref_from_parts: no reference to fill");
        return -1;
    }
    memset(ref, 0, sizeof *ref);
    if (!registry || !image || !tag_or_digest) {
        oc_error_set(err, OC_E_USAGE, "an image reference needs a registry, an image and a tag");
        return -1;
    }
    size_t reg_len = strlen(registry);
    size_t img_len = strlen(image);
    size_t tag_len = strlen(tag_or_digest);
    if (reg_len > TEXT_MAX_LEN || (why = registry_problem(registry, reg_len)))
        return fail(err, "registry", registry, why ? why : "is too long");
    if (img_len > NAME_MAX_LEN)
        return fail(err, "image name", image, "is longer than 255 characters");
    if ((why = repository_problem(image, img_len)))
        return fail(err, "image name", image, why);
    if (strncmp(tag_or_digest, "sha256:", 7) == 0 || strchr(tag_or_digest, ':')) {
        /* oc_digest_parse's message already quotes the digest */
        if (check_digest(NULL, tag_or_digest, tag_or_digest, tag_len, err) != 0)
            return -1;
        return build(ref, registry, reg_len, image, img_len, NULL, 0, tag_or_digest, tag_len, err);
    }
    if (tag_len > TEXT_MAX_LEN || (why = tag_problem(tag_or_digest, tag_len)))
        return fail(err, "tag", tag_or_digest, why ? why : "is too long");
    return build(ref, registry, reg_len, image, img_len, tag_or_digest, tag_len, NULL, 0, err);
}

int oc_ref_parse(oc_ref *ref, const char *text, const char *default_registry, oc_error *err)
{
    static const char what[] = "image reference";
    const char *why = NULL;
    if (!ref) {
        oc_error_set(err, OC_E_USAGE, "oc_ref_parse: no reference to fill");
        return -1;
    }
    memset(ref, 0, sizeof *ref);
    if (!text) {
        oc_error_set(err, OC_E_USAGE, "oc_ref_parse: no reference text");
        return -1;
    }
    if (!default_registry)
        default_registry = "docker.io";
    size_t dreg_len = strlen(default_registry);
    if (dreg_len > TEXT_MAX_LEN || (why = registry_problem(default_registry, dreg_len))) {
        char ex[EXCERPT_MAX * 4 + 8];
        oc_error_set(err, OC_E_USAGE, "invalid default registry \"%s\": it %s",
                     excerpt(default_registry, ex, sizeof ex), why ? why : "is too long");
        return -1;
    }
    size_t len = strlen(text);
    if (len == 0)
        return fail(err, what, text, "is empty");
    if (len > TEXT_MAX_LEN)
        return fail(err, what, text, "is too long");
    if (strstr(text, "://"))
        return fail(err, what, text, "has a URL scheme; write [REGISTRY/]REPO[:TAG] without it");

    /* name[:tag][@digest] */
    const char *at = strchr(text, '@');
    size_t name_len = at ? (size_t)(at - text) : len;
    const char *digest = NULL;
    size_t digest_len = 0;
    if (at) {
        digest = at + 1;
        digest_len = len - name_len - 1;
        if (digest_len == 0)
            return fail(err, what, text, "has an empty digest after '@'");
        if (check_digest(what, text, digest, digest_len, err) != 0)
            return -1;
    }
    const char *last_slash = NULL;
    for (size_t i = 0; i < name_len; i++)
        if (text[i] == '/')
            last_slash = text + i;
    const char *tail = last_slash ? last_slash + 1 : text;
    const char *colon = memchr(tail, ':', name_len - (size_t)(tail - text));
    const char *tag = NULL;
    size_t tag_len = 0;
    if (colon) {
        tag = colon + 1;
        tag_len = name_len - (size_t)(tag - text);
        name_len = (size_t)(colon - text);
        if ((why = tag_problem(tag, tag_len)))
            return fail(err, what, text, why);
    }
    if (name_len == 0)
        return fail(err, what, text, "has no repository name");
    if (name_len > NAME_MAX_LEN)
        return fail(err, what, text, "has a name longer than 255 characters");

    /* [registry/]repository: the first part is a registry if it looks like a host. */
    const char *registry = default_registry;
    size_t reg_len = dreg_len;
    const char *repo = text;
    size_t repo_len = name_len;
    const char *slash = memchr(text, '/', name_len);
    if (slash) {
        size_t first_len = (size_t)(slash - text);
        if (memchr(text, '.', first_len) || memchr(text, ':', first_len) ||
            (first_len == 9 && memcmp(text, "localhost", 9) == 0) ||
            (first_len > 0 && text[0] == '[')) {
            registry = text;
            reg_len = first_len;
            repo = slash + 1;
            repo_len = name_len - first_len - 1;
            if ((why = registry_problem(registry, reg_len)))
                return fail(err, what, text, why);
        }
    }
    if ((why = repository_problem(repo, repo_len)))
        return fail(err, what, text, why);
    if (!tag && !digest) {
        tag = "latest";
        tag_len = 6;
    }
    return build(ref, registry, reg_len, repo, repo_len, tag, tag_len, digest, digest_len, err);
}

const char *oc_ref_tag_or_digest(const oc_ref *ref)
{
    if (!ref)
        return NULL;
    return ref->tag ? ref->tag : ref->digest;
}

/* "name" + ":tag" or "@digest" (the tag when both exist), in a new string. */
static char *join_name(const char *prefix, const char *name, const oc_ref *ref, int both)
{
    const char *tag = ref->tag;
    const char *digest = (both || !tag) ? ref->digest : NULL;
    size_t n = strlen(prefix) + strlen(name) + (tag ? strlen(tag) + 1 : 0) +
               (digest ? strlen(digest) + 1 : 0) + 1;
    char *s = malloc(n);
    if (!s)
        return NULL;
    snprintf(s, n, "%s%s%s%s%s%s", prefix, name, tag ? ":" : "", tag ? tag : "", digest ? "@" : "",
             digest ? digest : "");
    return s;
}

/* "<registry>/<repository>" with its tag or digest (join_name: both with both). */
static char *join_with_host(const oc_ref *ref, int full)
{
    size_t n = strlen(ref->registry) + 2;
    char *prefix = malloc(n);
    if (!prefix)
        return NULL;
    snprintf(prefix, n, "%s/", ref->registry);
    char *s = join_name(prefix, ref->repository, ref, full);
    free(prefix);
    return s;
}

char *oc_ref_familiar(const oc_ref *ref)
{
    if (!ref || !ref->registry || !ref->repository)
        return NULL;
    const char *canon = oc_registry_canonical(ref->registry);
    if (strcmp(canon, DOCKER_HUB) == 0) {
        const char *name = ref->repository;
        if (strncmp(name, "library/", 8) == 0 && !strchr(name + 8, '/'))
            name += 8;
        return join_name("", name, ref, 0);
    }
    return join_with_host(ref, 0);
}

char *oc_ref_familiar_name(const oc_ref *ref)
{
    if (!ref)
        return NULL;
    oc_ref bare = {.registry = ref->registry, .repository = ref->repository};
    return oc_ref_familiar(&bare);
}

char *oc_ref_string(const oc_ref *ref)
{
    if (!ref || !ref->registry || !ref->repository)
        return NULL;
    return join_with_host(ref, 1);
}
