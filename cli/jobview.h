/* jobview.h - what a job over many images (mirror, mirror --to, push)
 * shows while it runs and leaves behind: the progress display fed by the
 * blob events, one line per image as it ends (through the display, so the
 * bar is never torn; a failure printed whatever the display), log lines
 * kept clear of the bar, the JSON report on stdout or in a file, and the
 * exit status from the job's outcome. Each command keeps only what is its
 * own: the line it writes for an image and the report's fields. */
#ifndef OC_CLI_JOBVIEW_H
#define OC_CLI_JOBVIEW_H

#include <jansson.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/run.h"

typedef struct cli_jobview {
    const cli_opts *o;
    oc_progress_mode mode;
    oc_progress *progress;
    cli_run *run;
} cli_jobview;

/* --progress checked (and -q: none), --json and --json-file not both;
 * EXIT_OK or EXIT_USAGE (said). */
int cli_jobview_init(cli_jobview *v, const cli_opts *o, cli_run *run);
/* JOB_STARTED (signals watched from here on, the display made), the blob
 * events and LOG lines while the display is up; 1 when handled. */
int cli_jobview_event(cli_jobview *v, const oc_event *ev);
/* One image ended: its line (already built) shown, unless -q hides a
 * success. failed: printed whatever the display; ok: counted as done. */
void cli_jobview_image(cli_jobview *v, int failed, int ok, const char *line);
/* A further line under the image's (a note), through the display. */
void cli_jobview_note(cli_jobview *v, const char *line);
/* The display's final line; safe twice. */
void cli_jobview_finish(cli_jobview *v);
/* The exit status of a finished job: EXIT_FAILED when failed > 0; with a
 * run-level error (said here): EXIT_USAGE for the caller's configuration,
 * 128+N when interrupted, else EXIT_FAILED. */
int cli_jobview_status(cli_jobview *v, size_t failed, const oc_error *error, int config_error,
                       int signal);
/* The report (taken: freed here) to --json's stdout or --json-file's file,
 * if either was asked for; returns status, or EXIT_FAILED when the report
 * could not be written and status was EXIT_OK. */
int cli_jobview_report(cli_jobview *v, json_t *root, int status);

#endif
