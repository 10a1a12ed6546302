/* tags.c - listing a repository's tags page by page (see tags.h). */
#include "engine/registry/tags.h"
#include "io/grow.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define PAGE_MAX (16u * 1024 * 1024)
#define TAGS_MAX 1000000u
#define TAG_MAX_LEN 128

typedef struct tag_listing {
    oc_registry *r;
    char *repo;
    char *ref; /* the page being asked for: "list?..." */
    char **tags;
    size_t n, cap;
    unsigned pages;
    oc_tags_done done;
    void *opaque;
} tag_listing;

void oc_tags_free(char **tags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
}

/* the tag grammar of the distribution spec */
static int tag_ok(const char *t)
{
    size_t len = strlen(t);
    if (len == 0 || len > TAG_MAX_LEN || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
            return 0;
    return 1;
}

int oc_tags_parse_page(const char *body, size_t len, const char *repo, char ***tags, size_t *n,
                       size_t *cap, oc_error *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    json_t *list = doc ? json_object_get(doc, "tags") : NULL;
    int rc = -1;
    if (!json_is_object(doc) || (list && !json_is_array(list) && !json_is_null(list))) {
        oc_error_set(err, OC_E_FORMAT, "tags of %s: the registry's answer is not a tag list%s%s",
                     repo, doc ? "" : ": ", doc ? "" : jerr.text);
        goto out;
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *t = json_string_value(v);
        if (!t || !tag_ok(t)) {
            char ex[64 * 4 + 8];
            oc_error_set(err, OC_E_FORMAT, "tags of %s: the registry listed \"%s\", not a tag",
                         repo, t ? oc_excerpt(t, strlen(t), 64, ex, sizeof ex) : "(not a string)");
            goto out;
        }
        if (*n >= TAGS_MAX) {
            oc_error_set(err, OC_E_LIMIT, "tags of %s: more than %u tags", repo, TAGS_MAX);
            goto out;
        }
        char **grown = oc_grow(*tags, cap, *n + 1, sizeof *grown, 256);
        if (!grown)
            goto oom;
        *tags = grown;
        if (!((*tags)[*n] = strdup(t)))
            goto oom;
        (*n)++;
    }
    rc = 0;
    goto out;
oom:
    oc_error_set(err, OC_E_NOMEM, "out of memory listing the tags of %s", repo);
out:
    json_decref(doc);
    return rc;
}

/* Is the rel parameter of one link value "next"? */
static int rel_is_next(const char *params, size_t len)
{
    const char *p = params, *end = params + len;
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(end - p) >= 4 && strncasecmp(p, "rel=", 4) == 0) {
            p += 4;
            int quoted = p < end && *p == '"';
            p += quoted;
            /* rel may list several relation types */
            while (p < end && *p != '"' && *p != ';') {
                const char *w = p;
                while (p < end && *p != ' ' && *p != '"' && *p != ';')
                    p++;
                if (p - w == 4 && strncasecmp(w, "next", 4) == 0)
                    return 1;
                while (p < end && *p == ' ')
                    p++;
            }
        }
        while (p < end && *p != ';')
            p++;
    }
    return 0;
}

int oc_tags_next_page(const char *link, const char *repo, char **next, oc_error *err)
{
    *next = NULL;
    if (!link)
        return 0;
    const char *p = link;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p != '<')
            goto bad;
        const char *close = strchr(p, '>');
        if (!close)
            goto bad;
        const char *url = p + 1;
        size_t url_len = (size_t)(close - url);
        const char *params = close + 1;
        const char *comma = strchr(params, ',');
        size_t plen = comma ? (size_t)(comma - params) : strlen(params);
        if (rel_is_next(params, plen)) {
            /* the path must be /v2/<repo>/tags/list; scheme and host are
             * dropped (we ask the registry we are talking to) */
            char *u = strndup(url, url_len);
            char *want = NULL;
            if (!u || asprintf(&want, "/v2/%s/tags/list", repo) < 0) {
                free(u);
                oc_error_set(err, OC_E_NOMEM, "out of memory");
                return -1;
            }
            char *path = u;
            char *scheme = strstr(u, "://");
            if (scheme) {
                path = strchr(scheme + 3, '/');
                if (!path)
                    path = u + strlen(u);
            }
            size_t wl = strlen(want);
            int ok = strncmp(path, want, wl) == 0 && (path[wl] == '\0' || path[wl] == '?');
            for (const char *c = path; ok && *c; c++)
                ok = *c > ' ' && *c < 0x7f && *c != '"' && *c != '<' && *c != '>' && *c != '#';
            if (ok && asprintf(next, "list%s", path + wl) < 0) {
                *next = NULL;
                free(u);
                free(want);
                oc_error_set(err, OC_E_NOMEM, "out of memory");
                return -1;
            }
            free(want);
            if (!ok) {
                char ex[80 * 4 + 8];
                oc_error_set(err, OC_E_FORMAT,
                             "tags of %s: the next page's link \"%s\" is not a tag list of %s",
                             repo, oc_excerpt(u, strlen(u), 80, ex, sizeof ex), repo);
                free(u);
                return -1;
            }
            free(u);
            return 1;
        }
        p = comma ? comma + 1 : params + plen;
    }
    return 0;
bad : {
    char ex[80 * 4 + 8];
    oc_error_set(err, OC_E_FORMAT, "tags of %s: malformed Link header \"%s\"", repo,
                 oc_excerpt(link, strlen(link), 80, ex, sizeof ex));
    return -1;
}
}

static void listing_free(tag_listing *l)
{
    oc_tags_free(l->tags, l->n);
    free(l->repo);
    free(l->ref);
    free(l);
}

static void listing_end(tag_listing *l, const oc_error *err)
{
    if (err) {
        l->done(l->opaque, NULL, 0, err);
    } else {
        l->done(l->opaque, l->tags, l->n, NULL);
        l->tags = NULL; /* handed over */
        l->n = 0;
    }
    listing_free(l);
}

static int ask(tag_listing *l, oc_error *err);

static void on_page(void *opaque, const char *body, size_t len, const oc_reg_info *info,
                    const oc_error *call_err)
{
    tag_listing *l = opaque;
    oc_error err;
    oc_error_clear(&err);
    if (call_err) {
        err = *call_err;
        if (strstr(err.msg, "tags/list") == NULL)
            oc_error_prefix(&err, "tags of %s", l->repo);
        listing_end(l, &err);
        return;
    }
    char *next = NULL;
    l->pages++;
    if (oc_tags_parse_page(body, len, l->repo, &l->tags, &l->n, &l->cap, &err) != 0 ||
        oc_tags_next_page(info->link, l->repo, &next, &err) < 0) {
        listing_end(l, &err);
        return;
    }
    if (!next) {
        listing_end(l, NULL);
        return;
    }
    if (strcmp(next, l->ref) == 0) {
        oc_error_set(&err, OC_E_FORMAT,
                     "tags of %s: the registry's next page is the same page (%s)", l->repo, next);
        free(next);
        listing_end(l, &err);
        return;
    }
    free(l->ref);
    l->ref = next;
    if (ask(l, &err) != 0)
        listing_end(l, &err);
}

static int ask(tag_listing *l, oc_error *err)
{
    return oc_registry_fetch_small(l->r, l->repo, "tags", l->ref, "application/json", PAGE_MAX,
                                   on_page, l, err);
}

int oc_registry_list_tags(oc_registry *r, const char *repo, unsigned page_size, oc_tags_done done,
                          void *opaque, oc_error *err)
{
    tag_listing *l = calloc(1, sizeof *l);
    if (!l || !(l->repo = strdup(repo))) {
        free(l);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    l->r = r;
    l->done = done;
    l->opaque = opaque;
    int n = page_size ? asprintf(&l->ref, "list?n=%u", page_size) : asprintf(&l->ref, "list");
    if (n < 0) {
        l->ref = NULL;
        listing_free(l);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (ask(l, err) != 0) {
        listing_free(l);
        return -1;
    }
    return 0;
}
