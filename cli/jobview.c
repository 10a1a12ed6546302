/* jobview.c - the display, lines, report and status of a job over many
 * images (see jobview.h). */
#include "cli/jobview.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int cli_jobview_init(cli_jobview *v, const cli_opts *o, cli_run *run)
{
    memset(v, 0, sizeof *v);
    v->o = o;
    v->run = run;
    v->mode = OC_PROGRESS_AUTO;
    if (o->json && o->json_file) {
        cli_say("--json and --json-file exclude each other");
        return EXIT_USAGE;
    }
    if (o->progress && oc_progress_mode_parse(o->progress, &v->mode) != 0) {
        cli_say("--progress takes auto, bar, plain or none, not '%s'", o->progress);
        return EXIT_USAGE;
    }
    if (o->quiet)
        v->mode = OC_PROGRESS_NONE;
    return EXIT_OK;
}

int cli_jobview_event(cli_jobview *v, const oc_event *ev)
{
    switch (ev->kind) {
    case OC_EVENT_JOB_STARTED: {
        /* the job's locks are held: from now on a signal stops the run
         * cleanly (while it waited for them, a signal ended the process) */
        oc_error err;
        if (cli_run_catch_signals(v->run, &err) != 0)
            cli_error(&err);
        if (!v->progress)
            v->progress = oc_progress_new(&v->run->loop, v->mode, stderr, (unsigned)ev->count, 0);
        return 1;
    }
    case OC_EVENT_BLOB_STARTED:
        if (v->progress) {
            oc_progress_expect_bytes(v->progress, ev->size);
            oc_progress_layer_started(v->progress);
        }
        return 1;
    case OC_EVENT_BLOB_FINISHED:
        if (v->progress)
            oc_progress_layer_finished(v->progress);
        return 1;
    case OC_EVENT_BLOB_BYTES:
        if (v->progress)
            oc_progress_bytes(v->progress, ev->bytes);
        return 1;
    case OC_EVENT_BLOB_REUSED:
        return 1;
    case OC_EVENT_LOG:
        /* a line of ours must not be torn by the bar */
        if (v->progress &&
            (ev->level <= OC_LOG_WARNING || (ev->level == OC_LOG_INFO && !v->o->quiet))) {
            char line[2100];
            snprintf(line, sizeof line, "occystrap: %s", ev->message);
            oc_progress_print(v->progress, line);
            if (v->mode != OC_PROGRESS_NONE)
                return 1;
        }
        return 0;
    default:
        return 0;
    }
}

void cli_jobview_image(cli_jobview *v, int failed, int ok, const char *line)
{
    if (v->o->quiet && !failed)
        return;
    if (failed && v->mode == OC_PROGRESS_NONE)
        cli_say("%s", line); /* errors are printed whatever the display */
    if (v->progress)
        oc_progress_image_done(v->progress, ok, line);
}

void cli_jobview_note(cli_jobview *v, const char *line)
{
    if (v->progress && !v->o->quiet)
        oc_progress_print(v->progress, line);
}

void cli_jobview_finish(cli_jobview *v)
{
    if (v->progress) {
        oc_progress_finish(v->progress);
        v->progress = NULL;
    }
}

int cli_jobview_status(cli_jobview *v, size_t failed, const oc_error *error, int config_error,
                       int signal)
{
    int status = failed ? EXIT_FAILED : EXIT_OK;
    if (error) {
        if (config_error)
            status = EXIT_USAGE;
        else if (signal)
            status = cli_run_signal_status(v->run);
        else
            status = EXIT_FAILED;
        cli_error(error);
    }
    return status;
}

int cli_jobview_report(cli_jobview *v, json_t *root, int status)
{
    const char *path = v->o->json ? "-" : v->o->json_file;
    if (!path) {
        json_decref(root);
        return status;
    }
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    int ok = text != NULL;
    if (!text) {
        cli_say("error: out of memory writing the report");
    } else if (strcmp(path, "-") == 0) {
        fputs(text, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    } else {
        FILE *f = fopen(path, "w");
        if (!f || fputs(text, f) < 0 || fputc('\n', f) == EOF || fclose(f) != 0) {
            cli_say("error: cannot write report %s: %s", path, strerror(errno));
            ok = 0;
        }
    }
    free(text);
    return !ok && status == EXIT_OK ? EXIT_FAILED : status;
}
