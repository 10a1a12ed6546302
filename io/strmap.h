/* strmap.h - a map from strings to pointers: an open-addressing hash table
 * (FNV-1a, linear probing, grown at half full), for the per-run indexes that
 * must cost O(1) per lookup however many entries a run has (references seen,
 * markers read). Keys are copied; values are the caller's (a free function
 * given at creation releases them with the map, or one given when it is
 * cleared or freed). No removal of one key: the maps it serves only grow,
 * or are cleared whole (a bounded cache). */
#ifndef OC_IO_STRMAP_H
#define OC_IO_STRMAP_H

#include <stddef.h>

typedef struct oc_strmap oc_strmap;

/* free_value (may be NULL) is called on every value when the map is freed
 * and on a value that oc_strmap_set replaces. */
oc_strmap *oc_strmap_new(void (*free_value)(void *));
void oc_strmap_free(oc_strmap *m);
/* Free, releasing each value with free_value (NULL: the map's own). */
void oc_strmap_free_with(oc_strmap *m, void (*free_value)(void *));
/* Remove every entry, releasing values as oc_strmap_free_with does. */
void oc_strmap_clear(oc_strmap *m, void (*free_value)(void *));

/* The value of key, or NULL (a NULL value reads as absent too: use
 * oc_strmap_has to tell them apart). */
void *oc_strmap_get(const oc_strmap *m, const char *key);
int oc_strmap_has(const oc_strmap *m, const char *key);
/* Insert or replace; -1 when out of memory (the map is unchanged and the
 * value is not taken). */
int oc_strmap_set(oc_strmap *m, const char *key, void *value);
/* Insert or replace without releasing anything: *old (if old) receives the
 * replaced value, or NULL. -1 when out of memory (the map is unchanged). */
int oc_strmap_put(oc_strmap *m, const char *key, void *value, void **old);
size_t oc_strmap_count(const oc_strmap *m);
/* Call fn on every entry, in no particular order; fn must not change the
 * map. */
void oc_strmap_foreach(const oc_strmap *m, void (*fn)(const char *key, void *value, void *opaque),
                       void *opaque);

#endif
