/* store_api.c - the public store calls of occystrap.h (export, listing,
 * verify with repair, gc): each opens the store in the mode it needs (a
 * reader shares the store lock; repair and gc take it exclusively, so they
 * wait for running writers), runs, and closes it. No network, no loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/store/catalog.h"
#include "engine/store/oci_export.h"
#include "engine/store/oci_verify.h"
#include "engine/store/recreate.h"
#include "engine/store/store.h"
#include "engine/store/store_gc.h"
#include "engine/store/store_list.h"
#include "engine/store/store_relist.h"
#include "engine/store/store_verify.h"
#include "occystrap/occystrap.h"

int oc_image_tag_split(const char *text, char **image, char **tag, oc_error *err)
{
    return oc_catalog_split_ref(text, image, tag, err);
}

int oc_export(const char *store, const oc_image_tag *images, size_t n, const char *tarfile,
              int force_readwrite, oc_export_stats *stats, oc_error *err)
{
    oc_store *s = oc_store_open(store, OC_STORE_READ, err);
    if (!s)
        return -1;
    oc_recreate_opts ro = {.force_readwrite = force_readwrite};
    oc_recreate_stats st;
    memset(&st, 0, sizeof st);
    int rc = oc_recreate(s, images, n, tarfile, &ro, &st, err);
    oc_store_close(s);
    if (stats) {
        stats->images = st.images;
        stats->layers = st.layers;
        stats->layers_dups = st.layers_dups;
        stats->total_bytes = st.copy.total_bytes;
        stats->copy_file_range_bytes = st.copy.copy_file_range_bytes;
        stats->sendfile_bytes = st.copy.sendfile_bytes;
        stats->readwrite_bytes = st.copy.readwrite_bytes;
    }
    return rc;
}

int oc_export_oci(const char *store, const oc_image_tag *images, size_t n, const char *tarfile,
                  int force_readwrite, oc_export_stats *stats, oc_error *err)
{
    oc_store *s = oc_store_open(store, OC_STORE_READ, err);
    if (!s)
        return -1;
    int rc = oc_store_oci_export(s, images, n, tarfile, force_readwrite, stats, err);
    oc_store_close(s);
    return rc;
}

char *oc_store_listing(const char *store, oc_error *err)
{
    oc_store *s = oc_store_open(store, OC_STORE_READ, err);
    json_t *doc = s ? oc_store_list(s, err) : NULL;
    oc_store_close(s);
    if (!doc)
        return NULL;
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    return text;
}

/* verify's findings pass through to the caller; with repair, the distinct
 * damaged files are collected for removal after the check. */
typedef struct verify_run {
    oc_verify_cb cb;
    void *opaque;
    int repair;
    char **damaged;
    size_t n_damaged;
    int nomem;
} verify_run;

static void on_finding(oc_verify_finding kind, const char *file, const char *msg, void *opaque)
{
    verify_run *vr = opaque;
    if (vr->cb)
        vr->cb(kind, file, msg, vr->opaque);
    if (kind != OC_VERIFY_DAMAGED || !vr->repair)
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

/* Each damaged blob goes (marker first), so the next run fetches it again;
 * a damaged file that is not a blob is reported as kept. */
static int repair_blobs(oc_store *s, verify_run *vr, oc_verify_stats *st, oc_error *err)
{
    for (size_t i = 0; i < vr->n_damaged; i++) {
        if (strncmp(vr->damaged[i], "oci/", 4) == 0)
            continue; /* the OCI layout's repair (oci_verify.h) */
        int r = oc_store_drop_blob(s, vr->damaged[i], err);
        if (r < 0)
            return -1;
        if (r == 1)
            st->removed++;
        if (vr->cb)
            vr->cb(r == 1 ? OC_VERIFY_REMOVED : OC_VERIFY_KEPT, vr->damaged[i],
                   r == 1 ? "damaged; its marker too"
                          : "not a layer or config, cannot be fetched again (fix or remove it "
                            "by hand)",
                   vr->opaque);
    }
    return 0;
}

/* verify --repair: a complete image the catalog lacks is listed. */
static void on_relisted(void *opaque, const char *file, const char *image, const char *tag)
{
    verify_run *vr = opaque;
    char msg[1100];
    snprintf(msg, sizeof msg, "complete, but missing from catalog.json: listed as %s:%s", image,
             tag);
    if (vr->cb)
        vr->cb(OC_VERIFY_LISTED, file, msg, vr->opaque);
}

int oc_verify(const char *store, int repair, oc_verify_cb cb, void *opaque, oc_verify_stats *stats,
              oc_error *err)
{
    oc_verify_stats st;
    memset(&st, 0, sizeof st);
    /* repair removes files: no writer may be at work (gc's exclusive lock) */
    oc_store *s = oc_store_open(store, repair ? OC_STORE_GC : OC_STORE_READ, err);
    verify_run vr = {.cb = cb, .opaque = opaque, .repair = repair};
    oc_oci_damage dmg;
    memset(&dmg, 0, sizeof dmg);
    int rc = s ? oc_store_verify(s, on_finding, &vr, &st, err) : -1;
    if (rc == 0)
        rc = oc_store_oci_verify(s, on_finding, &vr, &st, repair ? &dmg : NULL, err);
    if (rc == 0 && vr.nomem) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        rc = -1;
    }
    if (rc == 0 && repair &&
        (repair_blobs(s, &vr, &st, err) != 0 ||
         oc_store_oci_repair(s, &dmg, cb, opaque, &st, err) != 0)) {
        oc_error_prefix(err, "%s", store);
        rc = -1;
    }
    oc_oci_damage_free(&dmg);
    if (rc == 0 && repair) {
        long listed = oc_store_relist(s, on_relisted, &vr, err);
        if (listed < 0) {
            oc_error_prefix(err, "%s: listing complete images", store);
            rc = -1;
        } else {
            st.listed = (size_t)listed;
        }
    }
    for (size_t i = 0; i < vr.n_damaged; i++)
        free(vr.damaged[i]);
    free(vr.damaged);
    oc_store_close(s);
    if (stats)
        *stats = st;
    return rc;
}

int oc_gc(const char *store, int dry_run, oc_gc_cb cb, void *opaque, oc_gc_stats *stats,
          oc_error *err)
{
    oc_gc_stats st;
    memset(&st, 0, sizeof st);
    oc_store *s = oc_store_open(store, OC_STORE_GC, err);
    int rc = s ? oc_store_gc(s, dry_run, cb, opaque, &st, err) : -1;
    if (rc == 0 && oc_store_oci_gc(s, dry_run, cb, opaque, &st, err) != 0) {
        oc_error_prefix(err, "gc of %s", store);
        rc = -1;
    }
    oc_store_close(s);
    if (stats)
        *stats = st;
    return rc;
}
