/* import.c - reading a bundle's parts into a store's stage (see import.h). */
#include "engine/bundle/import.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/bundle/bundle_log.h"
#include "engine/bundle/bundle_read.h"
#include "engine/store/oci_layout.h"
#include "io/blobsink.h"

#define NOTES_MAX 8

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

/* A blob in the store's OCI layout: a regular file of that size. */
static int store_has(const oc_store *s, const char *hex, uint64_t size)
{
    return oc_store_oci_have(s, hex, size);
}

oc_stage *oc_import_stage(oc_import_ctx *c, oc_error *err)
{
    if (!c->st && !c->pool) {
        oc_blobsink_opts po = {0};
        c->pool = oc_blobsink_pool_new(&po, err);
    }
    if (!c->st && c->pool && (c->st = oc_stage_open(c->s, c->d->id, c->pool, err)))
        oc_stage_set_max_layer(c->st, c->o->max_layer_bytes);
    return c->st;
}

char *oc_import_blob_path(oc_import_ctx *c, const char *hex, uint64_t size)
{
    if (store_has(c->s, hex, size))
        return oc_store_oci_blob_path(c->s, hex);
    return oc_stage_blob(c->st, hex, size);
}

/* Does the store (or the stage) hold what file f brings? */
static int have_file(oc_import_ctx *c, const oc_bundle_file *f)
{
    const char *hex = f->blob + 7;
    if (store_has(c->s, hex, f->blob_size))
        return 1;
    char *p = oc_stage_blob(c->st, hex, f->blob_size);
    free(p);
    if (p)
        return 1;
    return f->segment && oc_stage_has_segment(c->st, hex, f->offset, f->size);
}

/* ---- the parts given ---- */

typedef struct parts_in {
    oc_bundle_reader **r;
    size_t n;
} parts_in;

static void parts_close(parts_in *p)
{
    for (size_t i = 0; i < p->n; i++)
        oc_bundle_reader_close(p->r[i]);
    free(p->r);
    p->r = NULL;
    p->n = 0;
}

/* Open every part and check they are parts of one bundle, each once. */
static int parts_open(const oc_import_options *o, parts_in *p, oc_error *err)
{
    p->r = calloc(o->n_parts + 1, sizeof *p->r);
    if (!p->r)
        return oom(err);
    int stdin_used = 0;
    for (size_t i = 0; i < o->n_parts; i++) {
        if (strcmp(o->parts[i], "-") == 0 && stdin_used++) {
            oc_error_set(err, OC_E_USAGE, "standard input (-) can be given only once");
            return -1;
        }
        oc_bundle_reader *r = oc_bundle_reader_open(o->parts[i], err);
        if (!r)
            return -1;
        p->r[p->n++] = r;
        const oc_bundle_doc *d = oc_bundle_reader_doc(r), *d0 = oc_bundle_reader_doc(p->r[0]);
        if (strcmp(d->id, d0->id) != 0) {
            oc_error_set(err, OC_E_USAGE,
                         "%s is part %u of bundle %s, and %s of bundle %s: import one bundle at "
                         "a time",
                         oc_bundle_reader_path(r), d->part, d->id, oc_bundle_reader_path(p->r[0]),
                         d0->id);
            return -1;
        }
        for (size_t k = 0; k + 1 < p->n; k++) {
            if (oc_bundle_reader_doc(p->r[k])->part == d->part) {
                oc_error_set(err, OC_E_USAGE, "%s and %s are both part %u of bundle %s",
                             oc_bundle_reader_path(p->r[k]), oc_bundle_reader_path(r), d->part,
                             d->id);
                return -1;
            }
        }
    }
    return 0;
}

/* The blobs the bundle was made against that the store lacks: an error
 * naming them (and the inventory), or 0. */
static int check_requires(const char *store_dir, const oc_bundle_doc *d, oc_error *err)
{
    size_t missing = 0;
    uint64_t bytes = 0;
    char first[3][OC_BUNDLE_DIGEST_LEN];
    for (size_t i = 0; i < d->n_requires; i++) {
        char *path = NULL;
        struct stat sb;
        if (asprintf(&path, "%s/" OC_STORE_OCI_BLOBS "/%s", store_dir, d->requires[i].digest + 7) <
            0)
            return oom(err);
        int ok = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
                 (uint64_t)sb.st_size == d->requires[i].size;
        free(path);
        if (ok)
            continue;
        if (missing < 3)
            snprintf(first[missing], sizeof first[missing], "%s", d->requires[i].digest);
        missing++;
        bytes += d->requires[i].size;
    }
    if (!missing)
        return 0;
    char list[300] = "";
    for (size_t i = 0; i < missing && i < 3; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", first[i]);
    oc_error_set(err, OC_E_NOTFOUND,
                 "bundle %s was made against an inventory (%s, created %s, from %s) that lists "
                 "%zu blob%s (%" PRIu64 " bytes) %s does not have: %s%s; import the bundles "
                 "made before it first, or make a new one against this store's inventory "
                 "(occystrap inventory %s)",
                 d->id, d->since_digest, d->since_created ? d->since_created : "?",
                 d->since_from && *d->since_from ? d->since_from : "?", missing,
                 missing == 1 ? "" : "s", bytes, store_dir, list, missing > 3 ? ", ..." : "",
                 store_dir);
    return -1;
}

/* ---- reading ---- */

typedef struct notes {
    char text[NOTES_MAX][700];
    size_t n;
    unsigned char *part_damaged; /* per part given */
} notes;

static void note(notes *ns, const oc_import_options *o, const char *msg)
{
    oc_bundle_say(o->on_event, o->event_opaque, OC_LOG_WARNING, "%s", msg);
    if (ns->n < NOTES_MAX) {
        size_t n = strlen(msg);
        if (n >= sizeof ns->text[0])
            n = sizeof ns->text[0] - 1;
        memcpy(ns->text[ns->n], msg, n);
        ns->text[ns->n++][n] = '\0';
    }
}

/* One part: every file the store does not hold yet, into the stage. -1
 * only on a local failure (the import stops). */
static int read_part(oc_import_ctx *c, oc_bundle_reader *r, unsigned char *damaged, notes *ns,
                     oc_error *err)
{
    const oc_bundle_doc *d = oc_bundle_reader_doc(r);
    size_t got = 0, had = 0, bad = 0;
    uint64_t bytes = 0;
    int ended = 0;
    for (;;) {
        const oc_bundle_file *f = NULL;
        oc_error e;
        oc_error_clear(&e);
        int rc = oc_bundle_reader_next(r, &f, &e);
        if (rc == 0) {
            ended = 1;
            break;
        }
        if (rc < 0) {
            note(ns, c->o, e.msg);
            bad++;
            break;
        }
        if (have_file(c, f)) {
            had++;
            continue;
        }
        int unpack = oc_stage_is_layer_type(f->media_type);
        if (!oc_import_stage(c, err))
            return -1;
        oc_stage_result res = oc_stage_receive(c->st, r, f, unpack, &bytes, &e);
        if (res == OC_STAGE_OK) {
            got++;
        } else if (res == OC_STAGE_FAILED) {
            *err = e;
            (void)oc_stage_settle(c->st, &e); /* keep what verified before */
            return -1;
        } else {
            note(ns, c->o, e.msg);
            bad++;
            if (res == OC_STAGE_UNREADABLE)
                break;
        }
    }
    if (oc_stage_settle(c->st, err) != 0)
        return -1;
    c->rep->received += got;
    c->rep->present += had;
    c->rep->damaged += bad;
    c->rep->bytes_received += bytes;
    if (ended && !bad)
        c->rep->parts_read++;
    if (bad)
        *damaged = 1;
    oc_bundle_say(c->o->on_event, c->o->event_opaque, bad ? OC_LOG_WARNING : OC_LOG_INFO,
                  "part %u of %u (%s): %zu file%s verified (%" PRIu64 " bytes), %zu already "
                  "there%s%s",
                  d->part, d->parts, oc_bundle_reader_path(r), got, got == 1 ? "" : "s", bytes, had,
                  bad ? ", DAMAGED: " : "", bad ? (ended ? "see above" : "read no further") : "");
    return 0;
}

/* Segmented blobs whose segments are all in the stage, joined. -1 only on
 * a local failure. */
static int join_segments(oc_import_ctx *c, notes *ns, oc_error *err)
{
    const oc_bundle_doc *d = c->d;
    for (size_t i = 0; i < d->n_files;) {
        const oc_bundle_file *f = &d->files[i];
        size_t n = 1;
        if (!f->segment) {
            i++;
            continue;
        }
        while (i + n < d->n_files && d->files[i + n].segment &&
               strcmp(d->files[i + n].blob, f->blob) == 0)
            n++;
        const char *hex = f->blob + 7;
        char *staged = oc_stage_blob(c->st, hex, f->blob_size);
        int whole = staged || store_has(c->s, hex, f->blob_size);
        free(staged);
        int all = 1;
        for (size_t k = 0; !whole && k < n; k++)
            all &= oc_stage_has_segment(c->st, hex, d->files[i + k].offset, d->files[i + k].size);
        if (!whole && all) {
            if (!oc_import_stage(c, err))
                return -1;
            oc_error e;
            oc_error_clear(&e);
            oc_stage_result res =
                oc_stage_join(c->st, d, i, oc_stage_is_layer_type(f->media_type), &e);
            if (res == OC_STAGE_FAILED) {
                *err = e;
                return -1;
            }
            if (res != OC_STAGE_OK) {
                note(ns, c->o, e.msg);
                c->rep->damaged++;
            }
        }
        i += n;
    }
    return oc_stage_settle(c->st, err);
}

/* What is still missing: an error naming the damage seen and the parts
 * not given or not read through. */
static int check_complete(oc_import_ctx *c, const parts_in *p, const notes *ns, oc_error *err)
{
    const oc_bundle_doc *d = c->d;
    size_t missing = 0, staged_n = 0;
    uint64_t missing_bytes = 0;
    unsigned char *part_missing = calloc(d->parts + 1, 1);
    if (!part_missing)
        return oom(err);
    for (size_t i = 0; i < d->n_files; i++) {
        const oc_bundle_file *f = &d->files[i];
        const char *hex = f->blob + 7;
        if (store_has(c->s, hex, f->blob_size))
            continue;
        char *staged = oc_stage_blob(c->st, hex, f->blob_size);
        int ok = staged || (f->segment && oc_stage_has_segment(c->st, hex, f->offset, f->size));
        free(staged);
        if (ok) {
            staged_n++;
        } else {
            missing++;
            missing_bytes += f->size;
            part_missing[f->part] = 1;
        }
    }
    c->rep->missing = missing;
    if (!missing && !ns->n) {
        free(part_missing);
        return 0;
    }
    char given[2048] = "", absent[2048] = "";
    for (unsigned k = 1; k <= d->parts; k++) {
        const char *path = NULL;
        int damaged = 0;
        for (size_t i = 0; i < p->n; i++) {
            if (oc_bundle_reader_doc(p->r[i])->part == k) {
                path = oc_bundle_reader_path(p->r[i]);
                damaged = ns->part_damaged[i];
            }
        }
        if (!part_missing[k] && !damaged)
            continue;
        char *buf = path ? given : absent;
        size_t used = strlen(buf);
        if (used < sizeof given - 100)
            snprintf(buf + used, sizeof given - used, "%s%u%s%s%s", used ? ", " : "", k,
                     path ? " (" : "", path ? path : "", path ? ")" : "");
    }
    free(part_missing);
    char why[5000] = "", kept[1200];
    for (size_t i = 0; i < ns->n; i++)
        snprintf(why + strlen(why), sizeof why - strlen(why), "; %s", ns->text[i]);
    if (staged_n)
        snprintf(kept, sizeof kept,
                 "; the %zu files verified so far wait in %s for the next import (carry the "
                 "parts named again)",
                 staged_n, oc_stage_dir(c->st));
    else
        snprintf(kept, sizeof kept, "; nothing was kept");
    if (missing)
        oc_error_set(err, ns->n ? OC_E_DIGEST : OC_E_NOTFOUND,
                     "bundle %s is not complete: %zu of its %zu files (%" PRIu64
                     " bytes) are missing%s%s%s%s%s%s; %s is unchanged",
                     d->id, missing, d->n_files, missing_bytes,
                     *absent ? "; parts not given: " : "", absent,
                     *given ? "; damaged parts: " : "", given, why, kept, oc_store_dir(c->s));
    else
        oc_error_set(err, OC_E_FORMAT,
                     "bundle %s: damaged parts: %s%s; every file it lists verified, but a bundle "
                     "with damage is not imported: carry a clean copy of the parts named%s; %s is "
                     "unchanged",
                     d->id, given, why, kept, oc_store_dir(c->s));
    return -1;
}

/* The bundle's images into the report. */
static int report_images(oc_import_report *rep, const oc_bundle_doc *d, oc_error *err)
{
    oc_bundle_item *items = calloc(d->n_images + 1, sizeof *items);
    if (!items)
        return oom(err);
    rep->images = items;
    for (size_t i = 0; i < d->n_images; i++) {
        items[i].ref = strdup(d->images[i].ref);
        items[i].digest = strdup(d->images[i].digest);
        items[i].media_type = strdup(d->images[i].media_type);
        rep->n_images++;
        if (!items[i].ref || !items[i].digest || !items[i].media_type)
            return oom(err);
    }
    return 0;
}

int oc_import_run(const oc_import_options *o, oc_import_report *rep, oc_error *err)
{
    double t0 = oc_bundle_seconds();
    parts_in p = {0};
    oc_store *s = NULL;
    oc_import_ctx c = {.o = o, .rep = rep};
    notes ns = {.n = 0};
    int rc = -1;
    if (!o->store_dir || o->n_parts == 0) {
        oc_error_set(err, OC_E_USAGE, "import needs a store and at least one bundle or part");
        return -1;
    }
    if (parts_open(o, &p, err) != 0)
        goto out;
    const oc_bundle_doc *d = oc_bundle_reader_doc(p.r[0]);
    c.d = d;
    rep->parts = d->parts;
    rep->files = d->n_files;
    if (!(rep->id = strdup(d->id))) {
        oom(err);
        goto out;
    }
    if (report_images(rep, d, err) != 0)
        goto out;
    /* before anything is written: a bundle made against what is not here */
    if (check_requires(o->store_dir, d, err) != 0)
        goto out;
    if (!(s = oc_store_open(o->store_dir, OC_STORE_WRITE, err)))
        goto out;
    c.s = s;
    /* what an earlier import of this bundle verified counts */
    if (oc_stage_exists(s, d->id) && !oc_import_stage(&c, err))
        goto out;
    if (!(ns.part_damaged = calloc(p.n + 1, 1))) {
        oom(err);
        goto out;
    }
    for (size_t i = 0; i < p.n; i++)
        if (read_part(&c, p.r[i], &ns.part_damaged[i], &ns, err) != 0)
            goto out;
    if (join_segments(&c, &ns, err) != 0 || check_complete(&c, &p, &ns, err) != 0)
        goto out;
    if (oc_import_commit(&c, err) != 0)
        goto out;
    for (size_t i = 0; i < d->n_images; i++) {
        ((oc_bundle_item *)rep->images)[i].changed = c.changed[i];
        rep->changed += c.changed[i] != 0;
    }
    rep->complete = 1;
    rc = 0;
out:
    if (rc != 0 && c.st && !rep->complete) {
        const char *dir = oc_stage_dir(c.st);
        struct stat sb;
        if (stat(dir, &sb) == 0 && rep->received + rep->present > 0)
            rep->staged = strdup(dir);
    }
    oc_stage_close(c.st, rc == 0);
    if (rc != 0 && rep->staged && access(rep->staged, F_OK) != 0) {
        free((char *)rep->staged);
        rep->staged = NULL;
    }
    oc_blobsink_pool_free(c.pool);
    oc_store_close(s);
    parts_close(&p);
    free(c.changed);
    free(ns.part_damaged);
    rep->seconds = oc_bundle_seconds() - t0;
    return rc;
}
