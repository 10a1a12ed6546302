/* semver.h - version tags and version ranges, for choosing tags of a
 * repository (a mirror's "semver" filter and "latest: N").
 *
 * A tag is a version when it reads [v]MAJOR[.MINOR[.PATCH]][-PRERELEASE]
 * [+BUILD] (Semantic Versioning 2.0.0, with the leading "v" and the missing
 * minor and patch of image tags such as "1.36" or "v2"; missing parts are
 * 0). Versions are ordered by semver precedence: numbers numerically, a
 * prerelease below its release, prerelease identifiers numeric < alphanumeric,
 * the build part ignored.
 *
 * A range is comparator sets joined by "||"; a set is comparators separated
 * by blanks, all of which must hold ("AND"):
 *   >=V  >V  <=V  <V  =V  V     plain comparisons; a partial V is padded:
 *                               "<2" is <2.0.0, ">1.2" is >=1.3.0, "<=1.2" is
 *                               <1.3.0, and "1.2" alone is >=1.2.0 <1.3.0
 *   ~V   patch updates: ~1.2.3 is >=1.2.3 <1.3.0; ~1 is >=1.0.0 <2.0.0
 *   ^V   no change of the leftmost non-zero part: ^1.2 is >=1.2.0 <2.0.0,
 *        ^0.2.3 is >=0.2.3 <0.3.0
 *   *    any version
 * As in npm's semver, a prerelease version (2.0.0-rc.1) is in a range only
 * when a comparator of the same set names a prerelease of the same
 * MAJOR.MINOR.PATCH, so ">=1.2 <2" does not pick 2.0.0-rc.1. */
#ifndef OC_ENGINE_IMAGE_SEMVER_H
#define OC_ENGINE_IMAGE_SEMVER_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

typedef struct oc_semver {
    uint64_t part[3]; /* major, minor, patch */
    int n_parts;      /* how many were written (1-3) */
    char pre[128];    /* prerelease identifiers, "" for a release */
} oc_semver;

/* 0 and *v when text is a version (the whole of it), else -1. */
int oc_semver_parse(const char *text, oc_semver *v);
/* <0, 0, >0 by precedence. */
int oc_semver_cmp(const oc_semver *a, const oc_semver *b);

typedef struct oc_semver_range oc_semver_range;

/* Parse a range; OC_E_USAGE naming the part that is wrong. */
oc_semver_range *oc_semver_range_parse(const char *text, oc_error *err);
void oc_semver_range_free(oc_semver_range *r);
int oc_semver_range_matches(const oc_semver_range *r, const oc_semver *v);

#endif
