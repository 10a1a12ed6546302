/* names.c - repository names, tags and digests as serve takes them (see
 * names.h). */
#include "engine/serve/names.h"

#include <stdlib.h>
#include <string.h>

#include "engine/image/ref.h"

/* As DOCKER_HUB in engine/image/ref.c: the host oc_ref_parse gives Docker
 * Hub images; served with keep_host as "docker.io". */
#define HUB_CANONICAL "registry-1.docker.io"

char *oc_srv_repo_name(const char *store_name, int keep_host, oc_error *err)
{
    oc_ref ref;
    if (oc_ref_parse(&ref, store_name, NULL, err) != 0)
        return NULL;
    char *out = NULL;
    if (ref.digest) { /* the name itself carried a digest */
        oc_error_set(err, OC_E_FORMAT, "\"%s\" is not an image name", store_name);
    } else if (!keep_host) {
        out = strdup(ref.repository);
    } else {
        const char *host = strcmp(ref.registry, HUB_CANONICAL) == 0 ? "docker.io" : ref.registry;
        size_t n = strlen(host) + 1 + strlen(ref.repository) + 1;
        out = malloc(n);
        if (out) {
            strcpy(out, host);
            strcat(out, "/");
            strcat(out, ref.repository);
        }
    }
    if (!out && err && err->code == OC_OK)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    oc_ref_free(&ref);
    return out;
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static int component_valid(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
        return 0;
    while (i < len) {
        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        /* a separator, then an alphanumeric */
        size_t start = i;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < len && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < len && s[i] == '-')
                i++;
        } else {
            return 0;
        }
        if (i == start || i >= len || !is_lower_alnum(s[i]))
            return 0;
    }
    return 1;
}

/* host[:port]: DNS labels of [A-Za-z0-9-] joined by '.', then digits */
static int host_valid(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    size_t hlen = colon ? (size_t)(colon - s) : len;
    if (hlen == 0)
        return 0;
    for (size_t i = 0; i < hlen; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.';
        if (!ok || (c == '.' && (i == 0 || i + 1 == hlen || s[i - 1] == '.')))
            return 0;
    }
    if (colon) {
        size_t plen = len - hlen - 1;
        if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") < plen)
            return 0;
    }
    return 1;
}

int oc_srv_name_valid(const char *name, size_t len, int keep_host)
{
    if (len == 0 || len > OC_SRV_NAME_MAX)
        return 0;
    size_t start = 0;
    int first = 1;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/')
            continue;
        const char *c = name + start;
        size_t clen = i - start;
        if (!component_valid(c, clen) && !(first && keep_host && host_valid(c, clen)))
            return 0;
        first = 0;
        start = i + 1;
    }
    return 1;
}

int oc_srv_tag_valid(const char *tag, size_t len)
{
    if (len == 0 || len > OC_SRV_TAG_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = tag[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || (i > 0 && (c == '.' || c == '-' || c == '+'));
        if (!ok)
            return 0;
    }
    return 1;
}

oc_srv_ref_kind oc_srv_ref_classify(const char *ref, size_t len, char hex[OC_SHA256_HEX_LEN + 1])
{
    const char *colon = memchr(ref, ':', len);
    if (!colon)
        return oc_srv_tag_valid(ref, len) ? OC_SRV_REF_TAG : OC_SRV_REF_BAD_TAG;
    static const char prefix[] = "sha256:";
    const size_t plen = sizeof prefix - 1;
    if (len != plen + OC_SHA256_HEX_LEN || memcmp(ref, prefix, plen) != 0)
        return OC_SRV_REF_INVALID;
    for (size_t i = 0; i < OC_SHA256_HEX_LEN; i++) {
        char c = ref[plen + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return OC_SRV_REF_INVALID;
        hex[i] = c;
    }
    hex[OC_SHA256_HEX_LEN] = '\0';
    return OC_SRV_REF_DIGEST;
}
