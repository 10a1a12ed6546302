/* registry.h - the registry v2 API client for one host.
 *
 * A call is one logical request (GET or HEAD of a manifest or blob) that the
 * client carries through everything between it and an answer: a slot under
 * the host's concurrency cap, the bearer flow (401 + WWW-Authenticate ->
 * token from the realm, Basic to the realm when credentials exist, tokens
 * cached per scope until expires_in), Basic-only registries, redirects to
 * blob storage (Authorization never crosses to another host), and retries
 * with backoff on connection errors, stalls, 5xx and 429 (Retry-After
 * honoured). A broken blob body is resumed with Range from the bytes the
 * consumer already accepted; Content-Range is validated, and a 200 answer to
 * a Range request makes the consumer start over at 0. A redirect target that
 * refuses its signed URL (expired) sends the call back to the registry for
 * a fresh redirect, a few times. A registry that speaks of a rate limit
 * (RateLimit-Remaining, 429 TOOMANYREQUESTS) gets a budget
 * (sched/budget.h) that the requests it counts, GETs of manifests, wait
 * for or are refused by; the others never wait for it. */
#ifndef OC_ENGINE_REGISTRY_H
#define OC_ENGINE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/registry/engine.h"

typedef struct reg_call oc_reg_call;

typedef struct oc_reg_info {
    oc_reg_call *call; /* the call this is about: for oc_reg_call_unpause */
    long status;
    char *content_type;
    char *docker_content_digest;
    char *link;             /* the Link header (tags/list pagination), or NULL */
    int64_t content_length; /* of the whole entity, -1 if unknown */
    long http_version;
    long local_port;
    int attempts;
    uint64_t bytes_received; /* body bytes over all attempts */
    int resumed;             /* a Range request continued the body */
    char *location;          /* Location of a 2xx answer (an upload's URL), or NULL */
    char *range;             /* Range of a 2xx answer (an upload's "0-N"), or NULL */
    char *oci_subject;       /* OCI-Subject of a manifest PUT: the registry took the
                                manifest's subject (it keeps referrers itself), or NULL */
} oc_reg_info;

typedef struct oc_reg_consumer {
    /* A response body starts at offset (0, or the resume point the client
     * asked for with Range). The consumer must drop anything it holds past
     * offset. Return -1 with err set to refuse. */
    int (*on_begin)(void *opaque, uint64_t offset, const oc_reg_info *info, oc_error *err);
    /* 0: taken; 1: none taken, pause the transfer until oc_reg_call_unpause;
     * -1 with err set: refuse (the call ends with that error, no retry). */
    int (*on_body)(void *opaque, const char *data, size_t len, oc_error *err);
    /* Final outcome; err is NULL on success. */
    void (*on_done)(void *opaque, const oc_reg_info *info, const oc_error *err);
    void *opaque;
} oc_reg_consumer;

typedef struct oc_reg_call_opts {
    const char *method;   /* "GET" (default), "HEAD"; uploads: "POST", "PUT", "PATCH", "DELETE" */
    const char *accept;   /* Accept header, or NULL */
    int resumable;        /* retry a broken body with Range */
    uint64_t resume_from; /* start with a Range request (bytes already on disk) */
    /* For uploads (upload.h): */
    const char *url;           /* instead of /v2/<repo>/<kind>/<reference>: a path on this
                                * registry ("/v2/..."), or an absolute URL (a Location) */
    const char *scope;         /* token scopes, space-separated, instead of
                                * "repository:<repo>:pull" */
    const oc_http_body *body;  /* the request body (copied; its source lives until on_done) */
    const char *content_type;  /* Content-Type of the body */
    const char *content_range; /* Content-Range ("FROM-TO" of a PATCH) */
    int no_retry;              /* a send without an answer (connection, stall), a 5xx or a
                                * 429 ends the call: the caller asks the registry what it
                                * kept before sending again (an upload session) */
    void (*on_sent)(void *opaque, size_t n); /* body bytes sent, with consumer.opaque */
    /* Takes no slot of the limiter: it rides on one its caller holds (a
     * relay's GET on its upload's PATCH; taking a second slot while holding
     * one could wait forever). */
    int no_slot;
    uint64_t start_after_ms; /* wait this long before the first send */
} oc_reg_call_opts;

oc_registry *oc_registry_new(oc_engine *e, const char *host, oc_error *err);
void oc_registry_free(oc_registry *r);
const char *oc_registry_host(const oc_registry *r);
oc_engine *oc_registry_engine(const oc_registry *r);
/* The engine was interrupted: calls waiting to retry or for the rate limit
 * end now with OC_E_CANCELLED (oc_engine_interrupt calls this). */
void oc_registry_interrupt(oc_registry *r);
/* Close the handles it owns (its rate-limit timer); the loop must run
 * before oc_registry_free (oc_engine_destroy does both). */
void oc_registry_close(oc_registry *r);

/* HEAD of a manifest does not work on this registry (it answered 405, or
 * 404 where GET found the manifest): ask with GET for the rest of the run. */
int oc_registry_head_refused(const oc_registry *r);
void oc_registry_set_head_refused(oc_registry *r, long status);

/* Start GET/HEAD /v2/<repo>/<kind>/<reference>; kind is "manifests" or
 * "blobs". Returns -1 (consumer never called) only if it cannot start. */
int oc_registry_call(oc_registry *r, const char *repo, const char *kind, const char *reference,
                     const oc_reg_call_opts *opts, const oc_reg_consumer *consumer, oc_error *err);

/* Convenience: fetch a small document (manifest, config) into memory, at
 * most max bytes. done gets the body (owned by the callee, valid during the
 * callback) or an error. */
typedef void (*oc_reg_small_done)(void *opaque, const char *body, size_t len,
                                  const oc_reg_info *info, const oc_error *err);
int oc_registry_fetch_small(oc_registry *r, const char *repo, const char *kind,
                            const char *reference, const char *accept, size_t max,
                            oc_reg_small_done done, void *opaque, oc_error *err);

void oc_reg_info_free(oc_reg_info *info);

/* Resume a body paused by on_body returning 1. Harmless when the transfer
 * has ended meanwhile. */
void oc_reg_call_unpause(oc_reg_call *call);

#endif
