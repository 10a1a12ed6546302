/* push_referrers.c - the referrers fallback tag of a push (DESIGN.md 7.6).
 *
 * A referrer manifest (a signature, an SBOM) is put by digest like any
 * manifest (push.c), after its subject. A registry that keeps referrers
 * itself says so: its manifest PUT answers OCI-Subject, or its referrers
 * API (GET /v2/<repo>/referrers/<digest>) answers an index; then nothing
 * more is needed. Otherwise clients find the referrers of sha256:<hex>
 * through the tag sha256-<hex>, an index listing them, which this job
 * writes: merged with what the target lists there already, and with the
 * bytes the source had (the store's copy of its fallback index, digest
 * unchanged) whenever the merge lists exactly what that index lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image/limits.h"
#include "engine/push_job.h"
#include "engine/registry/upload.h"
#include "io/digest.h"

static void keeps_them(image_job *j)
{
    j->status = OC_PUSH_UP_TO_DATE;
    if (asprintf(&j->note,
                 "%s keeps referrers itself (OCI-Subject, or its referrers API answers): no "
                 "fallback tag",
                 j->run->registry) < 0)
        j->note = NULL;
    oc_push_job_finish(j);
}

static void on_put(void *opaque, const char *oci_subject, const oc_error *err)
{
    image_job *j = opaque;
    (void)oci_subject;
    if (err) {
        oc_push_job_fail(j, err);
    } else {
        j->status = OC_PUSH_PUSHED;
        j->manifests_put++;
    }
    oc_push_job_finish(j);
}

/* The "manifests" of an index document, or NULL. */
static json_t *listing(const char *body, size_t len)
{
    json_t *doc = body ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *list = json_object_get(doc, "manifests");
    if (list)
        json_incref(list);
    json_decref(doc);
    return json_is_array(list) ? list : (json_decref(list), NULL);
}

static int lists(json_t *list, const char *digest)
{
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        const char *dg = json_string_value(json_object_get(d, "digest"));
        if (dg && strcmp(dg, digest) == 0)
            return 1;
    }
    return 0;
}

/* Does a list name exactly the digests of b (as sets)? */
static int same_set(json_t *a, json_t *b)
{
    size_t i;
    json_t *d;
    json_array_foreach(a, i, d)
    {
        const char *dg = json_string_value(json_object_get(d, "digest"));
        if (!dg || !lists(b, dg))
            return 0;
    }
    json_array_foreach(b, i, d)
    {
        const char *dg = json_string_value(json_object_get(d, "digest"));
        if (!dg || !lists(a, dg))
            return 0;
    }
    return 1;
}

static void put_index(image_job *j, const char *body, size_t len, const char *note)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(body, len, hex);
    free(j->digest);
    free(j->media_type);
    j->media_type = strdup(OC_MT_OCI_INDEX);
    if (asprintf(&j->digest, "sha256:%s", hex) < 0)
        j->digest = NULL;
    if (note && asprintf(&j->note, "%s", note) < 0)
        j->note = NULL;
    oc_error err;
    oc_error_clear(&err);
    if (!j->digest || !j->media_type) {
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        oc_push_job_fail(j, &err);
        oc_push_job_finish(j);
        return;
    }
    if (oc_upload_manifest(j->run->r, j->repo, j->tag, OC_MT_OCI_INDEX, body, len, j->digest,
                           on_put, j, &err) != 0) {
        oc_push_job_fail(j, &err);
        oc_push_job_finish(j);
    }
}

/* The target's sha256-<hex> (or none): merge, then put what is new. */
static void on_existing(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                        const oc_error *call_err)
{
    image_job *j = opaque;
    (void)info;
    oc_error err;
    oc_error_clear(&err);
    if (call_err && call_err->code != OC_E_NOTFOUND) {
        err = *call_err;
        oc_error_prefix(&err, "the target's fallback tag");
        oc_push_job_fail(j, &err);
        oc_push_job_finish(j);
        return;
    }
    json_t *existing = call_err ? json_array() : listing(body, len);
    if (!existing) {
        oc_error_set(&err, OC_E_FORMAT,
                     "%s is not an image index: the referrers fallback tag cannot be merged",
                     j->target);
        oc_push_job_fail(j, &err);
        oc_push_job_finish(j);
        return;
    }
    json_t *source = listing(j->fallback_body, j->fallback_len);
    /* ours, as the source listed them where it did */
    json_t *wanted = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(j->fallback_descs, i, d)
    {
        const char *dg = json_string_value(json_object_get(d, "digest"));
        json_t *use = d;
        size_t k;
        json_t *s;
        json_array_foreach(source, k, s)
        {
            const char *sd = json_string_value(json_object_get(s, "digest"));
            if (dg && sd && strcmp(dg, sd) == 0)
                use = s;
        }
        json_array_append(wanted, use);
    }
    json_t *merged = json_deep_copy(existing);
    size_t added = 0;
    json_array_foreach(wanted, i, d)
    {
        const char *dg = json_string_value(json_object_get(d, "digest"));
        if (dg && !lists(merged, dg)) {
            json_array_append(merged, d);
            added++;
        }
    }
    if (added == 0) {
        j->status = OC_PUSH_UP_TO_DATE; /* it lists them already */
        oc_push_job_finish(j);
    } else if (source && same_set(source, merged)) {
        /* exactly what the source listed: its bytes, its digest */
        put_index(j, j->fallback_body, j->fallback_len, NULL);
    } else {
        json_t *doc = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType", OC_MT_OCI_INDEX,
                                "manifests", merged);
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        char note[300];
        snprintf(note, sizeof note,
                 "the fallback index lists %zu referrer(s): %zu the target listed, %zu added%s",
                 json_array_size(merged), json_array_size(existing), added,
                 source ? " (not the source's index: the target's or the store's differ)"
                        : " (made here: the source listed them through its referrers API)");
        if (!text) {
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
            oc_push_job_fail(j, &err);
            oc_push_job_finish(j);
        } else {
            put_index(j, text, strlen(text), note);
        }
        free(text);
        json_decref(doc);
    }
    json_decref(merged);
    json_decref(wanted);
    json_decref(source);
    json_decref(existing);
}

static void read_fallback(image_job *j)
{
    oc_error err;
    oc_error_clear(&err);
    if (oc_registry_fetch_small(j->run->r, j->repo, "manifests", j->tag, OC_MT_OCI_INDEX,
                                OC_MANIFEST_MAX, on_existing, j, &err) != 0) {
        oc_push_job_fail(j, &err);
        oc_push_job_finish(j);
    }
}

static void on_probe(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                     const oc_error *call_err)
{
    image_job *j = opaque;
    push_run *run = j->run;
    json_t *list = call_err ? NULL : listing(body, len);
    const char *ct = info ? info->content_type : NULL;
    int is_index = list && ct && strncmp(ct, OC_MT_OCI_INDEX, strlen(OC_MT_OCI_INDEX)) == 0;
    json_decref(list);
    run->target_asking = 0;
    if (is_index)
        run->target_api = 1;
    else if (!call_err || call_err->code == OC_E_NOTFOUND || call_err->code == OC_E_HTTP)
        run->target_api = 2; /* 404, 405, a page that is no index: no referrers API */
    if (run->target_api)
        oc_engine_log(run->e, "%s %s the referrers API", run->registry,
                      run->target_api == 1 ? "answers" : "does not answer");
    image_job **waiting = run->probe_waiters;
    size_t n = run->n_probe_waiters;
    run->probe_waiters = NULL;
    run->n_probe_waiters = 0;
    if (run->target_api == 0) {
        oc_error err = *call_err;
        oc_error_prefix(&err, "asking %s for its referrers API", run->registry);
        oc_push_job_fail(j, &err);
        oc_push_job_finish(j);
    } else {
        oc_push_fallback_send(j);
    }
    for (size_t i = 0; i < n; i++)
        oc_push_fallback_send(waiting[i]);
    free(waiting);
}

void oc_push_fallback_send(image_job *j)
{
    push_run *run = j->run;
    oc_error err;
    oc_error_clear(&err);
    if (run->target_api == 1) {
        keeps_them(j);
    } else if (run->target_api == 2) {
        read_fallback(j);
    } else if (run->target_asking) {
        image_job **grown = realloc(run->probe_waiters, sizeof *grown * (run->n_probe_waiters + 1));
        if (!grown) {
            oc_error_set(&err, OC_E_NOMEM, "out of memory");
            oc_push_job_fail(j, &err);
            oc_push_job_finish(j);
            return;
        }
        run->probe_waiters = grown;
        run->probe_waiters[run->n_probe_waiters++] = j;
    } else {
        run->target_asking = 1;
        if (oc_registry_fetch_small(run->r, j->repo, "referrers", j->subject, OC_MT_OCI_INDEX,
                                    OC_MANIFEST_MAX, on_probe, j, &err) != 0) {
            run->target_asking = 0;
            oc_push_job_fail(j, &err);
            oc_push_job_finish(j);
        }
    }
}
