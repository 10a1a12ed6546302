/* blobpipe.c - per-blob pipeline on worker strands (see blobpipe.h).
 *
 * Strands of a blob, and their pools:
 *   cpu pool  inflate  the decoder, writing into output buffers it borrows
 *             hash     SHA-256 of the compressed bytes and of the tar
 *   io pool   write    the tar into its file (oc_outfile: direct I/O or
 *                      writeback as it goes)
 *             keep     the compressed bytes into the partial file, if kept
 * An input chunk is read by inflate (and keep) at once, then by hash; an
 * output buffer by hash and write at once; each returns to its blob's free
 * list when its last reader is done (a reference count).
 *
 * Both hashes are on one strand so that they can run together: SHA-256 is a
 * chain whose single stream leaves most of the core's SHA unit idle, and two
 * streams interleaved (oc_sha256_update_pair) take little more time than
 * one. The inflate strand hands each input chunk on to the hash strand when
 * it has decoded it, so a chunk reaches the hash strand after the tar it
 * became; the hash strand holds the newest chunk (one at most) and hashes it
 * together with the tar buffers that come next, and alone when anything
 * else comes first. Holding one chunk cannot stall the blob: a paused loop
 * is woken by the next chunk that comes back, and when the held one is the
 * only chunk out, the loop posts a flush to the hash strand, which hashes
 * it alone and gives it back (a chunk is never held as the only one out of
 * a paused loop's pool: both are decided under p->lock). Nothing in
 * the cpu pool
 * ever blocks: when no output buffer is free, the inflate task parks (its
 * strand waits, the worker goes on with other strands) and the release of a
 * buffer unparks it. So a slow disk holds back only its blob's inflation,
 * and the cores stay with whatever can run. The io pool's tasks block in
 * the disk only.
 *
 * Ownership and locking:
 *   loop thread     p->filling, p->received, submitting chunks and controls
 *   inflate strand  p->inf, p->stream_*, p->lent, res.comp/stream_*; posts
 *                   output buffers and controls to hash and write, and
 *                   passes input chunks on to hash
 *   hash strand     p->h_comp, p->comp_bytes, p->gz_held, res.compressed_*,
 *                   p->h_tar, p->hashed, res.diff_*
 *   write strand    p->fd, p->of, p->written
 *   keep strand     p->partial_fd, p->kf, p->keep_at
 *   p->lock         free lists, allocation counts, paused, inflate_waits,
 *                   pending, finish_refs, local failure, released
 *   ctx->lock       the event list and each pipe's event flags
 * Control messages (reset, finish) travel through the strands in order with
 * the data, so "start over" and "end" apply exactly after the bytes before
 * them. pending counts posted tasks; a released pipe is freed on the loop
 * thread when it reaches zero and its strands are idle. */
#include "io/blobpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomicfile.h"
#include "io/outfile.h"
#include "io/workq.h"

enum { MSG_DATA, MSG_RESET, MSG_FINISH, MSG_PRELOAD, MSG_MOVE };
enum { EV_WRITABLE = 1, EV_FINISHED = 2, EV_FREE = 4 };

/* Output buffers of a small blob: about this many times its compressed
 * size (a tar is rarely more), within these bounds. */
#define OUT_SMALL_FACTOR 4
#define OUT_SMALL_MIN ((size_t)64 << 10)

typedef struct in_chunk {
    oc_task t_digest;
    oc_task t_inflate;
    oc_task t_keep;
    oc_blobpipe *p;
    int kind;
    uint64_t preload;  /* MSG_PRELOAD: bytes of the partial file to replay */
    uint64_t replayed; /* MSG_PRELOAD, inflate: bytes of it read so far */
    int refs;          /* strands still reading it (p->lock) */
    int pooled;
    size_t len, cap;
    size_t inflated; /* inflate strand: bytes of buf the decoder took */
    unsigned char *buf;
    struct in_chunk *next_free;
} in_chunk;

typedef struct out_buf {
    oc_task t_hash;
    oc_task t_write;
    oc_blobpipe *p;
    int kind;
    int refs; /* strands still reading it (p->lock) */
    int pooled;
    size_t len, cap;
    unsigned char *buf;
    struct out_buf *next_free;
    int move_fd; /* MSG_MOVE: the new output and where the tar starts in it */
    uint64_t move_base;
} out_buf;

struct oc_blobpipe_budget {
    atomic_uint_fast64_t used;
    atomic_int refs;
    uint64_t max;
};

struct oc_blobpipe_ctx {
    uv_loop_t *loop;
    uv_async_t async;
    void (*closed)(void *opaque); /* oc_blobpipe_ctx_close's callback */
    void *closed_opaque;
    oc_workq *pool_cpu; /* inflate and hash strands */
    oc_workq *pool_io;  /* write and keep strands */
    size_t chunk_size;
    int in_chunks;
    int out_bufs;
    oc_write_mode write_mode;
    pthread_mutex_t lock;
    oc_blobpipe *events;   /* pipes with event flags set */
    oc_offload *offloaded; /* offloads whose work is done */
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
    oc_strand s_inflate, s_hash, s_write, s_keep;
    size_t cap;     /* input chunk size */
    size_t out_cap; /* output buffer size */
    int keeping;    /* the keep strand reads the input chunks (fixed by the first post) */
    int posted;     /* something was posted (loop thread) */
    int moved;      /* oc_blobpipe_move_output was accepted (loop thread) */

    /* loop thread */
    in_chunk *filling;
    uint64_t received;

    /* p->lock */
    pthread_mutex_t lock;
    in_chunk *free_in;
    int in_alloc, in_max;
    out_buf *free_out;
    int out_alloc, out_max;
    int inflate_waits; /* the inflate strand parked for want of an output buffer */
    int paused;
    int pending;
    int finish_refs;
    int finish_to_write; /* the write strand has its finish: too late to move */
    int local_failed;
    oc_error local_err;
    int released;
    int in_flight;    /* pooled input chunks posted and not yet back */
    int gz_holding;   /* the hash strand holds a chunk (gz_held) */
    int flush_posted; /* t_flush is posted: a paused loop wants it back */
    oc_task t_flush;

    /* ctx->lock */
    int ev_flags;
    int on_event_list;
    oc_blobpipe *next_event;

    /* strands */
    oc_sha256 *h_comp;
    uint64_t comp_bytes;
    in_chunk *gz_held; /* hash strand: a chunk waiting for tar to hash with */
    size_t gz_held_at; /* its bytes hashed so far */
    int partial_fd;    /* compressed bytes kept for a later run (keep strand), or -1 */
    char *partial_path;
    oc_outfile kf; /* keep strand: how partial_fd is written */
    int kf_ready;
    uint64_t keep_at;  /* keep strand: bytes of the partial file */
    int keep_required; /* the kept copy is the caller's result: failing to write it fails */
    int digest_only;   /* the compressed bytes are hashed (and kept), not inflated */
    oc_inflater *inf;
    oc_blobpipe_budget *budget; /* shared with other pipes, or NULL */
    out_buf *lent;              /* inflate strand: the buffer the decoder holds */
    int stream_failed;
    oc_sha256 *h_tar;
    uint64_t hashed;
    oc_outfile of; /* write strand: how fd is written */
    int of_ready;
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

static void free_chunks(in_chunk *c)
{
    while (c) {
        in_chunk *next = c->next_free;
        free(c->buf);
        free(c);
        c = next;
    }
}

static void live_drop(oc_blobpipe_ctx *ctx);
static void chunk_put(in_chunk *c);

static void pipe_destroy(oc_blobpipe *p)
{
    live_drop(p->ctx);
    if (!p->ctx->closing) { /* when closing, the pools have been joined */
        oc_strand_wait_idle(&p->s_inflate);
        oc_strand_wait_idle(&p->s_hash);
        oc_strand_wait_idle(&p->s_write);
        oc_strand_wait_idle(&p->s_keep);
    }
    oc_inflater_free(p->inf); /* gives back the buffer it holds */
    if (p->gz_held) {         /* a released pipe's: back to the free list, waking no one */
        p->paused = 0;
        chunk_put(p->gz_held);
    }
    free_chunks(p->free_in);
    if (p->filling) { /* its next_free is stale */
        p->filling->next_free = NULL;
        free_chunks(p->filling);
    }
    while (p->free_out) {
        out_buf *o = p->free_out;
        p->free_out = o->next_free;
        free(o->buf);
        free(o);
    }
    if (p->of_ready)
        oc_outfile_close(&p->of);
    if (p->kf_ready)
        oc_outfile_close(&p->kf);
    if (p->fd >= 0 && !p->fd_borrowed)
        close(p->fd);
    if (p->partial_fd >= 0)
        close(p->partial_fd);
    free(p->partial_path);
    if (p->path && !p->taken)
        unlink(p->path);
    oc_sha256_free(p->h_comp);
    oc_sha256_free(p->h_tar);
    oc_blobpipe_budget_unref(p->budget);
    pthread_mutex_destroy(&p->lock);
    free(p->path);
    free(p->label);
    free(p);
}

static void live_add(oc_blobpipe_ctx *ctx)
{
    if (ctx->live++ == 0)
        uv_ref((uv_handle_t *)&ctx->async);
}

static void live_drop(oc_blobpipe_ctx *ctx)
{
    if (--ctx->live == 0)
        uv_unref((uv_handle_t *)&ctx->async);
}

/* Offloads whose work is done, to their done callbacks. */
static void offloads_done(oc_blobpipe_ctx *ctx)
{
    for (;;) {
        pthread_mutex_lock(&ctx->lock);
        oc_offload *o = ctx->offloaded;
        if (o)
            ctx->offloaded = o->next;
        pthread_mutex_unlock(&ctx->lock);
        if (!o)
            break;
        if (!ctx->closing)
            oc_strand_wait_idle(&o->strand); /* its worker is done with it */
        live_drop(ctx);
        o->done(o);
    }
}

/* Pipes are taken off the event list one at a time under the lock, so a
 * callback that releases another pipe (or this one) never leaves a freed
 * pipe on a list being walked: a release only sets EV_FREE, and the pipe is
 * freed here when its turn comes. */
static void on_async(uv_async_t *async)
{
    oc_blobpipe_ctx *ctx = async->data;
    offloads_done(ctx);
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

static void local_fail_nomem(oc_blobpipe *p)
{
    oc_error err;
    oc_error_set(&err, OC_E_NOMEM, "out of memory");
    local_fail(p, &err);
}

static int has_local_failure(oc_blobpipe *p)
{
    pthread_mutex_lock(&p->lock);
    int f = p->local_failed || p->released;
    pthread_mutex_unlock(&p->lock);
    return f;
}

/* One of the strands that report at the end (hash twice, write, keep)
 * is done with finish (n of them at once). */
static void finish_refs_done(oc_blobpipe *p, int n)
{
    pthread_mutex_lock(&p->lock);
    p->finish_refs -= n;
    int done = p->finish_refs == 0;
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
            p->in_flight--;
            c->next_free = p->free_in;
            p->free_in = c;
            if (p->paused) {
                p->paused = 0;
                writable = 1;
            }
        } else {
            free(c->buf);
            free(c);
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (writable)
        notify(p, EV_WRITABLE);
}

/* A strand's task is done with its input chunk (and, with finished, the
 * strand with the finish): the end of run_digest and run_keep. */
static void chunk_done(oc_blobpipe *p, in_chunk *c, int finished)
{
    chunk_put(c);
    if (finished)
        finish_refs_done(p, 1);
    task_end(p);
}

/* ---- output buffers: inflate lends them, hash and write read them ---- */

static void out_put(out_buf *o)
{
    oc_blobpipe *p = o->p;
    int unpark = 0;
    pthread_mutex_lock(&p->lock);
    if (--o->refs > 0) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    if (o->pooled) {
        o->next_free = p->free_out;
        p->free_out = o;
        if (p->inflate_waits) {
            p->inflate_waits = 0;
            unpark = 1;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (!o->pooled)
        free(o);
    if (unpark)
        oc_strand_unpark(&p->s_inflate);
}

/* A strand's task is done with its output buffer (and, with finished, the
 * strand with the finish): the end of run_hash and run_write. */
static void out_done(oc_blobpipe *p, out_buf *o, int finished)
{
    out_put(o);
    if (finished)
        finish_refs_done(p, 1);
    task_end(p);
}

static void run_hash(oc_task *t);
static void run_write(oc_task *t);

static void post_out(oc_blobpipe *p, out_buf *o)
{
    o->t_hash.run = run_hash;
    o->t_write.run = run_write;
    pthread_mutex_lock(&p->lock);
    o->refs = 2;
    p->pending += 2;
    pthread_mutex_unlock(&p->lock);
    oc_strand_post(&p->s_hash, &o->t_hash);
    oc_strand_post(&p->s_write, &o->t_write);
}

static int post_out_control(oc_blobpipe *p, int kind)
{
    out_buf *o = calloc(1, sizeof *o);
    if (!o)
        return -1;
    o->p = p;
    o->kind = kind;
    post_out(p, o);
    return 0;
}

/* The decoder asks for a buffer: a free one, a new one while the blob may
 * have more, else none now (the inflate task parks; out_put unparks it). */
static int lend_get(void *opaque, unsigned char **buf, size_t *cap, oc_error *err)
{
    oc_blobpipe *p = opaque;
    pthread_mutex_lock(&p->lock);
    if (p->released) {
        pthread_mutex_unlock(&p->lock);
        oc_error_set(err, OC_E_CANCELLED, "%s: abandoned", p->label);
        return -1;
    }
    out_buf *o = p->free_out;
    if (o) {
        p->free_out = o->next_free;
    } else if (p->out_alloc < p->out_max) {
        p->out_alloc++;
    } else {
        p->inflate_waits = 1;
        pthread_mutex_unlock(&p->lock);
        return 1;
    }
    pthread_mutex_unlock(&p->lock);
    if (!o) {
        o = calloc(1, sizeof *o);
        void *mem = NULL;
        if (!o || posix_memalign(&mem, OC_OUTFILE_ALIGN, p->out_cap) != 0) {
            free(o);
            pthread_mutex_lock(&p->lock);
            p->out_alloc--;
            pthread_mutex_unlock(&p->lock);
            oc_error_set(err, OC_E_NOMEM, "%s: out of memory", p->label);
            return -1;
        }
        o->buf = mem;
        o->cap = p->out_cap;
        o->p = p;
        o->pooled = 1;
    }
    o->kind = MSG_DATA;
    o->len = 0;
    p->lent = o;
    *buf = o->buf;
    *cap = o->cap;
    return 0;
}

/* A filled buffer: to hash and write at once (unless it takes the
 * shared budget beyond its bound). */
static int lend_put(void *opaque, unsigned char *buf, size_t len, oc_error *err)
{
    oc_blobpipe *p = opaque;
    out_buf *o = p->lent;
    (void)buf;
    p->lent = NULL;
    o->len = len;
    if (p->budget) {
        uint64_t now = atomic_fetch_add(&p->budget->used, len) + len;
        if (now > p->budget->max) {
            o->refs = 1;
            out_put(o);
            oc_error_set(err, OC_E_LIMIT,
                         "the tars decompress to more than the limit of %" PRIu64 " bytes in all",
                         p->budget->max);
            return -1;
        }
    }
    post_out(p, o);
    return 0;
}

static void lend_drop(void *opaque, unsigned char *buf)
{
    oc_blobpipe *p = opaque;
    out_buf *o = p->lent;
    (void)buf;
    p->lent = NULL;
    o->refs = 1;
    out_put(o);
}

/* ---- hash strand: the tar ---- */

static void gz_held_release(oc_blobpipe *p);

static void run_hash(oc_task *t)
{
    out_buf *o = (out_buf *)((char *)t - offsetof(out_buf, t_hash));
    oc_blobpipe *p = o->p;
    switch (o->kind) {
    case MSG_DATA:
        if (!has_local_failure(p)) {
            in_chunk *g = p->gz_held;
            if (g) { /* with as much of the held chunk */
                size_t take = g->len - p->gz_held_at;
                take = take < o->len ? take : o->len;
                oc_sha256_update_pair(p->h_tar, o->buf, o->len, p->h_comp, g->buf + p->gz_held_at,
                                      take);
                p->comp_bytes += take;
                p->gz_held_at += take;
                if (p->gz_held_at == g->len)
                    gz_held_release(p);
            } else {
                oc_sha256_update(p->h_tar, o->buf, o->len);
            }
            p->hashed += o->len;
        }
        break;
    case MSG_RESET:
        oc_sha256_reset(p->h_tar);
        p->hashed = 0;
        break;
    case MSG_FINISH:
        oc_sha256_final_hex(p->h_tar, p->res.diff_hex);
        p->res.diff_size = p->hashed;
        break;
    }
    out_done(p, o, o->kind == MSG_FINISH);
}

/* ---- write strand ---- */

static const char *out_name(const oc_blobpipe *p)
{
    return p->path && !p->fd_borrowed ? p->path : "layer output";
}

/* MSG_MOVE: what was written so far goes to the new output, and the rest
 * will follow it there; the temp file is removed. */
static void write_move(oc_blobpipe *p, const out_buf *o)
{
    oc_error err;
    oc_error_clear(&err);
    oc_outfile nf;
    oc_outfile_init(&nf, o->move_fd, p->ctx->write_mode, OC_OUTFILE_DURABLE);
    void *buf = NULL;
    size_t cap = p->ctx->chunk_size;
    /* a trailing run of zeros is a hole not yet counted in the file's size */
    if (!has_local_failure(p) && p->of_ready && oc_outfile_finish(&p->of, out_name(p), &err) != 0)
        local_fail(p, &err);
    if (!has_local_failure(p) && p->written > 0) {
        if (posix_memalign(&buf, OC_OUTFILE_ALIGN, cap) != 0) {
            buf = NULL;
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
        }
        for (uint64_t off = 0; buf && off < p->written;) {
            size_t n = p->written - off < cap ? (size_t)(p->written - off) : cap;
            ssize_t got = pread(p->fd, buf, n, (off_t)(p->base + off));
            if (got <= 0) {
                oc_error_errno(&err, got < 0 ? errno : EIO, "read back %s", out_name(p));
                break;
            }
            if (oc_outfile_pwrite(&nf, buf, (size_t)got, o->move_base + off, "layer output",
                                  &err) != 0)
                break;
            off += (uint64_t)got;
        }
        free(buf);
        if (err.code != OC_OK)
            local_fail(p, &err);
    }
    if (p->of_ready)
        oc_outfile_close(&p->of);
    if (!p->fd_borrowed) {
        close(p->fd);
        if (p->path)
            unlink(p->path);
    }
    p->fd = o->move_fd;
    p->fd_borrowed = 1;
    p->base = o->move_base;
    p->of = nf;
    p->of_ready = 1;
}

static void run_write(oc_task *t)
{
    out_buf *o = (out_buf *)((char *)t - offsetof(out_buf, t_write));
    oc_blobpipe *p = o->p;
    oc_error err;
    oc_error_clear(&err);
    if (p->fd < 0) { /* digest only: no tar is made */
        out_done(p, o, o->kind == MSG_FINISH);
        return;
    }
    if (!p->of_ready) {
        /* a borrowed output is its owner's final file; a temp file of ours
         * is durable unless it is scratch that will be copied and deleted */
        oc_outfile_init(&p->of, p->fd, p->ctx->write_mode,
                        p->fd_borrowed || !p->no_sync ? OC_OUTFILE_DURABLE : OC_OUTFILE_SCRATCH);
        p->of_ready = 1;
    }
    switch (o->kind) {
    case MSG_DATA:
        if (!has_local_failure(p)) {
            if (oc_outfile_pwrite(&p->of, o->buf, o->len, p->base + p->written, out_name(p),
                                  &err) != 0)
                local_fail(p, &err);
            else
                p->written += o->len;
        }
        break;
    case MSG_RESET:
        if (oc_outfile_truncate(&p->of, p->base, out_name(p), &err) != 0)
            local_fail(p, &err);
        p->written = 0;
        break;
    case MSG_MOVE:
        write_move(p, o);
        break;
    case MSG_FINISH:
        if (!has_local_failure(p) && (p->no_sync ? oc_outfile_finish(&p->of, out_name(p), &err)
                                                 : oc_outfile_sync(&p->of, out_name(p), &err)) != 0)
            local_fail(p, &err);
        break;
    }
    out_done(p, o, o->kind == MSG_FINISH);
}

/* ---- replaying a partial file ---- */

/* The hash strand hashes the first n bytes of the partial file, as if
 * they had just arrived (the inflate strand reads them itself, below; the
 * page cache serves both). */
static void replay_digest(oc_blobpipe *p, uint64_t n)
{
    int fd = open(p->partial_path, O_RDONLY | O_CLOEXEC);
    unsigned char *buf = malloc(p->ctx->chunk_size);
    uint64_t done = 0;
    while (fd >= 0 && buf && done < n) {
        size_t want = n - done < p->ctx->chunk_size ? (size_t)(n - done) : p->ctx->chunk_size;
        ssize_t got = pread(fd, buf, want, (off_t)done);
        if (got <= 0)
            break;
        oc_sha256_update(p->h_comp, buf, (size_t)got);
        done += (uint64_t)got;
    }
    /* a file that vanished or shrank under us gives a digest that does not
     * match: the verification retries the blob from scratch */
    p->comp_bytes = done;
    free(buf);
    if (fd >= 0)
        close(fd);
}

/* The inflate strand feeds the partial file's first c->preload bytes to the
 * decoder, a buffer at a time; 1 when it must park (no output buffer) and
 * go on from where it is later, 0 when done. */
static int replay_inflate(oc_blobpipe *p, in_chunk *c)
{
    if (!c->buf && !(c->buf = malloc(p->ctx->chunk_size))) {
        p->stream_failed = 1;
        oc_error_set(&p->res.stream_err, OC_E_NOMEM, "%s: out of memory", p->label);
        return 0;
    }
    c->cap = p->ctx->chunk_size;
    for (;;) {
        if (c->inflated == c->len) { /* the next piece of the file */
            if (c->replayed == c->preload || p->stream_failed)
                return 0;
            int fd = open(p->partial_path, O_RDONLY | O_CLOEXEC);
            uint64_t left = c->preload - c->replayed;
            ssize_t got = fd < 0 ? -1
                                 : pread(fd, c->buf, left < c->cap ? (size_t)left : c->cap,
                                         (off_t)c->replayed);
            if (fd >= 0)
                close(fd);
            if (got <= 0) {
                p->stream_failed = 1;
                oc_error_set(&p->res.stream_err, OC_E_IO,
                             "%s: partial file %s shorter than recorded", p->label,
                             p->partial_path);
                return 0;
            }
            c->len = (size_t)got;
            c->inflated = 0;
            c->replayed += (uint64_t)got;
        }
        size_t used = 0;
        int rc = oc_inflater_feed_some(p->inf, c->buf + c->inflated, c->len - c->inflated, &used,
                                       &p->res.stream_err);
        if (rc < 0) {
            p->stream_failed = 1;
            return 0;
        }
        c->inflated += used;
        if (rc > 0)
            return 1;
    }
}

/* ---- inflate strand ---- */

/* No output buffer to be had: park until out_put frees one (or the pipe is
 * released: the decoder then fails and the task ends). */
static void inflate_park(oc_blobpipe *p)
{
    oc_strand_park(&p->s_inflate);
}

static void run_inflate(oc_task *t)
{
    in_chunk *c = (in_chunk *)((char *)t - offsetof(in_chunk, t_inflate));
    oc_blobpipe *p = c->p;
    switch (c->kind) {
    case MSG_DATA:
        if (!p->digest_only && !p->stream_failed) {
            size_t used = 0;
            int rc = oc_inflater_feed_some(p->inf, c->buf + c->inflated, c->len - c->inflated,
                                           &used, &p->res.stream_err);
            if (rc < 0) {
                p->stream_failed = 1;
            } else {
                c->inflated += used;
                if (rc > 0) {
                    inflate_park(p);
                    return;
                }
            }
        }
        break;
    case MSG_PRELOAD:
        if (!p->digest_only && replay_inflate(p, c)) {
            inflate_park(p);
            return;
        }
        break;
    case MSG_RESET:
        oc_inflater_reset(p->inf);
        p->stream_failed = 0;
        oc_error_clear(&p->res.stream_err);
        if (post_out_control(p, MSG_RESET) != 0)
            local_fail_nomem(p);
        break;
    case MSG_FINISH: {
        if (!p->digest_only && !p->stream_failed) {
            int rc = oc_inflater_finish(p->inf, &p->res.stream_err);
            if (rc > 0) {
                inflate_park(p);
                return;
            }
            if (rc < 0)
                p->stream_failed = 1;
        }
        p->res.stream_ok = !p->stream_failed;
        p->res.comp = oc_inflater_comp(p->inf);
        if (p->stream_failed)
            oc_error_prefix(&p->res.stream_err, "%s", p->label);
        pthread_mutex_lock(&p->lock);
        p->finish_to_write = 1; /* from now on, the output stays where it is */
        pthread_mutex_unlock(&p->lock);
        if (post_out_control(p, MSG_FINISH) != 0) {
            local_fail_nomem(p);
            finish_refs_done(p, 2); /* for the tar's hash and write */
        }
        break;
    }
    }
    /* on to the hash strand, after the tar it became; this task's reference
     * to the chunk, and its count in pending, pass to that task */
    oc_strand_post(&p->s_hash, &c->t_digest);
}

/* ---- hash strand: the compressed bytes ---- */

/* The hash strand gives the held chunk back (it is hashed, or needs not be). */
static void gz_held_release(oc_blobpipe *p)
{
    in_chunk *g = p->gz_held;
    p->gz_held = NULL;
    pthread_mutex_lock(&p->lock);
    p->gz_holding = 0;
    pthread_mutex_unlock(&p->lock);
    chunk_put(g);
}

/* What is left of the held chunk, hashed alone; the chunk is given back. */
static void gz_held_flush(oc_blobpipe *p)
{
    in_chunk *g = p->gz_held;
    if (!g)
        return;
    oc_sha256_update(p->h_comp, g->buf + p->gz_held_at, g->len - p->gz_held_at);
    p->comp_bytes += g->len - p->gz_held_at;
    gz_held_release(p);
}

/* Posted by a loop that paused while a chunk was held: the chunk may be the
 * one it waits for, so it is hashed alone now. */
static void run_flush(oc_task *t)
{
    oc_blobpipe *p = (oc_blobpipe *)((char *)t - offsetof(oc_blobpipe, t_flush));
    pthread_mutex_lock(&p->lock);
    p->flush_posted = 0;
    pthread_mutex_unlock(&p->lock);
    gz_held_flush(p);
    task_end(p);
}

static void run_digest(oc_task *t)
{
    in_chunk *c = (in_chunk *)((char *)t - offsetof(in_chunk, t_digest));
    oc_blobpipe *p = c->p;
    switch (c->kind) {
    case MSG_DATA: {
        gz_held_flush(p);
        /* held for the tar buffers that come next, unless the loop waits
         * for chunks and this is the last one out (nothing else would come
         * back to wake it); a loop that pauses later with only the held
         * chunk out sees that under the same lock and posts t_flush */
        pthread_mutex_lock(&p->lock);
        int hold = p->in_max >= 2 && c->len > 0 && !(p->paused && p->in_flight <= 1);
        p->gz_holding = hold;
        pthread_mutex_unlock(&p->lock);
        if (hold) {
            p->gz_held = c;
            p->gz_held_at = 0;
            task_end(p);
            return;
        }
        oc_sha256_update(p->h_comp, c->buf, c->len);
        p->comp_bytes += c->len;
        break;
    }
    case MSG_RESET:
        if (p->gz_held) /* no need to hash it: the stream starts over */
            gz_held_release(p);
        oc_sha256_reset(p->h_comp);
        p->comp_bytes = 0;
        break;
    case MSG_PRELOAD:
        gz_held_flush(p);
        replay_digest(p, c->preload);
        break;
    case MSG_FINISH:
        gz_held_flush(p);
        oc_sha256_final_hex(p->h_comp, p->res.compressed_hex);
        p->res.compressed_size = p->comp_bytes;
        break;
    }
    chunk_done(p, c, c->kind == MSG_FINISH);
}

/* ---- keep strand: the compressed bytes into the partial file ---- */

/* The kept copy of the compressed bytes could not be written (err says
 * why): a partial copy for a later resume is best effort and is dropped; a
 * required copy (oc_blobpipe_keep_compressed) fails the blob. */
static void kept_copy_failed(oc_blobpipe *p, const oc_error *err)
{
    if (p->keep_required)
        local_fail(p, err);
    if (p->kf_ready)
        oc_outfile_close(&p->kf);
    p->kf_ready = 0;
    close(p->partial_fd);
    p->partial_fd = -1;
    unlink(p->partial_path);
}

static void run_keep(oc_task *t)
{
    in_chunk *c = (in_chunk *)((char *)t - offsetof(in_chunk, t_keep));
    oc_blobpipe *p = c->p;
    oc_error err;
    if (p->partial_fd >= 0 && !p->kf_ready) {
        /* a required copy (the store's exact bytes) is synced at the end, so
         * it reaches the disk as it is written; a partial copy for a later
         * run (removed once the blob verified) is never synced, and read
         * only to continue a broken download */
        oc_outfile_init(&p->kf, p->partial_fd, p->ctx->write_mode,
                        p->keep_required ? OC_OUTFILE_DURABLE : OC_OUTFILE_ASIDE);
        p->kf_ready = 1;
    }
    switch (c->kind) {
    case MSG_DATA:
        if (p->partial_fd >= 0 &&
            oc_outfile_pwrite(&p->kf, c->buf, c->len, p->keep_at, p->partial_path, &err) != 0)
            kept_copy_failed(p, &err);
        p->keep_at += c->len;
        break;
    case MSG_RESET:
        p->keep_at = 0;
        if (p->partial_fd >= 0 && oc_outfile_truncate(&p->kf, 0, p->partial_path, &err) != 0)
            kept_copy_failed(p, &err);
        break;
    case MSG_PRELOAD:
        p->keep_at = c->preload; /* the file holds them already */
        break;
    case MSG_FINISH:
        /* a required copy is durable before the blob is reported done */
        if (p->keep_required && p->partial_fd >= 0 && !has_local_failure(p) &&
            oc_outfile_sync(&p->kf, p->partial_path, &err) != 0)
            kept_copy_failed(p, &err);
        break;
    }
    chunk_done(p, c, c->kind == MSG_FINISH);
}

/* ---- loop thread ---- */

static void post_chunk(oc_blobpipe *p, in_chunk *c)
{
    if (!p->posted) {
        p->posted = 1;
        p->keeping = p->partial_fd >= 0;
    }
    c->t_digest.run = run_digest;
    c->t_inflate.run = run_inflate;
    c->t_keep.run = run_keep;
    c->inflated = 0;
    int readers = p->keeping ? 2 : 1; /* inflate, then hash; keep */
    pthread_mutex_lock(&p->lock);
    c->refs = readers;
    p->pending += readers;
    if (c->pooled)
        p->in_flight++;
    pthread_mutex_unlock(&p->lock);
    oc_strand_post(&p->s_inflate, &c->t_inflate);
    if (p->keeping)
        oc_strand_post(&p->s_keep, &c->t_keep);
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
        void *mem = NULL;
        if (!c || posix_memalign(&mem, OC_OUTFILE_ALIGN, p->cap) != 0) {
            free(c);
            pthread_mutex_lock(&p->lock);
            p->in_alloc--;
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        c->buf = mem;
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
            int flush = p->gz_holding && p->in_flight <= 1 && !p->flush_posted;
            if (flush) {
                p->flush_posted = 1;
                p->pending++;
            }
            pthread_mutex_unlock(&p->lock);
            if (flush)
                oc_strand_post(&p->s_hash, &p->t_flush);
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
    if (!p->posted) {
        p->posted = 1;
        p->keeping = p->partial_fd >= 0;
    }
    pthread_mutex_lock(&p->lock);
    /* hash (the compressed bytes, and the tar), write (behind inflate), keep */
    p->finish_refs = p->keeping ? 4 : 3;
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
    if (p->posted)
        return 0;
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

/* Nothing was posted yet: the strands have not seen the output. */
static void switch_output(oc_blobpipe *p, int fd, uint64_t base)
{
    if (p->fd >= 0)
        close(p->fd);
    if (p->path)
        unlink(p->path);
    free(p->path);
    p->path = NULL;
    p->fd = fd;
    p->fd_borrowed = 1;
    p->base = base;
}

int oc_blobpipe_set_output(oc_blobpipe *p, int fd, uint64_t base, oc_error *err)
{
    if (p->received != 0 || p->fd_borrowed || p->posted) {
        oc_error_set(err, OC_E_USAGE, "%s: output set after bytes arrived", p->label);
        return -1;
    }
    switch_output(p, fd, base);
    return 0;
}

oc_blobpipe_budget *oc_blobpipe_budget_new(uint64_t max)
{
    oc_blobpipe_budget *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    atomic_init(&b->used, 0);
    atomic_init(&b->refs, 1);
    b->max = max;
    return b;
}

void oc_blobpipe_budget_unref(oc_blobpipe_budget *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

uint64_t oc_blobpipe_budget_used(const oc_blobpipe_budget *b)
{
    return b ? atomic_load(&((oc_blobpipe_budget *)b)->used) : 0;
}

void oc_blobpipe_set_budget(oc_blobpipe *p, oc_blobpipe_budget *b)
{
    if (p->budget || !b || p->posted)
        return;
    atomic_fetch_add(&b->refs, 1);
    p->budget = b;
}

void oc_blobpipe_set_no_sync(oc_blobpipe *p, int no_sync)
{
    p->no_sync = no_sync;
}

char *oc_blobpipe_take_file(oc_blobpipe *p)
{
    p->taken = 1;
    return p->path && !p->moved ? strdup(p->path) : NULL;
}

int oc_blobpipe_move_output(oc_blobpipe *p, int fd, uint64_t base, oc_error *err)
{
    if (p->moved || p->fd_borrowed)
        return 0;
    if (!p->posted) { /* bytes may wait in the chunk being filled: none written */
        switch_output(p, fd, base);
        return 1;
    }
    out_buf *o = calloc(1, sizeof *o);
    if (!o) {
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", p->label);
        return -1;
    }
    o->p = p;
    o->kind = MSG_MOVE;
    o->move_fd = fd;
    o->move_base = base;
    o->refs = 1;
    o->t_write.run = run_write;
    pthread_mutex_lock(&p->lock);
    int ok = !p->finish_to_write && !p->released && !p->local_failed;
    if (ok) { /* posted under the lock: it is ahead of the finish */
        p->pending++;
        oc_strand_post(&p->s_write, &o->t_write);
    }
    pthread_mutex_unlock(&p->lock);
    if (!ok) {
        free(o);
        return 0;
    }
    p->moved = 1;
    p->taken = 1; /* the write strand removes the temp file */
    return 1;
}

void oc_blobpipe_set_priority(oc_blobpipe *p, long long priority)
{
    oc_strand_set_priority(&p->s_inflate, priority);
    oc_strand_set_priority(&p->s_hash, priority);
    oc_strand_set_priority(&p->s_write, priority);
    oc_strand_set_priority(&p->s_keep, priority);
}

void oc_blobpipe_release(oc_blobpipe *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->released = 1;
    p->inflate_waits = 0;
    int free_now = p->pending == 0;
    pthread_mutex_unlock(&p->lock);
    /* a parked inflate runs again, finds the pipe released and ends */
    oc_strand_unpark(&p->s_inflate);
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
    live_add(ctx);
    pthread_mutex_init(&p->lock, NULL);
    oc_strand_init(&p->s_inflate, ctx->pool_cpu);
    oc_strand_init(&p->s_hash, ctx->pool_cpu);
    oc_strand_init(&p->s_write, ctx->pool_io);
    oc_strand_init(&p->s_keep, ctx->pool_io);
    /* the biggest blob first: its chain is the longest */
    long long prio = size_hint > (uint64_t)INT64_MAX ? INT64_MAX : (long long)size_hint;
    oc_strand_set_priority(&p->s_inflate, prio);
    oc_strand_set_priority(&p->s_hash, prio);
    oc_strand_set_priority(&p->s_write, prio);
    oc_strand_set_priority(&p->s_keep, prio);
    p->in_max = ctx->in_chunks;
    p->out_max = ctx->out_bufs;
    p->cap = ctx->chunk_size;
    p->out_cap = ctx->chunk_size;
    if (size_hint > 0 && size_hint < p->cap) {
        p->cap = size_hint < 4096 ? 4096 : (size_t)size_hint;
        size_t want = (size_t)size_hint * OUT_SMALL_FACTOR;
        want = want < OUT_SMALL_MIN ? OUT_SMALL_MIN : want;
        want = (want + OC_OUTFILE_ALIGN - 1) / OC_OUTFILE_ALIGN * OC_OUTFILE_ALIGN;
        if (want < p->out_cap)
            p->out_cap = want;
    }
    p->label = strdup(label);
    if (asprintf(&p->path, "%s/layer-XXXXXX", tmp_dir) < 0)
        p->path = NULL;
    p->t_flush.run = run_flush;
    p->h_comp = oc_sha256_new_pairable();
    p->h_tar = oc_sha256_new_pairable();
    oc_inflate_output lend = {.get = lend_get, .put = lend_put, .drop = lend_drop, .opaque = p};
    p->inf = oc_inflater_new_lent(comp, &lend, max_out);
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

/* ---- offloaded disk work ---- */

static void run_offload(oc_task *t)
{
    oc_offload *o = (oc_offload *)((char *)t - offsetof(oc_offload, task));
    oc_blobpipe_ctx *ctx = o->ctx;
    o->work(o);
    pthread_mutex_lock(&ctx->lock);
    o->next = ctx->offloaded;
    ctx->offloaded = o;
    pthread_mutex_unlock(&ctx->lock);
    uv_async_send(&ctx->async);
}

void oc_blobpipe_offload(oc_blobpipe_ctx *ctx, oc_offload *o)
{
    o->ctx = ctx;
    o->next = NULL;
    o->task.run = run_offload;
    oc_strand_init(&o->strand, ctx->pool_io);
    live_add(ctx);
    oc_strand_post(&o->strand, &o->task);
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
    /* direct I/O wants whole blocks: a chunk is a multiple of the alignment */
    ctx->chunk_size =
        (ctx->chunk_size + OC_OUTFILE_ALIGN - 1) / OC_OUTFILE_ALIGN * OC_OUTFILE_ALIGN;
    ctx->in_chunks = opts && opts->in_chunks > 0 ? opts->in_chunks : 4;
    ctx->out_bufs = opts && opts->out_bufs > 0 ? opts->out_bufs : 4;
    ctx->write_mode = opts ? opts->write_mode : OC_WRITE_AUTO;
    int threads = opts ? opts->threads : 0;
    ctx->pool_cpu = oc_workq_new(threads, "pipe-cpu");
    int cpu = ctx->pool_cpu ? oc_workq_threads(ctx->pool_cpu) : 1;
    /* the io pool's tasks mostly wait for the disk: a few more of them */
    ctx->pool_io =
        oc_workq_new(opts && opts->io_threads > 0 ? opts->io_threads : cpu + 2, "pipe-io");
    if (!ctx->pool_cpu || !ctx->pool_io) {
        oc_workq_free(ctx->pool_cpu);
        oc_workq_free(ctx->pool_io);
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
    oc_workq_free(ctx->pool_cpu);
    oc_workq_free(ctx->pool_io);
    ctx->pool_cpu = ctx->pool_io = NULL;
    ctx->closing = 1;
    on_async(&ctx->async);
    uv_close((uv_handle_t *)&ctx->async, ctx_closed);
}
