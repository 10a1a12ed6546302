/* mirror_tags.h - the repository entries of a mirror's LIST ("REPO:*",
 * "REPO:/REGEX/") expanded into one entry per selected tag, and the list
 * cut down to this process's shard.
 *
 * Every repository entry's tags are listed at once on the loop (tags.h:
 * pages followed, each page a registry call under the usual caps, rate and
 * retries) and filtered (tagfilter.h) by the entry's regex and the
 * config's "repositories" settings for that repository (exclude, semver,
 * latest). The result keeps LIST's order, a repository's tags in the
 * registry's order in its place; a tag already named by an earlier entry is
 * not added twice. A repository whose tags cannot be listed becomes a bad
 * entry with the error, which the run reports like any failed entry. Then
 * the shard (shard.h) keeps its own entries. */
#ifndef OC_ENGINE_MIRROR_TAGS_H
#define OC_ENGINE_MIRROR_TAGS_H

#include <stddef.h>

#include "engine/image/shard.h"
#include "engine/listfile.h"
#include "engine/registry/engine.h"

/* One repository entry is listed: n_tags in the registry, n_selected
 * taken by its filter (before sharding), or err. */
typedef void (*oc_tags_listed_cb)(void *opaque, const oc_list_entry *repo, size_t n_tags,
                                  size_t n_selected, const oc_error *err);
/* The expansion is over: out is the list to run (the caller's to free);
 * NULL with err when out of memory. */
typedef void (*oc_tags_expanded_cb)(void *opaque, oc_list *out, const oc_error *err);

typedef struct oc_tags_expand_opts {
    const oc_shard *shard; /* NULL = every entry */
    oc_tags_listed_cb listed;
    oc_tags_expanded_cb done;
    void *opaque;
} oc_tags_expand_opts;

/* Start; done runs once, from the loop or (when LIST has no repository
 * entries) before this returns. -1 (done never runs) when it cannot start. */
int oc_mirror_tags_expand(oc_engine *e, const oc_list *in, const oc_tags_expand_opts *o,
                          oc_error *err);

#endif
