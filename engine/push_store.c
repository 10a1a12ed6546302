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
#include "engine/store/oci_referrers.h"
#include "io/strmap.h"

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
            if (!e->name || e->subject || platform_of_stored_index(l, e))
                continue; /* referrers go with their images (oc_push_plan_referrers) */
            image_job *j = oc_push_new_job(run, e->name, e->tag, err);
            if (!j)
                return -1;
            job_from_entry(j, e);
        }
        /* entries without NAME:TAG are reported, not skipped silently */
        for (size_t i = 0; i < l->n_entries; i++) {
            const oc_oci_entry *e = &l->entries[i];
            if (e->name || e->subject)
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
                if (!e->name || e->subject || strcmp(e->name, images[i]) != 0 ||
                    platform_of_stored_index(l, e))
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
        if (!e->name || e->subject || in_run(run, e->name, e->tag) ||
            platform_of_stored_index(&run->layout, e))
            continue;
        oc_error err;
        char *repo = oc_push_target_repository(run, e->name, &err);
        if (!repo)
            continue;
        manifest_candidates(run, e->digest, e->media_type, e->size, repo, 0);
        free(repo);
    }
}

/* ---- referrers: what goes with the run's images ---- */

typedef struct fallback_plan {
    char *name, *subject;
    json_t *descs; /* the referrers of subject pushed in this run */
    image_job **after;
    size_t n_after;
    char *body; /* the index the store holds under sha256-<hex>, or NULL */
    size_t len;
} fallback_plan;

typedef struct refplan {
    push_run *run;
    oc_strmap *jobs;      /* "NAME\nKEY" -> the job planned for that index.json entry */
    oc_strmap *by_digest; /* "NAME\nDIGEST" -> the job that puts DIGEST into NAME's repository */
    oc_strmap *fallbacks; /* "NAME\nSUBJECT" -> fallback_plan */
    const char *name;
    oc_error *err;
} refplan;

static void fallback_plan_free(void *p)
{
    fallback_plan *f = p;
    if (!f)
        return;
    free(f->name);
    free(f->subject);
    json_decref(f->descs);
    free(f->after);
    free(f->body);
    free(f);
}

static char *pair_key(const char *a, const char *b)
{
    char *k = NULL;
    return asprintf(&k, "%s\n%s", a, b) < 0 ? NULL : k;
}

static int note_digest(refplan *p, const char *digest, image_job *j)
{
    char *k = pair_key(p->name, digest);
    int rc = k && oc_strmap_set(p->by_digest, k, j) == 0 ? 0 : -1;
    free(k);
    return rc;
}

static image_job *job_of_digest(refplan *p, const char *digest)
{
    char *k = pair_key(p->name, digest);
    image_job *j = k ? oc_strmap_get(p->by_digest, k) : NULL;
    free(k);
    return j;
}

static fallback_plan *fallback_of(refplan *p, const char *subject)
{
    char *k = pair_key(p->name, subject);
    fallback_plan *f = k ? oc_strmap_get(p->fallbacks, k) : NULL;
    if (k && !f && (f = calloc(1, sizeof *f))) {
        f->name = strdup(p->name);
        f->subject = strdup(subject);
        f->descs = json_array();
        if (!f->name || !f->subject || !f->descs || oc_strmap_set(p->fallbacks, k, f) != 0) {
            fallback_plan_free(f);
            f = NULL;
        }
    }
    free(k);
    return f;
}

/* The descriptor a fallback index lists for a referrer manifest: its media
 * type, digest, size, artifactType (else its config's media type) and
 * annotations, as the referrers API gives them. */
static json_t *listing_descriptor(const char *digest, const char *media_type, size_t len,
                                  const char *body, const char *artifact_type)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", digest, "size",
                          (json_int_t)len);
    const char *at = artifact_type;
    if (!at)
        at = json_string_value(json_object_get(doc, "artifactType"));
    if (!at)
        at = json_string_value(json_object_get(json_object_get(doc, "config"), "mediaType"));
    if (d && at)
        json_object_set_new(d, "artifactType", json_string(at));
    json_t *ann = json_object_get(doc, "annotations");
    if (d && json_is_object(ann) && json_object_size(ann))
        json_object_set(d, "annotations", ann);
    json_decref(doc);
    return d;
}

/* A referrer manifest: put by digest after its subject. */
static int plan_referrer(refplan *p, const oc_oci_referrer *r, image_job *subject_job)
{
    push_run *run = p->run;
    image_job *j = oc_push_new_job(run, p->name, r->digest, p->err);
    if (!j)
        return -1;
    j->kind = JOB_REFERRER;
    j->digest = strdup(r->digest);
    j->media_type = strdup(r->media_type);
    j->subject = strdup(r->subject);
    j->artifact_type = r->artifact_type ? strdup(r->artifact_type) : NULL;
    if (!j->digest || !j->media_type || !j->subject || (r->artifact_type && !j->artifact_type))
        return -1;
    oc_push_job_target(j);
    if (note_digest(p, r->digest, j) != 0 || oc_push_job_after(j, subject_job, p->err) != 0)
        return -1;
    if (j->status == OC_PUSH_FAILED)
        return 0;
    oc_error err;
    oc_error_clear(&err);
    char *body = NULL;
    size_t len = 0;
    oc_manifest m;
    int parsed = 0;
    if (oc_oci_read_small(&run->layout, r->digest, (int64_t)r->size, OC_MANIFEST_MAX, &body, &len,
                          &err) == 0 &&
        oc_manifest_parse(&m, r->media_type, body, len, &err) == 0) {
        parsed = 1;
        if (m.kind != OC_MANIFEST_IMAGE)
            oc_error_set(&err, OC_E_UNSUPPORTED,
                         "referrer %s is an index: only image manifests are pushed as referrers",
                         r->digest);
        else if (oc_push_image_blobs(j, &m, &err) == 0) {
            fallback_plan *f = fallback_of(p, r->subject);
            json_t *d =
                f ? listing_descriptor(r->digest, r->media_type, len, body, r->artifact_type)
                  : NULL;
            image_job **grown = d ? realloc(f->after, sizeof *grown * (f->n_after + 1)) : NULL;
            if (grown)
                f->after = grown;
            if (!grown || json_array_append_new(f->descs, d) != 0) {
                if (!grown)
                    json_decref(d);
                oc_error_set(p->err, OC_E_NOMEM, "out of memory");
                oc_manifest_free(&m);
                free(body);
                return -1;
            }
            f->after[f->n_after++] = j;
            (void)oc_push_add_manifest(j, r->digest, r->media_type, body, len, r->digest, &err);
            body = NULL; /* taken, on failure too */
        }
    }
    if (parsed)
        oc_manifest_free(&m);
    free(body);
    if (err.code != OC_OK) {
        oc_error_prefix(&err, "%s@%s", p->name, r->digest);
        oc_push_job_fail(j, &err);
    }
    return 0;
}

/* A cosign tag: an image manifest put by its tag, after its subject. */
static int plan_tag(refplan *p, const oc_oci_referrer *r, image_job *subject_job)
{
    image_job *j = oc_push_new_job(p->run, p->name, r->tag, p->err);
    if (!j)
        return -1;
    j->kind = JOB_TAG;
    if (!(j->subject = strdup(r->subject)))
        return -1;
    if (note_digest(p, r->digest, j) != 0 || oc_push_job_after(j, subject_job, p->err) != 0)
        return -1;
    oc_oci_entry e = {.media_type = r->media_type, .digest = r->digest, .size = (int64_t)r->size};
    job_from_entry(j, &e);
    return 0;
}

static int plan_one(void *opaque, const oc_oci_referrer *r, int depth)
{
    refplan *p = opaque;
    (void)depth;
    char *k = pair_key(p->name, r->key);
    if (!k) {
        oc_error_set(p->err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    int planned = oc_strmap_has(p->jobs, k);
    int rc = planned ? 0 : oc_strmap_set(p->jobs, k, NULL);
    free(k);
    if (planned)
        return 0;
    if (rc != 0) {
        oc_error_set(p->err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    image_job *subject_job = job_of_digest(p, r->subject);
    char subject[72];
    const char *suffix = NULL;
    if (!subject_job)
        return 0; /* (reach only gives referrers of what the run puts) */
    if (!r->tag)
        return plan_referrer(p, r, subject_job);
    if (!oc_oci_tag_schema(r->tag, subject, &suffix))
        return 0;
    if (*suffix)
        return plan_tag(p, r, subject_job);
    /* the fallback tag: pushed after the referrers it lists (below) */
    fallback_plan *f = fallback_of(p, r->subject);
    oc_error err;
    if (!f) {
        oc_error_set(p->err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (!f->body && oc_oci_read_small(&p->run->layout, r->digest, (int64_t)r->size, OC_MANIFEST_MAX,
                                      &f->body, &f->len, &err) != 0)
        f->body = NULL; /* then one is made from the referrers */
    return 0;
}

typedef struct fb_walk {
    refplan *p;
    int rc;
} fb_walk;

static void make_fallback(const char *key, void *value, void *opaque)
{
    fb_walk *w = opaque;
    fallback_plan *f = value;
    (void)key;
    if (w->rc != 0 || !f || json_array_size(f->descs) == 0)
        return; /* none of its referrers is pushed: nothing to list */
    char tag[80];
    snprintf(tag, sizeof tag, "sha256-%s", f->subject + 7);
    image_job *j = oc_push_new_job(w->p->run, f->name, tag, w->p->err);
    if (!j || !(j->subject = strdup(f->subject))) {
        w->rc = -1;
        return;
    }
    j->kind = JOB_FALLBACK;
    oc_push_job_target(j);
    j->fallback_descs = json_incref(f->descs);
    j->fallback_body = f->body;
    j->fallback_len = f->len;
    f->body = NULL;
    for (size_t i = 0; i < f->n_after && w->rc == 0; i++)
        if (oc_push_job_after(j, f->after[i], w->p->err) != 0)
            w->rc = -1;
}

int oc_push_plan_referrers(push_run *run, oc_error *err)
{
    const oc_oci_layout *l = &run->layout;
    oc_oci_referrers *rs = oc_oci_referrers_new();
    refplan p = {.run = run,
                 .jobs = oc_strmap_new(NULL),
                 .by_digest = oc_strmap_new(NULL),
                 .fallbacks = oc_strmap_new(fallback_plan_free),
                 .err = err};
    int rc = rs && p.jobs && p.by_digest && p.fallbacks ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < l->n_entries; i++) {
        const oc_oci_entry *e = &l->entries[i];
        if (!e->subject)
            continue;
        char *key =
            e->ref_name ? strdup(e->ref_name) : oc_oci_referrer_key(e->referrer_of, e->digest);
        rc = key && oc_oci_referrers_add_fields(
                        rs, key, e->referrer_of,
                        e->ref_name && e->name && strcmp(e->name, e->referrer_of) == 0 ? e->tag
                                                                                       : NULL,
                        e->subject, e->digest, e->media_type, e->artifact_type, (uint64_t)e->size,
                        err) >= 0
                 ? 0
                 : -1;
        free(key);
    }
    size_t n_images = run->n_jobs;
    for (size_t i = 0; rc == 0 && oc_oci_referrers_count(rs) && i < n_images; i++) {
        image_job *j = run->jobs[i];
        if (j->kind != JOB_IMAGE || j->status == OC_PUSH_FAILED || !j->n_mans)
            continue;
        p.name = j->name;
        const char **subjects = calloc(j->n_mans, sizeof *subjects);
        if (!subjects) {
            rc = -1;
            break;
        }
        for (size_t k = 0; k < j->n_mans && rc == 0; k++) {
            subjects[k] = j->mans[k].digest;
            if (!job_of_digest(&p, subjects[k]))
                rc = note_digest(&p, subjects[k], j);
        }
        if (rc == 0)
            rc = oc_oci_referrers_reach(rs, j->name, subjects, j->n_mans, plan_one, &p);
        free(subjects);
    }
    if (rc == 0) {
        fb_walk w = {.p = &p};
        oc_strmap_foreach(p.fallbacks, make_fallback, &w);
        rc = w.rc;
    }
    if (rc != 0 && err->code == OC_OK)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    oc_oci_referrers_free(rs);
    oc_strmap_free(p.jobs);
    oc_strmap_free(p.by_digest);
    oc_strmap_free(p.fallbacks);
    return rc;
}
