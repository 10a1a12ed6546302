/* grow.h - the one way arrays grow: room for at least `need` elements of
 * `size` bytes, capacity doubled from `first` (amortised O(1) appends), the
 * multiplication checked for overflow. Returns the array (moved, perhaps)
 * and updates *cap, or NULL with arr and *cap untouched (still valid) when
 * there is no memory:
 *
 *     item *v = oc_grow(l->v, &l->cap, l->n + 1, sizeof *v, 16);
 *     if (!v) return -1;
 *     l->v = v;
 */
#ifndef OC_IO_GROW_H
#define OC_IO_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static inline void *oc_grow(void *arr, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return arr;
    size_t nc = *cap ? *cap : (first ? first : 1);
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return NULL;
        nc *= 2;
    }
    if (size && nc > SIZE_MAX / size)
        return NULL;
    void *grown = realloc(arr, nc * size);
    if (!grown)
        return NULL;
    *cap = nc;
    return grown;
}

#endif
