/* cli.h - the occystrap command: a client of the public library header
 * (occystrap/occystrap.h) and nothing else, as curl's tool is of libcurl.
 *
 * cli.c parses the options (before or after the command, as occystrap
 * 0.2.0 took them) against one option table, checks that each applies to
 * the command given, and dispatches through the command table; each
 * command lives in its own cmd_*.c. run.c puts an engine on a loop of the
 * tool's own, turns the library's events into stderr lines, and stops the
 * run on SIGINT/SIGTERM. Exit status: 0 done, 1 the work failed, 2 usage or
 * configuration error, 128+N interrupted by signal N. */
#ifndef OC_CLI_CLI_H
#define OC_CLI_CLI_H

#include <stdint.h>

#include "occystrap/occystrap.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define CLI_MAX_PLATFORMS 32

/* Every option, parsed; each command reads the ones that apply to it. */
typedef struct cli_opts {
    oc_engine_options engine;
    const char *platforms[CLI_MAX_PLATFORMS]; /* every --platform */
    int n_platforms;
    int use_unique_names;
    int exact;      /* fetch-to-extracted --exact */
    int no_exact;   /* mirror --no-exact */
    int format_oci; /* export --format oci */
    int expand;
    int quiet;
    int json;
    const char *json_file;
    int dry_run;
    int repair;
    int fail_fast;
    const char *progress;
    long lock_wait_s;
    const char *shard;        /* --shard K/N */
    unsigned shards;          /* --shards N (K from $JOB_COMPLETION_INDEX) */
    uint64_t max_layer_bytes; /* OC_LIMIT_DEFAULT unless given */
    uint64_t max_image_bytes; /* --max-expand-size, for the pulls; OC_LIMIT_DEFAULT unless given */
    oc_expand_opts expand_opts;
    int keep_host;
    uint64_t chunk_size;
    const char *to;              /* mirror --to REGISTRY[/PREFIX] */
    const char *since;           /* bundle --since INVENTORY|BUNDLE */
    const char *split;           /* bundle --split SIZE, as given */
    int zstd;                    /* bundle --zstd */
    oc_referrers_mode referrers; /* mirror --referrers[=required] */
    unsigned referrers_depth;
    const char *referrer_types[CLI_MAX_PLATFORMS];
    size_t n_referrer_types;
    oc_serve_options serve; /* serve's options (its store comes from the arguments) */
} cli_opts;

typedef struct cli_command {
    const char *name;
    const char *args; /* "REGISTRY IMAGE TAG TARFILE" */
    const char *help; /* one line or more, each indented by the usage text */
    int min_args, max_args;
    int (*run)(cli_opts *o, int argc, char **argv);
} cli_command;

/* The commands, by file. */
int cli_fetch_to_tarfile(cli_opts *o, int argc, char **argv);
int cli_fetch_to_extracted(cli_opts *o, int argc, char **argv);
int cli_recreate_image(cli_opts *o, int argc, char **argv);
int cli_export(cli_opts *o, int argc, char **argv);
int cli_list(cli_opts *o, int argc, char **argv);
int cli_verify(cli_opts *o, int argc, char **argv);
int cli_gc(cli_opts *o, int argc, char **argv);
int cli_expand(cli_opts *o, int argc, char **argv);
int cli_mirror(cli_opts *o, int argc, char **argv);
int cli_push(cli_opts *o, int argc, char **argv);
int cli_mirror_to(cli_opts *o, int argc, char **argv);
int cli_serve(cli_opts *o, int argc, char **argv);
int cli_bundle(cli_opts *o, int argc, char **argv);
int cli_inventory(cli_opts *o, int argc, char **argv);
int cli_import(cli_opts *o, int argc, char **argv);

/* "occystrap: error: MSG" on stderr. */
void cli_error(const oc_error *err);
/* "occystrap: " and the formatted line on stderr. */
void cli_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "1.5 MiB" (binary units) into buf, returned. */
const char *cli_human(uint64_t bytes, char buf[32]);

int oc_cli_main(int argc, char **argv);

#endif
