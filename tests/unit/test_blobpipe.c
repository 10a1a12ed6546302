/* test_blobpipe.c - the per-blob pipeline (io/blobpipe.h) driven from a real
 * libuv loop, as the HTTP layer drives it.
 *
 * Streams (gzip, multi-member gzip, zstd, plain; truncated and corrupted
 * ones) are made at test time with the gzip and zstd tools from a few MiB of
 * random and text data. They are fed from a uv_idle callback in random-sized
 * pieces, with small buffers (4 KiB chunks, 2 input chunks, 1 output buffer)
 * so the pipe pauses often; a "pause" answer stops the feeding until
 * on_writable. The tests check what on_finished reports (compressed SHA-256
 * and size, diff_id SHA-256 and size, compression, stream_ok and its error),
 * the temp file's content, that take_file keeps the file and release alone
 * removes it, restart (from 0, no-op, refused), release with work in flight,
 * max_out, a disk-full write (a 64 KiB tmpfs; needs root), several pipes at
 * once, releasing pipes from callbacks while events are queued (the engine's
 * failed-image path), writes larger than the whole input pool, and the pause
 * contract itself. Issue 18: every write mode (direct, writeback, buffered,
 * auto) gives the same file, also with a 1 MiB chunk and an unaligned end,
 * and on tmpfs; zero pieces past the end become holes and the file still
 * reads back whole; a budget shared by two pipes fails the one that takes
 * their sum beyond it; the output moves mid-stream (move_output).
 *
 * The driver (run_pipes) never asserts: it records an outcome and always
 * tears down (release, ctx close, loop close), so a failing case neither
 * hangs (a watchdog timer stops the loop) nor leaves threads behind. Cases
 * that may touch freed memory when they fail run in a forked child. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "io/blobpipe.h"
#include "io/digest.h"
#include "testutil.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

static char tmpdir[512];

/* ---- test data, made once ---- */

typedef struct blob {
    unsigned char *b;
    size_t n;
    char hex[OC_SHA256_HEX_LEN + 1];
} blob;

static blob plain;    /* the uncompressed data */
static blob gz;       /* gzip -6 */
static blob gz_multi; /* three gzip members, concatenated */
static blob zst;      /* zstd -3 (with its content checksum) */
static int have_gzip, have_zstd;

static void blob_hash(blob *b)
{
    oc_sha256_buf_hex(b->b, b->n, b->hex);
}

/* 3 MiB + a bit: 48 KiB segments alternating incompressible bytes
 * (xorshift) and text, so igzip and zstd see both kinds of block. */
static void make_plain(size_t len)
{
    static const char *words[] = {"layer ",     "tar ",       "sha256 ", "manifest ", "blob ",
                                  "registry\n", "occystrap ", "zstd ",   "gzip ",     "usr/lib/"};
    plain.b = malloc(len);
    plain.n = len;
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len;) {
        int text = (i / (48 * KIB)) % 2;
        size_t end = (i / (48 * KIB) + 1) * 48 * KIB;
        if (end > len)
            end = len;
        while (i < end) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if (!text) {
                plain.b[i++] = (unsigned char)x;
            } else {
                const char *w = words[x % 10];
                for (size_t k = 0; w[k] && i < end; k++)
                    plain.b[i++] = (unsigned char)w[k];
            }
        }
    }
    blob_hash(&plain);
}

static int compress_file(const char *cmd, const char *in, blob *out)
{
    char line[2048], path[700];
    snprintf(path, sizeof path, "%s/out.tmp", tmpdir);
    snprintf(line, sizeof line, "%s '%s' > '%s'", cmd, in, path);
    if (system(line) != 0)
        return -1;
    out->b = (unsigned char *)tu_slurp(path, &out->n);
    unlink(path);
    if (!out->b)
        return -1;
    blob_hash(out);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    if (tu_mkdtemp(tmpdir, sizeof tmpdir, "blobpipe") != 0)
        return -1;
    make_plain(3 * MIB + 12345);
    char in[700];
    snprintf(in, sizeof in, "%s/plain", tmpdir);
    if (tu_write_file(in, plain.b, plain.n) != 0)
        return -1;
    have_gzip = tu_have_tool("gzip");
    have_zstd = tu_have_tool("zstd");
    if (have_gzip) {
        if (compress_file("gzip -6 -c", in, &gz) != 0)
            return -1;
        /* three members: thirds of the data, compressed apart */
        size_t third = plain.n / 3;
        size_t cuts[4] = {0, third, 2 * third, plain.n};
        size_t total = 0;
        unsigned char *all = NULL;
        for (int m = 0; m < 3; m++) {
            char part[700];
            snprintf(part, sizeof part, "%s/part%d", tmpdir, m);
            if (tu_write_file(part, plain.b + cuts[m], cuts[m + 1] - cuts[m]) != 0)
                return -1;
            blob member;
            if (compress_file("gzip -1 -c", part, &member) != 0)
                return -1;
            unsigned char *grown = realloc(all, total + member.n);
            if (!grown)
                return -1;
            all = grown;
            memcpy(all + total, member.b, member.n);
            total += member.n;
            free(member.b);
            unlink(part);
        }
        gz_multi.b = all;
        gz_multi.n = total;
        blob_hash(&gz_multi);
    }
    if (have_zstd && compress_file("zstd -q -3 -c", in, &zst) != 0)
        return -1;
    unlink(in);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(plain.b);
    free(gz.b);
    free(gz_multi.b);
    free(zst.b);
    return tu_rmtree(tmpdir);
}

#define NEED(flag, tool)                                                                           \
    do {                                                                                           \
        if (!(flag)) {                                                                             \
            print_message("%s not installed: skipping\n", tool);                                   \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- the driver ---- */

typedef struct pcase {
    oc_comp comp;
    const unsigned char *data; /* fed after the optional prefix */
    size_t len;
    const unsigned char *prefix; /* fed first, then restart(0), then data */
    size_t prefix_len;
    size_t max_piece;   /* random piece sizes 1..max_piece (0 = chunk size) */
    size_t fixed_piece; /* or always this size */
    uint64_t size_hint;
    uint64_t max_out;
    const char *tmp_dir; /* NULL: a fresh directory */
    int take_file;
    long long restart_at;      /* restart(0) once this many bytes were fed; -1 never */
    long long noop_restart_at; /* restart(received), restart(received +- 1) here; -1 never */
    long long release_at;      /* release without finish here; -1 never */
    int refeed_after_finish;   /* on the first on_finished: restart(0) and feed it all again */
    int finish_on_write_error; /* else release */
    int feed_in_writable;      /* feed from on_writable itself */
    int sync_feed;             /* feed and finish before the loop runs (must not pause) */
    int sleep_before_run_ms;   /* then let the workers drain before running the loop */
    int release_before_run;    /* then release before running the loop */
    int release_peers;         /* on_finished releases the other pipes of the run */
    int group;                 /* with release_group: the pipes of one "image" */
    int release_group;         /* a failed on_finished releases the pipes of its group */
    int callback_sleep_us;     /* a slow callback (more time for workers to notify) */
    int no_finish;             /* feed everything but never finish, never release */
    int no_sync;               /* oc_blobpipe_set_no_sync */
    const char *partial_path;  /* oc_blobpipe_keep_partial(path, partial_max) */
    uint64_t partial_max;
    int drop_partial;      /* oc_blobpipe_drop_partial at on_finished */
    const char *keep_path; /* oc_blobpipe_keep_compressed(path, len of data) */
    int digest_only;       /* oc_blobpipe_set_digest_only */
    int out_fd;            /* > 0: oc_blobpipe_set_output(out_fd, out_base) */
    uint64_t out_base;
    oc_blobpipe_budget *budget; /* oc_blobpipe_set_budget */
    long long move_at;          /* oc_blobpipe_move_output(move_fd, move_base) once this many
                                   bytes were fed; -1 never */
    int move_in_finished;       /* or from on_finished (too late by then) */
    int move_fd;
    uint64_t move_base;
} pcase;

typedef struct outcome {
    int new_failed;
    oc_error new_err;
    int finished;
    int finished_after_release;
    int res_null[2];
    oc_blob_result res[2];
    int err_code[2];
    char err_msg[2][300];
    char file_hex[2][OC_SHA256_HEX_LEN + 1];
    uint64_t file_size[2];
    uint64_t file_disk[2]; /* bytes the file takes on disk (st_blocks) */
    int file_count[2];     /* temp files in the directory at on_finished */
    int write_failed;
    oc_error write_err;
    int writes_after_fail_ok; /* a write answered 0 after one answered -1 */
    int pauses, writables, spurious_writables;
    int retry_paused_again; /* the write retried after on_writable paused again */
    int pause_took_bytes;   /* received changed although write said pause */
    int noop_restart_rc;
    int bad_restart_rc[2];
    int bad_restart_code;
    uint64_t received_after_restart;
    int restart_rc;
    int timed_out;
    int files_left; /* temp files in the directory after everything */
    char *taken;    /* take_file's path (malloc'd) */
    int taken_exists_after;
    int loop_close_rc;
    int handles_left;
    uint64_t partial_have; /* what keep_partial returned */
    int keep_rc;           /* what keep_compressed returned */
    oc_error keep_err;
    uint64_t received_at_start;
    int set_output_rc;
    int set_output_late_rc; /* set_output again after bytes arrived */
    int set_output_late_code;
    int take_file_null; /* take_file returned NULL (output set) */
    int move_rc;
} outcome;

typedef struct feeder feeder;
struct feeder {
    const pcase *c;
    outcome *o;
    uv_loop_t *loop;
    oc_blobpipe *p;
    uv_idle_t idle;
    int idle_on;
    char dir[600];
    int phase; /* 0: prefix, 1: data */
    size_t pos;
    size_t retry_n; /* the piece that was refused with "pause" */
    int retrying;
    int paused;
    int stopped; /* no more feeding */
    int released;
    int restarted, noop_done, moved;
    uint32_t rng;
    feeder *peers;
    int n_peers;
};

static void idle_start(feeder *f);

static int count_files(const char *dir, char *one, size_t one_len)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == 0 && one)
            snprintf(one, one_len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void feeder_release(feeder *f)
{
    if (f->released || !f->p)
        return;
    f->released = 1;
    f->stopped = 1;
    if (f->idle_on) {
        uv_idle_stop(&f->idle);
        f->idle_on = 0;
    }
    oc_blobpipe_release(f->p);
}

static void feeder_finish(feeder *f)
{
    f->stopped = 1;
    if (f->idle_on) {
        uv_idle_stop(&f->idle);
        f->idle_on = 0;
    }
    if (f->c->no_finish)
        return;
    oc_blobpipe_finish(f->p);
}

static uint32_t rnd(feeder *f)
{
    f->rng = f->rng * 1664525u + 1013904223u;
    return f->rng >> 8;
}

/* Feed up to budget pieces; stops at a pause, the end or a failure. */
static void feed_some(feeder *f, int budget)
{
    const pcase *c = f->c;
    outcome *o = f->o;
    size_t chunk_default = 4096;
    while (budget-- > 0 && !f->paused && !f->stopped) {
        const unsigned char *buf = f->phase == 0 ? c->prefix : c->data;
        size_t len = f->phase == 0 ? c->prefix_len : c->len;
        if (f->phase == 1 && c->release_at >= 0 && (long long)f->pos >= c->release_at) {
            feeder_release(f);
            return;
        }
        if (f->pos == len) {
            if (f->phase == 0) {
                oc_error err;
                o->restart_rc = oc_blobpipe_restart(f->p, 0, &err);
                o->received_after_restart = oc_blobpipe_received(f->p);
                f->phase = 1;
                f->pos = 0;
                continue;
            }
            feeder_finish(f);
            return;
        }
        if (f->phase == 1 && c->move_at >= 0 && !f->moved && (long long)f->pos >= c->move_at) {
            f->moved = 1;
            oc_error err;
            o->move_rc = oc_blobpipe_move_output(f->p, c->move_fd, c->move_base, &err);
        }
        if (f->phase == 1 && c->restart_at >= 0 && !f->restarted &&
            (long long)f->pos >= c->restart_at) {
            f->restarted = 1;
            oc_error err;
            o->restart_rc = oc_blobpipe_restart(f->p, 0, &err);
            o->received_after_restart = oc_blobpipe_received(f->p);
            f->pos = 0;
            continue;
        }
        if (f->phase == 1 && c->noop_restart_at >= 0 && !f->noop_done &&
            (long long)f->pos >= c->noop_restart_at) {
            f->noop_done = 1;
            oc_error err;
            uint64_t r = oc_blobpipe_received(f->p);
            o->noop_restart_rc = oc_blobpipe_restart(f->p, r, &err);
            oc_error_clear(&err);
            o->bad_restart_rc[0] = oc_blobpipe_restart(f->p, r + 1, &err);
            o->bad_restart_code = err.code;
            o->bad_restart_rc[1] = r > 1 ? oc_blobpipe_restart(f->p, r - 1, &err) : -1;
        }
        size_t n;
        if (f->retrying) {
            n = f->retry_n;
        } else if (c->fixed_piece) {
            n = c->fixed_piece;
        } else {
            size_t maxp = c->max_piece ? c->max_piece : chunk_default;
            n = 1 + rnd(f) % maxp;
        }
        if (n > len - f->pos)
            n = len - f->pos;
        uint64_t before = oc_blobpipe_received(f->p);
        oc_error err;
        oc_error_clear(&err);
        int rc = oc_blobpipe_write(f->p, buf + f->pos, n, &err);
        if (rc == 0) {
            if (o->write_failed)
                o->writes_after_fail_ok++;
            f->pos += n;
            f->retrying = 0;
        } else if (rc == 1) {
            if (oc_blobpipe_received(f->p) != before)
                o->pause_took_bytes++;
            if (f->retrying)
                o->retry_paused_again++;
            o->pauses++;
            f->paused = 1;
            f->retrying = 1;
            f->retry_n = n;
            if (f->idle_on) {
                uv_idle_stop(&f->idle);
                f->idle_on = 0;
            }
            return;
        } else {
            o->write_failed = 1;
            o->write_err = err;
            if (c->finish_on_write_error)
                feeder_finish(f);
            else
                feeder_release(f);
            return;
        }
    }
}

static void on_idle(uv_idle_t *h)
{
    feeder *f = h->data;
    feed_some(f, 64);
}

static void idle_start(feeder *f)
{
    if (!f->idle_on && !f->stopped && !f->released) {
        uv_idle_start(&f->idle, on_idle);
        f->idle_on = 1;
    }
}

static void on_writable(void *opaque)
{
    feeder *f = opaque;
    f->o->writables++;
    if (f->c->callback_sleep_us)
        usleep((useconds_t)f->c->callback_sleep_us);
    if (f->released)
        f->o->finished_after_release += 1000; /* a callback after release */
    if (!f->paused)
        f->o->spurious_writables++;
    f->paused = 0;
    if (f->c->feed_in_writable)
        feed_some(f, 1 << 30);
    else
        idle_start(f);
}

static void on_finished(void *opaque, const oc_blob_result *res, const oc_error *err)
{
    feeder *f = opaque;
    outcome *o = f->o;
    int k = o->finished < 2 ? o->finished : 1;
    o->finished++;
    if (f->released)
        o->finished_after_release++;
    o->res_null[k] = res == NULL;
    if (res)
        o->res[k] = *res;
    o->err_code[k] = err ? (int)err->code : 0;
    snprintf(o->err_msg[k], sizeof o->err_msg[k], "%.290s", err ? err->msg : "");
    char one[900] = "";
    if (f->c->move_in_finished) {
        oc_error e;
        o->move_rc = oc_blobpipe_move_output(f->p, f->c->move_fd, f->c->move_base, &e);
    }
    o->file_count[k] = count_files(f->dir, one, sizeof one);
    if (f->c->take_file && !f->c->refeed_after_finish) {
        free(o->taken);
        o->taken = oc_blobpipe_take_file(f->p);
        o->take_file_null = o->taken == NULL;
        if (o->taken)
            snprintf(one, sizeof one, "%s", o->taken);
    }
    if (f->c->out_fd > 0) {
        oc_error e;
        oc_error_clear(&e);
        o->set_output_late_rc = oc_blobpipe_set_output(f->p, f->c->out_fd, 0, &e);
        o->set_output_late_code = e.code;
    }
    if (f->c->drop_partial)
        oc_blobpipe_drop_partial(f->p);
    if (one[0]) {
        oc_error e;
        if (oc_sha256_file_hex(one, o->file_hex[k], &o->file_size[k], &e) != 0)
            o->file_hex[k][0] = '\0';
        struct stat st;
        if (stat(one, &st) == 0)
            o->file_disk[k] = (uint64_t)st.st_blocks * 512;
    }
    if (f->c->refeed_after_finish && o->finished == 1) {
        oc_error e;
        o->restart_rc = oc_blobpipe_restart(f->p, 0, &e);
        o->received_after_restart = oc_blobpipe_received(f->p);
        f->pos = 0;
        f->phase = 1;
        f->stopped = 0;
        f->retrying = 0;
        idle_start(f);
        return;
    }
    if (f->c->release_peers) {
        for (int i = 0; i < f->n_peers; i++)
            if (&f->peers[i] != f)
                feeder_release(&f->peers[i]);
    }
    if (f->c->release_group && (!res || !res->stream_ok)) {
        for (int i = 0; i < f->n_peers; i++)
            if (&f->peers[i] != f && f->peers[i].c->group == f->c->group)
                feeder_release(&f->peers[i]);
    }
    if (f->c->callback_sleep_us)
        usleep((useconds_t)f->c->callback_sleep_us);
    feeder_release(f);
}

static void on_watchdog(uv_timer_t *t)
{
    int *timed_out = t->data;
    *timed_out = 1;
    uv_stop(t->loop);
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

/* Run n pipes of one context on one loop. Never asserts. */
static void run_pipes(const pcase *cases, outcome *outs, int n, const oc_blobpipe_opts *opts,
                      int watchdog_s)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        abort();
    oc_error err;
    oc_blobpipe_ctx *ctx = oc_blobpipe_ctx_new(&loop, opts, &err);
    if (!ctx)
        abort();
    feeder *fs = calloc((size_t)n, sizeof *fs);
    if (!fs)
        abort();
    int timed_out = 0;
    uv_timer_t dog;
    uv_timer_init(&loop, &dog);
    dog.data = &timed_out;
    /* OCCY_TEST_TIMEOUT_SCALE=N stretches the watchdog (valgrind, TSan) */
    const char *scale = getenv("OCCY_TEST_TIMEOUT_SCALE");
    uint64_t dog_ms = (uint64_t)watchdog_s * 1000 * (scale && atoi(scale) > 0 ? atoi(scale) : 1);
    uv_timer_start(&dog, on_watchdog, dog_ms, 0);
    uv_unref((uv_handle_t *)&dog);

    for (int i = 0; i < n; i++) {
        feeder *f = &fs[i];
        memset(&outs[i], 0, sizeof outs[i]);
        outs[i].noop_restart_rc = outs[i].bad_restart_rc[0] = outs[i].bad_restart_rc[1] = 99;
        f->c = &cases[i];
        f->o = &outs[i];
        f->loop = &loop;
        f->peers = fs;
        f->n_peers = n;
        f->rng = 0x9e3779b9u * (uint32_t)(i + 1);
        uv_idle_init(&loop, &f->idle);
        f->idle.data = f;
        if (f->c->tmp_dir) {
            snprintf(f->dir, sizeof f->dir, "%s", f->c->tmp_dir);
        } else {
            snprintf(f->dir, sizeof f->dir, "%s/run-XXXXXX", tmpdir);
            if (!mkdtemp(f->dir))
                abort();
        }
        f->phase = f->c->prefix ? 0 : 1;
        oc_blobpipe_cbs cbs = {on_writable, on_finished, f};
        f->p = oc_blobpipe_new(ctx, f->dir, "test-blob", f->c->comp, f->c->size_hint, f->c->max_out,
                               &cbs, &err);
        if (f->p && f->c->no_sync)
            oc_blobpipe_set_no_sync(f->p, 1);
        if (f->p && f->c->budget)
            oc_blobpipe_set_budget(f->p, f->c->budget);
        if (f->p && f->c->out_fd > 0)
            outs[i].set_output_rc =
                oc_blobpipe_set_output(f->p, f->c->out_fd, f->c->out_base, &err);
        if (f->p && f->c->digest_only)
            oc_blobpipe_set_digest_only(f->p);
        if (f->p && f->c->keep_path) {
            oc_error_clear(&outs[i].keep_err);
            outs[i].keep_rc = oc_blobpipe_keep_compressed(f->p, f->c->keep_path, f->c->len,
                                                          &outs[i].partial_have, &outs[i].keep_err);
            f->pos = (size_t)outs[i].partial_have;
            if (outs[i].keep_rc != 0) {
                oc_blobpipe_release(f->p);
                f->stopped = 1;
                f->released = 1;
            }
        }
        if (f->p && f->c->partial_path) {
            outs[i].partial_have =
                oc_blobpipe_keep_partial(f->p, f->c->partial_path, f->c->partial_max);
            f->pos = (size_t)outs[i].partial_have; /* the transfer asks for the rest */
        }
        if (f->p)
            outs[i].received_at_start = oc_blobpipe_received(f->p);
        if (!f->p) {
            outs[i].new_failed = 1;
            outs[i].new_err = err;
            f->stopped = 1;
            f->released = 1;
        }
    }
    for (int i = 0; i < n; i++) {
        feeder *f = &fs[i];
        if (f->stopped)
            continue;
        if (f->c->sync_feed) {
            feed_some(f, 1 << 30);
            if (f->paused) /* not expected with the sizes used */
                outs[i].timed_out = 2;
        } else {
            idle_start(f);
        }
    }
    for (int i = 0; i < n; i++)
        if (fs[i].c->sleep_before_run_ms)
            usleep((useconds_t)fs[i].c->sleep_before_run_ms * 1000);
    for (int i = 0; i < n; i++)
        if (fs[i].c->release_before_run)
            feeder_release(&fs[i]);

    uv_run(&loop, UV_RUN_DEFAULT);

    for (int i = 0; i < n; i++) {
        if (timed_out)
            outs[i].timed_out = 1;
        feeder_release(&fs[i]);
    }
    /* the pipes may still drain; the context waits for them */
    oc_blobpipe_ctx_close(ctx, NULL, NULL);
    for (int i = 0; i < n; i++)
        uv_close((uv_handle_t *)&fs[i].idle, NULL);
    uv_close((uv_handle_t *)&dog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    int handles = 0;
    uv_walk(&loop, count_handle, &handles);
    int rc = uv_loop_close(&loop);
    for (int i = 0; i < n; i++) {
        outs[i].loop_close_rc = rc;
        outs[i].handles_left = handles;
        if (outs[i].taken) {
            outs[i].taken_exists_after = access(outs[i].taken, F_OK) == 0;
            unlink(outs[i].taken);
        }
        outs[i].files_left = count_files(fs[i].dir, NULL, 0);
        if (!fs[i].c->tmp_dir)
            rmdir(fs[i].dir);
    }
    free(fs);
}

static void run_one(const pcase *c, outcome *o, const oc_blobpipe_opts *opts)
{
    run_pipes(c, o, 1, opts, 120);
}

static const oc_blobpipe_opts small_opts = {
    .threads = 2, .chunk_size = 4096, .in_chunks = 2, .out_bufs = 1};

static pcase base_case(oc_comp comp, const blob *b)
{
    pcase c;
    memset(&c, 0, sizeof c);
    c.comp = comp;
    c.data = b->b;
    c.len = b->n;
    c.restart_at = c.noop_restart_at = c.release_at = c.move_at = -1;
    return c;
}

/* ---- checks ---- */

static void check_clean(const outcome *o, int k, const blob *compressed, oc_comp comp)
{
    assert_int_equal(o->new_failed, 0);
    assert_int_equal(o->timed_out, 0);
    if (o->res_null[k])
        fail_msg("on_finished #%d reported a local failure: %s", k, o->err_msg[k]);
    const oc_blob_result *r = &o->res[k];
    if (!r->stream_ok)
        fail_msg("stream not ok: %s", r->stream_err.msg);
    assert_int_equal(o->err_code[k], 0);
    assert_string_equal(r->compressed_hex, compressed->hex);
    assert_int_equal(r->compressed_size, compressed->n);
    assert_string_equal(r->diff_hex, plain.hex);
    assert_int_equal(r->diff_size, plain.n);
    assert_int_equal(r->comp, comp);
    /* the temp file holds exactly the uncompressed data */
    assert_string_equal(o->file_hex[k], plain.hex);
    assert_int_equal(o->file_size[k], plain.n);
    assert_int_equal(o->pause_took_bytes, 0);
}

static void check_teardown(const outcome *o)
{
    assert_int_equal(o->loop_close_rc, 0);
    assert_int_equal(o->handles_left, 0);
    assert_int_equal(o->finished_after_release, 0);
}

/* ---- streams that decompress cleanly ---- */

static void clean_run(oc_comp comp, const blob *b, oc_comp want_comp, int take)
{
    pcase c = base_case(comp, b);
    c.take_file = take;
    c.no_sync = !take; /* the result must not depend on it */
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, b, want_comp);
    check_teardown(&o);
    if (take) {
        /* the file survived release (run_pipes removed it afterwards) */
        assert_non_null(o.taken);
        assert_true(o.taken_exists_after);
        assert_int_equal(o.file_count[0], 1);
        assert_int_equal(o.files_left, 0);
    } else {
        assert_null(o.taken);
        assert_int_equal(o.file_count[0], 1);
        assert_int_equal(o.files_left, 0); /* release removed it */
    }
    free(o.taken);
}

static void test_gzip(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    clean_run(OC_COMP_GZIP, &gz, OC_COMP_GZIP, 1);
    clean_run(OC_COMP_GZIP, &gz, OC_COMP_GZIP, 0);
    clean_run(OC_COMP_AUTO, &gz, OC_COMP_GZIP, 1);
}

static void test_gzip_multi_member(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    clean_run(OC_COMP_GZIP, &gz_multi, OC_COMP_GZIP, 1);
    clean_run(OC_COMP_AUTO, &gz_multi, OC_COMP_GZIP, 0);
}

static void test_zstd(void **state)
{
    (void)state;
    NEED(have_zstd, "zstd");
    clean_run(OC_COMP_ZSTD, &zst, OC_COMP_ZSTD, 1);
    clean_run(OC_COMP_AUTO, &zst, OC_COMP_ZSTD, 0);
}

static void test_plain_auto(void **state)
{
    (void)state;
    clean_run(OC_COMP_AUTO, &plain, OC_COMP_NONE, 1);
    clean_run(OC_COMP_NONE, &plain, OC_COMP_NONE, 0);
}

/* Bigger pieces (up to 3 chunks) with 4 input chunks, default-sized and
 * multi-threaded pools: pieces span chunk boundaries. */
static void test_gzip_big_pieces(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    oc_blobpipe_opts opts = {.threads = 0, .chunk_size = 4096, .in_chunks = 4, .out_bufs = 2};
    pcase c = base_case(OC_COMP_GZIP, &gz);
    c.max_piece = 3 * 4096;
    c.take_file = 1;
    outcome o;
    run_one(&c, &o, &opts);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    check_teardown(&o);
    free(o.taken);

    /* and the defaults (1 MiB chunks), fed in curl-sized pieces */
    c.max_piece = 256 * KIB;
    run_one(&c, &o, NULL);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    check_teardown(&o);
    free(o.taken);
}

static void test_empty_stream(void **state)
{
    (void)state;
    blob empty = {(unsigned char *)"", 0, ""};
    blob_hash(&empty);
    pcase c = base_case(OC_COMP_AUTO, &empty);
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.finished, 1);
    assert_false(o.res_null[0]);
    assert_true(o.res[0].stream_ok);
    assert_int_equal(o.res[0].compressed_size, 0);
    assert_int_equal(o.res[0].diff_size, 0);
    assert_string_equal(o.res[0].compressed_hex, empty.hex);
    assert_string_equal(o.res[0].diff_hex, empty.hex);
    check_teardown(&o);
    assert_int_equal(o.files_left, 0);

    /* an empty "gzip" blob is a truncated stream */
    c.comp = OC_COMP_GZIP;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.finished, 1);
    assert_false(o.res_null[0]);
    assert_false(o.res[0].stream_ok);
    assert_int_equal(o.res[0].stream_err.code, OC_E_FORMAT);
    assert_string_equal(o.res[0].compressed_hex, empty.hex);
}

/* A blob smaller than a chunk, with its size as hint (the pipe sizes its
 * buffers down, never below 4 KiB). */
static void test_small_blob_size_hint(void **state)
{
    (void)state;
    blob small = {plain.b, 1000, ""};
    blob_hash(&small);
    for (uint64_t hint = 1; hint <= 100000; hint *= 10) {
        pcase c = base_case(OC_COMP_AUTO, &small);
        c.size_hint = hint;
        c.take_file = 1;
        c.max_piece = 300;
        outcome o;
        oc_blobpipe_opts opts = {
            .threads = 1, .chunk_size = 64 * KIB, .in_chunks = 2, .out_bufs = 1};
        run_one(&c, &o, &opts);
        assert_int_equal(o.finished, 1);
        assert_false(o.res_null[0]);
        assert_true(o.res[0].stream_ok);
        assert_string_equal(o.res[0].compressed_hex, small.hex);
        assert_string_equal(o.res[0].diff_hex, small.hex);
        assert_string_equal(o.file_hex[0], small.hex);
        assert_int_equal(o.file_size[0], 1000);
        check_teardown(&o);
        free(o.taken);
    }
}

/* ---- broken streams ---- */

static void broken_run(oc_comp comp, const unsigned char *b, size_t n, int truncated)
{
    blob bad = {(unsigned char *)b, n, ""};
    blob_hash(&bad);
    pcase c = base_case(comp, &bad);
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.timed_out, 0);
    assert_int_equal(o.finished, 1);
    assert_false(o.res_null[0]); /* a bad stream is not a local failure */
    assert_int_equal(o.err_code[0], 0);
    const oc_blob_result *r = &o.res[0];
    /* the compressed hash covers every byte, whatever the stream did */
    assert_string_equal(r->compressed_hex, bad.hex);
    assert_int_equal(r->compressed_size, n);
    if (truncated) {
        assert_false(r->stream_ok);
    } else if (r->stream_ok) {
        /* a flipped byte that still decodes must at least change the data */
        assert_string_not_equal(r->diff_hex, plain.hex);
    }
    if (!r->stream_ok) {
        assert_int_equal(r->stream_err.code, OC_E_FORMAT);
        assert_non_null(strstr(r->stream_err.msg, "test-blob")); /* labelled */
    }
    check_teardown(&o);
    assert_int_equal(o.files_left, 0);
}

static void test_truncated(void **state)
{
    (void)state;
    NEED(have_gzip && have_zstd, "gzip/zstd");
    broken_run(OC_COMP_GZIP, gz.b, gz.n / 2, 1);
    broken_run(OC_COMP_GZIP, gz.b, gz.n - 1, 1); /* one trailer byte missing */
    broken_run(OC_COMP_GZIP, gz.b, 5, 1);        /* inside the header */
    broken_run(OC_COMP_AUTO, gz_multi.b, gz_multi.n - 100, 1);
    broken_run(OC_COMP_ZSTD, zst.b, zst.n / 2, 1);
    broken_run(OC_COMP_ZSTD, zst.b, zst.n - 1, 1);
    broken_run(OC_COMP_AUTO, zst.b, zst.n / 3, 1);
}

static void test_corrupted(void **state)
{
    (void)state;
    NEED(have_gzip && have_zstd, "gzip/zstd");
    const blob *srcs[] = {&gz, &gz_multi, &zst};
    oc_comp comps[] = {OC_COMP_GZIP, OC_COMP_GZIP, OC_COMP_ZSTD};
    for (int i = 0; i < 3; i++) {
        for (int where = 1; where <= 3; where++) {
            unsigned char *bad = malloc(srcs[i]->n);
            assert_non_null(bad);
            memcpy(bad, srcs[i]->b, srcs[i]->n);
            bad[srcs[i]->n * (size_t)where / 4] ^= 0x55;
            broken_run(comps[i], bad, srcs[i]->n, 0);
            free(bad);
        }
    }
}

/* ---- restart ---- */

static void test_restart_mid_stream(void **state)
{
    (void)state;
    NEED(have_gzip && have_zstd, "gzip/zstd");
    const blob *srcs[] = {&gz, &zst, &plain};
    oc_comp comps[] = {OC_COMP_AUTO, OC_COMP_AUTO, OC_COMP_AUTO};
    oc_comp want[] = {OC_COMP_GZIP, OC_COMP_ZSTD, OC_COMP_NONE};
    for (int i = 0; i < 3; i++) {
        for (int frac = 1; frac <= 3; frac++) {
            pcase c = base_case(comps[i], srcs[i]);
            c.restart_at = (long long)(srcs[i]->n * (size_t)frac / 4);
            c.take_file = 1;
            outcome o;
            run_one(&c, &o, &small_opts);
            assert_int_equal(o.restart_rc, 0);
            assert_int_equal(o.received_after_restart, 0);
            assert_int_equal(o.finished, 1);
            check_clean(&o, 0, srcs[i], want[i]);
            check_teardown(&o);
            free(o.taken);
        }
    }
}

/* A failed stream (garbage, then a corrupted gzip prefix) is forgotten by
 * restart(0): the good stream fed next comes out clean, and the file holds
 * only its data (the file was truncated). */
static void test_restart_after_stream_error(void **state)
{
    (void)state;
    NEED(have_gzip && have_zstd, "gzip/zstd");
    unsigned char *bad = malloc(gz.n);
    assert_non_null(bad);
    memcpy(bad, gz.b, gz.n);
    bad[gz.n / 3] ^= 0xff;
    pcase c = base_case(OC_COMP_AUTO, &zst);
    c.prefix = bad;
    c.prefix_len = gz.n * 2 / 3;
    c.take_file = 1;
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.restart_rc, 0);
    assert_int_equal(o.finished, 1);
    /* AUTO decides again after a reset: the first stream was gzip */
    check_clean(&o, 0, &zst, OC_COMP_ZSTD);
    check_teardown(&o);
    free(o.taken);
    free(bad);

    /* plain data first, then gzip */
    c = base_case(OC_COMP_AUTO, &gz);
    c.prefix = plain.b;
    c.prefix_len = 100000;
    c.take_file = 1;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    free(o.taken);
}

static void test_restart_noop_and_refused(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    pcase c = base_case(OC_COMP_GZIP, &gz);
    c.noop_restart_at = (long long)gz.n / 2;
    c.take_file = 1;
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.noop_restart_rc, 0);
    assert_int_equal(o.bad_restart_rc[0], -1);
    assert_int_equal(o.bad_restart_rc[1], -1);
    assert_int_not_equal(o.bad_restart_code, OC_OK);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &gz, OC_COMP_GZIP); /* nothing changed */
    check_teardown(&o);
    free(o.taken);
}

/* The engine's "fetch it once more from scratch" after a verification
 * failure: restart(0) after on_finished, feed again, finish again. */
static void test_restart_after_finish(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    pcase c = base_case(OC_COMP_GZIP, &gz);
    c.refeed_after_finish = 1;
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.restart_rc, 0);
    assert_int_equal(o.received_after_restart, 0);
    assert_int_equal(o.finished, 2);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    check_clean(&o, 1, &gz, OC_COMP_GZIP); /* not doubled, not mixed */
    check_teardown(&o);
    assert_int_equal(o.files_left, 0);
}

/* ---- release ---- */

static void test_release_in_flight(void **state)
{
    (void)state;
    NEED(have_gzip && have_zstd, "gzip/zstd");
    const blob *srcs[] = {&gz, &zst, &plain};
    for (int i = 0; i < 3; i++) {
        for (int frac = 0; frac <= 4; frac++) {
            pcase c = base_case(OC_COMP_AUTO, srcs[i]);
            c.release_at = (long long)(srcs[i]->n * (size_t)frac / 4);
            c.max_piece = 4096;
            outcome o;
            run_one(&c, &o, &small_opts);
            assert_int_equal(o.timed_out, 0);
            assert_int_equal(o.finished, 0); /* no callback after release */
            check_teardown(&o);
            assert_int_equal(o.files_left, 0);
        }
    }
}

/* finish, then release before on_finished could run: no callback, no file */
static void test_release_after_finish_before_result(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    /* the whole stream fits in one chunk, so it can be fed and finished
     * before the loop runs; release follows at once */
    oc_blobpipe_opts opts = {.threads = 2, .chunk_size = 4 * MIB, .in_chunks = 2, .out_bufs = 1};
    pcase c = base_case(OC_COMP_GZIP, &gz);
    c.sync_feed = 1;
    c.max_piece = 64 * KIB;
    c.release_before_run = 1;
    outcome o;
    run_one(&c, &o, &opts);
    assert_int_equal(o.timed_out, 0);
    assert_int_equal(o.finished, 0);
    check_teardown(&o);
    assert_int_equal(o.files_left, 0);
}

/* Run fn in a child (it may touch freed memory if the pipe is wrong; ASan
 * reports it there). */
static void run_forked(int (*fn)(void), const char *what)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *scale = getenv("OCCY_TEST_TIMEOUT_SCALE");
        alarm(60 * (unsigned)(scale && atoi(scale) > 0 ? atoi(scale) : 1));
        exit(fn());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("%s: child killed by signal %d", what, WTERMSIG(status));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s: child exited with %d", what, WEXITSTATUS(status));
}

/* The pipe finished and its EV_FINISHED is queued for the loop, then the
 * loop thread releases it before the async callback ran (e.g. the image
 * failed for another reason). The queued event must not touch the freed
 * pipe. */
static int child_release_with_event_queued(void)
{
    blob small = {plain.b, 20000, ""};
    pcase c = base_case(OC_COMP_NONE, &small);
    c.sync_feed = 1;
    c.max_piece = 4096;
    c.sleep_before_run_ms = 300; /* the workers finish; the event waits */
    c.release_before_run = 1;
    oc_blobpipe_opts opts = {.threads = 2, .chunk_size = 64 * KIB, .in_chunks = 2, .out_bufs = 1};
    int bad = 0;
    for (int round = 0; round < 3; round++) {
        outcome o;
        run_one(&c, &o, &opts);
        /* scribble over freed memory, so a use after free shows without
         * ASan too */
        void *junk[256];
        for (int i = 0; i < 256; i++) {
            junk[i] = malloc(256 + (size_t)i * 16);
            if (junk[i])
                memset(junk[i], 0xa5, 256 + (size_t)i * 16);
        }
        for (int i = 0; i < 256; i++)
            free(junk[i]);
        if (o.finished != 0 || o.files_left != 0 || o.loop_close_rc != 0 || o.timed_out) {
            fprintf(stderr, "round %d: finished %d files_left %d loop_close %d timed_out %d\n",
                    round, o.finished, o.files_left, o.loop_close_rc, o.timed_out);
            bad = 1;
        }
    }
    return bad;
}

static void test_release_with_event_queued(void **state)
{
    (void)state;
    run_forked(child_release_with_event_queued, "release with an event queued");
}

/* Two pipes finish together; the first on_finished releases both (the
 * engine fails the image and releases all its layers). The second pipe's
 * event, already taken by the async callback, must not be delivered and
 * must not touch freed memory. */
static int child_release_peer_from_callback(void)
{
    blob small = {plain.b, 20000, ""};
    pcase c[2];
    for (int i = 0; i < 2; i++) {
        c[i] = base_case(OC_COMP_NONE, &small);
        c[i].sync_feed = 1;
        c[i].max_piece = 4096;
        c[i].sleep_before_run_ms = 150; /* both events queued before the loop runs */
        c[i].release_peers = 1;
    }
    oc_blobpipe_opts opts = {.threads = 2, .chunk_size = 64 * KIB, .in_chunks = 2, .out_bufs = 1};
    int bad = 0;
    for (int round = 0; round < 3; round++) {
        outcome o[2];
        run_pipes(c, o, 2, &opts, 30);
        int fin = o[0].finished + o[1].finished;
        if (fin != 1 || o[0].finished_after_release || o[1].finished_after_release ||
            o[0].files_left || o[1].files_left || o[0].loop_close_rc || o[0].timed_out) {
            fprintf(stderr,
                    "round %d: on_finished calls %d+%d (want 1 in all), after release %d+%d, "
                    "files left %d+%d, loop close %d, timed out %d\n",
                    round, o[0].finished, o[1].finished, o[0].finished_after_release,
                    o[1].finished_after_release, o[0].files_left, o[1].files_left,
                    o[0].loop_close_rc, o[0].timed_out);
            bad = 1;
        }
    }
    return bad;
}

static void test_release_peer_from_callback(void **state)
{
    (void)state;
    run_forked(child_release_peer_from_callback, "release a peer from on_finished");
}

/* The engine's failure path under load: pipes grouped in "images" of three;
 * the first pipe of each image gets a corrupt stream, and its on_finished
 * releases the other two while they are busy (pull.c releases every layer
 * of a failed image). Callbacks are slowed a little so workers notify while
 * the async callback walks its list. Pipes of the images that do not fail
 * must all finish, correctly; nothing may touch a freed pipe. */
static int child_group_failure(void)
{
    enum { GROUPS = 6, N = GROUPS * 3 };
    blob bad = {NULL, gz.n / 8, ""};
    bad.b = malloc(bad.n);
    if (!bad.b)
        return 2;
    memcpy(bad.b, gz.b, bad.n);
    bad.b[bad.n / 2] ^= 0x55;
    pcase c[N];
    outcome *o = calloc(N, sizeof *o);
    if (!o)
        return 2;
    int bad_rounds = 0;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            int g = i / 3;
            int failing_group = g % 2 == 0; /* half the images fail */
            c[i] = base_case(OC_COMP_AUTO, (i % 3 == 0 && failing_group) ? &bad : &gz);
            c[i].group = g;
            c[i].release_group = 1;
            c[i].callback_sleep_us = 200;
            c[i].feed_in_writable = i % 2;
        }
        run_pipes(c, o, N, &small_opts, 60);
        for (int i = 0; i < N; i++) {
            int g = i / 3;
            int failing_group = g % 2 == 0;
            int ok = !o[i].timed_out && o[i].files_left == 0 && o[i].loop_close_rc == 0 &&
                     o[i].finished_after_release == 0;
            if (!failing_group)
                ok = ok && o[i].finished == 1 && !o[i].res_null[0] && o[i].res[0].stream_ok &&
                     strcmp(o[i].res[0].diff_hex, plain.hex) == 0 &&
                     strcmp(o[i].res[0].compressed_hex, gz.hex) == 0;
            else if (i % 3 == 0)
                ok = ok && o[i].finished == 1 && !o[i].res[0].stream_ok;
            if (!ok) {
                fprintf(stderr,
                        "round %d pipe %d (image %d%s): finished %d, timed out %d, pauses %d, "
                        "on_writable %d, files left %d, loop close %d\n",
                        round, i, g, failing_group ? ", failing" : "", o[i].finished,
                        o[i].timed_out, o[i].pauses, o[i].writables, o[i].files_left,
                        o[i].loop_close_rc);
                bad_rounds++;
            }
        }
    }
    free(o);
    free(bad.b);
    return bad_rounds != 0;
}

static void test_group_failure_releases_peers(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    run_forked(child_group_failure, "an image fails and releases its busy layers");
}

/* ---- limits and local failures ---- */

static void test_max_out(void **state)
{
    (void)state;
    NEED(have_gzip && have_zstd, "gzip/zstd");
    const blob *srcs[] = {&gz, &zst, &plain};
    for (int i = 0; i < 3; i++) {
        pcase c = base_case(OC_COMP_AUTO, srcs[i]);
        c.max_out = plain.n / 2;
        outcome o;
        run_one(&c, &o, &small_opts);
        assert_int_equal(o.finished, 1);
        assert_false(o.res_null[0]);
        assert_false(o.res[0].stream_ok);
        assert_int_equal(o.res[0].stream_err.code, OC_E_LIMIT);
        assert_string_equal(o.res[0].compressed_hex, srcs[i]->hex);
        assert_int_equal(o.res[0].compressed_size, srcs[i]->n);
        assert_true(o.res[0].diff_size <= plain.n / 2);
        check_teardown(&o);
        assert_int_equal(o.files_left, 0);
    }
    /* exactly at the limit is fine */
    pcase c = base_case(OC_COMP_GZIP, &gz);
    c.max_out = plain.n;
    c.take_file = 1;
    outcome o;
    run_one(&c, &o, &small_opts);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    free(o.taken);
}

static void fd_hash_from(int fd, uint64_t from, char hex[OC_SHA256_HEX_LEN + 1], uint64_t *n);

/* ---- issue 18: write modes, holes, a shared budget ---- */

/* Every write mode gives the same file: 4 KiB chunks (all aligned), 1 MiB
 * chunks (the last piece unaligned), and on tmpfs (no direct I/O there). */
static void test_write_modes(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    static const oc_write_mode modes[] = {OC_WRITE_AUTO, OC_WRITE_DIRECT, OC_WRITE_WRITEBACK,
                                          OC_WRITE_BUFFERED};
    const char *shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
    for (int dir = 0; dir < (shm ? 2 : 1); dir++) {
        char shm_dir[256] = "";
        if (dir == 1) {
            snprintf(shm_dir, sizeof shm_dir, "%s/occy-bp-XXXXXX", shm);
            assert_non_null(mkdtemp(shm_dir));
        }
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
            for (int big = 0; big < 2; big++) {
                oc_blobpipe_opts opts = {.threads = 2,
                                         .chunk_size = big ? MIB : 4096,
                                         .in_chunks = 2,
                                         .out_bufs = 2,
                                         .write_mode = modes[m]};
                pcase c = base_case(OC_COMP_GZIP, &gz);
                c.take_file = 1; /* synced: the durable path */
                c.tmp_dir = shm_dir[0] ? shm_dir : NULL;
                outcome o;
                run_one(&c, &o, &opts);
                assert_int_equal(o.finished, 1);
                check_clean(&o, 0, &gz, OC_COMP_GZIP);
                check_teardown(&o);
                free(o.taken);
            }
        }
        if (shm_dir[0])
            rmdir(shm_dir);
    }
}

/* Zero pieces past the end are holes: the file reads back byte for byte
 * (its SHA-256 and size), takes less disk than its size, and a stream that
 * ends in zeros still has its full size. */
static void test_zero_holes(void **state)
{
    (void)state;
    size_t n = 8 * MIB + 777;
    blob z = {.b = calloc(1, n), .n = n};
    assert_non_null(z.b);
    memcpy(z.b, "tar header", 10);          /* data, then 8 MiB of zeros */
    memcpy(z.b + 3 * MIB + 5, "middle", 6); /* and a little in the middle */
    blob_hash(&z);
    for (int mode = 0; mode < 2; mode++) {
        oc_blobpipe_opts opts = {.threads = 2,
                                 .chunk_size = MIB,
                                 .in_chunks = 2,
                                 .out_bufs = 2,
                                 .write_mode = mode ? OC_WRITE_BUFFERED : OC_WRITE_AUTO};
        pcase c = base_case(OC_COMP_NONE, &z);
        c.take_file = 1;
        outcome o;
        run_one(&c, &o, &opts);
        assert_int_equal(o.finished, 1);
        assert_false(o.res_null[0]);
        assert_true(o.res[0].stream_ok);
        assert_string_equal(o.res[0].diff_hex, z.hex);
        assert_string_equal(o.file_hex[0], z.hex);
        assert_int_equal(o.file_size[0], n);
        if (o.file_disk[0] >= n / 2) /* file systems without holes keep them all */
            print_message("no holes here (%llu bytes on disk)\n",
                          (unsigned long long)o.file_disk[0]);
        check_teardown(&o);
        free(o.taken);
    }
    /* moved while its zeros were a hole not yet in the file's size (small
     * buffers: the write strand is never far behind the feeding) */
    char path[700];
    snprintf(path, sizeof path, "%s/zeros-move", tmpdir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    oc_blobpipe_opts opts = {.threads = 2, .chunk_size = 64 * KIB, .in_chunks = 2, .out_bufs = 1};
    pcase c = base_case(OC_COMP_NONE, &z);
    c.move_at = (long long)(6 * MIB);
    c.move_fd = fd;
    c.move_base = 512;
    c.no_sync = 1;
    outcome o;
    run_one(&c, &o, &opts);
    assert_int_equal(o.move_rc, 1);
    assert_false(o.res_null[0]);
    assert_true(o.res[0].stream_ok);
    char hex[OC_SHA256_HEX_LEN + 1];
    uint64_t got = 0;
    fd_hash_from(fd, 512, hex, &got);
    assert_int_equal(got, n);
    assert_string_equal(hex, z.hex);
    check_teardown(&o);
    close(fd);
    unlink(path);
    free(z.b);
}

/* Two pipes with one budget: within it both pass; below their sum the
 * one that crosses it fails with OC_E_LIMIT. */
static void test_shared_budget(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    for (int tight = 0; tight < 2; tight++) {
        oc_blobpipe_budget *b = oc_blobpipe_budget_new(tight ? plain.n + plain.n / 2 : 2 * plain.n);
        assert_non_null(b);
        pcase cs[2] = {base_case(OC_COMP_GZIP, &gz), base_case(OC_COMP_GZIP, &gz)};
        cs[0].budget = cs[1].budget = b;
        outcome os[2];
        run_pipes(cs, os, 2, &small_opts, 120);
        int limited = 0;
        for (int i = 0; i < 2; i++) {
            assert_int_equal(os[i].finished, 1);
            assert_false(os[i].res_null[0]);
            assert_string_equal(os[i].res[0].compressed_hex, gz.hex);
            if (!os[i].res[0].stream_ok) {
                assert_int_equal(os[i].res[0].stream_err.code, OC_E_LIMIT);
                limited++;
            }
            check_teardown(&os[i]);
        }
        /* tight: the pipe that crosses it fails, and so does the other if
         * it produces more after that (they run side by side) */
        if (tight)
            assert_true(limited >= 1);
        else
            assert_int_equal(limited, 0);
        assert_true(oc_blobpipe_budget_used(b) <= 2 * plain.n);
        oc_blobpipe_budget_unref(b);
    }
}

static void test_new_bad_tmp_dir(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    oc_error err;
    oc_blobpipe_ctx *ctx = oc_blobpipe_ctx_new(&loop, &small_opts, &err);
    assert_non_null(ctx);
    oc_blobpipe_cbs cbs = {on_writable, on_finished, NULL};
    oc_error_clear(&err);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/does/not/exist", tmpdir);
    oc_blobpipe *p = oc_blobpipe_new(ctx, dir, "x", OC_COMP_GZIP, 0, 0, &cbs, &err);
    assert_null(p);
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, dir));
    oc_blobpipe_ctx_close(ctx, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A disk that fills up: the write strand fails with ENOSPC; write() then
 * answers -1 with OC_E_NOSPACE, and on_finished reports the local error. */
static void test_disk_full(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    if (geteuid() != 0) {
        print_message("not root: cannot mount a tmpfs, skipping\n");
        skip();
    }
    char mnt[700];
    snprintf(mnt, sizeof mnt, "%s/tiny", tmpdir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
        print_message("mount tmpfs: %s: skipping\n", strerror(errno));
        rmdir(mnt);
        skip();
    }
    int results[2][6];
    char msg[2][300];
    for (int variant = 0; variant < 2; variant++) {
        pcase c = base_case(OC_COMP_GZIP, &gz);
        c.tmp_dir = mnt;
        c.finish_on_write_error = variant == 0;
        outcome o;
        run_one(&c, &o, &small_opts);
        results[variant][0] = o.write_failed;
        results[variant][1] = o.write_err.code;
        results[variant][2] = o.finished;
        results[variant][3] = o.err_code[0];
        results[variant][4] = o.res_null[0];
        results[variant][5] = o.files_left;
        memcpy(msg[variant], o.err_msg[0], sizeof msg[variant]);
    }
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    for (int variant = 0; variant < 2; variant++) {
        assert_int_equal(results[variant][0], 1); /* write() answered -1 */
        assert_int_equal(results[variant][1], OC_E_NOSPACE);
        assert_int_equal(results[variant][5], 0); /* the temp file went */
    }
    /* finish after the failure: on_finished has the local error */
    assert_int_equal(results[0][2], 1);
    assert_int_equal(results[0][3], OC_E_NOSPACE);
    assert_int_equal(results[0][4], 1);
    assert_non_null(strstr(msg[0], "test-blob"));
    /* release after the failure: no callback */
    assert_int_equal(results[1][2], 0);
}

/* ---- output into the caller's file, partial files ---- */

static void fd_hash_from(int fd, uint64_t from, char hex[OC_SHA256_HEX_LEN + 1], uint64_t *n)
{
    oc_sha256 *h = oc_sha256_new();
    assert_non_null(h);
    unsigned char buf[65536];
    uint64_t off = from;
    *n = 0;
    for (;;) {
        ssize_t got = pread(fd, buf, sizeof buf, (off_t)off);
        assert_true(got >= 0);
        if (got == 0)
            break;
        oc_sha256_update(h, buf, (size_t)got);
        off += (uint64_t)got;
        *n += (uint64_t)got;
    }
    oc_sha256_final_hex(h, hex);
    oc_sha256_free(h);
}

/* The tar lands in the caller's file after its own first bytes; a restart
 * truncates back to that base, not to 0; the fd stays open and the caller's;
 * there is no temp file; set_output is refused once bytes arrived. */
static void test_set_output(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    char path[700];
    snprintf(path, sizeof path, "%s/tarball", tmpdir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    const uint64_t base = 1536; /* say, a tar header or the members before */
    assert_int_equal(pwrite(fd, plain.b + 100, base, 0), (ssize_t)base);
    char head_hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(plain.b + 100, base, head_hex);

    pcase c = base_case(OC_COMP_GZIP, &gz);
    c.out_fd = fd;
    c.out_base = base;
    c.take_file = 1;
    c.restart_at = (long long)gz.n / 2; /* truncates to base, then all again */
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.set_output_rc, 0);
    assert_int_equal(o.finished, 1);
    assert_false(o.res_null[0]);
    assert_true(o.res[0].stream_ok);
    assert_string_equal(o.res[0].compressed_hex, gz.hex);
    assert_string_equal(o.res[0].diff_hex, plain.hex);
    assert_int_equal(o.res[0].diff_size, plain.n);
    assert_int_equal(o.file_count[0], 0); /* no temp file of its own */
    assert_true(o.take_file_null);
    assert_int_equal(o.set_output_late_rc, -1);
    assert_int_equal(o.set_output_late_code, OC_E_USAGE);
    check_teardown(&o);
    /* the caller's fd is still open, its first bytes untouched, then the tar */
    assert_true(fcntl(fd, F_GETFD) != -1);
    char hex[OC_SHA256_HEX_LEN + 1];
    uint64_t n = 0;
    unsigned char *head = malloc(base);
    assert_non_null(head);
    assert_int_equal(pread(fd, head, base, 0), (ssize_t)base);
    oc_sha256_buf_hex(head, base, hex);
    free(head);
    assert_string_equal(hex, head_hex);
    fd_hash_from(fd, base, hex, &n);
    assert_int_equal(n, plain.n);
    assert_string_equal(hex, plain.hex);
    close(fd);
    unlink(path);
}

/* Moving the output mid-stream (a tarball's next layer once the ones before
 * it are in): what was written goes to the new place, the rest follows it,
 * the temp file is gone, a later restart truncates the new place; before
 * any byte it is set_output; from on_finished it is too late (0) and the
 * temp file is taken as usual. */
static void test_move_output(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    char path[700];
    snprintf(path, sizeof path, "%s/tarball-move", tmpdir);
    const uint64_t base = 2560;
    long long ats[] = {(long long)gz.n / 3, 0, (long long)gz.n / 4};
    for (int k = 0; k < 3; k++) {
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, plain.b + 7, base, 0), (ssize_t)base);
        pcase c = base_case(OC_COMP_GZIP, &gz);
        c.move_at = ats[k];
        c.move_fd = fd;
        c.move_base = base;
        c.take_file = 1;
        c.no_sync = 1; /* as a tarball's layer */
        if (k == 2)
            c.restart_at = (long long)gz.n / 2; /* after the move */
        outcome o;
        run_one(&c, &o, &small_opts);
        assert_int_equal(o.move_rc, 1);
        assert_int_equal(o.finished, 1);
        assert_false(o.res_null[0]);
        assert_true(o.res[0].stream_ok);
        assert_string_equal(o.res[0].diff_hex, plain.hex);
        assert_int_equal(o.file_count[0], 0); /* the temp file is gone */
        assert_true(o.take_file_null);
        check_teardown(&o);
        assert_int_equal(o.files_left, 0);
        char hex[OC_SHA256_HEX_LEN + 1], want[OC_SHA256_HEX_LEN + 1];
        uint64_t n = 0;
        unsigned char head[2560];
        assert_int_equal(pread(fd, head, base, 0), (ssize_t)base);
        oc_sha256_buf_hex(head, base, hex);
        oc_sha256_buf_hex(plain.b + 7, base, want);
        assert_string_equal(hex, want);
        fd_hash_from(fd, base, hex, &n);
        assert_int_equal(n, plain.n);
        assert_string_equal(hex, plain.hex);
        close(fd);
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    pcase c = base_case(OC_COMP_GZIP, &gz);
    c.move_in_finished = 1;
    c.move_fd = fd;
    c.take_file = 1;
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.move_rc, 0);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    check_teardown(&o);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 0); /* nothing went there */
    close(fd);
    free(o.taken);
    unlink(path);
}

/* A download broken off keeps the compressed bytes it got; the next run
 * replays them through the pipeline, asks only for the rest, and the result
 * is that of a clean run. */
static void test_keep_partial_resume(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    char part[700];
    snprintf(part, sizeof part, "%s/blob.partial", tmpdir);
    unlink(part);

    /* run 1: fresh (nothing to replay), broken off at 40% */
    pcase c = base_case(OC_COMP_GZIP, &gz);
    c.partial_path = part;
    c.partial_max = gz.n;
    c.release_at = (long long)(gz.n * 2 / 5);
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.partial_have, 0);
    assert_int_equal(o.finished, 0);
    check_teardown(&o);
    size_t kept = 0;
    unsigned char *k = (unsigned char *)tu_slurp(part, &kept);
    assert_non_null(k);
    /* a prefix of the stream: what was handed to the workers (whole chunks) */
    assert_true(kept > 0 && kept <= gz.n * 2 / 5 + 4096);
    assert_true(kept + 4096 >= gz.n * 2 / 5);
    assert_memory_equal(k, gz.b, kept);
    free(k);

    /* run 2: the kept prefix is replayed, the rest fed; clean result */
    c = base_case(OC_COMP_GZIP, &gz);
    c.partial_path = part;
    c.partial_max = gz.n;
    c.take_file = 1;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.partial_have, kept);
    assert_int_equal(o.received_at_start, kept);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    check_teardown(&o);
    free(o.taken);
    /* the partial file now holds the whole stream */
    k = (unsigned char *)tu_slurp(part, &kept);
    assert_non_null(k);
    assert_int_equal(kept, gz.n);
    assert_memory_equal(k, gz.b, kept);
    free(k);

    /* run 3: a partial as long as the blob is not trusted: truncated, and
     * the whole blob is fed; a restart(0) after the replay works too */
    c = base_case(OC_COMP_GZIP, &gz);
    c.partial_path = part;
    c.partial_max = gz.n;
    c.take_file = 1;
    c.drop_partial = 1;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.partial_have, 0);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    free(o.taken);
    assert_int_equal(access(part, F_OK), -1); /* dropped */

    /* run 4: replay, then restart(0) mid-stream (a bad resume), all again */
    assert_int_equal(tu_write_file(part, gz.b, gz.n / 3), 0);
    c = base_case(OC_COMP_GZIP, &gz);
    c.partial_path = part;
    c.partial_max = gz.n;
    c.take_file = 1;
    c.restart_at = (long long)(gz.n / 2);
    c.drop_partial = 1;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.partial_have, gz.n / 3);
    assert_int_equal(o.restart_rc, 0);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    check_teardown(&o);
    free(o.taken);
    assert_int_equal(access(part, F_OK), -1);

    /* run 5: a partial that is not a prefix of the blob (another blob's
     * bytes): the digest must not match, nothing crashes */
    assert_int_equal(tu_write_file(part, plain.b, 100000), 0);
    c = base_case(OC_COMP_GZIP, &gz);
    c.partial_path = part;
    c.partial_max = gz.n;
    c.drop_partial = 1;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.partial_have, 100000);
    assert_int_equal(o.finished, 1);
    assert_false(o.res_null[0]);
    assert_string_not_equal(o.res[0].compressed_hex, gz.hex);
    assert_false(o.res[0].stream_ok);
    check_teardown(&o);
    unlink(part);
}

/* The exact bytes (oc_blobpipe_keep_compressed): the kept file holds
 * exactly the compressed bytes that were hashed, through a restart, after
 * release; a prefix left by a broken run is replayed; a file that cannot
 * be opened is an error at once, one that cannot be written (/dev/full)
 * fails the blob instead of being dropped quietly. */
static void test_keep_compressed(void **state)
{
    (void)state;
    NEED(have_gzip, "gzip");
    char keep[700];
    snprintf(keep, sizeof keep, "%s/blob.exact", tmpdir);
    unlink(keep);
    pcase c = base_case(OC_COMP_GZIP, &gz);
    c.keep_path = keep;
    c.take_file = 1;
    c.restart_at = (long long)(gz.n / 2);
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.keep_rc, 0);
    assert_int_equal(o.partial_have, 0);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    check_teardown(&o);
    free(o.taken);
    size_t kept = 0;
    unsigned char *k = (unsigned char *)tu_slurp(keep, &kept);
    assert_non_null(k);
    assert_int_equal(kept, gz.n);
    assert_memory_equal(k, gz.b, kept);
    free(k);

    /* a prefix left by a broken run is replayed, the rest fed */
    assert_int_equal(tu_write_file(keep, gz.b, gz.n / 3), 0);
    c = base_case(OC_COMP_GZIP, &gz);
    c.keep_path = keep;
    c.take_file = 1;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.partial_have, gz.n / 3);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &gz, OC_COMP_GZIP);
    free(o.taken);
    k = (unsigned char *)tu_slurp(keep, &kept);
    assert_non_null(k);
    assert_int_equal(kept, gz.n);
    assert_memory_equal(k, gz.b, kept);
    free(k);
    unlink(keep);

    /* a file that cannot be made */
    char nowhere[760];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/blob", tmpdir);
    c = base_case(OC_COMP_GZIP, &gz);
    c.keep_path = nowhere;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.keep_rc, -1);
    assert_non_null(strstr(o.keep_err.msg, "compressed bytes"));
    assert_int_equal(o.finished, 0);
    check_teardown(&o);

    /* a file that cannot be written: the blob fails (a local failure) */
    if (access("/dev/full", W_OK) == 0) {
        c = base_case(OC_COMP_GZIP, &gz);
        c.keep_path = "/dev/full";
        run_one(&c, &o, &small_opts);
        assert_int_equal(o.keep_rc, 0);
        assert_int_equal(o.finished, 1);
        assert_true(o.res_null[0]);
        assert_int_equal(o.err_code[0], OC_E_NOSPACE);
        check_teardown(&o);
    }
}

/* digest only: the bytes are hashed and kept, nothing is inflated (a zstd
 * stream declared gzip is not an error) and no tar file is made. */
static void test_digest_only(void **state)
{
    (void)state;
    NEED(have_zstd, "zstd");
    char keep[700];
    snprintf(keep, sizeof keep, "%s/blob.only", tmpdir);
    unlink(keep);
    pcase c = base_case(OC_COMP_GZIP, &zst);
    c.keep_path = keep;
    c.digest_only = 1;
    c.take_file = 1;
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.finished, 1);
    assert_false(o.res_null[0]);
    assert_true(o.res[0].stream_ok);
    assert_string_equal(o.res[0].compressed_hex, zst.hex);
    assert_int_equal(o.res[0].compressed_size, zst.n);
    assert_int_equal(o.res[0].diff_size, 0);
    assert_true(o.take_file_null);
    assert_int_equal(o.files_left, 0); /* no tar file was ever made */
    check_teardown(&o);
    size_t kept = 0;
    unsigned char *k = (unsigned char *)tu_slurp(keep, &kept);
    assert_non_null(k);
    assert_int_equal(kept, zst.n);
    assert_memory_equal(k, zst.b, kept);
    free(k);
    unlink(keep);
}

/* ---- the pause contract ---- */

/* 4 KiB chunks, 2 of them, 1 output buffer: the loop writes one chunk's
 * worth at a time much faster than the workers hash, inflate and write, so
 * it must be told to pause; each pause is followed by on_writable, after
 * which the same write is taken; a pause takes no byte. */
static void test_pause_and_writable(void **state)
{
    (void)state;
    pcase c = base_case(OC_COMP_AUTO, &plain);
    c.fixed_piece = 4096;
    c.take_file = 1;
    outcome o;
    run_one(&c, &o, &small_opts);
    assert_int_equal(o.finished, 1);
    check_clean(&o, 0, &plain, OC_COMP_NONE);
    check_teardown(&o);
    print_message("pauses %d, on_writable %d (spurious %d)\n", o.pauses, o.writables,
                  o.spurious_writables);
    assert_true(o.pauses > 0);
    assert_int_equal(o.writables, o.pauses); /* each pause got its on_writable, no more */
    assert_int_equal(o.spurious_writables, 0);
    assert_int_equal(o.retry_paused_again, 0);
    free(o.taken);
}

/* Direct: three chunks' worth, one chunk at a time, without the loop
 * running in between. The third write may only be taken when a worker
 * already gave a chunk back; when it says pause, on_writable follows. */
static int pw_writable;
static void pw_on_writable(void *opaque)
{
    (void)opaque;
    pw_writable++;
}
static oc_blob_result big_res;
static int big_res_ok;
static void pw_on_finished(void *opaque, const oc_blob_result *res, const oc_error *err)
{
    big_res_ok = res && !err && res->stream_ok;
    if (res)
        big_res = *res;
    *(int *)opaque = 1;
}
static void pw_timeout(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void test_pause_third_chunk(void **state)
{
    (void)state;
    int paused_rounds = 0;
    for (int round = 0; round < 50; round++) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        oc_error err;
        oc_blobpipe_ctx *ctx = oc_blobpipe_ctx_new(&loop, &small_opts, &err);
        assert_non_null(ctx);
        int fin = 0;
        oc_blobpipe_cbs cbs = {pw_on_writable, pw_on_finished, &fin};
        char dir[700];
        snprintf(dir, sizeof dir, "%s/pw-XXXXXX", tmpdir);
        assert_non_null(mkdtemp(dir));
        oc_blobpipe *p = oc_blobpipe_new(ctx, dir, "pw", OC_COMP_NONE, 0, 0, &cbs, &err);
        assert_non_null(p);
        pw_writable = 0;
        int rc[3];
        for (int i = 0; i < 3; i++)
            rc[i] = oc_blobpipe_write(p, plain.b + (size_t)i * 4096, 4096, &err);
        assert_int_equal(rc[0], 0);
        assert_int_equal(rc[1], 0);
        assert_true(rc[2] == 0 || rc[2] == 1);
        uv_timer_t t;
        uv_timer_init(&loop, &t);
        if (rc[2] == 1) {
            paused_rounds++;
            assert_int_equal(oc_blobpipe_received(p), 8192);
            uv_timer_start(&t, pw_timeout, 5000, 0);
            while (pw_writable == 0 && uv_run(&loop, UV_RUN_ONCE) != 0)
                if (!uv_is_active((uv_handle_t *)&t))
                    break;
            uv_timer_stop(&t);
            assert_int_equal(pw_writable, 1);
            assert_int_equal(oc_blobpipe_write(p, plain.b + 8192, 4096, &err), 0);
        }
        assert_int_equal(oc_blobpipe_received(p), 12288);
        oc_blobpipe_finish(p);
        uv_timer_start(&t, pw_timeout, 5000, 0);
        while (!fin && uv_is_active((uv_handle_t *)&t))
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(fin, 1);
        oc_blobpipe_release(p);
        uv_close((uv_handle_t *)&t, NULL);
        oc_blobpipe_ctx_close(ctx, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);
        assert_int_equal(count_files(dir, NULL, 0), 0);
        rmdir(dir);
    }
    print_message("third write paused in %d of 50 rounds\n", paused_rounds);
}

/* A single write larger than all input chunks together (curl hands over up
 * to its buffer size, 256 KiB, in one call) can never be taken while the
 * pool is limited. The contract says: 0 (taken) or 1 with on_writable to
 * follow, so retrying after each on_writable must get it taken in the end;
 * answering 1 while nothing is in flight means on_writable never comes and
 * the transfer stalls forever. Cases: an empty pipe, a pipe holding a
 * partly filled chunk (only in_chunks - 1 chunks can ever be free then),
 * and a pipe with chunks in flight. The data must come out intact. */
typedef struct bigw {
    size_t prefill;  /* bytes written first (a partly filled chunk) */
    size_t inflight; /* whole chunks written just before */
    size_t big;      /* then one write of this size */
} bigw;

static int big_write_case(const bigw *bc, char *why, size_t why_len)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        abort();
    oc_error err;
    oc_blobpipe_ctx *ctx = oc_blobpipe_ctx_new(&loop, &small_opts, &err);
    if (!ctx)
        abort();
    int fin = 0;
    oc_blobpipe_cbs cbs = {pw_on_writable, pw_on_finished, &fin};
    char dir[700];
    snprintf(dir, sizeof dir, "%s/big-XXXXXX", tmpdir);
    if (!mkdtemp(dir))
        abort();
    oc_blobpipe *p = oc_blobpipe_new(ctx, dir, "big", OC_COMP_NONE, 0, 0, &cbs, &err);
    if (!p)
        abort();
    pw_writable = 0;
    int ok = 1;
    size_t off = 0;
    why[0] = '\0';
    if (bc->prefill && oc_blobpipe_write(p, plain.b, bc->prefill, &err) != 0) {
        snprintf(why, why_len, "the first small write was refused");
        ok = 0;
    }
    off = bc->prefill;
    for (size_t i = 0; ok && i < bc->inflight; i++) {
        if (oc_blobpipe_write(p, plain.b + off, 4096, &err) != 0)
            break; /* paused: fine, fewer in flight */
        off += 4096;
    }
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    int tries = 0, rc = 1;
    while (ok) {
        int before = pw_writable;
        rc = oc_blobpipe_write(p, plain.b + off, bc->big, &err);
        tries++;
        if (rc == 0) {
            off += bc->big;
            break;
        }
        if (rc < 0 || tries > 1000) {
            snprintf(why, why_len, "write answered %d after %d tries", rc, tries);
            ok = 0;
            break;
        }
        /* paused: wait for on_writable (3 s at most), then try again */
        uv_timer_start(&t, pw_timeout, 3000, 0);
        while (pw_writable == before && uv_is_active((uv_handle_t *)&t))
            uv_run(&loop, UV_RUN_ONCE);
        uv_timer_stop(&t);
        if (pw_writable == before) {
            snprintf(why, why_len,
                     "a write of %zu bytes (prefill %zu) answered pause, and on_writable never "
                     "came (try %d): the transfer would stall forever",
                     bc->big, bc->prefill, tries);
            ok = 0;
        }
    }
    if (ok) {
        oc_blobpipe_finish(p);
        uv_timer_start(&t, pw_timeout, 10000, 0);
        while (!fin && uv_is_active((uv_handle_t *)&t))
            uv_run(&loop, UV_RUN_ONCE);
        uv_timer_stop(&t);
    }
    oc_blobpipe_release(p);
    uv_close((uv_handle_t *)&t, NULL);
    oc_blobpipe_ctx_close(ctx, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0 && ok) {
        snprintf(why, why_len, "loop did not close");
        ok = 0;
    }
    if (ok && !fin) {
        snprintf(why, why_len, "taken, but on_finished never came");
        ok = 0;
    }
    if (ok && (big_res.diff_size != off || !big_res_ok)) {
        snprintf(why, why_len, "data came out wrong: %llu bytes, wanted %zu",
                 (unsigned long long)big_res.diff_size, off);
        ok = 0;
    }
    if (ok) {
        char want[OC_SHA256_HEX_LEN + 1];
        oc_sha256_buf_hex(plain.b, off, want);
        if (strcmp(want, big_res.diff_hex) != 0) {
            snprintf(why, why_len, "diff hash differs");
            ok = 0;
        }
    }
    rmdir(dir);
    return ok;
}

static void test_write_larger_than_all_chunks(void **state)
{
    (void)state;
    static const bigw cases[] = {
        {0, 0, 3 * 4096},      /* empty pipe, 3 chunks' worth with 2 allowed */
        {0, 0, 10 * 4096 + 7}, /* much larger */
        {0, 2, 3 * 4096},      /* chunks still in flight */
        {100, 0, 2 * 4096},    /* a partly filled chunk, then 2 chunks' worth */
        {100, 0, 3 * 4096},    /* a partly filled chunk, then 3 chunks' worth */
        {100, 0, 256 * 1024},  /* ... then what curl may hand over at once */
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[300];
        if (!big_write_case(&cases[i], why, sizeof why)) {
            print_message("case %zu (prefill %zu, in flight %zu, write %zu): %s\n", i,
                          cases[i].prefill, cases[i].inflight, cases[i].big, why);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* ---- several pipes at once ---- */

static void test_many_pipes(void **state)
{
    (void)state;
    NEED(have_gzip && have_zstd, "gzip/zstd");
    enum { N = 12 };
    pcase c[N];
    const blob *srcs[] = {&gz, &zst, &plain, &gz_multi};
    oc_comp want[] = {OC_COMP_GZIP, OC_COMP_ZSTD, OC_COMP_NONE, OC_COMP_GZIP};
    for (int i = 0; i < N; i++) {
        c[i] = base_case(OC_COMP_AUTO, srcs[i % 4]);
        c[i].take_file = 1;
        c[i].feed_in_writable = i % 2; /* half feed straight from on_writable */
        if (i == 5)
            c[i].restart_at = (long long)srcs[i % 4]->n / 2;
    }
    outcome o[N];
    for (int round = 0; round < 3; round++) {
        run_pipes(c, o, N, &small_opts, 120);
        for (int i = 0; i < N; i++) {
            if (o[i].timed_out)
                fail_msg("round %d: pipe %d never finished (pauses %d, on_writable %d, finished "
                         "%d)",
                         round, i, o[i].pauses, o[i].writables, o[i].finished);
            assert_int_equal(o[i].finished, 1);
            check_clean(&o[i], 0, srcs[i % 4], want[i % 4]);
            check_teardown(&o[i]);
            assert_true(o[i].taken_exists_after);
            free(o[i].taken);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_gzip_multi_member),
        cmocka_unit_test(test_zstd),
        cmocka_unit_test(test_plain_auto),
        cmocka_unit_test(test_gzip_big_pieces),
        cmocka_unit_test(test_empty_stream),
        cmocka_unit_test(test_small_blob_size_hint),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupted),
        cmocka_unit_test(test_restart_mid_stream),
        cmocka_unit_test(test_restart_after_stream_error),
        cmocka_unit_test(test_restart_noop_and_refused),
        cmocka_unit_test(test_restart_after_finish),
        cmocka_unit_test(test_release_in_flight),
        cmocka_unit_test(test_release_after_finish_before_result),
        cmocka_unit_test(test_release_with_event_queued),
        cmocka_unit_test(test_release_peer_from_callback),
        cmocka_unit_test(test_group_failure_releases_peers),
        cmocka_unit_test(test_max_out),
        cmocka_unit_test(test_write_modes),
        cmocka_unit_test(test_zero_holes),
        cmocka_unit_test(test_shared_budget),
        cmocka_unit_test(test_move_output),
        cmocka_unit_test(test_new_bad_tmp_dir),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_set_output),
        cmocka_unit_test(test_keep_partial_resume),
        cmocka_unit_test(test_keep_compressed),
        cmocka_unit_test(test_digest_only),
        cmocka_unit_test(test_pause_and_writable),
        cmocka_unit_test(test_pause_third_chunk),
        cmocka_unit_test(test_write_larger_than_all_chunks),
        cmocka_unit_test(test_many_pipes),
    };
    /* OCCY_TEST_FILTER=test_x runs a subset (handy under valgrind) */
    if (getenv("OCCY_TEST_FILTER"))
        cmocka_set_test_filter(getenv("OCCY_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
