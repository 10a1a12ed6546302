/* cmd_mirror.c - the mirror command (see cmd_mirror.h). */
#include "cli/cmd_mirror.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/registry/config.h"
#include "engine/image/manifest.h"
#include "engine/mirror.h"

static void print_error(const oc_error *err)
{
    fprintf(stderr, "occystrap: error: %s\n", err->msg);
}

/* This process's shard: --shard K/N, else $OCCYSTRAP_SHARD=K/N, else
 * --shards N with Kubernetes' $JOB_COMPLETION_INDEX (0-based) as K-1. */
static int choose_shard(const oc_mirror_cli *mc, oc_shard *s, oc_error *err)
{
    memset(s, 0, sizeof *s);
    const char *env = getenv("OCCYSTRAP_SHARD");
    if (mc->shard && mc->shards) {
        oc_error_set(err, OC_E_USAGE, "--shard and --shards exclude each other");
        return -1;
    }
    if (mc->shard)
        return oc_shard_parse(mc->shard, "--shard", s, err);
    if (env && *env && !mc->shards)
        return oc_shard_parse(env, "OCCYSTRAP_SHARD", s, err);
    if (!mc->shards)
        return 0;
    const char *index = getenv("JOB_COMPLETION_INDEX");
    if (!index || !*index) {
        oc_error_set(err, OC_E_USAGE,
                     "--shards N takes this process's index from $JOB_COMPLETION_INDEX (a "
                     "Kubernetes Indexed Job), which is not set; use --shard K/N");
        return -1;
    }
    char *end = NULL;
    unsigned long k = strtoul(index, &end, 10);
    if (*end || index[0] == '-' || k >= mc->shards) {
        oc_error_set(err, OC_E_USAGE, "JOB_COMPLETION_INDEX=%s is not an index below --shards %u",
                     index, mc->shards);
        return -1;
    }
    char text[32];
    snprintf(text, sizeof text, "%lu/%u", k + 1, mc->shards);
    return oc_shard_parse(text, "--shards", s, err);
}

int oc_cmd_mirror(const oc_engine_opts *engine_opts, const oc_mirror_cli *mc, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "occystrap: mirror takes LIST STORE (got %d arguments)\n", argc);
        return 2;
    }
    if (mc->json_stdout && mc->json_file) {
        fprintf(stderr, "occystrap: --json and --json-file exclude each other\n");
        return 2;
    }
    oc_error err;
    oc_error_clear(&err);
    oc_mirror_opts o;
    memset(&o, 0, sizeof o);
    o.list_path = argv[0];
    o.store_dir = argv[1];
    o.fail_fast = mc->fail_fast;
    o.dry_run = mc->dry_run;
    o.json_path = mc->json_stdout ? "-" : mc->json_file;
    o.lock_wait_s = mc->lock_wait_s;
    o.quiet = mc->quiet;
    if (choose_shard(mc, &o.shard, &err) != 0) {
        print_error(&err);
        return 2;
    }
    if (mc->progress && oc_progress_mode_parse(mc->progress, &o.progress) != 0) {
        fprintf(stderr, "occystrap: --progress takes auto, bar, plain or none, not '%s'\n",
                mc->progress);
        return 2;
    }
    int status = 2;
    oc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    oc_platform *plats = calloc((size_t)mc->n_platforms + 1, sizeof *plats);
    if (!plats) {
        fprintf(stderr, "occystrap: out of memory\n");
        return 2;
    }
    for (int i = 0; i < mc->n_platforms; i++) {
        if (strcmp(mc->platforms[i], "all") == 0) {
            o.all_platforms = 1;
            continue;
        }
        if (oc_platform_parse(&plats[o.n_platforms], mc->platforms[i], &err) != 0) {
            print_error(&err);
            goto out;
        }
        o.n_platforms++;
    }
    if (o.all_platforms && o.n_platforms) {
        fprintf(stderr, "occystrap: --platform all cannot be combined with other platforms\n");
        goto out;
    }
    o.platforms = plats;
    oc_engine_opts eo = *engine_opts;
    if (mc->config_path) {
        if (oc_config_load(&cfg, mc->config_path, &err) != 0) {
            print_error(&err);
            goto out;
        }
        eo.config = &cfg;
        if (cfg.jobs && !eo.jobs)
            eo.jobs = cfg.jobs;
        if (cfg.retries)
            eo.retry.max_attempts = cfg.retries;
        if (cfg.stall_timeout && !eo.stall_seconds)
            eo.stall_seconds = cfg.stall_timeout;
    }
    oc_engine engine;
    if (oc_engine_init(&engine, &eo, &err) != 0) {
        print_error(&err);
        goto out;
    }
    if (oc_engine_catch_signals(&engine, &err) != 0) {
        print_error(&err);
        oc_engine_destroy(&engine);
        goto out;
    }
    status = oc_mirror_run(&engine, &o, &err);
    if (status == 2 || (status != 0 && err.code != OC_OK))
        print_error(&err);
    oc_engine_destroy(&engine);
out:
    for (size_t i = 0; i < o.n_platforms; i++)
        oc_platform_free(&plats[i]);
    free(plats);
    oc_config_free(&cfg);
    return status;
}
