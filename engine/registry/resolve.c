/* resolve.c - a tag's manifest digest, by HEAD or else by GET (see
 * resolve.h). */
#include "engine/registry/resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/digest.h"

typedef struct resolve {
    oc_registry *r;
    char *repo, *tag, *accept;
    size_t max;
    long head_status; /* 405 or 404: HEAD was refused and GET asked instead */
    oc_resolve_done done;
    void *opaque;
} resolve;

static void resolve_free(resolve *rs)
{
    free(rs->repo);
    free(rs->tag);
    free(rs->accept);
    free(rs);
}

static void finish(resolve *rs, const char *digest, const char *body, size_t len, const char *type,
                   const oc_error *err)
{
    rs->done(rs->opaque, digest, body, len, type, err);
    resolve_free(rs);
}

static void on_get(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                   const oc_error *call_err)
{
    resolve *rs = opaque;
    if (call_err) {
        finish(rs, NULL, NULL, 0, NULL, call_err);
        return;
    }
    char hex[OC_SHA256_HEX_LEN + 1], digest[8 + OC_SHA256_HEX_LEN];
    oc_sha256_buf_hex(body, len, hex);
    snprintf(digest, sizeof digest, "sha256:%s", hex);
    const char *said = info->docker_content_digest;
    char said_hex[OC_SHA256_HEX_LEN + 1];
    oc_error err;
    oc_error_clear(&err);
    if (said && oc_digest_parse(said, said_hex, &err) == 0 && strcmp(said_hex, hex) != 0) {
        oc_error_set(&err, OC_E_DIGEST,
                     "manifest %s:%s: the registry says %s, the bytes hash to %s", rs->repo,
                     rs->tag, said, digest);
        finish(rs, NULL, NULL, 0, NULL, &err);
        return;
    }
    if (rs->head_status)
        oc_registry_set_head_refused(rs->r, rs->head_status);
    finish(rs, digest, body, len, info->content_type, NULL);
}

static void get(resolve *rs)
{
    oc_error err;
    oc_error_clear(&err);
    if (oc_registry_fetch_small(rs->r, rs->repo, "manifests", rs->tag, rs->accept, rs->max, on_get,
                                rs, &err) != 0)
        finish(rs, NULL, NULL, 0, NULL, &err);
}

static void on_head(void *opaque, const oc_reg_info *info, const oc_error *call_err)
{
    resolve *rs = opaque;
    if (call_err) {
        if ((info->status == 405 || info->status == 404) && call_err->code != OC_E_CANCELLED) {
            rs->head_status = info->status;
            if (info->status == 405) /* HEAD is not there, whatever this tag is */
                oc_registry_set_head_refused(rs->r, 405);
            get(rs); /* a registry or proxy that does not do HEAD: GET says */
            return;
        }
        finish(rs, NULL, NULL, 0, NULL, call_err);
        return;
    }
    const char *d = info->docker_content_digest;
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_error err;
    if (d && oc_digest_parse(d, hex, &err) == 0) {
        finish(rs, d, NULL, 0, NULL, NULL);
        return;
    }
    get(rs); /* no digest with HEAD: the body's hash is the digest */
}

int oc_resolve_tag(oc_registry *r, const char *repo, const char *tag, const char *accept,
                   size_t max, oc_resolve_done done, void *opaque, oc_error *err)
{
    resolve *rs = calloc(1, sizeof *rs);
    if (!rs || !(rs->repo = strdup(repo)) || !(rs->tag = strdup(tag)) ||
        (accept && !(rs->accept = strdup(accept)))) {
        if (rs)
            resolve_free(rs);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    rs->r = r;
    rs->max = max;
    rs->done = done;
    rs->opaque = opaque;
    if (oc_registry_head_refused(r)) {
        get(rs);
        return 0;
    }
    oc_reg_call_opts co = {.method = "HEAD", .accept = accept};
    oc_reg_consumer c = {.on_done = on_head, .opaque = rs};
    if (oc_registry_call(r, repo, "manifests", tag, &co, &c, err) != 0) {
        resolve_free(rs);
        return -1;
    }
    return 0;
}
