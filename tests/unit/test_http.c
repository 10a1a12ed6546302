/* test_http.c - libcurl multi on a libuv loop (io/http.h), against a tiny
 * HTTP/1.1 server that the test runs in its own threads on 127.0.0.1.
 *
 * The server answers canned paths: /bytes/N (N bytes of a position-dependent
 * pattern, sent in uneven pieces, keep-alive), /notfound (404), /cut/N (half
 * the body, then the connection closes), /slow (10 bytes, then silence),
 * /silent (no answer at all),
 * /trickle/N/MS (one byte every MS ms), /redirect (302 to /bytes/1234),
 * /headers (mixed-case and padded header lines), /echo (the request's header
 * lines as body), /range/N (206 from a Range: bytes=K- request). The tests
 * drive oc_http on a uv loop and check status, body bytes and content, header
 * names in lower case, pause and unpause (the same bytes are offered again),
 * cancel (OC_E_CANCELLED), stop (every transfer cancelled with the reason,
 * new ones refused), a refused connection (OC_E_NET), stall detection
 * (prompt, not fooled by a slow steady server or by a transfer queued for a
 * connection), redirects, HEAD, Range, an abort from on_data, the per-host
 * connection cap, and that after oc_http_close the loop ends with no handle
 * left. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "io/http.h"

/* ---- the server ---- */

static unsigned char pat(uint64_t i)
{
    uint32_t x = (uint32_t)i * 0x9E3779B1u;
    x ^= x >> 15;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    return (unsigned char)x;
}

enum { MAX_CONNS = 256 };

typedef struct server {
    int lfd;
    int port;
    pthread_t accept_thread;
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_t conns[MAX_CONNS];
    int n_conns;
    atomic_int accepted;
    atomic_int requests;
} server;

static server srv;

typedef struct conn {
    server *s;
    int fd;
} conn;

static int send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

/* Wait up to ms for the peer to close (or the server to stop). */
static void wait_peer_close(conn *c, int ms)
{
    char buf[4096];
    for (int waited = 0; waited < ms && !atomic_load(&c->s->stop); waited += 50) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int r = poll(&pfd, 1, 50);
        if (r > 0) {
            ssize_t n = recv(c->fd, buf, sizeof buf, 0);
            if (n <= 0)
                return;
        }
    }
}

/* The body of /bytes/N from offset from, in uneven pieces. */
static int send_pattern(int fd, uint64_t from, uint64_t to, int pace)
{
    unsigned char buf[9000];
    uint64_t i = from;
    size_t piece = 1000;
    while (i < to) {
        size_t n = piece;
        if (n > to - i)
            n = (size_t)(to - i);
        for (size_t k = 0; k < n; k++)
            buf[k] = pat(i + k);
        if (send_all(fd, buf, n) != 0)
            return -1;
        i += n;
        piece = piece * 7 % 8999 + 1;
        if (pace && (i / 65536) != ((i - n) / 65536))
            usleep(500);
    }
    return 0;
}

/* Read one request's head; 0 at EOF or stop. */
static size_t read_request(conn *c, char *buf, size_t cap)
{
    size_t n = 0;
    while (!atomic_load(&c->s->stop)) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int r = poll(&pfd, 1, 100);
        if (r <= 0)
            continue;
        ssize_t got = recv(c->fd, buf + n, cap - 1 - n, 0);
        if (got <= 0)
            return 0;
        n += (size_t)got;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return n;
        if (n + 1 >= cap)
            return 0;
    }
    return 0;
}

/* FNV-1a of bytes, continued from h (start with 1469598103934665603). */
static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* A request body of Content-Length bytes: those already read with the head
 * (after it in req, n bytes in all), then the rest from the socket; at
 * most stop_after bytes are read (then the connection is dropped).
 * *len and *hash describe what arrived; -1 when the peer went away. */
static int read_body(conn *c, const char *req, size_t n, uint64_t stop_after, uint64_t *len,
                     uint64_t *hash)
{
    const char *cl = strcasestr(req, "\r\nContent-Length:");
    unsigned long long want = 0;
    if (cl)
        sscanf(cl + 17, " %llu", &want);
    if (want > stop_after)
        want = stop_after;
    const char *head_end = strstr(req, "\r\n\r\n") + 4;
    size_t have = n - (size_t)(head_end - req);
    if (have > want)
        have = (size_t)want;
    *hash = fnv(1469598103934665603ull, (const unsigned char *)head_end, have);
    *len = have;
    unsigned char buf[65536];
    while (*len < want) {
        size_t ask = want - *len < sizeof buf ? (size_t)(want - *len) : sizeof buf;
        ssize_t got = recv(c->fd, buf, ask, 0);
        if (got <= 0)
            return -1;
        *hash = fnv(*hash, buf, (size_t)got);
        *len += (uint64_t)got;
    }
    return 0;
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    char req[16384];
    for (;;) {
        size_t req_len = read_request(c, req, sizeof req);
        if (req_len == 0)
            break;
        atomic_fetch_add(&c->s->requests, 1);
        char method[16], path[1024];
        if (sscanf(req, "%15s %1023s", method, path) != 2)
            break;
        int head = strcmp(method, "HEAD") == 0;
        char hdr[2048];
        unsigned long long n = 0;
        int ms = 0;
        int keep = 1;
        if (sscanf(path, "/bytes/%llu", &n) == 1) {
            snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\nContent-Type: "
                     "application/octet-stream\r\n\r\n",
                     n);
            if (send_str(c->fd, hdr) != 0)
                break;
            if (!head && send_pattern(c->fd, 0, n, 1) != 0)
                break;
        } else if (strcmp(path, "/notfound") == 0) {
            const char *body = "no such thing\n";
            snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\nContent-Type: "
                     "text/plain\r\n\r\n%s",
                     strlen(body), head ? "" : body);
            if (send_str(c->fd, hdr) != 0)
                break;
        } else if (sscanf(path, "/cut/%llu", &n) == 1) {
            snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n", n);
            send_str(c->fd, hdr);
            send_pattern(c->fd, 0, n / 2, 0);
            keep = 0;
        } else if (strcmp(path, "/slow") == 0) {
            send_str(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            send_pattern(c->fd, 0, 10, 0);
            wait_peer_close(c, 15000);
            keep = 0;
        } else if (sscanf(path, "/trickle/%llu/%d", &n, &ms) == 2) {
            /* slow but steady: one byte every ms milliseconds */
            snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n", n);
            if (send_str(c->fd, hdr) != 0)
                break;
            int bad = 0;
            for (unsigned long long i = 0; i < n && !bad; i++) {
                usleep((useconds_t)ms * 1000);
                unsigned char b = pat(i);
                bad = send_all(c->fd, &b, 1) != 0;
            }
            if (bad)
                break;
        } else if (strcmp(path, "/silent") == 0) {
            wait_peer_close(c, 15000); /* never answers */
            keep = 0;
        } else if (strcmp(path, "/sink") == 0) {
            /* the body's method, length and hash as the answer */
            uint64_t len = 0, hash = 0;
            if (read_body(c, req, req_len, UINT64_MAX, &len, &hash) != 0)
                break;
            char body[128];
            snprintf(body, sizeof body, "%s %llu %016llx", method, (unsigned long long)len,
                     (unsigned long long)hash);
            snprintf(hdr, sizeof hdr, "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
            if (send_str(c->fd, hdr) != 0)
                break;
        } else if (sscanf(path, "/sink-cut/%llu", &n) == 1) {
            uint64_t len = 0, hash = 0;
            read_body(c, req, req_len, n, &len, &hash);
            keep = 0; /* the connection drops after n body bytes */
        } else if (strcmp(path, "/sink-redirect") == 0) {
            uint64_t len = 0, hash = 0;
            if (read_body(c, req, req_len, UINT64_MAX, &len, &hash) != 0)
                break;
            send_str(c->fd, "HTTP/1.1 307 Temporary Redirect\r\nLocation: /sink\r\n"
                            "Content-Length: 0\r\n\r\n");
        } else if (strcmp(path, "/redirect") == 0) {
            send_str(c->fd, "HTTP/1.1 302 Found\r\nLocation: /bytes/1234\r\nContent-Length: "
                            "0\r\n\r\n");
        } else if (strcmp(path, "/headers") == 0) {
            send_str(c->fd, "HTTP/1.1 200 OK\r\nX-Mixed-Case:   Some Value  \r\nx-lower: v\r\n"
                            "X-Empty:\r\nDOCKER-CONTENT-DIGEST: sha256:abc\r\n"
                            "Content-Length: 2\r\n\r\nok");
        } else if (strcmp(path, "/echo") == 0) {
            char *end = strstr(req, "\r\n\r\n");
            size_t len = end ? (size_t)(end - req) + 2 : strlen(req);
            snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
            if (send_str(c->fd, hdr) != 0 || send_all(c->fd, req, len) != 0)
                break;
        } else if (sscanf(path, "/range/%llu", &n) == 1) {
            unsigned long long from = 0;
            const char *r = strcasestr(req, "\r\nRange: bytes=");
            if (r && sscanf(r + 15, "%llu-", &from) == 1 && from < n) {
                snprintf(hdr, sizeof hdr,
                         "HTTP/1.1 206 Partial Content\r\nContent-Length: %llu\r\n"
                         "Content-Range: bytes %llu-%llu/%llu\r\n\r\n",
                         n - from, from, n - 1, n);
            } else {
                from = 0;
                snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n", n);
            }
            if (send_str(c->fd, hdr) != 0 || send_pattern(c->fd, from, n, 0) != 0)
                break;
        } else {
            send_str(c->fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
        if (!keep)
            break;
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {s->lfd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->accepted, 1);
        conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        pthread_mutex_lock(&s->lock);
        if (s->n_conns < MAX_CONNS &&
            pthread_create(&s->conns[s->n_conns], NULL, conn_main, c) == 0) {
            s->n_conns++;
        } else {
            close(fd);
            free(c);
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

static int server_start(server *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0)
        return -1;
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 64) != 0)
        return -1;
    socklen_t al = sizeof a;
    if (getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->accept_thread, NULL, accept_main, s) == 0 ? 0 : -1;
}

static void server_stop(server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->accept_thread, NULL);
    close(s->lfd);
    for (int i = 0; i < s->n_conns; i++)
        pthread_join(s->conns[i], NULL);
    pthread_mutex_destroy(&s->lock);
}

static int group_setup(void **state)
{
    (void)state;
    if (oc_http_global_init(NULL) != 0)
        return -1;
    return server_start(&srv);
}

static int group_teardown(void **state)
{
    (void)state;
    server_stop(&srv);
    oc_http_global_cleanup();
    return 0;
}

/* ---- the client side ---- */

typedef struct hdr_rec {
    long status;
    char name[128];
    char value[256];
} hdr_rec;

typedef struct xfer {
    oc_http_transfer *t;
    uv_loop_t *loop;
    int *remaining;
    /* result */
    int done;
    int ok;
    long status;
    long http_version;
    uint64_t body_bytes;
    int curl_code;
    int err_code;
    char err_msg[512];
    /* body */
    uint64_t got;
    uint64_t offset0; /* pattern offset of the first body byte (Range) */
    int check_pattern;
    uint64_t pattern_errors;
    int data_calls;
    long data_status;
    char *collect; /* keep the body (small ones) */
    size_t collect_len;
    /* headers */
    hdr_rec hdrs[32];
    int n_hdrs;
    /* pause */
    int pause_at_call; /* return PAUSE at this on_data call number (1-based), 0 = never */
    int pause_ms;
    uv_timer_t unpause_timer;
    int timer_inited;
    int paused;
    int data_while_paused;
    uint64_t pause_offset;
    size_t pause_len;
    unsigned char pause_first;
    int reoffer_checked;
    int reoffer_same;
    /* abort / cancel */
    int abort_at_call;
    int abort_code;
    int cancel_at_call;
    int cancel_twice;
} xfer;

static void on_header(void *opaque, long status, const char *name, const char *value)
{
    xfer *x = opaque;
    if (x->n_hdrs < 32) {
        hdr_rec *h = &x->hdrs[x->n_hdrs++];
        h->status = status;
        snprintf(h->name, sizeof h->name, "%s", name);
        snprintf(h->value, sizeof h->value, "%s", value);
    }
}

static void on_unpause(uv_timer_t *t)
{
    xfer *x = t->data;
    x->paused = 0;
    oc_http_unpause(x->t);
}

static int on_data(void *opaque, long status, const char *data, size_t len, oc_error *err)
{
    xfer *x = opaque;
    x->data_calls++;
    x->data_status = status;
    if (x->paused)
        x->data_while_paused++;
    if (x->pause_offset && !x->reoffer_checked && !x->paused) {
        /* first call after the unpause: the same bytes again */
        x->reoffer_checked = 1;
        x->reoffer_same = x->got == x->pause_offset - 1 && len > 0 &&
                          (unsigned char)data[0] == x->pause_first && len >= x->pause_len;
    }
    if (x->pause_at_call && x->data_calls == x->pause_at_call) {
        x->paused = 1;
        x->pause_offset = x->got + 1; /* +1: 0 means "never paused" */
        x->pause_len = len;
        x->pause_first = (unsigned char)data[0];
        uv_timer_init(x->loop, &x->unpause_timer);
        x->timer_inited = 1;
        x->unpause_timer.data = x;
        uv_timer_start(&x->unpause_timer, on_unpause, (uint64_t)x->pause_ms, 0);
        return OC_HTTP_DATA_PAUSE;
    }
    if (x->abort_at_call && x->data_calls == x->abort_at_call) {
        if (x->abort_code)
            oc_error_set(err, (oc_errcode)x->abort_code, "consumer says no");
        return OC_HTTP_DATA_ABORT;
    }
    if (x->cancel_at_call && x->data_calls == x->cancel_at_call) {
        oc_http_cancel(x->t);
        if (x->cancel_twice)
            oc_http_cancel(x->t);
    }
    if (x->check_pattern)
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)data[i] != pat(x->offset0 + x->got + i))
                x->pattern_errors++;
    if (x->collect) {
        size_t room = 65536 - 1 - x->collect_len;
        size_t n = len < room ? len : room;
        memcpy(x->collect + x->collect_len, data, n);
        x->collect_len += n;
        x->collect[x->collect_len] = '\0';
    }
    x->got += len;
    return OC_HTTP_DATA_OK;
}

static void on_done(void *opaque, const oc_http_result *res)
{
    xfer *x = opaque;
    x->done++;
    x->ok = res->ok;
    x->status = res->status;
    x->http_version = res->http_version;
    x->body_bytes = res->body_bytes;
    x->curl_code = res->curl_code;
    x->err_code = res->err ? (int)res->err->code : 0;
    snprintf(x->err_msg, sizeof x->err_msg, "%.500s", res->err ? res->err->msg : "");
    if (x->ok && res->err)
        x->err_code = -1; /* ok with an error: wrong */
    if (!x->ok && !res->err)
        x->err_code = -2; /* failed without an error: wrong */
    if (x->timer_inited)
        uv_timer_stop(&x->unpause_timer); /* the transfer is gone: no unpause */
    if (x->remaining && --*x->remaining == 0)
        uv_stop(x->loop);
}

typedef struct env {
    uv_loop_t loop;
    oc_http *http;
    uv_timer_t dog;
    int timed_out;
    int remaining;
    struct xfer *late; /* test_stop: started after oc_http_stop */
} env;

static void on_dog(uv_timer_t *t)
{
    env *e = t->data;
    e->timed_out = 1;
    uv_stop(&e->loop);
}

static void env_init(env *e, const oc_http_opts *opts)
{
    memset(e, 0, sizeof *e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    oc_error err;
    e->http = oc_http_new(&e->loop, opts, &err);
    assert_non_null(e->http);
    uv_timer_init(&e->loop, &e->dog);
    e->dog.data = e;
    uv_unref((uv_handle_t *)&e->dog);
}

static void url_for(char *buf, size_t n, const char *path)
{
    snprintf(buf, n, "http://127.0.0.1:%d%s", srv.port, path);
}

static void xfer_init(xfer *x, env *e)
{
    memset(x, 0, sizeof *x);
    x->loop = &e->loop;
    x->remaining = &e->remaining;
}

static oc_http_request req_for(xfer *x, const char *url)
{
    oc_http_request r;
    memset(&r, 0, sizeof r);
    r.url = url;
    r.tls_verify = 1;
    r.on_header = on_header;
    r.on_data = on_data;
    r.on_done = on_done;
    r.opaque = x;
    return r;
}

static void start(env *e, xfer *x, const oc_http_request *r)
{
    oc_error err;
    oc_error_clear(&err);
    x->t = oc_http_start(e->http, r, &err);
    if (!x->t)
        fail_msg("oc_http_start: %s", err.msg);
    e->remaining++;
}

/* Run until every started transfer is done (or the watchdog fires). */
static void run_all(env *e, int seconds)
{
    uv_timer_start(&e->dog, on_dog, (uint64_t)seconds * 1000, 0);
    if (e->remaining > 0)
        uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&e->dog);
    assert_int_equal(e->timed_out, 0);
    assert_int_equal(e->remaining, 0);
}

static void count_handle(uv_handle_t *h, void *arg)
{
    int *n = arg;
    if (!uv_is_closing(h))
        (*n)++;
}

static void print_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    print_message("  left open: %s handle %p (active %d)\n", uv_handle_type_name(h->type),
                  (void *)h, uv_is_active(h));
}

/* oc_http_close, then the loop must end by itself with nothing left but
 * the test's own watchdog. */
static void env_close(env *e, xfer **xs, int n)
{
    oc_http_close(e->http, NULL, NULL);
    e->http = NULL;
    uv_timer_start(&e->dog, on_dog, 5000, 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    int ended_by_itself = !e->timed_out;
    uv_timer_stop(&e->dog);
    for (int i = 0; i < n; i++)
        if (xs[i]->timer_inited)
            uv_close((uv_handle_t *)&xs[i]->unpause_timer, NULL);
    uv_close((uv_handle_t *)&e->dog, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    int left = 0;
    uv_walk(&e->loop, count_handle, &left);
    if (left)
        uv_walk(&e->loop, print_handle, NULL);
    int rc = uv_loop_close(&e->loop);
    assert_true(ended_by_itself);
    assert_int_equal(left, 0);
    assert_int_equal(rc, 0);
}

static const char *find_header(const xfer *x, long status, const char *name)
{
    for (int i = 0; i < x->n_hdrs; i++)
        if (x->hdrs[i].status == status && strcmp(x->hdrs[i].name, name) == 0)
            return x->hdrs[i].value;
    return NULL;
}

/* ---- tests ---- */

static void test_get_body(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    x.check_pattern = 1;
    char url[256];
    url_for(url, sizeof url, "/bytes/1000000");
    oc_http_request r = req_for(&x, url);
    start(&e, &x, &r);
    run_all(&e, 20);
    assert_int_equal(x.done, 1);
    assert_int_equal(x.ok, 1);
    assert_int_equal(x.err_code, 0);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.http_version, 1);
    assert_int_equal(x.body_bytes, 1000000);
    assert_int_equal(x.got, 1000000);
    assert_int_equal(x.pattern_errors, 0);
    assert_true(x.data_calls > 1);
    assert_int_equal(x.data_status, 200);
    const char *cl = find_header(&x, 200, "content-length");
    assert_non_null(cl);
    assert_string_equal(cl, "1000000");
    oc_http_stats st;
    oc_http_get_stats(e.http, &st);
    assert_int_equal(st.transfers, 1);
    assert_int_equal(st.bytes, 1000000);
    assert_int_equal(st.connects, 1);

    /* a second transfer reuses the kept-alive connection */
    xfer y;
    xfer_init(&y, &e);
    y.check_pattern = 1;
    url_for(url, sizeof url, "/bytes/77777");
    r = req_for(&y, url);
    start(&e, &y, &r);
    run_all(&e, 20);
    assert_int_equal(y.ok, 1);
    assert_int_equal(y.got, 77777);
    assert_int_equal(y.pattern_errors, 0);
    oc_http_get_stats(e.http, &st);
    assert_int_equal(st.transfers, 2);
    assert_int_equal(st.bytes, 1077777);
    assert_int_equal(st.connects, 1);
    xfer *xs[] = {&x, &y};
    env_close(&e, xs, 2);
}

static void test_header_names_lower_case(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    char url[256];
    url_for(url, sizeof url, "/headers");
    oc_http_request r = req_for(&x, url);
    start(&e, &x, &r);
    run_all(&e, 20);
    assert_int_equal(x.ok, 1);
    assert_int_equal(x.status, 200);
    assert_true(x.n_hdrs >= 5);
    for (int i = 0; i < x.n_hdrs; i++) {
        for (const char *p = x.hdrs[i].name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                fail_msg("header name \"%s\" is not lower case", x.hdrs[i].name);
        assert_int_equal(x.hdrs[i].status, 200);
    }
    assert_string_equal(find_header(&x, 200, "x-mixed-case"), "Some Value");
    assert_string_equal(find_header(&x, 200, "x-lower"), "v");
    assert_string_equal(find_header(&x, 200, "x-empty"), "");
    assert_string_equal(find_header(&x, 200, "docker-content-digest"), "sha256:abc");
    assert_string_equal(find_header(&x, 200, "content-length"), "2");
    assert_int_equal(x.got, 2);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

static void test_not_found(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    char body[65536];
    x.collect = body;
    char url[256];
    url_for(url, sizeof url, "/notfound");
    oc_http_request r = req_for(&x, url);
    start(&e, &x, &r);
    run_all(&e, 20);
    assert_int_equal(x.ok, 1); /* completed at the HTTP level */
    assert_int_equal(x.status, 404);
    assert_int_equal(x.data_status, 404);
    assert_string_equal(body, "no such thing\n");
    assert_int_equal(x.body_bytes, 14);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

static void test_connection_cut_mid_body(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    x.check_pattern = 1;
    char url[256];
    url_for(url, sizeof url, "/cut/200000");
    oc_http_request r = req_for(&x, url);
    start(&e, &x, &r);
    run_all(&e, 20);
    assert_int_equal(x.done, 1);
    assert_int_equal(x.ok, 0);
    assert_int_equal(x.err_code, OC_E_NET);
    assert_int_equal(x.curl_code, CURLE_PARTIAL_FILE);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.got, 100000);
    assert_int_equal(x.body_bytes, 100000);
    assert_int_equal(x.pattern_errors, 0);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

static double stall_run(long stall_seconds, xfer *x)
{
    env e;
    env_init(&e, NULL);
    xfer_init(x, &e);
    char url[256];
    url_for(url, sizeof url, "/slow");
    oc_http_request r = req_for(x, url);
    r.stall_seconds = stall_seconds;
    uint64_t t0 = uv_hrtime();
    start(&e, x, &r);
    run_all(&e, 20);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    xfer *xs[] = {x};
    env_close(&e, xs, 1);
    return secs;
}

/* The server sends headers and 10 bytes, then nothing: the transfer must
 * be aborted as stalled (and not hang). */
static void test_stall_detected(void **state)
{
    (void)state;
    xfer x;
    double secs = stall_run(1, &x);
    assert_int_equal(x.ok, 0);
    assert_int_equal(x.err_code, OC_E_NET);
    assert_int_equal(x.curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(x.got, 10);
    print_message("stall_seconds=1: aborted after %.2f s\n", secs);
    assert_true(secs >= 0.9 && secs < 15.0);
}

/* http.h: "abort when no byte arrived for this long". libcurl's low-speed
 * check (LOW_SPEED_LIMIT 1 byte/s over LOW_SPEED_TIME) works on a moving
 * average of about 5 s, so bytes received just before the silence delay
 * the abort by up to ~5-6 s beyond stall_seconds. */
static void test_stall_detected_promptly(void **state)
{
    (void)state;
    xfer x;
    double secs = stall_run(1, &x);
    assert_int_equal(x.ok, 0);
    if (secs > 3.0)
        fail_msg("stall_seconds=1 but the silent transfer was aborted only after %.2f s", secs);
}

/* The request is sent and no answer ever comes (not even a status line):
 * a stall too. */
static void test_stall_without_any_answer(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    char url[256];
    url_for(url, sizeof url, "/silent");
    oc_http_request r = req_for(&x, url);
    r.stall_seconds = 1;
    uint64_t t0 = uv_hrtime();
    start(&e, &x, &r);
    run_all(&e, 20);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    assert_int_equal(x.ok, 0);
    assert_int_equal(x.err_code, OC_E_NET);
    assert_int_equal(x.status, 0);
    assert_int_equal(x.got, 0);
    print_message("silent server: aborted after %.2f s\n", secs);
    assert_true(secs >= 0.9 && secs < 3.0);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

/* Slow but steady is not stalled: a byte every 400 ms with stall_seconds=1. */
static void test_steady_trickle_is_not_a_stall(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    x.check_pattern = 1;
    char url[256];
    url_for(url, sizeof url, "/trickle/8/400");
    oc_http_request r = req_for(&x, url);
    r.stall_seconds = 1;
    start(&e, &x, &r);
    run_all(&e, 20);
    if (!x.ok)
        fail_msg("steady transfer aborted: %s", x.err_msg);
    assert_int_equal(x.got, 8);
    assert_int_equal(x.pattern_errors, 0);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

/* With max_host_connections=1 the second and third transfers wait inside
 * curl for the connection; waiting for a connection slot is not a stall
 * (no byte can arrive), so they must not be aborted as stalled. Each
 * transfer takes about 2.4 s, steadily; stall_seconds is 2. */
static void test_queued_transfer_is_not_a_stall(void **state)
{
    (void)state;
    oc_http_opts opts = {.max_host_connections = 1};
    env e;
    env_init(&e, &opts);
    xfer x[3];
    char url[256];
    url_for(url, sizeof url, "/trickle/6/400");
    for (int i = 0; i < 3; i++) {
        xfer_init(&x[i], &e);
        x[i].check_pattern = 1;
        oc_http_request r = req_for(&x[i], url);
        r.stall_seconds = 2;
        start(&e, &x[i], &r);
    }
    run_all(&e, 30);
    int failed = 0;
    for (int i = 0; i < 3; i++) {
        if (!x[i].ok) {
            print_message("transfer %d: %s (curl %d)\n", i, x[i].err_msg, x[i].curl_code);
            failed++;
        } else {
            assert_int_equal(x[i].got, 6);
            assert_int_equal(x[i].pattern_errors, 0);
        }
    }
    xfer *xs[] = {&x[0], &x[1], &x[2]};
    env_close(&e, xs, 3);
    assert_int_equal(failed, 0);
}

static void test_redirect(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x, y;
    xfer_init(&x, &e);
    xfer_init(&y, &e);
    x.check_pattern = 1;
    char url[256];
    url_for(url, sizeof url, "/redirect");
    oc_http_request r = req_for(&x, url);
    r.follow_redirects = 1;
    start(&e, &x, &r);
    r = req_for(&y, url); /* not followed */
    start(&e, &y, &r);
    run_all(&e, 20);
    assert_int_equal(x.ok, 1);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.got, 1234);
    assert_int_equal(x.pattern_errors, 0);
    /* the intermediate response's headers carry its status */
    assert_non_null(find_header(&x, 302, "location"));
    assert_string_equal(find_header(&x, 302, "location"), "/bytes/1234");
    assert_string_equal(find_header(&x, 200, "content-length"), "1234");
    assert_int_equal(x.data_status, 200);
    assert_int_equal(y.ok, 1);
    assert_int_equal(y.status, 302);
    assert_int_equal(y.got, 0);
    xfer *xs[] = {&x, &y};
    env_close(&e, xs, 2);
}

static void pause_case(uint64_t size, int pause_at_call, int pause_ms, long stall_seconds)
{
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    x.check_pattern = 1;
    x.pause_at_call = pause_at_call;
    x.pause_ms = pause_ms;
    char path[64], url[256];
    snprintf(path, sizeof path, "/bytes/%llu", (unsigned long long)size);
    url_for(url, sizeof url, path);
    oc_http_request r = req_for(&x, url);
    r.stall_seconds = stall_seconds;
    start(&e, &x, &r);
    run_all(&e, 30);
    if (!x.ok)
        fail_msg("transfer failed: %s (curl %d)", x.err_msg, x.curl_code);
    assert_int_equal(x.status, 200);
    assert_true(x.pause_offset > 0); /* it did pause */
    assert_int_equal(x.data_while_paused, 0);
    assert_true(x.reoffer_checked);
    assert_true(x.reoffer_same); /* the refused bytes came again, from the same offset */
    assert_int_equal(x.got, size);
    assert_int_equal(x.body_bytes, size); /* the refused call is not counted */
    assert_int_equal(x.pattern_errors, 0);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

static void test_pause_unpause(void **state)
{
    (void)state;
    pause_case(3000000, 1, 50, 0);  /* the very first bytes */
    pause_case(3000000, 10, 50, 0); /* in the middle */
    pause_case(3000000, 3, 0, 0);   /* unpause on the next loop turn */
}

/* A consumer may hold a transfer paused longer than the stall timeout (a
 * slow disk behind the blob pipeline): a pause is not a stall. */
static void test_pause_longer_than_stall_timeout(void **state)
{
    (void)state;
    pause_case(3000000, 2, 2500, 1);
}

static void test_cancel(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    char url[256];
    url_for(url, sizeof url, "/slow");
    /* 1: cancelled right after start, before any I/O */
    xfer a;
    xfer_init(&a, &e);
    oc_http_request r = req_for(&a, url);
    start(&e, &a, &r);
    oc_http_cancel(a.t);
    oc_http_cancel(a.t); /* twice is harmless */
    /* 2: cancelled from on_data (the server then goes silent) */
    xfer b;
    xfer_init(&b, &e);
    b.cancel_at_call = 1;
    b.cancel_twice = 1;
    r = req_for(&b, url);
    start(&e, &b, &r);
    /* 3: a big transfer cancelled from on_data while bytes keep coming */
    xfer c;
    xfer_init(&c, &e);
    c.cancel_at_call = 3;
    url_for(url, sizeof url, "/bytes/50000000");
    r = req_for(&c, url);
    start(&e, &c, &r);
    run_all(&e, 20);
    xfer *all[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(all[i]->done, 1);
        assert_int_equal(all[i]->ok, 0);
        if (all[i]->err_code != OC_E_CANCELLED)
            fail_msg("transfer %d: error %d (%s), wanted OC_E_CANCELLED", i, all[i]->err_code,
                     all[i]->err_msg);
    }
    assert_int_equal(a.got, 0);
    assert_true(c.got < 50000000);
    env_close(&e, all, 3);
}

/* Cancel from a timer while the transfer waits on a silent server. */
static void on_cancel_timer(uv_timer_t *t)
{
    xfer *x = t->data;
    oc_http_cancel(x->t);
}

static void test_cancel_from_timer(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    char url[256];
    url_for(url, sizeof url, "/slow");
    oc_http_request r = req_for(&x, url);
    start(&e, &x, &r);
    uv_timer_t t;
    uv_timer_init(&e.loop, &t);
    t.data = &x;
    uv_timer_start(&t, on_cancel_timer, 300, 0);
    run_all(&e, 10);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(x.ok, 0);
    assert_int_equal(x.err_code, OC_E_CANCELLED);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.got, 10);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

/* oc_http_stop from a timer: both running transfers end as cancelled with
 * the reason, and a transfer started afterwards is refused with it. */
static void on_stop_timer(uv_timer_t *t)
{
    env *e = t->data;
    oc_http_stop(e->http, "interrupted by SIGTERM");
    xfer *late = e->late;
    char url[256];
    url_for(url, sizeof url, "/bytes/1000");
    oc_http_request r = req_for(late, url);
    oc_error err;
    oc_error_clear(&err);
    late->t = oc_http_start(e->http, &r, &err);
    assert_null(late->t);
    assert_int_equal(err.code, OC_E_CANCELLED);
    assert_string_equal(err.msg, "interrupted by SIGTERM");
}

static void test_stop(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer a, b, late;
    xfer_init(&a, &e);
    xfer_init(&b, &e);
    xfer_init(&late, &e);
    e.late = &late;
    char url[256];
    url_for(url, sizeof url, "/slow");
    oc_http_request r = req_for(&a, url);
    start(&e, &a, &r);
    url_for(url, sizeof url, "/trickle/100000/5");
    r = req_for(&b, url);
    start(&e, &b, &r);
    uv_timer_t t;
    uv_timer_init(&e.loop, &t);
    t.data = &e;
    uv_timer_start(&t, on_stop_timer, 300, 0);
    run_all(&e, 10);
    uv_close((uv_handle_t *)&t, NULL);
    xfer *all[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(all[i]->done, 1);
        assert_int_equal(all[i]->ok, 0);
        assert_int_equal(all[i]->err_code, OC_E_CANCELLED);
        assert_string_equal(all[i]->err_msg, "interrupted by SIGTERM");
    }
    assert_true(b.got > 0 && b.got < 100000);
    xfer *xs[] = {&a, &b, &late};
    env_close(&e, xs, 3);
}

static void test_connection_refused(void **state)
{
    (void)state;
    /* a port nobody listens on: bind one, note it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    int port = ntohs(a.sin_port);
    close(fd);

    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/bytes/10", port);
    oc_http_request r = req_for(&x, url);
    start(&e, &x, &r);
    run_all(&e, 20);
    assert_int_equal(x.done, 1);
    assert_int_equal(x.ok, 0);
    assert_int_equal(x.err_code, OC_E_NET);
    assert_int_equal(x.curl_code, CURLE_COULDNT_CONNECT);
    assert_int_equal(x.status, 0);
    assert_int_equal(x.data_calls, 0);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

static void test_abort_from_on_data(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    char url[256];
    url_for(url, sizeof url, "/bytes/1000000");
    xfer a, b;
    xfer_init(&a, &e);
    xfer_init(&b, &e);
    a.abort_at_call = 2;
    a.abort_code = OC_E_DIGEST;
    b.abort_at_call = 1; /* without setting an error */
    oc_http_request r = req_for(&a, url);
    start(&e, &a, &r);
    r = req_for(&b, url);
    start(&e, &b, &r);
    run_all(&e, 20);
    assert_int_equal(a.ok, 0);
    assert_int_equal(a.err_code, OC_E_DIGEST);
    assert_string_equal(a.err_msg, "consumer says no");
    assert_int_equal(b.ok, 0);
    assert_int_equal(b.err_code, OC_E_IO);
    assert_true(a.body_bytes < 1000000);
    assert_int_equal(b.body_bytes, 0);
    xfer *xs[] = {&a, &b};
    env_close(&e, xs, 2);
}

static void test_request_headers_and_agent(void **state)
{
    (void)state;
    oc_http_opts opts = {.user_agent = "occy-test/1.0"};
    env e;
    env_init(&e, &opts);
    xfer x;
    xfer_init(&x, &e);
    char body[65536];
    x.collect = body;
    char url[256];
    url_for(url, sizeof url, "/echo");
    /* the header array and its strings are the caller's: gone after start */
    char **hs = calloc(3, sizeof *hs);
    assert_non_null(hs);
    hs[0] = strdup("X-Test: hello");
    hs[1] = strdup("Accept: application/vnd.oci.image.manifest.v1+json");
    oc_http_request r = req_for(&x, url);
    r.headers = (const char *const *)hs;
    start(&e, &x, &r);
    for (int i = 0; hs[i]; i++) {
        memset(hs[i], 'Z', strlen(hs[i]));
        free(hs[i]);
    }
    free(hs);
    run_all(&e, 20);
    assert_int_equal(x.ok, 1);
    assert_non_null(strstr(body, "\r\nX-Test: hello\r\n"));
    assert_non_null(strstr(body, "\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n"));
    assert_non_null(strstr(body, "\r\nUser-Agent: occy-test/1.0\r\n"));
    assert_null(strcasestr(body, "Expect:"));
    assert_non_null(strstr(body, "GET /echo HTTP/1.1\r\n"));
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

static void test_head(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    char url[256];
    url_for(url, sizeof url, "/bytes/5000");
    oc_http_request r = req_for(&x, url);
    r.method = "HEAD";
    start(&e, &x, &r);
    run_all(&e, 20);
    assert_int_equal(x.ok, 1);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.got, 0);
    assert_int_equal(x.body_bytes, 0);
    assert_string_equal(find_header(&x, 200, "content-length"), "5000");
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

static void test_range(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    x.check_pattern = 1;
    x.offset0 = 1000;
    char url[256];
    url_for(url, sizeof url, "/range/5000");
    oc_http_request r = req_for(&x, url);
    r.range_from = 1000;
    start(&e, &x, &r);
    run_all(&e, 20);
    assert_int_equal(x.ok, 1);
    assert_int_equal(x.status, 206);
    assert_int_equal(x.got, 4000);
    assert_int_equal(x.pattern_errors, 0);
    assert_string_equal(find_header(&x, 206, "content-range"), "bytes 1000-4999/5000");
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

/* Many transfers at once: all complete, and no more than
 * max_host_connections connections are opened to the server. */
static void test_parallel_and_connection_cap(void **state)
{
    (void)state;
    enum { N = 24 };
    int accepted_before = atomic_load(&srv.accepted);
    oc_http_opts opts = {.max_host_connections = 3};
    env e;
    env_init(&e, &opts);
    xfer *x = calloc(N, sizeof *x);
    assert_non_null(x);
    char url[N][256];
    for (int i = 0; i < N; i++) {
        xfer_init(&x[i], &e);
        x[i].check_pattern = 1;
        char path[64];
        snprintf(path, sizeof path, "/bytes/%d", 100000 + i * 997);
        url_for(url[i], sizeof url[i], path);
        oc_http_request r = req_for(&x[i], url[i]);
        if (i % 5 == 0) { /* some pause once, too */
            x[i].pause_at_call = 2;
            x[i].pause_ms = 20;
        }
        start(&e, &x[i], &r);
    }
    run_all(&e, 30);
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        if (!x[i].ok)
            fail_msg("transfer %d: %s", i, x[i].err_msg);
        assert_int_equal(x[i].got, (uint64_t)(100000 + i * 997));
        assert_int_equal(x[i].pattern_errors, 0);
        total += x[i].got;
    }
    oc_http_stats st;
    oc_http_get_stats(e.http, &st);
    assert_int_equal(st.transfers, N);
    assert_true(st.bytes == total);
    print_message("%d transfers over %llu connection(s)\n", N, (unsigned long long)st.connects);
    assert_true(st.connects >= 1 && st.connects <= 3);
    assert_true(atomic_load(&srv.accepted) - accepted_before <= 3);
    xfer **xs = calloc(N, sizeof *xs);
    assert_non_null(xs);
    for (int i = 0; i < N; i++)
        xs[i] = &x[i];
    env_close(&e, xs, N);
    free(xs);
    free(x);
}

/* A transfer held paused is cancelled: on_done comes with OC_E_CANCELLED
 * although curl is not delivering anything. */
static void test_cancel_while_paused(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    x.pause_at_call = 1;
    x.pause_ms = 10000; /* never, in practice */
    char url[256];
    url_for(url, sizeof url, "/bytes/3000000");
    oc_http_request r = req_for(&x, url);
    start(&e, &x, &r);
    uv_timer_t t;
    uv_timer_init(&e.loop, &t);
    t.data = &x;
    uv_timer_start(&t, on_cancel_timer, 300, 0);
    run_all(&e, 10);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(x.done, 1);
    assert_int_equal(x.ok, 0);
    assert_int_equal(x.err_code, OC_E_CANCELLED);
    assert_int_equal(x.got, 0);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
}

/* on_done starts the next transfer (a retry, the next blob): a chain of
 * transfers, each started from the previous one's on_done. */
typedef struct chain {
    xfer x[6];
    int next;
    env *e;
    char url[256];
} chain;

static chain *the_chain;

static void on_done_chain(void *opaque, const oc_http_result *res)
{
    chain *c = the_chain;
    if (c->next < 6) {
        xfer *x = &c->x[c->next++];
        xfer_init(x, c->e);
        x->check_pattern = 1;
        oc_http_request r = req_for(x, c->url);
        r.on_done = on_done_chain;
        oc_error err;
        x->t = oc_http_start(c->e->http, &r, &err);
        if (x->t)
            c->e->remaining++;
    }
    on_done(opaque, res); /* after the next one counts, so the loop runs on */
}

static void test_start_from_on_done(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    chain *c = calloc(1, sizeof *c);
    assert_non_null(c);
    the_chain = c;
    c->e = &e;
    url_for(c->url, sizeof c->url, "/bytes/54321");
    xfer *x = &c->x[c->next++];
    xfer_init(x, &e);
    x->check_pattern = 1;
    oc_http_request r = req_for(x, c->url);
    r.on_done = on_done_chain;
    start(&e, x, &r);
    run_all(&e, 20);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(c->x[i].done, 1);
        assert_int_equal(c->x[i].ok, 1);
        assert_int_equal(c->x[i].got, 54321);
        assert_int_equal(c->x[i].pattern_errors, 0);
    }
    oc_http_stats st;
    oc_http_get_stats(e.http, &st);
    assert_int_equal(st.transfers, 6);
    assert_int_equal(st.connects, 1); /* one kept-alive connection */
    xfer *xs[6];
    for (int i = 0; i < 6; i++)
        xs[i] = &c->x[i];
    env_close(&e, xs, 6);
    free(c);
}

/* oc_http_close from inside the last transfer's on_done, with a kept-alive
 * connection open: the natural way to finish. */
static oc_http *close_target;
static void on_done_then_close(void *opaque, const oc_http_result *res)
{
    on_done(opaque, res);
    oc_http_close(close_target, NULL, NULL);
}

static void test_close_from_on_done(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    char url[256];
    url_for(url, sizeof url, "/bytes/1000");
    oc_http_request r = req_for(&x, url);
    r.on_done = on_done_then_close;
    close_target = e.http;
    start(&e, &x, &r);
    uv_timer_start(&e.dog, on_dog, 10000, 0);
    uv_run(&e.loop, UV_RUN_DEFAULT); /* must end by itself once closed */
    uv_run(&e.loop, UV_RUN_DEFAULT);
    int ended = !e.timed_out;
    uv_timer_stop(&e.dog);
    uv_close((uv_handle_t *)&e.dog, NULL);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    int left = 0;
    uv_walk(&e.loop, count_handle, &left);
    if (left)
        uv_walk(&e.loop, print_handle, NULL);
    int rc = uv_loop_close(&e.loop);
    assert_int_equal(x.ok, 1);
    assert_int_equal(x.got, 1000);
    assert_true(ended);
    assert_int_equal(left, 0);
    assert_int_equal(rc, 0);
}

/* A fresh engine closed without any transfer. */
/* ---- request bodies ---- */

typedef struct body_src {
    const unsigned char *data;
    size_t len;
    size_t pos;
    size_t piece;    /* at most this much per read */
    int pause_every; /* every Nth read has nothing yet (unpaused by a timer) */
    int reads;
    int pauses;
    int fail_at; /* this read fails */
    int can_rewind;
    int rewinds;
    int ended;
    xfer *x;
    uv_timer_t timer;
    int timer_inited;
} body_src;

static void src_unpause(uv_timer_t *t)
{
    body_src *b = t->data;
    oc_http_unpause(b->x->t);
}

static long src_read(void *opaque, oc_http_transfer *t, char *buf, size_t max, oc_error *err)
{
    body_src *b = opaque;
    assert_ptr_equal(t, b->x->t);
    b->reads++;
    if (b->fail_at && b->reads == b->fail_at) {
        oc_error_set(err, OC_E_DIGEST, "the source says its bytes are wrong");
        return OC_HTTP_READ_ABORT;
    }
    if (b->pause_every && b->reads % b->pause_every == 0) {
        b->pauses++;
        /* the second wait is longer than the stall timeout */
        uv_timer_start(&b->timer, src_unpause, b->pauses == 2 ? 1500 : 5, 0);
        return OC_HTTP_READ_PAUSE;
    }
    size_t n = b->len - b->pos;
    if (n > max)
        n = max;
    if (b->piece && n > b->piece)
        n = b->piece;
    memcpy(buf, b->data + b->pos, n);
    b->pos += n;
    return (long)n;
}

static void src_ended(void *opaque, oc_http_transfer *t)
{
    body_src *b = opaque;
    assert_ptr_equal(t, b->x->t);
    b->ended++;
}

static int src_rewind(void *opaque)
{
    body_src *b = opaque;
    if (!b->can_rewind)
        return -1;
    b->rewinds++;
    b->pos = 0;
    return 0;
}

static uint64_t sent_total;
static void count_sent(void *opaque, size_t n)
{
    (void)opaque;
    sent_total += n;
}

static void expect_sink(const xfer *x, const char *method, const unsigned char *data, size_t len)
{
    char want[128];
    snprintf(want, sizeof want, "%s %zu %016llx", method, len,
             (unsigned long long)fnv(1469598103934665603ull, data, len));
    assert_int_equal(x->ok, 1);
    assert_int_equal(x->status, 201);
    assert_string_equal(x->collect, want);
}

static unsigned char *pattern_bytes(size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = pat(i);
    return p;
}

/* A region of a file goes out as the body, read with pread: PUT sends
 * exactly those bytes, Content-Length is the region's length, on_sent and
 * sent_bytes count them. */
static void test_body_from_file_region(void **state)
{
    (void)state;
    const size_t total = 3 * 1024 * 1024 + 77, from = 1000, len = 2 * 1024 * 1024 + 5;
    unsigned char *all = pattern_bytes(total);
    char path[] = "/tmp/occy-test-body-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, all, total), (ssize_t)total);
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    char got[65536];
    x.collect = got;
    char url[256];
    url_for(url, sizeof url, "/sink");
    oc_http_body body = {.fd = fd, .offset = from, .length = len};
    oc_http_request r = req_for(&x, url);
    r.method = "PUT";
    r.body = &body;
    r.on_sent = count_sent;
    sent_total = 0;
    start(&e, &x, &r);
    run_all(&e, 20);
    expect_sink(&x, "PUT", all + from, len);
    assert_int_equal(sent_total, len);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
    close(fd);
    free(all);
}

/* Memory bodies with PATCH and POST; POST without a body sends
 * Content-Length: 0. */
static void test_body_from_memory_and_none(void **state)
{
    (void)state;
    unsigned char *data = pattern_bytes(70000);
    env e;
    env_init(&e, NULL);
    xfer a, b;
    xfer_init(&a, &e);
    xfer_init(&b, &e);
    char ga[65536], gb[65536];
    a.collect = ga;
    b.collect = gb;
    char url[256];
    url_for(url, sizeof url, "/sink");
    oc_http_body body = {.data = (const char *)data, .length = 70000};
    oc_http_request ra = req_for(&a, url);
    ra.method = "PATCH";
    ra.body = &body;
    start(&e, &a, &ra);
    oc_http_request rb = req_for(&b, url);
    rb.method = "POST";
    start(&e, &b, &rb);
    run_all(&e, 20);
    expect_sink(&a, "PATCH", data, 70000);
    expect_sink(&b, "POST", data, 0);
    xfer *xs[] = {&a, &b};
    env_close(&e, xs, 2);
    free(data);
}

/* A stream body that often has nothing yet: the transfer pauses (not a
 * stall, even past stall_seconds) and goes on when unpaused. */
static void test_body_stream_with_pauses(void **state)
{
    (void)state;
    const size_t len = 600000;
    unsigned char *data = pattern_bytes(len);
    env e;
    env_init(&e, NULL);
    xfer x;
    xfer_init(&x, &e);
    char got[65536];
    x.collect = got;
    body_src src = {.data = data, .len = len, .piece = 20000, .pause_every = 3, .x = &x};
    uv_timer_init(&e.loop, &src.timer);
    src.timer.data = &src;
    char url[256];
    url_for(url, sizeof url, "/sink");
    oc_http_body body = {.length = len, .read = src_read, .ended = src_ended, .opaque = &src};
    oc_http_request r = req_for(&x, url);
    r.method = "PATCH";
    r.body = &body;
    r.stall_seconds = 1;
    start(&e, &x, &r);
    run_all(&e, 20);
    expect_sink(&x, "PATCH", data, len);
    assert_true(src.pauses > 5);
    assert_int_equal(src.ended, 1);
    uv_close((uv_handle_t *)&src.timer, NULL);
    xfer *xs[] = {&x};
    env_close(&e, xs, 1);
    free(data);
}

/* A 307 makes curl send the body again: a file rewinds by itself, a
 * stream with a rewind is rewound, one without fails the transfer. */
static void test_body_sent_again_after_redirect(void **state)
{
    (void)state;
    const size_t len = 300000;
    unsigned char *data = pattern_bytes(len);
    char path[] = "/tmp/occy-test-body-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    env e;
    env_init(&e, NULL);
    xfer a, b, c;
    xfer_init(&a, &e);
    xfer_init(&b, &e);
    xfer_init(&c, &e);
    char ga[65536], gb[65536], gc[65536];
    a.collect = ga;
    b.collect = gb;
    c.collect = gc;
    char url[256];
    url_for(url, sizeof url, "/sink-redirect");
    oc_http_body fbody = {.fd = fd, .length = len};
    oc_http_request ra = req_for(&a, url);
    ra.method = "PUT";
    ra.body = &fbody;
    ra.follow_redirects = 1;
    start(&e, &a, &ra);
    body_src sb = {.data = data, .len = len, .can_rewind = 1, .x = &b};
    body_src sc = {.data = data, .len = len, .can_rewind = 0, .x = &c};
    oc_http_body bb = {.length = len, .read = src_read, .rewind = src_rewind, .opaque = &sb};
    oc_http_body bc = {.length = len, .read = src_read, .rewind = src_rewind, .opaque = &sc};
    oc_http_request rb = req_for(&b, url);
    rb.method = "PUT";
    rb.body = &bb;
    rb.follow_redirects = 1;
    start(&e, &b, &rb);
    oc_http_request rc = req_for(&c, url);
    rc.method = "PUT";
    rc.body = &bc;
    rc.follow_redirects = 1;
    start(&e, &c, &rc);
    run_all(&e, 20);
    expect_sink(&a, "PUT", data, len);
    expect_sink(&b, "PUT", data, len);
    assert_int_equal(sb.rewinds, 1);
    assert_int_equal(c.ok, 0);
    assert_int_equal(c.err_code, OC_E_NET);
    xfer *xs[] = {&a, &b, &c};
    env_close(&e, xs, 3);
    close(fd);
    free(data);
}

/* A stream that refuses its bytes, and a file shorter than its region: the
 * transfer ends with that error; a connection dropped while the body goes
 * out is a network error. */
static void test_body_errors(void **state)
{
    (void)state;
    const size_t len = 500000;
    unsigned char *data = pattern_bytes(len);
    char path[] = "/tmp/occy-test-body-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, data, 1000), 1000);
    env e;
    env_init(&e, NULL);
    xfer a, b, c;
    xfer_init(&a, &e);
    xfer_init(&b, &e);
    xfer_init(&c, &e);
    char url[256], cut[256];
    url_for(url, sizeof url, "/sink");
    url_for(cut, sizeof cut, "/sink-cut/100000");
    body_src sa = {.data = data, .len = len, .piece = 10000, .fail_at = 4, .x = &a};
    oc_http_body ba = {.length = len, .read = src_read, .opaque = &sa};
    oc_http_request ra = req_for(&a, url);
    ra.method = "PATCH";
    ra.body = &ba;
    start(&e, &a, &ra);
    oc_http_body bb = {.fd = fd, .length = len};
    oc_http_request rb = req_for(&b, url);
    rb.method = "PUT";
    rb.body = &bb;
    start(&e, &b, &rb);
    oc_http_body bc = {.data = (const char *)data, .length = len};
    oc_http_request rc = req_for(&c, cut);
    rc.method = "PATCH";
    rc.body = &bc;
    start(&e, &c, &rc);
    run_all(&e, 20);
    assert_int_equal(a.ok, 0);
    assert_int_equal(a.err_code, OC_E_DIGEST);
    assert_non_null(strstr(a.err_msg, "the source says its bytes are wrong"));
    assert_int_equal(b.ok, 0);
    assert_int_equal(b.err_code, OC_E_IO);
    assert_non_null(strstr(b.err_msg, "ended"));
    assert_int_equal(c.ok, 0);
    assert_int_equal(c.err_code, OC_E_NET);
    xfer *xs[] = {&a, &b, &c};
    env_close(&e, xs, 3);
    close(fd);
    free(data);
}

static void test_close_unused(void **state)
{
    (void)state;
    env e;
    env_init(&e, NULL);
    env_close(&e, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_body),
        cmocka_unit_test(test_header_names_lower_case),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_connection_cut_mid_body),
        cmocka_unit_test(test_stall_detected),
        cmocka_unit_test(test_stall_detected_promptly),
        cmocka_unit_test(test_stall_without_any_answer),
        cmocka_unit_test(test_steady_trickle_is_not_a_stall),
        cmocka_unit_test(test_queued_transfer_is_not_a_stall),
        cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_pause_unpause),
        cmocka_unit_test(test_pause_longer_than_stall_timeout),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_cancel_from_timer),
        cmocka_unit_test(test_cancel_while_paused),
        cmocka_unit_test(test_start_from_on_done),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_abort_from_on_data),
        cmocka_unit_test(test_request_headers_and_agent),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_parallel_and_connection_cap),
        cmocka_unit_test(test_close_from_on_done),
        cmocka_unit_test(test_body_from_file_region),
        cmocka_unit_test(test_body_from_memory_and_none),
        cmocka_unit_test(test_body_stream_with_pauses),
        cmocka_unit_test(test_body_sent_again_after_redirect),
        cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_close_unused),
    };
    /* OCCY_TEST_FILTER=test_x runs a subset (handy under valgrind) */
    if (getenv("OCCY_TEST_FILTER"))
        cmocka_set_test_filter(getenv("OCCY_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
