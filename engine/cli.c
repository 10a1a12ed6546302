/* cli.c - the command line (DESIGN 2): global options, the three commands of
 * occystrap 0.2.0 with their argument order, and exit status: 0 done, 1 the
 * work failed, 2 usage or configuration error. The commands are thin: they
 * parse, call the engine, and print the engine's one-line errors. */
#include "engine/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/emit_dir.h"
#include "engine/emit_tar.h"
#include "engine/engine.h"
#include "engine/manifest.h"
#include "engine/pull.h"
#include "engine/ref.h"
#include "engine/version.h"
#include "io/atomicfile.h"
#include "io/fsutil.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef struct cli_opts {
    oc_engine_opts engine;
    const char *platform;
    int use_unique_names;
    int expand;
    int quiet;
    uint64_t max_layer_bytes;
} cli_opts;

static void usage(FILE *out)
{
    fputs("usage: occystrap [OPTIONS] COMMAND ARGS...\n"
          "\n"
          "Commands:\n"
          "  fetch-to-tarfile REGISTRY IMAGE TAG TARFILE\n"
          "      download an image into a tarball that `docker load` accepts\n"
          "  fetch-to-extracted [--use-unique-names] [--expand] REGISTRY IMAGE TAG DIR\n"
          "      download an image into a directory (the tarball's files)\n"
          "  recreate-image DIR IMAGE TAG TARFILE\n"
          "      write a tarball for one image of a merged directory (not implemented yet)\n"
          "  mirror LIST STORE      mirror every entry of LIST into STORE (not implemented yet)\n"
          "  list STORE             what a store holds (not implemented yet)\n"
          "  expand STORE IMAGE TAG DIR  merged root filesystem (not implemented yet)\n"
          "  verify STORE           re-hash everything in a store (not implemented yet)\n"
          "  gc STORE               drop unreferenced blobs (not implemented yet)\n"
          "\n"
          "TAG may be a digest (sha256:...). REGISTRY is host[:port]; docker.io means\n"
          "registry-1.docker.io and a one-part Docker Hub image gets library/.\n"
          "\n"
          "Options:\n"
          "  --platform OS/ARCH[/VARIANT]  image to take from a multi-platform index\n"
          "                                (default linux/amd64)\n"
          "  --insecure                    talk plain HTTP to the registry\n"
          "  --ca-cert FILE                trust this CA bundle for TLS registries\n"
          "  --username USER --password PASS\n"
          "                                credentials (else ~/.docker/config.json)\n"
          "  -j, --jobs N                  requests in flight at once (default 32)\n"
          "  --per-registry N              requests in flight per registry (default 8)\n"
          "  --retries N                   attempts per request (default 5)\n"
          "  --stall-timeout SECONDS       retry a transfer idle this long (default 30)\n"
          "  --max-layer-size BYTES        refuse a layer whose tar is larger\n"
          "  --use-unique-names            (fetch-to-extracted) merged-directory names\n"
          "  --expand                      (fetch-to-extracted) expand layers (not implemented "
          "yet)\n"
          "  -v, --verbose                 log each request (twice: curl's trace too)\n"
          "  -q, --quiet                   only errors\n"
          "  --version                     versions of occystrap and its libraries\n"
          "  -h, --help                    this text\n",
          out);
}

static void print_error(const oc_error *err)
{
    fprintf(stderr, "occystrap: error: %s\n", err->msg);
}

/* ---- fetch-to-tarfile / fetch-to-extracted ---- */

typedef struct fetch_run {
    const char *tarfile; /* fetch-to-tarfile */
    const char *dir;     /* fetch-to-extracted */
    const char *image;
    const char *tag;
    int unique_names;
    char *repo_tag;
    int ok;
    oc_error err;
} fetch_run;

static void on_pulled(void *opaque, oc_pulled_image *img, const oc_error *err)
{
    fetch_run *run = opaque;
    if (err) {
        run->err = *err;
        return;
    }
    int rc;
    if (run->tarfile)
        rc = oc_emit_tarball(img, run->repo_tag, run->tarfile, &run->err);
    else
        rc = oc_emit_dir(img, run->dir, run->image, run->tag, run->repo_tag, run->unique_names,
                         &run->err);
    run->ok = rc == 0;
}

static int cmd_fetch(cli_opts *o, int argc, char **argv, int to_tar)
{
    const char *cmd = to_tar ? "fetch-to-tarfile" : "fetch-to-extracted";
    if (argc != 4) {
        fprintf(stderr, "occystrap: %s takes REGISTRY IMAGE TAG %s (got %d arguments)\n", cmd,
                to_tar ? "TARFILE" : "DIR", argc);
        return EXIT_USAGE;
    }
    if (o->expand) {
        fprintf(stderr, "occystrap: --expand is not implemented yet\n");
        return EXIT_USAGE;
    }
    oc_error err;
    oc_error_clear(&err);
    oc_ref ref;
    if (oc_ref_from_parts(&ref, argv[0], argv[1], argv[2], &err) != 0) {
        print_error(&err);
        return EXIT_USAGE;
    }
    oc_platform want = {0};
    if (oc_platform_parse(&want, o->platform ? o->platform : "linux/amd64", &err) != 0) {
        print_error(&err);
        oc_ref_free(&ref);
        return EXIT_USAGE;
    }
    fetch_run run = {
        .tarfile = to_tar ? argv[3] : NULL,
        .dir = to_tar ? NULL : argv[3],
        .image = argv[1],
        .tag = argv[2],
        .unique_names = o->use_unique_names,
        .repo_tag = oc_ref_familiar(&ref),
    };
    oc_error_clear(&run.err);
    int status = EXIT_FAILED;
    char *work = NULL;
    oc_engine engine;
    int engine_up = 0;

    if (to_tar) {
        work = oc_scratch_dir_beside(run.tarfile, &err);
    } else if (oc_mkdirs(run.dir, &err) == 0) {
        char *tmp = oc_emit_dir_workdir(run.dir, &err);
        work = tmp ? oc_scratch_dir_beside(tmp, &err) : NULL;
        free(tmp);
    }
    if (!work)
        goto out;
    if (oc_engine_init(&engine, &o->engine, &err) != 0)
        goto out;
    engine_up = 1;
    oc_pull_opts popts = {
        .platform = &want, .work_dir = work, .max_layer_bytes = o->max_layer_bytes};
    if (oc_pull_start(&engine, &ref, &popts, on_pulled, &run, &err) != 0)
        goto out;
    uv_run(engine.loop, UV_RUN_DEFAULT);
    if (run.ok) {
        status = EXIT_OK;
        if (!o->quiet)
            fprintf(stderr, "occystrap: %s -> %s\n", run.repo_tag, to_tar ? run.tarfile : run.dir);
    } else {
        err = run.err;
        if (err.code == OC_OK)
            oc_error_set(&err, OC_E_NET, "fetch of %s ended without a result", run.repo_tag);
    }
out:
    if (status != EXIT_OK)
        print_error(&err);
    if (engine_up)
        oc_engine_destroy(&engine);
    if (work) {
        oc_error rm_err;
        if (oc_remove_tree(work, &rm_err) != 0)
            print_error(&rm_err);
        free(work);
    }
    free(run.repo_tag);
    oc_platform_free(&want);
    oc_ref_free(&ref);
    return status;
}

/* ---- dispatch ---- */

enum {
    OPT_PLATFORM = 256,
    OPT_INSECURE,
    OPT_CA_CERT,
    OPT_USERNAME,
    OPT_PASSWORD,
    OPT_PER_REGISTRY,
    OPT_RETRIES,
    OPT_STALL,
    OPT_MAX_LAYER,
    OPT_UNIQUE,
    OPT_EXPAND,
    OPT_VERSION,
};

static int parse_uint(const char *text, const char *what, unsigned long long max,
                      unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end || v > max || text[0] == '-') {
        fprintf(stderr, "occystrap: %s wants a number up to %llu, not '%s'\n", what, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

int oc_cli_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"ca-cert", required_argument, NULL, OPT_CA_CERT},
        {"username", required_argument, NULL, OPT_USERNAME},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"jobs", required_argument, NULL, 'j'},
        {"per-registry", required_argument, NULL, OPT_PER_REGISTRY},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"stall-timeout", required_argument, NULL, OPT_STALL},
        {"max-layer-size", required_argument, NULL, OPT_MAX_LAYER},
        {"use-unique-names", no_argument, NULL, OPT_UNIQUE},
        {"expand", no_argument, NULL, OPT_EXPAND},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_opts o;
    memset(&o, 0, sizeof o);
    oc_retry_policy_default(&o.engine.retry);
    unsigned long long n = 0;
    int c;
    while ((c = getopt_long(argc, argv, "j:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_PLATFORM: o.platform = optarg; break;
        case OPT_INSECURE: o.engine.insecure = 1; break;
        case OPT_CA_CERT: o.engine.ca_file = optarg; break;
        case OPT_USERNAME: o.engine.username = optarg; break;
        case OPT_PASSWORD: o.engine.password = optarg; break;
        case 'j':
            if (parse_uint(optarg, "--jobs", 4096, &n) != 0 || n == 0)
                return EXIT_USAGE;
            o.engine.jobs = (unsigned)n;
            break;
        case OPT_PER_REGISTRY:
            if (parse_uint(optarg, "--per-registry", 1024, &n) != 0 || n == 0)
                return EXIT_USAGE;
            o.engine.per_registry = (unsigned)n;
            break;
        case OPT_RETRIES:
            if (parse_uint(optarg, "--retries", 100, &n) != 0 || n == 0)
                return EXIT_USAGE;
            o.engine.retry.max_attempts = (int)n;
            break;
        case OPT_STALL:
            if (parse_uint(optarg, "--stall-timeout", 3600, &n) != 0 || n == 0)
                return EXIT_USAGE;
            o.engine.stall_seconds = (long)n;
            break;
        case OPT_MAX_LAYER:
            if (parse_uint(optarg, "--max-layer-size", UINT64_MAX, &n) != 0)
                return EXIT_USAGE;
            o.max_layer_bytes = n;
            break;
        case OPT_UNIQUE: o.use_unique_names = 1; break;
        case OPT_EXPAND: o.expand = 1; break;
        case 'v': o.engine.verbose++; break;
        case 'q': o.quiet = 1; break;
        case OPT_VERSION: oc_version_print(stdout); return EXIT_OK;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (o.engine.password && !o.engine.username) {
        fprintf(stderr, "occystrap: --password needs --username\n");
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());

    oc_error err;
    if (oc_http_global_init(&err) != 0) {
        print_error(&err);
        return EXIT_FAILED;
    }
    int status;
    if (strcmp(cmd, "fetch-to-tarfile") == 0) {
        status = cmd_fetch(&o, nargs, args, 1);
    } else if (strcmp(cmd, "fetch-to-extracted") == 0) {
        status = cmd_fetch(&o, nargs, args, 0);
    } else if (strcmp(cmd, "recreate-image") == 0 || strcmp(cmd, "mirror") == 0 ||
               strcmp(cmd, "list") == 0 || strcmp(cmd, "expand") == 0 ||
               strcmp(cmd, "verify") == 0 || strcmp(cmd, "gc") == 0) {
        fprintf(stderr, "occystrap: %s: not implemented yet\n", cmd);
        status = EXIT_USAGE;
    } else {
        fprintf(stderr, "occystrap: unknown command '%s' (try --help)\n", cmd);
        status = EXIT_USAGE;
    }
    oc_http_global_cleanup();
    return status;
}
