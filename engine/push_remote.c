/* push_remote.c - push jobs from a list of registry images: mirror LIST
 * --to REGISTRY[/PREFIX], registry to registry without a store.
 *
 * An entry: HEAD of its tag in the source (a digest entry skips it) -> HEAD
 * of the same tag in the target: the same digest means up to date, and
 * nothing more is asked -> GET of the manifest by digest from the source
 * (its bytes must hash to the digest) -> an index: every child by digest
 * (each checked), or with a platform asked for, that platform's manifest
 * alone, which then goes under the tag -> push.c sends it, each blob
 * streamed from the source's GET into the target's upload by a relay
 * (relay.h), its digest checked before the upload is committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image/limits.h"
#include "engine/image/ref.h"
#include "engine/push_job.h"
#include "io/digest.h"

static int stopped(image_job *j)
{
    oc_engine *e = j->run->e;
    if (!e->interrupted)
        return 0;
    oc_error err;
    oc_error_set(&err, OC_E_CANCELLED, "not copied: %s", e->interrupted_why);
    oc_push_job_abort(j, &err);
    return 1;
}

/* A manifest's bytes against the digest that named it. */
static int check_digest(const char *digest, const char *body, size_t len, oc_error *err)
{
    char got[OC_SHA256_HEX_LEN + 1], want[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(body, len, got);
    if (oc_digest_parse(digest, want, err) != 0)
        return -1;
    if (strcmp(got, want) != 0) {
        oc_error_set(err, OC_E_DIGEST, "manifest %s: digest mismatch: its bytes hash to sha256:%s",
                     digest, got);
        return -1;
    }
    return 0;
}

static char *copy_body(const char *body, size_t len)
{
    char *c = malloc(len + 1);
    if (c) {
        memcpy(c, body, len);
        c[len] = '\0';
    }
    return c;
}

/* ---- an index's children ---- */

static void child_settled(image_job *j)
{
    if (--j->children_pending > 0)
        return;
    if (j->status == OC_PUSH_FAILED) {
        oc_push_job_finish(j);
        return;
    }
    oc_error err;
    char *body = j->index_body;
    j->index_body = NULL;
    if (oc_push_add_manifest(j, j->digest, j->media_type, body, j->index_len, j->tag, &err) != 0) {
        oc_push_job_abort(j, &err);
        return;
    }
    oc_push_job_send_blobs(j); /* the target's tag was asked about already */
}

typedef struct child_fetch {
    image_job *j;
    char *digest;
    int alone; /* the one platform asked for: it goes under the tag */
} child_fetch;

static void on_child(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                     const oc_error *call_err)
{
    child_fetch *c = opaque;
    image_job *j = c->j;
    oc_error err;
    oc_error_clear(&err);
    oc_manifest m;
    memset(&m, 0, sizeof m);
    int parsed = 0;
    if (call_err) {
        err = *call_err;
    } else if (check_digest(c->digest, body, len, &err) == 0 &&
               oc_manifest_parse(&m, info->content_type, body, len, &err) == 0) {
        parsed = 1;
        if (m.kind != OC_MANIFEST_IMAGE)
            oc_error_set(&err, OC_E_UNSUPPORTED, "manifest %s of index %s is not an image manifest",
                         c->digest, j->digest);
        else if (oc_push_image_blobs(j, &m, &err) == 0)
            oc_push_add_manifest(j, c->digest, m.media_type, copy_body(body, len), len,
                                 c->alone ? j->tag : c->digest, &err);
    }
    if (c->alone && parsed && err.code == OC_OK) {
        free(j->digest);
        free(j->media_type);
        j->digest = strdup(c->digest);
        j->media_type = strdup(m.media_type);
    }
    if (parsed)
        oc_manifest_free(&m);
    int alone = c->alone;
    free(c->digest);
    free(c);
    if (err.code != OC_OK) {
        oc_error_prefix(&err, "%s", j->le->text);
        if (alone) {
            oc_push_job_abort(j, &err);
            return;
        }
        oc_push_job_fail(j, &err);
    }
    if (alone) {
        if (!stopped(j))
            oc_push_job_send(j); /* HEAD of the tag for the child's digest, then the rest */
        return;
    }
    child_settled(j);
}

static int fetch_child(image_job *j, const char *digest, int alone, oc_error *err)
{
    child_fetch *c = calloc(1, sizeof *c);
    if (!c || !(c->digest = strdup(digest))) {
        free(c);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    c->j = j;
    c->alone = alone;
    if (oc_registry_fetch_small(j->src, j->le->ref.repository, "manifests", digest,
                                OC_MANIFEST_ACCEPT, OC_MANIFEST_MAX, on_child, c, err) != 0) {
        free(c->digest);
        free(c);
        return -1;
    }
    return 0;
}

/* ---- the manifest ---- */

static void on_manifest(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                        const oc_error *call_err)
{
    image_job *j = opaque;
    push_run *run = j->run;
    if (stopped(j))
        return;
    oc_error err;
    oc_error_clear(&err);
    if (call_err) {
        oc_push_job_abort(j, call_err);
        return;
    }
    oc_manifest m;
    if (check_digest(j->digest, body, len, &err) != 0 ||
        oc_manifest_parse(&m, info->content_type, body, len, &err) != 0) {
        oc_error_prefix(&err, "%s", j->le->text);
        oc_push_job_abort(j, &err);
        return;
    }
    free(j->media_type);
    j->media_type = strdup(m.media_type);
    if (m.kind == OC_MANIFEST_IMAGE) {
        if (oc_push_image_blobs(j, &m, &err) != 0 ||
            oc_push_add_manifest(j, j->digest, m.media_type, copy_body(body, len), len, j->tag,
                                 &err) != 0) {
            oc_manifest_free(&m);
            oc_push_job_abort(j, &err);
            return;
        }
        oc_manifest_free(&m);
        if (run->platform)
            oc_push_job_send(j);
        else
            oc_push_job_send_blobs(j); /* the target's tag was asked about already */
        return;
    }
    if (m.kind != OC_MANIFEST_INDEX) {
        oc_error_set(&err, OC_E_UNSUPPORTED, "%s: manifest %s is neither an image nor an index",
                     j->le->text, j->digest);
        oc_manifest_free(&m);
        oc_push_job_abort(j, &err);
        return;
    }
    if (run->platform) { /* that platform's manifest alone, under the tag */
        int i = oc_manifest_select_platform(&m, run->platform, &err);
        int rc = i < 0 ? -1 : fetch_child(j, m.manifests[i].digest, 1, &err);
        oc_manifest_free(&m);
        if (rc != 0) {
            oc_error_prefix(&err, "%s", j->le->text);
            oc_push_job_abort(j, &err);
        }
        return;
    }
    j->index_body = copy_body(body, len);
    j->index_len = len;
    j->children_pending = m.n_manifests + 1; /* +1 until every fetch started */
    for (size_t i = 0; i < m.n_manifests; i++) {
        if (fetch_child(j, m.manifests[i].digest, 0, &err) != 0) {
            oc_push_job_fail(j, &err);
            j->children_pending--;
        }
    }
    oc_manifest_free(&m);
    child_settled(j);
}

static void fetch_manifest(image_job *j)
{
    oc_error err;
    if (oc_registry_fetch_small(j->src, j->le->ref.repository, "manifests", j->digest,
                                OC_MANIFEST_ACCEPT, OC_MANIFEST_MAX, on_manifest, j, &err) != 0)
        oc_push_job_abort(j, &err);
}

/* ---- what the tags name ---- */

static void on_target_head(void *opaque, const oc_reg_info *info, const oc_error *err)
{
    image_job *j = opaque;
    if (stopped(j) || oc_push_tag_answered(j, info, err))
        return;
    fetch_manifest(j);
}

static void resolved(image_job *j, const char *digest)
{
    push_run *run = j->run;
    free(j->digest);
    j->digest = strdup(digest);
    oc_error err;
    if (!j->digest) {
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        oc_push_job_abort(j, &err);
        return;
    }
    if (run->platform) { /* the tag will name a child: known after the index */
        fetch_manifest(j);
        return;
    }
    oc_push_head_target(j, j->tag, on_target_head);
}

static void on_source_manifest(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                               const oc_error *err)
{
    image_job *j = opaque;
    (void)info;
    if (stopped(j))
        return;
    if (err) {
        oc_push_job_abort(j, err);
        return;
    }
    /* no digest with the HEAD: the body's hash is the digest */
    char hex[OC_SHA256_HEX_LEN + 1], digest[8 + OC_SHA256_HEX_LEN];
    oc_sha256_buf_hex(body, len, hex);
    snprintf(digest, sizeof digest, "sha256:%s", hex);
    resolved(j, digest);
}

static void on_source_head(void *opaque, const oc_reg_info *info, const oc_error *call_err)
{
    image_job *j = opaque;
    if (stopped(j))
        return;
    oc_error err;
    if (call_err) {
        err = *call_err;
        if (err.code == OC_E_NOTFOUND)
            oc_error_set(&err, OC_E_NOTFOUND, "%s: not found in the source registry (%s)",
                         j->le->text, call_err->msg);
        oc_push_job_abort(j, &err);
        return;
    }
    char hex[OC_SHA256_HEX_LEN + 1];
    const char *d = info->docker_content_digest;
    if (d && oc_digest_parse(d, hex, &err) == 0) {
        resolved(j, d);
        return;
    }
    if (oc_registry_fetch_small(j->src, j->le->ref.repository, "manifests", j->le->ref.tag,
                                OC_MANIFEST_ACCEPT, OC_MANIFEST_MAX, on_source_manifest, j,
                                &err) != 0)
        oc_push_job_abort(j, &err);
}

void oc_push_remote_start(image_job *j)
{
    if (!j->le->ref.tag) {
        resolved(j, j->le->ref.digest);
        return;
    }
    oc_reg_call_opts co = {.method = "HEAD", .accept = OC_MANIFEST_ACCEPT};
    oc_reg_consumer c = {.on_done = on_source_head, .opaque = j};
    oc_error err;
    if (oc_registry_call(j->src, j->le->ref.repository, "manifests", j->le->ref.tag, &co, &c,
                         &err) != 0)
        oc_push_job_abort(j, &err);
}

/* ---- the jobs ---- */

int oc_push_plan_list(push_run *run, oc_error *err)
{
    for (size_t i = 0; i < run->list.n; i++) {
        const oc_list_entry *le = &run->list.entries[i];
        char *name = le->ok ? oc_ref_familiar_name(&le->ref) : NULL;
        const char *tag = !le->ok ? "?" : le->ref.tag ? le->ref.tag : le->ref.digest;
        image_job *j = oc_push_new_job(run, name ? name : le->text, tag, err);
        free(name);
        if (!j)
            return -1;
        j->le = le;
        if (!le->ok) {
            oc_error why = *le->err;
            oc_error_prefix(&why, "line %d", le->line);
            oc_push_job_fail(j, &why);
            continue;
        }
        oc_push_job_target(j);
        if (j->status == OC_PUSH_FAILED)
            continue;
        oc_error why;
        oc_error_clear(&why);
        j->src = oc_engine_registry(run->e, le->ref.registry, &why);
        if (!j->src)
            oc_push_job_fail(j, &why);
    }
    return 0;
}
