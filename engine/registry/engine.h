/* engine.h - the context every asynchronous part of a run shares: the
 * caller's libuv loop, the HTTP engine on it, the concurrency limiter, the
 * retry policy and its jitter state, the per-host registry clients, and the
 * caller's event callback. The public handle oc_engine (occystrap.h) is
 * this struct. */
#ifndef OC_ENGINE_ENGINE_H
#define OC_ENGINE_ENGINE_H

#include <uv.h>

#include "occystrap/occystrap.h"

#include "engine/registry/config.h"
#include "io/error.h"
#include "io/blobpipe.h"
#include "io/http.h"
#include "sched/limits.h"
#include "sched/retry.h"

typedef struct oc_registry oc_registry;

/* A job that is not made of registry calls (serve) hears of
 * oc_engine_interrupt through a hook: interrupt(opaque, signum) is called
 * once, after the transfers were cancelled. */
typedef struct oc_engine_hook {
    void (*interrupt)(void *opaque, int signum);
    void *opaque;
    struct oc_engine_hook *next;
} oc_engine_hook;

typedef struct oc_engine_opts {
    const char *ca_file;  /* extra CA bundle for TLS registries */
    int insecure;         /* talk plain HTTP (and skip TLS verification if https forced) */
    const char *username; /* explicit credentials, else ~/.docker/config.json */
    const char *password;
    unsigned jobs;         /* global cap on requests in flight; 0 = 32 */
    unsigned per_registry; /* cap per registry host; 0 = 8 */
    long stall_seconds;    /* abort and retry a transfer idle this long; 0 = 30 */
    int verbose;
    oc_retry_policy retry;
    oc_blobpipe_opts pipe;   /* buffer sizes and threads of the layer pipeline */
    const oc_config *config; /* per-registry settings (--config), or NULL */
    /* The longest a request waits for a registry's rate limit to give some
     * back, and the longest Retry-After obeyed; 0 = 60 s. */
    uint64_t rate_wait_ms;
} oc_engine_opts;

struct oc_engine {
    uv_loop_t *loop; /* the caller's */
    oc_http *http;
    oc_limiter *limiter;
    oc_blobpipe_ctx *pipes;
    oc_engine_opts opts;
    oc_config config; /* loaded from the options' config_file, owned */
    oc_registry **registries;
    int n_registries;
    uint64_t started_ms; /* loop time at init, for event timestamps */
    uint64_t rng;        /* retry jitter (sched/retry.h oc_rng_next) */
    /* Interruption (oc_engine_interrupt): the signal taken (-1 for none
     * named), 0 while the run goes on. */
    int interrupted;
    char interrupted_why[64]; /* "interrupted by SIGTERM" */
    oc_event_cb on_event;
    void *event_opaque;
    oc_engine_hook *hooks; /* told of an interrupt */
    /* oc_engine_close: the subsystems still closing, and who to tell. */
    int closing;
    int closes_pending;
    void (*closed)(void *opaque);
    void *closed_opaque;
};

/* Set up e on the caller's loop (e is the caller's memory). */
int oc_engine_init(oc_engine *e, uv_loop_t *loop, const oc_engine_opts *opts, oc_error *err);
/* The client for a registry (as named in references: endpoint rewrites,
 * TLS, credentials and caps come from the config), created on first use. */
oc_registry *oc_engine_registry(oc_engine *e, const char *host, oc_error *err);
/* oc_engine_interrupt and oc_engine_interrupted are public (occystrap.h). */
/* Add (the caller's memory) and remove an interrupt hook. */
void oc_engine_hook_add(oc_engine *e, oc_engine_hook *h);
void oc_engine_hook_remove(oc_engine *e, oc_engine_hook *h);

/* Hand an event to the caller (its seconds are filled in here). */
void oc_engine_emit(const oc_engine *e, oc_event *ev);
/* A log event at level: always sent (the caller filters). */
void oc_engine_say(const oc_engine *e, oc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A DEBUG log event, only when verbose (building the line costs). */
void oc_engine_log(const oc_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
