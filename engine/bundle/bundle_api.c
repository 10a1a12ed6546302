/* bundle_api.c - the public calls of occystrap.h for bundles: oc_bundle
 * (plan, then write), oc_store_inventory, oc_import, and their reports. Plain
 * calls: the store is opened in the mode each needs (bundle and inventory
 * read under the shared lock; import writes), no loop. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/bundle/bundle_log.h"
#include "engine/bundle/bundle_read.h"
#include "engine/bundle/bundle_write.h"
#include "engine/bundle/import.h"
#include "engine/bundle/inventory.h"
#include "engine/bundle/plan.h"
#include "engine/image/limits.h"
#include "io/atomicfile.h"
#include "io/version.h"
#include "occystrap/occystrap.h"

#define DEFAULT_ZSTD_LEVEL 3

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

/* ---- inventory ---- */

char *oc_store_inventory(const char *store, size_t *len, oc_error *err)
{
    oc_store *s = oc_store_open(store, OC_STORE_READ, err);
    oc_inventory *inv = NULL;
    char *text = NULL;
    size_t n = 0;
    if (s && oc_inventory_of_store(s, &inv, err) == 0)
        text = oc_inventory_dump(inv, &n, err);
    oc_inventory_free(inv);
    oc_store_close(s);
    if (text && len)
        *len = n;
    return text;
}

/* ---- bundle ---- */

typedef struct bundle_box {
    oc_bundle_report pub; /* first: the caller's pointer is the box's */
    oc_bundle_item *items;
    char *id, *since, *since_from;
    char **paths;
    uint64_t *sizes;
    unsigned n_paths;
} bundle_box;

void oc_bundle_options_init(oc_bundle_options *o)
{
    memset(o, 0, sizeof *o);
    o->api_version = OCCYSTRAP_API_VERSION;
}

void oc_bundle_report_free(oc_bundle_report *r)
{
    bundle_box *b = (bundle_box *)r;
    if (!b)
        return;
    for (size_t i = 0; i < b->pub.n_images; i++) {
        free((char *)b->items[i].ref);
        free((char *)b->items[i].digest);
        free((char *)b->items[i].media_type);
    }
    free(b->items);
    free(b->id);
    free(b->since);
    free(b->since_from);
    for (unsigned i = 0; i < b->n_paths; i++)
        free(b->paths[i]);
    free(b->paths);
    free(b->sizes);
    free(b);
}

/* What the receiving store holds, from --since: an inventory document, or
 * the inventory a bundle (or a part of one) carries. */
static int read_since(const char *path, oc_inventory **inv, char **digest, char **from,
                      oc_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        oc_error_errno(err, errno, "--since %s", path);
        if (errno == ENOENT)
            err->code = OC_E_USAGE;
        return -1;
    }
    int c;
    while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\t' || c == '\r')
        ;
    fclose(f);
    if (c == '{') {
        struct stat sb;
        if (stat(path, &sb) == 0 && (uint64_t)sb.st_size > OC_BUNDLE_DOC_MAX) {
            oc_error_set(err, OC_E_USAGE,
                         "--since %s: %lld bytes, more than the %u an inventory may have "
                         "(oversize)",
                         path, (long long)sb.st_size, OC_BUNDLE_DOC_MAX);
            return -1;
        }
        size_t len = 0;
        char *text = oc_read_file(path, OC_BUNDLE_DOC_MAX, &len, err);
        char what[600];
        snprintf(what, sizeof what, "--since %s", path);
        *inv = text ? oc_inventory_parse(text, len, what, err) : NULL;
        if (*inv) {
            char hex[OC_SHA256_HEX_LEN + 1];
            oc_sha256_buf_hex(text, len, hex);
            if (asprintf(digest, "sha256:%s", hex) < 0 ||
                asprintf(from, "inventory %s", path) < 0) {
                free(text);
                return oom(err);
            }
        }
        free(text);
        if (!*inv && err->code != OC_E_NOMEM)
            err->code = OC_E_USAGE;
        return *inv ? 0 : -1;
    }
    oc_bundle_reader *r = oc_bundle_reader_open(path, err);
    if (!r) {
        oc_error_prefix(err, "--since");
        if (err->code != OC_E_NOMEM)
            err->code = OC_E_USAGE;
        return -1;
    }
    const oc_bundle_doc *d = oc_bundle_reader_doc(r);
    *inv = oc_bundle_reader_take_inventory(r);
    int rc = -1;
    if (!*inv || !(*digest = strdup(oc_bundle_reader_inventory_digest(r))) ||
        asprintf(from, "bundle %s", d->id) < 0) {
        if (err->code == OC_OK)
            oom(err);
    } else {
        rc = 0;
    }
    oc_bundle_reader_close(r);
    return rc;
}

static int fill_report(bundle_box *b, const oc_bundle_plan *p, const char *out, int dry_run,
                       oc_error *err)
{
    const oc_bundle_doc *d = p->doc;
    oc_bundle_report *r = &b->pub;
    b->items = calloc(d->n_images + 1, sizeof *b->items);
    b->paths = calloc(d->parts + 1, sizeof *b->paths);
    b->sizes = calloc(d->parts + 1, sizeof *b->sizes);
    if (!b->items || !b->paths || !b->sizes || !(b->id = strdup(d->id)))
        return oom(err);
    for (size_t i = 0; i < d->n_images; i++) {
        b->items[i].ref = strdup(d->images[i].ref);
        b->items[i].digest = strdup(d->images[i].digest);
        b->items[i].media_type = strdup(d->images[i].media_type);
        b->items[i].changed = 1;
        r->n_images++;
        if (!b->items[i].ref || !b->items[i].digest || !b->items[i].media_type)
            return oom(err);
    }
    r->images = b->items;
    for (unsigned k = 0; k < d->parts; k++) {
        if (!(b->paths[k] = oc_bundle_part_path(out ? out : "-", k + 1, d->parts)))
            return oom(err);
        b->n_paths++;
        b->sizes[k] = p->part_bytes[k];
    }
    r->parts = d->parts;
    r->part_paths = (const char *const *)b->paths;
    r->part_bytes = b->sizes;
    for (size_t i = 0; i < d->n_files; i++) {
        const oc_bundle_file *f = &d->files[i];
        r->segments += f->segment;
        r->bytes += f->size;
        r->blobs += !f->segment || f->offset == 0;
    }
    r->required = d->n_requires;
    r->required_bytes = p->required_bytes;
    r->unchanged = p->unchanged;
    r->no_exact = p->no_exact;
    if (d->has_since) {
        if (!(b->since = strdup(d->since_digest)) ||
            !(b->since_from = strdup(d->since_from ? d->since_from : "")))
            return oom(err);
        r->since = b->since;
        r->since_from = b->since_from;
    }
    r->id = b->id;
    r->dry_run = dry_run;
    return 0;
}

typedef struct part_ctx {
    const oc_bundle_options *o;
    bundle_box *b;
} part_ctx;

static void on_part(void *opaque, unsigned part, unsigned parts, const char *path, uint64_t bytes)
{
    part_ctx *pc = opaque;
    if (part >= 1 && part <= pc->b->n_paths)
        pc->b->sizes[part - 1] = bytes;
    pc->b->pub.written += bytes;
    oc_bundle_say(pc->o->on_event, pc->o->event_opaque, OC_LOG_INFO,
                  "part %u of %u: %s (%" PRIu64 " bytes)", part, parts,
                  strcmp(path, "-") == 0 ? "standard output" : path, bytes);
}

int oc_bundle(const oc_bundle_options *o, oc_bundle_report **report, oc_error *err)
{
    double t0 = oc_bundle_seconds();
    if (report)
        *report = NULL;
    if (!o || o->api_version != OCCYSTRAP_API_VERSION) {
        oc_error_set(err, OC_E_USAGE,
                     "oc_bundle: options of API version %d, this library is version %d "
                     "(fill them with oc_bundle_options_init)",
                     o ? o->api_version : 0, OCCYSTRAP_API_VERSION);
        return -1;
    }
    if (!o->store_dir || (!o->out && !o->dry_run)) {
        oc_error_set(err, OC_E_USAGE, "a bundle needs a store and where to write it");
        return -1;
    }
    if (o->split && o->out && strcmp(o->out, "-") == 0) {
        oc_error_set(err, OC_E_USAGE, "--split writes files (OUT.001, ...), not standard output");
        return -1;
    }
    oc_inventory *since = NULL;
    char *since_digest = NULL, *since_from = NULL;
    oc_store *s = NULL;
    oc_bundle_plan plan;
    memset(&plan, 0, sizeof plan);
    bundle_box *b = calloc(1, sizeof *b);
    int rc = -1;
    if (!b) {
        oom(err);
        goto out;
    }
    if (o->since && read_since(o->since, &since, &since_digest, &since_from, err) != 0)
        goto out;
    if (!(s = oc_store_open(o->store_dir, OC_STORE_READ, err)))
        goto out;
    char creator[64];
    snprintf(creator, sizeof creator, "occystrap %s", oc_version());
    oc_bundle_plan_opts po = {.images = o->images,
                              .n_images = o->n_images,
                              .since = since,
                              .since_from = since_from,
                              .since_digest = since_digest,
                              .split = o->split,
                              .zstd = o->zstd,
                              .creator = creator};
    if (oc_bundle_plan_make(s, &po, &plan, err) != 0)
        goto out;
    if (!o->dry_run && oc_bundle_hash_segments(s, &plan, err) != 0)
        goto out;
    if (fill_report(b, &plan, o->out, o->dry_run, err) != 0)
        goto out;
    if (o->dry_run) {
        rc = 0;
        goto out;
    }
    part_ctx pc = {o, b};
    oc_bundle_write_opts wo = {
        .out = o->out,
        .zstd_level = o->zstd ? (o->zstd_level ? o->zstd_level : DEFAULT_ZSTD_LEVEL) : 0,
        .threads = o->zstd ? 2 : 0,
        .split = o->split,
        .on_part = on_part,
        .opaque = &pc};
    if (oc_bundle_write(s, &plan, &wo, NULL, err) != 0)
        goto out;
    /* a part of an earlier, longer bundle of the same name would be carried with these */
    char *next = plan.doc->parts > 1 && strcmp(o->out, "-") != 0
                     ? oc_bundle_part_path(o->out, plan.doc->parts + 1, plan.doc->parts)
                     : NULL;
    if (next && access(next, F_OK) == 0)
        oc_bundle_say(o->on_event, o->event_opaque, OC_LOG_WARNING,
                      "%s is left from an earlier bundle: it is not part of this one", next);
    free(next);
    rc = 0;
out:
    if (b)
        b->pub.seconds = oc_bundle_seconds() - t0;
    if (b && report && b->id)
        *report = &b->pub;
    else
        oc_bundle_report_free(b ? &b->pub : NULL);
    oc_bundle_plan_free(&plan);
    oc_store_close(s);
    oc_inventory_free(since);
    free(since_digest);
    free(since_from);
    return rc;
}

/* ---- import ---- */

void oc_import_options_init(oc_import_options *o)
{
    memset(o, 0, sizeof *o);
    o->api_version = OCCYSTRAP_API_VERSION;
    o->max_layer_bytes = OC_LIMIT_DEFAULT;
}

void oc_import_report_free(oc_import_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_images; i++) {
        free((char *)r->images[i].ref);
        free((char *)r->images[i].digest);
        free((char *)r->images[i].media_type);
    }
    free((oc_bundle_item *)r->images);
    free((char *)r->id);
    free((char *)r->staged);
    free(r);
}

int oc_import(const oc_import_options *o, oc_import_report **report, oc_error *err)
{
    if (report)
        *report = NULL;
    if (!o || o->api_version != OCCYSTRAP_API_VERSION) {
        oc_error_set(err, OC_E_USAGE,
                     "oc_import: options of API version %d, this library is version %d "
                     "(fill them with oc_import_options_init)",
                     o ? o->api_version : 0, OCCYSTRAP_API_VERSION);
        return -1;
    }
    oc_import_report *rep = calloc(1, sizeof *rep);
    if (!rep)
        return oom(err);
    int rc = oc_import_run(o, rep, err);
    if (report && rep->id)
        *report = rep;
    else
        oc_import_report_free(rep);
    return rc;
}
