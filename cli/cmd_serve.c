/* cmd_serve.c - `occystrap serve [OPTIONS] STORE`: one serve job
 * (oc_serve_start) on the tool's loop until SIGINT or SIGTERM, which stop
 * it gracefully (responses in flight finish). Each request's access-log
 * line goes to stdout (line-buffered; -q: none), everything else to
 * stderr. Exit status: 0 after a stop, 1 when the server failed, 2 when the
 * options, the store or the address will not do. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "cli/run.h"

typedef struct serve_cli {
    const cli_opts *o;
    int done;
    oc_serve_result res;
    oc_error err;
} serve_cli;

static int on_event(const oc_event *ev, void *opaque)
{
    serve_cli *s = opaque;
    if (ev->kind != OC_EVENT_REQUEST)
        return 0;
    if (!s->o->quiet)
        printf("%s\n", ev->message);
    return 1;
}

static void on_stopped(const oc_serve_result *res, void *opaque)
{
    serve_cli *s = opaque;
    s->done = 1;
    s->res = *res;
    if (res->error)
        s->err = *res->error;
}

/* A busy server wants more descriptors than the usual soft limit of 1024. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int cli_serve(cli_opts *o, int argc, char **argv)
{
    (void)argc;
    signal(SIGPIPE, SIG_IGN); /* a client that leaves mid-response is an error, not a signal */
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_fd_limit();
    oc_serve_options so = o->serve;
    so.store_dir = argv[0];
    so.no_access_log = o->quiet;
    so.keep_host = o->keep_host;

    serve_cli s = {.o = o};
    oc_error err;
    memset(&err, 0, sizeof err);
    cli_run run;
    if (cli_run_init(&run, o, on_event, &s, &err) != 0) {
        cli_error(&err);
        return err.code == OC_E_USAGE ? EXIT_USAGE : EXIT_FAILED;
    }
    run.signal_note = "no new connections; responses in flight finish";
    int status;
    if (cli_run_catch_signals(&run, &err) != 0 ||
        oc_serve_start(run.engine, &so, on_stopped, &s, NULL, &err) != 0) {
        cli_error(&err);
        status = err.code == OC_E_NOMEM || err.code == OC_E_NET ? EXIT_FAILED : EXIT_USAGE;
    } else {
        cli_run_loop(&run);
        if (!s.done) {
            snprintf(s.err.msg, sizeof s.err.msg, "serve ended without stopping");
            cli_error(&s.err);
            status = EXIT_FAILED;
        } else if (s.res.error) {
            cli_error(&s.err);
            status = EXIT_FAILED;
        } else {
            status = EXIT_OK;
        }
    }
    fflush(stdout);
    cli_run_close(&run);
    return status;
}
