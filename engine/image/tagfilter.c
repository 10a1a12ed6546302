/* tagfilter.c - choosing tags of a repository (see tagfilter.h). */
#include "engine/image/tagfilter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image/semver.h"

/* Tag regexes come from LISTs and configs, and tags from registries: both
 * may be hostile. PCRE2 bounds the work on both sides (glibc's regcomp does
 * not: nested intervals unroll into gigabytes, and stacked stars take it
 * minutes in its epsilon closures). A tag is at most 128 characters, so no
 * useful filter comes near these limits. */
#define TAG_REGEX_MAX_LENGTH 4096    /* characters of a pattern */
#define TAG_REGEX_MAX_NESTING 64     /* groups in groups */
#define TAG_REGEX_MATCH_LIMIT 100000 /* backtracking steps for one tag */
#define TAG_REGEX_HEAP_LIMIT_KIB 1024

/* a compiled pattern and its text, for errors */
typedef struct tag_regex {
    pcre2_code *code;
    char *src;
} tag_regex;

struct oc_tag_selector {
    tag_regex regex; /* code NULL = every tag */
    tag_regex *exclude;
    size_t n_exclude;
    pcre2_match_data *match;
    pcre2_match_context *limits;
    oc_semver_range *range;
    unsigned latest;
};

/* re compiled anchored at both ends (the whole tag must match), or NULL
 * with OC_E_USAGE naming re, PCRE2's reason and where. */
static pcre2_code *compile_code(const char *re, oc_error *err)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    pcre2_set_max_pattern_length(cc, TAG_REGEX_MAX_LENGTH);
    pcre2_set_parens_nest_limit(cc, TAG_REGEX_MAX_NESTING);
    int code;
    PCRE2_SIZE at;
    pcre2_code *rx = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_NO_AUTO_CAPTURE |
                                       PCRE2_NEVER_BACKSLASH_C,
                                   &code, &at, cc);
    pcre2_compile_context_free(cc);
    if (!rx) {
        PCRE2_UCHAR why[256];
        if (pcre2_get_error_message(code, why, sizeof why) < 0)
            snprintf((char *)why, sizeof why, "error %d", code);
        if (code == PCRE2_ERROR_HEAP_FAILED)
            oc_error_set(err, OC_E_NOMEM, "out of memory");
        else
            oc_error_set(err, OC_E_USAGE, "tag regex /%.200s/: %s at offset %zu", re,
                         (const char *)why, (size_t)at);
    }
    return rx;
}

static int compile(tag_regex *out, const char *re, oc_error *err)
{
    if (!(out->src = strdup(re))) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    return (out->code = compile_code(re, err)) ? 0 : -1;
}

static void tag_regex_free(tag_regex *r)
{
    pcre2_code_free(r->code);
    free(r->src);
}

/* Does tag match rx? 1 yes, 0 no, -1 with err when PCRE2 gave up (its
 * limits) or ran out of memory. */
static int matches(const oc_tag_selector *s, const tag_regex *rx, const char *tag, oc_error *err)
{
    int rc = pcre2_match(rx->code, (PCRE2_SPTR)tag, strlen(tag), 0, 0, s->match, s->limits);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    PCRE2_UCHAR why[256];
    if (pcre2_get_error_message(rc, why, sizeof why) < 0)
        snprintf((char *)why, sizeof why, "error %d", rc);
    oc_error_set(err, rc == PCRE2_ERROR_NOMEMORY ? OC_E_NOMEM : OC_E_USAGE,
                 "tag regex /%.200s/ on tag \"%.128s\": %s", rx->src, tag, (const char *)why);
    return -1;
}

int oc_tag_regex_check(const char *re, oc_error *err)
{
    pcre2_code *rx = compile_code(re, err);
    if (!rx)
        return -1;
    pcre2_code_free(rx);
    return 0;
}

void oc_tag_selector_free(oc_tag_selector *s)
{
    if (!s)
        return;
    tag_regex_free(&s->regex);
    for (size_t i = 0; i < s->n_exclude; i++)
        tag_regex_free(&s->exclude[i]);
    free(s->exclude);
    pcre2_match_data_free(s->match);
    pcre2_match_context_free(s->limits);
    oc_semver_range_free(s->range);
    free(s);
}

oc_tag_selector *oc_tag_selector_new(const oc_tag_filter *f, oc_error *err)
{
    oc_tag_selector *s = calloc(1, sizeof *s);
    if (!s || (f->n_exclude && !(s->exclude = calloc(f->n_exclude, sizeof *s->exclude))) ||
        !(s->match = pcre2_match_data_create(1, NULL)) ||
        !(s->limits = pcre2_match_context_create(NULL))) {
        oc_tag_selector_free(s);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    pcre2_set_match_limit(s->limits, TAG_REGEX_MATCH_LIMIT);
    pcre2_set_heap_limit(s->limits, TAG_REGEX_HEAP_LIMIT_KIB);
    s->latest = f->latest;
    if (f->regex && compile(&s->regex, f->regex, err) != 0)
        goto fail;
    for (size_t i = 0; i < f->n_exclude; i++) {
        s->n_exclude++; /* freed whole or half made */
        if (compile(&s->exclude[i], f->exclude[i], err) != 0)
            goto fail;
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
        int take = s->regex.code ? matches(s, &s->regex, t, err) : 1;
        for (size_t e = 0; e < s->n_exclude && take == 1; e++) {
            int m = matches(s, &s->exclude[e], t, err);
            take = m < 0 ? m : !m;
        }
        if (take < 0) {
            free(out);
            return -1;
        }
        if (!take)
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
