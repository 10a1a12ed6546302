/* serve.c - the serve job of occystrap.h: a store as a read-only registry
 * (engine/serve/server.h) on the engine's loop. The server's lines become
 * log events, each request an OC_EVENT_REQUEST; oc_engine_interrupt stops
 * it (through an engine hook) as oc_serve_stop does; the job ends with one
 * call of done once every connection is closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/registry/engine.h"
#include "engine/serve/server.h"
#include "occystrap/occystrap.h"

struct oc_server {
    oc_engine *e;
    oc_srv *srv;
    oc_serve_done_cb done;
    void *opaque;
    oc_engine_hook hook;
    int signal;
    char server_name[64];
};

void oc_serve_options_init(oc_serve_options *o)
{
    memset(o, 0, sizeof *o);
    o->api_version = OCCYSTRAP_API_VERSION;
}

static void on_log(void *opaque, oc_log_level level, const char *line)
{
    oc_server *s = opaque;
    oc_engine_say(s->e, level, "%s", line);
}

static void on_access(void *opaque, const char *line)
{
    oc_server *s = opaque;
    oc_event ev = {.kind = OC_EVENT_REQUEST, .message = line};
    oc_engine_emit(s->e, &ev);
}

static void on_stopped(void *opaque, const oc_srv_counts *c)
{
    oc_server *s = opaque;
    oc_engine_hook_remove(s->e, &s->hook);
    oc_serve_result res = {.signal = s->signal > 0 ? s->signal : 0,
                           .requests = c->requests,
                           .bytes = c->bytes,
                           .connections = c->connections,
                           .refused = c->refused};
    oc_event ev = {.kind = OC_EVENT_JOB_FINISHED};
    oc_engine_emit(s->e, &ev);
    oc_serve_done_cb done = s->done;
    void *done_opaque = s->opaque;
    free(s);
    done(&res, done_opaque);
}

static void on_interrupt(void *opaque, int signum)
{
    oc_server *s = opaque;
    s->signal = signum ? signum : -1;
    oc_srv_stop(s->srv);
}

int oc_serve_start(oc_engine *e, const oc_serve_options *o, oc_serve_done_cb done, void *opaque,
                   oc_server **out, oc_error *err)
{
    if (out)
        *out = NULL;
    if (!e || !o || o->api_version != OCCYSTRAP_API_VERSION || !done || !o->store_dir) {
        oc_error_set(err, OC_E_USAGE,
                     "oc_serve_start: a store and a callback are needed (options filled by "
                     "oc_serve_options_init)");
        return -1;
    }
    if (e->interrupted) {
        oc_error_set(err, OC_E_CANCELLED, "%s", e->interrupted_why);
        return -1;
    }
    oc_server *s = calloc(1, sizeof *s);
    if (!s) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    s->e = e;
    s->done = done;
    s->opaque = opaque;
    snprintf(s->server_name, sizeof s->server_name, "occystrap/%s", oc_version());
    oc_srv_opts so = {.store = o->store_dir,
                      .listen = o->listen,
                      .tls_cert = o->tls_cert,
                      .tls_key = o->tls_key,
                      .htpasswd = o->htpasswd,
                      .keep_host = o->keep_host,
                      .allow_rewritten = o->allow_rewritten,
                      .max_connections = o->max_connections,
                      .idle_timeout_s = o->idle_timeout_s,
                      .drain_timeout_s = o->drain_timeout_s,
                      .server_name = s->server_name,
                      .log = on_log,
                      .access = o->no_access_log ? NULL : on_access,
                      .stopped = on_stopped,
                      .opaque = s};
    s->srv = oc_srv_start(e->loop, &so, err);
    if (!s->srv) {
        free(s);
        return -1;
    }
    oc_event ev = {.kind = OC_EVENT_JOB_STARTED, .count = 1};
    oc_engine_emit(e, &ev);
    s->hook.interrupt = on_interrupt;
    s->hook.opaque = s;
    oc_engine_hook_add(e, &s->hook);
    oc_engine_say(e, OC_LOG_INFO, "serving %s on %s://%s/", o->store_dir,
                  oc_srv_is_tls(s->srv) ? "https" : "http", oc_srv_address(s->srv));
    if (out)
        *out = s;
    return 0;
}

void oc_serve_stop(oc_server *s)
{
    if (s)
        oc_srv_stop(s->srv);
}

const char *oc_serve_address(const oc_server *s)
{
    return oc_srv_address(s->srv);
}
