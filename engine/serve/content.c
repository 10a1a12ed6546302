/* content.c - responses carrying a blob or manifest (see content.h). */
#include "engine/serve/content.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/digest.h"

typedef struct file_gen {
    h2o_generator_t super;
    int fd;
    uint64_t off, left;
    char *buf;
} file_gen;

static void gen_close(file_gen *g)
{
    if (g->fd >= 0)
        close(g->fd);
    g->fd = -1;
}

/* The next step: read, then hand the bytes to h2o. g lives in the
 * request's pool, which h2o may free inside h2o_send once the response is
 * complete, so nothing touches g after that call. */
static void gen_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    file_gen *g = (file_gen *)self;
    size_t want = g->left < OC_SRV_CHUNK ? (size_t)g->left : OC_SRV_CHUNK;
    ssize_t got;
    do
        got = pread(g->fd, g->buf, want, (off_t)g->off);
    while (got < 0 && errno == EINTR);
    if (got <= 0) { /* a read error, or the file shrank: cut the response */
        gen_close(g);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    g->off += (uint64_t)got;
    g->left -= (uint64_t)got;
    h2o_iovec_t v = {g->buf, (size_t)got};
    int last = g->left == 0;
    if (last)
        gen_close(g);
    h2o_send(req, &v, 1, last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* the client went away before the end */
static void gen_stop(h2o_generator_t *self, h2o_req_t *req)
{
    (void)req;
    gen_close((file_gen *)self);
}

static void add(h2o_req_t *req, const char *lname, const char *name, const char *value, size_t len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, lname, strlen(lname), 1, name, value, len);
}

static int parse_u64(const char **p, const char *end, uint64_t *out, int *overflow)
{
    const char *start = *p;
    uint64_t v = 0;
    *overflow = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        unsigned d = (unsigned)(**p - '0');
        if (v > (UINT64_MAX - d) / 10)
            *overflow = 1;
        else
            v = v * 10 + d;
        (*p)++;
    }
    *out = v;
    return *p > start;
}

int oc_srv_parse_range(const char *value, size_t len, uint64_t size, uint64_t *first,
                       uint64_t *last)
{
    const char *p = value, *end = value + len;
    while (p < end && *p == ' ')
        p++;
    while (end > p && end[-1] == ' ')
        end--;
    if (end - p < 6 || strncmp(p, "bytes=", 6) != 0 || memchr(p, ',', (size_t)(end - p)))
        return 0;
    p += 6;
    uint64_t a = 0, b = 0;
    int a_over = 0, b_over = 0;
    if (p < end && *p == '-') { /* the last N bytes */
        p++;
        if (!parse_u64(&p, end, &b, &b_over) || p != end)
            return 0;
        if (b == 0 && !b_over)
            return -1;
        if (b_over || b > size)
            b = size;
        if (size == 0)
            return -1;
        *first = size - b;
        *last = size - 1;
        return 1;
    }
    if (!parse_u64(&p, end, &a, &a_over) || p >= end || *p != '-')
        return 0;
    p++;
    int has_b = parse_u64(&p, end, &b, &b_over);
    if (p != end)
        return 0;
    if (has_b && !b_over && !a_over && b < a)
        return 0; /* invalid: ignored */
    if (a_over || a >= size)
        return -1;
    *first = a;
    *last = (!has_b || b_over || b >= size) ? size - 1 : b;
    return 1;
}

int oc_srv_etag_matches(const char *value, size_t len, const char *hex, int star_matches)
{
    const char *p = value, *end = value + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        const char *tok = p;
        while (p < end && *p != ',')
            p++;
        const char *tend = p;
        while (tend > tok && tend[-1] == ' ')
            tend--;
        if (tend - tok == 1 && *tok == '*') {
            if (star_matches)
                return 1;
            continue;
        }
        if (tend - tok >= 2 && tok[0] == 'W' && tok[1] == '/')
            tok += 2;
        if (tend - tok >= 2 && *tok == '"' && tend[-1] == '"') {
            tok++;
            tend--;
        }
        if ((size_t)(tend - tok) == 7 + OC_SHA256_HEX_LEN && memcmp(tok, "sha256:", 7) == 0 &&
            memcmp(tok + 7, hex, OC_SHA256_HEX_LEN) == 0)
            return 1;
    }
    return 0;
}

static int header(h2o_req_t *req, const h2o_token_t *token, const char **value, size_t *len)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0)
        return 0;
    *value = req->headers.entries[i].value.base;
    *len = req->headers.entries[i].value.len;
    return 1;
}

int oc_srv_send_content(h2o_req_t *req, const oc_srv_content *c)
{
    int head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    int fd = -1;
    uint64_t size = c->size;
    if (c->path) {
        struct stat st;
        if (head) { /* no need to hold it open */
            if (lstat(c->path, &st) != 0 || !S_ISREG(st.st_mode))
                return -1;
        } else {
            fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0)
                return -1;
            if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -1;
            }
        }
        size = (uint64_t)st.st_size;
    }
    char *digest = h2o_mem_alloc_pool(&req->pool, 8 + OC_SHA256_HEX_LEN);
    memcpy(digest, "sha256:", 7);
    memcpy(digest + 7, c->hex, OC_SHA256_HEX_LEN);
    char *etag = h2o_mem_alloc_pool(&req->pool, 10 + OC_SHA256_HEX_LEN);
    int etag_len =
        snprintf(etag, 10 + OC_SHA256_HEX_LEN, "\"%.*s\"", 7 + OC_SHA256_HEX_LEN, digest);
    add(req, "docker-content-digest", "Docker-Content-Digest", digest, 7 + OC_SHA256_HEX_LEN);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, "ETag", etag, (size_t)etag_len);
    if (c->immutable)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, "Cache-Control",
                       H2O_STRLIT("max-age=31536000"));

    const char *v;
    size_t vlen;
    if (header(req, H2O_TOKEN_IF_NONE_MATCH, &v, &vlen) &&
        oc_srv_etag_matches(v, vlen, c->hex, 1)) {
        if (fd >= 0)
            close(fd);
        static h2o_generator_t none = {NULL, NULL};
        req->res.status = 304;
        req->res.reason = "Not Modified";
        req->res.content_length = SIZE_MAX;
        h2o_start_response(req, &none);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return 0;
    }

    uint64_t first = 0, last = size ? size - 1 : 0;
    int range = 0;
    if (header(req, H2O_TOKEN_RANGE, &v, &vlen)) {
        const char *ir;
        size_t irlen;
        if (!header(req, H2O_TOKEN_IF_RANGE, &ir, &irlen) ||
            oc_srv_etag_matches(ir, irlen, c->hex, 0))
            range = oc_srv_parse_range(v, vlen, size, &first, &last);
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCEPT_RANGES, "Accept-Ranges",
                   H2O_STRLIT("bytes"));
    if (range < 0) {
        if (fd >= 0)
            close(fd);
        char *cr = h2o_mem_alloc_pool(&req->pool, 48);
        int n = snprintf(cr, 48, "bytes */%llu", (unsigned long long)size);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, "Content-Range", cr,
                       (size_t)n);
        static const char body[] = "{\"errors\":[{\"code\":\"SIZE_INVALID\",\"message\":"
                                   "\"requested range not satisfiable\"}]}\n";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, "Content-Type",
                       H2O_STRLIT("application/json; charset=utf-8"));
        req->res.status = 416;
        req->res.reason = "Range Not Satisfiable";
        req->res.content_length = sizeof body - 1;
        h2o_send_inline(req, body, sizeof body - 1);
        return 0;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, "Content-Type",
                   c->content_type, strlen(c->content_type));
    uint64_t count = size ? last - first + 1 : 0;
    req->res.status = 200;
    req->res.reason = "OK";
    if (range > 0) {
        char *cr = h2o_mem_alloc_pool(&req->pool, 80);
        int n = snprintf(cr, 80, "bytes %llu-%llu/%llu", (unsigned long long)first,
                         (unsigned long long)last, (unsigned long long)size);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, "Content-Range", cr,
                       (size_t)n);
        req->res.status = 206;
        req->res.reason = "Partial Content";
    }
    req->res.content_length = (size_t)count;

    static h2o_generator_t done = {NULL, NULL};
    if (head || count == 0) {
        if (fd >= 0)
            close(fd);
        h2o_start_response(req, &done);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return 0;
    }
    if (!c->path) { /* small and in memory */
        h2o_iovec_t body = h2o_strdup(&req->pool, c->bytes + first, (size_t)count);
        h2o_start_response(req, &done);
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
        return 0;
    }
    file_gen *g = h2o_mem_alloc_pool(&req->pool, sizeof *g);
    g->super.proceed = gen_proceed;
    g->super.stop = gen_stop;
    g->fd = fd;
    g->off = first;
    g->left = count;
    g->buf = h2o_mem_alloc_pool(&req->pool, count < OC_SRV_CHUNK ? (size_t)count : OC_SRV_CHUNK);
    h2o_start_response(req, &g->super);
    gen_proceed(&g->super, req);
    return 0;
}
