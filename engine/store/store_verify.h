/* store_verify.h - re-check everything a store holds.
 *
 * catalog.json and every manifest file must parse, and every file they name
 * must exist; every config must hash to its name (a config with no marker
 * that does not is a 0.2.0 store's re-serialised copy: noted, parsed, not
 * counted as damage) and parse; every layer.tar is re-hashed against its
 * diff_id, taken from its marker and from the configs of the images that
 * use it (the two must agree), and its size checked against the marker.
 * Markers must parse and name their blob. Things that are odd but not
 * damage (a manifest file the catalog does not list, an unreferenced layer
 * without a marker that cannot be checked, a marker whose blob is gone) are
 * notes. Files under .tmp are scratch and never looked at. */
#ifndef OC_ENGINE_STORE_VERIFY_H
#define OC_ENGINE_STORE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/store/store.h"
#include "io/error.h"
#include "occystrap/occystrap.h"

/* The findings (oc_verify_finding: DAMAGED, NOTE) and the stats are the
 * public oc_verify's (occystrap.h); file is relative to the store. Returns
 * 0 when the check ran (damage is counted in stats->damaged), -1 when it
 * could not (the store cannot be listed). */
int oc_store_verify(const oc_store *s, oc_verify_cb report, void *opaque, oc_verify_stats *stats,
                    oc_error *err);

/* Where a verifier's findings go, for this one and the OCI layout's
 * (oci_verify.h): report (NULL: nowhere) hears each one, st counts it
 * (damaged, else notes). */
typedef struct oc_verify_out {
    oc_verify_cb report;
    void *opaque;
    oc_verify_stats *st;
} oc_verify_out;

/* One finding about file (relative to the store), its message formatted. */
void oc_verify_say(const oc_verify_out *out, oc_verify_finding kind, const char *file,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Repair for a blob verify called damaged: file is "<hex>/layer.tar" or
 * "<hex>.json" (a config). Its known-good marker goes first (so nothing
 * trusts the file any more), then the file; each removal is made durable.
 * The manifest files that name it stay: the next mirror or
 * fetch-to-extracted finds the blob missing and fetches it again. The store
 * must be open in OC_STORE_GC mode (no writer at work). Returns 1 removed,
 * 0 not a blob name (nothing done), -1 error. */
int oc_store_drop_blob(oc_store *s, const char *file, oc_error *err);

#endif
