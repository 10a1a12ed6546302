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
#include "cli/progress.h"
#include "cli/run.h"

typedef struct mirror_cli {
    const cli_opts *o;
    oc_progress_mode mode;
    oc_progress *progress;
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
        snprintf(line, size, "ok      %s: up to date (%s)", en->reference, digest);
        break;
    case OC_ENTRY_WOULD_FETCH:
        snprintf(line, size, "dry-run %s: would fetch %s (%s)", en->reference, digest,
                 en->note ? en->note : "");
        break;
    default:
        snprintf(line, size, "ok      %s: %s, %.1f MB fetched, %.2f s", en->reference, digest,
                 (double)en->bytes_fetched / 1e6, en->seconds);
        break;
    }
}

static int on_event(const oc_event *ev, void *opaque)
{
    mirror_cli *m = opaque;
    switch (ev->kind) {
    case OC_EVENT_JOB_STARTED: {
        /* the locks are held: from now on a signal stops the run cleanly
         * (while it waited for them, a signal ended the process at once) */
        oc_error err;
        if (cli_run_catch_signals(m->run, &err) != 0)
            cli_error(&err);
        if (!m->progress)
            m->progress = oc_progress_new(&m->run->loop, m->mode, stderr, (unsigned)ev->count, 0);
        return 1;
    }
    case OC_EVENT_BLOB_STARTED:
        if (m->progress) {
            oc_progress_expect_bytes(m->progress, ev->size);
            oc_progress_layer_started(m->progress);
        }
        return 1;
    case OC_EVENT_BLOB_FINISHED:
        if (m->progress)
            oc_progress_layer_finished(m->progress);
        return 1;
    case OC_EVENT_BLOB_BYTES:
        if (m->progress)
            oc_progress_bytes(m->progress, ev->bytes);
        return 1;
    case OC_EVENT_ENTRY_FINISHED: {
        const oc_mirror_entry *en = ev->entry;
        int failed = en->status == OC_ENTRY_FAILED;
        if (m->o->quiet && !failed)
            return 1;
        char line[1400];
        entry_line(m, en, line, sizeof line);
        if (failed && m->mode == OC_PROGRESS_NONE)
            cli_say("%s", line); /* errors are printed whatever the display */
        if (m->progress)
            oc_progress_image_done(m->progress, !failed && en->status != OC_ENTRY_INTERRUPTED,
                                   line);
        return 1;
    }
    case OC_EVENT_LOG:
        /* a line of ours must not be torn by the bar */
        if (m->progress &&
            (ev->level <= OC_LOG_WARNING || (ev->level == OC_LOG_INFO && !m->o->quiet))) {
            char line[2100];
            snprintf(line, sizeof line, "occystrap: %s", ev->message);
            oc_progress_print(m->progress, line);
            if (m->mode != OC_PROGRESS_NONE)
                return 1;
        }
        return 0;
    default:
        return 0;
    }
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

static int write_report(const oc_mirror_report *rep, const char *path)
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

static void on_done(const oc_mirror_report *rep, void *opaque)
{
    mirror_cli *m = opaque;
    m->done = 1;
    if (m->progress) {
        oc_progress_finish(m->progress);
        m->progress = NULL;
    }
    int status = rep->failed ? EXIT_FAILED : EXIT_OK;
    if (rep->error) {
        if (rep->config_error)
            status = EXIT_USAGE;
        else if (rep->signal)
            status = cli_run_signal_status(m->run);
        else
            status = EXIT_FAILED;
        cli_error(rep->error);
    }
    /* no report for a run that never started (a bad list, the store) */
    const char *path = m->o->json ? "-" : m->o->json_file;
    if (path && rep->n_entries && write_report(rep, path) != 0 && status == EXIT_OK)
        status = EXIT_FAILED;
    m->status = status;
}

int cli_mirror(cli_opts *o, int argc, char **argv)
{
    (void)argc;
    if (o->json && o->json_file) {
        cli_say("--json and --json-file exclude each other");
        return EXIT_USAGE;
    }
    mirror_cli m = {.o = o, .mode = OC_PROGRESS_AUTO, .status = EXIT_FAILED};
    if (o->progress && oc_progress_mode_parse(o->progress, &m.mode) != 0) {
        cli_say("--progress takes auto, bar, plain or none, not '%s'", o->progress);
        return EXIT_USAGE;
    }
    if (o->quiet)
        m.mode = OC_PROGRESS_NONE;
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
    if (choose_shard(o, &mo.shard_k, &mo.shard_n) != 0)
        return EXIT_USAGE;

    oc_error err;
    memset(&err, 0, sizeof err);
    cli_run run;
    m.run = &run;
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
    if (m.progress)
        oc_progress_finish(m.progress);
    cli_run_close(&run);
    return m.status;
}
