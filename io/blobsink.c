/* blobsink.c - a blob hashed, kept and inflated on worker strands for a
 * caller without a loop (see blobsink.h).
 *
 * Ownership and locking:
 *   caller's thread  s->filling, submitting chunks and the finish message
 *   digest strand    s->h, s->size, s->copy_fd and s->copy_of, res.hex/size
 *   inflate strand   s->inf, s->stream_*, s->out_filling; posts whole
 *                    buffers to the tar strand
 *   tar strand       s->h_tar, s->tar_size, s->tar_fd and s->tar_of, res.tar_*
 *   s->lock          free lists, allocation counts, pending, finish_refs,
 *                    the local failure, abandoned; s->cond is signalled
 *                    whenever one of those changes
 * The finish message travels through the strands in order behind the data,
 * so each strand ends exactly after the bytes before it. */
#include "io/blobsink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomicfile.h"
#include "io/outfile.h"
#include "io/workq.h"

#define DEFAULT_CHUNK ((size_t)1024 * 1024)
#define MIN_CHUNK ((size_t)4096)

enum { MSG_DATA, MSG_FINISH };

typedef struct in_chunk {
    oc_task t_digest;
    oc_task t_inflate;
    oc_blobsink *s;
    int kind;
    int refs; /* strands still reading it (s->lock) */
    size_t len, cap;
    unsigned char *buf;
    struct in_chunk *next_free;
} in_chunk;

typedef struct out_buf {
    oc_task t;
    oc_blobsink *s;
    int kind;
    size_t len, cap;
    unsigned char *buf;
    struct out_buf *next_free;
} out_buf;

struct oc_blobsink_pool {
    oc_workq *read;  /* digest and inflate strands */
    oc_workq *write; /* tar strands */
    size_t chunk_size;
    int in_chunks;
    int out_bufs;
    oc_write_mode write_mode;
};

struct oc_blobsink {
    oc_blobsink_pool *pool;
    char *label;
    char *copy_path;
    char *tar_path;
    int copy_fd;
    int tar_fd;
    /* written as outfiles (direct I/O where the file system does it well),
     * so the syncfs at the end of a part finds little left */
    oc_outfile copy_of; /* digest strand */
    oc_outfile tar_of;  /* tar strand */
    int inflate;
    size_t cap;
    oc_strand s_digest, s_inflate, s_tar;

    /* caller */
    in_chunk *filling;
    in_chunk fin_in; /* the finish message */
    out_buf fin_out;

    /* s->lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    in_chunk *free_in;
    int in_alloc, in_max;
    out_buf *free_out;
    int out_alloc, out_max;
    int pending;     /* tasks posted and not yet ended */
    int finish_refs; /* strands that have not finished yet */
    int failed;
    oc_error err;
    int abandoned;

    /* strands */
    oc_sha256 *h;
    uint64_t size;
    oc_inflater *inf;
    out_buf *out_filling; /* inflate strand: filled whole before it is posted */
    int stream_failed;
    oc_sha256 *h_tar;
    uint64_t tar_size;
    oc_blobsink_result res;
};

/* A buffer aligned for direct I/O (freed with free()). */
static unsigned char *buf_alloc(size_t n)
{
    void *mem = NULL;
    return posix_memalign(&mem, OC_OUTFILE_ALIGN, n) == 0 ? mem : NULL;
}

/* ---- the pool ---- */

oc_blobsink_pool *oc_blobsink_pool_new(const oc_blobsink_opts *o, oc_error *err)
{
    oc_blobsink_pool *p = calloc(1, sizeof *p);
    if (!p) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    int threads = o ? o->threads : 0;
    p->chunk_size = o && o->chunk_size ? o->chunk_size : DEFAULT_CHUNK;
    if (p->chunk_size < MIN_CHUNK)
        p->chunk_size = MIN_CHUNK;
    p->in_chunks = o && o->in_chunks > 0 ? o->in_chunks : 4;
    p->out_bufs = o && o->out_bufs > 0 ? o->out_bufs : 4;
    p->write_mode = o ? (oc_write_mode)o->write_mode : OC_WRITE_AUTO;
    p->read = oc_workq_new(threads, "occy-sink-read");
    p->write = p->read ? oc_workq_new(threads, "occy-sink-tar") : NULL;
    if (!p->write) {
        oc_error_set(err, OC_E_IO, "cannot start the worker threads");
        oc_blobsink_pool_free(p);
        return NULL;
    }
    return p;
}

void oc_blobsink_pool_free(oc_blobsink_pool *p)
{
    if (!p)
        return;
    if (p->read)
        oc_workq_free(p->read);
    if (p->write)
        oc_workq_free(p->write);
    free(p);
}

/* ---- shared helpers ---- */

static void local_fail(oc_blobsink *s, const oc_error *err)
{
    pthread_mutex_lock(&s->lock);
    if (!s->failed) {
        s->failed = 1;
        s->err = *err;
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Skip the work: a local failure happened, or the caller gave up. */
static int stopped(oc_blobsink *s)
{
    pthread_mutex_lock(&s->lock);
    int f = s->failed || s->abandoned;
    pthread_mutex_unlock(&s->lock);
    return f;
}

static void task_end(oc_blobsink *s)
{
    pthread_mutex_lock(&s->lock);
    s->pending--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void strand_finished(oc_blobsink *s)
{
    pthread_mutex_lock(&s->lock);
    s->finish_refs--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void chunk_put(in_chunk *c)
{
    oc_blobsink *s = c->s;
    pthread_mutex_lock(&s->lock);
    if (--c->refs == 0 && c->kind == MSG_DATA) {
        c->next_free = s->free_in;
        s->free_in = c;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- the tar strand ---- */

static void out_put(out_buf *o)
{
    oc_blobsink *s = o->s;
    if (o->kind != MSG_DATA)
        return;
    pthread_mutex_lock(&s->lock);
    o->next_free = s->free_out;
    s->free_out = o;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void run_tar(oc_task *t)
{
    out_buf *o = (out_buf *)t;
    oc_blobsink *s = o->s;
    oc_error err;
    oc_error_clear(&err);
    if (o->kind == MSG_DATA) {
        if (!stopped(s)) {
            oc_sha256_update(s->h_tar, o->buf, o->len);
            if (oc_outfile_pwrite(&s->tar_of, o->buf, o->len, s->tar_size, s->tar_path, &err) != 0)
                local_fail(s, &err);
            s->tar_size += o->len;
        }
        out_put(o);
        task_end(s);
        return;
    }
    oc_sha256_final_hex(s->h_tar, s->res.tar_hex);
    s->res.tar_size = s->tar_size;
    if (!stopped(s) && oc_outfile_finish(&s->tar_of, s->tar_path, &err) != 0)
        local_fail(s, &err);
    strand_finished(s);
    task_end(s);
}

static void post_tar(oc_blobsink *s, out_buf *o)
{
    o->t.run = run_tar;
    pthread_mutex_lock(&s->lock);
    s->pending++;
    pthread_mutex_unlock(&s->lock);
    oc_strand_post(&s->s_tar, &o->t);
}

/* ---- the inflate strand ---- */

/* A free or new output buffer, empty, waiting while all are in use; NULL on
 * a failure or an abandoned sink (err). */
static out_buf *out_get(oc_blobsink *s, oc_error *err)
{
    out_buf *o = NULL;
    int make = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->failed || s->abandoned) {
            pthread_mutex_unlock(&s->lock);
            oc_error_set(err, OC_E_CANCELLED, "%s: abandoned", s->label);
            return NULL;
        }
        if (s->free_out) {
            o = s->free_out;
            s->free_out = o->next_free;
            break;
        }
        if (s->out_alloc < s->out_max) {
            s->out_alloc++;
            make = 1;
            break;
        }
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    if (make) {
        o = calloc(1, sizeof *o);
        unsigned char *buf = o ? buf_alloc(s->cap) : NULL;
        if (!buf) {
            free(o);
            oc_error_set(err, OC_E_NOMEM, "%s: out of memory", s->label);
            local_fail(s, err);
            return NULL;
        }
        o->buf = buf;
        o->cap = s->cap;
        o->s = s;
    }
    o->kind = MSG_DATA;
    o->len = 0;
    return o;
}

/* The inflater's output, copied into output buffers; each is posted for
 * writing when full (whole buffers keep the tar's writes aligned for direct
 * I/O), the last one at the finish. */
static int inflate_out(void *opaque, const void *data, size_t len, oc_error *err)
{
    oc_blobsink *s = opaque;
    const unsigned char *src = data;
    while (len > 0) {
        if (!s->out_filling && !(s->out_filling = out_get(s, err)))
            return -1;
        out_buf *o = s->out_filling;
        size_t take = o->cap - o->len < len ? o->cap - o->len : len;
        memcpy(o->buf + o->len, src, take);
        o->len += take;
        src += take;
        len -= take;
        if (o->len == o->cap) {
            s->out_filling = NULL;
            post_tar(s, o);
        }
    }
    return 0;
}

static void run_inflate(oc_task *t)
{
    in_chunk *c = (in_chunk *)((char *)t - offsetof(in_chunk, t_inflate));
    oc_blobsink *s = c->s;
    if (c->kind == MSG_DATA) {
        if (!s->stream_failed && !stopped(s) &&
            oc_inflater_feed(s->inf, c->buf, c->len, &s->res.stream_err) != 0)
            s->stream_failed = 1;
        chunk_put(c);
        task_end(s);
        return;
    }
    if (!s->stream_failed && !stopped(s) && oc_inflater_finish(s->inf, &s->res.stream_err) != 0)
        s->stream_failed = 1;
    s->res.stream_ok = !s->stream_failed;
    s->res.comp = oc_inflater_comp(s->inf);
    if (s->stream_failed)
        oc_error_prefix(&s->res.stream_err, "%s", s->label);
    out_buf *last = s->out_filling;
    s->out_filling = NULL;
    if (last && last->len > 0)
        post_tar(s, last);
    else if (last)
        out_put(last);
    chunk_put(c);
    s->fin_out.kind = MSG_FINISH;
    s->fin_out.s = s;
    post_tar(s, &s->fin_out);
    task_end(s);
}

/* ---- the digest strand ---- */

static void run_digest(oc_task *t)
{
    in_chunk *c = (in_chunk *)((char *)t - offsetof(in_chunk, t_digest));
    oc_blobsink *s = c->s;
    oc_error err;
    oc_error_clear(&err);
    if (c->kind == MSG_DATA) {
        oc_sha256_update(s->h, c->buf, c->len);
        if (s->copy_fd >= 0 && !stopped(s) &&
            oc_outfile_pwrite(&s->copy_of, c->buf, c->len, s->size, s->copy_path, &err) != 0)
            local_fail(s, &err);
        s->size += c->len;
        chunk_put(c);
        task_end(s);
        return;
    }
    oc_sha256_final_hex(s->h, s->res.hex);
    s->res.size = s->size;
    if (s->copy_fd >= 0 && !stopped(s) && oc_outfile_finish(&s->copy_of, s->copy_path, &err) != 0)
        local_fail(s, &err);
    chunk_put(c);
    strand_finished(s);
    task_end(s);
}

/* ---- the caller's side ---- */

static int open_out(const char *path, oc_error *err)
{
    (void)unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        oc_error_errno(err, errno, "create %s", path);
    return fd;
}

oc_blobsink *oc_blobsink_open(oc_blobsink_pool *p, const char *label, const char *copy_path,
                              const char *tar_path, oc_comp comp, uint64_t size_hint,
                              uint64_t max_tar, oc_error *err)
{
    oc_blobsink *s = calloc(1, sizeof *s);
    if (!s) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    s->pool = p;
    s->copy_fd = s->tar_fd = -1;
    s->copy_of.dfd = s->tar_of.dfd = -1;
    s->inflate = tar_path != NULL;
    s->in_max = p->in_chunks;
    s->out_max = p->out_bufs;
    s->cap = p->chunk_size;
    if (size_hint && size_hint < s->cap)
        s->cap = size_hint < MIN_CHUNK ? MIN_CHUNK : (size_t)size_hint;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    oc_strand_init(&s->s_digest, p->read);
    oc_strand_init(&s->s_inflate, p->read);
    oc_strand_init(&s->s_tar, p->write);
    s->label = strdup(label ? label : "blob");
    s->copy_path = copy_path ? strdup(copy_path) : NULL;
    s->tar_path = tar_path ? strdup(tar_path) : NULL;
    s->h = oc_sha256_new();
    s->h_tar = s->inflate ? oc_sha256_new() : NULL;
    s->inf = s->inflate ? oc_inflater_new(comp, inflate_out, s, max_tar) : NULL;
    if (!s->label || (copy_path && !s->copy_path) || (tar_path && !s->tar_path) || !s->h ||
        (s->inflate && (!s->h_tar || !s->inf))) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        oc_blobsink_free(s, 0);
        return NULL;
    }
    s->res.inflated = s->inflate;
    if ((copy_path && (s->copy_fd = open_out(copy_path, err)) < 0) ||
        (tar_path && (s->tar_fd = open_out(tar_path, err)) < 0)) {
        oc_blobsink_free(s, 0);
        return NULL;
    }
    if (s->copy_fd >= 0)
        oc_outfile_init(&s->copy_of, s->copy_fd, p->write_mode, OC_OUTFILE_DURABLE);
    if (s->tar_fd >= 0)
        oc_outfile_init(&s->tar_of, s->tar_fd, p->write_mode, OC_OUTFILE_DURABLE);
    return s;
}

static void post_chunk(oc_blobsink *s, in_chunk *c)
{
    c->t_digest.run = run_digest;
    c->t_inflate.run = run_inflate;
    pthread_mutex_lock(&s->lock);
    c->refs = s->inflate ? 2 : 1;
    s->pending += c->refs;
    pthread_mutex_unlock(&s->lock);
    oc_strand_post(&s->s_digest, &c->t_digest);
    if (s->inflate)
        oc_strand_post(&s->s_inflate, &c->t_inflate);
}

/* A free or new input chunk, waiting while all are in use; NULL on a
 * failure (err). */
static in_chunk *chunk_get(oc_blobsink *s, oc_error *err)
{
    in_chunk *c = NULL;
    int make = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->failed) {
            *err = s->err;
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        if (s->free_in) {
            c = s->free_in;
            s->free_in = c->next_free;
            break;
        }
        if (s->in_alloc < s->in_max) {
            s->in_alloc++;
            make = 1;
            break;
        }
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    if (make) {
        c = calloc(1, sizeof *c);
        unsigned char *buf = c ? buf_alloc(s->cap) : NULL;
        if (!buf) {
            free(c);
            pthread_mutex_lock(&s->lock);
            s->in_alloc--;
            pthread_mutex_unlock(&s->lock);
            oc_error_set(err, OC_E_NOMEM, "%s: out of memory", s->label);
            return NULL;
        }
        c->buf = buf;
        c->cap = s->cap;
        c->s = s;
    }
    c->kind = MSG_DATA;
    c->len = 0;
    return c;
}

int oc_blobsink_write(oc_blobsink *s, const void *data, size_t len, oc_error *err)
{
    const unsigned char *src = data;
    while (len > 0) {
        if (!s->filling && !(s->filling = chunk_get(s, err)))
            return -1;
        in_chunk *c = s->filling;
        size_t take = c->cap - c->len < len ? c->cap - c->len : len;
        memcpy(c->buf + c->len, src, take);
        c->len += take;
        src += take;
        len -= take;
        if (c->len == c->cap) {
            s->filling = NULL;
            post_chunk(s, c);
        }
    }
    pthread_mutex_lock(&s->lock);
    int failed = s->failed;
    if (failed)
        *err = s->err;
    pthread_mutex_unlock(&s->lock);
    return failed ? -1 : 0;
}

int oc_blobsink_finish(oc_blobsink *s, oc_blobsink_result *res, oc_error *err)
{
    if (s->filling) {
        in_chunk *c = s->filling;
        s->filling = NULL;
        if (c->len > 0) {
            post_chunk(s, c);
        } else {
            pthread_mutex_lock(&s->lock);
            c->next_free = s->free_in;
            s->free_in = c;
            pthread_mutex_unlock(&s->lock);
        }
    }
    pthread_mutex_lock(&s->lock);
    s->finish_refs = s->inflate ? 2 : 1;
    pthread_mutex_unlock(&s->lock);
    s->fin_in.kind = MSG_FINISH;
    s->fin_in.s = s;
    post_chunk(s, &s->fin_in);
    pthread_mutex_lock(&s->lock);
    while (s->finish_refs > 0)
        pthread_cond_wait(&s->cond, &s->lock);
    int failed = s->failed;
    if (failed)
        *err = s->err;
    pthread_mutex_unlock(&s->lock);
    if (failed)
        return -1;
    oc_outfile_close(&s->copy_of);
    oc_outfile_close(&s->tar_of);
    if ((s->copy_fd >= 0 && close(s->copy_fd) != 0) || (s->tar_fd >= 0 && close(s->tar_fd) != 0)) {
        oc_error_errno(err, errno, "%s: closing its files", s->label);
        s->copy_fd = s->tar_fd = -1;
        return -1;
    }
    s->copy_fd = s->tar_fd = -1;
    *res = s->res;
    return 0;
}

void oc_blobsink_free(oc_blobsink *s, int keep)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->abandoned = 1;
    pthread_cond_broadcast(&s->cond);
    while (s->pending > 0)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    /* a worker touches a strand after its last task */
    oc_strand_wait_idle(&s->s_digest);
    oc_strand_wait_idle(&s->s_inflate);
    oc_strand_wait_idle(&s->s_tar);
    while (s->free_in) {
        in_chunk *c = s->free_in;
        s->free_in = c->next_free;
        free(c->buf);
        free(c);
    }
    if (s->filling) {
        free(s->filling->buf);
        free(s->filling);
    }
    if (s->out_filling) {
        free(s->out_filling->buf);
        free(s->out_filling);
    }
    while (s->free_out) {
        out_buf *o = s->free_out;
        s->free_out = o->next_free;
        free(o->buf);
        free(o);
    }
    oc_outfile_close(&s->copy_of);
    oc_outfile_close(&s->tar_of);
    if (s->copy_fd >= 0)
        close(s->copy_fd);
    if (s->tar_fd >= 0)
        close(s->tar_fd);
    if (!keep && s->copy_path)
        (void)unlink(s->copy_path);
    if (!keep && s->tar_path)
        (void)unlink(s->tar_path);
    oc_sha256_free(s->h);
    oc_sha256_free(s->h_tar);
    oc_inflater_free(s->inf);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->label);
    free(s->copy_path);
    free(s->tar_path);
    free(s);
}
