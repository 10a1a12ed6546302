/* oci_verify.h - verify, repair and gc of the store's OCI layout
 * (DESIGN.md 7.5), beside those of the 0.2.0 files (store_verify.h,
 * store_gc.h). A store without STORE/oci/ passes untouched.
 *
 * verify: oci-layout says layout 1.0.0; every file in blobs/sha256/ hashes
 * to its name; index.json parses, and every blob each of its descriptors
 * reaches (oci_walk.h) is in place with the size its descriptor gives.
 * Damage is a blob that does not hash to its name, and a descriptor that
 * reaches a missing, short or damaged blob; a platform an index names that
 * the store does not hold is not (one note counts them); neither is a blob
 * no descriptor reaches (a note: gc removes it).
 * repair: each damaged blob is removed, then every descriptor that reached
 * a removed or missing blob is dropped from index.json (so "a descriptor
 * is in index.json only when all it reaches is in place" holds again, and
 * the next mirror, finding the tag without its exact bytes, fetches what is
 * missing); a damaged oci-layout is written again.
 * gc: every blob no descriptor of index.json reaches is removed. */
#ifndef OC_ENGINE_STORE_OCI_VERIFY_H
#define OC_ENGINE_STORE_OCI_VERIFY_H

#include <stddef.h>

#include "engine/store/store.h"
#include "io/error.h"
#include "occystrap/occystrap.h"

/* What verify found that repair acts on. */
typedef struct oc_oci_damage {
    char **blobs; /* hex of each blob that does not hash to its name */
    size_t n_blobs;
    char **refs; /* ref names of the descriptors to drop */
    size_t n_refs;
    int layout_bad; /* oci-layout is missing or wrong */
} oc_oci_damage;

void oc_oci_damage_free(oc_oci_damage *d);

/* Findings go to report like the 0.2.0 ones (file names under "oci/");
 * st's counters grow (damaged, notes, bytes_hashed, oci_blobs,
 * oci_descriptors). dmg (may be NULL) receives what repair would do. -1
 * only when the check could not run. */
int oc_store_oci_verify(const oc_store *s, oc_verify_cb report, void *opaque, oc_verify_stats *st,
                        oc_oci_damage *dmg, oc_error *err);
/* GC mode (no writer at work): act on dmg; each removal and each dropped
 * descriptor is reported (OC_VERIFY_REMOVED) and counted in st. */
int oc_store_oci_repair(oc_store *s, const oc_oci_damage *dmg, oc_verify_cb report, void *opaque,
                        oc_verify_stats *st, oc_error *err);

/* GC mode: remove the blobs of STORE/oci/ no descriptor reaches (counted in
 * st->oci_blobs, st->kept_oci_blobs and st->bytes; each reported). Refuses
 * (-1) when index.json does not parse. */
int oc_store_oci_gc(oc_store *s, int dry_run, oc_gc_cb report, void *opaque, oc_gc_stats *st,
                    oc_error *err);

#endif
