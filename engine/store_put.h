/* store_put.h - moving one verified layer into a store the moment it has
 * verified (mirror): its exact compressed bytes (when kept) into
 * oci/blobs/sha256/<hex>, then the tar by rename into <hex>/layer.tar,
 * fsync the directories, then its known-good marker. A layer already in
 * place is replaced by the new, verified copy (same digest, so the same
 * bytes). */
#ifndef OC_ENGINE_STORE_PUT_H
#define OC_ENGINE_STORE_PUT_H

#include "engine/registry/pull.h"
#include "engine/store/store.h"

/* tmp_path and l->blob_path must be on the store's file system (its run or
 * partial directory). *final_path (malloc'd) is the layer's path in the
 * store. tmp_path NULL: only l->blob_path is placed, the tar l->path is
 * the store's already. Safe on a worker thread (mirror runs it on the
 * pipeline's io pool, off the loop). */
int oc_store_put_layer(oc_store *s, const oc_pulled_layer *l, const char *tmp_path,
                       char **final_path, oc_error *err);

#endif
