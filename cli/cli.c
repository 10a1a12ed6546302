/* cli.c - the command line (DESIGN 2): global options, the three commands of
 * occystrap 0.2.0 with their argument order, and exit status: 0 done, 1 the
 * work failed, 2 usage or configuration error. The commands are thin: they
 * parse, call the engine, and print the engine's one-line errors. */
#include "cli/cli.h"
#include "cli/cmd_mirror.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/store/catalog.h"
#include "engine/cmd_expand.h"
#include "engine/emit_dir.h"
#include "engine/emit_tar.h"
#include "engine/registry/engine.h"
#include "engine/image/manifest.h"
#include "engine/registry/pull.h"
#include "engine/store/recreate.h"
#include "engine/image/ref.h"
#include "engine/store/store.h"
#include "engine/store/store_gc.h"
#include "engine/store/store_list.h"
#include "engine/store/store_relist.h"
#include "engine/store/store_verify.h"
#include "io/version.h"
#include "io/atomicfile.h"
#include "io/fsutil.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef struct cli_opts {
    oc_engine_opts engine;
    const char *platform;
    int use_unique_names;
    int expand;
    int quiet;
    int json;
    int dry_run;
    int repair;
    uint64_t max_layer_bytes;
    oc_expand_opts expand_opts; /* --expand, expand */
    const char *platforms[32];  /* every --platform, for mirror */
    int n_platforms;
    oc_mirror_cli mirror; /* mirror's own options */
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
          "      write a tarball for one image of a merged directory (no network)\n"
          "  export STORE TARFILE IMAGE:TAG [IMAGE:TAG...]\n"
          "      one tarball with several images of a store, shared layers once\n"
          "  mirror LIST STORE      mirror every entry of LIST into STORE, all at once,\n"
          "                         fetching only what changed since the last run; an\n"
          "                         entry is [REGISTRY/]REPO(:TAG|@DIGEST), REPO:* (every\n"
          "                         tag) or REPO:/REGEX/ (the tags REGEX matches whole)\n"
          "  list [--json] STORE    what a store holds\n"
          "  expand STORE IMAGE TAG DIR  an image's merged root filesystem from a store\n"
          "  verify [--repair] STORE\n"
          "                         re-hash everything in a store; exit 1 if damaged;\n"
          "                         --repair removes damaged layers and configs (and their\n"
          "                         markers) so the next mirror fetches them again\n"
          "  gc [--dry-run] STORE   drop layers and configs no image references\n"
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
          "  --expand                      (fetch-to-extracted) also each layer expanded in\n"
          "                                <hex>/layer/ and the merged root filesystem\n"
          "  --max-expand-size BYTES       (--expand, expand) refuse to write more than this\n"
          "  --expand-strategy S           auto, oldest-first or write-once (default auto)\n"
          "  --json                        (list) machine-readable output\n"
          "  --dry-run                     (gc) report what would be removed\n"
          "Mirror options:\n"
          "  --config FILE                 per-registry endpoint, TLS, credentials, caps\n"
          "  --platform P (repeatable|all) platforms to mirror (default linux/amd64)\n"
          "  --progress auto|bar|plain|none\n"
          "  --json | --json-file FILE     the run's report on stdout or in FILE\n"
          "  --fail-fast                   stop at the first failed entry\n"
          "  --dry-run                     say what would be fetched\n"
          "  --lock-wait SECONDS           wait for another run on the same store\n"
          "  --shard K/N                   mirror only shard K of N of the list (also\n"
          "                                $OCCYSTRAP_SHARD=K/N); N processes share one store\n"
          "  --shards N                    the same, K from $JOB_COMPLETION_INDEX + 1\n"
          "                                (a Kubernetes Indexed Job)\n"
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
    const oc_ref *ref;
    oc_store *store; /* fetch-to-extracted */
    size_t reused;   /* layers the store already held */
    int expand;      /* --expand */
    int quiet;
    const oc_expand_opts *xo;
    oc_tarball *tarball; /* fetch-to-tarfile: being written while layers arrive */
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
    if (run->tarfile) {
        rc = oc_tarball_finish(run->tarball, img, run->repo_tag, &run->err);
        run->tarball = NULL;
    } else {
        oc_emit_dir_opts eo = {.image = run->image,
                               .tag = run->tag,
                               .repo_tag = run->repo_tag,
                               .unique_names = run->unique_names,
                               .registry = run->ref->registry,
                               .repository = run->ref->repository};
        for (size_t i = 0; i < img->n_layers; i++)
            run->reused += img->layers[i].reused;
        rc = oc_emit_dir(run->store, img, &eo, &run->err);
        if (rc == 0 && run->expand)
            rc = oc_fetch_expand(img, run->dir, run->image, run->tag, run->unique_names, run->xo,
                                 run->quiet, &run->err);
    }
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
    if (o->expand && to_tar) {
        fprintf(stderr, "occystrap: --expand goes with fetch-to-extracted\n");
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
        .ref = &ref,
        .expand = o->expand,
        .quiet = o->quiet,
        .xo = &o->expand_opts,
    };
    oc_error_clear(&run.err);
    int status = EXIT_FAILED;
    char *work = NULL; /* fetch-to-tarfile's scratch directory */
    const char *work_dir = NULL;
    oc_engine engine;
    int engine_up = 0;

    if (to_tar) {
        work_dir = work = oc_scratch_dir_beside(run.tarfile, &err);
        if (work_dir && !(run.tarball = oc_tarball_open(run.tarfile, &err)))
            work_dir = NULL;
    } else if ((run.store = oc_store_open(run.dir, OC_STORE_WRITE, &err))) {
        work_dir = oc_store_run_dir(run.store);
    }
    if (!work_dir)
        goto out;
    if (oc_engine_init(&engine, &o->engine, &err) != 0)
        goto out;
    engine_up = 1;
    if (oc_engine_catch_signals(&engine, &err) != 0)
        goto out;
    oc_pull_opts popts = {.platform = &want,
                          .work_dir = work_dir,
                          .max_layer_bytes = o->max_layer_bytes,
                          .no_sync_layers = to_tar}; /* the tarball is fsynced instead */
    if (run.store) {
        popts.have_layer = oc_store_have_layer;
        popts.have_layer_opaque = run.store;
    }
    if (run.tarball) { /* the first layer is written straight into the tarball */
        popts.layer_output = oc_tarball_layer_output;
        popts.layer_output_opaque = run.tarball;
    }
    if (oc_pull_start(&engine, &ref, &popts, on_pulled, &run, &err) != 0)
        goto out;
    uv_run(engine.loop, UV_RUN_DEFAULT);
    oc_engine_release_signals(&engine);
    if (run.ok) { /* a signal in the last turn of the loop came too late to stop it */
        status = EXIT_OK;
        if (!o->quiet && run.reused)
            fprintf(stderr, "occystrap: %s -> %s (%zu layers were already there)\n", run.repo_tag,
                    run.dir, run.reused);
        else if (!o->quiet)
            fprintf(stderr, "occystrap: %s -> %s\n", run.repo_tag, to_tar ? run.tarfile : run.dir);
    } else {
        err = run.err;
        if (err.code == OC_OK)
            oc_error_set(&err, OC_E_NET, "fetch of %s ended without a result", run.repo_tag);
        if (engine.interrupted > 0) { /* nothing half-written is left: say so */
            if (to_tar)
                oc_error_set(&err, OC_E_CANCELLED, "%s: %s was not written (nothing of it is left)",
                             engine.interrupted_why, run.tarfile);
            else
                oc_error_set(&err, OC_E_CANCELLED,
                             "%s: %s was not written to %s (layers that verified are kept)",
                             engine.interrupted_why, run.repo_tag, run.dir);
            status = 128 + engine.interrupted;
        }
    }
out:
    if (status != EXIT_OK)
        print_error(&err);
    if (engine_up)
        oc_engine_destroy(&engine);
    oc_tarball_abort(run.tarball); /* still open: the fetch failed */
    oc_store_close(run.store);
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

/* ---- store commands: recreate-image, export, list, verify, gc ---- */

static const char *human(uint64_t bytes, char buf[32])
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

static int write_store_tarball(cli_opts *o, const char *dir, const oc_recreate_item *items,
                               size_t n, const char *tarfile)
{
    oc_error err;
    oc_error_clear(&err);
    oc_store *s = oc_store_open(dir, OC_STORE_READ, &err);
    if (!s) {
        print_error(&err);
        return EXIT_FAILED;
    }
    const char *method = getenv("OCCYSTRAP_COPY"); /* "readwrite": for measurements */
    oc_recreate_opts ro = {.force_readwrite = method && strcmp(method, "readwrite") == 0};
    oc_recreate_stats st;
    int rc = oc_recreate(s, items, n, tarfile, &ro, &st, &err);
    oc_store_close(s);
    if (rc != 0) {
        print_error(&err);
        return EXIT_FAILED;
    }
    if (!o->quiet) {
        char b[32];
        fprintf(stderr,
                "occystrap: %zu image%s -> %s (%zu layers, %zu shared references, %s; "
                "copy_file_range %llu, sendfile %llu, read/write %llu bytes)\n",
                st.images, st.images == 1 ? "" : "s", tarfile, st.layers, st.layers_dups,
                human(st.copy.total_bytes, b), (unsigned long long)st.copy.copy_file_range_bytes,
                (unsigned long long)st.copy.sendfile_bytes,
                (unsigned long long)st.copy.readwrite_bytes);
    }
    return EXIT_OK;
}

static int cmd_recreate(cli_opts *o, int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr,
                "occystrap: recreate-image takes DIR IMAGE TAG TARFILE (got %d arguments)"
                "; for several images use export STORE TARFILE IMAGE:TAG...\n",
                argc);
        return EXIT_USAGE;
    }
    oc_recreate_item item = {.image = argv[1], .tag = argv[2]};
    return write_store_tarball(o, argv[0], &item, 1, argv[3]);
}

static int cmd_export(cli_opts *o, int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "occystrap: export takes STORE TARFILE IMAGE:TAG [IMAGE:TAG...] (got %d "
                "arguments)\n",
                argc);
        return EXIT_USAGE;
    }
    size_t n = (size_t)argc - 2;
    oc_recreate_item *items = calloc(n, sizeof *items);
    char **parts = calloc(2 * n, sizeof *parts);
    int status = EXIT_USAGE;
    oc_error err;
    oc_error_clear(&err);
    if (!items || !parts) {
        fprintf(stderr, "occystrap: out of memory\n");
        status = EXIT_FAILED;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (oc_catalog_split_ref(argv[2 + i], &parts[2 * i], &parts[2 * i + 1], &err) != 0) {
            print_error(&err);
            goto out;
        }
        items[i].image = parts[2 * i];
        items[i].tag = parts[2 * i + 1];
    }
    status = write_store_tarball(o, argv[0], items, n, argv[1]);
out:
    for (size_t i = 0; parts && i < 2 * n; i++)
        free(parts[i]);
    free(parts);
    free(items);
    return status;
}

static const char *jstr(json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : dflt;
}

static void print_table(json_t *doc)
{
    json_t *images = json_object_get(doc, "images");
    int wi = 5, wt = 3;
    size_t i;
    json_t *img;
    json_array_foreach(images, i, img)
    {
        int a = (int)strlen(jstr(img, "image", "?")), b = (int)strlen(jstr(img, "tag", "?"));
        wi = a > wi ? a : wi;
        wt = b > wt ? b : wt;
    }
    printf("%-*s  %-*s  %6s  %10s  %-20s  %s\n", wi, "IMAGE", wt, "TAG", "LAYERS", "SIZE",
           "FETCHED", "MANIFEST DIGEST");
    json_array_foreach(images, i, img)
    {
        char b[32];
        char digest[32];
        snprintf(digest, sizeof digest, "%.19s", jstr(img, "manifest_digest", "-"));
        printf("%-*s  %-*s  %6lld  %10s  %-20s  %s%s\n", wi, jstr(img, "image", "?"), wt,
               jstr(img, "tag", "?"), (long long)json_integer_value(json_object_get(img, "layers")),
               human((uint64_t)json_integer_value(json_object_get(img, "bytes")), b),
               jstr(img, "fetched_at", "-"), digest,
               json_is_true(json_object_get(img, "in_catalog")) ? "" : "  (not in catalog.json)");
    }
    char b1[32], b2[32];
    printf("%zu image%s, %lld distinct layers, %s of layers (%s without sharing)\n",
           json_array_size(images), json_array_size(images) == 1 ? "" : "s",
           (long long)json_integer_value(json_object_get(doc, "distinct_layers")),
           human((uint64_t)json_integer_value(json_object_get(doc, "layer_bytes")), b1),
           human((uint64_t)json_integer_value(json_object_get(doc, "bytes_without_sharing")), b2));
}

static int cmd_list(cli_opts *o, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "occystrap: list takes STORE (got %d arguments)\n", argc);
        return EXIT_USAGE;
    }
    oc_error err;
    oc_error_clear(&err);
    oc_store *s = oc_store_open(argv[0], OC_STORE_READ, &err);
    json_t *doc = s ? oc_store_list(s, &err) : NULL;
    oc_store_close(s);
    if (!doc) {
        print_error(&err);
        return EXIT_FAILED;
    }
    if (o->json) {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        free(text);
    } else {
        print_table(doc);
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(doc, "problems"), i, p)
        {
            fprintf(stderr, "occystrap: warning: %s\n", json_string_value(p));
        }
    }
    json_decref(doc);
    return EXIT_OK;
}

typedef struct verify_run {
    const cli_opts *o;
    char **damaged; /* distinct damaged files, for --repair */
    size_t n_damaged;
    int nomem;
} verify_run;

static void on_verify(void *opaque, oc_verify_kind kind, const char *file, const char *msg)
{
    verify_run *vr = opaque;
    if (kind == OC_VERIFY_DAMAGED)
        printf("DAMAGED %s: %s\n", file, msg);
    else if (!vr->o->quiet)
        printf("note    %s: %s\n", file, msg);
    if (kind != OC_VERIFY_DAMAGED || !vr->o->repair)
        return;
    for (size_t i = 0; i < vr->n_damaged; i++)
        if (strcmp(vr->damaged[i], file) == 0)
            return;
    char **grown = realloc(vr->damaged, sizeof *grown * (vr->n_damaged + 1));
    if (!grown || !(grown[vr->n_damaged] = strdup(file))) {
        if (grown)
            vr->damaged = grown;
        vr->nomem = 1;
        return;
    }
    vr->damaged = grown;
    vr->n_damaged++;
}

/* verify --repair: drop each damaged blob so the next run fetches it again. */
static size_t repair_blobs(oc_store *s, verify_run *vr, const char *store_dir)
{
    size_t dropped = 0;
    for (size_t i = 0; i < vr->n_damaged; i++) {
        oc_error err;
        oc_error_clear(&err);
        int r = oc_store_drop_blob(s, vr->damaged[i], &err);
        if (r == 1) {
            dropped++;
            printf("removed %s (damaged; its marker too)\n", vr->damaged[i]);
        } else if (r == 0) {
            printf("kept    %s: not a layer or config, cannot be fetched again (fix or remove it "
                   "by hand)\n",
                   vr->damaged[i]);
        } else {
            fprintf(stderr, "occystrap: error: %s: %s\n", store_dir, err.msg);
        }
    }
    return dropped;
}

static void on_relisted(void *opaque, const char *file, const char *image, const char *tag)
{
    (void)opaque;
    printf("listed  %s as %s:%s (complete, but missing from catalog.json)\n", file, image, tag);
}

static int cmd_verify(cli_opts *o, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "occystrap: verify takes STORE (got %d arguments)\n", argc);
        return EXIT_USAGE;
    }
    oc_error err;
    oc_error_clear(&err);
    /* --repair removes files: no writer may be at work (gc's exclusive lock) */
    oc_store *s = oc_store_open(argv[0], o->repair ? OC_STORE_GC : OC_STORE_READ, &err);
    oc_verify_stats st;
    verify_run vr = {.o = o};
    int rc = s ? oc_store_verify(s, on_verify, &vr, &st, &err) : -1;
    size_t dropped = 0;
    if (rc == 0 && vr.nomem) {
        oc_error_set(&err, OC_E_NOMEM, "out of memory");
        rc = -1;
    }
    long relisted = 0;
    if (rc == 0 && o->repair) {
        dropped = repair_blobs(s, &vr, argv[0]);
        oc_error lerr;
        oc_error_clear(&lerr);
        relisted = oc_store_relist(s, on_relisted, NULL, &lerr);
        if (relisted < 0)
            fprintf(stderr, "occystrap: error: %s: listing complete images: %s\n", argv[0],
                    lerr.msg);
    }
    for (size_t i = 0; i < vr.n_damaged; i++)
        free(vr.damaged[i]);
    free(vr.damaged);
    oc_store_close(s);
    if (rc != 0) {
        print_error(&err);
        return EXIT_FAILED;
    }
    fflush(stdout);
    char b[32];
    fprintf(stderr,
            "occystrap: verify %s: %zu manifest files, %zu configs, %zu layers, %zu markers, %s "
            "hashed: %s\n",
            argv[0], st.manifests, st.configs, st.layers, st.markers, human(st.bytes_hashed, b),
            st.damaged ? "DAMAGED" : "all good");
    if (st.damaged)
        fprintf(stderr, "occystrap: %zu damaged file%s in %s\n", st.damaged,
                st.damaged == 1 ? "" : "s", argv[0]);
    if (dropped)
        fprintf(stderr,
                "occystrap: --repair removed %zu damaged blob%s; the next mirror (or "
                "fetch-to-extracted) of the images that use them fetches them again\n",
                dropped, dropped == 1 ? "" : "s");
    if (relisted > 0)
        fprintf(stderr, "occystrap: --repair listed %ld complete image%s in catalog.json\n",
                relisted, relisted == 1 ? "" : "s");
    return st.damaged || relisted < 0 ? EXIT_FAILED : EXIT_OK;
}

static void on_gc(void *opaque, const char *name, uint64_t bytes)
{
    const cli_opts *o = opaque;
    char b[32];
    if (!o->quiet)
        printf("%s %s (%s)\n", o->dry_run ? "would remove" : "removed", name, human(bytes, b));
}

static int cmd_gc(cli_opts *o, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "occystrap: gc takes STORE (got %d arguments)\n", argc);
        return EXIT_USAGE;
    }
    oc_error err;
    oc_error_clear(&err);
    oc_store *s = oc_store_open(argv[0], OC_STORE_GC, &err);
    oc_gc_stats st;
    int rc = s ? oc_store_gc(s, o->dry_run, on_gc, o, &st, &err) : -1;
    oc_store_close(s);
    if (rc != 0) {
        print_error(&err);
        return EXIT_FAILED;
    }
    fflush(stdout);
    char b[32];
    fprintf(stderr,
            "occystrap: gc %s: %s %s (%zu layers, %zu configs, %zu markers); kept %zu layers, "
            "%zu configs\n",
            argv[0], o->dry_run ? "would free" : "freed", human(st.bytes, b), st.layers, st.configs,
            st.markers, st.kept_layers, st.kept_configs);
    return EXIT_OK;
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
    OPT_JSON,
    OPT_DRY_RUN,
    OPT_REPAIR,
    OPT_MAX_EXPAND,
    OPT_EXPAND_STRATEGY,
    OPT_FAIL_FAST,
    OPT_JSON_FILE,
    OPT_PROGRESS,
    OPT_LOCK_WAIT,
    OPT_CONFIG,
    OPT_SHARD,
    OPT_SHARDS,
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
        {"max-expand-size", required_argument, NULL, OPT_MAX_EXPAND},
        {"expand-strategy", required_argument, NULL, OPT_EXPAND_STRATEGY},
        {"json", no_argument, NULL, OPT_JSON},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"repair", no_argument, NULL, OPT_REPAIR},
        {"fail-fast", no_argument, NULL, OPT_FAIL_FAST},
        {"json-file", required_argument, NULL, OPT_JSON_FILE},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        {"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"shards", required_argument, NULL, OPT_SHARDS},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_opts o;
    memset(&o, 0, sizeof o);
    oc_retry_policy_default(&o.engine.retry);
    /* Tuning knob for the benchmarks: OCCYSTRAP_PIPE=CHUNK_KIB:IN_CHUNKS:OUT_BUFS:THREADS
     * (bench/README.md). Unset, the pipeline's defaults apply. */
    const char *pipe_env = getenv("OCCYSTRAP_PIPE");
    if (pipe_env) {
        unsigned kib = 0, in = 0, out = 0, threads = 0;
        if (sscanf(pipe_env, "%u:%u:%u:%u", &kib, &in, &out, &threads) < 3 || kib < 4 ||
            kib > 65536 || in < 1 || in > 64 || out < 1 || out > 64 || threads > 64) {
            fprintf(stderr,
                    "occystrap: OCCYSTRAP_PIPE wants CHUNK_KIB:IN:OUT[:THREADS], not '%s'\n",
                    pipe_env);
            return EXIT_USAGE;
        }
        o.engine.pipe.chunk_size = (size_t)kib * 1024;
        o.engine.pipe.in_chunks = (int)in;
        o.engine.pipe.out_bufs = (int)out;
        o.engine.pipe.threads = (int)threads;
    }
    unsigned long long n = 0;
    int c;
    while ((c = getopt_long(argc, argv, "j:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_PLATFORM:
            o.platform = optarg;
            if (o.n_platforms == (int)(sizeof o.platforms / sizeof o.platforms[0])) {
                fputs("occystrap: too many --platform options\n", stderr);
                return EXIT_USAGE;
            }
            o.platforms[o.n_platforms++] = optarg;
            break;
        case OPT_FAIL_FAST:
            o.mirror.fail_fast = 1;
            break;
        case OPT_JSON_FILE:
            o.mirror.json_file = optarg;
            break;
        case OPT_PROGRESS:
            o.mirror.progress = optarg;
            break;
        case OPT_CONFIG:
            o.mirror.config_path = optarg;
            break;
        case OPT_SHARD:
            o.mirror.shard = optarg;
            break;
        case OPT_SHARDS:
            if (parse_uint(optarg, "--shards", 65536, &n) != 0 || n == 0)
                return EXIT_USAGE;
            o.mirror.shards = (unsigned)n;
            break;
        case OPT_LOCK_WAIT:
            if (parse_uint(optarg, "--lock-wait", 86400, &n) != 0)
                return EXIT_USAGE;
            o.mirror.lock_wait_s = (long)n;
            break;
        case OPT_INSECURE:
            o.engine.insecure = 1;
            break;
        case OPT_CA_CERT:
            o.engine.ca_file = optarg;
            break;
        case OPT_USERNAME:
            o.engine.username = optarg;
            break;
        case OPT_PASSWORD:
            o.engine.password = optarg;
            break;
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
        case OPT_UNIQUE:
            o.use_unique_names = 1;
            break;
        case OPT_EXPAND:
            o.expand = 1;
            break;
        case OPT_MAX_EXPAND:
            if (parse_uint(optarg, "--max-expand-size", UINT64_MAX, &n) != 0)
                return EXIT_USAGE;
            o.expand_opts.max_bytes = n;
            break;
        case OPT_EXPAND_STRATEGY:
            if (oc_expand_strategy_parse(optarg) < 0) {
                fputs("occystrap: --expand-strategy: auto, oldest-first or write-once\n", stderr);
                return EXIT_USAGE;
            }
            o.expand_opts.strategy = (oc_expand_strategy)oc_expand_strategy_parse(optarg);
            break;
        case OPT_JSON:
            o.json = 1;
            break;
        case OPT_DRY_RUN:
            o.dry_run = 1;
            break;
        case OPT_REPAIR:
            o.repair = 1;
            break;
        case 'v':
            o.engine.verbose++;
            break;
        case 'q':
            o.quiet = 1;
            break;
        case OPT_VERSION:
            oc_version_print(stdout);
            return EXIT_OK;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
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
    } else if (strcmp(cmd, "recreate-image") == 0) {
        status = cmd_recreate(&o, nargs, args);
    } else if (strcmp(cmd, "export") == 0) {
        status = cmd_export(&o, nargs, args);
    } else if (strcmp(cmd, "list") == 0) {
        status = cmd_list(&o, nargs, args);
    } else if (strcmp(cmd, "verify") == 0) {
        status = cmd_verify(&o, nargs, args);
    } else if (strcmp(cmd, "gc") == 0) {
        status = cmd_gc(&o, nargs, args);
    } else if (strcmp(cmd, "expand") == 0) {
        status = oc_cmd_expand(nargs, args, &o.expand_opts, o.quiet);
    } else if (strcmp(cmd, "mirror") == 0) {
        o.mirror.platforms = o.platforms;
        o.mirror.n_platforms = o.n_platforms;
        o.mirror.dry_run = o.dry_run;
        o.mirror.json_stdout = o.json;
        o.mirror.quiet = o.quiet;
        status = oc_cmd_mirror(&o.engine, &o.mirror, nargs, args);
    } else {
        fprintf(stderr, "occystrap: unknown command '%s' (try --help)\n", cmd);
        status = EXIT_USAGE;
    }
    oc_http_global_cleanup();
    return status;
}
