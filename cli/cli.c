/* cli.c - the option table, the command table, parsing and dispatch (see
 * cli.h). Options may come before or after the command (getopt permutes);
 * each option names the commands it applies to, and one given to another
 * command is a usage error naming both. The usage text is made from the
 * two tables, so a new command or option is one row each. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The commands, in the order --help lists them. */
static const cli_command commands[] = {
    {"fetch-to-tarfile", "REGISTRY IMAGE TAG TARFILE",
     "download an image into a tarball that `docker load` accepts", 4, 4, cli_fetch_to_tarfile},
    {"fetch-to-extracted", "[--use-unique-names [--exact]] [--expand] REGISTRY IMAGE TAG DIR",
     "download an image into a directory (the tarball's files)", 4, 4, cli_fetch_to_extracted},
    {"recreate-image", "DIR IMAGE TAG TARFILE",
     "write a tarball for one image of a merged directory (no network)", 4, 4, cli_recreate_image},
    {"export", "[--format=oci] STORE TARFILE IMAGE:TAG [IMAGE:TAG...]",
     "one tarball with several images of a store, shared layers once; --format oci:\n"
     "an OCI layout tar (oci-archive) of the registry's exact bytes",
     3, -1, cli_export},
    {"mirror", "LIST STORE | LIST --to REGISTRY[/PREFIX]",
     "mirror every entry of LIST into STORE, all at once, fetching only what\n"
     "changed since the last run; an entry is [REGISTRY/]REPO(:TAG|@DIGEST),\n"
     "REPO:* (every tag) or REPO:/REGEX/ (the tags REGEX matches whole); the\n"
     "registry's exact bytes are kept too, in STORE/oci/ (unless --no-exact);\n"
     "with --to, into a registry instead (registry to registry, every digest\n"
     "unchanged, nothing on disk)",
     1, 2, cli_mirror},
    {"push", "STORE REGISTRY[/PREFIX] [IMAGE[:TAG]...]",
     "push the store's images (all, or those named) to a registry with their\n"
     "exact bytes: every digest unchanged; only what the registry lacks is sent",
     2, -1, cli_push},
    {"list", "[--json] STORE", "what a store holds", 1, 1, cli_list},
    {"expand", "STORE IMAGE TAG DIR", "an image's merged root filesystem from a store", 4, 4,
     cli_expand},
    {"verify", "[--repair] STORE",
     "re-hash everything in a store (STORE/oci/ too); exit 1 if damaged; --repair\n"
     "removes damaged layers, configs and exact blobs (and their markers, and the\n"
     "index.json entries reaching them) so the next mirror fetches them again",
     1, 1, cli_verify},
    {"gc", "[--dry-run] STORE", "drop layers, configs and exact blobs no image references", 1, 1,
     cli_gc},
    {"bundle", "[--since INVENTORY|BUNDLE] [--split SIZE] [--zstd] STORE OUT [IMAGE[:TAG]...]",
     "a tar of the exact bytes of the store's images (all, or those named) to carry\n"
     "across an air gap, less every blob --since lists; OUT - is standard output;\n"
     "--split SIZE: parts OUT.001, OUT.002, ... of at most SIZE (4G, 700M)",
     2, -1, cli_bundle},
    {"inventory", "STORE",
     "what a store holds (its blobs, images and tags) as JSON on stdout, to carry\n"
     "back for bundle --since",
     1, 1, cli_inventory},
    {"import", "BUNDLE|PART... STORE",
     "a bundle (or its parts, in any order) into STORE (made when missing), every\n"
     "byte verified; a part that is missing or damaged leaves STORE as it was and\n"
     "keeps what verified for the next import",
     2, -1, cli_import},
    {"serve", "[--listen HOST:PORT] [--tls-cert F --tls-key F] [--htpasswd F] STORE",
     "the store as a read-only registry (the pull side of the OCI distribution\n"
     "API, HTTP/1.1 and HTTP/2) until SIGINT or SIGTERM; one access-log line a\n"
     "request on stdout",
     1, 1, cli_serve},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* Which commands an option applies to. */
#define NET "fetch-to-tarfile fetch-to-extracted mirror push"
#define PULLS "fetch-to-tarfile fetch-to-extracted mirror"
#define EXPANDS "fetch-to-extracted expand"
#define BOUNDS "fetch-to-tarfile fetch-to-extracted mirror expand"

enum {
    OPT_PLATFORM = 256,
    OPT_INSECURE,
    OPT_CA_CERT,
    OPT_USERNAME,
    OPT_PASSWORD,
    OPT_JOBS,
    OPT_PER_REGISTRY,
    OPT_RETRIES,
    OPT_STALL,
    OPT_RATE_WAIT,
    OPT_MAX_LAYER,
    OPT_UNIQUE,
    OPT_EXACT,
    OPT_NO_EXACT,
    OPT_FORMAT,
    OPT_EXPAND,
    OPT_MAX_EXPAND,
    OPT_EXPAND_STRATEGY,
    OPT_JSON,
    OPT_JSON_FILE,
    OPT_DRY_RUN,
    OPT_REPAIR,
    OPT_FAIL_FAST,
    OPT_PROGRESS,
    OPT_LOCK_WAIT,
    OPT_SHARD,
    OPT_SHARDS,
    OPT_CONFIG,
    OPT_KEEP_HOST,
    OPT_CHUNK_SIZE,
    OPT_TO,
    OPT_SINCE,
    OPT_SPLIT,
    OPT_ZSTD,
    OPT_LISTEN,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_HTPASSWD,
    OPT_ALLOW_REWRITTEN,
    OPT_MAX_CONNECTIONS,
    OPT_IDLE_TIMEOUT,
    OPT_DRAIN_TIMEOUT,
    OPT_REFERRERS,
    OPT_REFERRERS_DEPTH,
    OPT_REFERRER_TYPE,
    OPT_VERBOSE,
    OPT_QUIET,
    OPT_VERSION,
    OPT_HELP,
};

typedef struct cli_option {
    const char *name; /* long name */
    char short_name;  /* or 0 */
    const char *arg;  /* the argument's name in --help, NULL = none */
    int id;
    const char *applies; /* space-separated commands, NULL = every command */
    const char *help;
} cli_option;

/* Grouped by the commands they apply to: --help prints a heading per group. */
static const cli_option options[] = {
    {"platform", 0, "OS/ARCH[/VARIANT]", OPT_PLATFORM, PULLS,
     "image to take from a multi-platform index (default\nlinux/amd64); mirror: repeatable, or "
     "all"},
    {"max-layer-size", 0, "BYTES", OPT_MAX_LAYER, PULLS " import",
     "refuse a layer whose tar grows beyond this\n(default max(1 GiB, 100x its compressed\n"
     "size)); 0: no bound"},
    {"insecure", 0, NULL, OPT_INSECURE, NET, "talk plain HTTP to the registry"},
    {"ca-cert", 0, "FILE", OPT_CA_CERT, NET, "trust this CA bundle for TLS registries"},
    {"username", 0, "USER", OPT_USERNAME, NET, "credentials (else ~/.docker/config.json)"},
    {"password", 0, "PASS", OPT_PASSWORD, NET, "with --username"},
    {"jobs", 'j', "N", OPT_JOBS, NET, "requests in flight at once (default 32)"},
    {"per-registry", 0, "N", OPT_PER_REGISTRY, NET, "requests in flight per registry (default 8)"},
    {"retries", 0, "N", OPT_RETRIES, NET, "attempts per request (default 5)"},
    {"stall-timeout", 0, "SECONDS", OPT_STALL, NET, "retry a transfer idle this long (default 30)"},
    {"rate-limit-wait", 0, "SECONDS", OPT_RATE_WAIT, NET,
     "longest wait for a registry's rate limit or a\nRetry-After (default 60); beyond it, fail"},
    {"config", 0, "FILE", OPT_CONFIG, NET, "per-registry endpoint, TLS, credentials, caps"},
    {"use-unique-names", 0, NULL, OPT_UNIQUE, "fetch-to-extracted", "merged-directory names"},
    {"exact", 0, NULL, OPT_EXACT, "fetch-to-extracted",
     "with --use-unique-names: the registry's exact\nbytes too, in the store's OCI layout "
     "STORE/oci/"},
    {"expand", 0, NULL, OPT_EXPAND, "fetch-to-extracted",
     "also each layer expanded in <hex>/layer/ and\nthe merged root filesystem"},
    {"max-expand-size", 0, "BYTES", OPT_MAX_EXPAND, BOUNDS,
     "refuse an image whose layers' tars grow beyond\nthis in all (default max(1 GiB, 100x "
     "their\ncompressed size)), and an expansion writing\nmore; 0: no bound"},
    {"expand-strategy", 0, "S", OPT_EXPAND_STRATEGY, EXPANDS,
     "auto, oldest-first or write-once (default auto)"},
    {"json", 0, NULL, OPT_JSON, "list mirror push bundle import",
     "list: machine-readable output; mirror, push,\nbundle, import: the run's report on stdout"},
    {"json-file", 0, "FILE", OPT_JSON_FILE, "mirror push bundle import",
     "the run's report in FILE"},
    {"progress", 0, "auto|bar|plain|none", OPT_PROGRESS, "mirror push", "how progress is shown"},
    {"fail-fast", 0, NULL, OPT_FAIL_FAST, "mirror", "stop at the first failed entry"},
    {"no-exact", 0, NULL, OPT_NO_EXACT, "mirror",
     "keep only the 0.2.0 files, not the registry's\nexact bytes (STORE/oci/)"},
    {"lock-wait", 0, "SECONDS", OPT_LOCK_WAIT, "mirror", "wait for another run on the same store"},
    {"referrers", 0, "[=required]", OPT_REFERRERS, "mirror",
     "each image's signatures, SBOMs and attestations\ntoo (the referrers API, else the fallback "
     "tag and\ncosign's .sig/.att/.sbom tags); =required: their\nfailure fails the image"},
    {"referrers-depth", 0, "N", OPT_REFERRERS_DEPTH, "mirror",
     "referrers of referrers this deep (default 3)"},
    {"referrer-type", 0, "TYPE", OPT_REFERRER_TYPE, "mirror",
     "only referrers of this artifact type (repeatable)"},
    {"shard", 0, "K/N", OPT_SHARD, "mirror",
     "mirror only shard K of N of the list (also\n$OCCYSTRAP_SHARD=K/N); N processes share one "
     "store"},
    {"shards", 0, "N", OPT_SHARDS, "mirror",
     "the same, K from $JOB_COMPLETION_INDEX + 1 (a\nKubernetes Indexed Job)"},
    {"to", 0, "REGISTRY[/PREFIX]", OPT_TO, "mirror",
     "copy the list's images into this registry instead\nof a store"},
    {"dry-run", 0, NULL, OPT_DRY_RUN, "gc mirror bundle",
     "say what would be removed, fetched or bundled"},
    {"since", 0, "INVENTORY|BUNDLE", OPT_SINCE, "bundle",
     "only what a store with this inventory (or that\nimported this bundle) lacks"},
    {"split", 0, "SIZE", OPT_SPLIT, "bundle", "parts of at most SIZE bytes (K M G T, KB MB GB)"},
    {"zstd", 0, NULL, OPT_ZSTD, "bundle", "compress the bundle with zstd"},
    {"format", 0, "docker|oci", OPT_FORMAT, "export",
     "docker-load tarball (default), or an OCI layout\ntar of the exact bytes"},
    {"repair", 0, NULL, OPT_REPAIR, "verify", "remove damaged blobs so they are fetched again"},
    {"keep-host", 0, NULL, OPT_KEEP_HOST, "push mirror serve",
     "names keep the registry host: PREFIX/<host>/<repo>\n(push), docker.io/library/busybox "
     "(serve)"},
    {"chunk-size", 0, "BYTES", OPT_CHUNK_SIZE, "push mirror",
     "bytes per PATCH; blobs up to this size go in one\nPUT (default 32 MiB)"},
    {"listen", 0, "HOST:PORT", OPT_LISTEN, "serve", "address to serve on (default 0.0.0.0:5000)"},
    {"tls-cert", 0, "FILE", OPT_TLS_CERT, "serve",
     "HTTPS (and HTTP/2 by ALPN) with this PEM chain"},
    {"tls-key", 0, "FILE", OPT_TLS_KEY, "serve", "... and this PEM key"},
    {"htpasswd", 0, "FILE", OPT_HTPASSWD, "serve", "Basic auth: bcrypt and {SHA} entries"},
    {"allow-rewritten", 0, NULL, OPT_ALLOW_REWRITTEN, "serve",
     "serve images without exact bytes with rewritten\nmanifests (uncompressed layers, other "
     "digests)"},
    {"max-connections", 0, "N", OPT_MAX_CONNECTIONS, "serve",
     "connections at once; more are closed (4096)"},
    {"idle-timeout", 0, "SECONDS", OPT_IDLE_TIMEOUT, "serve", "close idle connections (30)"},
    {"drain-timeout", 0, "SECONDS", OPT_DRAIN_TIMEOUT, "serve",
     "on SIGTERM, wait this long for responses (30)"},
    {"verbose", 'v', NULL, OPT_VERBOSE, NULL, "log each request (twice: curl's trace too)"},
    {"quiet", 'q', NULL, OPT_QUIET, NULL, "only errors"},
    {"version", 0, NULL, OPT_VERSION, NULL, "versions of occystrap and its libraries"},
    {"help", 'h', NULL, OPT_HELP, NULL, "this text"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

void cli_error(const oc_error *err)
{
    fprintf(stderr, "occystrap: error: %s\n", err->msg);
}

void cli_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("occystrap: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *cli_human(uint64_t bytes, char buf[32])
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}

/* text, each line after the first indented by indent columns */
static void put_indented(FILE *out, const char *text, int indent)
{
    for (const char *p = text; *p; p++) {
        fputc(*p, out);
        if (*p == '\n')
            fprintf(out, "%*s", indent, "");
    }
    fputc('\n', out);
}

static void usage(FILE *out)
{
    fputs("usage: occystrap [OPTIONS] COMMAND ARGS...\n\nCommands:\n", out);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(out, "  %s %s\n      ", commands[i].name, commands[i].args);
        put_indented(out, commands[i].help, 6);
    }
    fputs("\nTAG may be a digest (sha256:...). REGISTRY is host[:port]; docker.io means\n"
          "registry-1.docker.io and a one-part Docker Hub image gets library/.\n",
          out);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const cli_option *op = &options[i];
        if (i == 0 || (op->applies != options[i - 1].applies &&
                       (!op->applies || !options[i - 1].applies ||
                        strcmp(op->applies, options[i - 1].applies) != 0)))
            fprintf(out, "\nOptions of %s:\n", op->applies ? op->applies : "every command");
        char left[64];
        if (op->short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", op->short_name, op->name,
                     op->arg ? " " : "", op->arg ? op->arg : "");
        else
            snprintf(left, sizeof left, "--%s%s%s", op->name,
                     op->arg && op->arg[0] != '[' ? " " : "", op->arg ? op->arg : "");
        if (strlen(left) > 28)
            fprintf(out, "  %s\n  %-28s  ", left, "");
        else
            fprintf(out, "  %-28s  ", left);
        put_indented(out, op->help, 32);
    }
}

static int parse_uint(const char *text, const char *what, unsigned long long max,
                      unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end || v > max || text[0] == '-') {
        cli_say("%s wants a number up to %llu, not '%s'", what, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int applies_to(const char *list, const char *cmd)
{
    size_t n = strlen(cmd);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, cmd, n) == 0)
            return 1;
        p = end ? end + 1 : p + len;
    }
    return 0;
}

/* One option's value into o; -1 on a bad value (said), 1 to exit 0 now. */
static int take_option(cli_opts *o, int id, const char *arg)
{
    unsigned long long n = 0;
    switch (id) {
    case OPT_PLATFORM:
        if (o->n_platforms == CLI_MAX_PLATFORMS) {
            cli_say("too many --platform options");
            return -1;
        }
        o->platforms[o->n_platforms++] = arg;
        return 0;
    case OPT_INSECURE:
        o->engine.insecure = 1;
        return 0;
    case OPT_CA_CERT:
        o->engine.ca_file = arg;
        return 0;
    case OPT_USERNAME:
        o->engine.username = arg;
        return 0;
    case OPT_PASSWORD:
        o->engine.password = arg;
        return 0;
    case OPT_JOBS:
        if (parse_uint(arg, "--jobs", 4096, &n) != 0 || n == 0)
            return -1;
        o->engine.jobs = (unsigned)n;
        return 0;
    case OPT_PER_REGISTRY:
        if (parse_uint(arg, "--per-registry", 1024, &n) != 0 || n == 0)
            return -1;
        o->engine.per_registry = (unsigned)n;
        return 0;
    case OPT_RETRIES:
        if (parse_uint(arg, "--retries", 100, &n) != 0 || n == 0)
            return -1;
        o->engine.retries = (int)n;
        return 0;
    case OPT_STALL:
        if (parse_uint(arg, "--stall-timeout", 3600, &n) != 0 || n == 0)
            return -1;
        o->engine.stall_seconds = (long)n;
        return 0;
    case OPT_RATE_WAIT:
        if (parse_uint(arg, "--rate-limit-wait", 86400, &n) != 0 || n == 0)
            return -1;
        o->engine.rate_limit_wait_s = (long)n;
        return 0;
    case OPT_MAX_LAYER:
        if (parse_uint(arg, "--max-layer-size", UINT64_MAX, &n) != 0)
            return -1;
        o->max_layer_bytes = n;
        return 0;
    case OPT_CONFIG:
        o->engine.config_file = arg;
        return 0;
    case OPT_UNIQUE:
        o->use_unique_names = 1;
        return 0;
    case OPT_EXACT:
        o->exact = 1;
        return 0;
    case OPT_NO_EXACT:
        o->no_exact = 1;
        return 0;
    case OPT_FORMAT:
        if (strcmp(arg, "docker") != 0 && strcmp(arg, "oci") != 0) {
            cli_say("--format: docker or oci, not '%s'", arg);
            return -1;
        }
        o->format_oci = strcmp(arg, "oci") == 0;
        return 0;
    case OPT_EXPAND:
        o->expand = 1;
        return 0;
    case OPT_MAX_EXPAND:
        if (parse_uint(arg, "--max-expand-size", UINT64_MAX, &n) != 0)
            return -1;
        o->expand_opts.max_bytes = n;
        o->max_image_bytes = n;
        return 0;
    case OPT_EXPAND_STRATEGY:
        if (oc_expand_strategy_parse(arg) < 0) {
            cli_say("--expand-strategy: auto, oldest-first or write-once");
            return -1;
        }
        o->expand_opts.strategy = (oc_expand_strategy)oc_expand_strategy_parse(arg);
        return 0;
    case OPT_JSON:
        o->json = 1;
        return 0;
    case OPT_JSON_FILE:
        o->json_file = arg;
        return 0;
    case OPT_DRY_RUN:
        o->dry_run = 1;
        return 0;
    case OPT_REPAIR:
        o->repair = 1;
        return 0;
    case OPT_FAIL_FAST:
        o->fail_fast = 1;
        return 0;
    case OPT_PROGRESS:
        o->progress = arg;
        return 0;
    case OPT_LOCK_WAIT:
        if (parse_uint(arg, "--lock-wait", 86400, &n) != 0)
            return -1;
        o->lock_wait_s = (long)n;
        return 0;
    case OPT_SHARD:
        o->shard = arg;
        return 0;
    case OPT_REFERRERS:
        if (arg && strcmp(arg, "required") != 0) {
            cli_say("--referrers takes no value but =required, not '%s'", arg);
            return -1;
        }
        o->referrers = arg ? OC_REFERRERS_REQUIRED : OC_REFERRERS_ON;
        return 0;
    case OPT_REFERRERS_DEPTH:
        if (parse_uint(arg, "--referrers-depth", 16, &n) != 0 || n == 0)
            return -1;
        o->referrers_depth = (unsigned)n;
        return 0;
    case OPT_REFERRER_TYPE:
        if (o->n_referrer_types == CLI_MAX_PLATFORMS) {
            cli_say("too many --referrer-type options");
            return -1;
        }
        o->referrer_types[o->n_referrer_types++] = arg;
        return 0;
    case OPT_SHARDS:
        if (parse_uint(arg, "--shards", 65536, &n) != 0 || n == 0)
            return -1;
        o->shards = (unsigned)n;
        return 0;
    case OPT_TO:
        o->to = arg;
        return 0;
    case OPT_SINCE:
        o->since = arg;
        return 0;
    case OPT_SPLIT:
        o->split = arg;
        return 0;
    case OPT_ZSTD:
        o->zstd = 1;
        return 0;
    case OPT_KEEP_HOST:
        o->keep_host = 1;
        return 0;
    case OPT_CHUNK_SIZE:
        if (parse_uint(arg, "--chunk-size", UINT64_MAX, &n) != 0)
            return -1;
        if (n < 1024) {
            cli_say("--chunk-size wants at least 1024 bytes, not %llu", n);
            return -1;
        }
        o->chunk_size = n;
        return 0;
    case OPT_LISTEN:
        o->serve.listen = arg;
        return 0;
    case OPT_TLS_CERT:
        o->serve.tls_cert = arg;
        return 0;
    case OPT_TLS_KEY:
        o->serve.tls_key = arg;
        return 0;
    case OPT_HTPASSWD:
        o->serve.htpasswd = arg;
        return 0;
    case OPT_ALLOW_REWRITTEN:
        o->serve.allow_rewritten = 1;
        return 0;
    case OPT_MAX_CONNECTIONS:
        if (parse_uint(arg, "--max-connections", 1000000, &n) != 0 || n == 0)
            return -1;
        o->serve.max_connections = (unsigned)n;
        return 0;
    case OPT_IDLE_TIMEOUT:
        if (parse_uint(arg, "--idle-timeout", 86400, &n) != 0 || n == 0)
            return -1;
        o->serve.idle_timeout_s = (unsigned)n;
        return 0;
    case OPT_DRAIN_TIMEOUT:
        if (parse_uint(arg, "--drain-timeout", 86400, &n) != 0 || n == 0)
            return -1;
        o->serve.drain_timeout_s = (unsigned)n;
        return 0;
    case OPT_VERBOSE:
        o->engine.verbose++;
        return 0;
    case OPT_QUIET:
        o->quiet = 1;
        return 0;
    case OPT_VERSION: {
        char text[2048];
        oc_version_describe(text, sizeof text);
        fputs(text, stdout);
        return 1;
    }
    case OPT_HELP:
        usage(stdout);
        return 1;
    }
    return -1;
}

/* Tuning knobs for the benchmarks: OCCYSTRAP_PIPE=CHUNK_KIB:IN_CHUNKS:OUT_BUFS:THREADS and
 * OCCYSTRAP_WRITE=auto|direct|writeback|buffered (bench/README.md). Unset, the pipeline's
 * defaults apply. */
static int pipe_from_env(cli_opts *o)
{
    const char *write_env = getenv("OCCYSTRAP_WRITE");
    if (write_env) {
        static const char *const modes[] = {"auto", "direct", "writeback", "buffered"};
        int mode = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(write_env, modes[i]) == 0)
                mode = i;
        if (mode < 0) {
            cli_say("OCCYSTRAP_WRITE wants auto, direct, writeback or buffered, not '%s'",
                    write_env);
            return -1;
        }
        o->engine.pipe_write = mode;
    }
    const char *pipe_env = getenv("OCCYSTRAP_PIPE");
    if (!pipe_env)
        return 0;
    unsigned kib = 0, in = 0, out = 0, threads = 0;
    if (sscanf(pipe_env, "%u:%u:%u:%u", &kib, &in, &out, &threads) < 3 || kib < 4 || kib > 65536 ||
        in < 1 || in > 64 || out < 1 || out > 64 || threads > 64) {
        cli_say("OCCYSTRAP_PIPE wants CHUNK_KIB:IN:OUT[:THREADS], not '%s'", pipe_env);
        return -1;
    }
    o->engine.pipe_chunk_size = (size_t)kib * 1024;
    o->engine.pipe_in_chunks = (int)in;
    o->engine.pipe_out_bufs = (int)out;
    o->engine.pipe_threads = (int)threads;
    return 0;
}

int oc_cli_main(int argc, char **argv)
{
    struct option longopts[N_OPTIONS + 1];
    char shortopts[2 * N_OPTIONS + 1];
    size_t ns = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        longopts[i] =
            (struct option){options[i].name,
                            !options[i].arg            ? no_argument
                            : options[i].arg[0] == '[' ? optional_argument /* "[=VALUE]" */
                                                       : required_argument,
                            NULL, options[i].id};
        if (options[i].short_name) {
            shortopts[ns++] = options[i].short_name;
            if (options[i].arg)
                shortopts[ns++] = ':';
        }
    }
    longopts[N_OPTIONS] = (struct option){NULL, 0, NULL, 0};
    shortopts[ns] = '\0';

    cli_opts o;
    memset(&o, 0, sizeof o);
    oc_engine_options_init(&o.engine);
    o.max_layer_bytes = OC_LIMIT_DEFAULT;
    o.max_image_bytes = OC_LIMIT_DEFAULT;
    oc_serve_options_init(&o.serve);
    if (pipe_from_env(&o) != 0)
        return EXIT_USAGE;
    if (getenv("OCCYSTRAP_EXPAND_NO_SYNC")) /* benchmarks: time the writing alone */
        o.expand_opts.no_sync = 1;
    int given[N_OPTIONS] = {0};
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        size_t i = 0;
        for (; i < N_OPTIONS; i++)
            if (options[i].id == c || (options[i].short_name && options[i].short_name == c))
                break;
        if (i == N_OPTIONS) {
            usage(stderr);
            return EXIT_USAGE;
        }
        given[i] = 1;
        int r = take_option(&o, options[i].id, optarg);
        if (r != 0)
            return r > 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    const cli_command *cmd = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        cli_say("unknown command '%s' (try --help)", name);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (given[i] && options[i].applies && !applies_to(options[i].applies, cmd->name)) {
            cli_say("--%s does not apply to %s (only to: %s)", options[i].name, cmd->name,
                    options[i].applies);
            return EXIT_USAGE;
        }
    }
    if (o.engine.password && !o.engine.username) {
        cli_say("--password needs --username");
        return EXIT_USAGE;
    }
    int nargs = argc - optind - 1;
    if (nargs < cmd->min_args || (cmd->max_args >= 0 && nargs > cmd->max_args)) {
        const char *args = cmd->args; /* the operands, without the options in front */
        while (strncmp(args, "[--", 3) == 0 && strstr(args, "] "))
            args = strstr(args, "] ") + 2;
        cli_say("%s takes %s (got %d arguments)%s", cmd->name, args, nargs,
                strcmp(cmd->name, "recreate-image") == 0
                    ? "; for several images use export STORE TARFILE IMAGE:TAG..."
                    : "");
        return EXIT_USAGE;
    }
    oc_error err;
    if (oc_global_init(&err) != 0) {
        cli_error(&err);
        return EXIT_FAILED;
    }
    int status = cmd->run(&o, nargs, argv + optind + 1);
    oc_global_cleanup();
    return status;
}
