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
#include "cli/jobview.h"
#include "cli/run.h"

typedef struct push_cli {
    cli_jobview view;
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
    if (ev->kind != OC_EVENT_PUSH_FINISHED)
        return cli_jobview_event(&p->view, ev);
    const oc_push_image *im = ev->pushed;
    char line[2400];
    image_line(p, im, line, sizeof line);
    int failed = im->status == OC_PUSH_FAILED;
    cli_jobview_image(&p->view, failed, !failed && im->status != OC_PUSH_INTERRUPTED, line);
    if (im->note) {
        char note[2400];
        snprintf(note, sizeof note, "note    %s:%s: %s", im->name, im->tag, im->note);
        cli_jobview_note(&p->view, note);
    }
    return 1;
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
        if (im->subject) /* a referrer, a cosign tag or a fallback tag of an image */
            json_object_set_new(e, "subject", json_string(im->subject));
        if (im->artifact_type)
            json_object_set_new(e, "artifact_type", json_string(im->artifact_type));
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

static void on_done(const oc_push_report *rep, void *opaque)
{
    push_cli *p = opaque;
    p->done = 1;
    cli_jobview_finish(&p->view);
    int status =
        cli_jobview_status(&p->view, rep->failed, rep->error, rep->config_error, rep->signal);
    p->status = rep->n_images ? cli_jobview_report(&p->view, report_json(rep), status) : status;
}

static int run_push(cli_opts *o, oc_push_options *po)
{
    cli_run run;
    push_cli p = {.run = &run, .status = EXIT_FAILED};
    if (cli_jobview_init(&p.view, o, &run) != EXIT_OK)
        return EXIT_USAGE;
    po->keep_host = o->keep_host;
    po->chunk_size = o->chunk_size;

    oc_error err;
    memset(&err, 0, sizeof err);
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
    cli_jobview_finish(&p.view);
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
    if (o->fail_fast || o->dry_run || o->lock_wait_s || o->max_layer_bytes != OC_LIMIT_DEFAULT ||
        o->max_image_bytes != OC_LIMIT_DEFAULT) {
        cli_say("--fail-fast, --dry-run, --lock-wait, --max-layer-size and --max-expand-size go "
                "with mirror into a store, not --to");
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
