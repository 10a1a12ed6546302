/* mirror_tags.c - repository entries expanded into tag entries, and the
 * shard's cut (see mirror_tags.h). */
#include "engine/mirror_tags.h"

#include <stdlib.h>
#include <string.h>

#include "engine/image/tagfilter.h"
#include "engine/registry/registry.h"
#include "engine/registry/tags.h"
#include "io/strmap.h"

typedef struct repo_listing {
    struct expansion *x;
    size_t index; /* in the input list */
    char **tags;
    size_t n_tags;
    size_t *picked;
    size_t n_picked;
    oc_error *err;
} repo_listing;

typedef struct expansion {
    oc_engine *e;
    const oc_list *in;
    oc_tags_expand_opts o;
    repo_listing *repos; /* one per input entry (used by repository entries) */
    size_t pending;
} expansion;

static void expansion_free(expansion *x)
{
    for (size_t i = 0; i < x->in->n; i++) {
        oc_tags_free(x->repos[i].tags, x->repos[i].n_tags);
        free(x->repos[i].picked);
        free(x->repos[i].err);
    }
    free(x->repos);
    free(x);
}

static int remember_error(repo_listing *l, const oc_error *err)
{
    l->err = malloc(sizeof *l->err);
    if (!l->err)
        return -1;
    *l->err = *err;
    return 0;
}

/* The entry's filter: its regex and the config's settings. */
static void select_tags(repo_listing *l, const oc_list_entry *e)
{
    const oc_repo_config *rc =
        oc_config_repository(l->x->e->opts.config, e->ref.registry, e->ref.repository);
    oc_tag_filter f = {
        .regex = e->kind == OC_LIST_TAG_REGEX ? e->tag_regex : NULL,
        .exclude = rc ? (const char *const *)rc->exclude : NULL,
        .n_exclude = rc ? rc->n_exclude : 0,
        .semver = rc ? rc->semver : NULL,
        .latest = rc ? rc->latest : 0,
    };
    oc_error err;
    oc_error_clear(&err);
    oc_tag_selector *s = oc_tag_selector_new(&f, &err);
    if (!s || oc_tag_selector_apply(s, (const char *const *)l->tags, l->n_tags, &l->picked,
                                    &l->n_picked, &err) != 0) {
        oc_error_prefix(&err, "line %d: %s", e->line, e->text);
        remember_error(l, &err);
    }
    oc_tag_selector_free(s);
}

static int takes(const oc_tags_expand_opts *o, const oc_list_entry *e)
{
    if (!o->shard || o->shard->n <= 1)
        return 1;
    if (e->ok && e->kind == OC_LIST_IMAGE)
        return oc_shard_takes_ref(o->shard, &e->ref);
    return oc_shard_takes(o->shard, e->text); /* a bad line or a failed repository */
}

/* Seen this reference already? Records it. -1 out of memory. */
static int seen_before(oc_strmap *seen, const oc_ref *ref)
{
    char *key = oc_ref_string(ref);
    if (!key)
        return -1;
    int seen_it = oc_strmap_has(seen, key);
    int rc = seen_it ? 1 : oc_strmap_set(seen, key, NULL) == 0 ? 0 : -1;
    free(key);
    return rc;
}

static int build(expansion *x, oc_list *out)
{
    memset(out, 0, sizeof *out);
    oc_strmap *seen = oc_strmap_new(NULL);
    if (!seen)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < x->in->n && rc == 0; i++) {
        const oc_list_entry *e = &x->in->entries[i];
        repo_listing *l = &x->repos[i];
        if (!e->ok || e->kind == OC_LIST_IMAGE) {
            if (e->ok && seen_before(seen, &e->ref) < 0)
                rc = -1;
            else if (takes(&x->o, e))
                rc = oc_list_append_copy(out, e);
            continue;
        }
        if (l->err) {
            if (takes(&x->o, e))
                rc = oc_list_append_bad(out, e->line, e->text, l->err);
            continue;
        }
        for (size_t k = 0; k < l->n_picked && rc == 0; k++) {
            oc_ref ref = e->ref;
            ref.tag = l->tags[l->picked[k]];
            int s = seen_before(seen, &ref);
            if (s < 0)
                rc = -1;
            else if (s == 0 && oc_shard_takes_ref(x->o.shard, &ref))
                rc = oc_list_append_tag(out, e, ref.tag);
        }
    }
    oc_strmap_free(seen);
    if (rc != 0)
        oc_list_free(out);
    return rc;
}

static void finish(expansion *x)
{
    oc_list *out = malloc(sizeof *out);
    oc_error err;
    oc_error_clear(&err);
    if (!out || build(x, out) != 0) {
        free(out);
        out = NULL;
        oc_error_set(&err, OC_E_NOMEM, "out of memory expanding the list's repositories");
    }
    x->o.done(x->o.opaque, out, out ? NULL : &err);
    expansion_free(x);
}

static void on_tags(void *opaque, char **tags, size_t n, const oc_error *err)
{
    repo_listing *l = opaque;
    expansion *x = l->x;
    const oc_list_entry *e = &x->in->entries[l->index];
    if (err) {
        oc_error why = *err;
        oc_error_prefix(&why, "line %d: %s", e->line, e->text);
        remember_error(l, &why);
    } else {
        l->tags = tags;
        l->n_tags = n;
        select_tags(l, e);
    }
    if (x->o.listed)
        x->o.listed(x->o.opaque, e, l->n_tags, l->n_picked, l->err);
    if (--x->pending == 0)
        finish(x);
}

int oc_mirror_tags_expand(oc_engine *e, const oc_list *in, const oc_tags_expand_opts *o,
                          oc_error *err)
{
    expansion *x = calloc(1, sizeof *x);
    if (!x || !(x->repos = calloc(in->n ? in->n : 1, sizeof *x->repos))) {
        free(x);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    x->e = e;
    x->in = in;
    x->o = *o;
    x->pending = 1; /* held until every listing has started */
    for (size_t i = 0; i < in->n; i++) {
        const oc_list_entry *le = &in->entries[i];
        repo_listing *l = &x->repos[i];
        l->x = x;
        l->index = i;
        if (!le->ok || le->kind == OC_LIST_IMAGE)
            continue;
        oc_error call_err;
        oc_error_clear(&call_err);
        oc_registry *r = oc_engine_registry(e, le->ref.registry, &call_err);
        const oc_registry_config *rc = oc_config_registry(e->opts.config, le->ref.registry);
        x->pending++;
        if (!r || oc_registry_list_tags(r, le->ref.repository, rc ? rc->tags_page_size : 0, on_tags,
                                        l, &call_err) != 0) {
            if (call_err.code == OC_OK)
                oc_error_set(&call_err, OC_E_NOMEM, "out of memory");
            on_tags(l, NULL, 0, &call_err);
        }
    }
    if (--x->pending == 0)
        finish(x);
    return 0;
}
