/* routes.c - the distribution API's read side over a store view (see
 * routes.h). */
#include "engine/serve/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/image/manifest.h"
#include "engine/serve/content.h"
#include "engine/serve/names.h"

/* A page of tags or repositories is at most this long (n is capped). */
#define PAGE_MAX 10000
/* Request headers beyond this are refused (h2o itself reads up to about
 * 400 KiB of them). */
#define HEADERS_MAX (64u * 1024)

static void add(h2o_req_t *req, const char *lname, const char *name, const char *value, size_t len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, lname, strlen(lname), 1, name, value, len);
}

static int send_body(h2o_req_t *req, int status, const char *reason, const char *type,
                     const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, "Content-Type", type,
                   strlen(type));
    h2o_send_inline(req, body, len);
    return 0;
}

/* The spec's error body; detail (may be NULL) is a JSON value's text. */
static int send_error(h2o_req_t *req, int status, const char *reason, const char *code,
                      const char *message, const char *detail)
{
    char *body = h2o_mem_alloc_pool(&req->pool, 512);
    int n = snprintf(body, 512, "{\"errors\":[{\"code\":\"%s\",\"message\":\"%s\"%s%s}]}\n", code,
                     message, detail ? ",\"detail\":" : "", detail ? detail : "");
    if (n < 0 || n >= 512)
        n = 0;
    return send_body(req, status, reason, "application/json; charset=utf-8", body, (size_t)n);
}

static int not_found(h2o_req_t *req)
{
    return send_error(req, 404, "Not Found", "NOT_FOUND", "not found", NULL);
}

static int send_json(h2o_req_t *req, json_t *doc, const char *type)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return send_error(req, 500, "Internal Server Error", "UNKNOWN", "out of memory", NULL);
    h2o_iovec_t copy = h2o_strdup(&req->pool, text, SIZE_MAX);
    free(text);
    return send_body(req, 200, "OK", type, copy.base, copy.len);
}

/* ---- query strings ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The value of key in the query (percent-decoded into the pool), or NULL. */
static const char *query_get(h2o_req_t *req, const char *key)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t klen = strlen(key);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        if (eq && (size_t)(eq - p) == klen && memcmp(p, key, klen) == 0) {
            char *out = h2o_mem_alloc_pool(&req->pool, (size_t)(pend - eq));
            size_t n = 0;
            for (const char *q = eq + 1; q < pend; q++) {
                if (*q == '%' && pend - q >= 3 && hexval(q[1]) >= 0 && hexval(q[2]) >= 0) {
                    out[n++] = (char)(hexval(q[1]) * 16 + hexval(q[2]));
                    q += 2;
                } else {
                    out[n++] = *q == '+' ? ' ' : *q;
                }
            }
            out[n] = '\0';
            return out;
        }
        p = pend + 1;
    }
    return NULL;
}

/* n of a paginated list: -1 absent, -2 invalid, else the count (capped) */
static long page_size(h2o_req_t *req)
{
    const char *n = query_get(req, "n");
    if (!n)
        return -1;
    if (!*n || strspn(n, "0123456789") != strlen(n) || strlen(n) > 9)
        return -2;
    long v = strtol(n, NULL, 10);
    return v > PAGE_MAX ? PAGE_MAX : v;
}

typedef const char *(*name_at_fn)(const void *list, size_t i);

static const char *tag_at(const void *list, size_t i)
{
    return ((const oc_srv_tag *)list)[i].tag;
}

static const char *string_at(const void *list, size_t i)
{
    return ((const char *const *)list)[i];
}

/* text for a query value: '+' (in platform tags) would read as a space */
static char *query_escape(h2o_req_t *req, const char *text)
{
    size_t n = strlen(text), plus = 0;
    for (size_t i = 0; i < n; i++)
        plus += text[i] == '+';
    char *out = h2o_mem_alloc_pool(&req->pool, n + 2 * plus + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '+') {
            memcpy(o, "%2B", 3);
            o += 3;
        } else {
            *o++ = text[i];
        }
    }
    *o = '\0';
    return out;
}

/* The page of names after last, n at most; a Link to the next page when
 * the list goes on. */
static int send_page(h2o_req_t *req, const void *list, size_t count, name_at_fn name_at,
                     const char *list_key, const char *repo, const char *link_path)
{
    long n = page_size(req);
    if (n == -2)
        return send_error(req, 400, "Bad Request", "PAGINATION_NUMBER_INVALID",
                          "invalid number of results requested", NULL);
    const char *last = query_get(req, "last");
    size_t start = 0;
    if (last) /* names sorted: the first one after last */
        while (start < count && strcmp(name_at(list, start), last) <= 0)
            start++;
    size_t end = count;
    if (n >= 0 && start + (size_t)n < count)
        end = start + (size_t)n;
    json_t *doc = json_object(), *names = json_array();
    if (repo)
        json_object_set_new(doc, "name", json_string(repo));
    json_object_set_new(doc, list_key, names);
    for (size_t i = start; i < end; i++)
        json_array_append_new(names, json_string(name_at(list, i)));
    if (end < count && end > start) {
        const char *lastname = query_escape(req, name_at(list, end - 1));
        size_t cap = strlen(link_path) + strlen(lastname) + 64;
        char *link = h2o_mem_alloc_pool(&req->pool, cap);
        int len = snprintf(link, cap, "<%s?n=%ld&last=%s>; rel=\"next\"", link_path, n, lastname);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LINK, "Link", link, (size_t)len);
    }
    return send_json(req, doc, "application/json; charset=utf-8");
}

/* ---- the endpoints ---- */

static const oc_srv_repo *find_repo(oc_srv_app *app, h2o_req_t *req, const char *name, size_t len,
                                    char *copy)
{
    if (!oc_srv_name_valid(name, len, app->keep_host)) {
        send_error(req, 400, "Bad Request", "NAME_INVALID", "invalid repository name", NULL);
        return NULL;
    }
    memcpy(copy, name, len);
    copy[len] = '\0';
    const oc_srv_repo *r = oc_srv_layout_repo(app->layout, copy);
    if (!r)
        send_error(req, 404, "Not Found", "NAME_UNKNOWN", "repository name not known to registry",
                   NULL);
    return r;
}

static int send_manifest(oc_srv_app *app, h2o_req_t *req, const oc_srv_manifest *m, int by_digest,
                         const char *type)
{
    char *path = m->bytes ? NULL : oc_srv_layout_file(app->layout, m->hex, NULL);
    oc_srv_content c = {.hex = m->hex,
                        .content_type = type ? type : m->media_type,
                        .path = path,
                        .bytes = m->bytes,
                        .size = m->bytes ? (size_t)m->size : 0,
                        .immutable = by_digest};
    int rc = (m->bytes || path) ? oc_srv_send_content(req, &c) : -1;
    free(path);
    if (rc != 0)
        send_error(req, 404, "Not Found", "MANIFEST_UNKNOWN", "manifest unknown", NULL);
    return 0;
}

static int manifests(oc_srv_app *app, h2o_req_t *req, const char *name, size_t nlen,
                     const char *ref, size_t rlen)
{
    char copy[OC_SRV_NAME_MAX + 1];
    const oc_srv_repo *r = find_repo(app, req, name, nlen, copy);
    if (!r)
        return 0;
    char hex[OC_SHA256_HEX_LEN + 1];
    const oc_srv_manifest *m = NULL;
    oc_srv_ref_kind kind = oc_srv_ref_classify(ref, rlen, hex);
    switch (kind) {
    case OC_SRV_REF_TAG: {
        char tag[OC_SRV_TAG_MAX + 1];
        memcpy(tag, ref, rlen);
        tag[rlen] = '\0';
        m = oc_srv_repo_tag(r, tag);
        break;
    }
    case OC_SRV_REF_DIGEST:
        m = oc_srv_repo_manifest(r, hex);
        break;
    case OC_SRV_REF_INVALID:
        return send_error(req, 400, "Bad Request", "DIGEST_INVALID",
                          "provided digest did not match uploaded content", NULL);
    case OC_SRV_REF_BAD_TAG:
        return send_error(req, 404, "Not Found", "MANIFEST_UNKNOWN", "manifest unknown",
                          "{\"reason\":\"not a valid tag\"}");
    }
    if (!m)
        return send_error(req, 404, "Not Found", "MANIFEST_UNKNOWN", "manifest unknown", NULL);
    return send_manifest(app, req, m, kind == OC_SRV_REF_DIGEST, NULL);
}

static int blobs(oc_srv_app *app, h2o_req_t *req, const char *name, size_t nlen, const char *ref,
                 size_t rlen)
{
    char copy[OC_SRV_NAME_MAX + 1];
    char hex[OC_SHA256_HEX_LEN + 1];
    if (!oc_srv_name_valid(name, nlen, app->keep_host))
        return send_error(req, 400, "Bad Request", "NAME_INVALID", "invalid repository name", NULL);
    if (oc_srv_ref_classify(ref, rlen, hex) != OC_SRV_REF_DIGEST)
        return send_error(req, 400, "Bad Request", "DIGEST_INVALID",
                          "provided digest did not match uploaded content", NULL);
    const oc_srv_repo *r = find_repo(app, req, name, nlen, copy);
    if (!r)
        return 0;
    const oc_srv_blob *b = oc_srv_repo_blob(r, hex);
    if (!b) {
        const oc_srv_manifest *m = oc_srv_repo_manifest(r, hex);
        if (m)
            return send_manifest(app, req, m, 1, "application/octet-stream");
        return send_error(req, 404, "Not Found", "BLOB_UNKNOWN", "blob unknown to registry", NULL);
    }
    char *path = oc_srv_layout_file(app->layout, hex, b);
    oc_srv_content c = {
        .hex = hex, .content_type = "application/octet-stream", .path = path, .immutable = 1};
    int rc = path ? oc_srv_send_content(req, &c) : -1;
    free(path);
    if (rc != 0)
        send_error(req, 404, "Not Found", "BLOB_UNKNOWN", "blob unknown to registry", NULL);
    return 0;
}

static int tags_list(oc_srv_app *app, h2o_req_t *req, const char *name, size_t nlen)
{
    char copy[OC_SRV_NAME_MAX + 1];
    const oc_srv_repo *r = find_repo(app, req, name, nlen, copy);
    if (!r)
        return 0;
    size_t n;
    const oc_srv_tag *tags = oc_srv_repo_tags(r, &n);
    char link[OC_SRV_NAME_MAX + 32];
    snprintf(link, sizeof link, "/v2/%s/tags/list", copy);
    return send_page(req, tags, n, tag_at, "tags", copy, link);
}

static int catalog(oc_srv_app *app, h2o_req_t *req)
{
    size_t n;
    const char *const *names = oc_srv_layout_repo_names(app->layout, &n);
    return send_page(req, names, n, string_at, "repositories", NULL, "/v2/_catalog");
}

static int referrers(oc_srv_app *app, h2o_req_t *req, const char *name, size_t nlen,
                     const char *ref, size_t rlen)
{
    char copy[OC_SRV_NAME_MAX + 1];
    char hex[OC_SHA256_HEX_LEN + 1];
    if (!oc_srv_name_valid(name, nlen, app->keep_host))
        return send_error(req, 400, "Bad Request", "NAME_INVALID", "invalid repository name", NULL);
    if (oc_srv_ref_classify(ref, rlen, hex) != OC_SRV_REF_DIGEST)
        return send_error(req, 400, "Bad Request", "DIGEST_INVALID", "invalid digest", NULL);
    const oc_srv_repo *r = find_repo(app, req, name, nlen, copy);
    if (!r)
        return 0;
    const char *filter = query_get(req, "artifactType");
    size_t n;
    const oc_srv_manifest *const *list = oc_srv_repo_referrers(r, hex, &n);
    json_t *doc = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", OC_MT_OCI_INDEX,
                            "manifests");
    json_t *ms = json_object_get(doc, "manifests");
    for (size_t i = 0; i < n; i++) {
        const oc_srv_manifest *m = list[i];
        if (filter && (!m->artifact_type || strcmp(filter, m->artifact_type) != 0))
            continue;
        char digest[8 + OC_SHA256_HEX_LEN];
        snprintf(digest, sizeof digest, "sha256:%s", m->hex);
        json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", m->media_type, "digest", digest,
                              "size", (json_int_t)m->size);
        if (d && m->artifact_type)
            json_object_set_new(d, "artifactType", json_string(m->artifact_type));
        if (d && m->annotations)
            json_object_set(d, "annotations", m->annotations);
        json_array_append_new(ms, d);
    }
    if (filter)
        add(req, "oci-filters-applied", "OCI-Filters-Applied", "artifactType",
            strlen("artifactType"));
    return send_json(req, doc, OC_MT_OCI_INDEX);
}

/* The last occurrence of sep in [p, p+len) followed by a component without
 * '/' (names may contain "manifests" or "blobs" themselves). */
static const char *split_last(const char *p, size_t len, const char *sep)
{
    size_t slen = strlen(sep);
    for (size_t i = len >= slen ? len - slen + 1 : 0; i-- > 0;) {
        if (memcmp(p + i, sep, slen) != 0)
            continue;
        const char *rest = p + i + slen;
        if (rest < p + len && !memchr(rest, '/', (size_t)(p + len - rest)))
            return p + i;
        return NULL;
    }
    return NULL;
}

static int authorized(oc_srv_app *app, h2o_req_t *req)
{
    if (!app->auth)
        return 1;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    char user[256];
    if (i >= 0 && oc_htpasswd_check(app->auth, req->headers.entries[i].value.base,
                                    req->headers.entries[i].value.len, user, sizeof user))
        return 1;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, "WWW-Authenticate",
                   H2O_STRLIT("Basic realm=\"occystrap\""));
    send_error(req, 401, "Unauthorized", "UNAUTHORIZED", "authentication required", NULL);
    return 0;
}

int oc_srv_route(oc_srv_app *app, h2o_req_t *req)
{
    add(req, "docker-distribution-api-version", "Docker-Distribution-API-Version",
        H2O_STRLIT("registry/2.0"));
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, "Allow",
                       H2O_STRLIT("GET, HEAD"));
        return send_error(req, 405, "Method Not Allowed", "UNSUPPORTED",
                          "the operation is unsupported: this registry is read-only", NULL);
    }
    size_t header_bytes = req->path.len;
    for (size_t i = 0; i < req->headers.size; i++)
        header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    if (header_bytes > HEADERS_MAX)
        return send_error(req, 431, "Request Header Fields Too Large", "UNSUPPORTED",
                          "request headers too large", NULL);
    const char *path = req->path.base;
    size_t len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (!(len >= 3 && memcmp(path, "/v2", 3) == 0 && (len == 3 || path[3] == '/')))
        return not_found(req);
    if (!authorized(app, req))
        return 0;
    if (len <= 4)
        return send_body(req, 200, "OK", "application/json; charset=utf-8", "{}", 2);
    oc_error err;
    if (oc_srv_layout_refresh(app->layout, &err) < 0 && app->log)
        app->log(app->log_opaque, OC_LOG_ERROR, err.msg);
    const char *rest = path + 4;
    size_t rlen = len - 4;
    if (rlen == 8 && memcmp(rest, "_catalog", 8) == 0)
        return catalog(app, req);
    static const char tl[] = "/tags/list";
    if (rlen > sizeof tl - 1 && memcmp(rest + rlen - (sizeof tl - 1), tl, sizeof tl - 1) == 0)
        return tags_list(app, req, rest, rlen - (sizeof tl - 1));
    static const struct {
        const char *sep;
        int (*fn)(oc_srv_app *, h2o_req_t *, const char *, size_t, const char *, size_t);
    } routes[] = {{"/manifests/", manifests}, {"/blobs/", blobs}, {"/referrers/", referrers}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *at = split_last(rest, rlen, routes[i].sep);
        if (at) {
            const char *ref = at + strlen(routes[i].sep);
            return routes[i].fn(app, req, rest, (size_t)(at - rest), ref,
                                (size_t)(rest + rlen - ref));
        }
    }
    return not_found(req);
}
