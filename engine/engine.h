/* engine.h - the context every asynchronous part of a run shares: the libuv
 * loop, the HTTP engine on it, the concurrency limiter, the retry policy and
 * the per-host registry clients. One per process run. */
#ifndef OC_ENGINE_ENGINE_H
#define OC_ENGINE_ENGINE_H

#include <uv.h>

#include "engine/config.h"
#include "io/error.h"
#include "io/blobpipe.h"
#include "io/http.h"
#include "sched/limits.h"
#include "sched/retry.h"

typedef struct oc_registry oc_registry;

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

typedef struct oc_engine {
    uv_loop_t *loop;
    oc_http *http;
    oc_limiter *limiter;
    oc_blobpipe_ctx *pipes;
    oc_engine_opts opts;
    oc_registry **registries;
    int n_registries;
    uint64_t started_ms; /* loop time at init, for log timestamps */
    /* Interruption (SIGINT/SIGTERM, see oc_engine_catch_signals): the
     * signal taken, 0 while the run goes on. */
    int interrupted;
    char interrupted_why[64]; /* "interrupted by SIGTERM" */
    uv_signal_t *signals;     /* SIGINT and SIGTERM watchers, or NULL */
    int signals_open;         /* of them, not yet closed */
} oc_engine;

int oc_engine_init(oc_engine *e, const oc_engine_opts *opts, oc_error *err);
/* Closes the HTTP engine and runs the loop until every handle is closed. */
void oc_engine_destroy(oc_engine *e);
/* The client for a registry (as named in references: endpoint rewrites,
 * TLS, credentials and caps come from the config), created on first use. */
oc_registry *oc_engine_registry(oc_engine *e, const char *host, oc_error *err);
/* Take SIGINT and SIGTERM on the loop: the first one interrupts the run
 * (oc_engine_interrupt) and says so on stderr; the watchers then stop, so a
 * second signal ends the process at once. Signals that arrive before the
 * loop runs are taken when it does. */
int oc_engine_catch_signals(oc_engine *e, oc_error *err);
/* The run's work is over (its loop returned): take a signal that arrived
 * in the loop's last turn (the run then counts as interrupted), and give
 * SIGINT and SIGTERM back their default action, so one arriving from now on
 * ends the process at once instead of being caught and never acted on. */
void oc_engine_release_signals(oc_engine *e);
/* Stop the run: every transfer is cancelled and no new one starts (each
 * fails with OC_E_CANCELLED "interrupted by SIG..."), retries are not
 * made; work already verified stays, what was in flight is abandoned by its
 * owner as on any failure. signum is the cause (0: none named). */
void oc_engine_interrupt(oc_engine *e, int signum);
/* Debug line to stderr when verbose. */
void oc_engine_log(const oc_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
