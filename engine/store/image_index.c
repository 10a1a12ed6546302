/* image_index.c - the store's image index (see image_index.h).
 *
 * The file: a first line "occystrap-image-index 1", then tab-separated
 * lines, "-" for an absent field:
 *   I image tag file ino size mtime_s mtime_ns has_ours manifest_digest
 *     index_digest image_name config_hex layer_hex,layer_hex,...
 *   M hex kind(L|C) size tar_size diff_id ino fsize mtime_s mtime_ns
 * Names, tags, file names and digests never hold a tab or a newline (their
 * grammars forbid them); a line that does not parse is skipped. */
#include "engine/store/image_index.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomicfile.h"
#include "io/strmap.h"

#define INDEX_NAME ".occystrap/images.idx"
#define INDEX_MAX (512u * 1024 * 1024)
#define HEADER "occystrap-image-index 1\n"
#define FIELDS_MAX 16

typedef struct img_rec {
    char *file;
    oc_file_id id;
    int has_ours;
    char *manifest_digest, *index_digest, *image_name; /* NULL when absent */
    char config_hex[OC_SHA256_HEX_LEN + 1];
    char (*layer_hex)[OC_SHA256_HEX_LEN + 1];
    size_t n_layers;
} img_rec;

struct oc_image_index {
    oc_store *s;
    char *path;
    oc_strmap *recs; /* "image\ttag" -> img_rec */
    oc_file_id seen; /* the index file as we read it (size 0: none) */
    size_t marks_loaded;
    int dirty;
    unsigned misses;
};

static void rec_free(void *p)
{
    img_rec *r = p;
    if (!r)
        return;
    free(r->file);
    free(r->manifest_digest);
    free(r->index_digest);
    free(r->image_name);
    free(r->layer_hex);
    free(r);
}

static void id_of(const struct stat *st, oc_file_id *id)
{
    id->ino = (uint64_t)st->st_ino;
    id->size = (uint64_t)st->st_size;
    id->mtime_s = (int64_t)st->st_mtim.tv_sec;
    id->mtime_ns = st->st_mtim.tv_nsec;
}

static int same_id(const oc_file_id *a, const oc_file_id *b)
{
    return a->ino == b->ino && a->size == b->size && a->mtime_s == b->mtime_s &&
           a->mtime_ns == b->mtime_ns;
}

static char *key_of(const char *image, const char *tag)
{
    char *k = NULL;
    return asprintf(&k, "%s\t%s", image, tag) < 0 ? NULL : k;
}

static char *opt_dup(const char *field)
{
    return strcmp(field, "-") == 0 ? NULL : strdup(field);
}

static int is_hex64(const char *s)
{
    return strlen(s) == OC_SHA256_HEX_LEN && oc_store_name_is_hex(s, "", NULL);
}

/* Split line (modified in place) at tabs; the number of fields. */
static int split(char *line, char **f)
{
    int n = 0;
    for (char *p = line;;) {
        if (n == FIELDS_MAX)
            return -1;
        f[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            return n;
        *tab = '\0';
        p = tab + 1;
    }
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

static int parse_id(char **f, oc_file_id *id)
{
    uint64_t ino, size, s, ns;
    if (parse_u64(f[0], &ino) || parse_u64(f[1], &size) || parse_u64(f[2], &s) ||
        parse_u64(f[3], &ns) || ns >= 1000000000ULL)
        return -1;
    *id = (oc_file_id){ino, size, (int64_t)s, (long)ns};
    return 0;
}

/* An I line into map (replacing nothing already there: keep says whether
 * records of ours win). */
static void load_image(oc_strmap *map, char **f, int n, int keep)
{
    if (n != 14 || !oc_catalog_file_name_ok(f[3]) || !is_hex64(f[12]))
        return;
    char *key = key_of(f[1], f[2]);
    if (!key || (keep && oc_strmap_has(map, key))) {
        free(key);
        return;
    }
    img_rec *r = calloc(1, sizeof *r);
    int ok = r && parse_id(f + 4, &r->id) == 0 && (f[8][0] == '0' || f[8][0] == '1') && !f[8][1] &&
             (r->file = strdup(f[3]));
    if (ok) {
        r->has_ours = f[8][0] == '1';
        r->manifest_digest = opt_dup(f[9]);
        r->index_digest = opt_dup(f[10]);
        r->image_name = opt_dup(f[11]);
        memcpy(r->config_hex, f[12], sizeof r->config_hex);
        size_t layers = strcmp(f[13], "-") == 0 ? 0 : 1;
        for (const char *p = f[13]; layers && *p; p++)
            layers += *p == ',';
        r->layer_hex = calloc(layers ? layers : 1, sizeof *r->layer_hex);
        ok = r->layer_hex != NULL;
        for (char *p = layers ? f[13] : NULL; ok && p;) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            ok = is_hex64(p);
            if (ok)
                memcpy(r->layer_hex[r->n_layers++], p, OC_SHA256_HEX_LEN + 1);
            p = comma ? comma + 1 : NULL;
        }
    }
    if (!ok || oc_strmap_set(map, key, r) != 0)
        rec_free(r);
    free(key);
}

static void load_mark(oc_store *s, char **f, int n)
{
    oc_blob_mark m;
    oc_file_id id;
    uint64_t size, tar_size;
    memset(&m, 0, sizeof m);
    if (n != 10 || !is_hex64(f[1]) || (strcmp(f[2], "L") && strcmp(f[2], "C")) ||
        parse_u64(f[3], &size) || parse_u64(f[4], &tar_size) || parse_id(f + 6, &id) != 0)
        return;
    m.is_layer = f[2][0] == 'L';
    m.size = size;
    m.tar_size = tar_size;
    snprintf(m.digest, sizeof m.digest, "sha256:%s", f[1]);
    if (m.is_layer) {
        if (strncmp(f[5], "sha256:", 7) != 0 || !is_hex64(f[5] + 7))
            return;
        snprintf(m.diff_id, sizeof m.diff_id, "%s", f[5]);
    }
    oc_store_marks_seed(s, f[1], &m, &id);
}

/* Read the index file into map (and the markers into the store); its
 * identity into *seen. keep: records already in map win. */
static void load_file(oc_image_index *x, oc_strmap *map, int keep)
{
    struct stat st;
    if (stat(x->path, &st) != 0)
        return;
    oc_error ignored;
    size_t len = 0;
    char *text = oc_read_file(x->path, INDEX_MAX, &len, &ignored);
    if (!text)
        return;
    id_of(&st, &x->seen);
    if (strncmp(text, HEADER, strlen(HEADER)) == 0) {
        char *f[FIELDS_MAX];
        for (char *line = text + strlen(HEADER); *line;) {
            char *nl = strchr(line, '\n');
            if (!nl)
                break; /* a torn last line */
            *nl = '\0';
            int n = split(line, f);
            if (n > 0 && strcmp(f[0], "I") == 0)
                load_image(map, f, n, keep);
            else if (n > 0 && strcmp(f[0], "M") == 0)
                load_mark(x->s, f, n);
            line = nl + 1;
        }
    }
    free(text);
}

oc_image_index *oc_image_index_open(oc_store *s)
{
    oc_image_index *x = calloc(1, sizeof *x);
    if (!x || !(x->path = oc_store_path(s, INDEX_NAME)) || !(x->recs = oc_strmap_new(rec_free))) {
        oc_image_index_free(x);
        return NULL;
    }
    x->s = s;
    load_file(x, x->recs, 0);
    x->marks_loaded = oc_store_marks_count(s);
    return x;
}

void oc_image_index_free(oc_image_index *x)
{
    if (!x)
        return;
    oc_strmap_free(x->recs);
    free(x->path);
    free(x);
}

unsigned oc_image_index_misses(const oc_image_index *x)
{
    return x->misses;
}

/* si from a record (as oc_store_image_load would fill what we use). */
static int from_record(const img_rec *r, oc_store_image *si)
{
    memset(si, 0, sizeof *si);
    si->has_ours = r->has_ours;
    memcpy(si->config_hex, r->config_hex, sizeof si->config_hex);
    int ok = asprintf(&si->config, "%s.json", r->config_hex) >= 0;
    if (!ok)
        si->config = NULL;
    si->layers = calloc(r->n_layers ? r->n_layers : 1, sizeof *si->layers);
    si->layer_hex = calloc(r->n_layers ? r->n_layers : 1, sizeof *si->layer_hex);
    ok = ok && si->layers && si->layer_hex;
    for (size_t i = 0; ok && i < r->n_layers; i++) {
        memcpy(si->layer_hex[i], r->layer_hex[i], sizeof si->layer_hex[i]);
        ok = asprintf(&si->layers[i], "%s/layer.tar", r->layer_hex[i]) >= 0;
        if (ok)
            si->n_layers++;
        else
            si->layers[i] = NULL;
    }
    if (ok && r->image_name)
        ok = (si->image_name = strdup(r->image_name)) != NULL;
    if (ok && r->manifest_digest)
        ok = (si->manifest_digest = strdup(r->manifest_digest)) != NULL;
    if (ok && r->index_digest)
        ok = (si->index_digest = strdup(r->index_digest)) != NULL;
    if (!ok)
        oc_store_image_free(si);
    return ok ? 0 : -1;
}

/* A record of si, read from file whose identity was id. */
static void remember(oc_image_index *x, const char *image, const char *tag, const char *file,
                     const oc_file_id *id, const oc_store_image *si)
{
    char *key = key_of(image, tag);
    img_rec *r = key ? calloc(1, sizeof *r) : NULL;
    int ok = r && (r->file = strdup(file)) &&
             (r->layer_hex = calloc(si->n_layers ? si->n_layers : 1, sizeof *r->layer_hex));
    if (ok) {
        r->id = *id;
        r->has_ours = si->has_ours;
        memcpy(r->config_hex, si->config_hex, sizeof r->config_hex);
        for (size_t i = 0; i < si->n_layers; i++)
            memcpy(r->layer_hex[i], si->layer_hex[i], sizeof r->layer_hex[i]);
        r->n_layers = si->n_layers;
        r->manifest_digest = si->manifest_digest ? strdup(si->manifest_digest) : NULL;
        r->index_digest = si->index_digest ? strdup(si->index_digest) : NULL;
        r->image_name = si->image_name ? strdup(si->image_name) : NULL;
        ok = (!si->manifest_digest || r->manifest_digest) &&
             (!si->index_digest || r->index_digest) && (!si->image_name || r->image_name);
    }
    if (ok && oc_strmap_set(x->recs, key, r) == 0)
        x->dirty = 1;
    else
        rec_free(r);
    free(key);
}

int oc_image_index_lookup(oc_image_index *x, const oc_catalog *c, const char *image,
                          const char *tag, oc_store_image *si, oc_error *err)
{
    const char *listed = oc_catalog_get(c, image, tag);
    char *name = listed ? strdup(listed) : oc_catalog_manifest_name(image, tag);
    char *path = name && oc_catalog_file_name_ok(name) ? oc_store_path(x->s, name) : NULL;
    char *key = key_of(image, tag);
    struct stat st;
    int rc;
    if (!path || !key || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        /* no such file, a bad name, no memory: the plain lookup says which */
        rc = oc_store_lookup(x->s, c, image, tag, si, NULL, err);
        goto out;
    }
    oc_file_id id;
    id_of(&st, &id);
    const img_rec *r = oc_strmap_get(x->recs, key);
    if (r && strcmp(r->file, name) == 0 && same_id(&r->id, &id) && from_record(r, si) == 0) {
        rc = 0;
        goto out;
    }
    x->misses++;
    rc = oc_store_lookup(x->s, c, image, tag, si, NULL, err);
    if (rc == 0)
        remember(x, image, tag, name, &id, si);
out:
    free(name);
    free(path);
    free(key);
    return rc;
}

void oc_image_index_note(oc_image_index *x, const char *image, const char *tag)
{
    char *name = oc_catalog_manifest_name(image, tag);
    char *path = name ? oc_store_path(x->s, name) : NULL;
    struct stat st;
    oc_store_image si;
    oc_error ignored;
    if (path && stat(path, &st) == 0 && oc_store_image_load(&si, path, &ignored) == 0) {
        oc_file_id id;
        id_of(&st, &id);
        remember(x, image, tag, name, &id, &si);
        oc_store_image_free(&si);
    }
    free(name);
    free(path);
}

/* ---- writing ---- */

typedef struct buf {
    char *p;
    size_t len, cap;
    int failed;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(buf *b, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !b->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
}

static const char *or_dash(const char *s)
{
    return s ? s : "-";
}

static void put_image(const char *key, void *value, void *opaque)
{
    const img_rec *r = value;
    buf *b = opaque;
    if (!r)
        return;
    put(b, "I\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRId64 "\t%ld\t%d\t%s\t%s\t%s\t%s\t", key,
        r->file, r->id.ino, r->id.size, r->id.mtime_s, r->id.mtime_ns, r->has_ours,
        or_dash(r->manifest_digest), or_dash(r->index_digest), or_dash(r->image_name),
        r->config_hex);
    for (size_t i = 0; i < r->n_layers; i++)
        put(b, "%s%s", i ? "," : "", r->layer_hex[i]);
    put(b, "%s\n", r->n_layers ? "" : "-");
}

static void put_mark(void *opaque, const char *hex, const oc_blob_mark *m, const oc_file_id *id)
{
    put(opaque,
        "M\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRId64 "\t%ld\n",
        hex, m->is_layer ? "L" : "C", m->size, m->tar_size, m->is_layer ? m->diff_id : "-", id->ino,
        id->size, id->mtime_s, id->mtime_ns);
}

int oc_image_index_save(oc_image_index *x, oc_error *err)
{
    if (!x->dirty && oc_store_marks_count(x->s) <= x->marks_loaded)
        return 0;
    int fd = oc_store_catalog_lock(x->s, err); /* one writer of the index at a time */
    if (fd < 0)
        return -1;
    /* another process wrote it since we read it: keep its records too */
    struct stat st;
    oc_file_id now = {0};
    if (stat(x->path, &st) == 0)
        id_of(&st, &now);
    if (now.size && !same_id(&now, &x->seen))
        load_file(x, x->recs, 1);
    buf b = {0};
    put(&b, "%s", HEADER);
    oc_strmap_foreach(x->recs, put_image, &b);
    oc_store_marks_foreach(x->s, put_mark, &b);
    int rc = -1;
    if (b.failed)
        oc_error_set(err, OC_E_NOMEM, "out of memory writing the image index");
    else
        rc = oc_atomic_write_file(oc_store_run_dir(x->s), x->path, b.p, b.len, err);
    if (rc == 0 && stat(x->path, &st) == 0) {
        id_of(&st, &x->seen);
        x->dirty = 0;
        x->marks_loaded = oc_store_marks_count(x->s);
    }
    oc_store_catalog_unlock(fd);
    free(b.p);
    return rc;
}
