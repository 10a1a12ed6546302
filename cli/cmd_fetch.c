/* cmd_fetch.c - fetch-to-tarfile and fetch-to-extracted REGISTRY IMAGE TAG
 * TARGET: one fetch job (oc_fetch_start) on the tool's loop, one line at
 * the end naming what was written (unless -q), or the error. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/run.h"

typedef struct fetch_cli {
    const cli_opts *o;
    const char *path;
    int done;
    int ok;
    size_t reused;
    char name[512];
    oc_error err;
    int interrupted;
} fetch_cli;

static void on_fetched(const oc_fetch_result *res, void *opaque)
{
    fetch_cli *f = opaque;
    f->done = 1;
    f->ok = res->error == NULL;
    f->reused = res->layers_reused;
    f->interrupted = res->interrupted;
    snprintf(f->name, sizeof f->name, "%s", res->name ? res->name : "");
    if (res->error)
        f->err = *res->error;
}

static int fetch(cli_opts *o, char **argv, oc_fetch_target target)
{
    oc_fetch_options fo;
    oc_fetch_options_init(&fo);
    fo.registry = argv[0];
    fo.image = argv[1];
    fo.tag = argv[2];
    fo.path = argv[3];
    fo.target = target;
    fo.platform = o->n_platforms ? o->platforms[o->n_platforms - 1] : NULL;
    fo.unique_names = o->use_unique_names;
    fo.exact = o->exact;
    fo.expand = o->expand;
    fo.expand_opts = o->expand_opts;
    fo.max_layer_bytes = o->max_layer_bytes;
    fo.max_image_bytes = o->max_image_bytes;

    oc_error err;
    memset(&err, 0, sizeof err);
    cli_run run;
    if (cli_run_init(&run, o, NULL, NULL, &err) != 0) {
        cli_error(&err);
        return err.code == OC_E_USAGE ? EXIT_USAGE : EXIT_FAILED;
    }
    fetch_cli f = {.o = o, .path = argv[3]};
    int status = EXIT_FAILED;
    if (cli_run_catch_signals(&run, &err) != 0 ||
        oc_fetch_start(run.engine, &fo, on_fetched, &f, &err) != 0) {
        cli_error(&err);
        status = err.code == OC_E_USAGE ? EXIT_USAGE : EXIT_FAILED;
    } else {
        cli_run_loop(&run);
        if (f.ok) { /* a signal in the last turn of the loop came too late to stop it */
            status = EXIT_OK;
            if (!o->quiet && f.reused)
                cli_say("%s -> %s (%zu layers were already there)", f.name, f.path, f.reused);
            else if (!o->quiet)
                cli_say("%s -> %s", f.name, f.path);
        } else {
            if (!f.done)
                snprintf(f.err.msg, sizeof f.err.msg, "fetch of %s:%s ended without a result",
                         argv[1], argv[2]);
            cli_error(&f.err);
            status = f.interrupted ? cli_run_signal_status(&run) : EXIT_FAILED;
        }
    }
    cli_run_close(&run);
    return status;
}

int cli_fetch_to_tarfile(cli_opts *o, int argc, char **argv)
{
    (void)argc;
    return fetch(o, argv, OC_FETCH_TARFILE);
}

int cli_fetch_to_extracted(cli_opts *o, int argc, char **argv)
{
    (void)argc;
    return fetch(o, argv, OC_FETCH_EXTRACTED);
}
