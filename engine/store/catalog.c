/* catalog.c - catalog.json as a document, and the store's names (see
 * catalog.h). The document is a jansson object kept as read, so keys and
 * values we do not use survive a rewrite. */
#include "engine/store/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

struct oc_catalog {
    json_t *root;
};

oc_catalog *oc_catalog_new(oc_error *err)
{
    oc_catalog *c = calloc(1, sizeof *c);
    if (!c || !(c->root = json_object())) {
        free(c);
        oc_error_set(err, OC_E_NOMEM, "catalog: out of memory");
        return NULL;
    }
    return c;
}

oc_catalog *oc_catalog_parse(const char *text, size_t len, const char *what, oc_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        oc_error_set(err, OC_E_FORMAT, "%s is not valid JSON: %s (line %d)", what, jerr.text,
                     jerr.line);
        return NULL;
    }
    if (!json_is_object(root)) {
        oc_error_set(err, OC_E_FORMAT, "%s is not a JSON object of images", what);
        json_decref(root);
        return NULL;
    }
    const char *image;
    json_t *tags;
    json_object_foreach(root, image, tags)
    {
        if (!json_is_object(tags)) {
            oc_error_set(err, OC_E_FORMAT, "%s: image \"%s\" does not map to an object of tags",
                         what, image);
            json_decref(root);
            return NULL;
        }
        const char *tag;
        json_t *file;
        json_object_foreach(tags, tag, file)
        {
            if (!json_is_string(file)) {
                oc_error_set(err, OC_E_FORMAT,
                             "%s: \"%s\" tag \"%s\" does not name a manifest file", what, image,
                             tag);
                json_decref(root);
                return NULL;
            }
        }
    }
    oc_catalog *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(root);
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    c->root = root;
    return c;
}

void oc_catalog_free(oc_catalog *c)
{
    if (!c)
        return;
    json_decref(c->root);
    free(c);
}

int oc_catalog_set(oc_catalog *c, const char *image, const char *tag, const char *manifest_file,
                   oc_error *err)
{
    json_t *tags = json_object_get(c->root, image);
    if (!tags) {
        tags = json_object();
        if (!tags || json_object_set_new(c->root, image, tags) != 0)
            goto oom;
    }
    if (json_object_set_new(tags, tag, json_string(manifest_file)) != 0)
        goto oom;
    return 0;
oom:
    oc_error_set(err, OC_E_NOMEM, "catalog: cannot record %s:%s (out of memory or not UTF-8)",
                 image, tag);
    return -1;
}

const char *oc_catalog_get(const oc_catalog *c, const char *image, const char *tag)
{
    return json_string_value(json_object_get(json_object_get(c->root, image), tag));
}

int oc_catalog_has_image(const oc_catalog *c, const char *image)
{
    return json_object_get(c->root, image) != NULL;
}

int oc_catalog_remove(oc_catalog *c, const char *image, const char *tag)
{
    json_t *tags = json_object_get(c->root, image);
    if (!tags || json_object_del(tags, tag) != 0)
        return 0;
    if (json_object_size(tags) == 0)
        json_object_del(c->root, image);
    return 1;
}

int oc_catalog_merge(oc_catalog *into, const oc_catalog *from, oc_error *err)
{
    const char *image;
    json_t *tags;
    json_object_foreach(from->root, image, tags)
    {
        const char *tag;
        json_t *file;
        json_object_foreach(tags, tag, file)
        {
            if (oc_catalog_set(into, image, tag, json_string_value(file), err) != 0)
                return -1;
        }
    }
    return 0;
}

size_t oc_catalog_count(const oc_catalog *c)
{
    size_t n = 0;
    const char *image;
    json_t *tags;
    json_object_foreach(c->root, image, tags) n += json_object_size(tags);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj sorted; NULL (with *n = 0) for an empty object or no
 * memory, which callers treat alike (there is nothing they can visit). */
static const char **sorted_keys(json_t *obj, size_t *n)
{
    *n = 0;
    size_t size = json_object_size(obj);
    if (size == 0)
        return NULL;
    const char **keys = malloc(size * sizeof *keys);
    if (!keys)
        return NULL;
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) keys[(*n)++] = key;
    qsort(keys, *n, sizeof *keys, cmp_str);
    return keys;
}

int oc_catalog_foreach(const oc_catalog *c, oc_catalog_visit fn, void *opaque)
{
    size_t ni = 0;
    const char **images = sorted_keys(c->root, &ni);
    int rc = 0;
    for (size_t i = 0; i < ni && rc == 0; i++) {
        json_t *tags = json_object_get(c->root, images[i]);
        size_t nt = 0;
        const char **tagv = sorted_keys(tags, &nt);
        for (size_t t = 0; t < nt && rc == 0; t++)
            rc = fn(opaque, images[i], tagv[t], json_string_value(json_object_get(tags, tagv[t])));
        free(tagv);
    }
    free(images);
    return rc;
}

static char *join_keys(json_t *obj)
{
    size_t n = 0;
    const char **keys = sorted_keys(obj, &n);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(keys[i]) + 2;
    char *out = malloc(len);
    if (out) {
        char *p = out;
        *p = '\0';
        for (size_t i = 0; i < n; i++) {
            size_t k = strlen(keys[i]);
            if (i > 0) {
                memcpy(p, ", ", 2);
                p += 2;
            }
            memcpy(p, keys[i], k);
            p += k;
            *p = '\0';
        }
    }
    free(keys);
    return out;
}

char *oc_catalog_tags_of(const oc_catalog *c, const char *image)
{
    json_t *tags = json_object_get(c->root, image);
    return tags ? join_keys(tags) : strdup("");
}

char *oc_catalog_images(const oc_catalog *c)
{
    return join_keys(c->root);
}

char *oc_catalog_dump(const oc_catalog *c, size_t *len, oc_error *err)
{
    char *text = json_dumps(c->root, JSON_INDENT(4) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    size_t n = text ? strlen(text) : 0;
    char *out = text ? realloc(text, n + 2) : NULL;
    if (!out) {
        free(text);
        oc_error_set(err, OC_E_NOMEM, "catalog: out of memory serialising it");
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = '\0';
    if (len)
        *len = n + 1;
    return out;
}

char *oc_catalog_manifest_name(const char *image, const char *tag)
{
    char *name = NULL;
    if (asprintf(&name, "manifest-%s-%s.json", image, tag) < 0)
        return NULL;
    for (char *p = name + strlen("manifest-"); *p; p++)
        if (*p == '/')
            *p = '_';
    return name;
}

int oc_catalog_file_name_ok(const char *name)
{
    if (!name || !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int oc_catalog_split_ref(const char *text, char **image, char **tag, oc_error *err)
{
    *image = NULL;
    *tag = NULL;
    const char *slash = strrchr(text, '/');
    const char *name_start = slash ? slash + 1 : text;
    const char *at = strchr(name_start, '@');
    const char *split = NULL;
    const char *tag_start = NULL;
    if (at) {
        split = at;
        tag_start = at + 1;
    } else {
        const char *dig = strstr(name_start, ":sha256:");
        split = dig ? dig : strrchr(name_start, ':');
        tag_start = split ? split + 1 : NULL;
    }
    size_t ilen = split ? (size_t)(split - text) : strlen(text);
    if (ilen == 0 || (tag_start && !*tag_start)) {
        oc_error_set(err, OC_E_USAGE, "\"%s\" is not IMAGE:TAG", text);
        return -1;
    }
    *image = strndup(text, ilen);
    *tag = strdup(tag_start ? tag_start : "latest");
    if (!*image || !*tag) {
        free(*image);
        free(*tag);
        *image = *tag = NULL;
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    return 0;
}
