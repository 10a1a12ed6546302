/* layerpath.c - layer tar names: normalisation and OCI whiteouts (see
 * layerpath.h). */
#include "engine/expand/layerpath.h"

#include <string.h>

int oc_lp_normalize(const char *name, char *out, const char **why)
{
    if (!name || !*name) {
        *why = "empty name";
        return -1;
    }
    if (name[0] == '/') {
        *why = "absolute path";
        return -1;
    }
    size_t o = 0;
    const char *p = name;
    while (*p) {
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - s);
        if (*p == '/')
            p++;
        if (n == 0 || (n == 1 && s[0] == '.'))
            continue;
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            *why = "'..' in path";
            return -1;
        }
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, s, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

int oc_lp_classify(char *path, const char **why)
{
    if (!*path)
        return OC_LP_ROOT;
    char *slash = strrchr(path, '/');
    char *base = slash ? slash + 1 : path;
    size_t plen = strlen(OC_LP_WH_PREFIX);
    if (strncmp(base, OC_LP_WH_PREFIX, plen) != 0)
        return OC_LP_CONTENT;
    if (strcmp(base, OC_LP_OPAQUE_NAME) == 0) {
        if (slash)
            *slash = '\0';
        else
            path[0] = '\0';
        return OC_LP_OPAQUE;
    }
    if (strncmp(base + plen, OC_LP_WH_PREFIX, plen) == 0)
        return OC_LP_META;
    const char *target = base + plen;
    if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0) {
        *why = "whiteout names no file ('.', '..' or nothing)";
        return -1;
    }
    memmove(base, target, strlen(target) + 1);
    return OC_LP_WHITEOUT;
}
