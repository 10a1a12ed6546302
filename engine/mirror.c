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
 * At most WINDOW entries are at work at once (entries waiting only for the
 * catalog write do not count), so memory does not grow with the list. The
 * run owns the store, its catalog in memory, the in-flight table shared by
 * all pulls, the cross-process blob claims, the progress display and the
 * report. */
#include "engine/mirror.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/blob_claims.h"
#include "engine/catalog_commit.h"
#include "engine/emit_dir.h"
#include "engine/listfile.h"
#include "engine/mirror_tags.h"
#include "engine/registry/pull.h"
#include "engine/registry/registry.h"
#include "engine/store/catalog_batch.h"
#include "engine/store/store.h"
#include "engine/store_put.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/storelock.h"
#include "sched/once.h"

#define MANIFEST_MAX (4u * 1024 * 1024)
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

static const char *status_name(entry_status s)
{
    switch (s) {
    case ST_PENDING:
        return "pending";
    case ST_UPTODATE:
        return "up-to-date";
    case ST_FETCHED:
        return "fetched";
    case ST_FAILED:
        return "failed";
    case ST_DRYRUN:
        return "would-fetch";
    case ST_INTERRUPTED:
        return "interrupted";
    case ST_COUNT:
        break;
    }
    return "?";
}

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
    char **stored; /* platform strings stored, for the report */
    size_t n_stored;
    unsigned started : 1;
    unsigned finished : 1;
    unsigned parked : 1;           /* only waits for the catalog write */
    unsigned manifest_retried : 1; /* a manifest that failed its digest is fetched once more */
};

struct mirror_run {
    oc_engine *e;
    const oc_mirror_opts *o;
    oc_store *store;
    oc_catalog_batch *catalog;
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
    oc_once *in_flight;
    oc_progress *progress;
    char *partial_dir; /* STORE/.occystrap/partial: broken downloads kept for the next run */
    size_t finished;
    size_t failed;
    size_t interrupted; /* entries stopped by a signal */
    size_t repos_failed;
    int stop;
    int expanded; /* the entries exist (tags listed) */
    int starting; /* inside start_more */
    oc_error setup_err;
    int setup_failed;
};

/* ---- small helpers ---- */

/* docker's familiar name without tag or digest. */
static char *familiar_name(const oc_ref *ref)
{
    oc_ref bare = {.registry = ref->registry, .repository = ref->repository, .tag = "x"};
    char *full = oc_ref_familiar(&bare);
    if (full) {
        char *colon = strrchr(full, ':');
        if (colon)
            *colon = '\0';
    }
    return full;
}

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

static void start_more(mirror_run *run);
static void maybe_commit(mirror_run *run);

static const char *err_msg(const entry_job *j)
{
    return j->err ? j->err->msg : "";
}

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
    j->manifest = j->manifest_type = NULL;
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
    char line[1400];
    const char *text = j->le->text;
    double secs = (double)(j->ended_ms - j->started_ms) / 1000.0;
    if (j->status == ST_FAILED && run->e->interrupted && j->err && j->err->code == OC_E_CANCELLED)
        j->status = ST_INTERRUPTED;
    if (j->status == ST_INTERRUPTED) {
        run->interrupted++;
        snprintf(line, sizeof line, "stopped %s (line %d): %s before it was mirrored", text,
                 j->le->line, run->e->interrupted_why);
    } else if (j->status == ST_FAILED) {
        run->failed++;
        snprintf(line, sizeof line, "FAILED  %s (line %d): %s", text, j->le->line, err_msg(j));
        if (run->o->fail_fast)
            run->stop = 1;
    } else if (j->status == ST_UPTODATE) {
        snprintf(line, sizeof line, "ok      %s: up to date (%s)", text,
                 j->digest ? j->digest : "");
    } else if (j->status == ST_DRYRUN) {
        snprintf(line, sizeof line, "dry-run %s: would fetch %s (%zu platform image(s))", text,
                 j->digest ? j->digest : "", j->n_pulls);
    } else {
        snprintf(line, sizeof line, "ok      %s: %s, %.1f MB fetched, %.2f s", text,
                 j->digest ? j->digest : "", (double)j->bytes_fetched / 1e6, secs);
    }
    entry_trim(j);
    if (!run->o->quiet || j->status == ST_FAILED) {
        if (j->status == ST_FAILED && oc_progress_mode_of(run->progress) == OC_PROGRESS_NONE)
            fprintf(stderr, "occystrap: %s\n", line); /* errors are printed whatever the display */
        oc_progress_image_done(run->progress, j->status != ST_FAILED && j->status != ST_INTERRUPTED,
                               line);
    }
    start_more(run);
    maybe_commit(run);
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

/* ---- pulls ---- */

static void on_bytes(void *opaque, uint64_t n)
{
    plat_pull *pp = opaque;
    pp->job->bytes_fetched += n;
    oc_progress_bytes(pp->job->run->progress, n);
}

static void on_layer(void *opaque, int started, uint64_t size)
{
    plat_pull *pp = opaque;
    oc_progress *p = pp->job->run->progress;
    if (started) {
        oc_progress_expect_bytes(p, size);
        oc_progress_layer_started(p);
    } else {
        oc_progress_layer_finished(p);
    }
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
    if (j->status != ST_FAILED)
        j->status = ST_FETCHED;
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
                           .no_catalog = 1};
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
        if (list_later(j, pp->tag, on_pull_listed, pp, &e) == 0)
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
            .have_layer = oc_store_have_layer,
            .have_layer_opaque = run->store,
            .in_flight = run->in_flight,
            .layer_placed = place_layer,
            .layer_placed_opaque = run,
            .on_bytes = on_bytes,
            .on_layer = on_layer,
            .progress_opaque = pp,
            .partial_dir = run->partial_dir,
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
    if (dir && asprintf(&path, "%s/%s.json", dir, hex) >= 0 && oc_mkdirs(dir, err) == 0)
        rc = oc_atomic_write_file(oc_store_run_dir(run->store), path, body, len, err);
    else if (err && err->code == OC_OK)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
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
    if (m.kind == OC_MANIFEST_INDEX) {
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
    } else {
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
        entry_finish(j);
        return;
    }
    start_pulls(j);
}

static void fetch_manifest(entry_job *j)
{
    oc_error err;
    oc_error_clear(&err);
    if (oc_registry_fetch_small(j->r, j->le->ref.repository, "manifests", j->digest,
                                OC_MANIFEST_ACCEPT, MANIFEST_MAX, on_manifest, j, &err) != 0) {
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
    if (j->status != ST_FAILED)
        j->status = ST_UPTODATE;
    entry_finish(j);
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
        int found = ptag && oc_store_lookup(run->store, cat, j->name, ptag, &si, NULL, &err) == 0;
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
        if (found)
            oc_store_image_free(&si);
        if (same && !oc_catalog_get(cat, j->name, ptag))
            unlisted[n_unlisted++] = ptag;
        else
            free(ptag);
        current = same;
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
        j->status = ST_UPTODATE;
        entry_finish(j);
        return;
    }
    fetch_manifest(j);
}

static void on_head_manifest(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                             const oc_error *call_err)
{
    entry_job *j = opaque;
    (void)info;
    if (entry_stopped(j))
        return;
    if (call_err) {
        entry_abort(j, call_err);
        return;
    }
    /* the registry sent no digest with HEAD: the body's hash is the digest */
    char hex[OC_SHA256_HEX_LEN + 1], digest[8 + OC_SHA256_HEX_LEN];
    oc_sha256_buf_hex(body, len, hex);
    snprintf(digest, sizeof digest, "sha256:%s", hex);
    resolved(j, digest);
}

static void on_head(void *opaque, const oc_reg_info *info, const oc_error *call_err)
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
    const char *d = info->docker_content_digest;
    oc_error err;
    char hex[OC_SHA256_HEX_LEN + 1];
    if (d && oc_digest_parse(d, hex, &err) == 0) {
        resolved(j, d);
        return;
    }
    if (oc_registry_fetch_small(j->r, j->le->ref.repository, "manifests", j->le->ref.tag,
                                OC_MANIFEST_ACCEPT, MANIFEST_MAX, on_head_manifest, j, &err) != 0) {
        entry_abort(j, &err);
    }
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
    j->name = familiar_name(&j->le->ref);
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
    oc_reg_call_opts co = {.method = "HEAD", .accept = OC_MANIFEST_ACCEPT};
    oc_reg_consumer c = {.on_done = on_head, .opaque = j};
    if (oc_registry_call(j->r, j->le->ref.repository, "manifests", j->le->ref.tag, &co, &c, &err) !=
        0) {
        entry_abort(j, &err);
    }
}

/* ---- report ---- */

static json_t *report_json(const mirror_run *run)
{
    json_t *root = json_object();
    json_t *entries = json_array();
    size_t counts[ST_COUNT] = {0};
    uint64_t fetched = 0, total = 0;
    for (size_t i = 0; i < run->n_jobs; i++) {
        const entry_job *j = &run->jobs[i];
        json_t *e = json_object();
        json_object_set_new(e, "line", json_integer(j->le->line));
        json_object_set_new(e, "reference", json_string(j->le->text));
        if (j->name)
            json_object_set_new(e, "name", json_string(j->name));
        json_object_set_new(e, "status", json_string(status_name(j->status)));
        if (j->digest)
            json_object_set_new(e, "digest", json_string(j->digest));
        json_t *plats = json_array();
        for (size_t k = 0; k < j->n_stored; k++)
            json_array_append_new(plats, json_string(j->stored[k]));
        json_object_set_new(e, "platforms", plats);
        if ((j->status == ST_FAILED || j->status == ST_INTERRUPTED) && j->err) {
            json_object_set_new(e, "error", json_string(j->err->msg));
            json_object_set_new(e, "error_kind", json_string(oc_errcode_name(j->err->code)));
        }
        json_object_set_new(e, "bytes_fetched", json_integer((json_int_t)j->bytes_fetched));
        uint64_t reused = j->bytes_total > j->bytes_fetched ? j->bytes_total - j->bytes_fetched : 0;
        json_object_set_new(e, "bytes_reused", json_integer((json_int_t)reused));
        json_object_set_new(e, "seconds",
                            json_real((double)(j->ended_ms - j->started_ms) / 1000.0));
        json_array_append_new(entries, e);
        counts[j->status]++;
        fetched += j->bytes_fetched;
        total += j->bytes_total;
    }
    json_object_set_new(root, "entries", entries);
    json_t *totals = json_object();
    json_object_set_new(totals, "entries", json_integer((json_int_t)run->n_jobs));
    json_object_set_new(totals, "fetched", json_integer((json_int_t)counts[ST_FETCHED]));
    json_object_set_new(totals, "up_to_date", json_integer((json_int_t)counts[ST_UPTODATE]));
    json_object_set_new(totals, "failed", json_integer((json_int_t)counts[ST_FAILED]));
    json_object_set_new(totals, "would_fetch", json_integer((json_int_t)counts[ST_DRYRUN]));
    json_object_set_new(totals, "interrupted", json_integer((json_int_t)counts[ST_INTERRUPTED]));
    json_object_set_new(totals, "bytes_fetched", json_integer((json_int_t)fetched));
    json_object_set_new(totals, "bytes_reused",
                        json_integer((json_int_t)(total > fetched ? total - fetched : 0)));
    json_object_set_new(totals, "catalog_writes",
                        json_integer(run->catalog ? oc_catalog_batch_writes(run->catalog) : 0));
    json_object_set_new(totals, "blob_waits",
                        json_integer(run->claims ? oc_blob_claims_waits(run->claims) : 0));
    if (run->o->shard.n > 1) {
        char shard[32];
        snprintf(shard, sizeof shard, "%u/%u", run->o->shard.k, run->o->shard.n);
        json_object_set_new(totals, "shard", json_string(shard));
    }
    json_object_set_new(root, "totals", totals);
    return root;
}

static int write_report(const mirror_run *run, const char *path, oc_error *err)
{
    json_t *root = report_json(run);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (!text) {
        oc_error_set(err, OC_E_NOMEM, "out of memory writing the report");
        return -1;
    }
    int rc = 0;
    if (strcmp(path, "-") == 0) {
        fputs(text, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    } else {
        FILE *f = fopen(path, "w");
        if (!f || fputs(text, f) < 0 || fputc('\n', f) == EOF || fclose(f) != 0) {
            oc_error_errno(err, errno, "cannot write report %s", path);
            rc = -1;
        }
    }
    free(text);
    return rc;
}

/* ---- the run ---- */

/* Wait (up to --lock-wait) for lock path in mode. */
static int take_lock(mirror_run *run, const char *name, oc_lock_mode mode, int *fd, oc_error *err)
{
    char *path = oc_store_path(run->store, name);
    if (!path) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    *fd = oc_lock_open(path, 1, err);
    if (*fd < 0) {
        free(path);
        return -1;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int announced = 0;
    for (;;) {
        int r = oc_lock_take(*fd, mode, 0, path, err);
        if (r <= 0) {
            free(path);
            return r;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= run->o->lock_wait_s) {
            oc_error_set(err, OC_E_USAGE,
                         "another mirror run%s holds %s%s; try again later or pass --lock-wait "
                         "SECONDS",
                         run->o->shard.n > 1 ? " (of the same shard, or unsharded)" : "",
                         oc_store_dir(run->store),
                         run->o->lock_wait_s ? " and did not finish in time" : "");
            free(path);
            return -1;
        }
        if (!announced && !run->o->quiet) {
            fprintf(stderr, "occystrap: waiting up to %ld s for another mirror run on %s\n",
                    run->o->lock_wait_s, oc_store_dir(run->store));
            announced = 1;
        }
        usleep(200 * 1000);
    }
}

/* One mirror run per store, or one per shard: a sharded run holds
 * mirror.lock shared and mirror-K-of-N.lock exclusively, so shards run
 * together while a second run of the same shard, or an unsharded run
 * (which holds mirror.lock exclusively), waits. */
static int take_mirror_lock(mirror_run *run, int *fd, int *shard_fd, oc_error *err)
{
    const oc_shard *sh = &run->o->shard;
    if (sh->n <= 1)
        return take_lock(run, ".occystrap/mirror.lock", OC_LOCK_EXCLUSIVE, fd, err);
    if (take_lock(run, ".occystrap/mirror.lock", OC_LOCK_SHARED, fd, err) != 0)
        return -1;
    char name[64];
    snprintf(name, sizeof name, ".occystrap/mirror-%u-of-%u.lock", sh->k, sh->n);
    return take_lock(run, name, OC_LOCK_EXCLUSIVE, shard_fd, err);
}

/* ---- starting entries ---- */

static void start_more(mirror_run *run)
{
    if (run->starting || !run->expanded)
        return; /* entries that finish at once must not recurse */
    run->starting = 1;
    while (run->next < run->n_jobs && run->busy < run->window)
        entry_start(&run->jobs[run->next++]);
    run->starting = 0;
    maybe_commit(run);
}

static void on_repo_listed(void *opaque, const oc_list_entry *repo, size_t n_tags,
                           size_t n_selected, const oc_error *err)
{
    mirror_run *run = opaque;
    char line[1400];
    if (err) {
        run->repos_failed++;
        oc_engine_log(run->e, "tags of %s failed: %s", repo->text, err->msg);
        return; /* reported as a failed entry (by the shard it falls in) */
    }
    snprintf(line, sizeof line, "tags    %s (line %d): %zu of %zu tags selected%s", repo->text,
             repo->line, n_selected, n_tags,
             run->o->shard.n > 1 ? " (before the shard's cut)" : "");
    if (!run->o->quiet)
        oc_progress_print(run->progress, line);
}

static void on_expanded(void *opaque, oc_list *out, const oc_error *err)
{
    mirror_run *run = opaque;
    if (!out) {
        run->setup_err = *err;
        run->setup_failed = 1;
        return;
    }
    run->work = out;
    run->n_jobs = out->n;
    run->jobs = calloc(run->n_jobs ? run->n_jobs : 1, sizeof *run->jobs);
    if (!run->jobs) {
        oc_error_set(&run->setup_err, OC_E_NOMEM, "out of memory");
        run->setup_failed = 1;
        return;
    }
    for (size_t i = 0; i < run->n_jobs; i++) {
        run->jobs[i].run = run;
        run->jobs[i].le = &out->entries[i];
    }
    oc_progress_set_images_total(run->progress, (unsigned)run->n_jobs);
    run->expanded = 1;
    start_more(run);
}

int oc_mirror_run(oc_engine *e, const oc_mirror_opts *o, oc_error *err)
{
    mirror_run run;
    memset(&run, 0, sizeof run);
    run.e = e;
    run.o = o;
    int lock_fd = -1, shard_fd = -1;
    int status = 2;
    unsigned jobs = e->opts.jobs ? e->opts.jobs : 32;
    run.window = jobs * WINDOW_PER_JOB > WINDOW_MIN ? jobs * WINDOW_PER_JOB : WINDOW_MIN;
    if (oc_list_load(&run.list, o->list_path, o->default_registry, err) != 0)
        return 2;
    if (run.list.n == 0) {
        oc_error_set(err, OC_E_USAGE, "list %s holds no entries", o->list_path);
        goto out;
    }
    run.store = oc_store_open(o->store_dir, OC_STORE_WRITE, err);
    if (!run.store)
        goto store_failed;
    if (take_mirror_lock(&run, &lock_fd, &shard_fd, err) != 0)
        goto store_failed;
    run.partial_dir = oc_store_path(run.store, ".occystrap/partial");
    if (!run.partial_dir) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto store_failed;
    }
    if (oc_mkdirs(run.partial_dir, err) != 0)
        goto store_failed;
    run.catalog = oc_catalog_batch_open(run.store, err);
    if (!run.catalog)
        goto store_failed;
    run.claims = oc_blob_claims_new(e, run.store, err);
    if (!run.claims)
        goto store_failed;
    run.commit = oc_catalog_commit_new(e->loop, run.catalog);
    run.in_flight = oc_once_new();
    run.progress = oc_progress_new(e->loop, o->quiet ? OC_PROGRESS_NONE : o->progress, stderr,
                                   (unsigned)run.list.n, 0);
    if (!run.commit || !run.in_flight || !run.progress) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    oc_tags_expand_opts xo = {
        .shard = &o->shard, .listed = on_repo_listed, .done = on_expanded, .opaque = &run};
    if (oc_mirror_tags_expand(e, &run.list, &xo, err) != 0)
        goto out;
    uv_run(e->loop, UV_RUN_DEFAULT);
    oc_engine_release_signals(e);
    oc_catalog_commit_close(run.commit); /* writes what is left */
    run.commit = NULL;
    oc_engine_log(e, "catalog.json written %u time(s), read again %u time(s) for other writers",
                  oc_catalog_batch_writes(run.catalog), oc_catalog_batch_rereads(run.catalog));
    oc_progress_finish(run.progress);
    run.progress = NULL;
    if (run.setup_failed) {
        *err = run.setup_err;
        status = 1;
        goto out;
    }
    status = run.failed ? 1 : 0;
    if (!run.expanded && e->interrupted) {
        oc_error_set(err, OC_E_CANCELLED, "%s while listing the repositories' tags",
                     e->interrupted_why);
        status = e->interrupted > 0 ? 128 + e->interrupted : 1;
    } else if (e->interrupted && run.interrupted == 0 && run.finished == run.n_jobs) {
        /* no download was left to cancel: the entries finished their local
         * work (or the signal came in the loop's last turn) */
        fprintf(stderr,
                "occystrap: %s, but every entry finished anyway (no download was left to "
                "cancel); nothing was abandoned\n",
                e->interrupted_why);
    } else if (e->interrupted) {
        oc_error_set(err, OC_E_CANCELLED,
                     "%s: %zu of %zu entries stopped before they were mirrored, %zu failed, "
                     "%zu done; what is in the store verified (a rerun completes it and "
                     "continues broken downloads)",
                     e->interrupted_why, run.interrupted + (run.n_jobs - run.finished), run.n_jobs,
                     run.failed, run.finished - run.interrupted - run.failed);
        status = e->interrupted > 0 ? 128 + e->interrupted : 1;
    } else if (run.finished != run.n_jobs) {
        oc_error_set(err, OC_E_NET, "mirror ended with %zu of %zu entries unfinished",
                     run.n_jobs - run.finished, run.n_jobs);
        status = 1;
    }
    if (o->json_path) {
        oc_error rerr;
        if (write_report(&run, o->json_path, &rerr) != 0) {
            fprintf(stderr, "occystrap: error: %s\n", rerr.msg);
            status = status ? status : 1;
        }
    }
    goto out;
store_failed:
    /* a store that cannot be opened, locked or written (read-only, no
     * space, no permission) fails the work, as fetch-to-extracted does; a
     * directory that is not a store or a lock held by another run is a
     * configuration error */
    status = err->code == OC_E_USAGE || err->code == OC_E_FORMAT ? 2 : 1;
out:
    if (run.commit)
        oc_catalog_commit_close(run.commit);
    if (run.progress)
        oc_progress_finish(run.progress);
    oc_blob_claims_close(run.claims);
    uv_run(e->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < run.n_jobs; i++) {
        entry_job *j = &run.jobs[i];
        entry_trim(j);
        for (size_t k = 0; k < j->n_stored; k++)
            free(j->stored[k]);
        free(j->stored);
        free(j->name);
        free(j->digest);
        free(j->err);
    }
    free(run.jobs);
    if (run.work) {
        oc_list_free(run.work);
        free(run.work);
    }
    oc_once_free(run.in_flight);
    oc_catalog_batch_free(run.catalog);
    free(run.partial_dir);
    oc_lock_close(shard_fd);
    oc_lock_close(lock_fd);
    oc_store_close(run.store);
    oc_list_free(&run.list);
    return status;
}
