/* tagfilter.h - which tags of a repository a mirror takes.
 *
 * A repository entry of a mirror's LIST ("REPO:*" or "REPO:/REGEX/") and the
 * config's per-repository settings make one filter, applied to the tag list
 * in this order:
 *   regex    the tag must match (PCRE2: Perl, Python and Go's syntax;
 *            anchored: the whole tag); none = every tag
 *   exclude  a tag matching any of these (anchored too) is dropped
 *   semver   the tag must be a version (semver.h) inside this range
 *   latest   keep only the N highest: by version when every tag left is a
 *            version, else the last N in the registry's order
 * The selected tags keep the registry's order. */
#ifndef OC_ENGINE_IMAGE_TAGFILTER_H
#define OC_ENGINE_IMAGE_TAGFILTER_H

#include <stddef.h>

#include "io/error.h"

typedef struct oc_tag_filter {
    const char *regex;
    const char *const *exclude;
    size_t n_exclude;
    const char *semver;
    unsigned latest; /* 0 = all */
} oc_tag_filter;

typedef struct oc_tag_selector oc_tag_selector;

/* Compile f; OC_E_USAGE naming a regex or range that does not parse (or a
 * regex past the length and nesting bounds in tagfilter.c). */
oc_tag_selector *oc_tag_selector_new(const oc_tag_filter *f, oc_error *err);
void oc_tag_selector_free(oc_tag_selector *s);
/* The tags selected, as indexes into tags in list order (*picked is
 * malloc'd; NULL when none). -1 when out of memory, or OC_E_USAGE naming
 * the regex and the tag when matching it passed the backtracking limit. */
int oc_tag_selector_apply(const oc_tag_selector *s, const char *const *tags, size_t n,
                          size_t **picked, size_t *n_picked, oc_error *err);

/* Does re compile as a tag regex? (for config and LIST checks) */
int oc_tag_regex_check(const char *re, oc_error *err);

#endif
