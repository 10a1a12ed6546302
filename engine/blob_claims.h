/* blob_claims.h - one download of a blob across all the processes writing
 * one store (several shards of a mirror on one host or on a shared file
 * system).
 *
 * Before a pull fetches a layer (pull.h claim_layer), it takes the blob's
 * lock file STORE/.occystrap/fetching/<hex>.lock (io/pidlock.h: it names
 * the owner's host and pid; a dead owner's lock is taken over). When
 * another live process holds it, the pull waits: the lock file is looked
 * at every 200 ms (gone: the pull asks the store, which then usually has
 * the layer, and fetches it only if not) and the owner's liveness checked
 * again every second. A held lock is released when the fetch is over
 * (after the layer and its marker are in place) and touched every 10 s so
 * that processes on other hosts see its owner is alive (they take over a
 * lock untouched for 60 s). On interruption every waiter is woken (its
 * claim then fails with the interruption). */
#ifndef OC_ENGINE_BLOB_CLAIMS_H
#define OC_ENGINE_BLOB_CLAIMS_H

#include "engine/registry/engine.h"
#include "engine/store/store.h"
#include "io/error.h"

typedef struct oc_blob_claims oc_blob_claims;

oc_blob_claims *oc_blob_claims_new(oc_engine *e, oc_store *s, oc_error *err);
/* pull.h claim_layer and release_layer (opaque is the oc_blob_claims). */
int oc_blob_claims_claim(void *opaque, const char *digest, void (*again)(void *),
                         void *again_opaque, oc_error *err);
void oc_blob_claims_release(void *opaque, const char *digest);
/* Locks taken by this run, and waits for another process. */
unsigned oc_blob_claims_taken(const oc_blob_claims *c);
unsigned oc_blob_claims_waits(const oc_blob_claims *c);
/* Release what is still held and stop the timer; the memory goes when the
 * loop has closed it. No waiter may be left. */
void oc_blob_claims_close(oc_blob_claims *c);

#endif
