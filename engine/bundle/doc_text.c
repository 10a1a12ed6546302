/* doc_text.c - the bundle documents' text form (see doc_text.h). */
#include "engine/bundle/doc_text.h"

#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *p;
    size_t len, cap;
    int nomem;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->nomem = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put_s(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_json(buf *b, const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!t) {
        b->nomem = 1;
        return;
    }
    put_s(b, t);
    free(t);
}

static int objects_only(const json_t *a)
{
    size_t i;
    json_t *v;
    if (json_array_size(a) == 0)
        return 0;
    json_array_foreach(a, i, v)
    {
        if (!json_is_object(v))
            return 0;
    }
    return 1;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *oc_doc_text(const json_t *doc, size_t *len, oc_error *err)
{
    size_t n = json_object_size(doc);
    const char **keys = calloc(n + 1, sizeof *keys);
    buf b = {0};
    if (!keys) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        keys[k++] = key;
    }
    qsort(keys, k, sizeof *keys, cmp_keys);
    put_s(&b, "{\n");
    for (size_t i = 0; i < k; i++) {
        json_t *key_json = json_string(keys[i]);
        v = json_object_get(doc, keys[i]);
        put_s(&b, "  ");
        if (key_json)
            put_json(&b, key_json);
        else
            b.nomem = 1;
        json_decref(key_json);
        put_s(&b, ": ");
        if (json_is_array(v) && objects_only(v)) {
            put_s(&b, "[\n");
            size_t j;
            json_t *e;
            json_array_foreach(v, j, e)
            {
                put_s(&b, "    ");
                put_json(&b, e);
                put_s(&b, j + 1 < json_array_size(v) ? ",\n" : "\n");
            }
            put_s(&b, "  ]");
        } else {
            put_json(&b, v);
        }
        put_s(&b, i + 1 < k ? ",\n" : "\n");
    }
    put_s(&b, "}\n");
    free(keys);
    if (b.nomem) {
        free(b.p);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    *len = b.len;
    return b.p;
}

json_t *oc_doc_parse(const char *text, size_t len, const char *what, oc_error *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        oc_error_set(err, OC_E_FORMAT, "%s does not parse: %s (line %d)", what, jerr.text,
                     jerr.line);
        return NULL;
    }
    if (!json_is_object(doc)) {
        oc_error_set(err, OC_E_FORMAT, "%s is not a JSON object", what);
        json_decref(doc);
        return NULL;
    }
    return doc;
}
