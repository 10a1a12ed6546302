/* run.c - a network command's loop, engine, events and signals (see
 * run.h). */
#include "cli/run.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

const char *cli_signal_name(int signum)
{
    return signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : "a signal";
}

/* The default printing: warnings and errors always, summaries unless -q,
 * request logs with their time (-v), the HTTP library's trace as it is
 * (-v -v). */
static void on_event(const oc_event *ev, void *opaque)
{
    cli_run *r = opaque;
    if (r->hook && r->hook(ev, r->hook_opaque))
        return;
    if (ev->kind != OC_EVENT_LOG)
        return;
    switch (ev->level) {
    case OC_LOG_ERROR:
    case OC_LOG_WARNING:
        cli_say("%s", ev->message);
        break;
    case OC_LOG_INFO:
        if (!r->o->quiet)
            cli_say("%s", ev->message);
        break;
    case OC_LOG_DEBUG:
        fprintf(stderr, "occystrap: [%6.3f] %s\n", ev->seconds, ev->message);
        break;
    case OC_LOG_TRACE:
        fprintf(stderr, "%s\n", ev->message);
        break;
    }
}

static void signal_closed(uv_handle_t *h)
{
    cli_run *r = h->data;
    r->signals_open--;
}

static void stop_signals(cli_run *r)
{
    for (int i = 0; i < 2; i++)
        if (r->signals[i].data && !uv_is_closing((uv_handle_t *)&r->signals[i]))
            uv_close((uv_handle_t *)&r->signals[i], signal_closed);
}

static void on_signal(uv_signal_t *h, int signum)
{
    cli_run *r = h->data;
    /* closing the watchers gives the signals back their default action:
     * a second one ends the process at once */
    stop_signals(r);
    cli_say("%s received: stopping; %s (send it again to exit at once)", cli_signal_name(signum),
            r->signal_note);
    r->signal = signum;
    oc_engine_interrupt(r->engine, signum);
}

int cli_run_init(cli_run *r, const cli_opts *o, cli_event_hook hook, void *hook_opaque,
                 oc_error *err)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->hook = hook;
    r->hook_opaque = hook_opaque;
    r->signal_note = "transfers in flight are abandoned, what verified is kept";
    int rc = uv_loop_init(&r->loop);
    if (rc != 0) {
        snprintf(err->msg, sizeof err->msg, "cannot create the event loop: %s", uv_strerror(rc));
        err->code = OC_E_NOMEM;
        return -1;
    }
    oc_engine_options eo = o->engine;
    eo.on_event = on_event;
    eo.event_opaque = r;
    if (oc_engine_new(&r->loop, &eo, &r->engine, err) != 0) {
        uv_loop_close(&r->loop);
        return -1;
    }
    return 0;
}

int cli_run_catch_signals(cli_run *r, oc_error *err)
{
    if (r->signals_open)
        return 0;
    const int which[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(&r->loop, &r->signals[i]);
        r->signals[i].data = r;
        r->signals_open++;
    }
    for (int i = 0; i < 2; i++) {
        int rc = uv_signal_start(&r->signals[i], on_signal, which[i]);
        uv_unref((uv_handle_t *)&r->signals[i]); /* they must not keep the loop alive */
        if (rc != 0) {
            snprintf(err->msg, sizeof err->msg, "cannot watch signal %d: %s", which[i],
                     uv_strerror(rc));
            err->code = OC_E_IO;
            stop_signals(r);
            return -1;
        }
    }
    return 0;
}

void cli_run_loop(cli_run *r)
{
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_run(&r->loop, UV_RUN_NOWAIT); /* a signal caught but not yet dispatched */
    stop_signals(r);
}

static void engine_closed(void *opaque)
{
    cli_run *r = opaque;
    r->engine = NULL;
}

void cli_run_close(cli_run *r)
{
    stop_signals(r);
    if (r->engine)
        oc_engine_close(r->engine, engine_closed, r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
}

int cli_run_signal_status(const cli_run *r)
{
    int s = r->signal ? r->signal : oc_engine_interrupted(r->engine);
    return s > 0 ? 128 + s : EXIT_FAILED;
}
