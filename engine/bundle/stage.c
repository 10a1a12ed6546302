/* stage.c - an import's verified files until the bundle is whole (see
 * stage.h). */
#include "engine/bundle/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/image/limits.h"
#include "io/atomicfile.h"
#include "io/fsutil.h"
#include "io/grow.h"
#include "io/inflate.h"
#include "io/storelock.h"
#include "occystrap/occystrap.h"

#define IMPORT_DIR ".occystrap/import"
#define RECORD_MAX 4096
#define CHUNK ((size_t)1 << 20)

typedef struct rename_op {
    char *from, *to;
} rename_op;

struct oc_stage {
    oc_store *s;
    char *dir;
    int lock_fd;
    int locked; /* the lock is ours: the directory may be pruned */
    oc_blobsink_pool *pool;
    uint64_t max_layer; /* OC_LIMIT_DEFAULT, a bound, or 0 = none */
    rename_op *pending;
    size_t n_pending, cap_pending;
    unsigned char *buf;
};

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

static char *path_of(const oc_stage *st, const char *fmt, const char *a, const char *b)
{
    char *rel = NULL, *p = NULL;
    if (asprintf(&rel, fmt, a, b ? b : "") < 0)
        return NULL;
    if (asprintf(&p, "%s/%s", st->dir, rel) < 0)
        p = NULL;
    free(rel);
    return p;
}

void oc_stage_set_max_layer(oc_stage *st, uint64_t max_layer)
{
    st->max_layer = max_layer;
}

oc_stage *oc_stage_open(oc_store *s, const char *id, oc_blobsink_pool *pool, oc_error *err)
{
    oc_stage *st = calloc(1, sizeof *st);
    char *lock = NULL, *sub = NULL;
    if (!st || !(st->buf = malloc(CHUNK))) {
        free(st);
        oom(err);
        return NULL;
    }
    st->s = s;
    st->pool = pool;
    st->max_layer = OC_LIMIT_DEFAULT;
    st->lock_fd = -1;
    const char *hex = strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
    if (asprintf(&st->dir, "%s/" IMPORT_DIR "/%s", oc_store_dir(s), hex) < 0 ||
        asprintf(&lock, "%s.lock", st->dir) < 0) {
        st->dir = NULL;
        lock = NULL;
        oom(err);
        goto fail;
    }
    if (oc_mkdirs(st->dir, err) != 0)
        goto fail;
    st->lock_fd = oc_lock_open(lock, 1, err);
    if (st->lock_fd < 0)
        goto fail;
    int busy = oc_lock_take(st->lock_fd, OC_LOCK_EXCLUSIVE, 0, lock, err);
    if (busy != 0) {
        if (busy > 0)
            oc_error_set(err, OC_E_USAGE, "another import of bundle %s into %s is running", id,
                         oc_store_dir(s));
        goto fail;
    }
    st->locked = 1;
    const char *subs[] = {"blobs", "segments", "layers"};
    for (size_t i = 0; i < 3; i++) {
        sub = path_of(st, "%s%s", subs[i], NULL);
        if (!sub || oc_mkdirs(sub, err) != 0) {
            if (!sub)
                oom(err);
            goto fail;
        }
        free(sub);
        sub = NULL;
    }
    free(lock);
    return st;
fail:
    free(sub);
    free(lock);
    oc_stage_close(st, 0);
    return NULL;
}

/* Remove the empty directories of dir (depth levels down) and dir itself
 * when empty then: what verified stays, an import that kept nothing leaves
 * nothing behind. */
static void prune_empty(const char *dir, int depth)
{
    DIR *d = depth > 0 ? opendir(dir) : NULL;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
                continue;
            char *sub = NULL;
            if (asprintf(&sub, "%s/%s", dir, e->d_name) < 0)
                continue;
            struct stat sb;
            if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
                prune_empty(sub, depth - 1);
            free(sub);
        }
        closedir(d);
    }
    (void)rmdir(dir);
}

void oc_stage_close(oc_stage *st, int remove)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_pending; i++) {
        (void)unlink(st->pending[i].from);
        free(st->pending[i].from);
        free(st->pending[i].to);
    }
    free(st->pending);
    if (st->dir && st->locked) {
        oc_error ignored;
        if (remove)
            (void)oc_remove_tree(st->dir, &ignored);
        else
            prune_empty(st->dir, 2);
        char *lock = NULL;
        if (access(st->dir, F_OK) != 0 && asprintf(&lock, "%s.lock", st->dir) >= 0) {
            (void)unlink(lock);
            free(lock);
            /* the import directory too, when no other bundle is staged */
            char *parent = strdup(st->dir);
            char *slash = parent ? strrchr(parent, '/') : NULL;
            if (slash) {
                *slash = '\0';
                (void)rmdir(parent);
            }
            free(parent);
        }
    }
    oc_lock_close(st->lock_fd);
    free(st->dir);
    free(st->buf);
    free(st);
}

const char *oc_stage_dir(const oc_stage *st)
{
    return st ? st->dir : "(no stage)";
}

int oc_stage_exists(const oc_store *s, const char *id)
{
    char *dir = NULL;
    const char *hex = strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
    if (asprintf(&dir, "%s/" IMPORT_DIR "/%s", oc_store_dir(s), hex) < 0)
        return 0;
    struct stat sb;
    int yes = lstat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(dir);
    return yes;
}

static int regular_of_size(const char *path, uint64_t size)
{
    struct stat sb;
    return path && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == size;
}

char *oc_stage_blob(const oc_stage *st, const char *hex, uint64_t size)
{
    if (!st)
        return NULL;
    char *p = path_of(st, "blobs/%s%s", hex, NULL);
    if (regular_of_size(p, size))
        return p;
    free(p);
    return NULL;
}

static char *segment_path(const oc_stage *st, const char *hex, uint64_t offset)
{
    char off[32];
    snprintf(off, sizeof off, "%020" PRIu64, offset);
    return path_of(st, "segments/%s/%s", hex, off);
}

int oc_stage_has_segment(const oc_stage *st, const char *hex, uint64_t offset, uint64_t size)
{
    if (!st)
        return 0;
    char *p = segment_path(st, hex, offset);
    int ok = regular_of_size(p, size);
    free(p);
    return ok;
}

int oc_stage_layer(const oc_stage *st, const char *hex, char diff_id[OC_BUNDLE_DIGEST_LEN],
                   uint64_t *tar_size, char **tar_path)
{
    if (!st)
        return 0;
    char *rec = path_of(st, "layers/%s.json%s", hex, NULL);
    char *tar = path_of(st, "layers/%s.tar%s", hex, NULL);
    oc_error ignored;
    size_t len = 0;
    char *text = rec ? oc_read_file(rec, RECORD_MAX, &len, &ignored) : NULL;
    json_t *doc = text ? json_loadb(text, len, 0, NULL) : NULL;
    const char *dg = json_string_value(json_object_get(doc, "digest"));
    const char *di = json_string_value(json_object_get(doc, "diff_id"));
    json_t *ts = json_object_get(doc, "tar_size");
    int ok = dg && di && strncmp(dg, "sha256:", 7) == 0 && strcmp(dg + 7, hex) == 0 &&
             oc_digest_parse(di, NULL, NULL) == 0 && json_is_integer(ts) &&
             json_integer_value(ts) >= 0 && regular_of_size(tar, (uint64_t)json_integer_value(ts));
    if (ok) {
        snprintf(diff_id, OC_BUNDLE_DIGEST_LEN, "%s", di);
        *tar_size = (uint64_t)json_integer_value(ts);
        *tar_path = tar;
        tar = NULL;
    }
    json_decref(doc);
    free(text);
    free(rec);
    free(tar);
    return ok;
}

int oc_stage_is_layer_type(const char *mt)
{
    return mt && (strncmp(mt, "application/vnd.oci.image.layer.", 32) == 0 ||
                  strncmp(mt, "application/vnd.docker.image.rootfs.", 36) == 0);
}

/* ---- receiving ---- */

static int add_pending(oc_stage *st, char *from, char *to, oc_error *err)
{
    rename_op *grown = oc_grow(st->pending, &st->cap_pending, st->n_pending + 1, sizeof *grown, 16);
    if (!grown) {
        (void)unlink(from);
        free(from);
        free(to);
        return oom(err);
    }
    st->pending = grown;
    st->pending[st->n_pending++] = (rename_op){from, to};
    return 0;
}

/* The layer's record beside its tar, pending too. */
static int add_layer(oc_stage *st, const char *hex, char *tar_tmp, const oc_blobsink_result *res,
                     oc_error *err)
{
    char *tar = path_of(st, "layers/%s.tar%s", hex, NULL);
    char *rec = path_of(st, "layers/%s.json%s", hex, NULL);
    char *rec_tmp = path_of(st, "layers/%s.json.tmp%s", hex, NULL);
    char *text = NULL;
    if (!tar || !rec || !rec_tmp ||
        asprintf(&text,
                 "{\"diff_id\": \"sha256:%s\", \"digest\": \"sha256:%s\", \"tar_size\": %" PRIu64
                 "}\n",
                 res->tar_hex, hex, res->tar_size) < 0) {
        free(tar);
        free(rec);
        free(rec_tmp);
        (void)unlink(tar_tmp);
        free(tar_tmp);
        return oom(err);
    }
    int fd = open(rec_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    int rc = -1;
    if (fd < 0)
        oc_error_errno(err, errno, "create %s", rec_tmp);
    else if (oc_write_all(fd, text, strlen(text), rec_tmp, err) == 0 && close(fd) == 0)
        rc = 0;
    else
        close(fd);
    free(text);
    if (rc != 0) {
        (void)unlink(rec_tmp);
        free(rec_tmp);
        free(rec);
        (void)unlink(tar_tmp);
        free(tar_tmp);
        free(tar);
        return -1;
    }
    /* the tar first: a record names a tar in place */
    if (add_pending(st, tar_tmp, tar, err) != 0) {
        (void)unlink(rec_tmp);
        free(rec_tmp);
        free(rec);
        return -1;
    }
    return add_pending(st, rec_tmp, rec, err);
}

typedef struct feed {
    oc_stage_result (*next)(void *opaque, const void **buf, size_t *len, oc_error *err);
    void *opaque;
} feed;

/* Bytes from a feed into a sink writing tmp (and tar_tmp when unpacking);
 * checked against want ("sha256:..") and size; label names it. */
static oc_stage_result sink_through(oc_stage *st, const feed *fd, const char *label,
                                    const char *want, uint64_t size, char *tmp, char *tar_tmp,
                                    const char *media_type, uint64_t *bytes,
                                    oc_blobsink_result *res, oc_error *err)
{
    oc_comp comp = media_type ? oc_comp_from_media_type(media_type) : OC_COMP_AUTO;
    /* A layer from a bundle is guarded as one from a registry: its digest
     * says who made it, not that it inflates to a sane size. */
    uint64_t max_tar = 0;
    if (tar_tmp)
        max_tar = st->max_layer == OC_LIMIT_DEFAULT ? oc_bomb_bound(size) : st->max_layer;
    oc_blobsink *sk = oc_blobsink_open(st->pool, label, tmp, tar_tmp, comp, size, max_tar, err);
    if (!sk)
        return OC_STAGE_FAILED;
    oc_stage_result r = OC_STAGE_OK;
    for (;;) {
        const void *buf = NULL;
        size_t len = 0;
        oc_stage_result got = fd->next(fd->opaque, &buf, &len, err);
        if (got != OC_STAGE_OK) {
            r = got;
            break;
        }
        if (len == 0)
            break;
        if (bytes)
            *bytes += len;
        if (oc_blobsink_write(sk, buf, len, err) != 0) {
            r = OC_STAGE_FAILED;
            break;
        }
    }
    if (r == OC_STAGE_OK && oc_blobsink_finish(sk, res, err) != 0)
        r = OC_STAGE_FAILED;
    if (r == OC_STAGE_OK && !res->stream_ok && res->stream_err.code == OC_E_LIMIT) {
        oc_error was = res->stream_err; /* say which bound, and how to move it */
        oc_error_set(&res->stream_err, OC_E_LIMIT,
                     "%s (%s; --max-layer-size raises it, 0 removes it)", was.msg,
                     st->max_layer == OC_LIMIT_DEFAULT ? "the default bound, max(1 GiB, 100x)"
                                                       : "the bound set");
    }
    if (r == OC_STAGE_OK && (res->size != size || strcmp(res->hex, want + 7) != 0)) {
        oc_error_set(err, OC_E_DIGEST,
                     "%s: its %" PRIu64 " bytes hash to sha256:%s, not %s (damaged)", label,
                     res->size, res->hex, want);
        r = OC_STAGE_DAMAGED;
    }
    oc_blobsink_free(sk, r == OC_STAGE_OK);
    return r;
}

/* After sink_through said out: a blob that checked goes on the pending
 * renames (tmp -> final), and its layer too when it was unpacked (tar_tmp)
 * from a whole stream. What is handed on is set to NULL; drop_temps the
 * rest. */
static oc_stage_result place_sunk(oc_stage *st, oc_stage_result out, const char *hex, char **tmp,
                                  char **final, char **tar_tmp, const oc_blobsink_result *res,
                                  oc_error *err)
{
    if (out != OC_STAGE_OK)
        return out;
    int rc = add_pending(st, *tmp, *final, err);
    *tmp = *final = NULL;
    if (rc == 0 && *tar_tmp && res->stream_ok) {
        rc = add_layer(st, hex, *tar_tmp, res, err);
        *tar_tmp = NULL;
    }
    return rc == 0 ? OC_STAGE_OK : OC_STAGE_FAILED;
}

/* What is left of a blob's temporaries: freed, and the unpacked tar's file
 * unlinked. */
static void drop_temps(char *tmp, char *final, char *tar_tmp)
{
    if (tar_tmp)
        (void)unlink(tar_tmp);
    free(tar_tmp);
    free(tmp);
    free(final);
}

typedef struct reader_feed {
    oc_bundle_reader *r;
} reader_feed;

static oc_stage_result from_reader(void *opaque, const void **buf, size_t *len, oc_error *err)
{
    reader_feed *rf = opaque;
    int rc = oc_bundle_reader_data(rf->r, buf, len, err);
    if (rc < 0)
        return OC_STAGE_UNREADABLE;
    if (rc == 0)
        *len = 0;
    return OC_STAGE_OK;
}

oc_stage_result oc_stage_receive(oc_stage *st, oc_bundle_reader *r, const oc_bundle_file *f,
                                 int unpack, uint64_t *bytes, oc_error *err)
{
    const char *hex = f->blob + 7;
    char *final =
        f->segment ? segment_path(st, hex, f->offset) : path_of(st, "blobs/%s%s", hex, NULL);
    char *tmp = NULL, *tar_tmp = NULL, *segdir = NULL;
    if (!final || asprintf(&tmp, "%s.tmp", final) < 0 ||
        (f->segment && !(segdir = path_of(st, "segments/%s%s", hex, NULL)))) {
        free(final);
        oom(err);
        return OC_STAGE_FAILED;
    }
    if (segdir && oc_mkdirs(segdir, err) != 0) {
        free(segdir);
        free(final);
        free(tmp);
        return OC_STAGE_FAILED;
    }
    free(segdir);
    unpack = unpack && !f->segment;
    if (unpack && !(tar_tmp = path_of(st, "layers/%s.tar.tmp%s", hex, NULL))) {
        free(final);
        free(tmp);
        oom(err);
        return OC_STAGE_FAILED;
    }
    char label[400];
    snprintf(label, sizeof label, "bundle part %s: %s", oc_bundle_reader_path(r), f->path);
    reader_feed rf = {r};
    feed fd = {from_reader, &rf};
    oc_blobsink_result res;
    memset(&res, 0, sizeof res);
    oc_stage_result out = sink_through(st, &fd, label, f->digest, f->size, tmp, tar_tmp,
                                       f->media_type, bytes, &res, err);
    out = place_sunk(st, out, hex, &tmp, &final, &tar_tmp, &res, err);
    drop_temps(tmp, final, tar_tmp);
    return out;
}

/* ---- joining segments, unpacking blobs in place ---- */

typedef struct file_feed {
    oc_stage *st;
    char **paths; /* in order */
    uint64_t *sizes;
    size_t n, at;
    int fd;
    uint64_t done; /* of the current file */
} file_feed;

static oc_stage_result from_files(void *opaque, const void **buf, size_t *len, oc_error *err)
{
    file_feed *ff = opaque;
    for (;;) {
        if (ff->at == ff->n) {
            *len = 0;
            return OC_STAGE_OK;
        }
        if (ff->fd < 0) {
            ff->fd = open(ff->paths[ff->at], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            ff->done = 0;
            if (ff->fd < 0) {
                oc_error_errno(err, errno, "open %s", ff->paths[ff->at]);
                return OC_STAGE_FAILED;
            }
        }
        ssize_t got = read(ff->fd, ff->st->buf, CHUNK);
        if (got < 0) {
            oc_error_errno(err, errno, "read %s", ff->paths[ff->at]);
            return OC_STAGE_FAILED;
        }
        if (got == 0) {
            close(ff->fd);
            ff->fd = -1;
            if (ff->sizes && ff->done != ff->sizes[ff->at]) {
                oc_error_set(err, OC_E_IO, "%s changed while it was read", ff->paths[ff->at]);
                return OC_STAGE_FAILED;
            }
            ff->at++;
            continue;
        }
        ff->done += (uint64_t)got;
        *buf = ff->st->buf;
        *len = (size_t)got;
        return OC_STAGE_OK;
    }
}

oc_stage_result oc_stage_join(oc_stage *st, const oc_bundle_doc *d, size_t first, int unpack,
                              oc_error *err)
{
    const oc_bundle_file *f0 = &d->files[first];
    const char *hex = f0->blob + 7;
    size_t n = 0;
    while (first + n < d->n_files && d->files[first + n].segment &&
           strcmp(d->files[first + n].blob, f0->blob) == 0)
        n++;
    file_feed ff = {.st = st, .n = n, .fd = -1};
    ff.paths = calloc(n + 1, sizeof *ff.paths);
    ff.sizes = calloc(n + 1, sizeof *ff.sizes);
    char *final = path_of(st, "blobs/%s%s", hex, NULL);
    char *tmp = NULL, *tar_tmp = NULL;
    oc_stage_result out = OC_STAGE_FAILED;
    if (!ff.paths || !ff.sizes || !final || asprintf(&tmp, "%s.tmp", final) < 0 ||
        (unpack && !(tar_tmp = path_of(st, "layers/%s.tar.tmp%s", hex, NULL)))) {
        oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ff.paths[i] = segment_path(st, hex, d->files[first + i].offset);
        ff.sizes[i] = d->files[first + i].size;
        if (!ff.paths[i]) {
            oom(err);
            goto out;
        }
    }
    char label[200];
    snprintf(label, sizeof label, "blob %s (joined from %zu segments)", f0->blob, n);
    feed fd = {from_files, &ff};
    oc_blobsink_result res;
    memset(&res, 0, sizeof res);
    out = sink_through(st, &fd, label, f0->blob, f0->blob_size, tmp, tar_tmp, f0->media_type, NULL,
                       &res, err);
    out = place_sunk(st, out, hex, &tmp, &final, &tar_tmp, &res, err);
    if (out == OC_STAGE_DAMAGED) {
        /* every segment verified, so the manifest's segment digests lie:
         * drop them all, the whole blob must come again */
        for (size_t i = 0; i < n; i++)
            (void)unlink(ff.paths[i]);
    }
out:
    if (ff.fd >= 0)
        close(ff.fd);
    for (size_t i = 0; ff.paths && i < n; i++)
        free(ff.paths[i]);
    free(ff.paths);
    free(ff.sizes);
    drop_temps(tmp, final, tar_tmp);
    return out;
}

oc_stage_result oc_stage_unpack(oc_stage *st, const char *hex, const char *path,
                                const char *media_type, oc_error *err)
{
    char *tar_tmp = path_of(st, "layers/%s.tar.tmp%s", hex, NULL);
    char *paths[1] = {(char *)path};
    struct stat sb;
    if (!tar_tmp) {
        oom(err);
        return OC_STAGE_FAILED;
    }
    if (stat(path, &sb) != 0) {
        oc_error_errno(err, errno, "blob sha256:%s (%s)", hex, path);
        free(tar_tmp);
        return OC_STAGE_FAILED;
    }
    file_feed ff = {.st = st, .paths = paths, .n = 1, .fd = -1};
    feed fd = {from_files, &ff};
    char want[OC_BUNDLE_DIGEST_LEN], label[200];
    snprintf(want, sizeof want, "sha256:%s", hex);
    snprintf(label, sizeof label, "layer %s", want);
    oc_blobsink_result res;
    memset(&res, 0, sizeof res);
    oc_stage_result out = sink_through(st, &fd, label, want, (uint64_t)sb.st_size, NULL, tar_tmp,
                                       media_type, NULL, &res, err);
    if (ff.fd >= 0)
        close(ff.fd);
    if (out == OC_STAGE_OK && !res.stream_ok) {
        *err = res.stream_err;
        out = OC_STAGE_DAMAGED;
    }
    if (out == OC_STAGE_OK) {
        if (add_layer(st, hex, tar_tmp, &res, err) != 0)
            out = OC_STAGE_FAILED;
        tar_tmp = NULL;
    }
    drop_temps(NULL, NULL, tar_tmp);
    return out;
}

int oc_stage_settle(oc_stage *st, oc_error *err)
{
    if (!st || st->n_pending == 0)
        return 0;
    int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || syncfs(dfd) != 0) {
        oc_error_errno(err, errno, "syncfs %s", st->dir);
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    close(dfd);
    int rc = 0;
    size_t i = 0;
    for (; i < st->n_pending; i++) {
        rename_op *op = &st->pending[i];
        if (rc == 0 && rename(op->from, op->to) != 0) {
            oc_error_errno(err, errno, "rename %s to %s", op->from, op->to);
            rc = -1;
        }
        if (rc != 0)
            (void)unlink(op->from);
        free(op->from);
        free(op->to);
    }
    st->n_pending = 0;
    return rc;
}
