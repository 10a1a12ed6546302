/* push.c - the push job of occystrap.h: images with their exact bytes into
 * a registry, every digest unchanged; from a store's exact bytes (push),
 * or from other registries (mirror --to).
 *
 * The run makes one image_job per image and tag (push_store.c plans them
 * from the store, before any request, under the store's shared lock, so
 * gc cannot remove a blob meanwhile; push_remote.c from the source
 * registry). Then all jobs run at once on the loop: HEAD of the tag in the
 * target (the same digest: nothing more is sent) -> every blob through
 * upload.h, each digest owned by one job of the run at a time (sched/
 * once.h), so a blob shared by several images is uploaded once and
 * mounted into the other repositories -> the manifests with their exact
 * bytes, an index's children before the index. A job that fails is
 * reported failed and the others go on. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/image/ref.h"
#include "engine/push_job.h"
#include "engine/registry/upload.h"
#include "engine/mirror_tags.h"

static uint64_t now_ms(const push_run *run)
{
    uv_update_time(run->e->loop);
    return uv_now(run->e->loop);
}

void oc_push_options_init(oc_push_options *o)
{
    memset(o, 0, sizeof *o);
    o->api_version = OCCYSTRAP_API_VERSION;
}

/* ---- names ---- */

/* The repository a store name maps to in the target: the source host
 * dropped (Docker Hub names keep library/), or kept as the first
 * component with keep_host ("docker.io" for Docker Hub, a port's ':' as
 * '-', since a repository component cannot hold ':'). malloc'd. */
static char *repository_of(const char *name, int keep_host, oc_error *err)
{
    oc_ref ref;
    char *text = NULL;
    if (asprintf(&text, "%s:x", name) < 0) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    int rc = oc_ref_parse(&ref, text, NULL, err);
    free(text);
    if (rc != 0) {
        oc_error_prefix(err, "image name '%s'", name);
        return NULL;
    }
    char *out = NULL;
    if (!keep_host) {
        out = strdup(ref.repository);
    } else {
        const char *host = strcmp(ref.registry, oc_registry_canonical("docker.io")) == 0
                               ? "docker.io"
                               : ref.registry;
        if (asprintf(&out, "%s/%s", host, ref.repository) >= 0) {
            for (char *p = out; *p && *p != '/'; p++)
                if (*p == ':')
                    *p = '-';
                else if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
        } else {
            out = NULL;
        }
    }
    oc_ref_free(&ref);
    if (!out)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    return out;
}

/* PREFIX/repository, checked as a reference into the target. */
char *oc_push_target_repository(push_run *run, const char *name, oc_error *err)
{
    char *path = repository_of(name, run->keep_host, err);
    if (!path)
        return NULL;
    char *full = NULL;
    if (!run->prefix)
        full = strdup(path);
    else if (asprintf(&full, "%s/%s", run->prefix, path) < 0)
        full = NULL;
    free(path);
    if (!full) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    oc_ref ref;
    if (oc_ref_from_parts(&ref, run->registry, full, "latest", err) != 0) {
        oc_error_prefix(err, "target repository for %s", name);
        free(full);
        return NULL;
    }
    free(full);
    char *repo = strdup(ref.repository); /* Docker Hub: a one-part name gets library/ */
    oc_ref_free(&ref);
    if (!repo)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    return repo;
}

/* ---- finishing an image ---- */

static void run_maybe_done(push_run *run);

static void job_view(const image_job *j, oc_push_image *v)
{
    memset(v, 0, sizeof *v);
    v->name = j->name;
    v->tag = j->tag;
    v->target = j->target;
    v->digest = j->digest;
    v->status = j->status;
    if (j->status == OC_PUSH_FAILED || j->status == OC_PUSH_INTERRUPTED)
        v->error = &j->err;
    v->note = j->note;
    v->manifests = j->manifests_put;
    v->blobs_uploaded = j->n_uploaded;
    v->blobs_mounted = j->n_mounted;
    v->blobs_present = j->n_present;
    v->bytes_uploaded = j->b_uploaded;
    v->bytes_mounted = j->b_mounted;
    v->bytes_present = j->b_present;
    v->bytes_fetched = j->b_fetched;
    v->subject = j->subject;
    v->artifact_type = j->artifact_type;
    uint64_t end = j->ended_ms ? j->ended_ms : j->started_ms;
    v->seconds = (double)(end - j->started_ms) / 1000.0;
}

void oc_push_job_fail(image_job *j, const oc_error *err)
{
    if (j->status == OC_PUSH_FAILED)
        return;
    j->status = OC_PUSH_FAILED;
    j->err = *err;
}

static void job_start(image_job *j);

int oc_push_job_after(image_job *f, image_job *j, oc_error *err)
{
    image_job **grown = realloc(j->followers, sizeof *grown * (j->n_followers + 1));
    if (!grown) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    j->followers = grown;
    j->followers[j->n_followers++] = f;
    f->waits++;
    return 0;
}

/* j is over: its followers go on (it is in the target) or fail (it is not). */
static void release_followers(image_job *j)
{
    int ok = j->status == OC_PUSH_PUSHED || j->status == OC_PUSH_UP_TO_DATE;
    for (size_t i = 0; i < j->n_followers; i++) {
        image_job *f = j->followers[i];
        if (f->finished)
            continue;
        f->waits--;
        if (!ok) {
            oc_error why;
            if (j->status == OC_PUSH_INTERRUPTED)
                oc_error_set(&why, OC_E_CANCELLED, "%s", j->err.msg);
            else
                oc_error_set(&why, OC_E_NOTFOUND, "not pushed: %s, which it goes with, was not",
                             j->target ? j->target : j->name);
            oc_push_job_fail(f, &why);
            if (!f->started && f->waits == 0) {
                f->started = 1;
                f->started_ms = j->ended_ms;
                oc_push_job_finish(f);
            }
        } else if (f->waits == 0 && !f->started) {
            job_start(f);
        }
    }
}

void oc_push_job_finish(image_job *j)
{
    push_run *run = j->run;
    if (j->finished)
        return;
    j->finished = 1;
    j->ended_ms = now_ms(run);
    if (j->status == OC_PUSH_FAILED && run->e->interrupted && j->err.code == OC_E_CANCELLED)
        j->status = OC_PUSH_INTERRUPTED;
    if (j->status == OC_PUSH_INTERRUPTED)
        run->interrupted++;
    else if (j->status == OC_PUSH_FAILED)
        run->failed++;
    run->finished++;
    oc_push_image v;
    job_view(j, &v);
    oc_event ev = {.kind = OC_EVENT_PUSH_FINISHED, .pushed = &v};
    oc_engine_emit(run->e, &ev);
    release_followers(j);
    run_maybe_done(run);
}

void oc_push_job_abort(image_job *j, const oc_error *err)
{
    oc_push_job_fail(j, err);
    oc_push_job_finish(j);
}

/* ---- manifests, once every blob is there ---- */

static void put_next_manifest(image_job *j);

static void on_manifest_put(void *opaque, const char *oci_subject, const oc_error *err)
{
    image_job *j = opaque;
    if (err) {
        oc_push_job_abort(j, err);
        return;
    }
    if (oci_subject && j->kind == JOB_REFERRER && j->run->target_api != 1) {
        /* the target took the subject: it lists referrers itself */
        j->run->target_api = 1;
        oc_engine_log(j->run->e, "%s answers OCI-Subject: it keeps referrers itself",
                      j->run->registry);
    }
    j->manifests_put++;
    j->next_man++;
    put_next_manifest(j);
}

static void put_next_manifest(image_job *j)
{
    if (j->next_man == j->n_mans) {
        j->status = OC_PUSH_PUSHED;
        oc_push_job_finish(j);
        return;
    }
    const man_put *m = &j->mans[j->next_man];
    oc_error err;
    if (oc_upload_manifest(j->run->r, j->repo, m->reference, m->media_type, m->body, m->len,
                           m->digest, on_manifest_put, j, &err) != 0)
        oc_push_job_abort(j, &err);
}

static void blob_settled(image_job *j)
{
    if (--j->blobs_pending > 0)
        return;
    if (j->status == OC_PUSH_FAILED) {
        oc_push_job_finish(j);
        return;
    }
    put_next_manifest(j);
}

/* ---- blobs ---- */

static void blob_claim(blob_need *b);
static void blob_release(blob_need *b, int ok, const oc_error *err);
static void blob_present(blob_need *b);

static void on_blob_sent(void *opaque, uint64_t n)
{
    blob_need *b = opaque;
    oc_engine *e = b->job->run->e;
    if (!b->started) {
        b->started = 1;
        oc_event ev = {.kind = OC_EVENT_BLOB_STARTED, .digest = b->digest, .size = b->size};
        oc_engine_emit(e, &ev);
    }
    oc_event ev = {.kind = OC_EVENT_BLOB_BYTES, .digest = b->digest, .bytes = n};
    oc_engine_emit(e, &ev);
}

/* The blob's file is open only while a request carries its bytes, so a push
 * of thousands of blobs holds no more descriptors than requests in flight. */
static int file_body(void *opaque, uint64_t from, uint64_t len, oc_http_body *out, oc_error *err)
{
    blob_need *b = opaque;
    if (b->fd < 0) {
        b->fd = oc_oci_open_blob(&b->job->run->layout, b->digest, b->size, err);
        if (b->fd < 0)
            return OC_UPLOAD_SOURCE_FAILED;
    }
    out->fd = b->fd;
    out->offset = from;
    out->length = len;
    return 0;
}

static void file_release(void *opaque)
{
    blob_need *b = opaque;
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
}

static void on_uploaded(void *opaque, const oc_upload_result *res, const oc_error *err)
{
    blob_need *b = opaque;
    image_job *j = b->job;
    push_run *run = j->run;
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    if (b->relay) {
        j->b_fetched += oc_relay_received(b->relay);
        oc_relay_free(b->relay);
        b->relay = NULL;
    }
    if (b->started) {
        oc_event ev = {.kind = OC_EVENT_BLOB_FINISHED, .digest = b->digest, .size = b->size};
        oc_engine_emit(run->e, &ev);
    }
    if (err) {
        oc_push_job_fail(j, err);
        blob_release(b, 0, err);
        blob_settled(j);
        return;
    }
    if (res->outcome == OC_UPLOAD_SENT) {
        j->n_uploaded++;
        j->b_uploaded += b->size;
    } else {
        if (res->outcome == OC_UPLOAD_MOUNTED) {
            j->n_mounted++;
            j->b_mounted += b->size;
        } else {
            j->n_present++;
            j->b_present += b->size;
        }
        oc_event ev = {.kind = OC_EVENT_BLOB_REUSED, .digest = b->digest, .size = b->size};
        oc_engine_emit(run->e, &ev);
    }
    if (res->resumes || res->restarts)
        oc_engine_say(run->e, OC_LOG_INFO,
                      "%s: blob %s uploaded after %d resume(s) and %d "
                      "restart(s)",
                      j->target, b->digest, res->resumes, res->restarts);
    blob_release(b, 1, NULL);
    blob_settled(j);
}

/* Upload (or mount from `from`, or find present) the blob into the job's
 * repository. */
static void blob_upload(blob_need *b, const char *from, int skip_head)
{
    image_job *j = b->job;
    push_run *run = j->run;
    oc_error err;
    oc_error_clear(&err);
    oc_upload_opts uo = {.repo = j->repo,
                         .digest = b->digest,
                         .size = b->size,
                         .mount_from = from,
                         .skip_head = skip_head,
                         .chunk_size = run->chunk,
                         .source = {.body = file_body, .release = file_release, .opaque = b},
                         .on_sent = on_blob_sent};
    if (j->le) { /* streamed from the source registry */
        b->relay = oc_relay_new(j->src, j->le->ref.repository, b->digest, b->size, &err);
        if (!b->relay) {
            oc_upload_result none = {0};
            on_uploaded(b, &none, &err);
            return;
        }
        uo.stream = 1;
        oc_relay_source(b->relay, &uo.source);
    }
    if (oc_upload_blob(run->r, &uo, on_uploaded, b, &err) != 0) {
        oc_upload_result none = {0};
        on_uploaded(b, &none, &err);
    }
}

/* The blob is in the job's repository: this run put it there, or the
 * registry had it. */
static void blob_present(blob_need *b)
{
    image_job *j = b->job;
    j->n_present++;
    j->b_present += b->size;
    oc_event ev = {.kind = OC_EVENT_BLOB_REUSED, .digest = b->digest, .size = b->size};
    oc_engine_emit(j->run->e, &ev);
}

/* The blob's outcome for the run's tables: its digest (when this job
 * uploaded it for the run) and its (repository, digest) pair. */
static void blob_release(blob_need *b, int ok, const oc_error *err)
{
    push_run *run = b->job->run;
    if (b->owner)
        oc_once_complete(run->owners, b->digest, ok, b->job->repo, err);
    if (b->owner_repo)
        oc_once_complete(run->owners, b->repo_key, ok, b->job->repo, err);
    b->owner = b->owner_repo = 0;
}

static void blob_claim_digest(blob_need *b);

/* Another job of the run put the blob into holder. */
static void blob_held(blob_need *b, const char *holder)
{
    image_job *j = b->job;
    if (strcmp(holder, j->repo) == 0) {
        blob_present(b);
        blob_release(b, 1, NULL);
        blob_settled(j);
        return;
    }
    blob_upload(b, holder, 1);
}

static void blob_stopped(blob_need *b)
{
    oc_error e;
    oc_error_set(&e, OC_E_CANCELLED, "%s", b->job->run->e->interrupted_why);
    oc_push_job_fail(b->job, &e);
    blob_release(b, 0, &e);
    blob_settled(b->job);
}

static void on_owner_ready(oc_once_waiter *w, int ok, const char *value, const oc_error *err)
{
    blob_need *b = w->opaque;
    (void)err;
    if (ok)
        blob_held(b, value);
    else if (b->job->run->e->interrupted)
        blob_stopped(b);
    else
        blob_claim_digest(b); /* its owner failed: try it ourselves */
}

/* The run's owner of the digest uploads it (into its repository); the
 * others mount it from there. */
static void blob_claim_digest(blob_need *b)
{
    push_run *run = b->job->run;
    b->waiter.ready = on_owner_ready;
    b->waiter.opaque = b;
    const char *value = NULL;
    int r = oc_once_claim(run->owners, b->digest, &b->waiter, &value);
    if (r == OC_ONCE_DONE) {
        blob_held(b, value);
    } else if (r == OC_ONCE_OWNER) {
        b->owner = 1;
        const char *cand = json_string_value(json_object_get(run->candidates, b->digest));
        blob_upload(b, cand && strcmp(cand, b->job->repo) != 0 ? cand : NULL, 0);
    } else if (r != OC_ONCE_WAIT) {
        oc_error e;
        oc_error_set(&e, OC_E_NOMEM, "out of memory");
        oc_push_job_fail(b->job, &e);
        blob_release(b, 0, &e);
        blob_settled(b->job);
    }
}

static void on_repo_ready(oc_once_waiter *w, int ok, const char *value, const oc_error *err)
{
    blob_need *b = w->opaque;
    (void)value;
    (void)err;
    if (ok) {
        blob_present(b);
        blob_settled(b->job);
    } else if (b->job->run->e->interrupted) {
        blob_stopped(b);
    } else {
        blob_claim(b);
    }
}

/* One job at a time puts a blob into a repository: several tags of one
 * repository share blobs, and distribution 2.8 loses a link written by
 * two requests at once (its link file is truncated and rewritten in
 * place, and a manifest PUT that reads it meanwhile finds an empty link:
 * 400 DIGEST_INVALID). */
static void blob_claim(blob_need *b)
{
    push_run *run = b->job->run;
    oc_error e;
    if (!b->repo_key && asprintf(&b->repo_key, "%s %s", b->job->repo, b->digest) < 0)
        b->repo_key = NULL;
    b->repo_waiter.ready = on_repo_ready;
    b->repo_waiter.opaque = b;
    const char *value = NULL;
    int r = b->repo_key ? oc_once_claim(run->owners, b->repo_key, &b->repo_waiter, &value) : -1;
    if (r == OC_ONCE_DONE) {
        blob_present(b);
        blob_settled(b->job);
    } else if (r == OC_ONCE_OWNER) {
        b->owner_repo = 1;
        blob_claim_digest(b);
    } else if (r != OC_ONCE_WAIT) {
        oc_error_set(&e, OC_E_NOMEM, "out of memory");
        oc_push_job_fail(b->job, &e);
        blob_settled(b->job);
    }
}

void oc_push_job_send_blobs(image_job *j)
{
    if (j->n_blobs == 0) {
        put_next_manifest(j);
        return;
    }
    j->blobs_pending = j->n_blobs;
    for (size_t i = 0; i < j->n_blobs; i++)
        blob_claim(&j->blobs[i]);
}

/* ---- the tag first: already there? ---- */

int oc_push_tag_answered(image_job *j, const oc_reg_info *info, const oc_error *err)
{
    if (err && err->code != OC_E_NOTFOUND) {
        oc_push_job_abort(j, err);
        return 1;
    }
    if (!err && info->docker_content_digest &&
        strcmp(info->docker_content_digest, j->digest) == 0) {
        j->status = OC_PUSH_UP_TO_DATE;
        oc_push_job_finish(j);
        return 1;
    }
    return 0;
}

void oc_push_head_target(image_job *j, const char *reference,
                         void (*on_done)(void *opaque, const oc_reg_info *info,
                                         const oc_error *err))
{
    char *scope = oc_upload_scope(j->repo);
    oc_reg_call_opts co = {.method = "HEAD", .accept = OC_MANIFEST_ACCEPT, .scope = scope};
    oc_reg_consumer c = {.on_done = on_done, .opaque = j};
    oc_error err;
    oc_error_clear(&err);
    if (!scope)
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
    if (!scope || oc_registry_call(j->run->r, j->repo, "manifests", reference, &co, &c, &err) != 0)
        oc_push_job_abort(j, &err);
    free(scope);
}

static void on_head_tag(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    image_job *j = opaque;
    if (!oc_push_tag_answered(j, info, err))
        oc_push_job_send_blobs(j);
}

void oc_push_job_send(image_job *j)
{
    oc_push_head_target(j, j->mans[j->n_mans - 1].reference, on_head_tag);
}

static void job_start(image_job *j)
{
    j->started = 1;
    j->started_ms = now_ms(j->run);
    if (j->status == OC_PUSH_FAILED) /* found while planning it */
        oc_push_job_finish(j);
    else if (j->kind == JOB_FALLBACK)
        oc_push_fallback_send(j);
    else if (j->le)
        oc_push_remote_start(j);
    else
        oc_push_job_send(j);
}

/* ---- what a job sends ---- */

int oc_push_add_blob(image_job *j, const oc_descriptor *d, oc_error *err)
{
    for (size_t i = 0; i < j->n_blobs; i++)
        if (strcmp(j->blobs[i].digest, d->digest) == 0)
            return 0;
    if (d->size < 0) {
        oc_error_set(err, OC_E_FORMAT, "blob %s has no size", d->digest);
        return -1;
    }
    /* a store's: present with its size (stat); the registry checks the bytes */
    int fd = j->le ? -2 : oc_oci_open_blob(&j->run->layout, d->digest, (uint64_t)d->size, err);
    if (fd == -1) {
        if (err->code == OC_E_NOTFOUND)
            oc_error_set(err, OC_E_NOTFOUND,
                         "blob %s is not in %s/oci: the store lacks its exact bytes (mirror it "
                         "again)",
                         d->digest, j->run->store_dir);
        return -1;
    }
    if (fd >= 0)
        close(fd);
    blob_need *grown = realloc(j->blobs, sizeof *grown * (j->n_blobs + 1));
    if (!grown) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    j->blobs = grown;
    blob_need *b = &j->blobs[j->n_blobs];
    memset(b, 0, sizeof *b);
    b->job = j;
    b->fd = -1;
    b->size = (uint64_t)d->size;
    if (!(b->digest = strdup(d->digest))) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    j->n_blobs++;
    return 0;
}

int oc_push_add_manifest(image_job *j, const char *digest, const char *media_type, char *body,
                         size_t len, const char *reference, oc_error *err)
{
    man_put *grown = realloc(j->mans, sizeof *grown * (j->n_mans + 1));
    if (!grown) {
        free(body);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    j->mans = grown;
    man_put *m = &j->mans[j->n_mans++];
    m->body = body;
    m->len = len;
    m->digest = strdup(digest);
    m->media_type = strdup(media_type);
    m->reference = strdup(reference);
    if (!m->digest || !m->media_type || !m->reference) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    return 0;
}

/* An image manifest's blobs (config and layers) into the job. */
int oc_push_image_blobs(image_job *j, const oc_manifest *m, oc_error *err)
{
    if (oc_push_add_blob(j, &m->config, err) != 0)
        return -1;
    for (size_t i = 0; i < m->n_layers; i++)
        if (oc_push_add_blob(j, &m->layers[i], err) != 0)
            return -1;
    return 0;
}

image_job *oc_push_new_job(push_run *run, const char *name, const char *tag, oc_error *err)
{
    image_job **grown = realloc(run->jobs, sizeof *grown * (run->n_jobs + 1));
    image_job *j = grown ? calloc(1, sizeof *j) : NULL;
    if (grown)
        run->jobs = grown;
    if (!j) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    run->jobs[run->n_jobs++] = j;
    j->run = run;
    j->name = strdup(name);
    j->tag = strdup(tag);
    if (!j->name || !j->tag) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    return j;
}

/* The target name shown in the report, and the job's repository. */
void oc_push_job_target(image_job *j)
{
    push_run *run = j->run;
    oc_error err;
    oc_error_clear(&err);
    j->repo = oc_push_target_repository(run, j->name, &err);
    const char *sep = strncmp(j->tag, "sha256:", 7) == 0 ? "@" : ":";
    if (asprintf(&j->target, "%s/%s%s%s", run->registry, j->repo ? j->repo : j->name, sep, j->tag) <
        0)
        j->target = NULL;
    if (!j->repo)
        oc_push_job_fail(j, &err);
}

/* ---- the run ---- */

static void run_free(void *opaque)
{
    push_run *run = opaque;
    for (size_t i = 0; i < run->n_jobs; i++) {
        image_job *j = run->jobs[i];
        for (size_t k = 0; k < j->n_blobs; k++) {
            if (j->blobs[k].fd >= 0)
                close(j->blobs[k].fd);
            free(j->blobs[k].digest);
            free(j->blobs[k].repo_key);
        }
        free(j->blobs);
        for (size_t k = 0; k < j->n_mans; k++) {
            free(j->mans[k].digest);
            free(j->mans[k].media_type);
            free(j->mans[k].body);
            free(j->mans[k].reference);
        }
        free(j->mans);
        free(j->name);
        free(j->tag);
        free(j->repo);
        free(j->target);
        free(j->digest);
        free(j->media_type);
        free(j->note);
        free(j->index_body);
        free(j->subject);
        free(j->artifact_type);
        free(j->followers);
        free(j->fallback_body);
        json_decref(j->fallback_descs);
        free(j);
    }
    free(run->jobs);
    free(run->probe_waiters);
    oc_once_free(run->owners);
    json_decref(run->candidates);
    oc_oci_layout_free(&run->layout);
    oc_store_close(run->store);
    oc_list_free(&run->list);
    if (run->platform)
        oc_platform_free(run->platform);
    free(run->platform);
    free(run->store_dir);
    free(run->registry);
    free(run->prefix);
    free(run);
}

/* The report, the caller's callback, and the run's memory once its timer
 * has closed. */
static void run_complete(void *opaque)
{
    push_run *run = opaque;
    oc_engine *e = run->e;
    oc_push_report rep;
    memset(&rep, 0, sizeof rep);
    oc_push_image *views = calloc(run->n_jobs ? run->n_jobs : 1, sizeof *views);
    if (!views && run->jr.err.code == OC_OK)
        oc_error_set(&run->jr.err, OC_E_NOMEM, "out of memory writing the report");
    for (size_t i = 0; views && i < run->n_jobs; i++) {
        const image_job *j = run->jobs[i];
        job_view(j, &views[i]);
        rep.pushed += j->status == OC_PUSH_PUSHED;
        rep.up_to_date += j->status == OC_PUSH_UP_TO_DATE;
        rep.failed += j->status == OC_PUSH_FAILED;
        rep.interrupted += j->status == OC_PUSH_INTERRUPTED;
        rep.bytes_uploaded += j->b_uploaded;
        rep.bytes_mounted += j->b_mounted;
        rep.bytes_present += j->b_present;
    }
    rep.images = views;
    rep.n_images = views ? run->n_jobs : 0;
    if (run->jr.err.code == OC_OK && run->n_jobs) {
        if (e->interrupted && run->interrupted) {
            oc_error_set(&run->jr.err, OC_E_CANCELLED,
                         "%s: %zu of %zu images stopped before they were pushed, %zu failed, "
                         "%zu done (a rerun sends only what is missing)",
                         e->interrupted_why, run->interrupted, run->n_jobs, run->failed,
                         run->finished - run->interrupted - run->failed);
            rep.signal = e->interrupted;
        } else if (run->finished != run->n_jobs) {
            oc_error_set(&run->jr.err, OC_E_NET, "push ended with %zu of %zu images unfinished",
                         run->n_jobs - run->finished, run->n_jobs);
        }
    }
    oc_jobrun_ending(&run->jr, &rep.error, &rep.config_error);
    run->done(&rep, run->done_opaque);
    free(views);
    oc_jobrun_close(&run->jr);
}

static void run_maybe_done(push_run *run)
{
    oc_jobrun_maybe_done(&run->jr, run->finished, run->n_jobs);
}

static void run_fail(push_run *run, int config_error)
{
    oc_jobrun_fail(&run->jr, config_error);
}

/* REGISTRY[/PREFIX] */
static int parse_target(push_run *run, const char *target, oc_error *err)
{
    const char *slash = strchr(target, '/');
    size_t hn = slash ? (size_t)(slash - target) : strlen(target);
    if (hn == 0 || (slash && !slash[1])) {
        oc_error_set(err, OC_E_USAGE, "target '%s': want REGISTRY[/PREFIX]", target);
        return -1;
    }
    char *host = strndup(target, hn);
    if (!host) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    run->registry = strdup(oc_registry_canonical(host));
    free(host);
    if (slash) {
        size_t pn = strlen(slash + 1);
        while (pn > 0 && slash[1 + pn - 1] == '/')
            pn--;
        run->prefix = strndup(slash + 1, pn);
    }
    if (!run->registry || (slash && !run->prefix)) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    /* the prefix must be a repository path itself */
    oc_ref ref;
    if (oc_ref_from_parts(&ref, run->registry, run->prefix ? run->prefix : "x/y", "latest", err) !=
        0) {
        oc_error_prefix(err, "target '%s'", target);
        err->code = OC_E_USAGE;
        return -1;
    }
    oc_ref_free(&ref);
    return 0;
}

/* Every job at once; the run ends when the last one has. */
static void run_jobs(push_run *run)
{
    oc_event ev = {.kind = OC_EVENT_JOB_STARTED, .count = run->n_jobs};
    oc_engine_emit(run->e, &ev);
    run->jr.starting = 1;
    for (size_t i = 0; i < run->n_jobs; i++)
        if (!run->jobs[i]->started && run->jobs[i]->waits == 0)
            job_start(run->jobs[i]); /* the others when what they follow is pushed */
    run->jr.starting = 0;
    run_maybe_done(run);
}

/* push: the store's images. */
static void start_store(push_run *run, const oc_push_options *o)
{
    run->store = oc_store_open(run->store_dir, OC_STORE_READ, &run->jr.err);
    if (!run->store) {
        run_fail(run, run->jr.err.code == OC_E_NOTFOUND || run->jr.err.code == OC_E_USAGE);
        return;
    }
    char *oci_dir = oc_store_path(run->store, "oci");
    oc_catalog *cat = NULL;
    oc_error cat_err;
    int have_cat =
        oc_store_catalog_load(run->store, &cat, &cat_err) == 0 && cat && oc_catalog_count(cat) > 0;
    int have_layout = oci_dir && oc_oci_layout_read(&run->layout, oci_dir, &run->jr.err) == 0;
    free(oci_dir);
    if (!have_layout && run->jr.err.code != OC_E_NOTFOUND) { /* a damaged layout */
        oc_catalog_free(cat);
        run_fail(run, 0);
        return;
    }
    if (!have_layout && !have_cat) {
        oc_error_set(&run->jr.err, OC_E_USAGE,
                     "%s is not a store with images: no oci/index.json and no catalog.json",
                     run->store_dir);
        oc_catalog_free(cat);
        run_fail(run, 1);
        return;
    }
    oc_error_clear(&run->jr.err);
    if (!have_layout)
        run->layout.dir = oc_store_path(run->store, "oci");
    if (oc_push_plan_store(run, o->images, o->n_images, have_cat ? cat : NULL, &run->jr.err) != 0) {
        oc_catalog_free(cat);
        run_fail(run, 0);
        return;
    }
    oc_catalog_free(cat);
    if (oc_push_plan_referrers(run, &run->jr.err) != 0) {
        run_fail(run, 0);
        return;
    }
    if (run->n_jobs == 0) {
        oc_error_set(&run->jr.err, OC_E_USAGE, "%s holds no images", run->store_dir);
        run_fail(run, 1);
        return;
    }
    oc_push_collect_candidates(run);
    run_jobs(run);
}

/* The list with its repository entries ("REPO:*", "REPO:/REGEX/") expanded
 * into one entry per tag (mirror_tags.h): plan and run it. */
static void on_list_expanded(void *opaque, oc_list *out, const oc_error *err)
{
    push_run *run = opaque;
    if (!out) {
        run->jr.err = *err;
        run_fail(run, 0);
        return;
    }
    oc_list_free(&run->list);
    run->list = *out;
    free(out);
    run->candidates = json_object();
    if (!run->candidates || oc_push_plan_list(run, &run->jr.err) != 0) {
        if (run->jr.err.code == OC_OK)
            oc_error_set(&run->jr.err, OC_E_NOMEM, "out of memory");
        run_fail(run, 0);
        return;
    }
    run_jobs(run);
}

/* mirror --to: the images of a list, from their registries. */
static void start_list(push_run *run, const oc_push_options *o)
{
    int rc = o->list_path
                 ? oc_list_load(&run->list, o->list_path, o->default_registry, &run->jr.err)
                 : oc_list_parse(&run->list, o->list_text, strlen(o->list_text),
                                 o->default_registry, &run->jr.err);
    if (rc != 0) {
        run_fail(run, 1);
        return;
    }
    if (run->list.n == 0) {
        oc_error_set(&run->jr.err, OC_E_USAGE, "list %s holds no entries",
                     o->list_path ? o->list_path : "(the list given)");
        run_fail(run, 1);
        return;
    }
    oc_tags_expand_opts xo = {.done = on_list_expanded, .opaque = run};
    if (oc_mirror_tags_expand(run->e, &run->list, &xo, &run->jr.err) != 0)
        run_fail(run, 0);
}

int oc_push_start(oc_engine *e, const oc_push_options *o, oc_push_done_cb done, void *opaque,
                  oc_error *err)
{
    int from_list = o && (o->list_path || o->list_text);
    if (!o || o->api_version != OCCYSTRAP_API_VERSION || !o->target || !done ||
        !o->store_dir == !from_list || (o->n_images && !o->images) || (from_list && o->n_images)) {
        oc_error_set(err, OC_E_USAGE,
                     "oc_push_start: a store (and images) or a list, a target and a callback are "
                     "needed (options filled by oc_push_options_init)");
        return -1;
    }
    if (o->platform && !from_list) {
        oc_error_set(err, OC_E_USAGE, "a platform goes with a list (mirror --to)");
        return -1;
    }
    push_run *run = calloc(1, sizeof *run);
    if (!run) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    run->e = e;
    run->done = done;
    run->done_opaque = opaque;
    run->keep_host = o->keep_host;
    run->chunk = o->chunk_size;
    if (o->store_dir && !(run->store_dir = strdup(o->store_dir))) {
        free(run);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (o->platform && (!(run->platform = calloc(1, sizeof *run->platform)) ||
                        oc_platform_parse(run->platform, o->platform, err) != 0)) {
        if (run->platform)
            err->code = OC_E_USAGE;
        else
            oc_error_set(err, OC_E_NOMEM, "out of memory");
        free(run->platform);
        run->platform = NULL;
        run_free(run);
        return -1;
    }
    if (parse_target(run, o->target, err) != 0) {
        run_free(run);
        return -1;
    }
    oc_jobrun_init(&run->jr, e, run, run_complete, run_free);
    /* From here on a failure is the run's: reported through done. */
    run->owners = oc_once_new();
    if (!run->owners) {
        oc_error_set(&run->jr.err, OC_E_NOMEM, "out of memory");
        run_fail(run, 0);
        return 0;
    }
    if (!(run->r = oc_engine_registry(e, run->registry, &run->jr.err))) {
        run_fail(run, 1);
        return 0;
    }
    if (from_list)
        start_list(run, o);
    else
        start_store(run, o);
    return 0;
}
