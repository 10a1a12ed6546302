/* engine.c - the shared run context (see engine.h) and the public engine
 * calls of occystrap.h: made on the caller's loop, closed with a callback
 * once every handle it opened is closed, events to the caller's callback. */
#include "engine/registry/engine.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/image/limits.h"
#include "engine/registry/registry.h"
#include "io/version.h"

static void trace_line(void *opaque, const char *line)
{
    const oc_engine *e = opaque;
    oc_event ev = {.kind = OC_EVENT_LOG, .level = OC_LOG_TRACE, .message = line};
    oc_engine_emit(e, &ev);
}

int oc_engine_init(oc_engine *e, uv_loop_t *loop, const oc_engine_opts *opts, oc_error *err)
{
    memset(e, 0, sizeof *e);
    e->loop = loop;
    e->opts = *opts;
    if (e->opts.retry.max_attempts <= 0)
        oc_retry_policy_default(&e->opts.retry);
    if (e->opts.stall_seconds <= 0)
        e->opts.stall_seconds = OC_DEFAULT_STALL_SECONDS;
    if (!e->opts.jobs)
        e->opts.jobs = OC_DEFAULT_JOBS;
    if (!e->opts.per_registry)
        e->opts.per_registry = OC_DEFAULT_PER_REGISTRY;
    if (e->opts.rate_wait_ms == 0)
        e->opts.rate_wait_ms = OC_DEFAULT_RATE_WAIT_SECONDS * 1000;
    e->opts.retry.retry_after_cap_ms = e->opts.rate_wait_ms; /* one bound on every wait */
    e->started_ms = uv_now(e->loop);
    e->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)e;
    char ua[64];
    snprintf(ua, sizeof ua, "occystrap/%s", oc_version());
    oc_http_opts hopts = {
        /* the limiter caps requests; curl's caps are a backstop, twice as
         * large, so that a relay's GET, which rides on its PATCH's slot
         * (relay.h), always finds a connection */
        .max_host_connections = 2 * (long)e->opts.per_registry,
        .max_total_connections = 2 * (long)e->opts.jobs,
        .user_agent = ua,
        .verbose = e->opts.verbose > 1,
        .trace = trace_line,
        .trace_opaque = e,
    };
    e->http = oc_http_new(e->loop, &hopts, err);
    e->limiter = oc_limiter_new(e->opts.jobs, e->opts.per_registry);
    e->pipes = e->http ? oc_blobpipe_ctx_new(e->loop, &e->opts.pipe, err) : NULL;
    if (!e->http || !e->limiter || !e->pipes) {
        if (err && err->code == OC_OK)
            oc_error_set(err, OC_E_NOMEM, "out of memory");
        oc_http_close(e->http, NULL, NULL);
        oc_blobpipe_ctx_close(e->pipes, NULL, NULL);
        oc_limiter_close(e->limiter);
        oc_limiter_free(e->limiter);
        e->http = NULL;
        e->pipes = NULL;
        e->limiter = NULL;
        return -1;
    }
    return 0;
}

static const char *signal_name(int signum)
{
    return signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : "a signal";
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
    /* a hook may remove itself */
    for (oc_engine_hook *h = e->hooks, *next; h; h = next) {
        next = h->next;
        h->interrupt(h->opaque, signum);
    }
}

void oc_engine_hook_add(oc_engine *e, oc_engine_hook *h)
{
    h->next = e->hooks;
    e->hooks = h;
}

void oc_engine_hook_remove(oc_engine *e, oc_engine_hook *h)
{
    for (oc_engine_hook **p = &e->hooks; *p; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            return;
        }
    }
}

int oc_engine_interrupted(const oc_engine *e)
{
    return e->interrupted;
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

void oc_engine_emit(const oc_engine *e, oc_event *ev)
{
    if (!e->on_event)
        return;
    uv_update_time(e->loop);
    ev->seconds = (double)(uv_now(e->loop) - e->started_ms) / 1000.0;
    e->on_event(ev, e->event_opaque);
}

static void say(const oc_engine *e, oc_log_level level, const char *fmt, va_list ap)
{
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    oc_event ev = {.kind = OC_EVENT_LOG, .level = level, .message = line};
    oc_engine_emit(e, &ev);
}

void oc_engine_say(const oc_engine *e, oc_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(e, level, fmt, ap);
    va_end(ap);
}

void oc_engine_log(const oc_engine *e, const char *fmt, ...)
{
    if (!e->opts.verbose || !e->on_event)
        return;
    va_list ap;
    va_start(ap, fmt);
    say(e, OC_LOG_DEBUG, fmt, ap);
    va_end(ap);
}

/* ---- the public engine ---- */

void oc_engine_options_init(oc_engine_options *o)
{
    memset(o, 0, sizeof *o);
    o->api_version = OCCYSTRAP_API_VERSION;
}

int oc_engine_new(uv_loop_t *loop, const oc_engine_options *o, oc_engine **out, oc_error *err)
{
    *out = NULL;
    if (!loop || !o || o->api_version != OCCYSTRAP_API_VERSION) {
        oc_error_set(err, OC_E_USAGE,
                     "oc_engine_new: options of API version %d, this library is version %d "
                     "(fill them with oc_engine_options_init)",
                     o ? o->api_version : 0, OCCYSTRAP_API_VERSION);
        return -1;
    }
    if (o->password && !o->username) {
        oc_error_set(err, OC_E_USAGE, "a password needs a username");
        return -1;
    }
    oc_engine *e = malloc(sizeof *e);
    if (!e) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    oc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (o->config_file && oc_config_load(&cfg, o->config_file, err) != 0) {
        free(e);
        return -1;
    }
    oc_engine_opts eo = {
        .ca_file = o->ca_file,
        .insecure = o->insecure,
        .username = o->username,
        .password = o->password,
        .jobs = o->jobs ? o->jobs : cfg.jobs,
        .per_registry = o->per_registry,
        .stall_seconds = o->stall_seconds ? o->stall_seconds : cfg.stall_timeout,
        .rate_wait_ms =
            (uint64_t)(o->rate_limit_wait_s ? o->rate_limit_wait_s : cfg.rate_limit_wait) * 1000,
        .verbose = o->verbose,
        .pipe = {.chunk_size = o->pipe_chunk_size,
                 .in_chunks = o->pipe_in_chunks,
                 .out_bufs = o->pipe_out_bufs,
                 .threads = o->pipe_threads,
                 .write_mode = o->pipe_write >= OC_WRITE_AUTO && o->pipe_write <= OC_WRITE_BUFFERED
                                   ? (oc_write_mode)o->pipe_write
                                   : OC_WRITE_AUTO},
    };
    oc_retry_policy_default(&eo.retry);
    if (o->retries > 0)
        eo.retry.max_attempts = o->retries;
    else if (cfg.retries > 0)
        eo.retry.max_attempts = cfg.retries;
    if (oc_engine_init(e, loop, &eo, err) != 0) {
        oc_config_free(&cfg);
        free(e);
        return -1;
    }
    e->config = cfg;
    e->opts.config = o->config_file ? &e->config : NULL;
    if (o->random_seed)
        e->rng = o->random_seed;
    e->on_event = o->on_event;
    e->event_opaque = o->event_opaque;
    *out = e;
    return 0;
}

static void subsystem_closed(void *opaque)
{
    oc_engine *e = opaque;
    if (--e->closes_pending > 0)
        return;
    void (*closed)(void *) = e->closed;
    void *closed_opaque = e->closed_opaque;
    for (int i = 0; i < e->n_registries; i++)
        oc_registry_free(e->registries[i]);
    free(e->registries);
    oc_config_free(&e->config);
    free(e);
    if (closed)
        closed(closed_opaque);
}

void oc_engine_close(oc_engine *e, void (*closed)(void *opaque), void *opaque)
{
    if (!e || e->closing)
        return;
    e->closing = 1;
    e->closed = closed;
    e->closed_opaque = opaque;
    oc_http_stats st;
    oc_http_get_stats(e->http, &st);
    oc_engine_log(
        e, "http: %" PRIu64 " transfers, %" PRIu64 " new connections, %" PRIu64 " body bytes",
        st.transfers, st.connects, st.bytes);
    for (int i = 0; i < e->n_registries; i++)
        oc_registry_close(e->registries[i]); /* their budgets' timers free themselves */
    oc_limiter_close(e->limiter);            /* its timer frees itself */
    oc_limiter_free(e->limiter);
    e->limiter = NULL;
    e->closes_pending = 2;
    oc_http_close(e->http, subsystem_closed, e);
    oc_blobpipe_ctx_close(e->pipes, subsystem_closed, e);
}
