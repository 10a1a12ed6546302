/* engine.c - the shared run context (see engine.h). */
#include "engine/engine.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/registry.h"
#include "engine/version.h"

int oc_engine_init(oc_engine *e, const oc_engine_opts *opts, oc_error *err)
{
    memset(e, 0, sizeof *e);
    e->opts = *opts;
    if (e->opts.retry.max_attempts <= 0)
        oc_retry_policy_default(&e->opts.retry);
    if (e->opts.stall_seconds <= 0)
        e->opts.stall_seconds = 30;
    if (e->opts.rate_wait_ms == 0)
        e->opts.rate_wait_ms = 60000;
    e->opts.retry.retry_after_cap_ms = e->opts.rate_wait_ms; /* one bound on every wait */
    e->loop = malloc(sizeof *e->loop);
    if (!e->loop || uv_loop_init(e->loop) != 0) {
        free(e->loop);
        e->loop = NULL;
        oc_error_set(err, OC_E_NOMEM, "cannot create the event loop");
        return -1;
    }
    e->started_ms = uv_now(e->loop);
    char ua[64];
    snprintf(ua, sizeof ua, "occystrap/%s", oc_version());
    oc_http_opts hopts = {
        .max_host_connections = e->opts.per_registry ? e->opts.per_registry : 8,
        .max_total_connections = e->opts.jobs ? e->opts.jobs : 32,
        .user_agent = ua,
        .verbose = e->opts.verbose > 1,
    };
    e->http = oc_http_new(e->loop, &hopts, err);
    e->limiter = oc_limiter_new(e->opts.jobs ? e->opts.jobs : 32,
                                e->opts.per_registry ? e->opts.per_registry : 8);
    e->pipes = oc_blobpipe_ctx_new(e->loop, &e->opts.pipe, err);
    if (!e->http || !e->limiter || !e->pipes) {
        if (err && err->code == OC_OK)
            oc_error_set(err, OC_E_NOMEM, "out of memory");
        oc_engine_destroy(e);
        return -1;
    }
    return 0;
}

static void signal_closed(uv_handle_t *h)
{
    oc_engine *e = h->data;
    if (--e->signals_open == 0) { /* libuv runs close callbacks in any order */
        free(e->signals);
        e->signals = NULL;
    }
}

static void stop_signals(oc_engine *e)
{
    if (!e->signals)
        return;
    for (int i = 0; i < 2; i++)
        if (!uv_is_closing((uv_handle_t *)&e->signals[i]))
            uv_close((uv_handle_t *)&e->signals[i], signal_closed);
}

static const char *signal_name(int signum)
{
    return signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : "a signal";
}

static void on_signal(uv_signal_t *h, int signum)
{
    oc_engine *e = h->data;
    /* closing the watchers gives the signals back their default action:
     * a second one ends the process at once */
    stop_signals(e);
    fprintf(stderr,
            "occystrap: %s received: stopping; downloads in flight are abandoned, what "
            "verified is kept (send it again to exit at once)\n",
            signal_name(signum));
    oc_engine_interrupt(e, signum);
}

int oc_engine_catch_signals(oc_engine *e, oc_error *err)
{
    if (e->signals)
        return 0;
    e->signals = calloc(2, sizeof *e->signals);
    if (!e->signals) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    const int which[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(e->loop, &e->signals[i]);
        e->signals[i].data = e;
        e->signals_open++;
    }
    for (int i = 0; i < 2; i++) {
        int rc = uv_signal_start(&e->signals[i], on_signal, which[i]);
        uv_unref((uv_handle_t *)&e->signals[i]); /* they must not keep the loop alive */
        if (rc != 0) {
            oc_error_set(err, OC_E_IO, "cannot watch signal %d: %s", which[i], uv_strerror(rc));
            stop_signals(e);
            return -1;
        }
    }
    return 0;
}

void oc_engine_release_signals(oc_engine *e)
{
    if (!e->signals)
        return;
    uv_run(e->loop, UV_RUN_NOWAIT); /* a signal caught but not yet dispatched */
    stop_signals(e);
}

void oc_engine_interrupt(oc_engine *e, int signum)
{
    if (e->interrupted)
        return;
    e->interrupted = signum ? signum : -1;
    if (signum)
        snprintf(e->interrupted_why, sizeof e->interrupted_why, "interrupted by %s",
                 signal_name(signum));
    else
        snprintf(e->interrupted_why, sizeof e->interrupted_why, "interrupted");
    oc_engine_log(e, "%s: cancelling every transfer", e->interrupted_why);
    if (e->http)
        oc_http_stop(e->http, e->interrupted_why);
    for (int i = 0; i < e->n_registries; i++)
        oc_registry_interrupt(e->registries[i]);
    if (e->limiter)
        oc_limiter_drain(e->limiter);
}

void oc_engine_destroy(oc_engine *e)
{
    stop_signals(e);
    if (e->http) {
        oc_http_stats st;
        oc_http_get_stats(e->http, &st);
        oc_engine_log(
            e, "http: %" PRIu64 " transfers, %" PRIu64 " new connections, %" PRIu64 " body bytes",
            st.transfers, st.connects, st.bytes);
        oc_http_close(e->http);
    }
    if (e->pipes)
        oc_blobpipe_ctx_close(e->pipes);
    if (e->limiter)
        oc_limiter_close(e->limiter);
    for (int i = 0; i < e->n_registries; i++)
        oc_registry_close(e->registries[i]);
    if (e->loop) {
        uv_run(e->loop, UV_RUN_DEFAULT);
        uv_loop_close(e->loop);
        free(e->loop);
    }
    for (int i = 0; i < e->n_registries; i++)
        oc_registry_free(e->registries[i]);
    free(e->registries);
    oc_limiter_free(e->limiter);
    memset(e, 0, sizeof *e);
}

oc_registry *oc_engine_registry(oc_engine *e, const char *host, oc_error *err)
{
    for (int i = 0; i < e->n_registries; i++)
        if (strcmp(oc_registry_host(e->registries[i]), host) == 0)
            return e->registries[i];
    oc_registry **grown = realloc(e->registries, sizeof *grown * (size_t)(e->n_registries + 1));
    if (!grown) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    e->registries = grown;
    oc_registry *r = oc_registry_new(e, host, err);
    if (!r)
        return NULL;
    e->registries[e->n_registries++] = r;
    return r;
}

void oc_engine_log(const oc_engine *e, const char *fmt, ...)
{
    if (!e->opts.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    uv_update_time(e->loop);
    fprintf(stderr, "occystrap: [%6.3f] ", (double)(uv_now(e->loop) - e->started_ms) / 1000.0);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
