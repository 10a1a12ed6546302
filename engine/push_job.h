/* push_job.h - the push run and its image jobs, shared by engine/push.c
 * (the run, each job's requests to the target, the report), push_store.c
 * (jobs from a store's exact bytes) and push_remote.c (jobs from a list of
 * registry images: mirror --to). Private to those files.
 *
 * A job is planned first: its manifests to put (an index's children before
 * the index; the last one under the tag) and its blobs. A store job is
 * planned from the store before any request; a list job from the source
 * registry (push_remote.c). Then push.c sends it: HEAD of the tag in the
 * target, each blob (owned by one job of the run at a time), the
 * manifests. */
#ifndef OC_ENGINE_PUSH_JOB_H
#define OC_ENGINE_PUSH_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "engine/image/manifest.h"
#include "engine/jobrun.h"
#include "engine/listfile.h"
#include "engine/registry/engine.h"
#include "engine/registry/registry.h"
#include "engine/registry/relay.h"
#include "engine/store/catalog.h"
#include "engine/store/oci_read.h"
#include "engine/store/store.h"
#include "occystrap/occystrap.h"
#include "sched/once.h"

typedef struct push_run push_run;
typedef struct image_job image_job;

/* One blob one image needs. */
typedef struct blob_need {
    image_job *job;
    char *digest;
    uint64_t size;
    oc_once_waiter waiter;      /* for the run's owner of the digest */
    oc_once_waiter repo_waiter; /* for the job putting it into this repository */
    char *repo_key;             /* "REPOSITORY DIGEST" */
    int owner_repo;             /* this job puts it into the repository for the run */
    int fd;                     /* store jobs: open while a request carries its bytes */
    oc_relay *relay;            /* list jobs: its bytes streamed from the source registry */
    int owner;                  /* this job uploads it for the run */
    int started;                /* bytes went out: BLOB_STARTED was sent */
} blob_need;

/* One manifest to put, in order: an index's children, then the index. */
typedef struct man_put {
    char *digest;
    char *media_type;
    char *body;
    size_t len;
    char *reference; /* the tag (the last one), or the digest */
} man_put;

/* What a job puts: an image (its tag), or what goes with one (7.6):
 * a referrer manifest (by digest), a cosign tag (sha256-<hex>.sig, by
 * tag), the referrers fallback tag (sha256-<hex>, an index merged with what
 * the target lists there). */
typedef enum job_kind { JOB_IMAGE = 0, JOB_REFERRER, JOB_TAG, JOB_FALLBACK } job_kind;

struct image_job {
    push_run *run;
    job_kind kind;
    char *subject;       /* referrers and tags: the digest they refer to */
    char *artifact_type; /* referrers: their artifactType, or NULL */
    size_t waits;        /* jobs to finish first: its subject's, a fallback's referrers */
    image_job **followers;
    size_t n_followers;
    int started;
    /* a fallback tag: the index the store holds (the source's bytes), or
     * NULL; the descriptors of the referrers it must list */
    char *fallback_body;
    size_t fallback_len;
    json_t *fallback_descs;
    char *name; /* the store's image name, or the source's familiar name (list jobs) */
    char *tag;
    /* list jobs (mirror --to): where the image comes from */
    const oc_list_entry *le; /* NULL for a store job */
    oc_registry *src;
    char *index_body; /* an index being read, while its children are fetched */
    size_t index_len;
    size_t children_pending;
    uint64_t b_fetched; /* bytes read from the source registry */
    char *repo;         /* in the target */
    char *target;       /* "REGISTRY/REPO:TAG" for the report */
    char *digest;       /* what the tag will name */
    char *media_type;
    oc_push_status status;
    oc_error err;
    char *note;
    blob_need *blobs;
    size_t n_blobs;
    size_t blobs_pending;
    man_put *mans;
    size_t n_mans;
    size_t next_man;
    size_t manifests_put;
    size_t n_uploaded, n_mounted, n_present;
    uint64_t b_uploaded, b_mounted, b_present;
    uint64_t started_ms, ended_ms;
    int finished;
};

struct push_run {
    oc_engine *e;
    oc_push_done_cb done;
    void *done_opaque;
    char *store_dir;       /* a store's exact bytes, or NULL: */
    oc_list list;          /* a list of registry images (mirror --to) */
    oc_platform *platform; /* list jobs: the one platform of an index to copy, or NULL: all */
    char *registry;        /* the target's host[:port] as given */
    char *prefix;          /* or NULL */
    int keep_host;
    uint64_t chunk;
    oc_jobrun jr; /* the run's own failure, its deferred finish */
    oc_store *store;
    oc_oci_layout layout;
    oc_registry *r;
    image_job **jobs;
    size_t n_jobs;
    size_t finished, failed, interrupted;
    oc_once *owners;    /* blob digest -> a repository of the target that holds it */
    json_t *candidates; /* blob digest -> a repository other images of the store map to */
    /* Does the target keep referrers itself (a manifest PUT answered
     * OCI-Subject, or its referrers API answered)? 0 unknown, 1 yes, 2 no;
     * target_asking: the probe is out, fallback jobs wait (probe_waiters). */
    int target_api;
    int target_asking;
    image_job **probe_waiters;
    size_t n_probe_waiters;
};

/* ---- push.c ---- */

image_job *oc_push_new_job(push_run *run, const char *name, const char *tag, oc_error *err);
/* The job's repository in the target and its name in the report (a name
 * that maps to no repository fails the job). */
void oc_push_job_target(image_job *j);
char *oc_push_target_repository(push_run *run, const char *name, oc_error *err);
void oc_push_job_fail(image_job *j, const oc_error *err);
/* Failed for err, and over. */
void oc_push_job_abort(image_job *j, const oc_error *err);
/* Failed (or up to date), reported: the job is over. */
void oc_push_job_finish(image_job *j);
/* A blob the job sends (once however often it is listed); a store job's
 * must be in the store with its size. */
int oc_push_add_blob(image_job *j, const oc_descriptor *d, oc_error *err);
/* The config and layers of an image manifest. */
int oc_push_image_blobs(image_job *j, const oc_manifest *m, oc_error *err);
/* A manifest to put (body is taken, freed on failure too). */
int oc_push_add_manifest(image_job *j, const char *digest, const char *media_type, char *body,
                         size_t len, const char *reference, oc_error *err);
/* Planned: HEAD of the tag (the same digest there: up to date), then the
 * blobs and the manifests. */
void oc_push_job_send(image_job *j);
/* Planned, and the tag is known not to name the digest: the blobs and the
 * manifests. */
void oc_push_job_send_blobs(image_job *j);
/* HEAD of reference (the tag) in the job's repository of the target,
 * answered to on_done (a failed request aborts the job). */
void oc_push_head_target(image_job *j, const char *reference,
                         void (*on_done)(void *opaque, const oc_reg_info *info,
                                         const oc_error *err));
/* That HEAD's answer: 1 when it ends the job (an error, or the tag names the
 * job's digest in the target already: up to date), 0 when the job goes on. */
int oc_push_tag_answered(image_job *j, const oc_reg_info *info, const oc_error *err);
/* f waits for j: started when j is pushed (or up to date), failed when j
 * fails. */
int oc_push_job_after(image_job *f, image_job *j, oc_error *err);

/* ---- push_store.c ---- */

/* One job per image and tag of the store (images: IMAGE[:TAG] arguments,
 * none = all); catalog images without exact bytes fail as jobs. */
int oc_push_plan_store(push_run *run, const char *const *images, size_t n, const oc_catalog *cat,
                       oc_error *err);
/* Mount candidates from the store's images that are not in the run. */
void oc_push_collect_candidates(push_run *run);
/* The referrers of the run's images (signatures, SBOMs, attestations),
 * their cosign tags and fallback tags: jobs that follow their subjects'. */
int oc_push_plan_referrers(push_run *run, oc_error *err);

/* ---- push_referrers.c ---- */

/* A fallback tag's job: does the target keep referrers itself? else its
 * sha256-<hex> tag, merged with what the target lists there. */
void oc_push_fallback_send(image_job *j);

/* ---- push_remote.c ---- */

/* One job per entry of run->list. */
int oc_push_plan_list(push_run *run, oc_error *err);
/* Read the job's manifests from the source registry, then send it. */
void oc_push_remote_start(image_job *j);

#endif
