/* cmd_bundle.c - across an air gap: `occystrap bundle STORE OUT [IMAGE...]`
 * (--since, --split, --zstd, --dry-run), `occystrap inventory STORE` and
 * `occystrap import BUNDLE|PART... STORE`. Each is one library call; its
 * log events go to stderr (-q: warnings only), the report as JSON to
 * stdout or a file (--json, --json-file), a dry run's plan to stdout.
 * Exit status: 0 done, 1 the work failed (an import left incomplete, a
 * bundle refused), 2 usage (a bad option, an inventory that does not
 * parse, a split size too small). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/jobview.h"

static void on_event(const oc_event *ev, void *opaque)
{
    const cli_opts *o = opaque;
    if (ev->kind != OC_EVENT_LOG)
        return;
    if (ev->level <= OC_LOG_WARNING || (ev->level == OC_LOG_INFO && !o->quiet))
        cli_say("%s", ev->message);
}

static int status_of(const oc_error *err)
{
    return err->code == OC_E_USAGE ? EXIT_USAGE : EXIT_FAILED;
}

static json_t *items_json(const oc_bundle_item *items, size_t n, int with_changed)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s,s:s,s:s}", "ref", items[i].ref, "digest", items[i].digest,
                              "media_type", items[i].media_type);
        if (e && with_changed)
            json_object_set_new(e, "changed", json_boolean(items[i].changed));
        json_array_append_new(a, e);
    }
    return a;
}

/* ---- bundle ---- */

static json_t *bundle_json(const oc_bundle_report *r, const oc_error *err)
{
    json_t *root = json_object(), *parts = json_array();
    json_object_set_new(root, "id", r && *r->id ? json_string(r->id) : json_null());
    if (r) {
        json_object_set_new(root, "dry_run", json_boolean(r->dry_run));
        json_object_set_new(root, "images", items_json(r->images, r->n_images, 0));
        json_object_set_new(root, "blobs", json_integer((json_int_t)r->blobs));
        json_object_set_new(root, "segments", json_integer((json_int_t)r->segments));
        json_object_set_new(root, "bytes", json_integer((json_int_t)r->bytes));
        json_object_set_new(root, "required", json_integer((json_int_t)r->required));
        json_object_set_new(root, "required_bytes", json_integer((json_int_t)r->required_bytes));
        json_object_set_new(root, "unchanged", json_integer((json_int_t)r->unchanged));
        json_object_set_new(root, "no_exact", json_integer((json_int_t)r->no_exact));
        json_object_set_new(root, "since",
                            r->since ? json_pack("{s:s,s:s}", "digest", r->since, "from",
                                                 r->since_from ? r->since_from : "")
                                     : json_null());
        for (unsigned k = 0; k < r->parts; k++)
            json_array_append_new(parts, json_pack("{s:s,s:I}", "path", r->part_paths[k], "bytes",
                                                   (json_int_t)r->part_bytes[k]));
        json_object_set_new(root, "written", json_integer((json_int_t)r->written));
        json_object_set_new(root, "seconds", json_real(r->seconds));
    }
    json_object_set_new(root, "parts", parts);
    if (err && err->code != OC_OK)
        json_object_set_new(root, "error", json_string(err->msg));
    return root;
}

/* "4G", "700M", "4GB", "123": bytes (K M G T: powers of 1024; KB MB GB TB:
 * of 1000, as split(1) reads them). */
static int parse_size(const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || text[0] == '-' || end == text || errno)
        return -1;
    uint64_t mult = 1;
    static const char *units = "KMGT";
    if (*end) {
        const char *u = strchr(units, end[0] >= 'a' ? end[0] - 32 : end[0]);
        if (!u)
            return -1;
        int power = (int)(u - units) + 1;
        int decimal = end[1] == 'B' && !end[2];
        if (end[1] && !decimal)
            return -1;
        for (int i = 0; i < power; i++)
            mult *= decimal ? 1000 : 1024;
    }
    if (v > UINT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

static void bundle_summary(const cli_opts *o, const oc_bundle_report *r)
{
    char b1[32], b2[32], b3[32];
    if (r->dry_run && !o->json) {
        for (size_t i = 0; i < r->n_images; i++)
            printf("image   %s  %s\n", r->images[i].ref, r->images[i].digest);
        for (unsigned k = 0; k < r->parts; k++)
            printf("part    %s  %" PRIu64 " bytes%s\n", r->part_paths[k], r->part_bytes[k],
                   o->zstd ? " (before zstd, at most that)" : "");
        fflush(stdout);
    }
    if (o->quiet)
        return;
    cli_say("bundle%s%s%s: %zu image%s, %zu blob%s (%s%s%zu segment%s), %u part%s, %s%s in %.2f s",
            *r->id ? " " : "", r->id, r->dry_run ? " (dry run)" : "", r->n_images,
            r->n_images == 1 ? "" : "s", r->blobs, r->blobs == 1 ? "" : "s",
            cli_human(r->bytes, b1), ", ", r->segments, r->segments == 1 ? "" : "s", r->parts,
            r->parts == 1 ? "" : "s", r->dry_run ? "" : "written: ",
            r->dry_run ? "nothing written" : cli_human(r->written, b2), r->seconds);
    if (r->since)
        cli_say("made against %s (%s): %zu image%s unchanged left out, %zu blob%s (%s) the "
                "receiving store holds already",
                r->since_from, r->since, r->unchanged, r->unchanged == 1 ? "" : "s", r->required,
                r->required == 1 ? "" : "s", cli_human(r->required_bytes, b3));
    if (r->no_exact)
        cli_say("warning: %zu image%s of the store ha%s no exact bytes and %s left out (mirror "
                "%s again without --no-exact)",
                r->no_exact, r->no_exact == 1 ? "" : "s", r->no_exact == 1 ? "s" : "ve",
                r->no_exact == 1 ? "was" : "were", r->no_exact == 1 ? "it" : "them");
}

int cli_bundle(cli_opts *o, int argc, char **argv)
{
    cli_jobview view;
    if (cli_jobview_init(&view, o, NULL) != EXIT_OK)
        return EXIT_USAGE;
    if (strcmp(argv[1], "-") == 0 && o->json) {
        cli_say("the bundle goes to standard output: write the report with --json-file");
        return EXIT_USAGE;
    }
    oc_bundle_options bo;
    oc_bundle_options_init(&bo);
    bo.store_dir = argv[0];
    bo.out = argv[1];
    bo.images = (const char *const *)argv + 2;
    bo.n_images = (size_t)(argc - 2);
    bo.since = o->since;
    bo.zstd = o->zstd;
    bo.dry_run = o->dry_run;
    bo.on_event = on_event;
    bo.event_opaque = o;
    if (o->split && parse_size(o->split, &bo.split) != 0) {
        cli_say("--split wants a size (4G, 700M, 4GB, or bytes), not '%s'", o->split);
        return EXIT_USAGE;
    }
    if (o->split && bo.split == 0) {
        cli_say("--split 0: give a size");
        return EXIT_USAGE;
    }
    oc_error err;
    memset(&err, 0, sizeof err);
    oc_bundle_report *r = NULL;
    int status = EXIT_OK;
    if (oc_bundle(&bo, &r, &err) != 0) {
        cli_error(&err);
        status = status_of(&err);
    } else {
        bundle_summary(o, r);
    }
    status = cli_jobview_report(&view, bundle_json(r, status ? &err : NULL), status);
    oc_bundle_report_free(r);
    return status;
}

/* ---- inventory ---- */

int cli_inventory(cli_opts *o, int argc, char **argv)
{
    (void)o;
    (void)argc;
    oc_error err;
    memset(&err, 0, sizeof err);
    size_t len = 0;
    char *text = oc_store_inventory(argv[0], &len, &err);
    if (!text) {
        cli_error(&err);
        return status_of(&err);
    }
    int ok = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0;
    free(text);
    if (!ok) {
        cli_say("error: cannot write the inventory: %s", strerror(errno));
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

/* ---- import ---- */

static json_t *import_json(const oc_import_report *r, const oc_error *err)
{
    json_t *root = json_object();
    json_object_set_new(root, "id", r ? json_string(r->id) : json_null());
    if (r) {
        json_object_set_new(root, "complete", json_boolean(r->complete));
        json_object_set_new(root, "parts", json_integer(r->parts));
        json_object_set_new(root, "parts_read", json_integer(r->parts_read));
        json_object_set_new(root, "images", items_json(r->images, r->n_images, 1));
        json_object_set_new(root, "files", json_integer((json_int_t)r->files));
        json_object_set_new(root, "received", json_integer((json_int_t)r->received));
        json_object_set_new(root, "present", json_integer((json_int_t)r->present));
        json_object_set_new(root, "damaged", json_integer((json_int_t)r->damaged));
        json_object_set_new(root, "missing", json_integer((json_int_t)r->missing));
        json_object_set_new(root, "bytes_received", json_integer((json_int_t)r->bytes_received));
        json_object_set_new(root, "layers_unpacked", json_integer((json_int_t)r->layers_unpacked));
        json_object_set_new(root, "changed", json_integer((json_int_t)r->changed));
        json_object_set_new(root, "staged", r->staged ? json_string(r->staged) : json_null());
        json_object_set_new(root, "seconds", json_real(r->seconds));
    }
    if (err && err->code != OC_OK)
        json_object_set_new(root, "error", json_string(err->msg));
    return root;
}

int cli_import(cli_opts *o, int argc, char **argv)
{
    cli_jobview view;
    if (cli_jobview_init(&view, o, NULL) != EXIT_OK)
        return EXIT_USAGE;
    oc_import_options io;
    oc_import_options_init(&io);
    io.store_dir = argv[argc - 1];
    io.parts = (const char *const *)argv;
    io.n_parts = (size_t)(argc - 1);
    io.on_event = on_event;
    io.event_opaque = o;
    io.max_layer_bytes = o->max_layer_bytes;
    oc_error err;
    memset(&err, 0, sizeof err);
    oc_import_report *r = NULL;
    int status = EXIT_OK;
    if (oc_import(&io, &r, &err) != 0) {
        cli_error(&err);
        status = status_of(&err);
    } else if (!o->quiet) {
        char b[32];
        cli_say("import %s into %s: %zu image%s (%zu new or moved), %zu file%s verified (%s), "
                "%zu already there, %zu layer%s unpacked, in %.2f s",
                r->id, io.store_dir, r->n_images, r->n_images == 1 ? "" : "s", r->changed,
                r->received, r->received == 1 ? "" : "s", cli_human(r->bytes_received, b),
                r->present, r->layers_unpacked, r->layers_unpacked == 1 ? "" : "s", r->seconds);
        for (size_t i = 0; i < r->n_images; i++)
            cli_say("%s %s  %s", r->images[i].changed ? "new    " : "same   ", r->images[i].ref,
                    r->images[i].digest);
    }
    status = cli_jobview_report(&view, import_json(r, status ? &err : NULL), status);
    oc_import_report_free(r);
    return status;
}
