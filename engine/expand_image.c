/* expand_image.c - an image's layers expanded from a store or a fetched
 * directory (see expand_image.h). The store is read through its files only: catalog.json
 * maps image -> tag -> manifest file name; the manifest file is a docker
 * manifest.json array whose first element lists "Layers" as
 * "<hex>/layer.tar". Names from those files are checked before use, so a
 * damaged store cannot point the expand outside itself. */
#include "engine/expand_image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "io/atomicfile.h"
#include "engine/image/limits.h"

static char *join(const char *a, const char *b)
{
    char *r = NULL;
    return asprintf(&r, "%s/%s", a, b) < 0 ? NULL : r;
}

/* "<prefix><image>-<tag><suffix>" with '/' as '_' in image and tag. */
static char *image_file_name(const char *prefix, const char *image, const char *tag,
                             const char *suffix)
{
    char *name = NULL;
    if (asprintf(&name, "%s%s-%s%s", prefix, image, tag, suffix) < 0)
        return NULL;
    size_t end = strlen(name) - strlen(suffix);
    for (size_t i = strlen(prefix); i < end; i++)
        if (name[i] == '/')
            name[i] = '_';
    return name;
}

static int is_hex64(const char *s, size_t len)
{
    if (len != 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static json_t *load_json(const char *path, oc_error *err)
{
    size_t len = 0;
    char *text = oc_read_file(path, OC_STORE_JSON_MAX, &len, err);
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!doc)
        oc_error_set(err, OC_E_FORMAT, "%s: %s (line %d)", path, jerr.text, jerr.line);
    return doc;
}

/* The manifest file name for image:tag in store (malloc'd). */
static char *find_manifest(const char *store, const char *image, const char *tag, oc_error *err)
{
    char *cat_path = join(store, "catalog.json");
    char *name = NULL;
    struct stat st;
    if (!cat_path) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    if (stat(cat_path, &st) == 0) {
        json_t *cat = load_json(cat_path, err);
        if (!cat) {
            free(cat_path);
            return NULL;
        }
        const char *n = json_string_value(json_object_get(json_object_get(cat, image), tag));
        if (n)
            name = strdup(n);
        json_decref(cat);
    } else if (errno != ENOENT) {
        oc_error_errno(err, errno, "cannot read %s", cat_path);
        free(cat_path);
        return NULL;
    }
    free(cat_path);
    if (!name) { /* a run that died between the manifest and the catalog */
        char *guess = image_file_name("manifest-", image, tag, ".json");
        char *gpath = guess ? join(store, guess) : NULL;
        if (gpath && stat(gpath, &st) == 0)
            name = guess;
        else
            free(guess);
        free(gpath);
    }
    if (!name) {
        oc_error_set(err, OC_E_NOTFOUND, "%s:%s is not in the store %s", image, tag, store);
        return NULL;
    }
    if (!*name || name[0] == '.' || strchr(name, '/')) {
        oc_error_set(err, OC_E_FORMAT, "%s/catalog.json names a strange manifest file '%s'", store,
                     name);
        free(name);
        return NULL;
    }
    return name;
}

typedef struct layer_list {
    oc_expand_layer *v;
    char **paths;
    char **labels;
    size_t n;
} layer_list;

static void layers_free(layer_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->paths[i]);
        free(l->labels[i]);
    }
    free(l->v);
    free(l->paths);
    free(l->labels);
    memset(l, 0, sizeof *l);
}

static int layers_alloc(layer_list *l, size_t n, oc_error *err)
{
    l->v = calloc(n ? n : 1, sizeof *l->v);
    l->paths = calloc(n ? n : 1, sizeof *l->paths);
    l->labels = calloc(n ? n : 1, sizeof *l->labels);
    if (!l->v || !l->paths || !l->labels) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    return 0;
}

static int layers_add(layer_list *l, const char *store, const char *hex, oc_error *err)
{
    char *rel = NULL;
    if (asprintf(&rel, "%s/layer.tar", hex) < 0) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    l->paths[l->n] = join(store, rel);
    l->labels[l->n] = strdup(hex);
    free(rel);
    if (!l->paths[l->n] || !l->labels[l->n]) {
        free(l->paths[l->n]);
        free(l->labels[l->n]);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    l->v[l->n].tar_path = l->paths[l->n];
    l->v[l->n].label = l->labels[l->n];
    l->n++;
    return 0;
}

static int read_layers(const char *store, const char *manifest_name, layer_list *out, oc_error *err)
{
    char *path = join(store, manifest_name);
    if (!path) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    json_t *doc = load_json(path, err);
    int rc = -1;
    if (!doc)
        goto out;
    json_t *layers = json_object_get(json_array_get(doc, 0), "Layers");
    if (!json_is_array(layers)) {
        oc_error_set(err, OC_E_FORMAT, "%s has no Layers list", path);
        goto out;
    }
    if (layers_alloc(out, json_array_size(layers), err) != 0)
        goto out;
    size_t i;
    json_t *v;
    json_array_foreach(layers, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || strlen(s) != 64 + strlen("/layer.tar") || !is_hex64(s, 64) ||
            strcmp(s + 64, "/layer.tar") != 0) {
            oc_error_set(err, OC_E_FORMAT, "%s: layer %zu is not '<sha256 hex>/layer.tar'", path,
                         i);
            goto out;
        }
        char hex[65];
        memcpy(hex, s, 64);
        hex[64] = '\0';
        if (layers_add(out, store, hex, err) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(doc);
    free(path);
    return rc;
}

/* The summary (INFO) and what could not be restored (WARNING), as events. */
static void report(const oc_engine *e, const char *what, const char *dir, const oc_expand_stats *st,
                   int summary)
{
    if (summary) {
        char line[512];
        oc_expand_stats_format(st, line, sizeof line);
        oc_engine_say(e, OC_LOG_INFO, "%s -> %s: %s", what, dir, line);
    }
    if (st->owners_skipped || st->devices_skipped)
        oc_engine_say(e, OC_LOG_WARNING,
                      "warning: not running as root: owners of %llu entries not restored, "
                      "%llu device nodes not made",
                      (unsigned long long)st->owners_skipped,
                      (unsigned long long)st->devices_skipped);
    if (st->warnings)
        oc_engine_say(e, OC_LOG_WARNING, "warning: %llu things not restored, the first: %s",
                      (unsigned long long)st->warnings, st->first_warning);
}

int oc_expand_image(const char *store, const char *image, const char *tag, const char *dir,
                    const oc_expand_opts *xo, oc_expand_stats *stats, size_t *n_layers,
                    oc_error *err)
{
    layer_list layers = {0};
    oc_expand_stats st;
    memset(&st, 0, sizeof st);
    int rc = -1;
    char *manifest = find_manifest(store, image, tag, err);
    if (!manifest || read_layers(store, manifest, &layers, err) != 0)
        goto out;
    if (oc_expand_merge(layers.v, layers.n, dir, 0, xo, &st, err) != 0) {
        oc_error_prefix(err, "expanding %s:%s", image, tag);
        goto out;
    }
    rc = 0;
out:
    if (stats)
        *stats = st;
    if (n_layers)
        *n_layers = layers.n;
    free(manifest);
    layers_free(&layers);
    return rc;
}

int oc_fetch_expand(const oc_engine *e, const oc_pulled_image *img, const char *dir,
                    const char *image, const char *tag, int unique_names, const oc_expand_opts *xo,
                    oc_error *err)
{
    layer_list layers = {0};
    char *merged = NULL, *ldir = NULL;
    int rc = -1;
    oc_expand_stats st;
    if (layers_alloc(&layers, img->n_layers, err) != 0)
        goto out;
    for (size_t i = 0; i < img->n_layers; i++) {
        if (layers_add(&layers, dir, img->layers[i].hex, err) != 0)
            goto out;
        char rel[64 + 8];
        snprintf(rel, sizeof rel, "%s/layer", img->layers[i].hex);
        free(ldir);
        ldir = join(dir, rel);
        if (!ldir) {
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            goto out;
        }
        struct stat sb;
        if (lstat(ldir, &sb) == 0 && S_ISDIR(sb.st_mode))
            continue; /* expanded before (content-addressed; renamed in whole) */
        memset(&st, 0, sizeof st);
        if (oc_expand_as_is(&layers.v[i], ldir, 1, xo, &st, err) != 0)
            goto out;
        report(e, img->layers[i].hex, ldir, &st, 0);
    }
    char *name = unique_names ? image_file_name("manifest-", image, tag, "") : strdup("manifest");
    merged = name ? join(dir, name) : NULL;
    free(name);
    if (!merged) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    memset(&st, 0, sizeof st);
    if (oc_expand_merge(layers.v, layers.n, merged, 1, xo, &st, err) != 0)
        goto out;
    report(e, "merged root filesystem", merged, &st, 1);
    rc = 0;
out:
    if (rc != 0)
        oc_error_prefix(err, "expanding %s:%s", image, tag);
    free(merged);
    free(ldir);
    layers_free(&layers);
    return rc;
}
