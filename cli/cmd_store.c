/* cmd_store.c - the store commands, no network: recreate-image, export,
 * list, verify, gc, expand. Each is one library call; what it found goes to
 * stdout (one line per finding), the summary to stderr (unless -q). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static int write_tarball(cli_opts *o, const char *store, const oc_image_tag *items, size_t n,
                         const char *tarfile)
{
    oc_error err;
    memset(&err, 0, sizeof err);
    const char *method = getenv("OCCYSTRAP_COPY"); /* "readwrite": for measurements */
    oc_export_stats st;
    int rw = method && strcmp(method, "readwrite") == 0;
    if ((o->format_oci ? oc_export_oci(store, items, n, tarfile, rw, &st, &err)
                       : oc_export(store, items, n, tarfile, rw, &st, &err)) != 0) {
        cli_error(&err);
        return EXIT_FAILED;
    }
    if (!o->quiet && o->format_oci) {
        char b[32];
        cli_say("%zu image%s -> %s (an OCI layout of the exact bytes: %zu layer blobs, %s)",
                st.images, st.images == 1 ? "" : "s", tarfile, st.layers,
                cli_human(st.total_bytes, b));
    } else if (!o->quiet) {
        char b[32];
        cli_say("%zu image%s -> %s (%zu layers, %zu shared references, %s; "
                "copy_file_range %llu, sendfile %llu, read/write %llu bytes)",
                st.images, st.images == 1 ? "" : "s", tarfile, st.layers, st.layers_dups,
                cli_human(st.total_bytes, b), (unsigned long long)st.copy_file_range_bytes,
                (unsigned long long)st.sendfile_bytes, (unsigned long long)st.readwrite_bytes);
    }
    return EXIT_OK;
}

int cli_recreate_image(cli_opts *o, int argc, char **argv)
{
    (void)argc;
    oc_image_tag item = {.image = argv[1], .tag = argv[2]};
    return write_tarball(o, argv[0], &item, 1, argv[3]);
}

int cli_export(cli_opts *o, int argc, char **argv)
{
    size_t n = (size_t)argc - 2;
    oc_image_tag *items = calloc(n, sizeof *items);
    char **parts = calloc(2 * n, sizeof *parts);
    int status = EXIT_USAGE;
    oc_error err;
    memset(&err, 0, sizeof err);
    if (!items || !parts) {
        cli_say("out of memory");
        status = EXIT_FAILED;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (oc_image_tag_split(argv[2 + i], &parts[2 * i], &parts[2 * i + 1], &err) != 0) {
            cli_error(&err);
            goto out;
        }
        items[i].image = parts[2 * i];
        items[i].tag = parts[2 * i + 1];
    }
    status = write_tarball(o, argv[0], items, n, argv[1]);
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
    printf("%-*s  %-*s  %6s  %10s  %-20s  %-5s  %s\n", wi, "IMAGE", wt, "TAG", "LAYERS", "SIZE",
           "FETCHED", "EXACT", "MANIFEST DIGEST");
    json_array_foreach(images, i, img)
    {
        char b[32];
        char digest[32];
        snprintf(digest, sizeof digest, "%.19s", jstr(img, "manifest_digest", "-"));
        printf("%-*s  %-*s  %6lld  %10s  %-20s  %-5s  %s%s\n", wi, jstr(img, "image", "?"), wt,
               jstr(img, "tag", "?"), (long long)json_integer_value(json_object_get(img, "layers")),
               cli_human((uint64_t)json_integer_value(json_object_get(img, "bytes")), b),
               jstr(img, "fetched_at", "-"),
               json_is_true(json_object_get(img, "exact")) ? "yes" : "-", digest,
               json_is_true(json_object_get(img, "in_catalog")) ? "" : "  (not in catalog.json)");
        /* its signatures, SBOMs, attestations: one indented line each */
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(img, "referrers"), k, r)
        {
            int depth = (int)json_integer_value(json_object_get(r, "depth"));
            const char *tag = jstr(r, "tag", NULL);
            printf("%*s%s %s  %s  %s%s%s\n", 2 * (depth > 0 ? depth : 1), "",
                   tag ? "tag     " : "referrer",
                   jstr(r, "artifact_type", jstr(r, "media_type", "?")), jstr(r, "digest", "?"),
                   cli_human((uint64_t)json_integer_value(json_object_get(r, "size")), b),
                   tag ? "  " : "", tag ? tag : "");
        }
    }
    char b1[32], b2[32];
    printf(
        "%zu image%s, %lld distinct layers, %s of layers (%s without sharing); %lld with their "
        "exact bytes; %lld referrers%s\n",
        json_array_size(images), json_array_size(images) == 1 ? "" : "s",
        (long long)json_integer_value(json_object_get(doc, "distinct_layers")),
        cli_human((uint64_t)json_integer_value(json_object_get(doc, "layer_bytes")), b1),
        cli_human((uint64_t)json_integer_value(json_object_get(doc, "bytes_without_sharing")), b2),
        (long long)json_integer_value(json_object_get(doc, "exact_images")),
        (long long)json_integer_value(json_object_get(doc, "referrers")),
        json_integer_value(json_object_get(doc, "orphan_referrers"))
            ? " (and some no image reaches: gc drops them)"
            : "");
}

int cli_list(cli_opts *o, int argc, char **argv)
{
    (void)argc;
    oc_error err;
    memset(&err, 0, sizeof err);
    char *text = oc_store_listing(argv[0], &err);
    if (!text) {
        cli_error(&err);
        return EXIT_FAILED;
    }
    if (o->json) {
        puts(text);
        free(text);
        return EXIT_OK;
    }
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    if (!doc) {
        cli_say("error: the store's listing does not parse");
        return EXIT_FAILED;
    }
    print_table(doc);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "problems"), i, p)
    {
        cli_say("warning: %s", json_string_value(p));
    }
    json_decref(doc);
    return EXIT_OK;
}

static void on_finding(oc_verify_finding kind, const char *file, const char *msg, void *opaque)
{
    const cli_opts *o = opaque;
    switch (kind) {
    case OC_VERIFY_DAMAGED:
        printf("DAMAGED %s: %s\n", file, msg);
        break;
    case OC_VERIFY_NOTE:
        if (!o->quiet)
            printf("note    %s: %s\n", file, msg);
        break;
    case OC_VERIFY_REMOVED:
        printf("removed %s (%s)\n", file, msg);
        break;
    case OC_VERIFY_KEPT:
        printf("kept    %s: %s\n", file, msg);
        break;
    case OC_VERIFY_LISTED:
        printf("listed  %s (%s)\n", file, msg);
        break;
    }
}

int cli_verify(cli_opts *o, int argc, char **argv)
{
    (void)argc;
    oc_error err;
    memset(&err, 0, sizeof err);
    oc_verify_stats st;
    if (oc_verify(argv[0], o->repair, on_finding, o, &st, &err) != 0) {
        fflush(stdout);
        cli_error(&err);
        return EXIT_FAILED;
    }
    fflush(stdout);
    char b[32];
    char oci[160] = "";
    if (st.oci_blobs || st.oci_descriptors)
        snprintf(oci, sizeof oci,
                 ", exact bytes: %zu blobs, %zu index.json entries (%zu referrers)", st.oci_blobs,
                 st.oci_descriptors, st.referrers);
    cli_say("verify %s: %zu manifest files, %zu configs, %zu layers, %zu markers%s, %s hashed: %s",
            argv[0], st.manifests, st.configs, st.layers, st.markers, oci,
            cli_human(st.bytes_hashed, b), st.damaged ? "DAMAGED" : "all good");
    if (st.damaged)
        cli_say("%zu damaged file%s in %s", st.damaged, st.damaged == 1 ? "" : "s", argv[0]);
    if (st.removed)
        cli_say("--repair removed %zu damaged blob%s; the next mirror (or fetch-to-extracted) "
                "of the images that use them fetches them again",
                st.removed, st.removed == 1 ? "" : "s");
    if (st.dropped)
        cli_say("--repair dropped %zu entr%s of oci/index.json; the next mirror of those images "
                "fetches their missing exact bytes",
                st.dropped, st.dropped == 1 ? "y" : "ies");
    if (st.listed)
        cli_say("--repair listed %zu complete image%s in catalog.json", st.listed,
                st.listed == 1 ? "" : "s");
    return st.damaged ? EXIT_FAILED : EXIT_OK;
}

static void on_removed(const char *name, uint64_t bytes, void *opaque)
{
    const cli_opts *o = opaque;
    char b[32];
    if (!o->quiet)
        printf("%s %s (%s)\n", o->dry_run ? "would remove" : "removed", name, cli_human(bytes, b));
}

int cli_gc(cli_opts *o, int argc, char **argv)
{
    (void)argc;
    oc_error err;
    memset(&err, 0, sizeof err);
    oc_gc_stats st;
    if (oc_gc(argv[0], o->dry_run, on_removed, o, &st, &err) != 0) {
        cli_error(&err);
        return EXIT_FAILED;
    }
    fflush(stdout);
    char b[32];
    char oci[160] = "";
    if (st.oci_blobs || st.kept_oci_blobs)
        snprintf(oci, sizeof oci, "; exact blobs (STORE/oci): %zu %s, %zu kept%s", st.oci_blobs,
                 o->dry_run ? "to remove" : "removed", st.kept_oci_blobs,
                 st.oci_referrers ? "; referrers of removed images dropped" : "");
    cli_say("gc %s: %s %s (%zu layers, %zu configs, %zu markers); kept %zu layers, %zu configs%s",
            argv[0], o->dry_run ? "would free" : "freed", cli_human(st.bytes, b), st.layers,
            st.configs, st.markers, st.kept_layers, st.kept_configs, oci);
    return EXIT_OK;
}

int cli_expand(cli_opts *o, int argc, char **argv)
{
    (void)argc;
    const char *store = argv[0], *image = argv[1], *tag = argv[2], *dir = argv[3];
    oc_error err;
    memset(&err, 0, sizeof err);
    oc_expand_stats st;
    size_t layers = 0;
    if (oc_expand_image(store, image, tag, dir, &o->expand_opts, &st, &layers, &err) != 0) {
        cli_error(&err);
        return err.code == OC_E_USAGE ? EXIT_USAGE : EXIT_FAILED;
    }
    if (!o->quiet) {
        char line[512];
        oc_expand_stats_format(&st, line, sizeof line);
        cli_say("%s:%s (%zu layers, %s) -> %s: %s", image, tag, layers,
                oc_expand_strategy_name(o->expand_opts.strategy), dir, line);
    }
    if (st.owners_skipped || st.devices_skipped)
        cli_say("warning: not running as root: owners of %llu entries not restored, %llu device "
                "nodes not made",
                (unsigned long long)st.owners_skipped, (unsigned long long)st.devices_skipped);
    if (st.warnings)
        cli_say("warning: %llu things not restored, the first: %s", (unsigned long long)st.warnings,
                st.first_warning);
    return EXIT_OK;
}
