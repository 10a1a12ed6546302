/* server.h - the HTTP server of `serve`: h2o (Debian's libh2o, built on
 * libuv) on the caller's loop, HTTP/1.1 and HTTP/2 (prior knowledge or
 * h2c upgrade on plain connections, ALPN "h2" over TLS), answering through
 * routes.h.
 *
 * Connections. At most max_connections at once: one more is accepted and
 * closed at once (and counted). An idle connection (no request, or a
 * request that does not finish arriving) is closed after idle_timeout_s.
 * Memory is a few KiB per connection plus OC_SRV_CHUNK per response in
 * flight (h2o reads a request's headers into a buffer of its own; request
 * bodies, which nothing here accepts, are refused above 64 KiB).
 *
 * Stopping (oc_srv_stop) is graceful: the listener closes, idle
 * connections close at once, HTTP/1.1 responses in flight finish (their
 * connection then closes), HTTP/2 connections get GOAWAY and finish their
 * streams; after drain_timeout_s whatever is left is cut (shutdown(2) of
 * its socket, which h2o sees as the peer going away). When the last
 * connection is gone, h2o's context and configuration are disposed and
 * stopped() is called; the server is freed after it returns.
 *
 * Every request, once answered, is one access-log line handed to access():
 * "PEER - USER [TIME] \"METHOD PATH PROTO\" STATUS BYTES \"USER-AGENT\" SECONDS",
 * with the request's text quoted safely (no control bytes). */
#ifndef OC_SERVE_SERVER_H
#define OC_SERVE_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "engine/serve/layout.h"
#include "io/error.h"

typedef struct oc_srv oc_srv;

typedef struct oc_srv_counts {
    uint64_t requests;
    uint64_t bytes;       /* response bodies */
    uint64_t connections; /* accepted and served */
    uint64_t refused;     /* closed at once: over max_connections */
    unsigned open;        /* connections now */
} oc_srv_counts;

typedef struct oc_srv_opts {
    const char *store;
    const char *listen; /* "HOST:PORT", "[V6]:PORT", ":PORT"; NULL = "0.0.0.0:5000" */
    const char *tls_cert, *tls_key;
    const char *htpasswd;
    int keep_host;
    int allow_rewritten;
    unsigned max_connections; /* 0 = 4096 */
    unsigned idle_timeout_s;  /* 0 = 30 */
    unsigned drain_timeout_s; /* 0 = 30 */
    const char *server_name;  /* the Server header, e.g. "occystrap/0.3.0" */
    oc_srv_log_fn log;        /* what the server has to say */
    void (*access)(void *opaque, const char *line);
    void (*stopped)(void *opaque, const oc_srv_counts *counts);
    void *opaque;
} oc_srv_opts;

/* Listening when it returns (the loop then serves). NULL with err when the
 * store, the address, the TLS files or the htpasswd file will not do. */
oc_srv *oc_srv_start(uv_loop_t *loop, const oc_srv_opts *o, oc_error *err);
/* Stop gracefully (see above); safe from any callback, and twice. */
void oc_srv_stop(oc_srv *s);
/* "127.0.0.1:5000", "[::1]:5000": the address bound (the port the kernel
 * chose for port 0). */
const char *oc_srv_address(const oc_srv *s);
int oc_srv_is_tls(const oc_srv *s);
void oc_srv_get_counts(const oc_srv *s, oc_srv_counts *c);

#endif
