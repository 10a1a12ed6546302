/* mirror.c - every entry of a LIST into one store, on one loop (see
 * mirror.h).
 *
 * An entry_job walks: HEAD (tags only) -> up to date? done : GET the
 * manifest by digest -> an index is kept in the store and expanded into the
 * wanted platforms -> one pull per platform -> each pull's image written
 * into the store (config, manifest file, catalog entry; its layers were
 * placed as they verified) -> reported. Every step checks run->stop, which
 * --fail-fast sets on the first failure. The run owns the store, the
 * in-flight table shared by all pulls, the progress display and the report. */
#include "engine/mirror.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/emit_dir.h"
#include "engine/listfile.h"
#include "engine/pull.h"
#include "engine/registry.h"
#include "engine/resolve.h"
#include "engine/store.h"
#include "engine/store_put.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/storelock.h"
#include "sched/once.h"

#define MANIFEST_MAX (4u * 1024 * 1024)

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
    oc_error err;
    uint64_t bytes_fetched;
    uint64_t bytes_total; /* of the layers of the images stored */
    uint64_t started_ms, ended_ms;
    plat_pull *pulls;
    size_t n_pulls;
    size_t pulls_pending;
    char *manifest; /* the manifest or index the digest names, for the pulls */
    size_t manifest_len;
    char *manifest_type;
    char **stored; /* platform strings stored, for the report */
    size_t n_stored;
    int finished;
    int manifest_retried; /* a manifest that failed its digest is fetched once more */
    char *fetched;        /* the manifest when resolving the tag took a GET */
    size_t fetched_len;
    char *fetched_type;
};

struct mirror_run {
    oc_engine *e;
    const oc_mirror_opts *o;
    oc_store *store;
    oc_list list;
    entry_job *jobs;
    size_t n_jobs;
    oc_once *in_flight;
    oc_progress *progress;
    char *partial_dir; /* STORE/.occystrap/partial: broken downloads kept for the next run */
    size_t finished;
    size_t failed;
    size_t interrupted; /* entries stopped by a signal */
    int stop;
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

static void entry_finish(entry_job *j)
{
    mirror_run *run = j->run;
    if (j->finished)
        return;
    j->finished = 1;
    j->ended_ms = now_ms(run);
    run->finished++;
    char line[1400];
    const char *text = j->le->text;
    double secs = (double)(j->ended_ms - j->started_ms) / 1000.0;
    if (j->status == ST_FAILED && run->e->interrupted && j->err.code == OC_E_CANCELLED)
        j->status = ST_INTERRUPTED;
    if (j->status == ST_INTERRUPTED) {
        run->interrupted++;
        snprintf(line, sizeof line, "stopped %s (line %d): %s before it was mirrored", text,
                 j->le->line, run->e->interrupted_why);
    } else if (j->status == ST_FAILED) {
        run->failed++;
        snprintf(line, sizeof line, "FAILED  %s (line %d): %s", text, j->le->line, j->err.msg);
        if (run->o->fail_fast)
            run->stop = 1;
    } else if (j->status == ST_UPTODATE) {
        snprintf(line, sizeof line, "ok      %s: up to date (%s)", text,
                 j->digest ? j->digest : "");
    } else if (j->status == ST_DRYRUN) {
        snprintf(line, sizeof line, "dry-run %s: would fetch %s (%s)", text,
                 j->digest ? j->digest : "", j->err.msg[0] ? j->err.msg : "");
    } else {
        snprintf(line, sizeof line, "ok      %s: %s, %.1f MB fetched, %.2f s", text,
                 j->digest ? j->digest : "", (double)j->bytes_fetched / 1e6, secs);
    }
    if (run->o->quiet && j->status != ST_FAILED)
        return;
    if (j->status == ST_FAILED && oc_progress_mode_of(run->progress) == OC_PROGRESS_NONE)
        fprintf(stderr, "occystrap: %s\n", line); /* errors are printed whatever the display */
    oc_progress_image_done(run->progress, j->status != ST_FAILED && j->status != ST_INTERRUPTED,
                           line);
}

static void entry_fail(entry_job *j, const oc_error *err)
{
    if (j->status != ST_FAILED) {
        j->status = ST_FAILED;
        j->err = *err;
    }
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
    if (--j->pulls_pending > 0)
        return;
    if (j->status != ST_FAILED)
        j->status = ST_FETCHED;
    entry_finish(j);
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
                           .repository = j->le->ref.repository};
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
    }
    free(repo_tag);
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
        snprintf(j->err.msg, sizeof j->err.msg, "%zu platform image(s)", j->n_pulls);
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
                                OC_MANIFEST_ACCEPT, MANIFEST_MAX, on_manifest, j, &err) != 0) {
        entry_abort(j, &err);
    }
}

static int catalog_lists(mirror_run *run, const char *name, const char *tag)
{
    oc_catalog *cat = NULL;
    oc_error err;
    if (oc_store_catalog_load(run->store, &cat, &err) != 0)
        return 0;
    int listed = oc_catalog_get(cat, name, tag) != NULL;
    oc_catalog_free(cat);
    return listed;
}

/* Is every wanted platform of this entry in the store at digest? */
static int store_is_current(entry_job *j, const char *digest)
{
    mirror_run *run = j->run;
    if (run->o->all_platforms)
        return 0; /* the platform list lives in the index: fetch it */
    const char *tag = j->le->ref.tag ? j->le->ref.tag : j->le->ref.digest;
    int many = many_platforms(run);
    for (size_t i = 0; i < n_wanted(run); i++) {
        char *ptag = platform_tag(tag, wanted(run, i), many);
        oc_store_image si;
        memset(&si, 0, sizeof si);
        oc_error err;
        char *file = NULL;
        int found = ptag && oc_store_find(run->store, j->name, ptag, &si, &file, &err) == 0;
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
        /* a run killed between the manifest file and the catalog entry left
         * the image complete but unlisted: list it now */
        if (same && !catalog_lists(run, j->name, ptag) &&
            oc_store_catalog_add(run->store, j->name, ptag, file, &err) != 0)
            same = 0;
        free(file);
        free(ptag);
        if (!same)
            return 0;
    }
    return 1;
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
    if (store_is_current(j, digest)) {
        j->status = ST_UPTODATE;
        entry_finish(j);
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
    if (!j->le->ok) {
        entry_abort(j, &j->le->err);
        return;
    }
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
    if (oc_resolve_tag(j->r, j->le->ref.repository, j->le->ref.tag, OC_MANIFEST_ACCEPT,
                       MANIFEST_MAX, on_resolved, j, &err) != 0)
        entry_abort(j, &err);
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
        if (j->status == ST_FAILED || j->status == ST_INTERRUPTED) {
            json_object_set_new(e, "error", json_string(j->err.msg));
            json_object_set_new(e, "error_kind", json_string(oc_errcode_name(j->err.code)));
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

static int take_mirror_lock(mirror_run *run, int *fd, oc_error *err)
{
    char *path = oc_store_path(run->store, ".occystrap/mirror.lock");
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
        int r = oc_lock_take(*fd, OC_LOCK_EXCLUSIVE, 0, path, err);
        if (r <= 0) {
            free(path);
            return r;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= run->o->lock_wait_s) {
            oc_error_set(err, OC_E_USAGE,
                         "another mirror run holds %s%s; try again later or pass --lock-wait "
                         "SECONDS",
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

int oc_mirror_run(oc_engine *e, const oc_mirror_opts *o, oc_error *err)
{
    mirror_run run;
    memset(&run, 0, sizeof run);
    run.e = e;
    run.o = o;
    int lock_fd = -1;
    int status = 2;
    if (oc_list_load(&run.list, o->list_path, o->default_registry, err) != 0)
        return 2;
    if (run.list.n == 0) {
        oc_error_set(err, OC_E_USAGE, "list %s holds no entries", o->list_path);
        goto out;
    }
    run.store = oc_store_open(o->store_dir, OC_STORE_WRITE, err);
    if (!run.store)
        goto store_failed;
    if (take_mirror_lock(&run, &lock_fd, err) != 0)
        goto store_failed;
    run.partial_dir = oc_store_path(run.store, ".occystrap/partial");
    if (!run.partial_dir) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto store_failed;
    }
    if (oc_mkdirs(run.partial_dir, err) != 0)
        goto store_failed;
    /* signals are caught from here on: while it waited for a lock, one
     * ended the process at once (nothing was started) */
    if (oc_engine_catch_signals(e, err) != 0)
        goto store_failed;
    run.in_flight = oc_once_new();
    run.jobs = calloc(run.list.n, sizeof *run.jobs);
    run.progress = oc_progress_new(e->loop, o->quiet ? OC_PROGRESS_NONE : o->progress, stderr,
                                   (unsigned)run.list.n, 0);
    if (!run.in_flight || !run.jobs || !run.progress) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    run.n_jobs = run.list.n;
    for (size_t i = 0; i < run.n_jobs; i++) {
        run.jobs[i].run = &run;
        run.jobs[i].le = &run.list.entries[i];
    }
    for (size_t i = 0; i < run.n_jobs; i++)
        entry_start(&run.jobs[i]);
    uv_run(e->loop, UV_RUN_DEFAULT);
    oc_engine_release_signals(e);
    oc_progress_finish(run.progress);
    run.progress = NULL;
    status = run.failed ? 1 : 0;
    if (e->interrupted && run.interrupted == 0 && run.finished == run.n_jobs) {
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
                     e->interrupted_why, run.interrupted, run.n_jobs, run.failed,
                     run.finished - run.interrupted - run.failed);
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
    if (run.progress)
        oc_progress_finish(run.progress);
    uv_run(e->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < run.n_jobs; i++) {
        entry_job *j = &run.jobs[i];
        for (size_t k = 0; k < j->n_pulls; k++) {
            oc_platform_free(&j->pulls[k].platform);
            free(j->pulls[k].tag);
        }
        free(j->pulls);
        for (size_t k = 0; k < j->n_stored; k++)
            free(j->stored[k]);
        free(j->stored);
        free(j->name);
        free(j->digest);
        free(j->manifest);
        free(j->manifest_type);
        free(j->fetched);
        free(j->fetched_type);
    }
    free(run.jobs);
    oc_once_free(run.in_flight);
    free(run.partial_dir);
    oc_lock_close(lock_fd);
    oc_store_close(run.store);
    oc_list_free(&run.list);
    return status;
}
