/* blobfetch.c - one blob into a file, verified (see blobfetch.h). */
#include "engine/registry/blobfetch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/blobpipe.h"
#include "io/digest.h"

typedef struct blob_fetch {
    oc_registry *r;
    char *repo, *digest, *path, *work_dir;
    char hex[OC_SHA256_HEX_LEN + 1];
    uint64_t size;
    oc_blobpipe *pipe;
    oc_reg_call *call;
    int tries;
    oc_blob_fetched done;
    void *opaque;
} blob_fetch;

static void fetch_free(blob_fetch *f)
{
    if (f->pipe)
        oc_blobpipe_release(f->pipe);
    free(f->repo);
    free(f->digest);
    free(f->path);
    free(f->work_dir);
    free(f);
}

static void fetch_end(blob_fetch *f, const oc_error *err)
{
    if (err)
        (void)unlink(f->path);
    f->done(f->opaque, err);
    fetch_free(f);
}

static int on_begin(void *opaque, uint64_t offset, const oc_reg_info *info, oc_error *err)
{
    blob_fetch *f = opaque;
    if (info->content_length >= 0 && (uint64_t)info->content_length != f->size) {
        oc_error_set(err, OC_E_DIGEST,
                     "blob %s: the registry sends %" PRId64 " bytes, not %" PRIu64, f->digest,
                     info->content_length, f->size);
        return -1;
    }
    f->call = info->call;
    return oc_blobpipe_restart(f->pipe, offset, err);
}

static int on_body(void *opaque, const char *data, size_t len, oc_error *err)
{
    blob_fetch *f = opaque;
    if (oc_blobpipe_received(f->pipe) + len > f->size) {
        oc_error_set(err, OC_E_DIGEST, "blob %s: more than its %" PRIu64 " bytes", f->digest,
                     f->size);
        return -1;
    }
    return oc_blobpipe_write(f->pipe, data, len, err);
}

static void on_writable(void *opaque)
{
    blob_fetch *f = opaque;
    if (f->call)
        oc_reg_call_unpause(f->call);
}

static void start(blob_fetch *f);

/* A wrong blob is fetched once more from its first byte. */
static int again(blob_fetch *f, const oc_error *err)
{
    oc_error ignored;
    if (err->code != OC_E_DIGEST || f->tries >= 2 || oc_blobpipe_restart(f->pipe, 0, &ignored) != 0)
        return 0;
    oc_engine_log(oc_registry_engine(f->r), "%s; fetching it again", err->msg);
    start(f);
    return 1;
}

static void on_finished(void *opaque, const oc_blob_result *res, const oc_error *local)
{
    blob_fetch *f = opaque;
    oc_error err;
    oc_error_clear(&err);
    if (local)
        err = *local;
    else if (res->compressed_size != f->size)
        oc_error_set(&err, OC_E_DIGEST, "blob %s: %" PRIu64 " bytes, not the %" PRIu64 " expected",
                     f->digest, res->compressed_size, f->size);
    else if (strcmp(res->compressed_hex, f->hex) != 0)
        oc_error_set(&err, OC_E_DIGEST, "blob %s: digest mismatch: content hashes to sha256:%s",
                     f->digest, res->compressed_hex);
    if (err.code != OC_OK && !local && again(f, &err))
        return;
    fetch_end(f, err.code == OC_OK ? NULL : &err);
}

static void on_done(void *opaque, const oc_reg_info *info, const oc_error *call_err)
{
    blob_fetch *f = opaque;
    (void)info;
    f->call = NULL;
    if (!call_err) {
        oc_blobpipe_finish(f->pipe); /* on_finished follows */
        return;
    }
    oc_error err = *call_err;
    if (!strstr(err.msg, f->digest))
        oc_error_prefix(&err, "blob %s", f->digest);
    if (again(f, &err))
        return;
    fetch_end(f, &err);
}

static void start(blob_fetch *f)
{
    f->tries++;
    oc_reg_call_opts opts = {.resumable = 1};
    oc_reg_consumer c = {.on_begin = on_begin, .on_body = on_body, .on_done = on_done, .opaque = f};
    oc_error err;
    oc_error_clear(&err);
    if (oc_registry_call(f->r, f->repo, "blobs", f->digest, &opts, &c, &err) != 0)
        fetch_end(f, &err);
}

int oc_blob_fetch(oc_registry *r, const char *repo, const char *digest, uint64_t size,
                  const char *path, const char *work_dir, oc_blob_fetched done, void *opaque,
                  oc_error *err)
{
    blob_fetch *f = calloc(1, sizeof *f);
    if (!f) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    f->r = r;
    f->size = size;
    f->done = done;
    f->opaque = opaque;
    f->repo = strdup(repo);
    f->digest = strdup(digest);
    f->path = strdup(path);
    f->work_dir = strdup(work_dir);
    if (!f->repo || !f->digest || !f->path || !f->work_dir) {
        fetch_free(f);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (oc_digest_parse(digest, f->hex, err) != 0) {
        fetch_free(f);
        return -1;
    }
    char label[128];
    snprintf(label, sizeof label, "blob %.80s", digest);
    oc_blobpipe_cbs cbs = {.on_writable = on_writable, .on_finished = on_finished, .opaque = f};
    oc_engine *e = oc_registry_engine(r);
    uint64_t resumed = 0;
    f->pipe = oc_blobpipe_new(e->pipes, work_dir, label, OC_COMP_NONE, size, 0, &cbs, err);
    if (!f->pipe) {
        fetch_free(f);
        return -1;
    }
    oc_blobpipe_set_digest_only(f->pipe);
    (void)unlink(path); /* no prefix of an earlier try is continued */
    if (oc_blobpipe_keep_compressed(f->pipe, path, size, &resumed, err) != 0) {
        fetch_free(f);
        return -1;
    }
    start(f);
    return 0;
}
