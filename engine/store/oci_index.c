/* oci_index.c - STORE/oci/index.json as a document (see oci_index.h). */
#include "engine/store/oci_index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/store/oci_layout.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/strmap.h"

#define INDEX_MT "application/vnd.oci.image.index.v1+json"
#define HEAD                                                                                       \
    "{\n    \"schemaVersion\": 2,\n    \"mediaType\": \"" INDEX_MT "\",\n    \"manifests\": ["
#define LINE_INDENT "        "
#define TAIL "    ]\n}\n"
#define INDEX_MAX (1024u * 1024 * 1024)

typedef struct entry {
    char *digest;
    char *text;
} entry;

struct oc_oci_index {
    oc_strmap *named;  /* ref name -> entry (NULL once removed) */
    size_t n_named;    /* live entries of named */
    char **unnamed;    /* texts of descriptors without a ref name, in file order */
    char **unnamed_dg; /* their digests */
    size_t n_unnamed;
};

static void entry_free(void *p)
{
    entry *e = p;
    if (!e)
        return;
    free(e->digest);
    free(e->text);
    free(e);
}

oc_oci_index *oc_oci_index_new(void)
{
    oc_oci_index *x = calloc(1, sizeof *x);
    if (x && !(x->named = oc_strmap_new(entry_free))) {
        free(x);
        x = NULL;
    }
    return x;
}

void oc_oci_index_free(oc_oci_index *x)
{
    if (!x)
        return;
    oc_strmap_free(x->named);
    for (size_t i = 0; i < x->n_unnamed; i++) {
        free(x->unnamed[i]);
        free(x->unnamed_dg[i]);
    }
    free(x->unnamed);
    free(x->unnamed_dg);
    free(x);
}

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

/* The key of a descriptor without a ref name that our referrer
 * annotations describe: "IMAGE@DIGEST" (malloc'd), else NULL. */
static char *referrer_key(json_t *d, const char *digest)
{
    json_t *ann = json_object_get(d, "annotations");
    const char *image = json_string_value(json_object_get(ann, OC_OCI_REFERRER_IMAGE));
    const char *subject = json_string_value(json_object_get(ann, OC_OCI_REFERRER_SUBJECT));
    char *key = NULL;
    if (!image || !subject || !*image || asprintf(&key, "%s@%s", image, digest) < 0)
        return NULL;
    return key;
}

char *oc_oci_descriptor_key(json_t *d)
{
    const char *digest = json_string_value(json_object_get(d, "digest"));
    const char *named =
        json_string_value(json_object_get(json_object_get(d, "annotations"), OC_OCI_REF_NAME));
    if (named)
        return strdup(named);
    return digest ? referrer_key(d, digest) : NULL;
}

/* Check one descriptor object; its ref name (borrowed, or NULL) and digest. */
static int check_desc(json_t *d, const char *what, size_t at, const char **ref_name,
                      const char **digest, oc_error *err)
{
    json_t *size = json_object_get(d, "size");
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    *digest = json_string_value(json_object_get(d, "digest"));
    *ref_name =
        json_string_value(json_object_get(json_object_get(d, "annotations"), OC_OCI_REF_NAME));
    char hex[OC_SHA256_HEX_LEN + 1];
    if (!json_is_object(d) || !mt || !*digest || oc_digest_parse(*digest, hex, NULL) != 0 ||
        !json_is_integer(size) || json_integer_value(size) < 0) {
        oc_error_set(err, OC_E_FORMAT,
                     "%s: descriptor %zu of \"manifests\" needs a mediaType, a sha256 digest and "
                     "a size",
                     what, at + 1);
        return -1;
    }
    return 0;
}

static int add_unnamed(oc_oci_index *x, const char *digest, char *text, oc_error *err)
{
    char **t = realloc(x->unnamed, sizeof *t * (x->n_unnamed + 1));
    if (t)
        x->unnamed = t;
    char **d = t ? realloc(x->unnamed_dg, sizeof *d * (x->n_unnamed + 1)) : NULL;
    if (d)
        x->unnamed_dg = d;
    char *dg = d ? strdup(digest) : NULL;
    if (!dg) {
        free(text);
        return oom(err);
    }
    x->unnamed[x->n_unnamed] = text;
    x->unnamed_dg[x->n_unnamed++] = dg;
    return 0;
}

static int set_entry(oc_oci_index *x, const char *name, const char *digest, char *text,
                     oc_error *err);

/* Take descriptor d (its text made here) into x. */
static int take_desc(oc_oci_index *x, json_t *d, const char *what, size_t at, oc_error *err)
{
    const char *name = NULL, *digest = NULL;
    if (check_desc(d, what, at, &name, &digest, err) != 0)
        return -1;
    char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return oom(err);
    if (name)
        return set_entry(x, name, digest, text, err);
    char *key = referrer_key(d, digest);
    if (!key)
        return add_unnamed(x, digest, text, err);
    int rc = set_entry(x, key, digest, text, err);
    free(key);
    return rc;
}

/* Our own layout: the header, one descriptor a line, the tail. 1 parsed,
 * 0 not in that shape (parse it as a document), -1 error. */
static int parse_lines(oc_oci_index *x, const char *text, size_t len, const char *what,
                       oc_error *err)
{
    size_t hl = strlen(HEAD);
    if (len < hl || memcmp(text, HEAD, hl) != 0)
        return 0;
    const char *p = text + hl, *end = text + len;
    if (end - p == (ptrdiff_t)strlen("]\n}\n") && memcmp(p, "]\n}\n", 4) == 0)
        return 1; /* "manifests": [] */
    if (p == end || *p != '\n')
        return 0;
    p++;
    size_t at = 0;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return 0;
        if ((size_t)(end - p) == strlen(TAIL) && memcmp(p, TAIL, strlen(TAIL)) == 0)
            return 1;
        size_t il = strlen(LINE_INDENT);
        if ((size_t)(nl - p) <= il || memcmp(p, LINE_INDENT, il) != 0)
            return 0;
        const char *o = p + il, *oe = nl;
        if (oe[-1] == ',')
            oe--;
        json_error_t jerr;
        json_t *d = json_loadb(o, (size_t)(oe - o), 0, &jerr);
        if (!d)
            return 0;
        int rc = take_desc(x, d, what, at++, err);
        json_decref(d);
        if (rc != 0)
            return -1;
        p = nl + 1;
    }
}

oc_oci_index *oc_oci_index_parse(const char *text, size_t len, const char *what, oc_error *err)
{
    oc_oci_index *x = oc_oci_index_new();
    if (!x) {
        oom(err);
        return NULL;
    }
    int r = parse_lines(x, text, len, what, err);
    if (r == 1)
        return x;
    oc_oci_index_free(x);
    if (r < 0)
        return NULL;
    /* another writer's layout: read it as one document */
    x = oc_oci_index_new();
    json_error_t jerr;
    json_t *doc = x ? json_loadb(text, len, 0, &jerr) : NULL;
    json_t *list = json_object_get(doc, "manifests");
    if (!x) {
        oom(err);
    } else if (!doc) {
        oc_error_set(err, OC_E_FORMAT, "%s does not parse: %s (line %d)", what, jerr.text,
                     jerr.line);
    } else if (!json_is_object(doc) || !json_is_integer(json_object_get(doc, "schemaVersion")) ||
               json_integer_value(json_object_get(doc, "schemaVersion")) != 2 ||
               !json_is_array(list)) {
        oc_error_set(err, OC_E_FORMAT,
                     "%s is not an image index (schemaVersion 2 and a \"manifests\" list)", what);
    } else {
        size_t i;
        json_t *d;
        int rc = 0;
        json_array_foreach(list, i, d)
        {
            if (rc == 0)
                rc = take_desc(x, d, what, i, err);
        }
        if (rc == 0) {
            json_decref(doc);
            return x;
        }
    }
    json_decref(doc);
    oc_oci_index_free(x);
    return NULL;
}

static char *index_path(const oc_store *s)
{
    return oc_store_path(s, OC_STORE_OCI_DIR "/index.json");
}

int oc_store_oci_index_load(const oc_store *s, oc_oci_index **out, oc_error *err)
{
    *out = NULL;
    char *path = index_path(s);
    if (!path)
        return oom(err);
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        free(path);
        *out = oc_oci_index_new();
        return *out ? 0 : oom(err);
    }
    size_t len = 0;
    char *text = oc_read_file(path, INDEX_MAX, &len, err);
    if (text)
        *out = oc_oci_index_parse(text, len, path, err);
    free(text);
    free(path);
    return *out ? 0 : -1;
}

int oc_store_oci_index_replace(oc_store *s, const oc_oci_index *x, oc_error *err)
{
    size_t len = 0;
    char *text = oc_oci_index_dump(x, &len, err);
    char *path = text ? index_path(s) : NULL;
    int rc = -1;
    if (text && !path)
        oom(err);
    if (path)
        rc = oc_store_replace_file(s, path, text, len, "oci-index-write", err);
    free(text);
    free(path);
    return rc;
}

int oc_store_oci_index_update(oc_store *s, const char *ref_name, const char *text, oc_error *err)
{
    char *path = index_path(s);
    if (!path)
        return oom(err);
    int absent = access(path, F_OK) != 0 && errno == ENOENT;
    free(path);
    if (!text && absent)
        return 0;
    int fd = oc_store_catalog_lock(s, err);
    if (fd < 0)
        return -1;
    oc_oci_index *x = NULL;
    int rc = oc_store_oci_index_load(s, &x, err);
    if (rc == 0 && text)
        rc = oc_oci_index_set(x, ref_name, text, err);
    if (rc == 0 && (text || oc_oci_index_remove(x, ref_name)))
        rc = oc_store_oci_index_replace(s, x, err);
    oc_store_catalog_unlock(fd); /* after the rename: the next writer reads ours */
    oc_oci_index_free(x);
    return rc;
}

const char *oc_oci_index_digest(const oc_oci_index *x, const char *ref_name)
{
    const entry *e = oc_strmap_get(x->named, ref_name);
    return e ? e->digest : NULL;
}

const char *oc_oci_index_get(const oc_oci_index *x, const char *ref_name)
{
    const entry *e = oc_strmap_get(x->named, ref_name);
    return e ? e->text : NULL;
}

/* Add or replace name -> (digest, text); text is taken (freed on failure). */
static int set_entry(oc_oci_index *x, const char *name, const char *digest, char *text,
                     oc_error *err)
{
    int had = oc_strmap_get(x->named, name) != NULL;
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->digest = strdup(digest))) {
        free(e);
        free(text);
        return oom(err);
    }
    e->text = text;
    if (oc_strmap_set(x->named, name, e) != 0) {
        entry_free(e);
        return oom(err);
    }
    if (!had)
        x->n_named++;
    return 0;
}

int oc_oci_index_set(oc_oci_index *x, const char *ref_name, const char *text, oc_error *err)
{
    json_error_t jerr;
    json_t *d = json_loads(text, 0, &jerr);
    const char *digest = json_string_value(json_object_get(d, "digest"));
    char *rkey = d ? oc_oci_descriptor_key(d) : NULL;
    const char *named = rkey;
    char *copy = digest && named && strcmp(named, ref_name) == 0 ? strdup(text) : NULL;
    int rc = -1;
    if (!digest || !named || strcmp(named, ref_name) != 0)
        oc_error_set(err, OC_E_FORMAT, "descriptor of %s has no digest or names another ref",
                     ref_name);
    else if (!copy)
        oom(err);
    else
        rc = set_entry(x, ref_name, digest, copy, err);
    json_decref(d);
    free(rkey);
    return rc;
}

int oc_oci_index_remove(oc_oci_index *x, const char *ref_name)
{
    if (!oc_strmap_get(x->named, ref_name))
        return 0;
    (void)oc_strmap_set(x->named, ref_name, NULL); /* replacing frees; no allocation */
    x->n_named--;
    return 1;
}

size_t oc_oci_index_count(const oc_oci_index *x)
{
    return x->n_named + x->n_unnamed;
}

typedef struct names {
    const char **v;
    size_t n;
} names;

static void collect(const char *key, void *value, void *opaque)
{
    names *ns = opaque;
    if (value)
        ns->v[ns->n++] = key;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int oc_oci_index_foreach(const oc_oci_index *x, oc_oci_index_visit fn, void *opaque)
{
    names ns = {calloc(x->n_named + 1, sizeof *ns.v), 0};
    if (!ns.v)
        return -1;
    oc_strmap_foreach(x->named, collect, &ns);
    if (ns.n > 1)
        qsort(ns.v, ns.n, sizeof *ns.v, cmp_str);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ns.n; i++) {
        const entry *e = oc_strmap_get(x->named, ns.v[i]);
        rc = fn(opaque, ns.v[i], e->digest, e->text);
    }
    for (size_t i = 0; rc == 0 && i < x->n_unnamed; i++)
        rc = fn(opaque, NULL, x->unnamed_dg[i], x->unnamed[i]);
    free(ns.v);
    return rc;
}

typedef struct buf {
    char *p;
    size_t len, cap;
    size_t left; /* descriptors still to write */
} buf;

static int put(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown)
            return -1;
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int put_line(void *opaque, const char *ref_name, const char *digest, const char *text)
{
    buf *b = opaque;
    (void)ref_name;
    (void)digest;
    b->left--;
    if (put(b, LINE_INDENT, strlen(LINE_INDENT)) != 0 || put(b, text, strlen(text)) != 0 ||
        put(b, b->left ? ",\n" : "\n", b->left ? 2 : 1) != 0)
        return -1;
    return 0;
}

char *oc_oci_index_dump(const oc_oci_index *x, size_t *len, oc_error *err)
{
    buf b = {.left = oc_oci_index_count(x)};
    int rc = put(&b, HEAD, strlen(HEAD));
    if (rc == 0 && b.left == 0)
        rc = put(&b, "]\n}\n", 4);
    else if (rc == 0)
        rc = put(&b, "\n", 1) == 0 && oc_oci_index_foreach(x, put_line, &b) == 0
                 ? put(&b, TAIL, strlen(TAIL))
                 : -1;
    if (rc != 0) {
        free(b.p);
        oom(err);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- descriptors ---- */

char *oc_oci_ref_name(const char *image, const char *tag)
{
    char *r = NULL;
    return asprintf(&r, "%s:%s", image, tag) < 0 ? NULL : r;
}

/* docker's rule: the first component names a host when it has a '.' or a
 * ':' or is "localhost". */
static int starts_with_host(const char *image)
{
    const char *slash = strchr(image, '/');
    if (!slash)
        return 0;
    size_t n = (size_t)(slash - image);
    return memchr(image, '.', n) || memchr(image, ':', n) ||
           (n == 9 && strncmp(image, "localhost", 9) == 0);
}

char *oc_oci_qualified_name(const char *image, const char *tag)
{
    const char *host = starts_with_host(image) ? "" : "docker.io/";
    const char *lib = !*host || strchr(image, '/') ? "" : "library/";
    int digest = strncmp(tag, "sha256:", 7) == 0;
    char *r = NULL;
    return asprintf(&r, "%s%s%s%s%s", host, lib, image, digest ? "@" : ":", tag) < 0 ? NULL : r;
}

/* The fully qualified name from where the image came from, when known:
 * a fetch's store name is IMAGE as given, without its registry. */
static char *qualified_from_source(const oc_oci_desc *d)
{
    if (!d->registry || !d->repository)
        return oc_oci_qualified_name(d->image, d->tag);
    const char *host = strcmp(d->registry, "registry-1.docker.io") == 0 ||
                               strcmp(d->registry, "index.docker.io") == 0
                           ? "docker.io"
                           : d->registry;
    int digest = strncmp(d->tag, "sha256:", 7) == 0;
    char *r = NULL;
    return asprintf(&r, "%s/%s%s%s", host, d->repository, digest ? "@" : ":", d->tag) < 0 ? NULL
                                                                                          : r;
}

char *oc_oci_descriptor_text(const oc_oci_desc *d, oc_error *err)
{
    /* a referrer's descriptor has no tag: no ref name, no containerd name */
    char *ref = d->tag ? oc_oci_ref_name(d->image, d->tag) : strdup("");
    char *qual = d->tag ? qualified_from_source(d) : strdup("");
    char *source = NULL;
    if (d->registry && d->repository &&
        asprintf(&source, "%s/%s%s%s@%s", d->registry, d->repository, d->source_tag ? ":" : "",
                 d->source_tag ? d->source_tag : "", d->digest) < 0)
        source = NULL;
    json_t *o = json_object(), *ann = json_object(), *plat = NULL;
    char *text = NULL;
    if (!ref || !qual || (d->registry && d->repository && !source) || !o || !ann)
        goto out;
    json_object_set_new(o, "mediaType", json_string(d->media_type));
    json_object_set_new(o, "digest", json_string(d->digest));
    json_object_set_new(o, "size", json_integer((json_int_t)d->size));
    if (d->tag) {
        json_object_set_new(ann, OC_OCI_REF_NAME, json_string(ref));
        json_object_set_new(ann, OC_OCI_CONTAINERD_NAME, json_string(qual));
    }
    if (source)
        json_object_set_new(ann, OC_OCI_SOURCE, json_string(source));
    if (d->subject) {
        json_object_set_new(ann, OC_OCI_REFERRER_IMAGE, json_string(d->image));
        json_object_set_new(ann, OC_OCI_REFERRER_SUBJECT, json_string(d->subject));
    }
    if (d->artifact_type)
        json_object_set_new(o, "artifactType", json_string(d->artifact_type));
    json_object_set(o, "annotations", ann);
    if (d->platform) {
        /* "os/arch[/variant]" */
        char *copy = strdup(d->platform);
        char *arch = copy ? strchr(copy, '/') : NULL;
        if (!arch)
            goto out_plat;
        *arch++ = '\0';
        char *variant = strchr(arch, '/');
        if (variant)
            *variant++ = '\0';
        plat = json_object();
        json_object_set_new(plat, "os", json_string(copy));
        json_object_set_new(plat, "architecture", json_string(arch));
        if (variant)
            json_object_set_new(plat, "variant", json_string(variant));
        json_object_set(o, "platform", plat);
    out_plat:
        free(copy);
        if (!plat)
            goto out;
    }
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
out:
    if (!text)
        oom(err);
    json_decref(o);
    json_decref(ann);
    json_decref(plat);
    free(ref);
    free(qual);
    free(source);
    return text;
}

int oc_oci_descriptor_parse(const char *text, char **media_type, char **digest, uint64_t *size,
                            oc_error *err)
{
    json_error_t jerr;
    json_t *d = json_loads(text, 0, &jerr);
    const char *name = NULL, *dg = NULL;
    *media_type = *digest = NULL;
    if (!d || check_desc(d, "index.json", 0, &name, &dg, err) != 0) {
        if (!d)
            oc_error_set(err, OC_E_FORMAT, "a descriptor of index.json does not parse: %s",
                         jerr.text);
        json_decref(d);
        return -1;
    }
    *media_type = strdup(json_string_value(json_object_get(d, "mediaType")));
    *digest = strdup(dg);
    *size = (uint64_t)json_integer_value(json_object_get(d, "size"));
    json_decref(d);
    if (!*media_type || !*digest) {
        free(*media_type);
        free(*digest);
        *media_type = *digest = NULL;
        return oom(err);
    }
    return 0;
}

char *oc_oci_referrer_key(const char *image, const char *digest)
{
    char *r = NULL;
    return asprintf(&r, "%s@%s", image, digest) < 0 ? NULL : r;
}
