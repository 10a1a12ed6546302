/* mirror.c - every entry of a LIST into one store, on one loop (see
 * mirror.h).
 *
 * The run first lists the tags of LIST's repository entries and keeps its
 * shard's entries (mirror_tags.h). An entry_job then walks: HEAD (tags only)
 * -> up to date? done : GET the manifest by digest -> an index is kept in
 * the store and expanded into the wanted platforms -> one pull per platform
 * -> each pull's image written into the store (config, manifest file; its
 * layers were placed as they verified) -> its catalog entry handed to the
 * group commit (catalog_commit.h) -> reported once the catalog lists it.
 * Every step checks run->stop, which --fail-fast sets on the first failure.
 * At most a window of entries is at work at once (entries waiting only for
 * the catalog write do not count), so memory does not grow with the list.
 * The run owns the store, its catalog in memory, the in-flight table shared
 * by all pulls, the cross-process blob claims and the entries' results; the
 * caller hears of them through events and the final report (mirror.h). */
#include "engine/mirror.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/blob_claims.h"
#include "engine/catalog_commit.h"
#include "engine/emit_dir.h"
#include "engine/jobrun.h"
#include "engine/listfile.h"
#include "engine/mirror_referrers.h"
#include "engine/mirror_tags.h"
#include "engine/registry/config.h"
#include "engine/registry/pull.h"
#include "engine/registry/registry.h"
#include "engine/registry/resolve.h"
#include "engine/store/catalog_batch.h"
#include "engine/store/image_index.h"
#include "engine/store/oci_index.h"
#include "engine/store/oci_layout.h"
#include "engine/store/store.h"
#include "engine/store/store_dirsync.h"
#include "engine/store_put.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/storelock.h"
#include "sched/once.h"
#include "engine/image/limits.h"
#include "engine/image/ref.h"

/* entries at work at once, per request slot of the global cap */
#define WINDOW_PER_JOB 8
#define WINDOW_MIN 64

typedef enum {
    ST_PENDING = 0,
    ST_UPTODATE,
    ST_FETCHED,
    ST_FAILED,
    ST_DRYRUN,
    ST_INTERRUPTED, /* stopped by SIGINT/SIGTERM before it was mirrored */
    ST_COUNT
} entry_status;

typedef struct mirror_run mirror_run;
typedef struct entry_job entry_job;

typedef struct plat_pull {
    entry_job *job;
    oc_platform platform;
    char *tag; /* catalog tag for this platform */
} plat_pull;

struct entry_job {
    mirror_run *run;
    oc_list_entry *le;
    oc_registry *r;
    char *name;   /* catalog image name */
    char *digest; /* what the tag resolved to, or the entry's digest */
    entry_status status;
    oc_error *err; /* why it failed (malloc'd), or NULL */
    char *note;    /* dry run: what would be fetched */
    uint64_t bytes_fetched;
    uint64_t bytes_total; /* of the layers of the images stored */
    uint64_t started_ms, ended_ms;
    plat_pull *pulls;
    size_t n_pulls;
    size_t pulls_pending;
    size_t listing; /* catalog entries handed to the group commit, not yet written */
    char *manifest; /* the manifest or index the digest names, for the pulls */
    size_t manifest_len;
    char *manifest_type;
    char *top_type;      /* its media type (canonical), for index.json */
    int is_index;        /* it is an index (or manifest list) */
    size_t pulls_placed; /* pulls whose image is in the store */
    char **stored;       /* platform strings stored, for the report */
    size_t n_stored;
    unsigned started : 1;
    unsigned finished : 1;
    unsigned parked : 1;           /* only waits for the catalog write */
    unsigned manifest_retried : 1; /* a manifest that failed its digest is fetched once more */
    char *fetched;                 /* the manifest when resolving the tag took a GET */
    size_t fetched_len;
    char *fetched_type;
    /* referrers: the image's manifests (besides digest), their outcome */
    char **subjects;
    size_t n_subjects;
    size_t refs_fetched, refs_known;
    oc_error *ref_err; /* why some were not mirrored (not required), or NULL */
};

struct mirror_run {
    oc_engine *e;
    const oc_mirror_opts *o; /* &opts */
    oc_mirror_opts opts;     /* the caller's, copied: strings and platforms owned */
    oc_mirror_done_cb done;
    void *done_opaque;
    oc_jobrun jr; /* the run's own failure (list, store, lock); its timer: the lock
                   * wait's polls, then the deferred finish */
    int lock_fd;
    int shard_lock_fd; /* mirror-K-of-N.lock of a sharded run */
    uint64_t lock_wait_started_ms;
    int lock_announced;
    oc_store *store;
    oc_catalog_batch *catalog;
    oc_image_index *index; /* the images' manifest files, read once */
    oc_catalog_commit *commit;
    oc_blob_claims *claims;
    oc_list list;  /* LIST as read */
    oc_list *work; /* the entries of this run: repositories expanded, shard cut */
    entry_job *jobs;
    size_t n_jobs;
    size_t next;   /* the next job to start */
    size_t busy;   /* started, not finished, not parked */
    size_t parked; /* waiting only for the catalog write */
    size_t window;
    int expanded;                        /* the entries exist (tags listed) */
    unsigned catalog_writes, blob_waits; /* for the report, when those are closed */
    oc_once *in_flight;
    oc_referrers_ctx *refs; /* the images' referrers (mirror_referrers.h) */
    char *partial_dir;      /* STORE/.occystrap/partial: broken downloads kept for the next run */
    size_t finished;
    size_t failed;
    size_t interrupted; /* entries stopped by a signal */
    int stop;
};

/* ---- small helpers ---- */

static char *platform_tag(const char *tag, const oc_platform *p, int many)
{
    char *out = NULL;
    if (!many)
        return strdup(tag);
    if (asprintf(&out, "%s+%s-%s%s%s", tag, p->os, p->arch, p->variant ? "-" : "",
                 p->variant ? p->variant : "") < 0)
        return NULL;
    return out;
}

/* Does this run keep the exact bytes (a dry run writes nothing)? */
static int keeps_exact(const mirror_run *run)
{
    return run->o->exact && !run->o->dry_run;
}

static int many_platforms(const mirror_run *run)
{
    return run->o->all_platforms || run->o->n_platforms > 1;
}

static const oc_platform default_platform = {.os = "linux", .arch = "amd64"};

/* The wanted platforms: those asked for, else linux/amd64. */
static size_t n_wanted(const mirror_run *run)
{
    return run->o->n_platforms ? run->o->n_platforms : 1;
}

static const oc_platform *wanted(const mirror_run *run, size_t i)
{
    return run->o->n_platforms ? &run->o->platforms[i] : &default_platform;
}

static uint64_t now_ms(const mirror_run *run)
{
    uv_update_time(run->e->loop);
    return uv_now(run->e->loop);
}

/* ---- finishing an entry ---- */

static void run_maybe_done(mirror_run *run);
static void entry_view(const entry_job *j, oc_mirror_entry *out);
static void start_more(mirror_run *run);
static void maybe_commit(mirror_run *run);

/* Heavy per-entry state is not needed for the report: drop it. */
static void entry_trim(entry_job *j)
{
    for (size_t k = 0; k < j->n_pulls; k++) {
        oc_platform_free(&j->pulls[k].platform);
        free(j->pulls[k].tag);
    }
    free(j->pulls);
    j->pulls = NULL;
    j->n_pulls = 0;
    free(j->manifest);
    free(j->manifest_type);
    free(j->top_type);
    j->manifest = j->manifest_type = j->top_type = NULL;
    free(j->fetched);
    free(j->fetched_type);
    j->fetched = j->fetched_type = NULL;
}

static void entry_finish(entry_job *j)
{
    mirror_run *run = j->run;
    if (j->finished)
        return;
    j->finished = 1;
    j->ended_ms = now_ms(run);
    run->finished++;
    if (j->parked)
        run->parked--;
    else if (j->started)
        run->busy--;
    if (j->status == ST_FAILED && run->e->interrupted && j->err && j->err->code == OC_E_CANCELLED)
        j->status = ST_INTERRUPTED;
    if (j->status == ST_INTERRUPTED) {
        run->interrupted++;
    } else if (j->status == ST_FAILED) {
        run->failed++;
        if (run->o->fail_fast)
            run->stop = 1;
    }
    entry_trim(j);
    oc_mirror_entry view;
    entry_view(j, &view);
    oc_event ev = {.kind = OC_EVENT_ENTRY_FINISHED, .entry = &view};
    oc_engine_emit(run->e, &ev);
    start_more(run);
    maybe_commit(run);
    run_maybe_done(run);
}

static void entry_fail(entry_job *j, const oc_error *err)
{
    if (j->status == ST_FAILED)
        return;
    j->status = ST_FAILED;
    free(j->err);
    j->err = malloc(sizeof *j->err);
    if (j->err)
        *j->err = *err;
}

/* The entry failed for good: record why and report it. */
static void entry_abort(entry_job *j, const oc_error *err)
{
    entry_fail(j, err);
    entry_finish(j);
}

static int entry_stopped(entry_job *j)
{
    oc_error err;
    if (j->run->e->interrupted) {
        oc_error_set(&err, OC_E_CANCELLED, "not mirrored: %s", j->run->e->interrupted_why);
        entry_abort(j, &err);
        return 1;
    }
    if (!j->run->stop)
        return 0;
    oc_error_set(&err, OC_E_CANCELLED, "not mirrored: an earlier entry failed (--fail-fast)");
    entry_abort(j, &err);
    return 1;
}

/* ---- catalog entries, written in batches ---- */

/* Does the entry wait for nothing but its catalog entries? */
static void check_parked(entry_job *j)
{
    mirror_run *run = j->run;
    if (j->parked || j->finished || j->listing == 0 || j->listing < j->pulls_pending)
        return;
    j->parked = 1;
    run->busy--;
    run->parked++;
    start_more(run);
}

/* Everything still at work waits for the catalog: write it now. */
static void maybe_commit(mirror_run *run)
{
    if (run->commit && run->busy == 0 && run->next == run->n_jobs &&
        oc_catalog_commit_pending(run->commit) > 0)
        oc_catalog_commit_now(run->commit);
}

/* Hand image:tag -> its manifest file to the group commit; listed runs
 * when the catalog holds it. */
static int list_later(entry_job *j, const char *tag, oc_catalog_listed listed, void *opaque,
                      oc_error *err)
{
    char *file = oc_catalog_manifest_name(j->name, tag);
    if (!file) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    int rc = oc_catalog_commit_add(j->run->commit, j->name, tag, file, listed, opaque, err);
    free(file);
    if (rc != 0)
        return -1;
    j->listing++;
    check_parked(j);
    maybe_commit(j->run);
    return 0;
}

static void listing_failed(entry_job *j, const oc_error *err)
{
    oc_error why = *err;
    oc_error_prefix(&why, "%s: the image is in the store but catalog.json could not be written",
                    j->le->text);
    entry_fail(j, &why);
}

/* ---- referrers ---- */

/* The entry's referrers mode: its repository's in the config, else its
 * registry's, else the run's. */
static int referrers_mode(const entry_job *j)
{
    const mirror_run *run = j->run;
    const oc_config *cfg = run->e->opts.config;
    const oc_repo_config *rc =
        cfg ? oc_config_repository(cfg, j->le->ref.registry, j->le->ref.repository) : NULL;
    const oc_registry_config *gc = cfg ? oc_config_registry(cfg, j->le->ref.registry) : NULL;
    if (rc && rc->referrers >= 0)
        return rc->referrers;
    if (gc && gc->referrers >= 0)
        return gc->referrers;
    return run->o->referrers;
}

/* One of the image's manifests: its referrers are looked for. */
static void add_subject(entry_job *j, const char *digest)
{
    if (!digest)
        return;
    for (size_t i = 0; i < j->n_subjects; i++)
        if (strcmp(j->subjects[i], digest) == 0)
            return;
    char **grown = realloc(j->subjects, sizeof *grown * (j->n_subjects + 1));
    if (!grown)
        return;
    j->subjects = grown;
    if ((j->subjects[j->n_subjects] = strdup(digest)))
        j->n_subjects++;
}

static void referrers_failed(entry_job *j, const oc_error *err)
{
    oc_error why = *err;
    oc_error_prefix(&why, "%s: referrers", j->le->text);
    if (referrers_mode(j) == OC_REFERRERS_REQUIRED ||
        (j->run->e->interrupted && err->code == OC_E_CANCELLED)) {
        /* (a signal stops the entry: it is reported stopped, not done) */
        entry_fail(j, &why);
        return;
    }
    if (!j->ref_err && (j->ref_err = malloc(sizeof *j->ref_err)))
        *j->ref_err = why;
    oc_engine_say(j->run->e, OC_LOG_WARNING, "%s (the image itself is mirrored)", why.msg);
}

static void on_referrers_listed(void *opaque, const oc_error *err)
{
    entry_job *j = opaque;
    j->listing--;
    if (err)
        referrers_failed(j, err);
    entry_finish(j);
}

static void on_referrers(void *opaque, size_t stored, size_t known, const oc_error *err)
{
    entry_job *j = opaque;
    mirror_run *run = j->run;
    j->refs_fetched = stored;
    j->refs_known = known;
    if (err)
        referrers_failed(j, err);
    if (stored == 0 || oc_catalog_batch_pending(run->catalog) == 0) {
        entry_finish(j); /* nothing new, or written already with another's batch */
        return;
    }
    /* their descriptors go with the next catalog write: reported after it */
    oc_error werr;
    oc_error_clear(&werr);
    if (oc_catalog_commit_wait(run->commit, on_referrers_listed, j, &werr) != 0) {
        referrers_failed(j, &werr);
        entry_finish(j);
        return;
    }
    j->listing++;
    check_parked(j);
    maybe_commit(run);
}

static int queue_referrer(void *opaque, const char *key, const char *text, oc_error *err)
{
    mirror_run *run = opaque;
    return oc_catalog_commit_add_oci(run->commit, key, text, err);
}

/* The image is in the store (fetched now, or up to date): its referrers
 * next, when asked for; then the entry is over. */
static void entry_ok(entry_job *j, entry_status status)
{
    mirror_run *run = j->run;
    j->status = status;
    if (!run->refs || !keeps_exact(run) || referrers_mode(j) == OC_REFERRERS_OFF) {
        entry_finish(j);
        return;
    }
    const char **digests = calloc(j->n_subjects + 1, sizeof *digests);
    oc_error err;
    oc_error_clear(&err);
    if (!digests) {
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        referrers_failed(j, &err);
        entry_finish(j);
        return;
    }
    size_t n = 0;
    digests[n++] = j->digest;
    for (size_t i = 0; i < j->n_subjects; i++)
        if (strcmp(j->subjects[i], j->digest) != 0)
            digests[n++] = j->subjects[i];
    int rc = oc_referrers_fetch(run->refs, j->r, j->le->ref.registry, j->le->ref.repository,
                                j->name, digests, n, on_referrers, j, &err);
    free(digests);
    if (rc != 0) {
        referrers_failed(j, &err);
        entry_finish(j);
    }
}

/* ---- pulls ---- */

static void on_bytes(void *opaque, uint64_t n)
{
    plat_pull *pp = opaque;
    pp->job->bytes_fetched += n;
    oc_event ev = {.kind = OC_EVENT_BLOB_BYTES, .bytes = n};
    oc_engine_emit(pp->job->run->e, &ev);
}

static void on_layer(void *opaque, int started, uint64_t size)
{
    plat_pull *pp = opaque;
    oc_event ev = {.kind = started ? OC_EVENT_BLOB_STARTED : OC_EVENT_BLOB_FINISHED, .size = size};
    oc_engine_emit(pp->job->run->e, &ev);
}

static int place_layer(void *opaque, const oc_pulled_layer *layer, const char *tmp_path,
                       char **final_path, oc_error *err)
{
    mirror_run *run = opaque;
    return oc_store_put_layer(run->store, layer, tmp_path, final_path, err);
}

static void pull_settled(entry_job *j)
{
    if (--j->pulls_pending > 0) {
        check_parked(j);
        return;
    }
    if (j->status != ST_FAILED) {
        entry_ok(j, ST_FETCHED);
        return;
    }
    entry_finish(j);
}

static void on_pull_listed(void *opaque, const oc_error *err)
{
    plat_pull *pp = opaque;
    entry_job *j = pp->job;
    j->listing--;
    if (err)
        listing_failed(j, err);
    pull_settled(j);
}

/* The entry's tag in the catalog: its tag, or the digest of a digest
 * entry. */
static const char *entry_tag(const entry_job *j)
{
    return j->le->ref.tag ? j->le->ref.tag : j->le->ref.digest;
}

/* "os/arch[/variant]" that the entry's index gives the manifest digest
 * (malloc'd), or NULL. */
static char *index_platform(const entry_job *j, const char *digest)
{
    oc_manifest m;
    oc_error ignored;
    if (!j->manifest ||
        oc_manifest_parse(&m, j->manifest_type, j->manifest, j->manifest_len, &ignored) != 0)
        return NULL;
    char *out = NULL;
    for (size_t i = 0; i < m.n_manifests && !out; i++)
        if (strcmp(m.manifests[i].digest, digest) == 0 && m.platforms[i].os && m.platforms[i].arch)
            out = oc_platform_string(&m.platforms[i]);
    oc_manifest_free(&m);
    return out;
}

/* Queue ref IMAGE:TAG -> the descriptor d describes (d NULL: drop it). */
static int queue_descriptor(entry_job *j, const char *tag, const oc_oci_desc *d, oc_error *err)
{
    char *ref = oc_oci_ref_name(j->name, tag);
    char *text = ref && d ? oc_oci_descriptor_text(d, err) : NULL;
    int rc = -1;
    if (!ref)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    else if (!d || text)
        rc = oc_catalog_batch_oci_set(j->run->catalog, ref, text, err);
    free(ref);
    free(text);
    return rc;
}

/* index.json for one platform's image now in the store, queued with its
 * catalog entry (the same batch writes both): a platform tag's descriptor
 * (TAG+os-arch, when the tag names an index and several platforms are
 * kept), and, once every platform of the entry is in, the tag's own (what
 * the tag named: the index, or the image manifest). Without exact bytes,
 * the descriptors index.json holds for these names are dropped: they
 * would name what the tag named before. */
static int queue_exact(entry_job *j, const plat_pull *pp, const oc_pulled_image *img, oc_error *err)
{
    mirror_run *run = j->run;
    const char *tag = entry_tag(j);
    int last = ++j->pulls_placed == j->n_pulls;
    if (!keeps_exact(run))
        return queue_descriptor(j, pp->tag, NULL, err) == 0 &&
                       queue_descriptor(j, tag, NULL, err) == 0
                   ? 0
                   : -1;
    oc_oci_desc d = {.image = j->name,
                     .registry = j->le->ref.registry,
                     .repository = j->le->ref.repository,
                     .source_tag = j->le->ref.tag};
    if (strcmp(pp->tag, tag) != 0) {
        char *plat = index_platform(j, img->manifest_digest);
        d.media_type = img->manifest_media_type;
        d.digest = img->manifest_digest;
        d.size = img->manifest_len;
        d.tag = pp->tag;
        d.platform = plat ? plat : img->platform;
        int rc = queue_descriptor(j, pp->tag, &d, err);
        free(plat);
        if (rc != 0)
            return -1;
    }
    if (!last)
        return 0;
    d.media_type = j->top_type;
    d.digest = j->digest;
    d.size = j->manifest_len;
    d.tag = tag;
    d.platform = NULL;
    return queue_descriptor(j, tag, &d, err);
}

static void on_pulled(void *opaque, oc_pulled_image *img, const oc_error *err)
{
    plat_pull *pp = opaque;
    entry_job *j = pp->job;
    if (err) {
        entry_fail(j, err);
        pull_settled(j);
        return;
    }
    char *repo_tag = NULL;
    oc_error e;
    oc_error_clear(&e);
    if (asprintf(&repo_tag, "%s:%s", j->name, pp->tag) < 0) {
        oc_error_set(&e, OC_E_NOMEM, "out of memory");
        entry_fail(j, &e);
        pull_settled(j);
        return;
    }
    oc_emit_dir_opts eo = {.image = j->name,
                           .tag = pp->tag,
                           .repo_tag = repo_tag,
                           .unique_names = 1,
                           .registry = j->le->ref.registry,
                           .repository = j->le->ref.repository,
                           .no_catalog = 1,
                           .exact = keeps_exact(j->run)};
    int listed_later = 0;
    if (oc_emit_dir(j->run->store, img, &eo, &e) != 0) {
        oc_error_prefix(&e, "%s", j->le->text);
        entry_fail(j, &e);
    } else {
        for (size_t i = 0; i < img->n_layers; i++)
            j->bytes_total += img->layers[i].blob_size;
        char **grown = realloc(j->stored, sizeof *grown * (j->n_stored + 1));
        if (grown) {
            j->stored = grown;
            j->stored[j->n_stored++] = strdup(img->platform ? img->platform : "");
        }
        oc_image_index_note(j->run->index, j->name, pp->tag);
        add_subject(j, img->manifest_digest);
        if (queue_exact(j, pp, img, &e) == 0 && list_later(j, pp->tag, on_pull_listed, pp, &e) == 0)
            listed_later = 1;
        else
            listing_failed(j, &e);
    }
    free(repo_tag);
    if (!listed_later)
        pull_settled(j);
}

static void start_pulls(entry_job *j)
{
    mirror_run *run = j->run;
    oc_error err;
    oc_error_clear(&err);
    oc_ref ref = j->le->ref;
    ref.digest = j->digest;
    j->pulls_pending = j->n_pulls;
    for (size_t i = 0; i < j->n_pulls; i++) {
        plat_pull *pp = &j->pulls[i];
        oc_pull_opts po = {
            .platform = &pp->platform,
            .work_dir = oc_store_run_dir(run->store),
            .max_layer_bytes = run->o->max_layer_bytes,
            .max_image_bytes = run->o->max_image_bytes,
            .have_layer = oc_store_have_layer,
            .have_layer_opaque = run->store,
            .in_flight = run->in_flight,
            .layer_placed = place_layer,
            .layer_placed_opaque = run,
            .layer_placed_any_thread = 1, /* oc_store_put_layer is thread-safe */
            .on_bytes = on_bytes,
            .on_layer = on_layer,
            .progress_opaque = pp,
            .partial_dir = run->partial_dir,
            .exact = keeps_exact(run),
            .have_blob = oc_store_have_blob,
            .have_blob_opaque = run->store,
            .have_config = oc_store_have_config,
            .have_config_opaque = run->store,
            .claim_layer = oc_blob_claims_claim,
            .release_layer = oc_blob_claims_release,
            .claim_opaque = run->claims,
            .manifest_body = j->manifest,
            .manifest_len = j->manifest_len,
            .manifest_type = j->manifest_type,
        };
        if (oc_pull_start(run->e, &ref, &po, on_pulled, pp, &err) != 0) {
            entry_fail(j, &err);
            pull_settled(j);
        }
    }
}

/* ---- deciding what to pull ---- */

static int add_pull(entry_job *j, const oc_platform *p, int many)
{
    plat_pull *grown = realloc(j->pulls, sizeof *grown * (j->n_pulls + 1));
    if (!grown)
        return -1;
    j->pulls = grown;
    plat_pull *pp = &j->pulls[j->n_pulls];
    memset(pp, 0, sizeof *pp);
    pp->job = j;
    pp->platform.os = strdup(p->os);
    pp->platform.arch = strdup(p->arch);
    pp->platform.variant = p->variant ? strdup(p->variant) : NULL;
    const char *tag = j->le->ref.tag ? j->le->ref.tag : j->le->ref.digest;
    pp->tag = platform_tag(tag, p, many);
    j->n_pulls++;
    if (!pp->platform.os || !pp->platform.arch || !pp->tag || (p->variant && !pp->platform.variant))
        return -1;
    return 0;
}

/* Keep an index's exact bytes: STORE/.occystrap/index/<hex>.json. */
static int keep_index(mirror_run *run, const char *digest, const char *body, size_t len,
                      oc_error *err)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(digest, hex, err) != 0)
        return -1;
    char *dir = oc_store_path(run->store, ".occystrap/index");
    char *path = NULL;
    int rc = -1;
    struct stat st;
    if (dir && asprintf(&path, "%s/%s.json", dir, hex) >= 0 && keeps_exact(run) &&
        oc_store_oci_have(run->store, hex, len) && stat(path, &st) == 0 &&
        (uint64_t)st.st_size == len)
        rc = 0; /* both in place (one inode, normally) */
    else if (path && oc_mkdirs(dir, err) == 0)
        rc = oc_atomic_write_file(oc_store_run_dir(run->store), path, body, len, err);
    else if (err && err->code == OC_OK)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    /* the exact bytes: the same inode as its blob */
    if (rc == 0 && keeps_exact(run))
        rc = oc_store_oci_link(run->store, hex, path, len, err);
    free(dir);
    free(path);
    return rc;
}

static void fetch_manifest(entry_job *j);

static void on_manifest(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                        const oc_error *call_err)
{
    entry_job *j = opaque;
    mirror_run *run = j->run;
    oc_error err;
    oc_error_clear(&err);
    if (entry_stopped(j))
        return;
    if (call_err) {
        entry_abort(j, call_err);
        return;
    }
    char got[OC_SHA256_HEX_LEN + 1], want[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(body, len, got);
    if (oc_digest_parse(j->digest, want, &err) != 0 || strcmp(got, want) != 0) {
        if (err.code == OC_OK)
            oc_error_set(&err, OC_E_DIGEST,
                         "manifest %s: digest mismatch: content hashes to sha256:%s", j->digest,
                         got);
        if (err.code == OC_E_DIGEST && !j->manifest_retried++) {
            oc_engine_log(run->e, "%s: %s; fetching it again", j->le->text, err.msg);
            fetch_manifest(j);
            return;
        }
        entry_abort(j, &err);
        return;
    }
    oc_manifest m;
    if (oc_manifest_parse(&m, info->content_type, body, len, &err) != 0) {
        oc_error_prefix(&err, "manifest %s", j->digest);
        entry_abort(j, &err);
        return;
    }
    int many = many_platforms(run);
    int rc = 0;
    free(j->top_type);
    j->top_type = strdup(m.media_type ? m.media_type : OC_MT_DOCKER_MANIFEST);
    j->is_index = m.kind == OC_MANIFEST_INDEX;
    if (!j->top_type)
        rc = -1;
    if (rc == 0 && m.kind == OC_MANIFEST_INDEX) {
        if (!run->o->dry_run)
            rc = keep_index(run, j->digest, body, len, &err);
        if (rc == 0 && run->o->all_platforms) {
            for (size_t i = 0; i < m.n_manifests && rc == 0; i++) {
                const oc_platform *p = &m.platforms[i];
                if (!p->os || !p->arch || strcmp(p->os, "unknown") == 0)
                    continue;
                rc = add_pull(j, p, many);
            }
        } else if (rc == 0) {
            for (size_t i = 0; i < n_wanted(run) && rc == 0; i++) {
                if (oc_manifest_select_platform(&m, wanted(run, i), &err) < 0)
                    rc = -1;
                else
                    rc = add_pull(j, wanted(run, i), many);
            }
        }
    } else if (rc == 0) {
        /* a single-platform image: stored under the plain tag */
        rc = add_pull(j, wanted(run, 0), 0);
    }
    oc_manifest_free(&m);
    if (rc != 0) {
        if (err.code == OC_OK)
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
        entry_abort(j, &err);
        return;
    }
    j->manifest = malloc(len + 1);
    j->manifest_type = info->content_type ? strdup(info->content_type) : NULL;
    if (j->manifest) {
        memcpy(j->manifest, body, len);
        j->manifest[len] = '\0';
        j->manifest_len = len;
    }
    if (run->o->dry_run) {
        j->status = ST_DRYRUN;
        if (asprintf(&j->note, "%zu platform image(s)", j->n_pulls) < 0)
            j->note = NULL;
        entry_finish(j);
        return;
    }
    start_pulls(j);
}

static void fetch_manifest(entry_job *j)
{
    oc_error err;
    oc_error_clear(&err);
    if (j->fetched) { /* resolving the tag fetched it already */
        oc_reg_info info = {.status = 200, .content_type = j->fetched_type};
        char *body = j->fetched;
        j->fetched = NULL;
        on_manifest(j, body, j->fetched_len, &info, NULL);
        free(body);
        return;
    }
    if (oc_registry_fetch_small(j->r, j->le->ref.repository, "manifests", j->digest,
                                OC_MANIFEST_ACCEPT, OC_MANIFEST_MAX, on_manifest, j, &err) != 0) {
        entry_abort(j, &err);
    }
}

static void on_current_listed(void *opaque, const oc_error *err)
{
    entry_job *j = opaque;
    j->listing--;
    if (err)
        listing_failed(j, err);
    if (j->listing > 0)
        return;
    if (j->status != ST_FAILED) {
        entry_ok(j, ST_UPTODATE);
        return;
    }
    entry_finish(j);
}

/* Does index.json (as this run knows it) name IMAGE:tag at digest? Its
 * descriptor is added only once every blob it reaches was in place (a
 * blob lost since is found by verify; verify --repair drops the
 * descriptors that reach it, so the next run fetches it again). */
static int exact_listed(const entry_job *j, const char *tag, const char *digest)
{
    char *ref = oc_oci_ref_name(j->name, tag);
    const char *have =
        ref ? oc_oci_index_digest(oc_catalog_batch_oci_view(j->run->catalog), ref) : NULL;
    free(ref);
    return have && digest && strcmp(have, digest) == 0;
}

/* Is every wanted platform of this entry in the store at digest? 1 yes, 0
 * no; 2 yes, but some were not listed in the catalog (a run killed between
 * a manifest file and its catalog entry): they are handed to the group
 * commit and the entry finishes when they are written. */
static int store_is_current(entry_job *j, const char *digest)
{
    mirror_run *run = j->run;
    if (run->o->all_platforms)
        return 0; /* the platform list lives in the index: fetch it */
    const oc_catalog *cat = oc_catalog_batch_view(run->catalog);
    const char *tag = j->le->ref.tag ? j->le->ref.tag : j->le->ref.digest;
    int many = many_platforms(run);
    char **unlisted = calloc(n_wanted(run), sizeof *unlisted);
    size_t n_unlisted = 0;
    int current = unlisted != NULL;
    for (size_t i = 0; i < n_wanted(run) && current; i++) {
        char *ptag = platform_tag(tag, wanted(run, i), many);
        oc_store_image si;
        oc_error err;
        oc_error_clear(&err);
        int found = ptag && oc_image_index_lookup(run->index, cat, j->name, ptag, &si, &err) == 0;
        int same =
            found && si.has_ours &&
            ((si.index_digest && strcmp(si.index_digest, digest) == 0) ||
             (!si.index_digest && si.manifest_digest && strcmp(si.manifest_digest, digest) == 0));
        /* the same digest, but a file was removed or changed since (verify
         * --repair, a hand): fetch what is missing */
        char why[600];
        if (same && !oc_store_image_intact(run->store, &si, why, sizeof why)) {
            oc_engine_log(run->e, "%s: %s; fetching it again", j->le->text, why);
            same = 0;
        }
        /* a platform tag's exact bytes: index.json names its manifest */
        if (same && run->o->exact && many && si.index_digest &&
            !exact_listed(j, ptag, si.manifest_digest))
            same = 0;
        if (same)
            add_subject(j, si.manifest_digest);
        if (found)
            oc_store_image_free(&si);
        if (same && !oc_catalog_get(cat, j->name, ptag))
            unlisted[n_unlisted++] = ptag;
        else
            free(ptag);
        current = same;
    }
    /* the tag's exact bytes: index.json names what the registry answered */
    if (current && run->o->exact && !exact_listed(j, tag, digest)) {
        oc_engine_log(run->e, "%s: up to date, but the store lacks its exact bytes; fetching them",
                      j->le->text);
        current = 0;
    }
    if (current && n_unlisted && !run->o->dry_run) {
        oc_error err;
        oc_error_clear(&err);
        /* held while they are handed over, so no callback finishes it early */
        j->listing++;
        for (size_t i = 0; i < n_unlisted; i++) {
            if (list_later(j, unlisted[i], on_current_listed, j, &err) != 0) {
                listing_failed(j, &err);
                break;
            }
        }
        for (size_t i = 0; i < n_unlisted; i++)
            free(unlisted[i]);
        free(unlisted);
        on_current_listed(j, NULL); /* the hold */
        return 2;
    }
    for (size_t i = 0; i < n_unlisted; i++)
        free(unlisted[i]);
    free(unlisted);
    return current;
}

static void resolved(entry_job *j, const char *digest)
{
    free(j->digest);
    j->digest = strdup(digest);
    if (!j->digest) {
        oc_error err;
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        entry_abort(j, &err);
        return;
    }
    int current = store_is_current(j, digest);
    if (current == 2)
        return; /* finishes when the catalog lists it */
    if (current) {
        entry_ok(j, ST_UPTODATE);
        return;
    }
    fetch_manifest(j);
}

static void on_resolved(void *opaque, const char *digest, const char *body, size_t len,
                        const char *content_type, const oc_error *call_err)
{
    entry_job *j = opaque;
    if (entry_stopped(j))
        return;
    if (call_err) {
        oc_error err = *call_err;
        if (err.code == OC_E_NOTFOUND)
            oc_error_set(&err, OC_E_NOTFOUND, "%s: not found in the registry (%s)", j->le->text,
                         call_err->msg);
        entry_abort(j, &err);
        return;
    }
    if (body && (j->fetched = malloc(len + 1))) { /* a GET told: keep the bytes */
        memcpy(j->fetched, body, len);
        j->fetched[len] = '\0';
        j->fetched_len = len;
        j->fetched_type = content_type ? strdup(content_type) : NULL;
    }
    resolved(j, digest);
}

static void entry_start(entry_job *j)
{
    mirror_run *run = j->run;
    oc_error err;
    oc_error_clear(&err);
    j->started_ms = now_ms(run);
    j->started = 1;
    run->busy++;
    if (!j->le->ok) {
        entry_abort(j, j->le->err);
        return;
    }
    if (entry_stopped(j)) /* --fail-fast or a signal: no request for it */
        return;
    j->name = oc_ref_familiar_name(&j->le->ref);
    j->r = j->name ? oc_engine_registry(run->e, j->le->ref.registry, &err) : NULL;
    if (!j->r) {
        if (err.code == OC_OK)
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
        entry_abort(j, &err);
        return;
    }
    if (!j->le->ref.tag) { /* by digest: in the store already costs nothing */
        resolved(j, j->le->ref.digest);
        return;
    }
    if (oc_resolve_tag(j->r, j->le->ref.repository, j->le->ref.tag, OC_MANIFEST_ACCEPT,
                       OC_MANIFEST_MAX, on_resolved, j, &err) != 0)
        entry_abort(j, &err);
}

/* ---- report ---- */

static oc_entry_status public_status(entry_status s)
{
    switch (s) {
    case ST_UPTODATE:
        return OC_ENTRY_UP_TO_DATE;
    case ST_FETCHED:
        return OC_ENTRY_FETCHED;
    case ST_FAILED:
        return OC_ENTRY_FAILED;
    case ST_DRYRUN:
        return OC_ENTRY_WOULD_FETCH;
    case ST_INTERRUPTED:
        return OC_ENTRY_INTERRUPTED;
    case ST_PENDING:
    case ST_COUNT:
        break;
    }
    return OC_ENTRY_PENDING;
}

/* An entry as the caller sees it: pointers into the job, valid while the
 * job lives. */
static void entry_view(const entry_job *j, oc_mirror_entry *out)
{
    memset(out, 0, sizeof *out);
    out->line = j->le->line;
    out->reference = j->le->text;
    out->name = j->name;
    out->digest = j->digest;
    out->status = public_status(j->status);
    out->platforms = (const char *const *)j->stored;
    out->n_platforms = j->n_stored;
    if (j->status == ST_FAILED || j->status == ST_INTERRUPTED)
        out->error = j->err;
    if (j->status == ST_DRYRUN)
        out->note = j->note;
    out->bytes_fetched = j->bytes_fetched;
    out->bytes_reused = j->bytes_total > j->bytes_fetched ? j->bytes_total - j->bytes_fetched : 0;
    out->referrers_fetched = j->refs_fetched;
    out->referrers_known = j->refs_known;
    out->referrers_error = j->ref_err;
    uint64_t end = j->ended_ms ? j->ended_ms : j->started_ms;
    out->seconds = (double)(end - j->started_ms) / 1000.0;
}

/* ---- the run ---- */

static void run_free(void *opaque)
{
    mirror_run *run = opaque;
    for (size_t i = 0; i < run->n_jobs; i++) {
        entry_job *j = &run->jobs[i];
        entry_trim(j);
        for (size_t k = 0; k < j->n_stored; k++)
            free(j->stored[k]);
        free(j->stored);
        free(j->name);
        free(j->digest);
        free(j->err);
        free(j->note);
        free(j->ref_err);
        for (size_t k = 0; k < j->n_subjects; k++)
            free(j->subjects[k]);
        free(j->subjects);
    }
    free(run->jobs);
    oc_referrers_ctx_free(run->refs);
    for (size_t i = 0; run->opts.referrer_types && run->opts.referrer_types[i]; i++)
        free(run->opts.referrer_types[i]);
    free(run->opts.referrer_types);
    if (run->work) {
        oc_list_free(run->work);
        free(run->work);
    }
    oc_once_free(run->in_flight);
    oc_catalog_batch_free(run->catalog);
    oc_image_index_free(run->index);
    free(run->partial_dir);
    oc_lock_close(run->shard_lock_fd);
    oc_lock_close(run->lock_fd);
    oc_store_close(run->store);
    oc_list_free(&run->list);
    for (size_t i = 0; i < run->opts.n_platforms; i++)
        oc_platform_free(&run->opts.platforms[i]);
    free(run->opts.platforms);
    free((char *)run->opts.list_path);
    free((char *)run->opts.store_dir);
    free((char *)run->opts.default_registry);
    free(run);
}

/* The report, the caller's callback, and the run's memory once its timer
 * has closed. Runs from the timer, never inside an entry's callbacks. */
static void run_complete(void *opaque)
{
    mirror_run *run = opaque;
    oc_engine *e = run->e;
    oc_mirror_report rep;
    memset(&rep, 0, sizeof rep);
    if (run->commit) {
        oc_catalog_commit_close(run->commit); /* writes what is left (nothing, normally) */
        run->commit = NULL;
    }
    if (run->catalog) {
        run->catalog_writes = oc_catalog_batch_writes(run->catalog);
        oc_engine_log(e, "catalog.json written %u time(s), read again %u time(s) for other writers",
                      run->catalog_writes, oc_catalog_batch_rereads(run->catalog));
    }
    if (run->index) {
        oc_error ierr;
        oc_error_clear(&ierr);
        oc_engine_log(e, "image index: %u manifest file(s) read",
                      oc_image_index_misses(run->index));
        if (oc_image_index_save(run->index, &ierr) != 0)
            oc_engine_say(e, OC_LOG_WARNING,
                          "the store's image index was not written (the next run reads the "
                          "manifest files instead): %s",
                          ierr.msg);
    }
    if (run->claims) {
        run->blob_waits = oc_blob_claims_waits(run->claims);
        oc_blob_claims_close(run->claims);
        run->claims = NULL;
    }
    oc_mirror_entry *entries = calloc(run->n_jobs ? run->n_jobs : 1, sizeof *entries);
    if (!entries && run->jr.err.code == OC_OK)
        oc_error_set(&run->jr.err, OC_E_NOMEM, "out of memory writing the report");
    for (size_t i = 0; entries && i < run->n_jobs; i++) {
        const entry_job *j = &run->jobs[i];
        entry_view(j, &entries[i]);
        rep.fetched += j->status == ST_FETCHED;
        rep.up_to_date += j->status == ST_UPTODATE;
        rep.failed += j->status == ST_FAILED;
        rep.would_fetch += j->status == ST_DRYRUN;
        rep.interrupted += j->status == ST_INTERRUPTED;
        rep.bytes_fetched += entries[i].bytes_fetched;
        rep.bytes_reused += entries[i].bytes_reused;
    }
    rep.entries = entries;
    rep.n_entries = entries ? run->n_jobs : 0;
    rep.catalog_writes = run->catalog_writes;
    rep.blob_waits = run->blob_waits;
    rep.shard_k = run->o->shard.n > 1 ? run->o->shard.k : 0;
    rep.shard_n = run->o->shard.n > 1 ? run->o->shard.n : 0;
    if (run->jr.err.code == OC_OK && run->n_jobs) {
        if (e->interrupted && run->interrupted == 0 && run->finished == run->n_jobs) {
            /* no download was left to cancel: the entries finished their
             * local work (or the signal came in the loop's last turn) */
            oc_engine_say(e, OC_LOG_WARNING,
                          "%s, but every entry finished anyway (no download was left to "
                          "cancel); nothing was abandoned",
                          e->interrupted_why);
        } else if (e->interrupted) {
            oc_error_set(&run->jr.err, OC_E_CANCELLED,
                         "%s: %zu of %zu entries stopped before they were mirrored, %zu failed, "
                         "%zu done; what is in the store verified (a rerun completes it and "
                         "continues broken downloads)",
                         e->interrupted_why, run->interrupted, run->n_jobs, run->failed,
                         run->finished - run->interrupted - run->failed);
            rep.signal = e->interrupted;
        } else if (run->finished != run->n_jobs) {
            oc_error_set(&run->jr.err, OC_E_NET, "mirror ended with %zu of %zu entries unfinished",
                         run->n_jobs - run->finished, run->n_jobs);
        }
    }
    if (e->interrupted)
        rep.signal = e->interrupted;
    oc_jobrun_ending(&run->jr, &rep.error, &rep.config_error);
    run->done(&rep, run->done_opaque);
    free(entries);
    oc_jobrun_close(&run->jr);
}

/* Every entry has ended: finish from the loop, out of the callbacks that
 * ended the last one. */
static void run_maybe_done(mirror_run *run)
{
    if (run->expanded)
        oc_jobrun_maybe_done(&run->jr, run->finished, run->n_jobs);
}

/* The run failed before its entries started: report why. A store that
 * cannot be opened, locked or written (read-only, no space, no
 * permission) fails the work, as fetch-to-extracted does; a bad list, a
 * directory that is not a store or a lock held by another run is the
 * caller's configuration. */
static void run_fail(mirror_run *run, int config_error)
{
    oc_jobrun_fail(&run->jr, config_error);
}

/* ---- starting entries ---- */

static void start_more(mirror_run *run)
{
    if (run->jr.starting || !run->expanded)
        return; /* entries that finish at once must not recurse */
    run->jr.starting = 1;
    while (run->next < run->n_jobs && run->busy < run->window)
        entry_start(&run->jobs[run->next++]);
    run->jr.starting = 0;
    maybe_commit(run);
    run_maybe_done(run);
}

static void on_repo_listed(void *opaque, const oc_list_entry *repo, size_t n_tags,
                           size_t n_selected, const oc_error *err)
{
    mirror_run *run = opaque;
    if (err) {
        /* a failed entry, reported by the shard it falls in */
        oc_engine_log(run->e, "tags of %s: %s", repo->text, err->msg);
        return;
    }
    oc_engine_say(run->e, OC_LOG_INFO, "tags    %s (line %d): %zu of %zu tags selected%s",
                  repo->text, repo->line, n_selected, n_tags,
                  run->o->shard.n > 1 ? " (before the shard's cut)" : "");
}

static void on_expanded(void *opaque, oc_list *out, const oc_error *err)
{
    mirror_run *run = opaque;
    if (!out) {
        run->jr.err = *err;
        run_fail(run, 0);
        return;
    }
    run->work = out;
    run->jobs = calloc(out->n ? out->n : 1, sizeof *run->jobs);
    if (!run->jobs) {
        oc_error_set(&run->jr.err, OC_E_NOMEM, "out of memory");
        run_fail(run, 0);
        return;
    }
    run->n_jobs = out->n;
    for (size_t i = 0; i < run->n_jobs; i++) {
        run->jobs[i].run = run;
        run->jobs[i].le = &out->entries[i];
    }
    oc_event ev = {.kind = OC_EVENT_JOB_STARTED, .count = run->n_jobs};
    oc_engine_emit(run->e, &ev);
    run->expanded = 1;
    start_more(run);
    run_maybe_done(run); /* a shard may have no entry at all */
}

static void run_entries(mirror_run *run)
{
    run->partial_dir = oc_store_path(run->store, ".occystrap/partial");
    if (!run->partial_dir) {
        oc_error_set(&run->jr.err, OC_E_NOMEM, "out of memory");
        run_fail(run, 0);
        return;
    }
    if (oc_mkdirs(run->partial_dir, &run->jr.err) != 0 ||
        (keeps_exact(run) && oc_store_oci_prepare(run->store, &run->jr.err) != 0)) {
        run_fail(run, 0);
        return;
    }
    run->catalog = oc_catalog_batch_open(run->store, &run->jr.err);
    if (!run->catalog) {
        run_fail(run, run->jr.err.code == OC_E_FORMAT);
        return;
    }
    run->index = oc_image_index_open(run->store);
    if (!run->index) {
        oc_error_set(&run->jr.err, OC_E_NOMEM, "out of memory");
        run_fail(run, 0);
        return;
    }
    run->claims = oc_blob_claims_new(run->e, run->store, &run->jr.err);
    if (!run->claims) {
        run_fail(run, 0);
        return;
    }
    run->commit = oc_catalog_commit_new(run->e->loop, run->catalog);
    run->in_flight = oc_once_new();
    if (!run->commit || !run->in_flight) {
        oc_error_set(&run->jr.err, OC_E_NOMEM, "out of memory");
        run_fail(run, 0);
        return;
    }
    if (keeps_exact(run)) {
        oc_referrers_opts ro = {.depth = run->o->referrers_depth,
                                .types = (const char *const *)run->o->referrer_types,
                                .n_types = run->o->n_referrer_types,
                                .queue = queue_referrer,
                                .queue_opaque = run};
        run->refs = oc_referrers_ctx_new(run->e, run->store, run->catalog, &ro, &run->jr.err);
        if (!run->refs) {
            run_fail(run, 0);
            return;
        }
    }
    unsigned jobs = run->e->opts.jobs ? run->e->opts.jobs : 32;
    run->window = jobs * WINDOW_PER_JOB > WINDOW_MIN ? jobs * WINDOW_PER_JOB : WINDOW_MIN;
    oc_tags_expand_opts xo = {
        .shard = &run->o->shard, .listed = on_repo_listed, .done = on_expanded, .opaque = run};
    if (oc_mirror_tags_expand(run->e, &run->list, &xo, &run->jr.err) != 0)
        run_fail(run, 0);
}

/* One try at the store's mirror lock: 1 taken, 0 held by another run, -1
 * error. One run per store, or one per shard: a sharded run holds
 * mirror.lock shared and mirror-K-of-N.lock exclusively, so the shards run
 * together while a second run of the same shard, or an unsharded run
 * (mirror.lock exclusive), waits. */
static int try_lock(mirror_run *run, int *fd, const char *name, oc_lock_mode mode)
{
    if (*fd < 0) {
        char *path = oc_store_path(run->store, name);
        if (!path) {
            oc_error_set(&run->jr.err, OC_E_NOMEM, "out of memory");
            return -1;
        }
        *fd = oc_lock_open(path, 1, &run->jr.err);
        free(path);
        if (*fd < 0)
            return -1;
    }
    int r = oc_lock_take(*fd, mode, 0, name, &run->jr.err);
    return r < 0 ? -1 : r == 0 ? 1 : 0;
}

static int try_mirror_lock(mirror_run *run)
{
    const oc_shard *sh = &run->o->shard;
    if (sh->n <= 1)
        return try_lock(run, &run->lock_fd, ".occystrap/mirror.lock", OC_LOCK_EXCLUSIVE);
    int r = try_lock(run, &run->lock_fd, ".occystrap/mirror.lock", OC_LOCK_SHARED);
    if (r != 1)
        return r;
    char name[64];
    snprintf(name, sizeof name, ".occystrap/mirror-%u-of-%u.lock", sh->k, sh->n);
    return try_lock(run, &run->shard_lock_fd, name, OC_LOCK_EXCLUSIVE);
}

static void on_lock_timer(uv_timer_t *t)
{
    mirror_run *run = t->data;
    if (run->e->interrupted) {
        oc_error_set(&run->jr.err, OC_E_CANCELLED, "%s while waiting for another mirror run on %s",
                     run->e->interrupted_why, oc_store_dir(run->store));
        uv_timer_stop(&run->jr.timer);
        run_fail(run, 0);
        return;
    }
    int r = try_mirror_lock(run);
    if (r < 0) {
        uv_timer_stop(&run->jr.timer);
        run_fail(run, 0);
        return;
    }
    if (r == 1) {
        uv_timer_stop(&run->jr.timer);
        run_entries(run);
        return;
    }
    if (now_ms(run) - run->lock_wait_started_ms >= (uint64_t)run->o->lock_wait_s * 1000) {
        oc_error_set(&run->jr.err, OC_E_USAGE,
                     "another mirror run%s holds %s%s; try again later or pass --lock-wait "
                     "SECONDS",
                     run->o->shard.n > 1 ? " (of the same shard, or unsharded)" : "",
                     oc_store_dir(run->store),
                     run->o->lock_wait_s ? " and did not finish in time" : "");
        uv_timer_stop(&run->jr.timer);
        run_fail(run, 1);
        return;
    }
    if (!run->lock_announced) {
        oc_engine_say(run->e, OC_LOG_INFO, "waiting up to %ld s for another mirror run on %s",
                      run->o->lock_wait_s, oc_store_dir(run->store));
        run->lock_announced = 1;
    }
}

void oc_mirror_options_init(oc_mirror_options *o)
{
    memset(o, 0, sizeof *o);
    o->api_version = OCCYSTRAP_API_VERSION;
    o->exact = 1;
    o->max_layer_bytes = OC_LIMIT_DEFAULT;
    o->max_image_bytes = OC_LIMIT_DEFAULT;
}

/* The caller's options, copied and checked: platforms parsed. */
static int copy_options(mirror_run *run, const oc_mirror_options *o, oc_error *err)
{
    oc_mirror_opts *m = &run->opts;
    m->max_layer_bytes = o->max_layer_bytes;
    m->max_image_bytes = o->max_image_bytes;
    m->fail_fast = o->fail_fast;
    m->dry_run = o->dry_run;
    m->lock_wait_s = o->lock_wait_s;
    m->exact = o->exact;
    m->referrers = o->referrers;
    m->referrers_depth = o->referrers_depth;
    if (o->referrers && !o->exact) {
        oc_error_set(err, OC_E_USAGE,
                     "referrers are kept in the store's exact bytes: they cannot go with "
                     "--no-exact");
        return -1;
    }
    m->referrer_types = calloc(o->n_referrer_types + 1, sizeof *m->referrer_types);
    if (!m->referrer_types) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < o->n_referrer_types; i++) {
        if (!(m->referrer_types[i] = strdup(o->referrer_types[i]))) {
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            return -1;
        }
        m->n_referrer_types++;
    }
    if (o->shard_n > 1 && (o->shard_k < 1 || o->shard_k > o->shard_n)) {
        oc_error_set(err, OC_E_USAGE, "shard %u of %u: K must be from 1 to N", o->shard_k,
                     o->shard_n);
        return -1;
    }
    m->shard.k = o->shard_n > 1 ? o->shard_k : 1;
    m->shard.n = o->shard_n > 1 ? o->shard_n : 1;
    m->list_path = strdup(o->list_path ? o->list_path : "(the list given)");
    m->store_dir = strdup(o->store_dir);
    m->default_registry = o->default_registry ? strdup(o->default_registry) : NULL;
    m->platforms = calloc(o->n_platforms + 1, sizeof *m->platforms);
    if (!m->list_path || !m->store_dir || !m->platforms ||
        (o->default_registry && !m->default_registry)) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < o->n_platforms; i++) {
        if (strcmp(o->platforms[i], "all") == 0) {
            m->all_platforms = 1;
            continue;
        }
        if (oc_platform_parse(&m->platforms[m->n_platforms], o->platforms[i], err) != 0)
            return -1;
        m->n_platforms++;
    }
    if (m->all_platforms && m->n_platforms) {
        oc_error_set(err, OC_E_USAGE, "--platform all cannot be combined with other platforms");
        return -1;
    }
    return 0;
}

int oc_mirror_start(oc_engine *e, const oc_mirror_options *o, oc_mirror_done_cb done, void *opaque,
                    oc_error *err)
{
    if (!o || o->api_version != OCCYSTRAP_API_VERSION || (!o->list_path && !o->list_text) ||
        !o->store_dir || !done) {
        oc_error_set(err, OC_E_USAGE,
                     "oc_mirror_start: a list, a store and a callback are needed (options "
                     "filled by oc_mirror_options_init)");
        return -1;
    }
    mirror_run *run = calloc(1, sizeof *run);
    if (!run) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    run->e = e;
    run->o = &run->opts;
    run->done = done;
    run->done_opaque = opaque;
    run->lock_fd = -1;
    run->shard_lock_fd = -1;
    if (copy_options(run, o, err) != 0) {
        run_free(run);
        return -1;
    }
    oc_jobrun_init(&run->jr, e, run, run_complete, run_free);
    /* From here on a failure is the run's: reported through done. */
    int listed = o->list_path ? oc_list_load(&run->list, o->list_path, run->o->default_registry,
                                             &run->jr.err)
                              : oc_list_parse(&run->list, o->list_text, strlen(o->list_text),
                                              run->o->default_registry, &run->jr.err);
    if (listed != 0) {
        run_fail(run, 1);
        return 0;
    }
    if (run->list.n == 0) {
        oc_error_set(&run->jr.err, OC_E_USAGE, "list %s holds no entries", run->o->list_path);
        run_fail(run, 1);
        return 0;
    }
    run->store = oc_store_open(run->o->store_dir, OC_STORE_WRITE, &run->jr.err);
    if (!run->store) {
        run_fail(run, run->jr.err.code == OC_E_USAGE || run->jr.err.code == OC_E_FORMAT);
        return 0;
    }
    /* the group commit makes the names of each batch durable at once */
    oc_store_defer_dir_syncs(run->store);
    int r = try_mirror_lock(run);
    if (r < 0) {
        run_fail(run, run->jr.err.code == OC_E_USAGE || run->jr.err.code == OC_E_FORMAT);
    } else if (r == 1) {
        run_entries(run);
    } else {
        run->lock_wait_started_ms = now_ms(run);
        on_lock_timer(&run->jr.timer); /* says "waiting", or fails at once without --lock-wait */
        if (!uv_is_active((uv_handle_t *)&run->jr.timer) && run->jr.err.code == OC_OK)
            uv_timer_start(&run->jr.timer, on_lock_timer, 200, 200);
    }
    return 0;
}
