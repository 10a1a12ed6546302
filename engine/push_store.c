/* push_store.c - push jobs from a store's exact bytes (STORE/oci/, an OCI
 * image layout; the layout contract, DESIGN.md 7.4): which images and
 * tags, and what each sends, all read from the store before the first
 * request. An image the catalog has but the layout lacks (stored without
 * its exact bytes), a blob missing from the layout, an index the store
 * holds only partly: the job fails with the reason, the others go on.
 * Also the mount candidates: where other images of the store would have
 * put a blob in the target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/image/limits.h"
#include "engine/push_job.h"

static char *platform_text(const oc_platform *p)
{
    return p->os && p->arch ? oc_platform_string(p) : strdup("unknown platform");
}

/* An index and the children the store holds: all of them -> the children
 * by digest and the index by the tag; one -> that manifest by the tag
 * (noted); else the image fails. */
static int index_plan(image_job *j, const oc_manifest *idx, char *body, size_t len, oc_error *err)
{
    push_run *run = j->run;
    size_t held = 0, missing = 0;
    char **bodies = calloc(idx->n_manifests + 1, sizeof *bodies);
    size_t *lens = calloc(idx->n_manifests + 1, sizeof *lens);
    int rc = -1;
    if (!bodies || !lens) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < idx->n_manifests; i++) {
        const oc_descriptor *d = &idx->manifests[i];
        if (oc_oci_read_small(&run->layout, d->digest, d->size, OC_MANIFEST_MAX, &bodies[i],
                              &lens[i], err) == 0) {
            held++;
        } else if (err->code == OC_E_NOTFOUND) {
            missing++;
            oc_error_clear(err);
        } else {
            oc_error_prefix(err, "index %s", j->digest);
            goto out;
        }
    }
    if (missing && held != 1) {
        oc_error_set(err, OC_E_NOTFOUND,
                     "the store holds %zu of the %zu manifests of index %s: an index is pushed "
                     "only whole, so that its digest stays the same (mirror it with --platform "
                     "all%s)",
                     held, idx->n_manifests, j->digest, held ? ", or keep one platform" : "");
        goto out;
    }
    for (size_t i = 0; i < idx->n_manifests; i++) {
        if (!bodies[i])
            continue;
        const oc_descriptor *d = &idx->manifests[i];
        oc_manifest child;
        if (oc_manifest_parse(&child, d->media_type, bodies[i], lens[i], err) != 0) {
            oc_error_prefix(err, "manifest %s of index %s", d->digest, j->digest);
            goto out;
        }
        int ok = child.kind == OC_MANIFEST_IMAGE;
        if (!ok)
            oc_error_set(err, OC_E_UNSUPPORTED, "manifest %s of index %s is not an image manifest",
                         d->digest, j->digest);
        else
            ok = oc_push_image_blobs(j, &child, err) == 0;
        oc_manifest_free(&child);
        if (!ok)
            goto out;
        const char *ref = missing ? j->tag : d->digest;
        if (missing) { /* the one platform the store holds goes under the tag */
            char *plat = platform_text(&idx->platforms[i]);
            if (asprintf(&j->note,
                         "the store holds 1 of the %zu platforms of index %s: its %s manifest %s "
                         "was pushed as %s (the index's digest is kept only when every platform "
                         "is in the store: mirror it with --platform all)",
                         idx->n_manifests, j->digest, plat ? plat : "?", d->digest, j->tag) < 0)
                j->note = NULL;
            free(plat);
            free(j->digest);
            free(j->media_type);
            j->digest = strdup(d->digest);
            j->media_type = strdup(d->media_type);
        }
        if (oc_push_add_manifest(j, d->digest, d->media_type, bodies[i], lens[i], ref, err) != 0) {
            bodies[i] = NULL;
            goto out;
        }
        bodies[i] = NULL;
    }
    if (!missing) {
        if (oc_push_add_manifest(j, j->digest, j->media_type, body, len, j->tag, err) != 0)
            body = NULL;
        else
            rc = 0;
        body = NULL;
        goto out;
    }
    rc = j->digest && j->media_type ? 0 : -1;
    if (rc != 0)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
out:
    for (size_t i = 0; bodies && i < idx->n_manifests; i++)
        free(bodies[i]);
    free(bodies);
    free(lens);
    free(body);
    return rc;
}

/* What the job pushes, from the store, before any request. */
static int job_plan(image_job *j, const oc_oci_entry *entry, oc_error *err)
{
    push_run *run = j->run;
    if (!(j->digest = strdup(entry->digest)) || !(j->media_type = strdup(entry->media_type))) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    char *body = NULL;
    size_t len = 0;
    if (oc_oci_read_small(&run->layout, entry->digest, entry->size, OC_MANIFEST_MAX, &body, &len,
                          err) != 0)
        return -1;
    oc_manifest m;
    if (oc_manifest_parse(&m, entry->media_type, body, len, err) != 0) {
        oc_error_prefix(err, "manifest %s", entry->digest);
        free(body);
        return -1;
    }
    int rc;
    if (m.kind == OC_MANIFEST_INDEX) {
        rc = index_plan(j, &m, body, len, err);
    } else if (m.kind == OC_MANIFEST_IMAGE) {
        rc = oc_push_image_blobs(j, &m, err);
        if (rc == 0)
            rc = oc_push_add_manifest(j, entry->digest, entry->media_type, body, len, j->tag, err);
        else
            free(body);
    } else {
        oc_error_set(err, OC_E_UNSUPPORTED, "manifest %s is not an image manifest or an index",
                     entry->digest);
        free(body);
        rc = -1;
    }
    oc_manifest_free(&m);
    return rc;
}

/* ---- the jobs: which images and tags ---- */

static int is_platform_tag(const char *tag)
{
    return strchr(tag, '+') != NULL;
}

static void job_from_entry(image_job *j, const oc_oci_entry *entry)
{
    oc_push_job_target(j);
    if (j->status == OC_PUSH_FAILED)
        return;
    oc_error err;
    oc_error_clear(&err);
    if (job_plan(j, entry, &err) != 0) {
        oc_error_prefix(&err, "%s:%s", j->name, j->tag);
        oc_push_job_fail(j, &err);
    }
}

/* An image the layout does not have: in the 0.2.0 catalog (no exact bytes)
 * or nowhere. */
static void job_missing(image_job *j, const oc_catalog *cat)
{
    oc_push_job_target(j);
    oc_error err;
    int in_catalog =
        cat && (strcmp(j->tag, "*") == 0 ? oc_catalog_has_image(cat, j->name)
                                         : oc_catalog_get(cat, j->name, j->tag) != NULL);
    if (in_catalog)
        oc_error_set(&err, OC_E_NOTFOUND,
                     "%s:%s has no exact bytes in %s (it was stored without them: mirror it "
                     "again)",
                     j->name, j->tag, j->run->store_dir);
    else
        oc_error_set(&err, OC_E_NOTFOUND, "%s:%s is not in %s", j->name, j->tag, j->run->store_dir);
    oc_push_job_fail(j, &err);
}

static const oc_oci_entry *find_entry(const oc_oci_layout *l, const char *name, const char *tag)
{
    for (size_t i = 0; i < l->n_entries; i++) {
        const oc_oci_entry *e = &l->entries[i];
        if (e->name && strcmp(e->name, name) == 0 && strcmp(e->tag, tag) == 0)
            return e;
    }
    return NULL;
}

/* A '+' tag is the store's name for one platform of the index its base tag
 * names: pushed through that index, never as a tag of its own (a registry
 * tag cannot hold '+'). */
static int platform_of_stored_index(const oc_oci_layout *l, const oc_oci_entry *e)
{
    if (!is_platform_tag(e->tag))
        return 0;
    char *base = strndup(e->tag, strcspn(e->tag, "+"));
    int found = base && find_entry(l, e->name, base) != NULL;
    free(base);
    return found;
}

typedef struct catalog_walk {
    push_run *run;
    const oc_catalog *cat;
    int rc;
    oc_error *err;
} catalog_walk;

/* Catalog images that the layout lacks fail with "no exact bytes". */
static int add_unexact(void *opaque, const char *image, const char *tag, const char *file)
{
    catalog_walk *w = opaque;
    (void)file;
    if (find_entry(&w->run->layout, image, tag) || is_platform_tag(tag))
        return 0;
    image_job *j = oc_push_new_job(w->run, image, tag, w->err);
    if (!j) {
        w->rc = -1;
        return -1;
    }
    job_missing(j, w->cat);
    return 0;
}

int oc_push_plan_store(push_run *run, const char *const *images, size_t n, const oc_catalog *cat,
                       oc_error *err)
{
    const oc_oci_layout *l = &run->layout;
    if (n == 0) {
        for (size_t i = 0; i < l->n_entries; i++) {
            const oc_oci_entry *e = &l->entries[i];
            if (!e->name || platform_of_stored_index(l, e))
                continue;
            image_job *j = oc_push_new_job(run, e->name, e->tag, err);
            if (!j)
                return -1;
            job_from_entry(j, e);
        }
        /* entries without NAME:TAG are reported, not skipped silently */
        for (size_t i = 0; i < l->n_entries; i++) {
            const oc_oci_entry *e = &l->entries[i];
            if (e->name)
                continue;
            image_job *j = oc_push_new_job(run, e->ref_name ? e->ref_name : e->digest, "?", err);
            if (!j)
                return -1;
            oc_push_job_target(j);
            oc_error why;
            oc_error_set(&why, OC_E_FORMAT,
                         "index.json entry %s has %s%s%s: the store names each image NAME:TAG",
                         e->digest, e->ref_name ? "the ref.name '" : "no ref.name",
                         e->ref_name ? e->ref_name : "", e->ref_name ? "'" : "");
            oc_push_job_fail(j, &why);
        }
        if (cat) {
            catalog_walk w = {.run = run, .cat = cat, .err = err};
            oc_catalog_foreach(cat, add_unexact, &w);
            if (w.rc != 0)
                return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char *name = NULL, *tag = NULL;
        if (oc_oci_split_ref_name(images[i], &name, &tag) != 0) {
            /* NAME alone: every tag of it */
            int any = 0;
            for (size_t k = 0; k < l->n_entries; k++) {
                const oc_oci_entry *e = &l->entries[k];
                if (!e->name || strcmp(e->name, images[i]) != 0 || platform_of_stored_index(l, e))
                    continue;
                image_job *j = oc_push_new_job(run, e->name, e->tag, err);
                if (!j)
                    return -1;
                job_from_entry(j, e);
                any = 1;
            }
            if (!any) {
                image_job *j = oc_push_new_job(run, images[i], "*", err);
                if (!j)
                    return -1;
                job_missing(j, cat);
            }
            continue;
        }
        image_job *j = oc_push_new_job(run, name, tag, err);
        const oc_oci_entry *e = j ? find_entry(l, name, tag) : NULL;
        free(name);
        free(tag);
        if (!j)
            return -1;
        if (e && platform_of_stored_index(l, e)) {
            oc_push_job_target(j);
            oc_error why;
            oc_error_set(&why, OC_E_USAGE,
                         "%s: a '+' tag is the store's name for one platform of an index; push "
                         "the index's tag (a registry tag cannot hold '+')",
                         images[i]);
            oc_push_job_fail(j, &why);
        } else if (e) {
            job_from_entry(j, e);
        } else {
            job_missing(j, cat);
        }
    }
    return 0;
}

/* Is NAME:TAG one of this run's jobs? */
static int in_run(const push_run *run, const char *name, const char *tag)
{
    for (size_t i = 0; i < run->n_jobs; i++)
        if (strcmp(run->jobs[i]->name, name) == 0 && strcmp(run->jobs[i]->tag, tag) == 0)
            return 1;
    return 0;
}

static void candidate(push_run *run, const char *digest, const char *repo)
{
    if (!json_object_get(run->candidates, digest))
        json_object_set_new(run->candidates, digest, json_string(repo));
}

/* The blobs of one manifest of the layout, as candidates in repo. */
static void manifest_candidates(push_run *run, const char *digest, const char *media_type,
                                int64_t size, const char *repo, int depth)
{
    char *body = NULL;
    size_t len = 0;
    oc_error err;
    oc_manifest m;
    if (oc_oci_read_small(&run->layout, digest, size, OC_MANIFEST_MAX, &body, &len, &err) != 0)
        return;
    if (oc_manifest_parse(&m, media_type, body, len, &err) == 0) {
        if (m.kind == OC_MANIFEST_IMAGE) {
            candidate(run, m.config.digest, repo);
            for (size_t i = 0; i < m.n_layers; i++)
                candidate(run, m.layers[i].digest, repo);
        } else if (m.kind == OC_MANIFEST_INDEX && depth == 0) {
            for (size_t i = 0; i < m.n_manifests; i++)
                manifest_candidates(run, m.manifests[i].digest, m.manifests[i].media_type,
                                    m.manifests[i].size, repo, 1);
        }
        oc_manifest_free(&m);
    }
    free(body);
}

/* Blob -> the target repository of another image of the store that holds
 * it (pushed there by an earlier run, maybe): a mount to try before an
 * upload. Images of this run need none: the run's owners table says where
 * each blob went. */
void oc_push_collect_candidates(push_run *run)
{
    run->candidates = json_object();
    if (!run->candidates)
        return;
    for (size_t i = 0; i < run->layout.n_entries; i++) {
        const oc_oci_entry *e = &run->layout.entries[i];
        if (!e->name || in_run(run, e->name, e->tag) || platform_of_stored_index(&run->layout, e))
            continue;
        oc_error err;
        char *repo = oc_push_target_repository(run, e->name, &err);
        if (!repo)
            continue;
        manifest_candidates(run, e->digest, e->media_type, e->size, repo, 0);
        free(repo);
    }
}
