/* cmd_mirror.c - `occystrap mirror LIST STORE`: one mirror job
 * (oc_mirror_start) on the tool's loop. Each entry's line as it ends, the
 * progress display (progress.h) fed by the blob events, the JSON report
 * (--json, --json-file) written from the final report, and the exit status:
 * 0 all done, 1 some failed or the store cannot be written, 2 a bad list,
 * option or lock, 128+N interrupted by signal N. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/jobview.h"
#include "cli/run.h"

typedef struct mirror_cli {
    cli_jobview view;
    cli_run *run;
    int done;
    int status;
} mirror_cli;

static const char *status_name(oc_entry_status s)
{
    switch (s) {
    case OC_ENTRY_PENDING:
        return "pending";
    case OC_ENTRY_UP_TO_DATE:
        return "up-to-date";
    case OC_ENTRY_FETCHED:
        return "fetched";
    case OC_ENTRY_FAILED:
        return "failed";
    case OC_ENTRY_WOULD_FETCH:
        return "would-fetch";
    case OC_ENTRY_INTERRUPTED:
        return "interrupted";
    }
    return "?";
}

static void entry_line(const mirror_cli *m, const oc_mirror_entry *en, char *line, size_t size)
{
    const char *digest = en->digest ? en->digest : "";
    char refs[160] = "";
    if (en->referrers_fetched || en->referrers_known || en->referrers_error)
        snprintf(refs, sizeof refs, "; referrers: %zu fetched, %zu known%s", en->referrers_fetched,
                 en->referrers_known, en->referrers_error ? ", some FAILED (see above)" : "");
    switch (en->status) {
    case OC_ENTRY_INTERRUPTED:
        snprintf(line, size, "stopped %s (line %d): interrupted by %s before it was mirrored",
                 en->reference, en->line, cli_signal_name(m->run->signal));
        break;
    case OC_ENTRY_FAILED:
        snprintf(line, size, "FAILED  %s (line %d): %s", en->reference, en->line,
                 en->error ? en->error->msg : "");
        break;
    case OC_ENTRY_UP_TO_DATE:
        snprintf(line, size, "ok      %s: up to date (%s)%s", en->reference, digest, refs);
        break;
    case OC_ENTRY_WOULD_FETCH:
        snprintf(line, size, "dry-run %s: would fetch %s (%s)", en->reference, digest,
                 en->note ? en->note : "");
        break;
    default:
        snprintf(line, size, "ok      %s: %s, %.1f MB fetched, %.2f s%s", en->reference, digest,
                 (double)en->bytes_fetched / 1e6, en->seconds, refs);
        break;
    }
}

static int on_event(const oc_event *ev, void *opaque)
{
    mirror_cli *m = opaque;
    if (ev->kind != OC_EVENT_ENTRY_FINISHED)
        return cli_jobview_event(&m->view, ev);
    const oc_mirror_entry *en = ev->entry;
    char line[1400];
    entry_line(m, en, line, sizeof line);
    cli_jobview_image(&m->view, en->status == OC_ENTRY_FAILED,
                      en->status != OC_ENTRY_FAILED && en->status != OC_ENTRY_INTERRUPTED, line);
    return 1;
}

/* "K/N" with 1 <= K <= N <= 65536 into k and n; what names its source. */
static int parse_shard(const char *text, const char *what, unsigned *k, unsigned *n)
{
    char *end = NULL;
    unsigned long kk = text[0] >= '0' && text[0] <= '9' ? strtoul(text, &end, 10) : 0;
    unsigned long nn = 0;
    int ok = end && *end == '/' && end[1] >= '0' && end[1] <= '9';
    if (ok) {
        nn = strtoul(end + 1, &end, 10);
        ok = *end == '\0';
    }
    if (!ok || nn < 1 || nn > 65536 || kk < 1 || kk > nn) {
        cli_say("%s wants K/N with 1 <= K <= N <= 65536, not \"%s\"", what, text);
        return -1;
    }
    *k = (unsigned)kk;
    *n = (unsigned)nn;
    return 0;
}

/* This process's shard: --shard K/N, else $OCCYSTRAP_SHARD=K/N, else
 * --shards N with Kubernetes' $JOB_COMPLETION_INDEX (0-based) as K-1. */
static int choose_shard(const cli_opts *o, unsigned *k, unsigned *n)
{
    *k = *n = 0;
    const char *env = getenv("OCCYSTRAP_SHARD");
    if (o->shard && o->shards) {
        cli_say("--shard and --shards exclude each other");
        return -1;
    }
    if (o->shard)
        return parse_shard(o->shard, "--shard", k, n);
    if (env && *env && !o->shards)
        return parse_shard(env, "OCCYSTRAP_SHARD", k, n);
    if (!o->shards)
        return 0;
    const char *index = getenv("JOB_COMPLETION_INDEX");
    if (!index || !*index) {
        cli_say("--shards N takes this process's index from $JOB_COMPLETION_INDEX (a Kubernetes "
                "Indexed Job), which is not set; use --shard K/N");
        return -1;
    }
    char *end = NULL;
    unsigned long i = index[0] >= '0' && index[0] <= '9' ? strtoul(index, &end, 10) : 0;
    if (!end || *end || i >= o->shards) {
        cli_say("JOB_COMPLETION_INDEX=%s is not an index below --shards %u", index, o->shards);
        return -1;
    }
    *k = (unsigned)i + 1;
    *n = o->shards;
    return 0;
}

static json_t *report_json(const oc_mirror_report *rep)
{
    json_t *root = json_object();
    json_t *entries = json_array();
    for (size_t i = 0; i < rep->n_entries; i++) {
        const oc_mirror_entry *en = &rep->entries[i];
        json_t *e = json_object();
        json_object_set_new(e, "line", json_integer(en->line));
        json_object_set_new(e, "reference", json_string(en->reference));
        if (en->name)
            json_object_set_new(e, "name", json_string(en->name));
        json_object_set_new(e, "status", json_string(status_name(en->status)));
        if (en->digest)
            json_object_set_new(e, "digest", json_string(en->digest));
        json_t *plats = json_array();
        for (size_t k = 0; k < en->n_platforms; k++)
            json_array_append_new(plats, json_string(en->platforms[k]));
        json_object_set_new(e, "platforms", plats);
        if (en->error) {
            json_object_set_new(e, "error", json_string(en->error->msg));
            json_object_set_new(e, "error_kind", json_string(oc_errcode_name(en->error->code)));
        }
        json_object_set_new(e, "bytes_fetched", json_integer((json_int_t)en->bytes_fetched));
        json_object_set_new(e, "bytes_reused", json_integer((json_int_t)en->bytes_reused));
        json_object_set_new(e, "referrers_fetched",
                            json_integer((json_int_t)en->referrers_fetched));
        json_object_set_new(e, "referrers_known", json_integer((json_int_t)en->referrers_known));
        if (en->referrers_error)
            json_object_set_new(e, "referrers_error", json_string(en->referrers_error->msg));
        json_object_set_new(e, "seconds", json_real(en->seconds));
        json_array_append_new(entries, e);
    }
    json_object_set_new(root, "entries", entries);
    json_t *totals = json_object();
    json_object_set_new(totals, "entries", json_integer((json_int_t)rep->n_entries));
    json_object_set_new(totals, "fetched", json_integer((json_int_t)rep->fetched));
    json_object_set_new(totals, "up_to_date", json_integer((json_int_t)rep->up_to_date));
    json_object_set_new(totals, "failed", json_integer((json_int_t)rep->failed));
    json_object_set_new(totals, "would_fetch", json_integer((json_int_t)rep->would_fetch));
    json_object_set_new(totals, "interrupted", json_integer((json_int_t)rep->interrupted));
    json_object_set_new(totals, "bytes_fetched", json_integer((json_int_t)rep->bytes_fetched));
    json_object_set_new(totals, "bytes_reused", json_integer((json_int_t)rep->bytes_reused));
    json_object_set_new(totals, "catalog_writes", json_integer((json_int_t)rep->catalog_writes));
    json_object_set_new(totals, "blob_waits", json_integer((json_int_t)rep->blob_waits));
    if (rep->shard_n > 1) {
        char shard[32];
        snprintf(shard, sizeof shard, "%u/%u", rep->shard_k, rep->shard_n);
        json_object_set_new(totals, "shard", json_string(shard));
    }
    json_object_set_new(root, "totals", totals);
    return root;
}

static void on_done(const oc_mirror_report *rep, void *opaque)
{
    mirror_cli *m = opaque;
    m->done = 1;
    cli_jobview_finish(&m->view);
    int status =
        cli_jobview_status(&m->view, rep->failed, rep->error, rep->config_error, rep->signal);
    /* no report for a run that never started (a bad list, the store) */
    m->status = rep->n_entries ? cli_jobview_report(&m->view, report_json(rep), status) : status;
}

int cli_mirror(cli_opts *o, int argc, char **argv)
{
    if (o->to)
        return cli_mirror_to(o, argc, argv);
    if (argc != 2) {
        cli_say("mirror takes LIST STORE, or LIST --to REGISTRY[/PREFIX] (got %d arguments)", argc);
        return EXIT_USAGE;
    }
    if (o->keep_host || o->chunk_size) {
        cli_say("--keep-host and --chunk-size go with mirror --to (and push)");
        return EXIT_USAGE;
    }
    cli_run run;
    mirror_cli m = {.run = &run, .status = EXIT_FAILED};
    if (cli_jobview_init(&m.view, o, &run) != EXIT_OK)
        return EXIT_USAGE;
    oc_mirror_options mo;
    oc_mirror_options_init(&mo);
    mo.list_path = argv[0];
    mo.store_dir = argv[1];
    mo.platforms = o->platforms;
    mo.n_platforms = (size_t)o->n_platforms;
    mo.fail_fast = o->fail_fast;
    mo.dry_run = o->dry_run;
    mo.lock_wait_s = o->lock_wait_s;
    mo.exact = !o->no_exact;
    mo.max_layer_bytes = o->max_layer_bytes;
    mo.max_image_bytes = o->max_image_bytes;
    mo.referrers = o->referrers;
    mo.referrers_depth = o->referrers_depth;
    mo.referrer_types = o->referrer_types;
    mo.n_referrer_types = o->n_referrer_types;
    if (choose_shard(o, &mo.shard_k, &mo.shard_n) != 0)
        return EXIT_USAGE;

    oc_error err;
    memset(&err, 0, sizeof err);
    if (cli_run_init(&run, o, on_event, &m, &err) != 0) {
        cli_error(&err);
        return EXIT_USAGE; /* the engine's options (the config file) */
    }
    if (oc_mirror_start(run.engine, &mo, on_done, &m, &err) != 0) {
        cli_error(&err);
        m.status = EXIT_USAGE;
    } else {
        cli_run_loop(&run);
        if (!m.done) {
            cli_say("error: the mirror run ended without a report");
            m.status = EXIT_FAILED;
        }
    }
    cli_jobview_finish(&m.view);
    cli_run_close(&run);
    return m.status;
}
