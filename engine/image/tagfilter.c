/* tagfilter.c - choosing tags of a repository (see tagfilter.h). */
#include "engine/image/tagfilter.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image/semver.h"

struct oc_tag_selector {
    int has_regex;
    regex_t regex;
    regex_t *exclude;
    size_t n_exclude;
    oc_semver_range *range;
    unsigned latest;
};

/* re anchored: "^(re)$" */
static int compile(regex_t *out, const char *re, oc_error *err)
{
    size_t n = strlen(re) + 5;
    char *anchored = malloc(n);
    if (!anchored) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    snprintf(anchored, n, "^(%s)$", re);
    int rc = regcomp(out, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (rc != 0) {
        char why[256];
        regerror(rc, out, why, sizeof why);
        oc_error_set(err, OC_E_USAGE, "tag regex /%s/: %s", re, why);
        return -1;
    }
    return 0;
}

int oc_tag_regex_check(const char *re, oc_error *err)
{
    regex_t r;
    if (compile(&r, re, err) != 0)
        return -1;
    regfree(&r);
    return 0;
}

void oc_tag_selector_free(oc_tag_selector *s)
{
    if (!s)
        return;
    if (s->has_regex)
        regfree(&s->regex);
    for (size_t i = 0; i < s->n_exclude; i++)
        regfree(&s->exclude[i]);
    free(s->exclude);
    oc_semver_range_free(s->range);
    free(s);
}

oc_tag_selector *oc_tag_selector_new(const oc_tag_filter *f, oc_error *err)
{
    oc_tag_selector *s = calloc(1, sizeof *s);
    if (!s || (f->n_exclude && !(s->exclude = calloc(f->n_exclude, sizeof *s->exclude)))) {
        free(s);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    s->latest = f->latest;
    if (f->regex) {
        if (compile(&s->regex, f->regex, err) != 0)
            goto fail;
        s->has_regex = 1;
    }
    for (size_t i = 0; i < f->n_exclude; i++) {
        if (compile(&s->exclude[i], f->exclude[i], err) != 0)
            goto fail;
        s->n_exclude++;
    }
    if (f->semver && !(s->range = oc_semver_range_parse(f->semver, err)))
        goto fail;
    return s;
fail:
    oc_tag_selector_free(s);
    return NULL;
}

typedef struct ranked {
    size_t index;
    oc_semver v;
} ranked;

/* highest version first; equal versions keep the registry's order */
static int by_version_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    int c = oc_semver_cmp(&y->v, &x->v);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_index(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Keep the latest s->latest of picked[0..*n). */
static int keep_latest(const oc_tag_selector *s, const char *const *tags, size_t *picked, size_t *n)
{
    if (s->latest == 0 || *n <= s->latest)
        return 0;
    ranked *r = malloc(*n * sizeof *r);
    if (!r)
        return -1;
    int all_versions = 1;
    for (size_t i = 0; i < *n && all_versions; i++) {
        r[i].index = picked[i];
        all_versions = oc_semver_parse(tags[picked[i]], &r[i].v) == 0;
    }
    if (all_versions) {
        qsort(r, *n, sizeof *r, by_version_desc);
        for (size_t i = 0; i < s->latest; i++)
            picked[i] = r[i].index;
        qsort(picked, s->latest, sizeof *picked, by_index);
    } else {
        memmove(picked, picked + (*n - s->latest), s->latest * sizeof *picked);
    }
    *n = s->latest;
    free(r);
    return 0;
}

int oc_tag_selector_apply(const oc_tag_selector *s, const char *const *tags, size_t n,
                          size_t **picked, size_t *n_picked, oc_error *err)
{
    *picked = NULL;
    *n_picked = 0;
    size_t *out = malloc((n ? n : 1) * sizeof *out);
    if (!out) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = tags[i];
        if (s->has_regex && regexec(&s->regex, t, 0, NULL, 0) != 0)
            continue;
        int excluded = 0;
        for (size_t e = 0; e < s->n_exclude && !excluded; e++)
            excluded = regexec(&s->exclude[e], t, 0, NULL, 0) == 0;
        if (excluded)
            continue;
        if (s->range) {
            oc_semver v;
            if (oc_semver_parse(t, &v) != 0 || !oc_semver_range_matches(s->range, &v))
                continue;
        }
        out[k++] = i;
    }
    if (keep_latest(s, tags, out, &k) != 0) {
        free(out);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (k == 0) {
        free(out);
        return 0;
    }
    *picked = out;
    *n_picked = k;
    return 0;
}
