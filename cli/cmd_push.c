/* cmd_push.c - `occystrap push STORE TARGET [IMAGE[:TAG]...]` and
 * `occystrap mirror LIST --to TARGET`: one push job (oc_push_start) on the
 * tool's loop, from a store or from the list's registries. Each image's line as it ends, the
 * progress display fed by the blob events, the JSON report (--json,
 * --json-file), and the exit status: 0 all pushed or up to date, 1 some
 * failed or the store cannot be read, 2 a bad target, option or store,
 * 128+N interrupted by signal N. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/run.h"

typedef struct push_cli {
    const cli_opts *o;
    oc_progress_mode mode;
    oc_progress *progress;
    cli_run *run;
    int done;
    int status;
} push_cli;

static const char *status_name(oc_push_status s)
{
    switch (s) {
    case OC_PUSH_PENDING:
        return "pending";
    case OC_PUSH_PUSHED:
        return "pushed";
    case OC_PUSH_UP_TO_DATE:
        return "up-to-date";
    case OC_PUSH_FAILED:
        return "failed";
    case OC_PUSH_INTERRUPTED:
        return "interrupted";
    }
    return "?";
}

static void image_line(const push_cli *p, const oc_push_image *im, char *line, size_t size)
{
    char up[32];
    switch (im->status) {
    case OC_PUSH_INTERRUPTED:
        snprintf(line, size, "stopped %s:%s: interrupted by %s before it was pushed", im->name,
                 im->tag, cli_signal_name(p->run->signal));
        break;
    case OC_PUSH_FAILED:
        snprintf(line, size, "FAILED  %s:%s -> %s: %s", im->name, im->tag,
                 im->target ? im->target : "?", im->error ? im->error->msg : "");
        break;
    case OC_PUSH_UP_TO_DATE:
        snprintf(line, size, "ok      %s:%s -> %s: up to date (%s)", im->name, im->tag, im->target,
                 im->digest ? im->digest : "");
        break;
    default:
        snprintf(line, size,
                 "ok      %s:%s -> %s: %s (%zu blobs uploaded, %s; %zu mounted, %zu already "
                 "there), %.2f s",
                 im->name, im->tag, im->target, im->digest ? im->digest : "", im->blobs_uploaded,
                 cli_human(im->bytes_uploaded, up), im->blobs_mounted, im->blobs_present,
                 im->seconds);
        break;
    }
}

static int on_event(const oc_event *ev, void *opaque)
{
    push_cli *p = opaque;
    switch (ev->kind) {
    case OC_EVENT_JOB_STARTED: {
        /* the store's lock is held (push) or there is none (mirror --to):
         * from now on a signal stops the run cleanly */
        oc_error err;
        if (cli_run_catch_signals(p->run, &err) != 0)
            cli_error(&err);
        if (!p->progress)
            p->progress = oc_progress_new(&p->run->loop, p->mode, stderr, (unsigned)ev->count, 0);
        return 1;
    }
    case OC_EVENT_BLOB_STARTED:
        if (p->progress) {
            oc_progress_expect_bytes(p->progress, ev->size);
            oc_progress_layer_started(p->progress);
        }
        return 1;
    case OC_EVENT_BLOB_FINISHED:
        if (p->progress)
            oc_progress_layer_finished(p->progress);
        return 1;
    case OC_EVENT_BLOB_BYTES:
        if (p->progress)
            oc_progress_bytes(p->progress, ev->bytes);
        return 1;
    case OC_EVENT_BLOB_REUSED:
        return 1;
    case OC_EVENT_PUSH_FINISHED: {
        const oc_push_image *im = ev->pushed;
        int failed = im->status == OC_PUSH_FAILED;
        if (p->o->quiet && !failed)
            return 1;
        char line[2400];
        image_line(p, im, line, sizeof line);
        if (failed && p->mode == OC_PROGRESS_NONE)
            cli_say("%s", line); /* errors are printed whatever the display */
        if (p->progress) {
            oc_progress_image_done(p->progress, !failed && im->status != OC_PUSH_INTERRUPTED, line);
            if (im->note) {
                char note[2400];
                snprintf(note, sizeof note, "note    %s:%s: %s", im->name, im->tag, im->note);
                oc_progress_print(p->progress, note);
            }
        }
        return 1;
    }
    case OC_EVENT_LOG:
        if (p->progress &&
            (ev->level <= OC_LOG_WARNING || (ev->level == OC_LOG_INFO && !p->o->quiet))) {
            char line[2100];
            snprintf(line, sizeof line, "occystrap: %s", ev->message);
            oc_progress_print(p->progress, line);
            if (p->mode != OC_PROGRESS_NONE)
                return 1;
        }
        return 0;
    default:
        return 0;
    }
}

static json_t *report_json(const oc_push_report *rep)
{
    json_t *root = json_object();
    json_t *images = json_array();
    for (size_t i = 0; i < rep->n_images; i++) {
        const oc_push_image *im = &rep->images[i];
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(im->name));
        json_object_set_new(e, "tag", json_string(im->tag));
        if (im->target)
            json_object_set_new(e, "target", json_string(im->target));
        if (im->digest)
            json_object_set_new(e, "digest", json_string(im->digest));
        json_object_set_new(e, "status", json_string(status_name(im->status)));
        if (im->error) {
            json_object_set_new(e, "error", json_string(im->error->msg));
            json_object_set_new(e, "error_kind", json_string(oc_errcode_name(im->error->code)));
        }
        if (im->note)
            json_object_set_new(e, "note", json_string(im->note));
        json_object_set_new(e, "manifests", json_integer((json_int_t)im->manifests));
        json_object_set_new(e, "blobs_uploaded", json_integer((json_int_t)im->blobs_uploaded));
        json_object_set_new(e, "blobs_mounted", json_integer((json_int_t)im->blobs_mounted));
        json_object_set_new(e, "blobs_present", json_integer((json_int_t)im->blobs_present));
        json_object_set_new(e, "bytes_uploaded", json_integer((json_int_t)im->bytes_uploaded));
        json_object_set_new(e, "bytes_mounted", json_integer((json_int_t)im->bytes_mounted));
        json_object_set_new(e, "bytes_present", json_integer((json_int_t)im->bytes_present));
        json_object_set_new(e, "seconds", json_real(im->seconds));
        json_array_append_new(images, e);
    }
    json_object_set_new(root, "images", images);
    json_t *totals = json_object();
    json_object_set_new(totals, "images", json_integer((json_int_t)rep->n_images));
    json_object_set_new(totals, "pushed", json_integer((json_int_t)rep->pushed));
    json_object_set_new(totals, "up_to_date", json_integer((json_int_t)rep->up_to_date));
    json_object_set_new(totals, "failed", json_integer((json_int_t)rep->failed));
    json_object_set_new(totals, "interrupted", json_integer((json_int_t)rep->interrupted));
    json_object_set_new(totals, "bytes_uploaded", json_integer((json_int_t)rep->bytes_uploaded));
    json_object_set_new(totals, "bytes_mounted", json_integer((json_int_t)rep->bytes_mounted));
    json_object_set_new(totals, "bytes_present", json_integer((json_int_t)rep->bytes_present));
    json_object_set_new(root, "totals", totals);
    return root;
}

static int write_report(const oc_push_report *rep, const char *path)
{
    json_t *root = report_json(rep);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (!text) {
        cli_say("error: out of memory writing the report");
        return -1;
    }
    int rc = 0;
    if (strcmp(path, "-") == 0) {
        fputs(text, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    } else {
        FILE *f = fopen(path, "w");
        if (!f || fputs(text, f) < 0 || fputc('\n', f) == EOF || fclose(f) != 0) {
            cli_say("error: cannot write report %s: %s", path, strerror(errno));
            rc = -1;
        }
    }
    free(text);
    return rc;
}

static void on_done(const oc_push_report *rep, void *opaque)
{
    push_cli *p = opaque;
    p->done = 1;
    if (p->progress) {
        oc_progress_finish(p->progress);
        p->progress = NULL;
    }
    int status = rep->failed ? EXIT_FAILED : EXIT_OK;
    if (rep->error) {
        if (rep->config_error)
            status = EXIT_USAGE;
        else if (rep->signal)
            status = cli_run_signal_status(p->run);
        else
            status = EXIT_FAILED;
        cli_error(rep->error);
    }
    const char *path = p->o->json ? "-" : p->o->json_file;
    if (path && rep->n_images && write_report(rep, path) != 0 && status == EXIT_OK)
        status = EXIT_FAILED;
    p->status = status;
}

static int run_push(cli_opts *o, oc_push_options *po)
{
    if (o->json && o->json_file) {
        cli_say("--json and --json-file exclude each other");
        return EXIT_USAGE;
    }
    push_cli p = {.o = o, .mode = OC_PROGRESS_AUTO, .status = EXIT_FAILED};
    if (o->progress && oc_progress_mode_parse(o->progress, &p.mode) != 0) {
        cli_say("--progress takes auto, bar, plain or none, not '%s'", o->progress);
        return EXIT_USAGE;
    }
    if (o->quiet)
        p.mode = OC_PROGRESS_NONE;
    po->keep_host = o->keep_host;
    po->chunk_size = o->chunk_size;

    oc_error err;
    memset(&err, 0, sizeof err);
    cli_run run;
    p.run = &run;
    if (cli_run_init(&run, o, on_event, &p, &err) != 0) {
        cli_error(&err);
        return EXIT_USAGE; /* the engine's options (the config file) */
    }
    if (oc_push_start(run.engine, po, on_done, &p, &err) != 0) {
        cli_error(&err);
        p.status = err.code == OC_E_USAGE ? EXIT_USAGE : EXIT_FAILED;
    } else {
        cli_run_loop(&run);
        if (!p.done) {
            cli_say("error: the run ended without a report");
            p.status = EXIT_FAILED;
        }
    }
    if (p.progress)
        oc_progress_finish(p.progress);
    cli_run_close(&run);
    return p.status;
}

int cli_push(cli_opts *o, int argc, char **argv)
{
    oc_push_options po;
    oc_push_options_init(&po);
    po.store_dir = argv[0];
    po.target = argv[1];
    po.images = (const char *const *)(argv + 2);
    po.n_images = (size_t)(argc - 2);
    return run_push(o, &po);
}

int cli_mirror_to(cli_opts *o, int argc, char **argv)
{
    if (argc != 1) {
        cli_say("mirror --to takes LIST only (got %d arguments): the images go to the registry, "
                "not into a store",
                argc);
        return EXIT_USAGE;
    }
    if (o->fail_fast || o->dry_run || o->lock_wait_s || o->max_layer_bytes) {
        cli_say("--fail-fast, --dry-run, --lock-wait and --max-layer-size go with mirror into a "
                "store, not --to");
        return EXIT_USAGE;
    }
    const char *platform = NULL;
    for (int i = 0; i < o->n_platforms; i++) {
        if (strcmp(o->platforms[i], "all") == 0)
            continue;
        if (platform) {
            cli_say("mirror --to copies an index whole (every platform, its digest kept) or one "
                    "platform's manifest under the tag: one --platform at most");
            return EXIT_USAGE;
        }
        platform = o->platforms[i];
    }
    oc_push_options po;
    oc_push_options_init(&po);
    po.list_path = argv[0];
    po.target = o->to;
    po.platform = platform;
    return run_push(o, &po);
}
