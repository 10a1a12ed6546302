/* http.c - libcurl's multi interface on a libuv loop (see http.h).
 *
 * Handles and their lifetimes:
 *   oc_http        owns the CURLM, one uv_timer for curl's timeout, one
 *                  uv_timer that completes cancellations outside curl's
 *                  callbacks, and a one-second uv_timer that aborts
 *                  transfers that received nothing for their stall_seconds
 *                  (curl's own low-speed check averages over 5 s windows, so
 *                  it fires seconds late). Freed from the close callback of
 *                  the last of its uv handles.
 *   sock_watch     one per socket curl wants watched: a uv_poll created on
 *                  CURL_POLL_IN/OUT/INOUT, closed on CURL_POLL_REMOVE, freed
 *                  in its close callback.
 *   oc_http_transfer  one CURL easy handle and its copied header list;
 *                  freed right after its on_done returns.
 */
#include "io/http.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

/* Easy handles kept for reuse: a bulk run starts thousands of short
 * transfers, and curl_easy_reset costs far less than a new handle. */
#define SPARE_EASY 64

struct oc_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timeout;
    uv_timer_t cancel_timer;
    uv_timer_t stall_timer;
    oc_http_transfer *active; /* every started transfer, for the stall check */
    int handles_open;
    int closing;
    oc_http_transfer *cancelled; /* transfers waiting to be completed as cancelled */
    oc_http_stats stats;
    char stopped[256]; /* after oc_http_stop: why no transfer may start */
    char user_agent[128];
    int verbose;
    CURL *spare[SPARE_EASY]; /* easy handles of finished transfers, reset for the next */
    int n_spare;
    void (*trace)(void *opaque, const char *line);
    void *trace_opaque;
    void (*closed)(void *opaque); /* oc_http_close's callback */
    void *closed_opaque;
};

typedef struct sock_watch {
    uv_poll_t poll;
    curl_socket_t fd;
    oc_http *http;
} sock_watch;

struct oc_http_transfer {
    oc_http *http;
    CURL *easy;
    struct curl_slist *headers;
    oc_http_request req;
    long status; /* status of the response whose headers are being read */
    uint64_t body_bytes;
    int cancel_pending;
    int aborted;       /* on_data asked to stop */
    int paused;        /* on_data asked to pause: not a stall */
    int send_paused;   /* the body stream had nothing yet: not a stall either */
    oc_http_body body; /* the request body, when has_body */
    int has_body;
    uint64_t body_pos; /* bytes of the body handed to curl since the last rewind */
    int sent;          /* has a connection and sent its request (the stall clock runs) */
    int stalled;       /* aborted by the stall check */
    uint64_t last_activity_ms;
    oc_http_transfer *next_cancelled;
    oc_http_transfer *prev_active, *next_active;
    oc_error err;
    char errbuf[CURL_ERROR_SIZE];
};

static void check_multi_info(oc_http *http);

/* ---- teardown ---- */

static void http_free(oc_http *http)
{
    void (*closed)(void *) = http->closed;
    void *opaque = http->closed_opaque;
    free(http);
    if (closed)
        closed(opaque);
}

static void http_handle_closed(uv_handle_t *h)
{
    oc_http *http = h->data;
    if (--http->handles_open == 0)
        http_free(http);
}

static void sock_watch_closed(uv_handle_t *h)
{
    sock_watch *w = h->data;
    oc_http *http = w->http;
    free(w);
    if (--http->handles_open == 0 && http->closing)
        http_free(http);
}

/* ---- curl -> uv ---- */

static void on_poll(uv_poll_t *poll, int status, int events)
{
    sock_watch *w = poll->data;
    oc_http *http = w->http;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(http->multi, w->fd, flags, &running);
    check_multi_info(http);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    oc_http *http = userp;
    sock_watch *w = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (w) {
            uv_poll_stop(&w->poll);
            curl_multi_assign(http->multi, fd, NULL);
            uv_close((uv_handle_t *)&w->poll, sock_watch_closed);
        }
        return 0;
    }
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w)
            return -1;
        w->fd = fd;
        w->http = http;
        if (uv_poll_init_socket(http->loop, &w->poll, fd) != 0) {
            free(w);
            return -1;
        }
        w->poll.data = w;
        http->handles_open++;
        curl_multi_assign(http->multi, fd, w);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&w->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *timer)
{
    oc_http *http = timer->data;
    int running = 0;
    curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(http);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    oc_http *http = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&http->timeout);
    else
        uv_timer_start(&http->timeout, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- per-transfer callbacks ---- */

static size_t on_curl_header(char *buf, size_t size, size_t n, void *userp)
{
    oc_http_transfer *t = userp;
    size_t len = size * n;
    t->last_activity_ms = uv_now(t->http->loop);
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* status line of a (possibly intermediate) response */
        const char *sp = memchr(buf, ' ', len);
        t->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon || !t->req.on_header)
        return len;
    char name[128];
    size_t nlen = (size_t)(colon - buf);
    if (nlen == 0 || nlen >= sizeof name)
        return len;
    for (size_t i = 0; i < nlen; i++)
        name[i] = (char)tolower((unsigned char)buf[i]);
    name[nlen] = '\0';
    const char *v = colon + 1;
    const char *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *value = strndup(v, (size_t)(end - v));
    if (!value)
        return 0;
    t->req.on_header(t->req.opaque, t->status, name, value);
    free(value);
    return len;
}

/* curl calls this once the transfer has a connection (new or reused) and
 * is about to send: before that it may wait in curl's queue for a free
 * connection, which is not a stall. */
static int on_curl_prereq(void *userp, char *conn_primary_ip, char *conn_local_ip,
                          int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    oc_http_transfer *t = userp;
    t->sent = 1;
    t->last_activity_ms = uv_now(t->http->loop);
    return CURL_PREREQFUNC_OK;
}

static size_t on_curl_write(char *buf, size_t size, size_t n, void *userp)
{
    oc_http_transfer *t = userp;
    size_t len = size * n;
    t->last_activity_ms = uv_now(t->http->loop);
    if (t->cancel_pending)
        return 0;
    if (!t->req.on_data) {
        t->body_bytes += len;
        return len;
    }
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    int rc = t->req.on_data(t->req.opaque, status, buf, len, &t->err);
    if (rc == OC_HTTP_DATA_PAUSE) {
        t->paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (rc != OC_HTTP_DATA_OK) {
        t->aborted = 1;
        if (t->err.code == OC_OK)
            oc_error_set(&t->err, OC_E_IO, "transfer stopped by its consumer");
        return 0;
    }
    t->body_bytes += len;
    return len;
}

/* ---- the request body ---- */

static size_t on_curl_read(char *buf, size_t size, size_t n, void *userp)
{
    oc_http_transfer *t = userp;
    size_t max = size * n;
    t->last_activity_ms = uv_now(t->http->loop);
    if (t->cancel_pending)
        return CURL_READFUNC_ABORT;
    oc_http_body *b = &t->body;
    uint64_t left = b->length > t->body_pos ? b->length - t->body_pos : 0;
    if (max > left)
        max = (size_t)left;
    if (max == 0 && !b->read)
        return 0;
    size_t got = 0;
    if (b->fd >= 0) {
        while (got < max) {
            ssize_t r = pread(b->fd, buf + got, max - got, (off_t)(b->offset + t->body_pos + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                if (r < 0)
                    oc_error_errno(&t->err, errno, "reading the request body");
                else
                    oc_error_set(&t->err, OC_E_IO,
                                 "reading the request body: the file ended %" PRIu64 " bytes early",
                                 left - got);
                t->aborted = 1;
                return CURL_READFUNC_ABORT;
            }
            got += (size_t)r;
        }
    } else if (b->data) {
        memcpy(buf, b->data + t->body_pos, max);
        got = max;
    } else {
        long r = b->read(b->opaque, t, buf, max, &t->err);
        if (r == OC_HTTP_READ_PAUSE) {
            t->send_paused = 1;
            return CURL_READFUNC_PAUSE;
        }
        if (r < 0 || (size_t)r > max || (r == 0 && left > 0)) {
            if (t->err.code == OC_OK)
                oc_error_set(&t->err, OC_E_IO, "the request body ended %" PRIu64 " bytes early",
                             left);
            t->aborted = 1;
            return CURL_READFUNC_ABORT;
        }
        got = (size_t)r;
    }
    t->body_pos += got;
    if (got && t->req.on_sent)
        t->req.on_sent(t->req.opaque, got);
    return got;
}

/* curl sends the body again from its start (a redirect, a request retried
 * on a new connection). */
static int on_curl_seek(void *userp, curl_off_t offset, int origin)
{
    oc_http_transfer *t = userp;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->body.length)
        return CURL_SEEKFUNC_CANTSEEK;
    if (t->body.read) {
        if (offset != 0 || !t->body.rewind || t->body.rewind(t->body.opaque) != 0)
            return CURL_SEEKFUNC_CANTSEEK;
    }
    t->body_pos = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* ---- completion ---- */

static void transfer_free(oc_http_transfer *t)
{
    oc_http *http = t->http;
    if (t->prev_active)
        t->prev_active->next_active = t->next_active;
    else if (http->active == t)
        http->active = t->next_active;
    if (t->next_active)
        t->next_active->prev_active = t->prev_active;
    curl_slist_free_all(t->headers);
    if (t->easy && !http->closing && http->n_spare < SPARE_EASY) {
        curl_easy_reset(t->easy);
        http->spare[http->n_spare++] = t->easy;
    } else {
        curl_easy_cleanup(t->easy);
    }
    free(t);
}

static void transfer_finish(oc_http_transfer *t, CURLcode code)
{
    oc_http *http = t->http;
    oc_http_result res;
    memset(&res, 0, sizeof res);
    res.curl_code = (int)code;
    res.body_bytes = t->body_bytes;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &res.status);
    long ver = 0;
    curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &ver);
    res.http_version = ver == CURL_HTTP_VERSION_2_0 ? 2 : ver ? 1 : 0;
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &res.num_connects);
    curl_easy_getinfo(t->easy, CURLINFO_LOCAL_PORT, &res.local_port);
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &res.seconds);
    curl_off_t sent = 0;
    if (curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK && sent > 0)
        res.sent_bytes = (uint64_t)sent;
    curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_COUNT, &res.redirects);
    char *final_url = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &final_url);
    res.final_url = final_url;
    http->stats.transfers++;
    http->stats.connects += (uint64_t)(res.num_connects > 0 ? res.num_connects : 0);
    http->stats.bytes += t->body_bytes;

    if (t->stalled) {
        res.curl_code = CURLE_OPERATION_TIMEDOUT;
        oc_error_set(&t->err, OC_E_NET, "no data received for %ld s (stalled transfer)",
                     t->req.stall_seconds);
        res.err = &t->err;
    } else if (t->cancel_pending) {
        oc_error_set(&t->err, OC_E_CANCELLED, "%s",
                     http->stopped[0] ? http->stopped : "transfer cancelled");
        res.err = &t->err;
    } else if (t->aborted) {
        res.err = &t->err;
    } else if (code != CURLE_OK) {
        const char *msg = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
        res.curl_msg = msg;
        oc_error_set(&t->err, OC_E_NET, "%s (curl error %d)", msg, (int)code);
        res.err = &t->err;
    } else {
        res.ok = 1;
    }
    if (t->has_body && t->body.read && t->body.ended)
        t->body.ended(t->body.opaque, t);
    if (t->req.on_done)
        t->req.on_done(t->req.opaque, &res);
    transfer_free(t);
}

static void unlink_cancelled(oc_http *http, oc_http_transfer *t)
{
    for (oc_http_transfer **p = &http->cancelled; *p; p = &(*p)->next_cancelled) {
        if (*p == t) {
            *p = t->next_cancelled;
            return;
        }
    }
}

static void check_multi_info(oc_http *http)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(http->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        oc_http_transfer *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(http->multi, easy);
        unlink_cancelled(http, t);
        transfer_finish(t, code);
    }
}

static void on_stall_timer(uv_timer_t *timer)
{
    oc_http *http = timer->data;
    uint64_t now = uv_now(http->loop);
    for (oc_http_transfer *t = http->active; t; t = t->next_active) {
        if (t->req.stall_seconds <= 0 || !t->sent || t->paused || t->send_paused ||
            t->cancel_pending)
            continue;
        if (now - t->last_activity_ms >= (uint64_t)t->req.stall_seconds * 1000) {
            t->stalled = 1;
            oc_http_cancel(t);
        }
    }
}

static void on_cancel_timer(uv_timer_t *timer)
{
    oc_http *http = timer->data;
    while (http->cancelled) {
        oc_http_transfer *t = http->cancelled;
        http->cancelled = t->next_cancelled;
        curl_multi_remove_handle(http->multi, t->easy);
        transfer_finish(t, CURLE_ABORTED_BY_CALLBACK);
    }
}

/* ---- public API ---- */

int oc_http_global_init(oc_error *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        oc_error_set(err, OC_E_NET, "libcurl global initialisation failed");
        return -1;
    }
    return 0;
}

void oc_http_global_cleanup(void)
{
    curl_global_cleanup();
}

oc_http *oc_http_new(uv_loop_t *loop, const oc_http_opts *opts, oc_error *err)
{
    oc_http *http = calloc(1, sizeof *http);
    if (!http) {
        oc_error_set(err, OC_E_NOMEM, "out of memory creating the HTTP engine");
        return NULL;
    }
    http->loop = loop;
    http->multi = curl_multi_init();
    if (!http->multi) {
        free(http);
        oc_error_set(err, OC_E_NET, "curl_multi_init failed");
        return NULL;
    }
    long per_host = opts && opts->max_host_connections > 0 ? opts->max_host_connections : 8;
    long total = opts && opts->max_total_connections > 0 ? opts->max_total_connections : 64;
    snprintf(http->user_agent, sizeof http->user_agent, "%s",
             opts && opts->user_agent ? opts->user_agent : "occystrap");
    http->verbose = opts ? opts->verbose : 0;
    http->trace = opts ? opts->trace : NULL;
    http->trace_opaque = opts ? opts->trace_opaque : NULL;

    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
    curl_multi_setopt(http->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);

    uv_timer_init(loop, &http->timeout);
    http->timeout.data = http;
    uv_timer_init(loop, &http->cancel_timer);
    http->cancel_timer.data = http;
    uv_timer_init(loop, &http->stall_timer);
    http->stall_timer.data = http;
    uv_timer_start(&http->stall_timer, on_stall_timer, 250, 250);
    uv_unref((uv_handle_t *)&http->stall_timer);
    http->handles_open = 3;
    return http;
}

void oc_http_close(oc_http *http, void (*closed)(void *opaque), void *opaque)
{
    if (!http || http->closing)
        return;
    http->closing = 1;
    http->closed = closed;
    http->closed_opaque = opaque;
    /* Closes cached connections; curl reports each socket with
     * CURL_POLL_REMOVE, which closes its watcher. */
    curl_multi_cleanup(http->multi);
    http->multi = NULL;
    while (http->n_spare > 0)
        curl_easy_cleanup(http->spare[--http->n_spare]);
    uv_close((uv_handle_t *)&http->timeout, http_handle_closed);
    uv_close((uv_handle_t *)&http->cancel_timer, http_handle_closed);
    uv_close((uv_handle_t *)&http->stall_timer, http_handle_closed);
}

/* curl's trace (informational text and headers, as curl -v shows them),
 * one line at a time to the trace callback; bodies are not traced. */
static int on_curl_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *opaque)
{
    (void)easy;
    oc_http *http = opaque;
    const char *prefix = type == CURLINFO_TEXT         ? "* "
                         : type == CURLINFO_HEADER_IN  ? "< "
                         : type == CURLINFO_HEADER_OUT ? "> "
                                                       : NULL;
    if (!prefix)
        return 0;
    while (size > 0) {
        size_t len = 0;
        while (len < size && data[len] != '\n')
            len++;
        size_t next = len < size ? len + 1 : len;
        while (len > 0 && data[len - 1] == '\r')
            len--;
        char line[1024];
        snprintf(line, sizeof line, "%s%.*s", prefix, (int)(len < 1000 ? len : 1000), data);
        http->trace(http->trace_opaque, line);
        data += next;
        size -= next;
    }
    return 0;
}

static int set_headers(oc_http_transfer *t, const oc_http_request *req)
{
    struct curl_slist *list = NULL;
    /* no Expect: 100-continue, no implicit Accept */
    const char *fixed[] = {"Expect:", NULL};
    for (const char *const *h = fixed; *h; h++) {
        struct curl_slist *n = curl_slist_append(list, *h);
        if (!n)
            goto oom;
        list = n;
    }
    for (const char *const *h = req->headers; h && *h; h++) {
        struct curl_slist *n = curl_slist_append(list, *h);
        if (!n)
            goto oom;
        list = n;
    }
    t->headers = list;
    return 0;
oom:
    curl_slist_free_all(list);
    return -1;
}

oc_http_transfer *oc_http_start(oc_http *http, const oc_http_request *req, oc_error *err)
{
    if (http->stopped[0]) {
        oc_error_set(err, OC_E_CANCELLED, "%s", http->stopped);
        return NULL;
    }
    oc_http_transfer *t = calloc(1, sizeof *t);
    if (t)
        t->easy = http->n_spare > 0 ? http->spare[--http->n_spare] : curl_easy_init();
    if (!t || !t->easy) {
        free(t);
        oc_error_set(err, OC_E_NOMEM, "out of memory starting a transfer to %s", req->url);
        return NULL;
    }
    t->http = http;
    t->req = *req;
    t->req.headers = NULL; /* copied below; the caller's array need not outlive this call */
    t->req.url = NULL;
    t->req.body = NULL;
    if (req->body) {
        t->body = *req->body;
        t->has_body = 1;
        if (t->body.data || t->body.read)
            t->body.fd = -1;
    }
    if (set_headers(t, req) != 0) {
        transfer_free(t);
        oc_error_set(err, OC_E_NOMEM, "out of memory building headers for %s", req->url);
        return NULL;
    }
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url); /* curl copies the string */
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, http->user_agent);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_curl_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, t);
    if (strncmp(req->url, "https://", 8) == 0) {
        /* HTTP/2 over TLS: wait for an existing connection's multiplexing
         * rather than open another. Plain HTTP stays HTTP/1.1 with parallel
         * connections: waiting there only serialises transfers. */
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT,
                     req->connect_timeout_s > 0 ? req->connect_timeout_s : 30L);
    const char *method = req->method ? req->method : "GET";
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        /* every other method is an upload, of the body or of nothing */
        if (!t->has_body) {
            t->body.fd = -1;
            t->body.data = "";
            t->has_body = 1;
        }
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->body.length);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_curl_read);
        curl_easy_setopt(e, CURLOPT_READDATA, t);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_curl_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, t);
        if (strcmp(method, "PUT") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (t->body.length >= 1024 * 1024) /* fewer, larger reads and sends */
            curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
    }
    if (req->follow_redirects) {
        /* libcurl >= 7.58 never sends a custom Authorization header to a
         * host other than the original one; UNRESTRICTED_AUTH stays 0. */
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
    }
    if (req->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
    if (!req->tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (req->range_from > 0) {
        char range[48];
        snprintf(range, sizeof range, "%llu-", (unsigned long long)req->range_from);
        curl_easy_setopt(e, CURLOPT_RANGE, range);
    }
    if (http->verbose && http->trace) {
        curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_curl_debug);
        curl_easy_setopt(e, CURLOPT_DEBUGDATA, http);
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    }

    t->last_activity_ms = uv_now(http->loop);
    t->next_active = http->active;
    if (http->active)
        http->active->prev_active = t;
    http->active = t;
    CURLMcode mc = curl_multi_add_handle(http->multi, e);
    if (mc != CURLM_OK) {
        oc_error_set(err, OC_E_NET, "cannot start transfer to %s: %s", req->url,
                     curl_multi_strerror(mc));
        transfer_free(t);
        return NULL;
    }
    return t;
}

void oc_http_unpause(oc_http_transfer *t)
{
    t->paused = 0;
    t->send_paused = 0;
    t->last_activity_ms = uv_now(t->http->loop);
    curl_easy_pause(t->easy, CURLPAUSE_CONT);
}

void oc_http_cancel(oc_http_transfer *t)
{
    if (t->cancel_pending)
        return;
    t->cancel_pending = 1;
    t->next_cancelled = t->http->cancelled;
    t->http->cancelled = t;
    uv_timer_start(&t->http->cancel_timer, on_cancel_timer, 0, 0);
}

void oc_http_stop(oc_http *http, const char *why)
{
    snprintf(http->stopped, sizeof http->stopped, "%s", why && *why ? why : "stopped");
    for (oc_http_transfer *t = http->active; t; t = t->next_active)
        oc_http_cancel(t);
}

void oc_http_get_stats(const oc_http *http, oc_http_stats *out)
{
    *out = http->stats;
}
