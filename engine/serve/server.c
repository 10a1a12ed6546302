/* server.c - serve's HTTP server: h2o on the caller's libuv loop (see
 * server.h). */
#include "engine/serve/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <h2o.h>
#include <h2o/http2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "engine/serve/routes.h"

#define DEFAULT_LISTEN "0.0.0.0:5000"
#define DEFAULT_MAX_CONNECTIONS 4096
#define DEFAULT_IDLE_S 30
#define DEFAULT_DRAIN_S 30
/* requests refuse bodies: nothing is written */
#define MAX_REQUEST_BODY (64u * 1024)
/* streams at once on one HTTP/2 connection */
#define MAX_STREAMS 32

typedef struct conn {
    uv_tcp_t tcp; /* first: h2o hands this pointer back when it closes */
    oc_srv *srv;
    struct conn *prev, *next;
} conn;

typedef struct handler {
    h2o_handler_t super;
    oc_srv *srv;
} handler;

typedef struct access_logger {
    h2o_logger_t super;
    oc_srv *srv;
} access_logger;

struct oc_srv {
    uv_loop_t *loop;
    oc_srv_opts o;
    oc_srv_app app;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl;
    uv_tcp_t *listener; /* malloc'd: its close may outlive a failed start */
    uv_timer_t timer;   /* the deferred stop, the drain deadline, the final teardown */
    conn *conns;
    oc_srv_counts counts;
    unsigned max_conns;
    uint64_t drain_ms;
    int stopping, draining, listener_open, finishing;
    uint64_t last_refusal_log; /* loop time of the last "refused" line */
    char address[INET6_ADDRSTRLEN + 16];
};

static void say(oc_srv *s, oc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(oc_srv *s, oc_log_level level, const char *fmt, ...)
{
    if (!s->o.log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->o.log(s->o.opaque, level, line);
}

/* ---- the address ---- */

static int parse_listen(const char *text, struct sockaddr_storage *ss, oc_error *err)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            goto bad;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            goto bad;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port = colon + 1;
    }
    if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
        atoi(port) > 65535)
        goto bad;
    if (!*host)
        strcpy(host, "0.0.0.0");
    else if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, atoi(port), (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, atoi(port), (struct sockaddr_in6 *)ss) == 0)
        return 0;
    oc_error_set(err, OC_E_USAGE, "--listen %s: %s is not a numeric IPv4 or IPv6 address", text,
                 host);
    return -1;
bad:
    oc_error_set(err, OC_E_USAGE, "--listen %s: want HOST:PORT, [IPV6]:PORT or :PORT", text);
    return -1;
}

static void format_address(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
    }
}

/* ---- TLS ---- */

static void tls_error(oc_error *err, const char *what, const char *file)
{
    char detail[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    oc_error_set(err, OC_E_USAGE, "%s %s: %s", what, file, e ? detail : "rejected by OpenSSL");
}

static SSL_CTX *tls_setup(const char *cert, const char *key, oc_error *err)
{
    SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
    if (!ssl) {
        tls_error(err, "TLS", "context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ssl, cert) != 1) {
        tls_error(err, "--tls-cert", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1) {
        tls_error(err, "--tls-key", key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ssl) != 1) {
        tls_error(err, "--tls-key does not match --tls-cert:", key);
        goto fail;
    }
    /* h2 first, then http/1.1 */
    h2o_ssl_register_alpn_protocols(ssl, h2o_http2_alpn_protocols);
    return ssl;
fail:
    SSL_CTX_free(ssl);
    return NULL;
}

/* ---- connections ---- */

static void maybe_finish(oc_srv *s);

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void conn_closed(uv_handle_t *h)
{
    conn *c = (conn *)h;
    oc_srv *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->counts.open--;
    free(c);
    maybe_finish(s);
}

static void on_accept(uv_stream_t *listener, int status)
{
    oc_srv *s = listener->data;
    if (status != 0) { /* out of descriptors, mostly: libuv sheds the connection */
        uint64_t now = uv_now(s->loop);
        if (now - s->last_refusal_log >= 1000 || !s->last_refusal_log) {
            s->last_refusal_log = now;
            say(s, OC_LOG_WARNING, "serve: cannot accept a connection: %s", uv_strerror(status));
        }
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_handle);
        return;
    }
    if (s->counts.open >= s->max_conns || s->stopping) {
        s->counts.refused++;
        uint64_t now = uv_now(s->loop);
        if (!s->stopping && (now - s->last_refusal_log >= 1000 || !s->last_refusal_log)) {
            s->last_refusal_log = now;
            say(s, OC_LOG_WARNING,
                "serve: %u connections open (the limit): closing new ones (%llu so far)",
                s->counts.open, (unsigned long long)s->counts.refused);
        }
        uv_close((uv_handle_t *)&c->tcp, free_handle);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->counts.open++;
    s->counts.connections++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, conn_closed);
    h2o_accept(&s->accept_ctx, sock);
}

/* ---- requests ---- */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    handler *h = (handler *)self;
    return oc_srv_route(&h->srv->app, req);
}

/* The user a Basic header names (not checked: for the log only). */
static void basic_user(h2o_req_t *req, char *out, size_t cap)
{
    snprintf(out, cap, "-");
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0 || req->res.status == 401)
        return;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 7 || v.len > 1024 || strncasecmp(v.base, "Basic ", 6) != 0)
        return;
    unsigned char dec[800];
    size_t b64 = v.len - 6;
    while (b64 && v.base[6 + b64 - 1] == ' ')
        b64--;
    if (b64 % 4 || b64 / 4 * 3 >= sizeof dec)
        return;
    int n = EVP_DecodeBlock(dec, (const unsigned char *)v.base + 6, (int)b64);
    if (n <= 0)
        return;
    const unsigned char *colon = memchr(dec, ':', (size_t)n);
    if (colon)
        oc_excerpt((const char *)dec, (size_t)(colon - dec), 64, out, cap);
}

static void on_access(h2o_logger_t *self, h2o_req_t *req)
{
    oc_srv *s = ((access_logger *)self)->srv;
    s->counts.requests++;
    s->counts.bytes += req->bytes_sent;
    if (!s->o.access)
        return;
    struct sockaddr_storage ss;
    char peer[NI_MAXHOST] = "-";
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl)
        h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, peer);
    char when[64];
    struct tm tm;
    time_t t = req->timestamps.request_begin_at.tv_sec;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    struct timeval now;
    gettimeofday(&now, NULL);
    double secs = (double)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) +
                  (double)(now.tv_usec - req->timestamps.request_begin_at.tv_usec) / 1e6;
    char method[80], path[2100], agent[520], user[300];
    oc_excerpt(req->input.method.base, req->input.method.len, 16, method, sizeof method);
    oc_excerpt(req->input.path.base, req->input.path.len, 512, path, sizeof path);
    ssize_t ua = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    if (ua >= 0)
        oc_excerpt(req->headers.entries[ua].value.base, req->headers.entries[ua].value.len, 120,
                   agent, sizeof agent);
    else
        snprintf(agent, sizeof agent, "-");
    basic_user(req, user, sizeof user);
    const char *proto = req->version >= 0x200   ? "HTTP/2"
                        : req->version == 0x100 ? "HTTP/1.0"
                                                : "HTTP/1.1";
    char line[4400];
    snprintf(line, sizeof line, "%s - %s [%s] \"%s %s %s\" %d %zu \"%s\" %.3f", peer, user, when,
             method, path, proto, req->res.status, req->bytes_sent, agent, secs < 0 ? 0 : secs);
    s->o.access(s->o.opaque, line);
}

/* ---- stopping ---- */

static void timer_closed(uv_handle_t *h)
{
    oc_srv *s = h->data;
    oc_srv_counts counts = s->counts;
    void (*stopped)(void *, const oc_srv_counts *) = s->o.stopped;
    void *opaque = s->o.opaque;
    free(s);
    if (stopped)
        stopped(opaque, &counts);
}

/* Runs from a timer callback: h2o_context_dispose runs the loop once
 * (UV_RUN_NOWAIT) to close its own timers, which libuv 1.44 tolerates
 * there, where no I/O or closing phase of the outer run is in progress. */
static void on_finish(uv_timer_t *t)
{
    oc_srv *s = t->data;
    h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&s->ctx);
    h2o_config_dispose(&s->config);
    SSL_CTX_free(s->ssl);
    s->ssl = NULL;
    oc_srv_layout_free(s->app.layout);
    oc_htpasswd_free(s->app.auth);
    s->app.layout = NULL;
    s->app.auth = NULL;
    say(s, OC_LOG_INFO, "serve: stopped after %llu requests on %llu connections",
        (unsigned long long)s->counts.requests, (unsigned long long)s->counts.connections);
    uv_close((uv_handle_t *)&s->timer, timer_closed);
}

static void maybe_finish(oc_srv *s)
{
    if (!s->stopping || s->listener_open || s->counts.open || s->finishing)
        return;
    s->finishing = 1;
    uv_timer_stop(&s->timer);
    uv_timer_start(&s->timer, on_finish, 0, 0);
}

static void listener_closed(uv_handle_t *h)
{
    oc_srv *s = h->data;
    free(h);
    s->listener = NULL;
    s->listener_open = 0;
    maybe_finish(s);
}

/* The drain deadline: what is still open is cut. shutdown(2) makes every
 * pending read and write fail, and h2o closes the connection on its own
 * path. */
static void on_drain_deadline(uv_timer_t *t)
{
    oc_srv *s = t->data;
    say(s, OC_LOG_WARNING, "serve: %u connection%s still busy after %llu s: cutting %s",
        s->counts.open, s->counts.open == 1 ? "" : "s", (unsigned long long)(s->drain_ms / 1000),
        s->counts.open == 1 ? "it" : "them");
    for (conn *c = s->conns; c; c = c->next) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
}

/* Close every connection that waits for a request (HTTP/1.1 keep-alive, a
 * TLS handshake, an HTTP/2 connection without streams): their timeouts
 * become zero and run now; a connection that becomes idle later meets the
 * same zero timeout at once. */
static void close_idle(oc_srv *s)
{
    h2o_timeout_t *ts[] = {&s->ctx.http1.req_timeout, &s->ctx.http2.idle_timeout,
                           &s->ctx.handshake_timeout};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        ts[i]->timeout = 0;
        h2o_timeout_run(s->loop, ts[i], h2o_now(s->loop));
    }
}

static void on_stop(uv_timer_t *t)
{
    oc_srv *s = t->data;
    say(s, OC_LOG_INFO,
        "serve: stopping: %u connection%s open; responses in flight finish (at most %llu s)",
        s->counts.open, s->counts.open == 1 ? "" : "s", (unsigned long long)(s->drain_ms / 1000));
    if (s->listener_open && !uv_is_closing((uv_handle_t *)s->listener))
        uv_close((uv_handle_t *)s->listener, listener_closed);
    h2o_context_request_shutdown(&s->ctx);
    close_idle(s);
    uv_timer_start(&s->timer, on_drain_deadline, s->drain_ms, 0);
    maybe_finish(s);
}

void oc_srv_stop(oc_srv *s)
{
    if (!s || s->stopping)
        return;
    s->stopping = 1;
    /* not from inside whatever callback called us: h2o may be on the
     * stack */
    uv_timer_stop(&s->timer);
    uv_timer_start(&s->timer, on_stop, 0, 0);
}

/* ---- starting ---- */

static void srv_free_unstarted(oc_srv *s)
{
    if (s->listener)
        uv_close((uv_handle_t *)s->listener, free_handle);
    SSL_CTX_free(s->ssl);
    oc_srv_layout_free(s->app.layout);
    oc_htpasswd_free(s->app.auth);
    free(s);
}

oc_srv *oc_srv_start(uv_loop_t *loop, const oc_srv_opts *o, oc_error *err)
{
    oc_srv *s = calloc(1, sizeof *s);
    if (!s) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->o = *o;
    s->max_conns = o->max_connections ? o->max_connections : DEFAULT_MAX_CONNECTIONS;
    s->drain_ms = (uint64_t)(o->drain_timeout_s ? o->drain_timeout_s : DEFAULT_DRAIN_S) * 1000;
    uint64_t idle_ms = (uint64_t)(o->idle_timeout_s ? o->idle_timeout_s : DEFAULT_IDLE_S) * 1000;
    const char *listen = o->listen ? o->listen : DEFAULT_LISTEN;
    struct sockaddr_storage ss;
    if (parse_listen(listen, &ss, err) != 0)
        goto fail;
    if (!o->tls_cert != !o->tls_key) {
        oc_error_set(err, OC_E_USAGE, "--tls-cert and --tls-key go together");
        goto fail;
    }
    oc_srv_layout_opts lo = {.store = o->store,
                             .keep_host = o->keep_host,
                             .allow_rewritten = o->allow_rewritten,
                             .log = o->log,
                             .log_opaque = o->opaque};
    if (!(s->app.layout = oc_srv_layout_new(&lo, err)) ||
        oc_srv_layout_refresh(s->app.layout, err) < 0)
        goto fail;
    s->app.keep_host = o->keep_host;
    s->app.log = o->log;
    s->app.log_opaque = o->opaque;
    if (o->htpasswd && !(s->app.auth = oc_htpasswd_load(o->htpasswd, err)))
        goto fail;
    if (o->tls_cert && !(s->ssl = tls_setup(o->tls_cert, o->tls_key, err)))
        goto fail;
    oc_srv_layout_stats st;
    oc_srv_layout_get_stats(s->app.layout, &st);
    say(s, OC_LOG_INFO,
        "serve: %s holds %zu repositor%s, %zu tag%s, %zu manifest%s (%zu rewritten)", o->store,
        st.repos, st.repos == 1 ? "y" : "ies", st.tags, st.tags == 1 ? "" : "s", st.manifests,
        st.manifests == 1 ? "" : "s", st.rewritten);

    s->listener = malloc(sizeof *s->listener);
    if (!s->listener) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto fail;
    }
    uv_tcp_init(loop, s->listener);
    s->listener->data = s;
    int rc = uv_tcp_bind(s->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)s->listener, 511, on_accept);
    if (rc != 0) {
        oc_error_set(err, rc == UV_EADDRINUSE || rc == UV_EACCES ? OC_E_USAGE : OC_E_NET,
                     "cannot listen on %s: %s", listen, uv_strerror(rc));
        goto fail;
    }
    int len = sizeof ss;
    if (uv_tcp_getsockname(s->listener, (struct sockaddr *)&ss, &len) == 0)
        format_address(&ss, s->address, sizeof s->address);
    s->listener_open = 1;

    h2o_config_init(&s->config);
    if (o->server_name)
        s->config.server_name = h2o_iovec_init(o->server_name, strlen(o->server_name));
    s->config.max_request_entity_size = MAX_REQUEST_BODY;
    s->config.http1.req_timeout = idle_ms;
    s->config.http2.idle_timeout = idle_ms;
    s->config.handshake_timeout = idle_ms;
    s->config.http2.max_concurrent_requests_per_connection = MAX_STREAMS;
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    handler *h = (handler *)h2o_create_handler(path, sizeof *h);
    h->super.on_req = on_req;
    h->srv = s;
    access_logger *al = (access_logger *)h2o_create_logger(path, sizeof *al);
    al->super.log_access = on_access;
    al->srv = s;
    h2o_context_init(&s->ctx, loop, &s->config);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;
    s->accept_ctx.ssl_ctx = s->ssl;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    return s;
fail:
    srv_free_unstarted(s);
    return NULL;
}

const char *oc_srv_address(const oc_srv *s)
{
    return s->address;
}

int oc_srv_is_tls(const oc_srv *s)
{
    return s->ssl != NULL;
}

void oc_srv_get_counts(const oc_srv *s, oc_srv_counts *c)
{
    *c = s->counts;
}
