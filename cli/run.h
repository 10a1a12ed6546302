/* run.h - a network command's run: a loop of the tool's own, an engine on
 * it, the library's events turned into stderr lines, and SIGINT/SIGTERM.
 *
 * The first signal says so on stderr and interrupts the engine (every job
 * then ends through its ordinary failure path); the watchers close at once,
 * so a second signal has its default action and ends the process. The
 * watchers do not keep the loop alive. */
#ifndef OC_CLI_RUN_H
#define OC_CLI_RUN_H

#include <uv.h>

#include "cli/cli.h"

typedef struct cli_run cli_run;

/* A command's own view of the events, before the default printing;
 * returns 1 when it handled the event (nothing more is printed). */
typedef int (*cli_event_hook)(const oc_event *ev, void *opaque);

struct cli_run {
    uv_loop_t loop;
    oc_engine *engine;
    const cli_opts *o;
    uv_signal_t signals[2];
    int signals_open;
    int signal; /* the signal that interrupted the run, 0 if none */
    cli_event_hook hook;
    void *hook_opaque;
    /* what the first signal's line says happens next (a default is set) */
    const char *signal_note;
};

/* Loop and engine (from o->engine). On failure nothing is left open and
 * err says why. */
int cli_run_init(cli_run *r, const cli_opts *o, cli_event_hook hook, void *hook_opaque,
                 oc_error *err);
/* Watch SIGINT and SIGTERM from now on (until then they have their default
 * action: the process ends). A command calls it once nothing it may wait
 * on blocks the loop. */
int cli_run_catch_signals(cli_run *r, oc_error *err);
/* Run the loop until the jobs are done; then a signal caught in the loop's
 * last turn is taken, and SIGINT/SIGTERM get their default action back. */
void cli_run_loop(cli_run *r);
/* Close the engine and the loop. */
void cli_run_close(cli_run *r);
/* How an interrupted run exits: 128 + the signal. */
int cli_run_signal_status(const cli_run *r);
/* "SIGINT", "SIGTERM" */
const char *cli_signal_name(int signum);

#endif
