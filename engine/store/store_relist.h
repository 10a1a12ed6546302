/* store_relist.h - put back into catalog.json the complete images it does
 * not list.
 *
 * An image's manifest file is written before its catalog entry, and a bulk
 * run writes catalog entries in batches (catalog_batch.h), so a run killed
 * at the wrong moment leaves manifest files the catalog lacks. The next
 * mirror of the same entries lists them; `verify --repair` lists them all
 * with this: every manifest file the catalog does not name is added when it
 * names its image and tag (our "ImageName" and "Occystrap" keys), has the
 * name the naming rule gives them, the catalog holds nothing else for that
 * image:tag, and every blob it names is in place with its marker
 * (oc_store_image_intact). The rest stays for verify to note. One locked
 * merge, one write. */
#ifndef OC_ENGINE_STORE_STORE_RELIST_H
#define OC_ENGINE_STORE_STORE_RELIST_H

#include "engine/store/store.h"
#include "io/error.h"

typedef void (*oc_relist_report)(void *opaque, const char *file, const char *image,
                                 const char *tag);

/* The number of images listed, or -1. WRITE or GC mode. */
long oc_store_relist(oc_store *s, oc_relist_report report, void *opaque, oc_error *err);

#endif
