/* catalog.h - catalog.json of a merged store, and the store's naming rules.
 *
 * catalog.json maps image names to tags to the manifest file that describes
 * that image in the store, exactly as occystrap 0.2.0 wrote it:
 *   {"<image>": {"<tag>": "manifest-<image with / as _>-<tag with / as _>.json"}}
 * (a plain fetch-to-extracted directory records "manifest.json"). Keys we do
 * not understand are kept: a catalog is read, changed and written back
 * whole. Written indented by 4, keys sorted, ASCII only, one trailing
 * newline, as Python's json.dumps(indent=4, sort_keys=True) does.
 *
 * This file only models the document; store.c reads and writes it on disk
 * under the catalog lock. */
#ifndef OC_ENGINE_CATALOG_H
#define OC_ENGINE_CATALOG_H

#include <stddef.h>

#include "io/error.h"

typedef struct oc_catalog oc_catalog;

/* An empty catalog. */
oc_catalog *oc_catalog_new(oc_error *err);
/* Parse catalog text; what names it in errors (usually its path). Every
 * image must map to an object of tag -> string, else OC_E_FORMAT naming the
 * image and tag. */
oc_catalog *oc_catalog_parse(const char *text, size_t len, const char *what, oc_error *err);
void oc_catalog_free(oc_catalog *c);

/* Record image:tag -> manifest file (replacing what the tag had). */
int oc_catalog_set(oc_catalog *c, const char *image, const char *tag, const char *manifest_file,
                   oc_error *err);
/* The manifest file of image:tag, or NULL. Valid until the catalog changes. */
const char *oc_catalog_get(const oc_catalog *c, const char *image, const char *tag);
int oc_catalog_has_image(const oc_catalog *c, const char *image);
/* Remove image:tag (and the image when it has no tag left); 1 if it was
 * there. */
int oc_catalog_remove(oc_catalog *c, const char *image, const char *tag);
/* Every entry of from into into; from wins where both name a tag. */
int oc_catalog_merge(oc_catalog *into, const oc_catalog *from, oc_error *err);
/* Number of image:tag entries. */
size_t oc_catalog_count(const oc_catalog *c);

/* Visit entries sorted by image, then tag. A non-zero return from fn stops
 * the walk and is returned. */
typedef int (*oc_catalog_visit)(void *opaque, const char *image, const char *tag,
                                const char *manifest_file);
int oc_catalog_foreach(const oc_catalog *c, oc_catalog_visit fn, void *opaque);

/* For messages, malloc'd: "v1, v2" (tags of image, sorted) and "a, b"
 * (images, sorted); "" when there are none. */
char *oc_catalog_tags_of(const oc_catalog *c, const char *image);
char *oc_catalog_images(const oc_catalog *c);

/* The serialised catalog (see above); malloc'd, *len without the NUL. */
char *oc_catalog_dump(const oc_catalog *c, size_t *len, oc_error *err);

/* ---- naming ---- */

/* "manifest-<image>-<tag>.json" with every '/' in image and tag turned into
 * '_' (0.2.0's rule); malloc'd, NULL when out of memory. */
char *oc_catalog_manifest_name(const char *image, const char *tag);

/* A file name a catalog or manifest file may point at: not empty, no '/',
 * not "." or "..", no control characters. */
int oc_catalog_file_name_ok(const char *name);

/* Split "IMAGE:TAG", "IMAGE@sha256:HEX" or "IMAGE:sha256:HEX" (the tag is
 * then "sha256:HEX"); the tag is after the last ':' that follows the last
 * '/', so "host:5000/img:v1" works. No tag means "latest". malloc'd parts;
 * OC_E_USAGE for an empty image or tag. */
int oc_catalog_split_ref(const char *text, char **image, char **tag, oc_error *err);

#endif
