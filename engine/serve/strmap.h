/* strmap.h - a string-keyed hash table (open addressing), for serve's view
 * of a store: repositories by name, manifests and blobs by digest, cached
 * credentials. Keys are copied; values are the caller's. There is no
 * removal: a table is built, read, and freed whole (or emptied). */
#ifndef OC_SERVE_STRMAP_H
#define OC_SERVE_STRMAP_H

#include <stddef.h>

typedef struct oc_strmap oc_strmap;

oc_strmap *oc_strmap_new(void);
/* free_value (may be NULL) is called on every value. NULL m is fine. */
void oc_strmap_free(oc_strmap *m, void (*free_value)(void *));
/* Drop every entry (free_value on each value), keep the table. */
void oc_strmap_clear(oc_strmap *m, void (*free_value)(void *));
/* Set key to value; the value it had is returned through old (NULL when
 * new). -1 when out of memory. */
int oc_strmap_put(oc_strmap *m, const char *key, void *value, void **old);
void *oc_strmap_get(const oc_strmap *m, const char *key);
size_t oc_strmap_count(const oc_strmap *m);
/* Visit every entry in no particular order; a non-zero return stops the
 * walk and is returned. The table must not change meanwhile. */
typedef int (*oc_strmap_visit)(void *opaque, const char *key, void *value);
int oc_strmap_foreach(const oc_strmap *m, oc_strmap_visit fn, void *opaque);

#endif
