/* blobpipe.c - per-blob pipeline on worker strands (see blobpipe.h).
 *
 * Ownership and locking:
 *   loop thread    p->filling, p->received, submitting chunks and controls
 *   digest strand  p->h_comp, p->comp_bytes, res.compressed_*
 *   inflate strand p->inf, p->stream_*, res.comp/stream_*; posts to write
 *   write strand   p->fd, p->h_tar, p->written, res.diff_*
 *   p->lock        free lists, allocation counts, paused, pending,
 *                  finish_refs, local failure, released
 *   ctx->lock      the event list and each pipe's event flags
 * Control messages (reset, finish) travel through the strands in order with
 * the data, so "start over" and "end" apply exactly after the bytes before
 * them. pending counts posted tasks; a released pipe is freed on the loop
 * thread when it reaches zero and its strands are idle. */
#include "io/blobpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomicfile.h"
#include "io/workq.h"

enum { MSG_DATA, MSG_RESET, MSG_FINISH, MSG_PRELOAD };
enum { EV_WRITABLE = 1, EV_FINISHED = 2, EV_FREE = 4 };

typedef struct in_chunk {
    oc_task t_digest;
    oc_task t_inflate;
    oc_blobpipe *p;
    int kind;
    uint64_t preload; /* MSG_PRELOAD: bytes of the partial file to replay */
    int refs;         /* strands still reading it (p->lock) */
    int pooled;
    size_t len, cap;
    unsigned char *buf;
    struct in_chunk *next_free;
} in_chunk;

typedef struct out_buf {
    oc_task t;
    oc_blobpipe *p;
    int kind;
    int pooled;
    size_t len, cap;
    unsigned char *buf;
    struct out_buf *next_free;
} out_buf;

struct oc_blobpipe_ctx {
    uv_loop_t *loop;
    uv_async_t async;
    void (*closed)(void *opaque); /* oc_blobpipe_ctx_close's callback */
    void *closed_opaque;
    oc_workq *pool_read;  /* digest and inflate strands */
    oc_workq *pool_write; /* write strands */
    size_t chunk_size;
    int in_chunks;
    int out_bufs;
    pthread_mutex_t lock;
    oc_blobpipe *events; /* pipes with event flags set */
    int closing;
    int live; /* pipes not yet destroyed (loop thread): the async handle keeps
                 the loop running only while there are some */
};

struct oc_blobpipe {
    oc_blobpipe_ctx *ctx;
    char *label;
    char *path;
    int fd;
    int fd_borrowed; /* fd belongs to the caller (oc_blobpipe_set_output) */
    uint64_t base;   /* where the tar starts in fd */
    int taken;
    int no_sync;
    oc_blobpipe_cbs cbs;
    oc_strand s_digest, s_inflate, s_write;
    size_t cap;

    /* loop thread */
    in_chunk *filling;
    uint64_t received;

    /* p->lock */
    pthread_mutex_t lock;
    pthread_cond_t out_free_cond;
    in_chunk *free_in;
    int in_alloc, in_max;
    out_buf *free_out;
    int out_alloc, out_max;
    int paused;
    int pending;
    int finish_refs;
    int local_failed;
    oc_error local_err;
    int released;

    /* ctx->lock */
    int ev_flags;
    int on_event_list;
    oc_blobpipe *next_event;

    /* strands */
    oc_sha256 *h_comp;
    uint64_t comp_bytes;
    int partial_fd; /* compressed bytes kept for a later run (digest strand), or -1 */
    char *partial_path;
    int keep_required; /* the kept copy is the caller's result: failing to write it fails */
    int digest_only;   /* the compressed bytes are hashed (and kept), not inflated */
    oc_inflater *inf;
    int stream_failed;
    oc_sha256 *h_tar;
    uint64_t written;
    oc_blob_result res;
};

/* ---- events to the loop ---- */

static void notify(oc_blobpipe *p, int flag)
{
    oc_blobpipe_ctx *ctx = p->ctx;
    pthread_mutex_lock(&ctx->lock);
    p->ev_flags |= flag;
    if (!p->on_event_list) {
        p->on_event_list = 1;
        p->next_event = ctx->events;
        ctx->events = p;
    }
    pthread_mutex_unlock(&ctx->lock);
    uv_async_send(&ctx->async);
}

static void pipe_destroy(oc_blobpipe *p)
{
    if (--p->ctx->live == 0)
        uv_unref((uv_handle_t *)&p->ctx->async);
    if (!p->ctx->closing) { /* when closing, the pools have been joined */
        oc_strand_wait_idle(&p->s_digest);
        oc_strand_wait_idle(&p->s_inflate);
        oc_strand_wait_idle(&p->s_write);
    }
    while (p->free_in) {
        in_chunk *c = p->free_in;
        p->free_in = c->next_free;
        free(c->buf);
        free(c);
    }
    if (p->filling) {
        free(p->filling->buf);
        free(p->filling);
    }
    while (p->free_out) {
        out_buf *o = p->free_out;
        p->free_out = o->next_free;
        free(o->buf);
        free(o);
    }
    if (p->fd >= 0 && !p->fd_borrowed)
        close(p->fd);
    if (p->partial_fd >= 0)
        close(p->partial_fd);
    free(p->partial_path);
    if (p->path && !p->taken)
        unlink(p->path);
    oc_sha256_free(p->h_comp);
    oc_sha256_free(p->h_tar);
    oc_inflater_free(p->inf);
    pthread_cond_destroy(&p->out_free_cond);
    pthread_mutex_destroy(&p->lock);
    free(p->path);
    free(p->label);
    free(p);
}

/* Pipes are taken off the event list one at a time under the lock, so a
 * callback that releases another pipe (or this one) never leaves a freed
 * pipe on a list being walked: a release only sets EV_FREE, and the pipe is
 * freed here when its turn comes. */
static void on_async(uv_async_t *async)
{
    oc_blobpipe_ctx *ctx = async->data;
    for (;;) {
        pthread_mutex_lock(&ctx->lock);
        oc_blobpipe *p = ctx->events;
        if (!p) {
            pthread_mutex_unlock(&ctx->lock);
            break;
        }
        ctx->events = p->next_event;
        p->on_event_list = 0;
        int flags = p->ev_flags;
        p->ev_flags = 0;
        pthread_mutex_unlock(&ctx->lock);
        if (flags & EV_FREE) {
            pipe_destroy(p);
            continue;
        }
        pthread_mutex_lock(&p->lock);
        int released = p->released;
        int failed = p->local_failed;
        oc_error local = p->local_err;
        pthread_mutex_unlock(&p->lock);
        if (released)
            continue;
        if ((flags & EV_WRITABLE) && p->cbs.on_writable)
            p->cbs.on_writable(p->cbs.opaque);
        if ((flags & EV_FINISHED) && p->cbs.on_finished)
            p->cbs.on_finished(p->cbs.opaque, failed ? NULL : &p->res, failed ? &local : NULL);
    }
}

/* Every task ends here: the last one of a released pipe hands it to the
 * loop thread for freeing. */
static void task_end(oc_blobpipe *p)
{
    pthread_mutex_lock(&p->lock);
    int free_now = --p->pending == 0 && p->released;
    pthread_mutex_unlock(&p->lock);
    if (free_now)
        notify(p, EV_FREE);
}

static void local_fail(oc_blobpipe *p, const oc_error *err)
{
    pthread_mutex_lock(&p->lock);
    if (!p->local_failed) {
        p->local_failed = 1;
        p->local_err = *err;
        oc_error_prefix(&p->local_err, "%s", p->label);
    }
    pthread_mutex_unlock(&p->lock);
}

static int has_local_failure(oc_blobpipe *p)
{
    pthread_mutex_lock(&p->lock);
    int f = p->local_failed || p->released;
    pthread_mutex_unlock(&p->lock);
    return f;
}

static void finish_ref_done(oc_blobpipe *p)
{
    pthread_mutex_lock(&p->lock);
    int done = --p->finish_refs == 0;
    pthread_mutex_unlock(&p->lock);
    if (done)
        notify(p, EV_FINISHED);
}

/* ---- input chunks ---- */

static void chunk_put(in_chunk *c)
{
    oc_blobpipe *p = c->p;
    int writable = 0;
    pthread_mutex_lock(&p->lock);
    if (--c->refs == 0) {
        if (c->pooled) {
            c->next_free = p->free_in;
            p->free_in = c;
            if (p->paused) {
                p->paused = 0;
                writable = 1;
            }
        } else {
            free(c);
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (writable)
        notify(p, EV_WRITABLE);
}

/* ---- write strand ---- */

static void out_put(out_buf *o)
{
    oc_blobpipe *p = o->p;
    if (!o->pooled) {
        free(o);
        return;
    }
    pthread_mutex_lock(&p->lock);
    o->next_free = p->free_out;
    p->free_out = o;
    pthread_cond_signal(&p->out_free_cond);
    pthread_mutex_unlock(&p->lock);
}

static void run_write(oc_task *t)
{
    out_buf *o = (out_buf *)t;
    oc_blobpipe *p = o->p;
    oc_error err;
    oc_error_clear(&err);
    switch (o->kind) {
    case MSG_DATA:
        if (!has_local_failure(p)) {
            oc_sha256_update(p->h_tar, o->buf, o->len);
            if (oc_pwrite_all(p->fd, o->buf, o->len, p->base + p->written, p->label, &err) != 0)
                local_fail(p, &err);
            else
                p->written += o->len;
        }
        break;
    case MSG_RESET:
        if (p->fd >= 0 && ftruncate(p->fd, (off_t)p->base) != 0) {
            oc_error_errno(&err, errno, "%s: cannot truncate its output", p->label);
            local_fail(p, &err);
        }
        oc_sha256_reset(p->h_tar);
        p->written = 0;
        break;
    case MSG_FINISH:
        if (p->fd >= 0 && !p->no_sync && !has_local_failure(p) && fsync(p->fd) != 0) {
            oc_error_errno(&err, errno, "fsync %s", p->path ? p->path : "layer output");
            local_fail(p, &err);
        }
        oc_sha256_final_hex(p->h_tar, p->res.diff_hex);
        p->res.diff_size = p->written;
        out_put(o);
        finish_ref_done(p);
        task_end(p);
        return;
    }
    out_put(o);
    task_end(p);
}

static void post_write(oc_blobpipe *p, out_buf *o)
{
    o->t.run = run_write;
    pthread_mutex_lock(&p->lock);
    p->pending++;
    pthread_mutex_unlock(&p->lock);
    oc_strand_post(&p->s_write, &o->t);
}

static out_buf *control_out(oc_blobpipe *p, int kind)
{
    out_buf *o = calloc(1, sizeof *o);
    if (o) {
        o->p = p;
        o->kind = kind;
    }
    return o;
}

/* ---- replaying a partial file ---- */

/* Feed the first n bytes of the partial file to the digest strand's hash
 * (inflate = 0) or to the inflater (inflate = 1), as if they had just
 * arrived. Each strand reads the file itself (the page cache serves both). */
static void replay_partial(oc_blobpipe *p, uint64_t n, int inflate)
{
    int fd = open(p->partial_path, O_RDONLY | O_CLOEXEC);
    unsigned char *buf = malloc(p->ctx->chunk_size);
    uint64_t done = 0;
    oc_error err;
    oc_error_clear(&err);
    while (fd >= 0 && buf && done < n) {
        size_t want = n - done < p->ctx->chunk_size ? (size_t)(n - done) : p->ctx->chunk_size;
        ssize_t got = pread(fd, buf, want, (off_t)done);
        if (got <= 0)
            break;
        if (inflate) {
            if (!p->stream_failed &&
                oc_inflater_feed(p->inf, buf, (size_t)got, &p->res.stream_err) != 0)
                p->stream_failed = 1;
        } else {
            oc_sha256_update(p->h_comp, buf, (size_t)got);
        }
        done += (uint64_t)got;
    }
    if (!inflate)
        p->comp_bytes = done;
    if (done < n) {
        /* the file vanished or shrank under us: what follows will not match
         * the digest, and the verification retries the blob from scratch */
        if (inflate) {
            p->stream_failed = 1;
            oc_error_set(&p->res.stream_err, OC_E_IO, "%s: partial file %s shorter than recorded",
                         p->label, p->partial_path);
        }
    }
    free(buf);
    if (fd >= 0)
        close(fd);
}

/* ---- inflate strand ---- */

/* The inflater's output: copied into a free output buffer (waiting for the
 * write strand to free one when all are in use) and posted for writing. */
static int inflate_sink(void *opaque, const void *data, size_t len, oc_error *err)
{
    oc_blobpipe *p = opaque;
    const unsigned char *src = data;
    while (len > 0) {
        pthread_mutex_lock(&p->lock);
        out_buf *o = NULL;
        for (;;) {
            if (p->released) {
                pthread_mutex_unlock(&p->lock);
                oc_error_set(err, OC_E_CANCELLED, "%s: abandoned", p->label);
                return -1;
            }
            if (p->free_out) {
                o = p->free_out;
                p->free_out = o->next_free;
                break;
            }
            if (p->out_alloc < p->out_max) {
                p->out_alloc++;
                break;
            }
            pthread_cond_wait(&p->out_free_cond, &p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        if (!o) {
            o = calloc(1, sizeof *o);
            unsigned char *buf = o ? malloc(p->ctx->chunk_size) : NULL;
            if (!buf) {
                free(o);
                pthread_mutex_lock(&p->lock);
                p->out_alloc--;
                pthread_mutex_unlock(&p->lock);
                oc_error_set(err, OC_E_NOMEM, "%s: out of memory", p->label);
                return -1;
            }
            o->buf = buf;
            o->cap = p->ctx->chunk_size;
            o->p = p;
            o->pooled = 1;
        }
        o->kind = MSG_DATA;
        o->len = len < o->cap ? len : o->cap;
        memcpy(o->buf, src, o->len);
        src += o->len;
        len -= o->len;
        post_write(p, o);
    }
    return 0;
}

static void run_inflate(oc_task *t)
{
    in_chunk *c = (in_chunk *)((char *)t - offsetof(in_chunk, t_inflate));
    oc_blobpipe *p = c->p;
    switch (c->kind) {
    case MSG_DATA:
        if (!p->digest_only && !p->stream_failed &&
            oc_inflater_feed(p->inf, c->buf, c->len, &p->res.stream_err) != 0)
            p->stream_failed = 1;
        break;
    case MSG_PRELOAD:
        if (!p->digest_only)
            replay_partial(p, c->preload, 1);
        break;
    case MSG_RESET: {
        oc_inflater_reset(p->inf);
        p->stream_failed = 0;
        oc_error_clear(&p->res.stream_err);
        out_buf *o = control_out(p, MSG_RESET);
        if (o) {
            post_write(p, o);
        } else {
            oc_error err;
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
            local_fail(p, &err);
        }
        break;
    }
    case MSG_FINISH: {
        if (!p->digest_only && !p->stream_failed &&
            oc_inflater_finish(p->inf, &p->res.stream_err) != 0)
            p->stream_failed = 1;
        p->res.stream_ok = !p->stream_failed;
        p->res.comp = oc_inflater_comp(p->inf);
        if (p->stream_failed)
            oc_error_prefix(&p->res.stream_err, "%s", p->label);
        out_buf *o = control_out(p, MSG_FINISH);
        if (o) {
            post_write(p, o);
        } else {
            oc_error err;
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
            local_fail(p, &err);
            finish_ref_done(p);
        }
        break;
    }
    }
    chunk_put(c);
    task_end(p);
}

/* ---- digest strand ---- */

/* The kept copy of the compressed bytes could not be written (err says
 * why): a partial copy for a later resume is best effort and is dropped; a
 * required copy (oc_blobpipe_keep_compressed) fails the blob. */
static void kept_copy_failed(oc_blobpipe *p, const oc_error *err)
{
    if (p->keep_required)
        local_fail(p, err);
    close(p->partial_fd);
    p->partial_fd = -1;
    unlink(p->partial_path);
}

static void run_digest(oc_task *t)
{
    in_chunk *c = (in_chunk *)((char *)t - offsetof(in_chunk, t_digest));
    oc_blobpipe *p = c->p;
    oc_error err;
    switch (c->kind) {
    case MSG_DATA:
        oc_sha256_update(p->h_comp, c->buf, c->len);
        if (p->partial_fd >= 0 &&
            oc_pwrite_all(p->partial_fd, c->buf, c->len, p->comp_bytes, p->partial_path, &err) != 0)
            kept_copy_failed(p, &err);
        p->comp_bytes += c->len;
        break;
    case MSG_RESET:
        oc_sha256_reset(p->h_comp);
        p->comp_bytes = 0;
        if (p->partial_fd >= 0 && ftruncate(p->partial_fd, 0) != 0) {
            oc_error_errno(&err, errno, "cannot truncate %s", p->partial_path);
            kept_copy_failed(p, &err);
        }
        break;
    case MSG_PRELOAD:
        replay_partial(p, c->preload, 0);
        break;
    case MSG_FINISH:
        oc_sha256_final_hex(p->h_comp, p->res.compressed_hex);
        p->res.compressed_size = p->comp_bytes;
        /* a required copy is durable before the blob is reported done */
        if (p->keep_required && p->partial_fd >= 0 && !has_local_failure(p) &&
            fsync(p->partial_fd) != 0) {
            oc_error_errno(&err, errno, "fsync %s", p->partial_path);
            kept_copy_failed(p, &err);
        }
        chunk_put(c);
        finish_ref_done(p);
        task_end(p);
        return;
    }
    chunk_put(c);
    task_end(p);
}

/* ---- loop thread ---- */

static void post_chunk(oc_blobpipe *p, in_chunk *c)
{
    c->t_digest.run = run_digest;
    c->t_inflate.run = run_inflate;
    pthread_mutex_lock(&p->lock);
    c->refs = 2;
    p->pending += 2;
    pthread_mutex_unlock(&p->lock);
    oc_strand_post(&p->s_digest, &c->t_digest);
    oc_strand_post(&p->s_inflate, &c->t_inflate);
}

static int post_control(oc_blobpipe *p, int kind)
{
    in_chunk *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->p = p;
    c->kind = kind;
    post_chunk(p, c);
    return 0;
}

/* A free or new input chunk; NULL when none may be had (caller checked). */
static in_chunk *chunk_get(oc_blobpipe *p)
{
    pthread_mutex_lock(&p->lock);
    in_chunk *c = p->free_in;
    if (c) {
        p->free_in = c->next_free;
        pthread_mutex_unlock(&p->lock);
    } else {
        p->in_alloc++;
        pthread_mutex_unlock(&p->lock);
        c = calloc(1, sizeof *c);
        unsigned char *buf = c ? malloc(p->cap) : NULL;
        if (!buf) {
            free(c);
            pthread_mutex_lock(&p->lock);
            p->in_alloc--;
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        c->buf = buf;
        c->cap = p->cap;
        c->p = p;
        c->pooled = 1;
    }
    c->kind = MSG_DATA;
    c->len = 0;
    return c;
}

int oc_blobpipe_write(oc_blobpipe *p, const void *data, size_t len, oc_error *err)
{
    const unsigned char *src = data;
    size_t room = p->filling ? p->filling->cap - p->filling->len : 0;
    pthread_mutex_lock(&p->lock);
    if (p->local_failed) {
        *err = p->local_err;
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    if (len > room) {
        size_t need = (len - room + p->cap - 1) / p->cap;
        /* a write larger than the whole pool waits only until the pool is
         * idle, then grows it for this once (curl hands over at most its
         * buffer size at a time, so this stays bounded) */
        size_t most = (size_t)p->in_max - (p->filling ? 1 : 0); /* that can ever be free */
        if (need > most)
            need = most;
        size_t have = p->in_alloc < p->in_max ? (size_t)(p->in_max - p->in_alloc) : 0;
        for (in_chunk *c = p->free_in; c && have < need; c = c->next_free)
            have++;
        if (have < need) {
            p->paused = 1;
            pthread_mutex_unlock(&p->lock);
            return 1;
        }
    }
    pthread_mutex_unlock(&p->lock);
    while (len > 0) {
        if (!p->filling && !(p->filling = chunk_get(p))) {
            oc_error_set(err, OC_E_NOMEM, "%s: out of memory", p->label);
            return -1;
        }
        in_chunk *c = p->filling;
        size_t take = c->cap - c->len < len ? c->cap - c->len : len;
        memcpy(c->buf + c->len, src, take);
        c->len += take;
        src += take;
        len -= take;
        p->received += take;
        if (c->len == c->cap) {
            p->filling = NULL;
            post_chunk(p, c);
        }
    }
    return 0;
}

int oc_blobpipe_restart(oc_blobpipe *p, uint64_t offset, oc_error *err)
{
    if (offset == p->received)
        return 0;
    if (offset != 0) {
        oc_error_set(err, OC_E_NET, "%s: cannot continue at byte %llu, %llu bytes were received",
                     p->label, (unsigned long long)offset, (unsigned long long)p->received);
        return -1;
    }
    if (p->filling)
        p->filling->len = 0;
    p->received = 0;
    if (post_control(p, MSG_RESET) != 0) {
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", p->label);
        return -1;
    }
    return 0;
}

uint64_t oc_blobpipe_received(const oc_blobpipe *p)
{
    return p->received;
}

void oc_blobpipe_finish(oc_blobpipe *p)
{
    if (p->filling && p->filling->len > 0) {
        in_chunk *c = p->filling;
        p->filling = NULL;
        post_chunk(p, c);
    }
    pthread_mutex_lock(&p->lock);
    p->finish_refs = 2; /* the digest strand and the write strand */
    pthread_mutex_unlock(&p->lock);
    if (post_control(p, MSG_FINISH) != 0) {
        oc_error err;
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        local_fail(p, &err);
        notify(p, EV_FINISHED);
    }
}

/* Open path for the compressed copy; a prefix already there (shorter than
 * max) is replayed and its length returned. -1 (errno set) when the file
 * cannot be opened or emptied. */
static int64_t keep_open(oc_blobpipe *p, const char *path, uint64_t max)
{
    free(p->partial_path);
    p->partial_path = strdup(path);
    if (!p->partial_path) {
        errno = ENOMEM;
        return -1;
    }
    p->partial_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (p->partial_fd < 0)
        return -1;
    struct stat st;
    uint64_t have = fstat(p->partial_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (have == 0 || have >= max || p->received != 0) {
        if (have != 0 && ftruncate(p->partial_fd, 0) != 0) {
            int e = errno;
            close(p->partial_fd);
            p->partial_fd = -1;
            errno = e;
            return -1;
        }
        return 0;
    }
    in_chunk *c = calloc(1, sizeof *c);
    if (!c) {
        (void)ftruncate(p->partial_fd, 0);
        return 0;
    }
    c->p = p;
    c->kind = MSG_PRELOAD;
    c->preload = have;
    post_chunk(p, c);
    p->received = have;
    return (int64_t)have;
}

uint64_t oc_blobpipe_keep_partial(oc_blobpipe *p, const char *path, uint64_t max)
{
    int64_t have = keep_open(p, path, max);
    return have > 0 ? (uint64_t)have : 0;
}

int oc_blobpipe_keep_compressed(oc_blobpipe *p, const char *path, uint64_t max, uint64_t *resumed,
                                oc_error *err)
{
    p->keep_required = 1;
    int64_t have = keep_open(p, path, max);
    if (have < 0) {
        oc_error_errno(err, errno, "%s: cannot keep its compressed bytes in %s", p->label, path);
        return -1;
    }
    *resumed = (uint64_t)have;
    return 0;
}

void oc_blobpipe_set_digest_only(oc_blobpipe *p)
{
    p->digest_only = 1;
    if (p->fd >= 0 && !p->fd_borrowed)
        close(p->fd);
    p->fd = -1;
    if (p->path)
        unlink(p->path);
    free(p->path);
    p->path = NULL;
}

void oc_blobpipe_drop_partial(oc_blobpipe *p)
{
    if (p->partial_path)
        unlink(p->partial_path);
}

int oc_blobpipe_set_output(oc_blobpipe *p, int fd, uint64_t base, oc_error *err)
{
    if (p->received != 0 || p->fd_borrowed) {
        oc_error_set(err, OC_E_USAGE, "%s: output set after bytes arrived", p->label);
        return -1;
    }
    if (p->fd >= 0)
        close(p->fd);
    if (p->path)
        unlink(p->path);
    free(p->path);
    p->path = NULL;
    p->fd = fd;
    p->fd_borrowed = 1;
    p->base = base;
    return 0;
}

void oc_blobpipe_set_no_sync(oc_blobpipe *p, int no_sync)
{
    p->no_sync = no_sync;
}

char *oc_blobpipe_take_file(oc_blobpipe *p)
{
    p->taken = 1;
    return p->path ? strdup(p->path) : NULL;
}

void oc_blobpipe_release(oc_blobpipe *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->released = 1;
    pthread_cond_broadcast(&p->out_free_cond);
    int free_now = p->pending == 0;
    pthread_mutex_unlock(&p->lock);
    if (free_now)
        notify(p, EV_FREE); /* freed from the loop's event handler, never under a caller */
}

oc_blobpipe *oc_blobpipe_new(oc_blobpipe_ctx *ctx, const char *tmp_dir, const char *label,
                             oc_comp comp, uint64_t size_hint, uint64_t max_out,
                             const oc_blobpipe_cbs *cbs, oc_error *err)
{
    oc_blobpipe *p = calloc(1, sizeof *p);
    if (!p) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    p->ctx = ctx;
    p->fd = -1;
    p->partial_fd = -1;
    p->cbs = *cbs;
    if (ctx->live++ == 0)
        uv_ref((uv_handle_t *)&ctx->async);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->out_free_cond, NULL);
    oc_strand_init(&p->s_digest, ctx->pool_read);
    oc_strand_init(&p->s_inflate, ctx->pool_read);
    oc_strand_init(&p->s_write, ctx->pool_write);
    p->in_max = ctx->in_chunks;
    p->out_max = ctx->out_bufs;
    p->cap = ctx->chunk_size;
    if (size_hint > 0 && size_hint < p->cap)
        p->cap = size_hint < 4096 ? 4096 : (size_t)size_hint;
    p->label = strdup(label);
    if (asprintf(&p->path, "%s/layer-XXXXXX", tmp_dir) < 0)
        p->path = NULL;
    p->h_comp = oc_sha256_new();
    p->h_tar = oc_sha256_new();
    p->inf = oc_inflater_new(comp, inflate_sink, p, max_out);
    if (!p->label || !p->path || !p->h_comp || !p->h_tar || !p->inf) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        pipe_destroy(p);
        return NULL;
    }
    p->fd = mkostemp(p->path, O_CLOEXEC);
    if (p->fd < 0) {
        oc_error_errno(err, errno, "cannot create a temporary file in %s", tmp_dir);
        free(p->path);
        p->path = NULL;
        pipe_destroy(p);
        return NULL;
    }
    return p;
}

/* ---- context ---- */

oc_blobpipe_ctx *oc_blobpipe_ctx_new(uv_loop_t *loop, const oc_blobpipe_opts *opts, oc_error *err)
{
    oc_blobpipe_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    ctx->loop = loop;
    ctx->chunk_size = opts && opts->chunk_size ? opts->chunk_size : (size_t)1 << 20;
    ctx->in_chunks = opts && opts->in_chunks > 0 ? opts->in_chunks : 4;
    ctx->out_bufs = opts && opts->out_bufs > 0 ? opts->out_bufs : 2;
    int threads = opts ? opts->threads : 0;
    ctx->pool_read = oc_workq_new(threads, "pipe-read");
    ctx->pool_write = oc_workq_new(threads, "pipe-write");
    if (!ctx->pool_read || !ctx->pool_write) {
        oc_workq_free(ctx->pool_read);
        oc_workq_free(ctx->pool_write);
        free(ctx);
        oc_error_set(err, OC_E_NOMEM, "cannot start the worker threads");
        return NULL;
    }
    pthread_mutex_init(&ctx->lock, NULL);
    uv_async_init(loop, &ctx->async, on_async);
    ctx->async.data = ctx;
    uv_unref((uv_handle_t *)&ctx->async);
    return ctx;
}

static void ctx_closed(uv_handle_t *h)
{
    oc_blobpipe_ctx *ctx = h->data;
    void (*closed)(void *) = ctx->closed;
    void *opaque = ctx->closed_opaque;
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
    if (closed)
        closed(opaque);
}

void oc_blobpipe_ctx_close(oc_blobpipe_ctx *ctx, void (*closed)(void *opaque), void *opaque)
{
    if (!ctx)
        return;
    ctx->closed = closed;
    ctx->closed_opaque = opaque;
    /* released pipes drain; then run their frees */
    oc_workq_free(ctx->pool_read);
    oc_workq_free(ctx->pool_write);
    ctx->pool_read = ctx->pool_write = NULL;
    ctx->closing = 1;
    on_async(&ctx->async);
    uv_close((uv_handle_t *)&ctx->async, ctx_closed);
}
