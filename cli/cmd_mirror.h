/* cmd_mirror.h - `occystrap mirror LIST STORE`: the command-line side of
 * mirror.c (options checked, config loaded, engine built, exit status). */
#ifndef OC_CLI_CMD_MIRROR_H
#define OC_CLI_CMD_MIRROR_H

#include "engine/registry/engine.h"

typedef struct oc_mirror_cli {
    const char *const *platforms; /* --platform values ("all" allowed) */
    int n_platforms;
    int fail_fast;
    int dry_run;
    int json_stdout;         /* --json */
    const char *json_file;   /* --json-file FILE */
    const char *progress;    /* --progress auto|bar|plain|none, NULL = auto */
    long lock_wait_s;        /* --lock-wait */
    const char *config_path; /* --config */
    int quiet;
    const char *shard; /* --shard K/N */
    unsigned shards;   /* --shards N (K from $JOB_COMPLETION_INDEX) */
} oc_mirror_cli;

/* engine_opts is copied and completed from the config file. */
int oc_cmd_mirror(const oc_engine_opts *engine_opts, const oc_mirror_cli *mc, int argc,
                  char **argv);

#endif
