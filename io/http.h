/* http.h - HTTP transfers on libcurl's multi interface, driven by a libuv
 * loop.
 *
 * One oc_http per loop owns a CURLM. curl's socket callback maps each socket
 * to a uv_poll handle and its timer callback to one uv_timer, so the loop
 * sleeps until a socket is ready or curl's timeout fires: no polling, no
 * curl_multi_perform loop. HTTP/2 is negotiated over TLS and streams are
 * multiplexed (CURLPIPE_MULTIPLEX with PIPEWAIT), so parallel requests to
 * one registry share a connection; plain-HTTP registries get up to
 * max_host_connections HTTP/1.1 connections.
 *
 * Lifetimes: a transfer lives from oc_http_start until its on_done callback
 * returns; the oc_http must outlive all its transfers. oc_http_close starts
 * the teardown; the loop must then run until the handles are closed, when
 * closed(opaque) is called (the oc_http is freed by then). */
#ifndef OC_IO_HTTP_H
#define OC_IO_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "io/error.h"

typedef struct oc_http oc_http;
typedef struct oc_http_transfer oc_http_transfer;

typedef struct oc_http_opts {
    long max_host_connections;  /* per host:port; 0 = 8 */
    long max_total_connections; /* 0 = 64 */
    const char *user_agent;     /* NULL = "occystrap" */
    int verbose;                /* curl's own trace, a line at a time to trace */
    void (*trace)(void *opaque, const char *line);
    void *trace_opaque;
} oc_http_opts;

/* Result of a transfer, given to on_done. */
typedef struct oc_http_result {
    int ok;               /* transfer completed at the HTTP level (any status) */
    long status;          /* final HTTP status, 0 if none */
    long http_version;    /* 1 (1.x), 2, or 0 unknown */
    long num_connects;    /* new connections this transfer had to open */
    long local_port;      /* local port of the connection used */
    uint64_t body_bytes;  /* bytes handed to on_data */
    uint64_t sent_bytes;  /* request body bytes sent (the last time, if sent again) */
    double seconds;       /* total time */
    int curl_code;        /* CURLcode, 0 on success */
    const char *curl_msg; /* curl's message when curl_code != 0 */
    oc_error *err;        /* set when !ok: network error or on_data abort */

    long redirects;        /* redirects followed before the final response */
    const char *final_url; /* the URL that gave the final response (valid in on_done) */
} oc_http_result;

/* on_data returns one of these. */
enum { OC_HTTP_DATA_OK = 0, OC_HTTP_DATA_PAUSE = 1, OC_HTTP_DATA_ABORT = -1 };

/* A body stream's read returns a byte count, or one of these. */
enum { OC_HTTP_READ_PAUSE = -1, OC_HTTP_READ_ABORT = -2 };

/* A request body (PUT, POST, PATCH), sent with Content-Length: length.
 * Exactly one source: a file region (fd >= 0: length bytes from offset,
 * read with pread as curl asks for them, so a blob is never held in
 * memory; the fd stays the caller's and must stay open until on_done),
 * memory (data: length bytes that must outlive the transfer), or a stream
 * (read: fills at most max bytes and returns how many, 0 only after length
 * bytes, OC_HTTP_READ_PAUSE when it has none yet (the stream then calls
 * oc_http_unpause(t) when it has, from outside curl's callbacks), or
 * OC_HTTP_READ_ABORT with err set; ended(t) tells the stream that transfer
 * t is over, so it must not unpause t any more).
 * curl may have to send the body again from its start (a redirect, a
 * connection that closed under a reused request): files and memory rewind
 * by themselves, a stream only if it has a rewind that returns 0. */
typedef struct oc_http_body {
    int fd;
    uint64_t offset;
    const char *data;
    uint64_t length;
    long (*read)(void *opaque, oc_http_transfer *t, char *buf, size_t max, oc_error *err);
    int (*rewind)(void *opaque);
    void (*ended)(void *opaque, oc_http_transfer *t);
    void *opaque;
} oc_http_body;

typedef struct oc_http_request {
    const char *method; /* "GET" (default), "HEAD", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, copied */
    const char *ca_file;        /* extra CA bundle, or NULL */
    int tls_verify;             /* 1 normally; 0 only for an explicit insecure option */
    int follow_redirects;       /* curl drops Authorization when the host changes */
    long stall_seconds;         /* abort when no byte arrived for this long; 0 = never */
    long connect_timeout_s;     /* 0 = 30 */
    uint64_t range_from;        /* > 0: send "Range: bytes=N-" (caller checks the answer) */
    /* A header line of the final response (and of intermediate ones: status
     * tells which). name is lower-case; value trimmed. */
    void (*on_header)(void *opaque, long status, const char *name, const char *value);
    /* Body bytes of the final response. May set *err and return ABORT; may
     * return PAUSE, in which case the same bytes are offered again after
     * oc_http_unpause. */
    int (*on_data)(void *opaque, long status, const char *data, size_t len, oc_error *err);
    void (*on_done)(void *opaque, const oc_http_result *res);
    void *opaque;
    /* The request body (copied; its source must live until on_done), or
     * NULL: none (POST, PUT, PATCH and DELETE then send Content-Length: 0). */
    const oc_http_body *body;
    /* n more body bytes were handed to the connection (progress). */
    void (*on_sent)(void *opaque, size_t n);
} oc_http_request;

oc_http *oc_http_new(uv_loop_t *loop, const oc_http_opts *opts, oc_error *err);
/* Start teardown: cancels nothing, call it after every transfer finished.
 * Memory is freed once the loop has closed the handles. */
void oc_http_close(oc_http *http, void (*closed)(void *opaque), void *opaque);

/* Start a transfer; NULL with err set if it could not be started (then
 * on_done is never called). */
oc_http_transfer *oc_http_start(oc_http *http, const oc_http_request *req, oc_error *err);
/* Resume a transfer whose on_data returned PAUSE. */
void oc_http_unpause(oc_http_transfer *t);
/* Abort a running transfer; on_done is called (soon, from the loop) with
 * ok=0 and an OC_E_CANCELLED error. */
void oc_http_cancel(oc_http_transfer *t);

/* Cancel every running transfer (each on_done gets ok=0 and an
 * OC_E_CANCELLED error saying why) and refuse new ones from now on
 * (oc_http_start fails with that error): for an interrupted run. */
void oc_http_stop(oc_http *http, const char *why);
/* Totals since oc_http_new. */
typedef struct oc_http_stats {
    uint64_t transfers;
    uint64_t connects; /* sum of new connections over transfers */
    uint64_t bytes;
} oc_http_stats;
void oc_http_get_stats(const oc_http *http, oc_http_stats *out);

/* Process-wide libcurl initialisation; call once from main. */
int oc_http_global_init(oc_error *err);
void oc_http_global_cleanup(void);

#endif
