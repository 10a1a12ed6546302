/* pull.c - one image into verified local files (see pull.h).
 *
 * A pull_job lives from oc_pull_start until its done callback returns. It
 * owns a layer_fetch per distinct layer digest; each layer_fetch owns one
 * blob pipeline (hash, inflate, hash, write on worker threads) and at most
 * one registry call at a time. A layer is done when its call has ended and
 * its pipeline has reported the hashes (or failed); pipelines of failed
 * layers are released and drain by themselves. */
#include "engine/registry/pull.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/registry/registry.h"
#include "io/inflate.h"
#include "io/blobpipe.h"
#include "engine/image/limits.h"

/* Layers at least this large keep a partial copy when a partial_dir is set. */
#define PARTIAL_MIN (4u * 1024 * 1024)

typedef struct pull_job pull_job;

/* A layer's final failure, as it concerns the other pulls of the run that
 * want the same blob. OURS: this pull's own (cancelled, local disk, this
 * image's diff_id): another pull fetches the blob itself. REPO: refused for
 * this repository (404, 401, 403): pulls from the same repository of the
 * same registry fail with it. REGISTRY: the registry could not deliver it
 * (network, status, wrong bytes, after every retry): pulls from that
 * registry fail with it. CONTENT: the bytes matched the digest and are
 * broken (bad gzip, too large): every pull of the blob fails with it. The
 * others are remembered for the rest of the run in the in-flight table, under
 * "failed SCOPE DIGEST" with SCOPE "HOST/REPO", "HOST" or "*". */
enum { FAIL_OURS = 0, FAIL_REPO, FAIL_REGISTRY, FAIL_CONTENT };

typedef struct layer_fetch {
    pull_job *job;
    const oc_descriptor *desc; /* first occurrence in the manifest */
    const char *diff_id;
    oc_blobpipe *pipe;
    oc_reg_call *call; /* while a call streams into the pipe */
    int tries;
    int finished;
    int reused;     /* path belongs to the caller (have_layer): never unlinked here */
    int owner;      /* claimed in the run's in-flight table: must complete it */
    int fail_scope; /* FAIL_*: who else the last attempt's failure is for */
    int recalled;   /* a remembered failure covers this pull: settle with it */
    int claimed;    /* holds the claim of another process's kind (claim_layer) */
    int direct;     /* its tar goes to the caller's fd (layer_output) */
    int other;      /* waits for another process that fetches it */
    oc_once_waiter waiter;
    uint64_t resume_from; /* bytes replayed from a partial file of an earlier run */
    char *path;
    uint64_t tar_size;
    int blob_only;   /* exact: the tar is the caller's (path); only the blob is fetched */
    char *keep_path; /* exact: where the pipe keeps the compressed bytes */
    char *blob_path; /* exact: those bytes, verified, not yet placed */
    /* layer_placed on the io pool: what it is given and what it answers */
    oc_offload place;
    oc_pulled_layer place_layer;
    char *placed;
    int place_rc;
    oc_error place_err;
} layer_fetch;

struct pull_job {
    oc_engine *e;
    oc_registry *r;
    char *repo;
    char *reference;
    char *label;
    oc_platform want;
    char *work_dir;
    uint64_t max_layer; /* as given: a bound, 0, or OC_LIMIT_DEFAULT */
    uint64_t max_image;
    uint64_t image_gz;          /* compressed bytes of the distinct layers */
    uint64_t image_bound;       /* max_image resolved; 0 = none */
    oc_blobpipe_budget *budget; /* the image's tar bytes, counted by its pipes */
    int no_sync_layers;
    char *partial_dir;
    int exact;
    int (*have_blob)(void *, const char *, uint64_t);
    void *have_blob_opaque;
    int (*have_config)(void *, const char *, uint64_t, char **, size_t *);
    void *have_config_opaque;
    int (*layer_output)(void *, const oc_pulled_image *, size_t, int *, uint64_t *, oc_error *);
    void *layer_output_opaque;
    void (*layer_verified)(void *, const oc_pulled_image *, size_t, const char *, uint64_t);
    int in_manifest_order;
    int (*have_layer)(void *, const char *, const char *, char **, uint64_t *);
    void *have_layer_opaque;
    oc_once *in_flight;
    int (*layer_placed)(void *, const oc_pulled_layer *, const char *, char **, oc_error *);
    void *layer_placed_opaque;
    int layer_placed_any_thread;
    int (*claim_layer)(void *, const char *, void (*)(void *), void *, oc_error *);
    void (*release_layer)(void *, const char *);
    void *claim_opaque;
    void (*on_bytes)(void *, uint64_t);
    void (*on_layer)(void *, int, uint64_t);
    void *progress_opaque;
    oc_pull_done done;
    void *opaque;

    oc_manifest manifest;
    oc_image_config config;
    oc_pulled_image img;

    int manifest_retried; /* a manifest or config that failed its digest is */
    int config_retried;   /* fetched once more from scratch (DESIGN.md 4) */
    layer_fetch *fetches;
    size_t n_fetches;
    size_t pending;
    int failed;
    oc_error first_err;
};

static void job_free(pull_job *j)
{
    for (size_t i = 0; i < j->n_fetches; i++) {
        oc_blobpipe_release(j->fetches[i].pipe);
        if (j->fetches[i].path && !j->fetches[i].reused)
            unlink(j->fetches[i].path);
        free(j->fetches[i].path);
        if (j->fetches[i].blob_path) /* verified but never placed */
            unlink(j->fetches[i].blob_path);
        free(j->fetches[i].blob_path);
        free(j->fetches[i].keep_path);
    }
    free(j->fetches);
    oc_blobpipe_budget_unref(j->budget);
    for (size_t i = 0; i < j->img.n_layers; i++) {
        free(j->img.layers[i].digest);
        free(j->img.layers[i].diff_id);
    }
    free(j->img.layers);
    free(j->img.manifest_digest);
    free(j->img.index_digest);
    free(j->img.index_body);
    free(j->img.index_media_type);
    free(j->img.manifest_media_type);
    free(j->img.manifest_body);
    free(j->img.config_digest);
    free(j->img.config_body);
    free(j->img.platform);
    oc_manifest_free(&j->manifest);
    oc_image_config_free(&j->config);
    oc_platform_free(&j->want);
    free(j->repo);
    free(j->reference);
    free(j->label);
    free(j->work_dir);
    free(j->partial_dir);
    free(j);
}

static void job_complete(pull_job *j)
{
    if (j->failed) {
        j->done(j->opaque, NULL, &j->first_err);
    } else {
        /* layer paths point at the fetch that holds each digest's file */
        for (size_t i = 0; i < j->img.n_layers; i++) {
            for (size_t k = 0; k < j->n_fetches; k++) {
                if (strcmp(j->fetches[k].desc->digest, j->img.layers[i].digest) == 0) {
                    j->img.layers[i].path = j->fetches[k].path;
                    j->img.layers[i].tar_size = j->fetches[k].tar_size;
                    j->img.layers[i].reused = j->fetches[k].reused;
                    j->img.layers[i].blob_path = j->fetches[k].blob_path;
                }
            }
        }
        j->done(j->opaque, &j->img, NULL);
        /* an emitter may have moved files; forget paths it cleared */
        for (size_t k = 0; k < j->n_fetches; k++) {
            int still = 0, blob_still = 0;
            for (size_t i = 0; i < j->img.n_layers; i++) {
                if (j->img.layers[i].path == j->fetches[k].path)
                    still = 1;
                if (j->img.layers[i].blob_path == j->fetches[k].blob_path)
                    blob_still = 1;
            }
            if (!still) {
                free(j->fetches[k].path);
                j->fetches[k].path = NULL;
            }
            if (!blob_still) {
                free(j->fetches[k].blob_path);
                j->fetches[k].blob_path = NULL;
            }
        }
    }
    job_free(j);
}

static void job_fail(pull_job *j, const oc_error *err)
{
    if (!j->failed) {
        j->failed = 1;
        j->first_err = *err;
        oc_error_prefix(&j->first_err, "%s", j->label);
    }
}

/* ---- layers ---- */

static void layer_start(layer_fetch *f);

static int layer_on_begin(void *opaque, uint64_t offset, const oc_reg_info *info, oc_error *err)
{
    layer_fetch *f = opaque;
    int64_t expect = f->desc->size;
    if (info->content_length >= 0 && info->content_length != expect) {
        oc_error_set(err, OC_E_DIGEST,
                     "layer %s: registry sends %" PRId64 " bytes, the manifest says %" PRId64,
                     f->desc->digest, info->content_length, expect);
        return -1;
    }
    f->call = info->call;
    return oc_blobpipe_restart(f->pipe, offset, err);
}

static int layer_on_body(void *opaque, const char *data, size_t len, oc_error *err)
{
    layer_fetch *f = opaque;
    if (f->job->failed) {
        oc_error_set(err, OC_E_CANCELLED, "layer %s: stopped, another part of the image failed",
                     f->desc->digest);
        return -1;
    }
    if (oc_blobpipe_received(f->pipe) + len > (uint64_t)f->desc->size) {
        oc_error_set(err, OC_E_DIGEST,
                     "layer %s: more than the %" PRId64 " bytes the manifest says", f->desc->digest,
                     f->desc->size);
        return -1;
    }
    int rc = oc_blobpipe_write(f->pipe, data, len, err);
    if (rc == 0 && f->job->on_bytes)
        f->job->on_bytes(f->job->progress_opaque, len);
    return rc;
}

static void layer_on_writable(void *opaque)
{
    layer_fetch *f = opaque;
    oc_reg_call_unpause(f->call);
}

/* A bound as given (bytes, 0 = none, OC_LIMIT_DEFAULT) for gz compressed
 * bytes: the default is max(OC_BOMB_FLOOR, OC_BOMB_RATIO x gz). */
static uint64_t bound_for(uint64_t given, uint64_t gz)
{
    return given != OC_LIMIT_DEFAULT ? given : oc_bomb_bound(gz);
}

/* "1.50 GiB", "2.1 MB"-style, for messages. */
static void human(uint64_t n, char *buf, size_t cap)
{
    if (n >= ((uint64_t)1 << 30))
        snprintf(buf, cap, "%.2f GiB", (double)n / (double)((uint64_t)1 << 30));
    else if (n >= ((uint64_t)1 << 20))
        snprintf(buf, cap, "%.1f MiB", (double)n / (double)((uint64_t)1 << 20));
    else
        snprintf(buf, cap, "%" PRIu64 " bytes", n);
}

/* The decompression-bomb guard refused the layer: say which bound, by how
 * much the tar outgrew its compressed bytes, and how to move the bound.
 * Returns 1 when it was the image's bound (this image's own failure: the
 * layer may be fine for another image), 0 for the layer's. */
static int bound_error(const layer_fetch *f, oc_error *err)
{
    const pull_job *j = f->job;
    int image = j->budget && oc_blobpipe_budget_used(j->budget) > j->image_bound;
    uint64_t bound = image ? j->image_bound : bound_for(j->max_layer, (uint64_t)f->desc->size);
    uint64_t gz = image ? j->image_gz : (uint64_t)f->desc->size;
    uint64_t given = image ? j->max_image : j->max_layer;
    char b[32], g[32];
    human(bound, b, sizeof b);
    human(gz, g, sizeof g);
    double ratio = gz ? (double)bound / (double)gz : 0;
    const char *which =
        given == OC_LIMIT_DEFAULT ? "the default bound, max(1 GiB, 100x)" : "the bound set";
    if (image)
        oc_error_set(err, OC_E_LIMIT,
                     "layer %s takes the image's tars beyond %" PRIu64 " bytes (%s) in all: more "
                     "than %.0f times the %s of its layers compressed (%s; --max-expand-size "
                     "raises it, 0 removes it)",
                     f->desc->digest, bound, b, ratio, g, which);
    else
        oc_error_set(err, OC_E_LIMIT,
                     "layer %s: its tar grows beyond %" PRIu64 " bytes (%s): more than %.0f times "
                     "its %s compressed (%s; --max-layer-size raises it, 0 removes it)",
                     f->desc->digest, bound, b, ratio, g, which);
    return image;
}

static int layer_verify(layer_fetch *f, const oc_blob_result *r, oc_error *err)
{
    const oc_blob_result res = *r;
    char want_hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(f->desc->digest, want_hex, err) != 0)
        return -1;
    f->fail_scope = FAIL_REGISTRY; /* until the registry's bytes are found right */
    if (res.compressed_size != (uint64_t)f->desc->size) {
        oc_error_set(err, OC_E_DIGEST,
                     "layer %s: size mismatch: manifest %" PRId64 ", got %" PRIu64, f->desc->digest,
                     f->desc->size, res.compressed_size);
        return -1;
    }
    if (strcmp(res.compressed_hex, want_hex) != 0) {
        oc_error_set(err, OC_E_DIGEST, "layer %s: digest mismatch: content hashes to sha256:%s",
                     f->desc->digest, res.compressed_hex);
        return -1;
    }
    if (f->blob_only)
        return 0; /* the caller's tar verified when it was placed */
    if (!res.stream_ok) {
        *err = res.stream_err; /* the registry's bytes are right: the image is broken */
        int image_bound = err->code == OC_E_LIMIT && bound_error(f, err);
        f->fail_scope = !image_bound && (err->code == OC_E_FORMAT || err->code == OC_E_LIMIT ||
                                         err->code == OC_E_UNSUPPORTED)
                            ? FAIL_CONTENT
                            : FAIL_OURS;
        return -1;
    }
    f->fail_scope = FAIL_OURS; /* a diff_id mismatch is this image's config's doing */
    char diff_hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(f->diff_id, diff_hex, err) != 0)
        return -1;
    if (strcmp(res.diff_hex, diff_hex) != 0) {
        oc_error_set(err, OC_E_DIGEST,
                     "layer %s: diff_id mismatch: config says %s, uncompressed %s tar hashes to "
                     "sha256:%s",
                     f->desc->digest, f->diff_id, oc_comp_name(res.comp), res.diff_hex);
        return -1;
    }
    f->tar_size = res.diff_size;
    return 0;
}

/* The in-flight table's key for a failure of this layer with scope FAIL_*
 * (malloc'd; NULL for FAIL_OURS or no memory). */
static char *failure_key(const layer_fetch *f, int scope)
{
    const pull_job *j = f->job;
    const char *host = oc_registry_host(j->r), *digest = f->desc->digest;
    char *key = NULL;
    int n = -1;
    if (scope == FAIL_CONTENT)
        n = asprintf(&key, "failed * %s", digest);
    else if (scope == FAIL_REGISTRY)
        n = asprintf(&key, "failed %s %s", host, digest);
    else if (scope == FAIL_REPO)
        n = asprintf(&key, "failed %s/%s %s", host, j->repo, digest);
    return n < 0 ? NULL : key;
}

/* Remember the layer's final failure for the rest of the run, if it is one
 * that other pulls would meet too. Value: "CODE MESSAGE". */
static void failure_remember(layer_fetch *f, const oc_error *err)
{
    pull_job *j = f->job;
    char *key = failure_key(f, f->fail_scope), *value = NULL;
    const char *known = NULL;
    if (key && asprintf(&value, "%d %s", (int)err->code, err->msg) < 0)
        value = NULL;
    if (key && value && oc_once_claim(j->in_flight, key, NULL, &known) == OC_ONCE_OWNER)
        oc_once_complete(j->in_flight, key, 1, value, NULL);
    free(key);
    free(value);
}

/* A remembered failure of this layer that covers this pull: 1 and *err. */
static int failure_recall(layer_fetch *f, oc_error *err)
{
    for (int scope = FAIL_REPO; scope <= FAIL_CONTENT; scope++) {
        char *key = failure_key(f, scope);
        const char *value = key ? oc_once_peek(f->job->in_flight, key) : NULL;
        free(key);
        int code, at = 0;
        if (value && sscanf(value, "%d %n", &code, &at) == 1 && at > 0) {
            oc_error_set(err, (oc_errcode)code, "%s", value + at);
            return 1;
        }
    }
    return 0;
}

/* The layer is over: success, or a failure that is not retried. */
static void layer_settle(layer_fetch *f, const oc_error *err)
{
    pull_job *j = f->job;
    int failed = err && err->code != OC_OK;
    if (f->claimed) {
        f->claimed = 0;
        j->release_layer(j->claim_opaque, f->desc->digest);
    }
    if (f->owner) {
        /* wake the other pulls waiting for this digest: with the placed file,
         * or with the failure, remembered first when it is theirs too (they
         * find it when they claim again); any other pull takes over */
        f->owner = 0;
        char *value = NULL;
        if (!failed && asprintf(&value, "%" PRIu64 " %s", f->tar_size, f->path) < 0)
            value = NULL;
        if (failed && f->fail_scope != FAIL_OURS)
            failure_remember(f, err);
        oc_once_complete(j->in_flight, f->desc->digest, !failed && value, value, err);
        free(value);
    }
    if (failed)
        job_fail(j, err);
    if (--j->pending == 0)
        job_complete(j);
}

/* DESIGN.md 4: a blob that fails verification is fetched once more from
 * scratch. Returns 1 when a new attempt started. */
static int layer_retry(layer_fetch *f, const oc_error *err)
{
    pull_job *j = f->job;
    if (err->code != OC_E_DIGEST || f->tries >= 2 || j->failed)
        return 0;
    oc_engine_log(j->e, "%s: %s; fetching it again", j->label, err->msg);
    oc_error restart_err;
    if (oc_blobpipe_restart(f->pipe, 0, &restart_err) != 0)
        return 0;
    layer_start(f);
    return 1;
}

/* After a layer verified: offer the caller's output again to the layers
 * still being fetched into temp files, in manifest order (a tarball takes
 * the next one it can place). */
static void offer_outputs(pull_job *j)
{
    for (size_t k = 0; k < j->n_fetches && !j->failed; k++) {
        layer_fetch *f = &j->fetches[k];
        if (!f->pipe || f->direct || f->finished || f->blob_only)
            continue;
        int fd = -1;
        uint64_t base = 0;
        oc_error err;
        oc_error_clear(&err);
        size_t index = (size_t)(f->desc - j->manifest.layers);
        int r = j->layer_output(j->layer_output_opaque, &j->img, index, &fd, &base, &err);
        if (r == 1) {
            r = oc_blobpipe_move_output(f->pipe, fd, base, &err);
            if (r == 1)
                f->direct = 1;
            /* 0: too late, it verifies with its file, which the caller
             * copies where it wanted it */
        }
        if (r < 0)
            job_fail(j, &err); /* the layers stop at their next bytes */
    }
}

/* layer_placed, on the io pool (or inline): touches f's placement fields
 * only, and reads what does not change while it runs. */
static void layer_place_work(oc_offload *o)
{
    layer_fetch *f = (layer_fetch *)((char *)o - offsetof(layer_fetch, place));
    pull_job *j = f->job;
    f->place_rc = j->layer_placed(j->layer_placed_opaque, &f->place_layer,
                                  f->blob_only ? NULL : f->path, &f->placed, &f->place_err);
}

/* Loop thread: the layer is in its place (or could not be put there). */
static void layer_place_done(oc_offload *o)
{
    layer_fetch *f = (layer_fetch *)((char *)o - offsetof(layer_fetch, place));
    if (f->place_rc != 0) {
        free(f->placed);
        f->placed = NULL;
        layer_settle(f, &f->place_err);
        return;
    }
    free(f->path);
    f->path = f->placed;
    f->placed = NULL;
    f->reused = 1;
    free(f->blob_path); /* placed with it */
    f->blob_path = NULL;
    layer_settle(f, NULL);
}

static void layer_on_finished(void *opaque, const oc_blob_result *res, const oc_error *local)
{
    layer_fetch *f = opaque;
    pull_job *j = f->job;
    oc_error err;
    oc_error_clear(&err);
    if (local) {
        err = *local;
    } else if (layer_verify(f, res, &err) == 0) {
        if (!f->blob_only) {
            f->path = oc_blobpipe_take_file(f->pipe);
            f->tar_size = res->diff_size;
        }
        f->finished = 1;
        if (f->keep_path) /* the exact bytes, verified: the caller places them */
            f->blob_path = strdup(f->keep_path);
        else
            oc_blobpipe_drop_partial(f->pipe);
        oc_blobpipe_release(f->pipe);
        f->pipe = NULL;
        if (f->keep_path && !f->blob_path) {
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
            layer_settle(f, &err);
            return;
        }
        if (f->blob_only)
            oc_engine_log(j->e, "%s: layer %s: its compressed bytes verified (the tar was there)",
                          j->label, f->desc->digest);
        else
            oc_engine_log(j->e, "%s: layer %s verified (%" PRIu64 " bytes of tar)", j->label,
                          f->desc->digest, f->tar_size);
        if (j->on_layer)
            j->on_layer(j->progress_opaque, 0, (uint64_t)f->desc->size);
        if (j->layer_verified) {
            j->layer_verified(j->layer_output_opaque, &j->img,
                              (size_t)(f->desc - j->manifest.layers), f->path, f->tar_size);
            if (j->layer_output)
                offer_outputs(j);
        }
        if (j->layer_placed && f->path) {
            oc_pulled_layer *pl = &f->place_layer;
            memset(pl, 0, sizeof *pl);
            pl->digest = (char *)f->desc->digest;
            pl->diff_id = (char *)f->diff_id;
            pl->path = f->blob_only ? f->path : NULL;
            pl->tar_size = f->tar_size;
            pl->blob_size = (uint64_t)f->desc->size;
            pl->blob_path = f->blob_path;
            oc_digest_parse(f->desc->digest, pl->hex, NULL);
            f->placed = NULL;
            oc_error_clear(&f->place_err);
            f->place.work = layer_place_work;
            f->place.done = layer_place_done;
            if (j->layer_placed_any_thread) { /* layer_place_done follows, on the loop */
                oc_blobpipe_offload(j->e->pipes, &f->place);
            } else {
                layer_place_work(&f->place);
                layer_place_done(&f->place);
            }
            return;
        }
        layer_settle(f, NULL);
        return;
    }
    if (j->on_layer)
        j->on_layer(j->progress_opaque, 0, (uint64_t)f->desc->size);
    if (layer_retry(f, &err))
        return;
    oc_blobpipe_drop_partial(f->pipe); /* its bytes did not verify */
    oc_blobpipe_release(f->pipe);
    f->pipe = NULL;
    layer_settle(f, &err);
}

static void layer_on_done(void *opaque, const oc_reg_info *info, const oc_error *call_err)
{
    layer_fetch *f = opaque;
    pull_job *j = f->job;
    f->call = NULL;
    j->img.bytes_fetched += info->bytes_received;
    if (!call_err) {
        oc_blobpipe_finish(f->pipe); /* layer_on_finished follows */
        return;
    }
    oc_error err = *call_err;
    if (err.code != OC_E_DIGEST && strstr(err.msg, f->desc->digest) == NULL)
        oc_error_prefix(&err, "layer %s", f->desc->digest);
    if (err.code == OC_E_NOTFOUND || err.code == OC_E_AUTH)
        f->fail_scope = FAIL_REPO;
    else if (err.code == OC_E_NET || err.code == OC_E_HTTP || err.code == OC_E_DIGEST)
        f->fail_scope = FAIL_REGISTRY;
    if (layer_retry(f, &err))
        return;
    if (j->on_layer)
        j->on_layer(j->progress_opaque, 0, (uint64_t)f->desc->size);
    oc_blobpipe_release(f->pipe);
    f->pipe = NULL;
    layer_settle(f, &err);
}

static void layer_start(layer_fetch *f)
{
    pull_job *j = f->job;
    f->tries++;
    f->fail_scope = FAIL_OURS;
    oc_reg_call_opts opts = {.resumable = 1, .resume_from = f->resume_from};
    f->resume_from = 0; /* only the first send continues the partial file */
    oc_reg_consumer consumer = {
        .on_begin = layer_on_begin,
        .on_body = layer_on_body,
        .on_done = layer_on_done,
        .opaque = f,
    };
    oc_error err;
    oc_error_clear(&err);
    if (oc_registry_call(j->r, j->repo, "blobs", f->desc->digest, &opts, &consumer, &err) != 0) {
        oc_blobpipe_release(f->pipe);
        f->pipe = NULL;
        layer_settle(f, &err);
    }
}

/* "<tar_size> <path>" remembered by the in-flight table. */
static int parse_placed(const char *value, char **path, uint64_t *tar_size)
{
    char *end = NULL;
    unsigned long long n = value ? strtoull(value, &end, 10) : 0;
    if (!value || !end || *end != ' ' || !(*path = strdup(end + 1)))
        return -1;
    *tar_size = n;
    return 0;
}

static int layer_make_pipe(layer_fetch *f, oc_error *err)
{
    pull_job *j = f->job;
    char label[256];
    snprintf(label, sizeof label, "layer %s", f->desc->digest);
    oc_blobpipe_cbs cbs = {
        .on_writable = layer_on_writable, .on_finished = layer_on_finished, .opaque = f};
    f->pipe = oc_blobpipe_new(j->e->pipes, j->work_dir, label,
                              oc_comp_from_media_type(f->desc->media_type), (uint64_t)f->desc->size,
                              bound_for(j->max_layer, (uint64_t)f->desc->size), &cbs, err);
    if (!f->pipe)
        return -1;
    oc_blobpipe_set_budget(f->pipe, j->budget);
    oc_blobpipe_set_no_sync(f->pipe, j->no_sync_layers);
    size_t index = (size_t)(f->desc - j->manifest.layers);
    if (j->in_manifest_order) /* the first layer's work first */
        oc_blobpipe_set_priority(f->pipe, (long long)(j->manifest.n_layers - index));
    f->direct = 0;
    if (f->blob_only)
        oc_blobpipe_set_digest_only(f->pipe);
    if (j->layer_output && !f->blob_only) {
        int fd = -1;
        uint64_t base = 0;
        int r = j->layer_output(j->layer_output_opaque, &j->img, index, &fd, &base, err);
        if (r < 0 || (r == 1 && oc_blobpipe_set_output(f->pipe, fd, base, err) != 0))
            return -1;
        f->direct = r == 1;
    }
    if (j->exact) {
        /* the exact bytes: in the partial directory (shared by the run's
         * processes, which claim a blob before fetching it) so a broken
         * download continues, else in our own work directory */
        char hex[OC_SHA256_HEX_LEN + 1];
        free(f->keep_path);
        f->keep_path = NULL;
        if (oc_digest_parse(f->desc->digest, hex, err) != 0)
            return -1;
        if (asprintf(&f->keep_path, "%s/%s%s", j->partial_dir ? j->partial_dir : j->work_dir,
                     j->partial_dir ? "" : "blob-", hex) < 0) {
            f->keep_path = NULL;
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            return -1;
        }
        if (oc_blobpipe_keep_compressed(f->pipe, f->keep_path, (uint64_t)f->desc->size,
                                        &f->resume_from, err) != 0)
            return -1;
        if (f->resume_from)
            oc_engine_log(j->e,
                          "%s: layer %s: continuing from byte %" PRIu64 " kept by an earlier run",
                          j->label, f->desc->digest, f->resume_from);
    } else if (j->partial_dir && f->desc->size >= (int64_t)PARTIAL_MIN) {
        char hex[OC_SHA256_HEX_LEN + 1], *path = NULL;
        if (oc_digest_parse(f->desc->digest, hex, NULL) == 0 &&
            asprintf(&path, "%s/%s", j->partial_dir, hex) >= 0) {
            f->resume_from = oc_blobpipe_keep_partial(f->pipe, path, (uint64_t)f->desc->size);
            if (f->resume_from)
                oc_engine_log(
                    j->e, "%s: layer %s: continuing from byte %" PRIu64 " kept by an earlier run",
                    j->label, f->desc->digest, f->resume_from);
            free(path);
        }
    }
    return 0;
}

static void layer_on_shared(oc_once_waiter *w, int ok, const char *value, const oc_error *err);
static void layer_on_other_done(void *opaque);

/* Settle a layer that layer_claim found recalled, with the remembered error. */
static void layer_settle_recalled(layer_fetch *f)
{
    oc_error err;
    oc_error_clear(&err);
    if (!failure_recall(f, &err))
        oc_error_set(&err, OC_E_NOMEM, "layer %s: out of memory", f->desc->digest);
    f->recalled = 0;
    layer_settle(f, &err);
}

/* What the caller's store holds of layer f: 0 nothing (fetch it), 1 all we
 * need (f->path is its tar), 2 its tar but not its exact bytes (exact: the
 * blob alone is fetched; f->path is the tar). */
static int store_has(layer_fetch *f)
{
    pull_job *j = f->job;
    free(f->path);
    f->path = NULL;
    f->blob_only = 0;
    f->reused = 0;
    if (!j->have_layer || j->have_layer(j->have_layer_opaque, f->desc->digest, f->diff_id, &f->path,
                                        &f->tar_size) != 1)
        return 0;
    f->reused = 1;
    if (!j->exact || !j->have_blob ||
        j->have_blob(j->have_blob_opaque, f->desc->digest, (uint64_t)f->desc->size) == 1)
        return 1;
    f->blob_only = 1;
    return 2;
}

/* The in-flight table's value for this layer: its placed tar. */
static int take_placed(layer_fetch *f, const char *value)
{
    free(f->path);
    f->path = NULL;
    f->blob_only = 0;
    if (parse_placed(value, &f->path, &f->tar_size) != 0)
        return -1;
    f->reused = 1;
    f->finished = 1;
    return 0;
}

/* Decide where layer f comes from: the caller's store, another pull of this
 * run (wait for it), or a fetch of our own (a pipe is made; layer_start
 * follows). Sets f->finished when nothing is left to do, f->recalled when
 * the layer failed for another pull in a way that is this one's too (the
 * caller settles it with layer_settle_recalled). */
static int layer_claim(layer_fetch *f, oc_error *err)
{
    pull_job *j = f->job;
    if (store_has(f) == 1) {
        f->finished = 1;
        return 0;
    }
    if (j->in_flight && failure_recall(f, err)) {
        /* asking again would get the same answer (every retry is spent) */
        oc_engine_log(j->e,
                      "%s: layer %s failed for another image of this run; not asked for again",
                      j->label, f->desc->digest);
        oc_error_clear(err);
        f->recalled = 1; /* the caller settles it */
        return 0;
    }
    if (j->in_flight) {
        const char *value = NULL;
        f->waiter.ready = layer_on_shared;
        f->waiter.opaque = f;
        int r = oc_once_claim(j->in_flight, f->desc->digest, &f->waiter, &value);
        if (r < 0) {
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            return -1;
        }
        if (r == OC_ONCE_DONE) {
            if (take_placed(f, value) != 0) {
                oc_error_set(err, OC_E_NOMEM, "out of memory");
                return -1;
            }
            return 0;
        }
        if (r == OC_ONCE_WAIT) {
            oc_engine_log(j->e, "%s: layer %s is being fetched for another image; waiting",
                          j->label, f->desc->digest);
            return 0; /* layer_on_shared follows */
        }
        f->owner = 1;
    }
    if (j->claim_layer) {
        int c = j->claim_layer(j->claim_opaque, f->desc->digest, layer_on_other_done, f, err);
        if (c == 1) {
            f->other = 1;
            oc_engine_log(j->e, "%s: layer %s is being fetched by another process; waiting",
                          j->label, f->desc->digest);
            return 0; /* layer_on_other_done follows */
        }
        if (c < 0)
            goto failed;
        f->claimed = 1;
    }
    if (layer_make_pipe(f, err) != 0)
        goto failed;
    if (j->on_layer)
        j->on_layer(j->progress_opaque, 1, (uint64_t)f->desc->size);
    return 0;
failed:
    oc_blobpipe_release(f->pipe);
    f->pipe = NULL;
    if (f->claimed) {
        f->claimed = 0;
        j->release_layer(j->claim_opaque, f->desc->digest);
    }
    if (f->owner) { /* let a waiting pull try its own luck */
        f->owner = 0;
        oc_once_complete(j->in_flight, f->desc->digest, 0, NULL, err);
    }
    return -1;
}

/* The other process that held the layer is done or gone: take what it
 * placed, or fetch it ourselves. */
static void layer_on_other_done(void *opaque)
{
    layer_fetch *f = opaque;
    pull_job *j = f->job;
    oc_error err;
    oc_error_clear(&err);
    f->other = 0;
    if (j->failed) {
        oc_error_set(&err, OC_E_CANCELLED, "layer %s: not fetched, another layer failed",
                     f->desc->digest);
        layer_settle(f, &err);
        return;
    }
    if (store_has(f) == 1) {
        oc_engine_log(j->e, "%s: layer %s was placed by another process", j->label,
                      f->desc->digest);
        f->finished = 1;
        layer_settle(f, NULL);
        return;
    }
    int c = j->claim_layer(j->claim_opaque, f->desc->digest, layer_on_other_done, f, &err);
    if (c == 1) {
        f->other = 1;
        return;
    }
    if (c == 0) {
        f->claimed = 1;
        if (layer_make_pipe(f, &err) == 0) {
            if (j->on_layer)
                j->on_layer(j->progress_opaque, 1, (uint64_t)f->desc->size);
            layer_start(f);
            return;
        }
        oc_blobpipe_release(f->pipe);
        f->pipe = NULL;
    }
    layer_settle(f, &err);
}

/* Another pull finished (or gave up) the layer we waited for. */
static void layer_on_shared(oc_once_waiter *w, int ok, const char *value, const oc_error *why)
{
    layer_fetch *f = w->opaque;
    (void)why;
    oc_error err;
    oc_error_clear(&err);
    if (ok) {
        if (take_placed(f, value) != 0) {
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
            layer_settle(f, &err);
            return;
        }
        layer_settle(f, NULL);
        return;
    }
    /* the other pull failed: claim again; we may now be the one to fetch,
     * or find that its failure is ours too */
    if (layer_claim(f, &err) != 0) {
        layer_settle(f, &err);
        return;
    }
    if (f->recalled)
        layer_settle_recalled(f);
    else if (f->finished)
        layer_settle(f, NULL);
    else if (f->pipe)
        layer_start(f);
}

static void start_layers(pull_job *j)
{
    const oc_manifest *m = &j->manifest;
    j->fetches = calloc(m->n_layers ? m->n_layers : 1, sizeof *j->fetches);
    j->img.layers = calloc(m->n_layers ? m->n_layers : 1, sizeof *j->img.layers);
    oc_error err;
    oc_error_clear(&err);
    if (!j->fetches || !j->img.layers) {
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        job_fail(j, &err);
        job_complete(j);
        return;
    }
    j->img.n_layers = m->n_layers;
    /* the image's bound, over its distinct layers' compressed bytes */
    for (size_t i = 0; i < m->n_layers; i++) {
        int dup = 0;
        for (size_t k = 0; k < i && !dup; k++)
            dup = strcmp(m->layers[k].digest, m->layers[i].digest) == 0;
        if (!dup && m->layers[i].size > 0)
            j->image_gz += (uint64_t)m->layers[i].size;
    }
    j->image_bound = bound_for(j->max_image, j->image_gz);
    if (j->max_image == OC_LIMIT_DEFAULT && j->max_layer != OC_LIMIT_DEFAULT) {
        /* the image's default never refuses what the layer bound the
         * caller set allows one layer: none when that is none */
        if (j->max_layer == 0)
            j->image_bound = 0;
        else if (j->max_layer > j->image_bound)
            j->image_bound = j->max_layer;
    }
    if (j->image_bound && !(j->budget = oc_blobpipe_budget_new(j->image_bound))) {
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        job_fail(j, &err);
        job_complete(j);
        return;
    }
    for (size_t i = 0; i < m->n_layers; i++) {
        oc_pulled_layer *pl = &j->img.layers[i];
        pl->digest = strdup(m->layers[i].digest);
        pl->diff_id = strdup(j->config.diff_ids[i]);
        pl->blob_size = (uint64_t)m->layers[i].size;
        if (!pl->digest || !pl->diff_id || oc_digest_parse(pl->digest, pl->hex, &err) != 0) {
            if (err.code == OC_OK)
                oc_error_set(&err, OC_E_NOMEM, "out of memory");
            job_fail(j, &err);
            job_complete(j);
            return;
        }
        int seen = 0;
        for (size_t k = 0; k < j->n_fetches; k++) {
            if (strcmp(j->fetches[k].desc->digest, pl->digest) == 0) {
                seen = 1;
                if (strcmp(j->fetches[k].diff_id, pl->diff_id) != 0) {
                    oc_error_set(&err, OC_E_FORMAT,
                                 "layer %s is listed twice with different diff_ids (%s, %s)",
                                 pl->digest, j->fetches[k].diff_id, pl->diff_id);
                    job_fail(j, &err);
                    job_complete(j);
                    return;
                }
            }
        }
        if (seen)
            continue;
        layer_fetch *f = &j->fetches[j->n_fetches];
        f->job = j;
        f->desc = &m->layers[i];
        f->diff_id = j->config.diff_ids[i];
        if (layer_claim(f, &err) != 0) {
            /* the layers claimed so far may own or wait for a digest: they
             * are settled below, and the job completes when they are */
            job_fail(j, &err);
            break;
        }
        j->n_fetches++;
    }
    for (size_t k = 0; k < j->n_fetches; k++)
        if (!j->fetches[k].finished)
            j->pending++;
    /* held while the layers are settled or started, so that the job, which
     * the last settled layer completes, outlives these loops */
    j->pending++;
    for (size_t k = 0; k < j->n_fetches; k++)
        if (j->fetches[k].recalled)
            layer_settle_recalled(&j->fetches[k]);
    oc_error cancel;
    oc_error_clear(&cancel);
    for (size_t k = 0; k < j->n_fetches; k++) {
        layer_fetch *f = &j->fetches[k];
        if (f->finished || !f->pipe)
            continue;
        if (j->failed) { /* the image failed already: fetch no other layer */
            oc_error_set(&cancel, OC_E_CANCELLED, "layer %s: not fetched, another layer failed",
                         f->desc->digest);
            oc_blobpipe_release(f->pipe);
            f->pipe = NULL;
            if (j->on_layer) /* layer_claim counted it as started */
                j->on_layer(j->progress_opaque, 0, (uint64_t)f->desc->size);
            layer_settle(f, &cancel);
        } else {
            layer_start(f);
        }
    }
    if (--j->pending == 0)
        job_complete(j);
}

/* ---- config ---- */

static void on_config(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                      const oc_error *call_err)
{
    pull_job *j = opaque;
    (void)info;
    oc_error err;
    oc_error_clear(&err);
    const oc_descriptor *cd = &j->manifest.config;
    if (call_err) {
        err = *call_err;
        oc_error_prefix(&err, "config %s", cd->digest);
        goto fail;
    }
    char got[OC_SHA256_HEX_LEN + 1], want[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(body, len, got);
    if (oc_digest_parse(cd->digest, want, &err) != 0)
        goto fail;
    if (strcmp(got, want) != 0 || len != (size_t)cd->size) {
        oc_error_set(&err, OC_E_DIGEST,
                     "config %s: digest mismatch: content (%zu bytes) hashes to sha256:%s",
                     cd->digest, len, got);
        if (!j->config_retried++) {
            oc_engine_log(j->e, "%s: %s; fetching it again", j->label, err.msg);
            if (oc_registry_fetch_small(j->r, j->repo, "blobs", cd->digest, NULL,
                                        OC_IMAGE_CONFIG_MAX, on_config, j, &err) == 0)
                return;
        }
        goto fail;
    }
    if (oc_image_config_parse(&j->config, body, len, &err) != 0) {
        oc_error_prefix(&err, "config %s", cd->digest);
        goto fail;
    }
    if (j->config.n_diff_ids != j->manifest.n_layers) {
        oc_error_set(&err, OC_E_FORMAT, "config %s lists %zu diff_ids for %zu layers", cd->digest,
                     j->config.n_diff_ids, j->manifest.n_layers);
        goto fail;
    }
    j->img.config_body = malloc(len + 1);
    j->img.config_digest = strdup(cd->digest);
    if (!j->img.config_body || !j->img.config_digest) {
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(j->img.config_body, body, len);
    j->img.config_body[len] = '\0';
    j->img.config_len = len;
    memcpy(j->img.config_hex, want, sizeof want);
    if (j->config.platform.os && j->config.platform.arch)
        j->img.platform = oc_platform_string(&j->config.platform);
    start_layers(j);
    return;
fail:
    job_fail(j, &err);
    job_complete(j);
}

/* ---- manifest ---- */

static void on_manifest(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                        const oc_error *call_err);

static int fetch_manifest(pull_job *j, const char *reference, oc_error *err)
{
    free(j->reference);
    j->reference = strdup(reference);
    if (!j->reference) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    return oc_registry_fetch_small(j->r, j->repo, "manifests", reference, OC_MANIFEST_ACCEPT,
                                   OC_MANIFEST_MAX, on_manifest, j, err);
}

static void on_manifest(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                        const oc_error *call_err)
{
    pull_job *j = opaque;
    oc_error err;
    oc_error_clear(&err);
    if (call_err) {
        err = *call_err;
        if (err.code == OC_E_NOTFOUND)
            oc_error_set(&err, OC_E_NOTFOUND, "manifest %s not found in %s/%s%s", j->reference,
                         oc_registry_host(j->r), j->repo,
                         strstr(call_err->msg, "NAME_UNKNOWN") ? " (repository unknown)" : "");
        goto fail;
    }
    char got[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(body, len, got);
    char want[OC_SHA256_HEX_LEN + 1];
    const char *expected = NULL;
    if (strncmp(j->reference, "sha256:", 7) == 0)
        expected = j->reference; /* by digest: always checked */
    else if (info->docker_content_digest && strncmp(info->docker_content_digest, "sha256:", 7) == 0)
        expected = info->docker_content_digest;
    if (expected) {
        if (oc_digest_parse(expected, want, &err) != 0)
            goto fail;
        if (strcmp(want, got) != 0) {
            oc_error_set(&err, OC_E_DIGEST,
                         "manifest %s: digest mismatch: expected %s, content hashes to sha256:%s",
                         j->reference, expected, got);
            if (!j->manifest_retried++) {
                oc_engine_log(j->e, "%s: %s; fetching it again", j->label, err.msg);
                char *again = strdup(j->reference);
                int rc = again ? fetch_manifest(j, again, &err) : -1;
                free(again);
                if (rc == 0)
                    return;
            }
            goto fail;
        }
    }
    oc_manifest m;
    if (oc_manifest_parse(&m, info->content_type, body, len, &err) != 0) {
        oc_error_prefix(&err, "manifest %s", j->reference);
        goto fail;
    }
    char digest[8 + OC_SHA256_HEX_LEN];
    snprintf(digest, sizeof digest, "sha256:%s", got);
    if (m.kind == OC_MANIFEST_INDEX) {
        if (j->img.index_digest) {
            oc_manifest_free(&m);
            oc_error_set(&err, OC_E_FORMAT, "index %s points at another index", digest);
            goto fail;
        }
        int pick = oc_manifest_select_platform(&m, &j->want, &err);
        if (pick < 0) {
            oc_manifest_free(&m);
            goto fail;
        }
        j->img.index_digest = strdup(digest);
        if (j->exact) { /* its exact bytes go into the store too */
            j->img.index_body = malloc(len + 1);
            j->img.index_media_type = strdup(m.media_type ? m.media_type : OC_MT_OCI_INDEX);
            if (j->img.index_body) {
                memcpy(j->img.index_body, body, len);
                j->img.index_body[len] = '\0';
                j->img.index_len = len;
            }
            if (!j->img.index_body || !j->img.index_media_type) {
                oc_manifest_free(&m);
                oc_error_set(&err, OC_E_NOMEM, "out of memory");
                goto fail;
            }
        }
        char *child = strdup(m.manifests[pick].digest);
        oc_manifest_free(&m);
        if (!child || fetch_manifest(j, child, &err) != 0) {
            free(child);
            if (err.code == OC_OK)
                oc_error_set(&err, OC_E_NOMEM, "out of memory");
            goto fail;
        }
        free(child);
        return;
    }
    j->manifest = m;
    j->img.manifest_digest = strdup(digest);
    j->img.manifest_media_type = strdup(m.media_type ? m.media_type : OC_MT_DOCKER_MANIFEST);
    j->img.manifest_body = malloc(len + 1);
    if (!j->img.manifest_digest || !j->img.manifest_media_type || !j->img.manifest_body) {
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(j->img.manifest_body, body, len);
    j->img.manifest_body[len] = '\0';
    j->img.manifest_len = len;
    if (j->manifest.config.size > (int64_t)OC_IMAGE_CONFIG_MAX) {
        oc_error_set(&err, OC_E_LIMIT, "config %s is %" PRId64 " bytes, more than %u allowed",
                     j->manifest.config.digest, j->manifest.config.size, OC_IMAGE_CONFIG_MAX);
        goto fail;
    }
    char *held = NULL;
    size_t held_len = 0;
    if (j->have_config &&
        j->have_config(j->have_config_opaque, j->manifest.config.digest,
                       (uint64_t)j->manifest.config.size, &held, &held_len) == 1) {
        /* the caller's verified copy; checked below as a fetched one */
        oc_reg_info none = {.status = 200, .content_length = -1};
        on_config(j, held, held_len, &none, NULL);
        free(held);
        return;
    }
    if (oc_registry_fetch_small(j->r, j->repo, "blobs", j->manifest.config.digest, NULL,
                                OC_IMAGE_CONFIG_MAX, on_config, j, &err) != 0)
        goto fail;
    return;
fail:
    job_fail(j, &err);
    job_complete(j);
}

int oc_pull_start(oc_engine *e, const oc_ref *ref, const oc_pull_opts *opts, oc_pull_done done,
                  void *opaque, oc_error *err)
{
    oc_registry *r = oc_engine_registry(e, ref->registry, err);
    if (!r)
        return -1;
    pull_job *j = calloc(1, sizeof *j);
    if (!j) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    j->e = e;
    j->r = r;
    j->done = done;
    j->opaque = opaque;
    j->max_layer = opts->max_layer_bytes;
    j->max_image = opts->max_image_bytes;
    j->no_sync_layers = opts->no_sync_layers;
    j->partial_dir = opts->partial_dir ? strdup(opts->partial_dir) : NULL;
    j->exact = opts->exact;
    j->have_blob = opts->have_blob;
    j->have_blob_opaque = opts->have_blob_opaque;
    j->have_config = opts->have_config;
    j->have_config_opaque = opts->have_config_opaque;
    j->layer_output = opts->layer_output;
    j->layer_output_opaque = opts->layer_output_opaque;
    j->layer_verified = opts->layer_verified;
    j->in_manifest_order = opts->in_manifest_order;
    j->have_layer = opts->have_layer;
    j->have_layer_opaque = opts->have_layer_opaque;
    j->in_flight = opts->in_flight;
    j->layer_placed = opts->layer_placed;
    j->layer_placed_opaque = opts->layer_placed_opaque;
    j->layer_placed_any_thread = opts->layer_placed_any_thread;
    j->claim_layer = opts->claim_layer;
    j->release_layer = opts->release_layer;
    j->claim_opaque = opts->claim_opaque;
    j->on_bytes = opts->on_bytes;
    j->on_layer = opts->on_layer;
    j->progress_opaque = opts->progress_opaque;
    j->repo = strdup(ref->repository);
    j->work_dir = strdup(opts->work_dir);
    j->label = oc_ref_string(ref);
    const oc_platform *p = opts->platform;
    j->want.os = strdup(p && p->os ? p->os : "linux");
    j->want.arch = strdup(p && p->arch ? p->arch : "amd64");
    j->want.variant = p && p->variant ? strdup(p->variant) : NULL;
    if (!j->repo || !j->work_dir || !j->label || !j->want.os || !j->want.arch) {
        job_free(j);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    const char *reference = ref->digest ? ref->digest : ref->tag;
    if (opts->manifest_body && ref->digest) {
        /* the caller holds the manifest: take it as if just fetched */
        j->reference = strdup(ref->digest);
        if (!j->reference) {
            job_free(j);
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            return -1;
        }
        oc_reg_info info = {.content_type = (char *)opts->manifest_type, .content_length = -1};
        on_manifest(j, opts->manifest_body, opts->manifest_len, &info, NULL);
        return 0;
    }
    if (fetch_manifest(j, reference, err) != 0) {
        oc_error_prefix(err, "%s", j->label);
        job_free(j);
        return -1;
    }
    return 0;
}
