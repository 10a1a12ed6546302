/* oci_export.c - an OCI layout tar of a store's exact bytes (see
 * oci_export.h). */
#include "engine/store/oci_export.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/store/oci_index.h"
#include "engine/store/oci_layout.h"
#include "engine/store/oci_walk.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/strmap.h"
#include "io/tarcopy.h"

typedef struct blob {
    char hex[OC_SHA256_HEX_LEN + 1];
    uint64_t size;
    int is_layer;
} blob;

typedef struct plan {
    const oc_store *s;
    const char *label; /* IMAGE:TAG being walked */
    blob *blobs;       /* in the order met */
    size_t n, cap;
    oc_strmap *seen;   /* hex -> (nothing) */
    char problem[900]; /* the first missing or broken blob */
    int nomem;
} plan;

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

static void on_ref(void *opaque, const oc_oci_ref *r)
{
    plan *p = opaque;
    if (r->state != OC_OCI_PRESENT) {
        if (r->kind == OC_OCI_CHILD && r->state == OC_OCI_MISSING)
            return; /* a platform the store does not hold */
        if (!p->problem[0])
            snprintf(p->problem, sizeof p->problem, "%s: blob %s is %s (run verify)", p->label,
                     r->digest,
                     r->state == OC_OCI_MISSING      ? "missing"
                     : r->state == OC_OCI_WRONG_SIZE ? "not the size its descriptor says"
                                                     : "unreadable");
        return;
    }
    if (oc_strmap_has(p->seen, r->hex))
        return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        blob *grown = realloc(p->blobs, cap * sizeof *grown);
        if (!grown) {
            p->nomem = 1;
            return;
        }
        p->blobs = grown;
        p->cap = cap;
    }
    if (oc_strmap_set(p->seen, r->hex, NULL) != 0) {
        p->nomem = 1;
        return;
    }
    blob *b = &p->blobs[p->n++];
    memcpy(b->hex, r->hex, sizeof b->hex);
    b->size = r->size;
    b->is_layer = r->kind == OC_OCI_LAYER;
}

/* The entries asked for into out, their blobs into p. */
static int locate(plan *p, const oc_oci_index *x, const oc_image_tag *items, size_t n,
                  oc_oci_index *out, oc_error *err)
{
    for (size_t i = 0; i < n; i++) {
        char *ref = oc_oci_ref_name(items[i].image, items[i].tag);
        if (!ref)
            return oom(err);
        const char *text = oc_oci_index_get(x, ref);
        char *mt = NULL, *dg = NULL;
        uint64_t size = 0;
        int rc = -1;
        if (!text)
            oc_error_set(err, OC_E_NOTFOUND,
                         "%s has no exact bytes in %s (oci/index.json does not name it; a mirror "
                         "without --no-exact adds them)",
                         ref, oc_store_dir(p->s));
        else if (oc_oci_descriptor_parse(text, &mt, &dg, &size, err) == 0 &&
                 oc_oci_index_set(out, ref, text, err) == 0) {
            p->label = ref;
            (void)oc_store_oci_walk(p->s, mt, dg, size, on_ref, p);
            p->label = NULL;
            if (p->nomem)
                oom(err);
            else if (p->problem[0])
                oc_error_set(err, OC_E_NOTFOUND, "%s", p->problem);
            else
                rc = 0;
        }
        free(mt);
        free(dg);
        free(ref);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int write_members(plan *p, oc_tarcopy *w, const char *index, size_t index_len,
                         oc_export_stats *st, oc_error *err)
{
    if (oc_tarcopy_add_buffer(w, "oci-layout", OC_STORE_OCI_LAYOUT_TEXT,
                              strlen(OC_STORE_OCI_LAYOUT_TEXT), err) != 0 ||
        oc_tarcopy_add_buffer(w, "index.json", index, index_len, err) != 0 ||
        oc_tarcopy_add_dir(w, "blobs/", err) != 0 ||
        oc_tarcopy_add_dir(w, "blobs/sha256/", err) != 0)
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        char name[OC_SHA256_HEX_LEN + 16];
        snprintf(name, sizeof name, "blobs/sha256/%s", p->blobs[i].hex);
        char *path = oc_store_oci_blob_path(p->s, p->blobs[i].hex);
        int rc = path ? oc_tarcopy_add_file(w, name, path, p->blobs[i].size, err) : oom(err);
        free(path);
        if (rc != 0)
            return -1;
        st->layers += p->blobs[i].is_layer;
    }
    return 0;
}

int oc_store_oci_export(const oc_store *s, const oc_image_tag *items, size_t n, const char *tarfile,
                        int force_readwrite, oc_export_stats *stats, oc_error *err)
{
    oc_export_stats local = {0};
    oc_export_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (n == 0) {
        oc_error_set(err, OC_E_USAGE, "no image to write into %s", tarfile);
        return -1;
    }
    plan p = {.s = s, .seen = oc_strmap_new(NULL)};
    oc_oci_index *x = NULL, *out = oc_oci_index_new();
    char *index = NULL, *copy = NULL;
    size_t index_len = 0;
    oc_atomic_file f = {.fd = -1};
    oc_tarcopy *w = NULL;
    int rc = -1;
    if (!p.seen || !out) {
        oom(err);
        goto done;
    }
    if (oc_store_oci_index_load(s, &x, err) != 0 || locate(&p, x, items, n, out, err) != 0 ||
        !(index = oc_oci_index_dump(out, &index_len, err)))
        goto done;
    st->images = oc_oci_index_count(out);
    if (!(copy = strdup(tarfile))) {
        oom(err);
        goto done;
    }
    if (oc_atomic_open(&f, dirname(copy), tarfile, err) != 0)
        goto done;
    if (!(w = oc_tarcopy_open(f.fd, tarfile, err)))
        goto abort;
    if (force_readwrite)
        oc_tarcopy_force_readwrite(w, 1);
    if (write_members(&p, w, index, index_len, st, err) != 0)
        goto abort;
    oc_tarcopy_stats cs;
    oc_tarcopy_get_stats(w, &cs);
    oc_tarcopy *closing = w;
    w = NULL;
    if (oc_tarcopy_close(closing, err) != 0 || oc_atomic_commit(&f, err) != 0)
        goto abort;
    st->total_bytes = cs.total_bytes + 1024; /* the end blocks */
    st->copy_file_range_bytes = cs.copy_file_range_bytes;
    st->sendfile_bytes = cs.sendfile_bytes;
    st->readwrite_bytes = cs.readwrite_bytes;
    rc = 0;
    goto done;
abort:
    oc_tarcopy_free(w);
    oc_atomic_abort(&f);
done:
    if (rc != 0)
        oc_error_prefix(err, "exporting %s from %s", tarfile, oc_store_dir(s));
    free(copy);
    free(index);
    free(p.blobs);
    oc_strmap_free(p.seen);
    oc_oci_index_free(x);
    oc_oci_index_free(out);
    return rc;
}
