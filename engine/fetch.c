/* fetch.c - the fetch job of occystrap.h: one image from a registry into a
 * docker-load tarball (fetch-to-tarfile) or into a directory
 * (fetch-to-extracted: the tarball's files, or with unique names the merged
 * store, optionally expanded).
 *
 * A tarball's first layer streams straight into it while it downloads
 * (emit_tar.h); the other layers land in a scratch directory beside TARFILE
 * that is removed whatever happens, and the tarball is renamed into place
 * only when complete. A directory is a store (store.h): layers it already
 * holds are reused, each file appears atomically. The job ends with one
 * call of the caller's done callback. */
#include <stdlib.h>
#include <string.h>

#include "engine/emit_dir.h"
#include "engine/emit_tar.h"
#include "engine/expand_image.h"
#include "engine/image/manifest.h"
#include "engine/image/ref.h"
#include "engine/registry/engine.h"
#include "engine/registry/pull.h"
#include "engine/store/oci_layout.h"
#include "engine/store/store.h"
#include "io/fsutil.h"
#include "occystrap/occystrap.h"

typedef struct fetch_job {
    oc_engine *e;
    oc_fetch_options o;
    oc_fetch_done_cb done;
    void *opaque;
    oc_ref ref;
    oc_platform want;
    char *repo_tag;
    oc_store *store;     /* EXTRACTED */
    char *work;          /* TARFILE: the scratch directory */
    oc_tarball *tarball; /* TARFILE: being written while layers arrive */
    size_t reused;       /* EXTRACTED: layers the store already held */
    int ok;
    oc_error err;
} fetch_job;

void oc_fetch_options_init(oc_fetch_options *o)
{
    memset(o, 0, sizeof *o);
    o->api_version = OCCYSTRAP_API_VERSION;
    o->max_layer_bytes = OC_LIMIT_DEFAULT;
    o->max_image_bytes = OC_LIMIT_DEFAULT;
}

static void job_free(fetch_job *j)
{
    oc_tarball_abort(j->tarball); /* still open: the fetch failed */
    oc_store_close(j->store);
    if (j->work) {
        oc_error rm_err;
        if (oc_remove_tree(j->work, &rm_err) != 0)
            oc_engine_say(j->e, OC_LOG_ERROR, "error: %s", rm_err.msg);
        free(j->work);
    }
    free(j->repo_tag);
    oc_platform_free(&j->want);
    oc_ref_free(&j->ref);
    free(j);
}

static void job_finish(fetch_job *j)
{
    oc_fetch_result res = {.name = j->repo_tag, .layers_reused = j->reused};
    oc_error err = j->err;
    if (!j->ok) {
        if (err.code == OC_OK)
            oc_error_set(&err, OC_E_NET, "fetch of %s ended without a result", j->repo_tag);
        if (j->e->interrupted) { /* nothing half-written is left: say so */
            res.interrupted = j->e->interrupted;
            if (j->o.target == OC_FETCH_TARFILE)
                oc_error_set(&err, OC_E_CANCELLED, "%s: %s was not written (nothing of it is left)",
                             j->e->interrupted_why, j->o.path);
            else
                oc_error_set(&err, OC_E_CANCELLED,
                             "%s: %s was not written to %s (layers that verified are kept)",
                             j->e->interrupted_why, j->repo_tag, j->o.path);
        }
        res.error = &err;
    }
    oc_fetch_done_cb done = j->done;
    void *opaque = j->opaque;
    oc_event ev = {.kind = OC_EVENT_JOB_FINISHED};
    oc_engine_emit(j->e, &ev);
    /* the scratch goes before the caller hears the fetch is over */
    oc_tarball *tb = j->tarball;
    j->tarball = NULL;
    oc_tarball_abort(tb);
    oc_store *s = j->store;
    j->store = NULL;
    oc_store_close(s);
    if (j->work) {
        oc_error rm_err;
        if (oc_remove_tree(j->work, &rm_err) != 0)
            oc_engine_say(j->e, OC_LOG_ERROR, "error: %s", rm_err.msg);
        free(j->work);
        j->work = NULL;
    }
    done(&res, opaque);
    job_free(j);
}

static void on_pulled(void *opaque, oc_pulled_image *img, const oc_error *err)
{
    fetch_job *j = opaque;
    if (err) {
        j->err = *err;
        job_finish(j);
        return;
    }
    int rc;
    if (j->o.target == OC_FETCH_TARFILE) {
        rc = oc_tarball_finish(j->tarball, img, j->repo_tag, &j->err);
        j->tarball = NULL;
    } else {
        oc_emit_dir_opts eo = {.image = j->o.image,
                               .tag = j->o.tag,
                               .repo_tag = j->repo_tag,
                               .unique_names = j->o.unique_names,
                               .registry = j->ref.registry,
                               .repository = j->ref.repository,
                               .exact = j->o.exact};
        for (size_t i = 0; i < img->n_layers; i++)
            j->reused += img->layers[i].reused;
        rc = oc_emit_dir(j->store, img, &eo, &j->err);
        if (rc == 0 && j->o.expand)
            rc = oc_fetch_expand(j->e, img, j->o.path, j->o.image, j->o.tag, j->o.unique_names,
                                 &j->o.expand_opts, &j->err);
    }
    /* a signal in the last turn of the loop came too late to stop it */
    j->ok = rc == 0;
    job_finish(j);
}

static void on_bytes(void *opaque, uint64_t n)
{
    fetch_job *j = opaque;
    oc_event ev = {.kind = OC_EVENT_BLOB_BYTES, .bytes = n};
    oc_engine_emit(j->e, &ev);
}

static void on_layer(void *opaque, int started, uint64_t size)
{
    fetch_job *j = opaque;
    oc_event ev = {.kind = started ? OC_EVENT_BLOB_STARTED : OC_EVENT_BLOB_FINISHED, .size = size};
    oc_engine_emit(j->e, &ev);
}

int oc_fetch_start(oc_engine *e, const oc_fetch_options *o, oc_fetch_done_cb done, void *opaque,
                   oc_error *err)
{
    if (!o || o->api_version != OCCYSTRAP_API_VERSION || !done || !o->registry || !o->image ||
        !o->tag || !o->path) {
        oc_error_set(err, OC_E_USAGE,
                     "oc_fetch_start: registry, image, tag, path and a callback are needed "
                     "(options filled by oc_fetch_options_init)");
        return -1;
    }
    if (o->expand && o->target == OC_FETCH_TARFILE) {
        oc_error_set(err, OC_E_USAGE, "--expand goes with fetch-to-extracted");
        return -1;
    }
    if (o->exact && (o->target != OC_FETCH_EXTRACTED || !o->unique_names)) {
        oc_error_set(err, OC_E_USAGE,
                     "--exact goes with fetch-to-extracted --use-unique-names (a store)");
        return -1;
    }
    fetch_job *j = calloc(1, sizeof *j);
    if (!j) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    j->e = e;
    j->o = *o;
    j->done = done;
    j->opaque = opaque;
    oc_error_clear(&j->err);
    if (oc_ref_from_parts(&j->ref, o->registry, o->image, o->tag, err) != 0) {
        err->code = OC_E_USAGE; /* the options are at fault */
        free(j);
        return -1;
    }
    if (oc_platform_parse(&j->want, o->platform ? o->platform : "linux/amd64", err) != 0) {
        err->code = OC_E_USAGE;
        oc_ref_free(&j->ref);
        free(j);
        return -1;
    }
    j->repo_tag = oc_ref_familiar(&j->ref);
    if (!j->repo_tag) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        job_free(j);
        return -1;
    }
    const char *work_dir = NULL;
    if (o->target == OC_FETCH_TARFILE) {
        work_dir = j->work = oc_scratch_dir_beside(o->path, err);
        if (work_dir && !(j->tarball = oc_tarball_open(o->path, e->opts.pipe.write_mode, err)))
            work_dir = NULL;
    } else if ((j->store = oc_store_open(o->path, OC_STORE_WRITE, err))) {
        work_dir = oc_store_run_dir(j->store);
        if (o->exact && oc_store_oci_prepare(j->store, err) != 0)
            work_dir = NULL;
    }
    if (!work_dir) { /* the target's fault, not the options' */
        if (err && err->code == OC_E_USAGE)
            err->code = OC_E_IO;
        job_free(j);
        return -1;
    }
    oc_pull_opts popts = {.platform = &j->want,
                          .work_dir = work_dir,
                          .max_layer_bytes = o->max_layer_bytes,
                          .max_image_bytes = o->max_image_bytes,
                          /* the tarball is fsynced instead */
                          .no_sync_layers = o->target == OC_FETCH_TARFILE,
                          .on_bytes = on_bytes,
                          .on_layer = on_layer,
                          .progress_opaque = j};
    if (j->store) {
        popts.have_layer = oc_store_have_layer;
        popts.have_layer_opaque = j->store;
        popts.exact = o->exact;
        popts.have_blob = oc_store_have_blob;
        popts.have_blob_opaque = j->store;
    }
    if (j->tarball) { /* layers are written straight into the tarball, in order */
        popts.layer_output = oc_tarball_layer_output;
        popts.layer_verified = oc_tarball_layer_verified;
        popts.layer_output_opaque = j->tarball;
        popts.in_manifest_order = 1;
    }
    oc_event ev = {.kind = OC_EVENT_JOB_STARTED, .count = 1};
    oc_engine_emit(e, &ev);
    if (oc_pull_start(e, &j->ref, &popts, on_pulled, j, err) != 0) {
        job_free(j);
        return -1;
    }
    return 0;
}
