/* oci_verify.c - verify, repair and gc of the store's OCI layout (see
 * oci_verify.h). */
#include "engine/store/oci_verify.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/store/oci_index.h"
#include "engine/store/oci_layout.h"
#include "engine/store/oci_referrers.h"
#include "engine/store/oci_walk.h"
#include "engine/store/store_verify.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/strmap.h"

#define LAYOUT_MAX 4096

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

static int push(char ***v, size_t *n, const char *s)
{
    char **grown = realloc(*v, sizeof *grown * (*n + 1));
    if (!grown)
        return -1;
    *v = grown;
    if (!(grown[*n] = strdup(s)))
        return -1;
    (*n)++;
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void oc_oci_damage_free(oc_oci_damage *d)
{
    if (!d)
        return;
    free_list(d->blobs, d->n_blobs);
    free_list(d->refs, d->n_refs);
    memset(d, 0, sizeof *d);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The hex names in STORE/oci/blobs/sha256, sorted; other names into odd
 * (may be NULL). 0, or -1 with err (a missing directory is empty). */
static int list_blobs(const oc_store *s, char ***hexes, size_t *n, char ***odd, size_t *n_odd,
                      oc_error *err)
{
    *hexes = NULL;
    *n = 0;
    char *dir = oc_store_path(s, OC_STORE_OCI_BLOBS);
    if (!dir)
        return oom(err);
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        int rc = e == ENOENT ? 0 : -1;
        if (rc)
            oc_error_errno(err, e, "read directory %s", dir);
        free(dir);
        return rc;
    }
    free(dir);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (oc_store_name_is_hex(e->d_name, "", NULL))
            rc = push(hexes, n, e->d_name);
        else if (odd && n_odd)
            rc = push(odd, n_odd, e->d_name);
    }
    closedir(d);
    if (rc != 0) {
        free_list(*hexes, *n);
        *hexes = NULL;
        *n = 0;
        return oom(err);
    }
    if (*n > 1)
        qsort(*hexes, *n, sizeof **hexes, cmp_names);
    return 0;
}

/* ---- verify ---- */

typedef struct vctx {
    const oc_store *s;
    oc_verify_out out;
    oc_oci_damage *dmg;
    oc_strmap *bad;     /* hex of blobs that do not hash to their name */
    oc_strmap *reached; /* hex of every blob a descriptor reaches */
    const char *ref;    /* the descriptor being walked */
    int ref_damaged;    /* it reaches damage */
    size_t absent_children;
    int nomem;
} vctx;

static void check_layout_file(vctx *v)
{
    char *path = oc_store_path(v->s, OC_STORE_OCI_DIR "/oci-layout");
    oc_error err;
    oc_error_clear(&err);
    size_t len = 0;
    char *text = path ? oc_read_file(path, LAYOUT_MAX, &len, &err) : NULL;
    free(path);
    json_error_t jerr;
    json_t *doc = text ? json_loadb(text, len, 0, &jerr) : NULL;
    const char *version = json_string_value(json_object_get(doc, "imageLayoutVersion"));
    if (!version || strncmp(version, "1.", 2) != 0) {
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, OC_STORE_OCI_DIR "/oci-layout", "%s",
                      !text  ? (err.code ? err.msg : "out of memory")
                      : !doc ? "does not parse"
                             : "does not say imageLayoutVersion 1.x");
        if (v->dmg)
            v->dmg->layout_bad = 1;
    }
    json_decref(doc);
    free(text);
}

static void hash_blobs(vctx *v, char **hexes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *path = oc_store_oci_blob_path(v->s, hexes[i]);
        char name[OC_SHA256_HEX_LEN + 32];
        snprintf(name, sizeof name, OC_STORE_OCI_BLOBS "/%s", hexes[i]);
        char got[OC_SHA256_HEX_LEN + 1];
        uint64_t size = 0;
        oc_error err;
        oc_error_clear(&err);
        struct stat st;
        v->out.st->oci_blobs++;
        if (!path || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "not a regular file");
        } else if (oc_sha256_file_hex(path, got, &size, &err) != 0) {
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "%s", err.msg);
        } else {
            v->out.st->bytes_hashed += size;
            if (strcmp(got, hexes[i]) == 0) {
                free(path);
                continue;
            }
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "hashes to sha256:%s", got);
        }
        free(path);
        if (oc_strmap_set(v->bad, hexes[i], NULL) != 0 ||
            (v->dmg && push(&v->dmg->blobs, &v->dmg->n_blobs, hexes[i]) != 0))
            v->nomem = 1;
    }
}

static const char *kind_name(oc_oci_ref_kind k)
{
    switch (k) {
    case OC_OCI_TOP:
        return "its blob";
    case OC_OCI_CHILD:
        return "the manifest";
    case OC_OCI_CONFIG:
        return "the config";
    case OC_OCI_LAYER:
        return "the layer";
    }
    return "a blob";
}

static void on_ref(void *opaque, const oc_oci_ref *r)
{
    vctx *v = opaque;
    if (r->hex[0] && oc_strmap_set(v->reached, r->hex, NULL) != 0)
        v->nomem = 1;
    char from[120] = "";
    if (r->parent)
        snprintf(from, sizeof from, " (named by %.80s)", r->parent);
    switch (r->state) {
    case OC_OCI_PRESENT:
        if (oc_strmap_has(v->bad, r->hex)) {
            v->ref_damaged = 1;
            oc_verify_say(&v->out, OC_VERIFY_NOTE, OC_STORE_OCI_DIR "/index.json",
                          "%s reaches the damaged blob %s%s (--repair drops this entry)", v->ref,
                          r->digest, from);
        }
        return;
    case OC_OCI_MISSING:
        if (r->kind == OC_OCI_CHILD) {
            v->absent_children++; /* a platform the store does not hold */
            return;
        }
        v->ref_damaged = 1;
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, OC_STORE_OCI_DIR "/index.json",
                      "%s: %s %s%s is missing", v->ref, kind_name(r->kind), r->digest, from);
        return;
    case OC_OCI_WRONG_SIZE:
        v->ref_damaged = 1;
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, OC_STORE_OCI_DIR "/index.json",
                      "%s: %s %s%s is not the %" PRIu64 " bytes its descriptor says", v->ref,
                      kind_name(r->kind), r->digest, from, r->size);
        return;
    case OC_OCI_BAD:
        v->ref_damaged = 1;
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, OC_STORE_OCI_DIR "/index.json", "%s: %s %s%s: %s",
                      v->ref, kind_name(r->kind), r->digest, from, r->why ? r->why : "unreadable");
        return;
    }
}

static int walk_descriptor(void *opaque, const char *ref_name, const char *digest, const char *text)
{
    vctx *v = opaque;
    char label[300];
    snprintf(label, sizeof label, "%s", ref_name ? ref_name : digest);
    char *mt = NULL, *dg = NULL;
    uint64_t size = 0;
    oc_error err;
    oc_error_clear(&err);
    v->out.st->oci_descriptors++;
    v->ref = label;
    v->ref_damaged = 0;
    if (oc_oci_descriptor_parse(text, &mt, &dg, &size, &err) != 0) {
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, OC_STORE_OCI_DIR "/index.json", "%s: %s", label,
                      err.msg);
        v->ref_damaged = 1;
    } else {
        (void)oc_store_oci_walk(v->s, mt, dg, size, on_ref, v);
    }
    if (v->ref_damaged && ref_name && v->dmg && push(&v->dmg->refs, &v->dmg->n_refs, ref_name) != 0)
        v->nomem = 1;
    free(mt);
    free(dg);
    return 0;
}

/* Each referrer's subject: a manifest of its image that the store holds
 * (through the image's tags), or a referrer that has one. A referrer no
 * image reaches is an orphan (its image was removed, or its tag moved on):
 * a note, since gc drops it. */
static void check_subjects(vctx *v, const oc_oci_index *x)
{
    oc_error err;
    oc_error_clear(&err);
    oc_oci_referrers *rs = oc_oci_referrers_of_index(x, v->s, &err);
    if (!rs) {
        v->nomem = 1;
        return;
    }
    for (size_t i = 0; i < oc_oci_referrers_count(rs); i++) {
        const oc_oci_referrer *r = oc_oci_referrers_at(rs, i);
        v->out.st->referrers++;
        if (!r->live)
            oc_verify_say(
                &v->out, OC_VERIFY_NOTE, OC_STORE_OCI_DIR "/index.json",
                "%s refers to %s, which no image %s of the store reaches (the image was removed "
                "or its tag moved to another digest; gc drops it)",
                r->key, r->subject, r->image);
    }
    oc_oci_referrers_free(rs);
}

int oc_store_oci_verify(const oc_store *s, oc_verify_cb report, void *opaque, oc_verify_stats *st,
                        oc_oci_damage *dmg, oc_error *err)
{
    if (dmg)
        memset(dmg, 0, sizeof *dmg);
    char *dir = oc_store_path(s, OC_STORE_OCI_DIR);
    struct stat sb;
    int present = dir && stat(dir, &sb) == 0;
    free(dir);
    if (!present)
        return 0; /* no exact bytes in this store */
    vctx v = {.s = s, .out = {report, opaque, st}, .dmg = dmg};
    char **hexes = NULL, **odd = NULL;
    size_t n = 0, n_odd = 0;
    oc_oci_index *x = NULL;
    int rc = -1;
    v.bad = oc_strmap_new(NULL);
    v.reached = oc_strmap_new(NULL);
    if (!v.bad || !v.reached) {
        oom(err);
        goto out;
    }
    if (list_blobs(s, &hexes, &n, &odd, &n_odd, err) != 0)
        goto out;
    check_layout_file(&v);
    for (size_t i = 0; i < n_odd; i++)
        oc_verify_say(&v.out, OC_VERIFY_NOTE, OC_STORE_OCI_BLOBS,
                      "%s is not named by a sha256 digest", odd[i]);
    hash_blobs(&v, hexes, n);
    oc_error ierr;
    oc_error_clear(&ierr);
    if (oc_store_oci_index_load(s, &x, &ierr) != 0) {
        oc_verify_say(&v.out, OC_VERIFY_DAMAGED, OC_STORE_OCI_DIR "/index.json", "%s", ierr.msg);
    } else {
        if (oc_oci_index_foreach(x, walk_descriptor, &v) != 0)
            v.nomem = 1;
        for (size_t i = 0; i < n; i++)
            if (!oc_strmap_has(v.reached, hexes[i]))
                oc_verify_say(&v.out, OC_VERIFY_NOTE, OC_STORE_OCI_BLOBS,
                              "%s: no entry of index.json reaches it (gc removes it)", hexes[i]);
        if (v.absent_children)
            oc_verify_say(&v.out, OC_VERIFY_NOTE, OC_STORE_OCI_DIR "/index.json",
                          "%zu manifest(s) named by indexes are not in the store (platforms not "
                          "mirrored, or referrers of other artifact types)",
                          v.absent_children);
        check_subjects(&v, x);
    }
    if (v.nomem) {
        oom(err);
        goto out;
    }
    rc = 0;
out:
    oc_oci_index_free(x);
    free_list(hexes, n);
    free_list(odd, n_odd);
    oc_strmap_free(v.bad);
    oc_strmap_free(v.reached);
    return rc;
}

/* ---- repair ---- */

int oc_store_oci_repair(oc_store *s, const oc_oci_damage *dmg, oc_verify_cb report, void *opaque,
                        oc_verify_stats *st, oc_error *err)
{
    char *dir = oc_store_path(s, OC_STORE_OCI_BLOBS);
    if (!dir)
        return oom(err);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < dmg->n_blobs; i++) {
        char *path = oc_store_oci_blob_path(s, dmg->blobs[i]);
        char name[OC_SHA256_HEX_LEN + 32];
        snprintf(name, sizeof name, OC_STORE_OCI_BLOBS "/%s", dmg->blobs[i]);
        rc = path ? oc_unlink_durably(path, dir, err) : oom(err);
        free(path);
        if (rc == 0) {
            st->removed++;
            if (report)
                report(OC_VERIFY_REMOVED, name,
                       "damaged; the entries of index.json reaching it too", opaque);
        }
    }
    free(dir);
    if (rc == 0 && dmg->n_refs) {
        int fd = oc_store_catalog_lock(s, err);
        oc_oci_index *x = NULL;
        rc = fd < 0 ? -1 : oc_store_oci_index_load(s, &x, err);
        size_t dropped = 0;
        for (size_t i = 0; rc == 0 && i < dmg->n_refs; i++) {
            if (!oc_oci_index_remove(x, dmg->refs[i]))
                continue;
            dropped++;
            if (report) {
                char msg[600];
                snprintf(msg, sizeof msg,
                         "%s dropped (it reached a damaged or missing blob; the next mirror of "
                         "it fetches what is missing)",
                         dmg->refs[i]);
                report(OC_VERIFY_REMOVED, OC_STORE_OCI_DIR "/index.json", msg, opaque);
            }
        }
        if (rc == 0 && dropped)
            rc = oc_store_oci_index_replace(s, x, err);
        if (rc == 0)
            st->dropped += dropped;
        oc_oci_index_free(x);
        oc_store_catalog_unlock(fd);
    }
    if (rc == 0 && dmg->layout_bad) {
        char *path = oc_store_path(s, OC_STORE_OCI_DIR "/oci-layout");
        const char *scratch = path ? oc_store_scratch_dir(s, err) : NULL;
        rc = !path      ? oom(err)
             : !scratch ? -1
                        : oc_atomic_write_file(scratch, path, OC_STORE_OCI_LAYOUT_TEXT,
                                               strlen(OC_STORE_OCI_LAYOUT_TEXT), err);
        free(path);
        if (rc == 0 && report)
            report(OC_VERIFY_REMOVED, OC_STORE_OCI_DIR "/oci-layout", "written again", opaque);
    }
    return rc;
}

/* ---- gc ---- */

typedef struct gwalk {
    const oc_store *s;
    oc_strmap *reached;
    oc_strmap *orphans; /* keys of referrers no image reaches: dropped */
    int nomem;
} gwalk;

static void gc_ref(void *opaque, const oc_oci_ref *r)
{
    gwalk *g = opaque;
    if (r->hex[0] && r->state != OC_OCI_MISSING && oc_strmap_set(g->reached, r->hex, NULL) != 0)
        g->nomem = 1;
}

static int gc_descriptor(void *opaque, const char *ref_name, const char *digest, const char *text)
{
    gwalk *g = opaque;
    (void)digest;
    if (ref_name && oc_strmap_has(g->orphans, ref_name))
        return 0;
    char *mt = NULL, *dg = NULL;
    uint64_t size = 0;
    oc_error ignored;
    if (oc_oci_descriptor_parse(text, &mt, &dg, &size, &ignored) == 0)
        (void)oc_store_oci_walk(g->s, mt, dg, size, gc_ref, g);
    free(mt);
    free(dg);
    return 0;
}

/* The referrers no image reaches any more (their image was removed, or its
 * tag moved to another digest) leave index.json, so that their blobs go
 * too. gc holds the store exclusively; index.json is written under the
 * catalog lock as every writer does. */
static int drop_orphans(oc_store *s, oc_oci_index *x, gwalk *g, int dry_run, oc_gc_cb report,
                        void *opaque, oc_gc_stats *st, oc_error *err)
{
    g->orphans = oc_strmap_new(NULL);
    oc_oci_referrers *rs = g->orphans ? oc_oci_referrers_of_index(x, s, err) : NULL;
    if (!rs) {
        if (!g->orphans)
            oom(err);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < oc_oci_referrers_count(rs); i++) {
        const oc_oci_referrer *r = oc_oci_referrers_at(rs, i);
        if (r->live)
            continue;
        if (oc_strmap_set(g->orphans, r->key, NULL) != 0) {
            rc = oom(err);
            break;
        }
        st->oci_referrers++;
        if (report) {
            char what[600];
            snprintf(what, sizeof what,
                     OC_STORE_OCI_DIR "/index.json entry %s (a referrer of %s, "
                                      "which no image %s reaches)",
                     r->key, r->subject, r->image);
            report(what, 0, opaque);
        }
    }
    if (rc == 0 && !dry_run && st->oci_referrers) {
        int fd = oc_store_catalog_lock(s, err);
        oc_oci_index *now = NULL;
        rc = fd < 0 ? -1 : oc_store_oci_index_load(s, &now, err);
        for (size_t i = 0; rc == 0 && i < oc_oci_referrers_count(rs); i++) {
            const oc_oci_referrer *r = oc_oci_referrers_at(rs, i);
            if (!r->live) {
                (void)oc_oci_index_remove(now, r->key);
                (void)oc_oci_index_remove(x, r->key);
            }
        }
        if (rc == 0)
            rc = oc_store_oci_index_replace(s, now, err);
        oc_oci_index_free(now);
        oc_store_catalog_unlock(fd);
    }
    oc_oci_referrers_free(rs);
    return rc;
}

int oc_store_oci_gc(oc_store *s, int dry_run, oc_gc_cb report, void *opaque, oc_gc_stats *st,
                    oc_error *err)
{
    char **hexes = NULL;
    size_t n = 0;
    if (list_blobs(s, &hexes, &n, NULL, NULL, err) != 0)
        return -1;
    if (n == 0)
        return 0;
    oc_oci_index *x = NULL;
    gwalk g = {.s = s, .reached = oc_strmap_new(NULL)};
    char *dir = oc_store_path(s, OC_STORE_OCI_BLOBS);
    int rc = -1;
    if (!g.reached || !dir) {
        oom(err);
        goto out;
    }
    if (oc_store_oci_index_load(s, &x, err) != 0) {
        oc_error_prefix(err, "not collecting (run verify)");
        goto out;
    }
    if (drop_orphans(s, x, &g, dry_run, report, opaque, st, err) != 0)
        goto out;
    if (oc_oci_index_foreach(x, gc_descriptor, &g) != 0 || g.nomem) {
        oom(err);
        goto out;
    }
    int removed = 0;
    for (size_t i = 0; i < n; i++) {
        if (oc_strmap_has(g.reached, hexes[i])) {
            st->kept_oci_blobs++;
            continue;
        }
        char *path = oc_store_oci_blob_path(s, hexes[i]);
        char name[OC_SHA256_HEX_LEN + 32];
        snprintf(name, sizeof name, OC_STORE_OCI_BLOBS "/%s", hexes[i]);
        struct stat sb;
        /* a config's blob is a second name of STORE/<hex>.json: no bytes freed */
        uint64_t bytes =
            path && lstat(path, &sb) == 0 && sb.st_nlink == 1 ? (uint64_t)sb.st_size : 0;
        if (!path) {
            oom(err);
            goto out;
        }
        if (!dry_run && unlink(path) != 0 && errno != ENOENT) {
            oc_error_errno(err, errno, "remove %s", path);
            free(path);
            goto out;
        }
        free(path);
        removed = 1;
        st->oci_blobs++;
        st->bytes += bytes;
        if (report)
            report(name, bytes, opaque);
    }
    rc = removed && !dry_run ? oc_fsync_dir(dir, err) : 0;
out:
    oc_oci_index_free(x);
    oc_strmap_free(g.reached);
    oc_strmap_free(g.orphans);
    free_list(hexes, n);
    free(dir);
    return rc;
}
