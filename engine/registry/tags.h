/* tags.h - a repository's tags: GET /v2/<name>/tags/list, page after page.
 *
 * The first request asks for page_size tags ("?n=", when page_size is set;
 * else the registry chooses), and every answer that has a Link header with
 * rel="next" is followed (its "n" and "last" as the registry wrote them),
 * until a page comes without one. Each page is an ordinary registry call
 * (registry.h): the same concurrency caps, rate, auth and retries as any
 * request to that registry. A Link that points at another repository, does
 * not move on, or a list past a million tags is an error. */
#ifndef OC_ENGINE_REGISTRY_TAGS_H
#define OC_ENGINE_REGISTRY_TAGS_H

#include <stddef.h>

#include "engine/registry/registry.h"
#include "io/error.h"

/* tags (the callee's: free with oc_tags_free) in the registry's order, or
 * err (tags NULL). */
typedef void (*oc_tags_done)(void *opaque, char **tags, size_t n, const oc_error *err);

int oc_registry_list_tags(oc_registry *r, const char *repo, unsigned page_size, oc_tags_done done,
                          void *opaque, oc_error *err);
void oc_tags_free(char **tags, size_t n);

/* ---- the pieces, for tests ---- */

/* Append the tags of one page ({"name": ..., "tags": [...]}; "tags" may be
 * null) to *tags (n of cap). */
int oc_tags_parse_page(const char *body, size_t len, const char *repo, char ***tags, size_t *n,
                       size_t *cap, oc_error *err);
/* From a Link header, the next page as a reference under /v2/<repo>/tags/
 * ("list?n=100&last=x"): 1 and *next (malloc'd), 0 when there is no next
 * page, -1 when the header is malformed or points elsewhere. */
int oc_tags_next_page(const char *link, const char *repo, char **next, oc_error *err);

#endif
