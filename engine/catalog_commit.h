/* catalog_commit.h - group commit of catalog entries on the loop.
 *
 * Images finished by a bulk run hand their catalog entry here and are told
 * when it is written. Entries are gathered in a catalog batch
 * (store/catalog_batch.h) and written together: the first entry after a
 * write arms a timer, and when it fires everything gathered so far is
 * written with one locked merge and one rename. The period is 1 s, or ten
 * times as long as the last write took if that is longer (so writing a
 * large catalog never takes more than about a tenth of the run), which
 * keeps a run of n new images at about (run seconds + 1) catalog writes
 * instead of n. The owner calls oc_catalog_commit_now when nothing else is
 * left to wait for (the end of the run, or everything still running is
 * waiting for its entry), so the last batch costs no waiting. */
#ifndef OC_ENGINE_CATALOG_COMMIT_H
#define OC_ENGINE_CATALOG_COMMIT_H

#include <uv.h>

#include "engine/store/catalog_batch.h"
#include "io/error.h"

typedef struct oc_catalog_commit oc_catalog_commit;

/* err is NULL when the entry is in catalog.json, else why the write failed
 * (the entry is then not listed; its manifest file is in place). */
typedef void (*oc_catalog_listed)(void *opaque, const oc_error *err);

oc_catalog_commit *oc_catalog_commit_new(uv_loop_t *loop, oc_catalog_batch *b);
/* Queue image:tag -> manifest_file; listed runs after the write that holds
 * it (never from inside this call). -1 (listed never runs) when out of
 * memory. */
int oc_catalog_commit_add(oc_catalog_commit *c, const char *image, const char *tag,
                          const char *manifest_file, oc_catalog_listed listed, void *opaque,
                          oc_error *err);
/* Queue an index.json descriptor (key: a ref name, or a referrer's
 * NAME@DIGEST) for the next write; nobody is told of it. */
int oc_catalog_commit_add_oci(oc_catalog_commit *c, const char *key, const char *text,
                              oc_error *err);
/* listed runs after the next write (never from inside this call). */
int oc_catalog_commit_wait(oc_catalog_commit *c, oc_catalog_listed listed, void *opaque,
                           oc_error *err);
/* Entries queued and not yet written. */
size_t oc_catalog_commit_pending(const oc_catalog_commit *c);
/* Write what is queued now (from the loop: the callbacks run at once). */
void oc_catalog_commit_now(oc_catalog_commit *c);
/* Write what is queued (callbacks run), stop the timer; the memory is
 * freed when the loop has closed the timer. */
void oc_catalog_commit_close(oc_catalog_commit *c);

#endif
