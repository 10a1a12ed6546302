/* import.h - importing a bundle into a store (DESIGN.md 7.8): import.c
 * reads and checks the parts and streams their files into the stage
 * (stage.h); import_commit.c, once the bundle is whole, makes the layers'
 * tars and puts everything in place, the catalog and the OCI index last,
 * in one locked step.
 *
 * The report builder is shared by both: images (with "changed") and
 * counts, as the public oc_import_report gives them. */
#ifndef OC_ENGINE_BUNDLE_IMPORT_H
#define OC_ENGINE_BUNDLE_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/bundle/bundle_doc.h"
#include "engine/bundle/stage.h"
#include "engine/store/store.h"
#include "io/error.h"
#include "occystrap/occystrap.h"

typedef struct oc_import_ctx {
    oc_store *s;
    oc_stage *st; /* opened when the first file must be staged (or one was left) */
    oc_blobsink_pool *pool;
    const oc_bundle_doc *d;
    oc_import_report *rep;
    int *changed; /* per image of d */
    const oc_import_options *o;
} oc_import_ctx;

/* The stage, opened now when it is not yet (NULL with err). */
oc_stage *oc_import_stage(oc_import_ctx *c, oc_error *err);

/* The blob hex of size bytes: the store's copy when it has one, else the
 * stage's; malloc'd path, or NULL when neither has it. */
char *oc_import_blob_path(oc_import_ctx *c, const char *hex, uint64_t size);

/* Everything verified and in the stage: check the images, make their
 * layers, place it all, list the images (see the top). */
int oc_import_commit(oc_import_ctx *c, oc_error *err);

/* The run behind oc_import (rep is allocated by the caller and filled). */
int oc_import_run(const oc_import_options *o, oc_import_report *rep, oc_error *err);

#endif
