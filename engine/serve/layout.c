/* layout.c - serve's view of a store (see layout.h): index.json and the
 * manifests it reaches, catalog.json for the images without exact bytes,
 * rebuilt when either file changes. */
#include "engine/serve/layout.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/image/limits.h"
#include "engine/image/manifest.h"
#include "engine/serve/names.h"
#include "io/strmap.h"
#include "engine/store/catalog.h"
#include "engine/store/store_image.h"

/* index.json of a big store: one descriptor per tag. */
#define INDEX_MAX OC_STORE_JSON_MAX
/* indexes of indexes are followed this deep */
#define MAX_DEPTH 4
#define REF_NAME "org.opencontainers.image.ref.name"
#define REFERRER_IMAGE "org.occystrap.referrer.image"
#define REFERRER_SUBJECT "org.occystrap.referrer.subject"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
/* how long a repository keeps serving, by digest, what it no longer
 * reaches (layout.h, retire_seconds) */
#define RETIRE_SECONDS_DEFAULT 3600

typedef struct file_key {
    int exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_key;

typedef struct referrers {
    const oc_srv_manifest **items;
    size_t n, cap;
} referrers;

/* What an earlier view of a repository reached and this one does not: a
 * manifest (kept in the cache) or a blob (its location copied). */
typedef struct retired {
    const oc_srv_manifest *m;
    oc_srv_blob blob;
    uint64_t since; /* monotonic seconds: when a view first stopped reaching it */
} retired;

struct oc_srv_repo {
    char *name;
    oc_srv_tag *tags;
    size_t n_tags, cap_tags;
    oc_strmap *manifests; /* hex -> oc_srv_manifest (the cache's) */
    oc_strmap *blobs;     /* hex -> oc_srv_blob (static, or a rewritten manifest's) */
    oc_strmap *referrers; /* subject hex -> referrers */
    oc_strmap *retired_manifests, *retired_blobs; /* hex -> retired */
};

struct oc_srv_layout {
    char *store, *index_path, *catalog_path, *blob_dir;
    int keep_host, allow_rewritten;
    int retire_seconds; /* < 0: nothing is kept */
    oc_srv_log_fn log;
    void *log_opaque;
    int have_view;
    file_key index_key, catalog_key; /* of the view */
    int failed;                      /* the files at these keys did not load */
    file_key failed_index_key, failed_catalog_key;
    unsigned gen;
    oc_strmap *cache; /* hex -> oc_srv_manifest, across views */
    oc_strmap *repos; /* name -> oc_srv_repo */
    char **names;
    size_t n_names;
    oc_strmap *logged; /* rewritten images already logged: "repo:tag@hex" */
    size_t n_tags, n_rewritten, n_not_served, not_served_logged;
    unsigned reloads;
};

static const oc_srv_blob oci_blob = {OC_SRV_BLOB_OCI, ""};

static void say(const oc_srv_layout *l, oc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const oc_srv_layout *l, oc_log_level level, const char *fmt, ...)
{
    if (!l->log)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    l->log(l->log_opaque, level, line);
}

static int nomem(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + 1 + strlen(b) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* ---- manifests ---- */

static void manifest_free(void *p)
{
    oc_srv_manifest *m = p;
    if (!m)
        return;
    free(m->media_type);
    free(m->bytes);
    free(m->children);
    for (size_t i = 0; i < m->n_children; i++)
        free(m->child_types[i]);
    free(m->child_types);
    free(m->blobs);
    free(m->blob_locs);
    free(m->artifact_type);
    json_decref(m->annotations);
    free(m);
}

/* "digest" of a descriptor object into hex; -1 when absent or invalid */
static int descriptor_hex(const json_t *d, char hex[OC_SHA256_HEX_LEN + 1], oc_error *err)
{
    const char *digest = json_string_value(json_object_get(d, "digest"));
    if (!json_is_object(d) || !digest) {
        oc_error_set(err, OC_E_FORMAT, "a descriptor has no \"digest\"");
        return -1;
    }
    return oc_digest_parse(digest, hex, err);
}

static int add_blob(oc_srv_manifest *m, const json_t *d, size_t cap, oc_error *err)
{
    if (m->n_blobs == cap)
        return 0;
    if (descriptor_hex(d, m->blobs[m->n_blobs], err) != 0)
        return -1;
    m->n_blobs++;
    return 0;
}

/* The parts of a manifest or index serve needs; desc_type is the media
 * type of the descriptor that led here (used when the body names none). */
static int manifest_parse(oc_srv_manifest *m, const char *bytes, size_t len, const char *desc_type,
                          oc_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &je);
    if (!root || !json_is_object(root)) {
        oc_error_set(err, OC_E_FORMAT, "not a JSON object (line %d: %s)", je.line,
                     root ? "not an object" : je.text);
        json_decref(root);
        return -1;
    }
    int rc = -1;
    const json_t *mts = json_object_get(root, "mediaType");
    const json_t *manifests = json_object_get(root, "manifests");
    m->is_index = json_is_array(manifests);
    const char *mt = json_string_value(mts);
    if (!mt)
        mt = desc_type;
    if (!mt)
        mt = m->is_index ? OC_MT_OCI_INDEX : OC_MT_OCI_MANIFEST;
    if (!(m->media_type = strdup(mt)))
        goto nomem;
    if (m->is_index) {
        size_t n = json_array_size(manifests);
        m->children = calloc(n ? n : 1, sizeof *m->children);
        m->child_types = calloc(n ? n : 1, sizeof *m->child_types);
        if (!m->children || !m->child_types)
            goto nomem;
        for (size_t i = 0; i < n; i++) {
            const json_t *d = json_array_get(manifests, i);
            if (descriptor_hex(d, m->children[i], err) != 0)
                goto out;
            const char *ct = json_string_value(json_object_get(d, "mediaType"));
            if (ct && !(m->child_types[i] = strdup(ct)))
                goto nomem;
            m->n_children++;
        }
    } else {
        const json_t *config = json_object_get(root, "config");
        const json_t *layers = json_object_get(root, "layers");
        const json_t *blobs = json_object_get(root, "blobs"); /* OCI artifact manifests (rc) */
        size_t cap = 1 + json_array_size(layers) + json_array_size(blobs);
        m->blobs = calloc(cap, sizeof *m->blobs);
        if (!m->blobs)
            goto nomem;
        if (config && add_blob(m, config, cap, err) != 0)
            goto out;
        const json_t *d;
        size_t i;
        json_array_foreach(layers, i, d)
        {
            if (add_blob(m, d, cap, err) != 0)
                goto out;
        }
        json_array_foreach(blobs, i, d)
        {
            if (add_blob(m, d, cap, err) != 0)
                goto out;
        }
        const char *ct = json_string_value(json_object_get(config, "mediaType"));
        if (ct && !(m->artifact_type = strdup(ct)))
            goto nomem;
    }
    const char *at = json_string_value(json_object_get(root, "artifactType"));
    if (at) {
        free(m->artifact_type);
        if (!(m->artifact_type = strdup(at)))
            goto nomem;
    }
    const json_t *subject = json_object_get(root, "subject");
    if (subject && descriptor_hex(subject, m->subject, err) != 0)
        goto out;
    json_t *ann = json_object_get(root, "annotations");
    if (json_is_object(ann))
        m->annotations = json_incref(ann);
    rc = 0;
    goto out;
nomem:
    nomem(err);
out:
    json_decref(root);
    return rc;
}

/* A blob file read whole (manifests and configs are small): it must be a
 * regular file (no symlink) of at most max bytes. *missing is set when it
 * does not exist. */
static char *read_small(const char *path, size_t max, size_t *len, int *missing, oc_error *err)
{
    *missing = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        *missing = errno == ENOENT;
        oc_error_errno(err, errno, "open %s", path);
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        oc_error_errno(err, errno, "stat %s", path);
    } else if (!S_ISREG(st.st_mode)) {
        oc_error_set(err, OC_E_FORMAT, "%s is not a regular file", path);
    } else if ((uint64_t)st.st_size > max) {
        oc_error_set(err, OC_E_LIMIT, "%s is larger than the limit of %zu bytes", path, max);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        nomem(err);
    } else {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                oc_error_errno(err, r < 0 ? errno : EIO, "read %s", path);
                free(buf);
                buf = NULL;
                break;
            }
            got += (size_t)r;
        }
        if (buf) {
            buf[got] = '\0';
            *len = got;
        }
    }
    close(fd);
    return buf;
}

/* The manifest hex from the cache, else read from blobs/, checked against
 * its digest and parsed. NULL (err) when it cannot be served. */
static oc_srv_manifest *manifest_get(oc_srv_layout *l, const char *hex, const char *desc_type,
                                     int *missing, oc_error *err)
{
    *missing = 0;
    oc_srv_manifest *m = oc_strmap_get(l->cache, hex);
    if (m)
        return m;
    char *path = join(l->blob_dir, hex);
    if (!path) {
        nomem(err);
        return NULL;
    }
    size_t len = 0;
    char *bytes = read_small(path, OC_MANIFEST_MAX, &len, missing, err);
    free(path);
    if (!bytes)
        return NULL;
    char got[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(bytes, len, got);
    if (strcmp(got, hex) != 0) {
        oc_error_set(err, OC_E_DIGEST, "its bytes hash to sha256:%s", got);
        free(bytes);
        return NULL;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        free(bytes);
        nomem(err);
        return NULL;
    }
    memcpy(m->hex, hex, sizeof m->hex);
    m->size = len;
    int rc = manifest_parse(m, bytes, len, desc_type, err);
    free(bytes);
    if (rc != 0 || oc_strmap_put(l->cache, hex, m, NULL) != 0) {
        if (rc == 0)
            nomem(err);
        manifest_free(m);
        return NULL;
    }
    return m;
}

/* ---- repositories ---- */

static void referrers_free(void *p)
{
    referrers *r = p;
    if (r)
        free(r->items);
    free(r);
}

static void repo_free(void *p)
{
    oc_srv_repo *r = p;
    if (!r)
        return;
    free(r->name);
    for (size_t i = 0; i < r->n_tags; i++)
        free(r->tags[i].tag);
    free(r->tags);
    oc_strmap_free_with(r->manifests, NULL);
    oc_strmap_free_with(r->blobs, NULL);
    oc_strmap_free_with(r->referrers, referrers_free);
    oc_strmap_free_with(r->retired_manifests, free);
    oc_strmap_free_with(r->retired_blobs, free);
    free(r);
}

static oc_srv_repo *repo_get(oc_strmap *repos, const char *name, oc_error *err)
{
    oc_srv_repo *r = oc_strmap_get(repos, name);
    if (r)
        return r;
    r = calloc(1, sizeof *r);
    if (r && (r->name = strdup(name)) && (r->manifests = oc_strmap_new(NULL)) &&
        (r->blobs = oc_strmap_new(NULL)) && (r->referrers = oc_strmap_new(NULL)) &&
        (r->retired_manifests = oc_strmap_new(NULL)) && (r->retired_blobs = oc_strmap_new(NULL)) &&
        oc_strmap_put(repos, name, r, NULL) == 0)
        return r;
    repo_free(r);
    nomem(err);
    return NULL;
}

static int repo_add_tag(oc_srv_repo *r, const char *tag, const oc_srv_manifest *m, oc_error *err)
{
    if (r->n_tags == r->cap_tags) {
        size_t cap = r->cap_tags ? r->cap_tags * 2 : 8;
        oc_srv_tag *grown = realloc(r->tags, cap * sizeof *grown);
        if (!grown)
            return nomem(err);
        r->tags = grown;
        r->cap_tags = cap;
    }
    char *t = strdup(tag);
    if (!t)
        return nomem(err);
    r->tags[r->n_tags].tag = t;
    r->tags[r->n_tags].m = m;
    r->n_tags++;
    return 0;
}

static int add_referrer(oc_srv_repo *r, const oc_srv_manifest *m, oc_error *err)
{
    referrers *list = oc_strmap_get(r->referrers, m->subject);
    if (!list) {
        list = calloc(1, sizeof *list);
        if (!list || oc_strmap_put(r->referrers, m->subject, list, NULL) != 0) {
            free(list);
            return nomem(err);
        }
    }
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 4;
        const oc_srv_manifest **grown = realloc(list->items, cap * sizeof *grown);
        if (!grown)
            return nomem(err);
        list->items = grown;
        list->cap = cap;
    }
    list->items[list->n++] = m;
    return 0;
}

/* Make m (and, for an index, its children that are in place) reachable in
 * r, with the blobs they name. */
static int reach(oc_srv_layout *l, oc_srv_repo *r, oc_srv_manifest *m, int depth, oc_error *err)
{
    if (oc_strmap_get(r->manifests, m->hex))
        return 0;
    m->gen = l->gen;
    if (oc_strmap_put(r->manifests, m->hex, m, NULL) != 0)
        return nomem(err);
    if (m->subject[0] && add_referrer(r, m, err) != 0)
        return -1;
    for (size_t i = 0; i < m->n_blobs; i++) {
        const oc_srv_blob *where = m->blob_locs ? &m->blob_locs[i] : &oci_blob;
        if (oc_strmap_put(r->blobs, m->blobs[i], (void *)where, NULL) != 0)
            return nomem(err);
    }
    if (depth >= MAX_DEPTH)
        return 0;
    for (size_t i = 0; i < m->n_children; i++) {
        int missing;
        oc_error cerr;
        oc_srv_manifest *c = manifest_get(l, m->children[i], m->child_types[i], &missing, &cerr);
        if (!c) {
            if (cerr.code == OC_E_NOMEM) {
                *err = cerr;
                return -1;
            }
            /* a platform the store does not hold is simply absent */
            if (!missing)
                say(l, OC_LOG_WARNING,
                    "serve: %s: child sha256:%s of index sha256:%s is not served: %s", r->name,
                    m->children[i], m->hex, cerr.msg);
            continue;
        }
        if (reach(l, r, c, depth + 1, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- building a view ---- */

typedef struct view {
    oc_strmap *repos;
    oc_strmap *exact; /* "repository\ntag" of every index.json entry */
    size_t n_tags, n_rewritten, n_not_served;
} view;

static void view_free(view *v)
{
    oc_strmap_free_with(v->repos, repo_free);
    oc_strmap_free_with(v->exact, NULL);
}

static char *pair_key(const char *image, const char *tag)
{
    size_t n = strlen(image) + 1 + strlen(tag) + 1;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s\n%s", image, tag);
    return k;
}

static int is_digest_tag(const char *tag)
{
    return strncmp(tag, "sha256:", 7) == 0;
}

/* The manifest descriptor d (of blob hex) names, into *m. -1 (err) only
 * when out of memory; otherwise 0, with *m NULL and derr saying why when
 * it cannot be served. */
static int descriptor_manifest(oc_srv_layout *l, const json_t *d, const char *hex,
                               oc_srv_manifest **m, oc_error *derr, oc_error *err)
{
    int missing;
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    *m = manifest_get(l, hex, mt, &missing, derr);
    if (!*m && derr->code == OC_E_NOMEM) {
        *err = *derr;
        return -1;
    }
    return 0;
}

/* A referrer of an image (a signature, an SBOM: no ref name, the store's
 * annotations naming its image): served by digest in the image's
 * repository, and listed by the referrers API under its subject. */
static int add_referrer_descriptor(oc_srv_layout *l, view *v, const json_t *d, const char *image,
                                   oc_error *err)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_error derr;
    char *repo_name = NULL;
    int rc = 0;
    if (descriptor_hex(d, hex, &derr) != 0 ||
        !(repo_name = oc_srv_repo_name(image, l->keep_host, &derr))) {
        say(l, OC_LOG_WARNING, "serve: a referrer of \"%s\" in index.json is not served: %s", image,
            derr.msg);
        return 0;
    }
    oc_srv_manifest *m = NULL;
    if (descriptor_manifest(l, d, hex, &m, &derr, err) != 0) {
        rc = -1;
    } else if (!m) {
        say(l, OC_LOG_WARNING, "serve: referrer sha256:%s of %s is not served: %s", hex, image,
            derr.msg);
    } else {
        oc_srv_repo *r = repo_get(v->repos, repo_name, err);
        if (!r || reach(l, r, m, 0, err) != 0)
            rc = -1;
    }
    free(repo_name);
    return rc;
}

/* One descriptor of index.json into the view. Descriptors that cannot be
 * served are logged and skipped; only running out of memory fails. */
static int add_descriptor(oc_srv_layout *l, view *v, const json_t *d, oc_error *err)
{
    const json_t *ann = json_object_get(d, "annotations");
    const char *ref = json_string_value(json_object_get(ann, REF_NAME));
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_error derr;
    const char *owner = json_string_value(json_object_get(ann, REFERRER_IMAGE));
    if (!ref && owner && json_object_get(ann, REFERRER_SUBJECT))
        return add_referrer_descriptor(l, v, d, owner, err);
    if (!ref)
        return 0; /* not one of the store's names */
    char *image = NULL, *tag = NULL, *repo_name = NULL, *key = NULL;
    int rc = 0;
    if (descriptor_hex(d, hex, &derr) != 0 || oc_catalog_split_ref(ref, &image, &tag, &derr) != 0 ||
        !(repo_name = oc_srv_repo_name(image, l->keep_host, &derr))) {
        say(l, OC_LOG_WARNING, "serve: index.json entry \"%s\" is not served: %s", ref, derr.msg);
        goto out;
    }
    if (!(key = pair_key(repo_name, tag)) || oc_strmap_put(v->exact, key, (void *)1, NULL) != 0) {
        rc = nomem(err);
        goto out;
    }
    oc_srv_manifest *m = NULL;
    if (descriptor_manifest(l, d, hex, &m, &derr, err) != 0) {
        rc = -1;
        goto out;
    }
    if (!m) {
        say(l, OC_LOG_WARNING, "serve: %s (sha256:%s) is not served: %s", ref, hex, derr.msg);
        goto out;
    }
    oc_srv_repo *r = repo_get(v->repos, repo_name, err);
    if (!r || reach(l, r, m, 0, err) != 0 ||
        (!is_digest_tag(tag) && repo_add_tag(r, tag, m, err) != 0)) {
        rc = -1;
        goto out;
    }
    if (!is_digest_tag(tag))
        v->n_tags++;
out:
    free(image);
    free(tag);
    free(repo_name);
    free(key);
    return rc;
}

static int load_index(oc_srv_layout *l, view *v, oc_error *err)
{
    size_t len = 0;
    int missing;
    char *text = read_small(l->index_path, INDEX_MAX, &len, &missing, err);
    if (!text)
        return missing ? 0 : -1;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    const json_t *manifests = json_object_get(root, "manifests");
    if (!root || !json_is_array(manifests)) {
        oc_error_set(err, OC_E_FORMAT, "%s: %s", l->index_path,
                     root ? "no \"manifests\" list" : je.text);
        json_decref(root);
        return -1;
    }
    size_t i;
    const json_t *d;
    int rc = 0;
    json_array_foreach(manifests, i, d)
    {
        if ((rc = add_descriptor(l, v, d, err)) != 0)
            break;
    }
    json_decref(root);
    return rc;
}

/* An image of the 0.2.0 layout as an OCI manifest of uncompressed layers
 * (layout.h). NULL (err) when it cannot be made. */
static oc_srv_manifest *rewrite(oc_srv_layout *l, const char *file, char **original, oc_error *err)
{
    *original = NULL;
    if (!oc_catalog_file_name_ok(file)) {
        oc_error_set(err, OC_E_FORMAT, "catalog.json names \"%s\", not a file of the store", file);
        return NULL;
    }
    oc_store_image si;
    memset(&si, 0, sizeof si);
    oc_image_config cfg;
    memset(&cfg, 0, sizeof cfg);
    oc_srv_manifest *m = NULL;
    char *config = NULL, *path = join(l->store, file);
    json_t *root = NULL;
    if (!path)
        goto nomem;
    if (oc_store_image_load(&si, path, err) != 0)
        goto fail;
    free(path);
    char name[OC_SHA256_HEX_LEN + 16];
    snprintf(name, sizeof name, "%s.json", si.config_hex);
    path = join(l->store, name);
    size_t clen = 0;
    int missing;
    if (!path)
        goto nomem;
    if (!(config = read_small(path, OC_IMAGE_CONFIG_MAX, &clen, &missing, err)) ||
        oc_image_config_parse(&cfg, config, clen, err) != 0)
        goto fail;
    if (cfg.n_diff_ids != si.n_layers) {
        oc_error_set(err, OC_E_FORMAT, "its config lists %zu diff_ids for %zu layers",
                     cfg.n_diff_ids, si.n_layers);
        goto fail;
    }
    m = calloc(1, sizeof *m);
    if (!m || !(m->blobs = calloc(1 + si.n_layers, sizeof *m->blobs)) ||
        !(m->blob_locs = calloc(1 + si.n_layers, sizeof *m->blob_locs)) ||
        !(m->media_type = strdup(OC_MT_OCI_MANIFEST)) ||
        !(m->artifact_type = strdup(MT_OCI_CONFIG)))
        goto nomem;
    char config_hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_buf_hex(config, clen, config_hex);
    memcpy(m->blobs[0], config_hex, sizeof m->blobs[0]);
    m->blob_locs[0].kind = OC_SRV_BLOB_CONFIG;
    memcpy(m->blob_locs[0].file_hex, si.config_hex, sizeof m->blob_locs[0].file_hex);
    m->n_blobs = 1;
    char digest[8 + OC_SHA256_HEX_LEN + 1];
    snprintf(digest, sizeof digest, "sha256:%s", config_hex);
    root = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
                     OC_MT_OCI_MANIFEST, "config", "mediaType", MT_OCI_CONFIG, "digest", digest,
                     "size", (json_int_t)clen, "layers");
    json_t *layers = json_object_get(root, "layers");
    if (!root || !layers)
        goto nomem;
    for (size_t i = 0; i < si.n_layers; i++) {
        char *tar = join(l->store, si.layers[i]);
        struct stat st;
        if (!tar)
            goto nomem;
        int ok = lstat(tar, &st) == 0 && S_ISREG(st.st_mode);
        if (!ok)
            oc_error_errno(err, errno ? errno : EINVAL, "layer %s", tar);
        free(tar);
        if (!ok)
            goto fail;
        if (oc_digest_parse(cfg.diff_ids[i], m->blobs[1 + i], err) != 0)
            goto fail;
        m->blob_locs[1 + i].kind = OC_SRV_BLOB_LAYER_TAR;
        memcpy(m->blob_locs[1 + i].file_hex, si.layer_hex[i], sizeof m->blob_locs[0].file_hex);
        m->n_blobs++;
        if (json_array_append_new(layers, json_pack("{s:s, s:s, s:I}", "mediaType",
                                                    MT_OCI_LAYER_TAR, "digest", cfg.diff_ids[i],
                                                    "size", (json_int_t)st.st_size)) != 0)
            goto nomem;
    }
    if (si.manifest_digest) {
        if (json_object_set_new(
                root, "annotations",
                json_pack("{s:s}", "org.occystrap.rewritten-from", si.manifest_digest)) != 0)
            goto nomem;
        if (!(*original = strdup(si.manifest_digest)))
            goto nomem;
    }
    if (!(m->bytes = json_dumps(root, JSON_COMPACT)))
        goto nomem;
    m->size = strlen(m->bytes);
    oc_sha256_buf_hex(m->bytes, m->size, m->hex);
    goto done;
nomem:
    nomem(err);
fail:
    manifest_free(m);
    m = NULL;
    free(*original);
    *original = NULL;
done:
    json_decref(root);
    free(path);
    free(config);
    oc_image_config_free(&cfg);
    oc_store_image_free(&si);
    return m;
}

typedef struct catalog_walk {
    oc_srv_layout *l;
    view *v;
    oc_error *err;
} catalog_walk;

static int catalog_entry(void *opaque, const char *image, const char *tag, const char *file)
{
    catalog_walk *w = opaque;
    oc_srv_layout *l = w->l;
    oc_error rerr;
    char *original = NULL, *repo_name = oc_srv_repo_name(image, l->keep_host, &rerr);
    if (repo_name) { /* served from exact bytes already (under this or another name) */
        char *key = pair_key(repo_name, tag);
        if (!key) {
            free(repo_name);
            return nomem(w->err);
        }
        int exact = oc_strmap_get(w->v->exact, key) != NULL;
        free(key);
        if (exact) {
            free(repo_name);
            return 0;
        }
    }
    if (!l->allow_rewritten) {
        free(repo_name);
        w->v->n_not_served++;
        return 0;
    }
    oc_srv_manifest *m = repo_name ? rewrite(l, file, &original, &rerr) : NULL;
    if (!m) {
        free(repo_name);
        if (rerr.code == OC_E_NOMEM) {
            *w->err = rerr;
            return -1;
        }
        say(l, OC_LOG_WARNING, "serve: %s:%s (%s) cannot be served rewritten: %s", image, tag, file,
            rerr.msg);
        return 0;
    }
    oc_srv_manifest *cached = oc_strmap_get(l->cache, m->hex);
    if (cached) { /* the same bytes as before */
        manifest_free(m);
        m = cached;
    } else if (oc_strmap_put(l->cache, m->hex, m, NULL) != 0) {
        manifest_free(m);
        free(repo_name);
        free(original);
        return nomem(w->err);
    }
    int rc = -1;
    oc_srv_repo *r = repo_get(w->v->repos, repo_name, w->err);
    if (r && reach(l, r, m, 0, w->err) == 0 &&
        (is_digest_tag(tag) || repo_add_tag(r, tag, m, w->err) == 0)) {
        rc = 0;
        w->v->n_rewritten++;
        if (!is_digest_tag(tag))
            w->v->n_tags++;
        char logged[OC_SRV_NAME_MAX + OC_SRV_TAG_MAX + 80];
        snprintf(logged, sizeof logged, "%s:%s@%s", repo_name, tag, m->hex);
        if (!oc_strmap_get(l->logged, logged)) {
            if (oc_strmap_put(l->logged, logged, (void *)1, NULL) != 0)
                rc = nomem(w->err);
            say(l, OC_LOG_WARNING,
                "serve: %s:%s has no exact bytes in the store: served as %s:%s with a rewritten "
                "manifest sha256:%s (uncompressed layers), not the registry's %s; a client that "
                "pins the original digest will not find it",
                image, tag, repo_name, tag, m->hex, original ? original : "(not recorded)");
        }
    }
    free(repo_name);
    free(original);
    return rc;
}

static int load_catalog(oc_srv_layout *l, view *v, oc_error *err)
{
    size_t len = 0;
    int missing;
    char *text = read_small(l->catalog_path, OC_STORE_JSON_MAX, &len, &missing, err);
    if (!text)
        return missing ? 0 : -1;
    oc_catalog *c = oc_catalog_parse(text, len, l->catalog_path, err);
    free(text);
    if (!c)
        return -1;
    catalog_walk w = {l, v, err};
    int rc = oc_catalog_foreach(c, catalog_entry, &w);
    oc_catalog_free(c);
    return rc;
}

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const oc_srv_tag *)a)->tag, ((const oc_srv_tag *)b)->tag);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect_name(const char *key, void *value, void *opaque)
{
    oc_srv_repo *r = value;
    char ***out = opaque;
    *(*out)++ = (char *)key;
    /* tags sorted; of a tag given twice the last one stays */
    qsort(r->tags, r->n_tags, sizeof *r->tags, cmp_tag);
    size_t w = 0;
    for (size_t i = 0; i < r->n_tags; i++) {
        if (w > 0 && strcmp(r->tags[w - 1].tag, r->tags[i].tag) == 0) {
            free(r->tags[w - 1].tag);
            r->tags[w - 1] = r->tags[i];
        } else {
            r->tags[w++] = r->tags[i];
        }
    }
    r->n_tags = w;
}

typedef struct prune {
    unsigned gen;
    oc_strmap *keep;
    int failed;
} prune;

static void prune_one(const char *key, void *value, void *opaque)
{
    prune *p = opaque;
    oc_srv_manifest *m = value;
    if (m->gen != p->gen)
        manifest_free(m);
    else if (oc_strmap_put(p->keep, key, m, NULL) != 0)
        p->failed = 1;
}

/* ---- retiring: a tag that moves does not break a pull under way ----
 * A client resolves a tag to a digest, then fetches the manifest and its
 * blobs by digest; registries keep serving those after the tag moves (until
 * their garbage collection). A new view therefore keeps, in each repository
 * that is still there, what the previous view reached and this one does
 * not, for retire_seconds from when it stopped being reached: by digest only
 * (no tag, no referrers list); a blob or an exact-bytes manifest only while
 * its file is in the store. */

typedef struct retiring {
    oc_srv_layout *l;
    oc_strmap *repos; /* the new view's */
    oc_srv_repo *to;
    uint64_t now;
    int failed;
} retiring;

static uint64_t now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

/* Keep hex in rt->to's retired map unless it reaches it anyway or the
 * entry is too old. */
static void retire(retiring *rt, oc_strmap *into, const oc_strmap *reached, const char *hex,
                   const oc_srv_manifest *m, const oc_srv_blob *blob, uint64_t since)
{
    if (oc_strmap_get(reached, hex) || oc_strmap_get(into, hex) ||
        rt->now - since >= (uint64_t)rt->l->retire_seconds)
        return;
    retired *e = calloc(1, sizeof *e);
    if (!e || oc_strmap_put(into, hex, e, NULL) != 0) {
        free(e);
        rt->failed = 1;
        return;
    }
    e->m = m;
    if (blob)
        e->blob = *blob;
    e->since = since;
    if (m)
        ((oc_srv_manifest *)m)->gen = rt->l->gen; /* kept in the cache */
}

static void retire_manifest(const char *hex, void *value, void *opaque)
{
    retiring *rt = opaque;
    retire(rt, rt->to->retired_manifests, rt->to->manifests, hex, value, NULL, rt->now);
}

static void retire_blob(const char *hex, void *value, void *opaque)
{
    retiring *rt = opaque;
    retire(rt, rt->to->retired_blobs, rt->to->blobs, hex, NULL, value, rt->now);
}

static void keep_retired_manifest(const char *hex, void *value, void *opaque)
{
    retiring *rt = opaque;
    const retired *e = value;
    retire(rt, rt->to->retired_manifests, rt->to->manifests, hex, e->m, NULL, e->since);
}

static void keep_retired_blob(const char *hex, void *value, void *opaque)
{
    retiring *rt = opaque;
    const retired *e = value;
    retire(rt, rt->to->retired_blobs, rt->to->blobs, hex, NULL, &e->blob, e->since);
}

/* an old view's repository into the new view's of the same name (one that
 * is gone keeps nothing) */
static void retire_repo(const char *name, void *value, void *opaque)
{
    retiring *rt = opaque;
    const oc_srv_repo *old = value;
    if (!(rt->to = oc_strmap_get(rt->repos, name)))
        return;
    oc_strmap_foreach(old->manifests, retire_manifest, rt);
    oc_strmap_foreach(old->blobs, retire_blob, rt);
    oc_strmap_foreach(old->retired_manifests, keep_retired_manifest, rt);
    oc_strmap_foreach(old->retired_blobs, keep_retired_blob, rt);
}

static void file_key_of(const char *path, file_key *k)
{
    struct stat st;
    memset(k, 0, sizeof *k);
    if (stat(path, &st) != 0)
        return;
    k->exists = 1;
    k->dev = st.st_dev;
    k->ino = st.st_ino;
    k->size = st.st_size;
    k->mtime = st.st_mtim;
}

static int file_key_eq(const file_key *a, const file_key *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

int oc_srv_layout_refresh(oc_srv_layout *l, oc_error *err)
{
    file_key ik, ck;
    file_key_of(l->index_path, &ik);
    file_key_of(l->catalog_path, &ck);
    if (l->have_view && file_key_eq(&ik, &l->index_key) && file_key_eq(&ck, &l->catalog_key))
        return 0;
    if (l->failed && file_key_eq(&ik, &l->failed_index_key) &&
        file_key_eq(&ck, &l->failed_catalog_key))
        return 0; /* reported when it failed; the previous view stays */
    view v = {.repos = oc_strmap_new(NULL), .exact = oc_strmap_new(NULL)};
    l->gen++;
    oc_error lerr;
    oc_error_clear(&lerr);
    int rc = (!v.repos || !v.exact) ? nomem(&lerr) : 0;
    if (rc == 0)
        rc = load_index(l, &v, &lerr);
    if (rc == 0)
        rc = load_catalog(l, &v, &lerr);
    char **names = NULL;
    if (rc == 0) {
        size_t n = oc_strmap_count(v.repos);
        names = calloc(n ? n : 1, sizeof *names);
        if (!names) {
            rc = nomem(&lerr);
        } else {
            char **cursor = names;
            oc_strmap_foreach(v.repos, collect_name, &cursor);
            qsort(names, n, sizeof *names, cmp_str);
        }
    }
    prune p = {.gen = l->gen, .keep = rc == 0 ? oc_strmap_new(NULL) : NULL};
    if (rc == 0 && !p.keep)
        rc = nomem(&lerr);
    if (rc != 0) {
        /* the previous view stays; manifests read for this one stay cached */
        view_free(&v);
        free(names);
        l->failed = 1;
        l->failed_index_key = ik;
        l->failed_catalog_key = ck;
        if (err)
            *err = lerr;
        return -1;
    }
    if (l->retire_seconds >= 0) {
        retiring rt = {.l = l, .repos = v.repos, .now = now_seconds()};
        oc_strmap_foreach(l->repos, retire_repo, &rt);
        /* out of memory: some of it is not kept, nothing else is lost */
    }
    oc_strmap_free_with(l->repos, repo_free);
    free(l->names);
    l->repos = v.repos;
    l->names = names;
    l->n_names = oc_strmap_count(v.repos);
    l->n_tags = v.n_tags;
    l->n_rewritten = v.n_rewritten;
    l->n_not_served = v.n_not_served;
    oc_strmap_free_with(v.exact, NULL);
    /* manifests no repository reaches any more are dropped */
    oc_strmap_foreach(l->cache, prune_one, &p);
    if (p.failed) { /* out of memory: keep them all rather than lose track */
        oc_strmap_free_with(p.keep, NULL);
    } else {
        oc_strmap_free_with(l->cache, NULL);
        l->cache = p.keep;
    }
    l->index_key = ik;
    l->catalog_key = ck;
    l->have_view = 1;
    l->failed = 0;
    l->reloads++;
    if (l->n_not_served != l->not_served_logged) {
        l->not_served_logged = l->n_not_served;
        if (l->n_not_served)
            say(l, OC_LOG_WARNING,
                "serve: %zu image%s of %s %s no exact bytes (0.2.0 layout only) and %s not "
                "served; --allow-rewritten serves them with rewritten manifests (other digests)",
                l->n_not_served, l->n_not_served == 1 ? "" : "s", l->store,
                l->n_not_served == 1 ? "has" : "have", l->n_not_served == 1 ? "is" : "are");
    }
    return 1;
}

oc_srv_layout *oc_srv_layout_new(const oc_srv_layout_opts *o, oc_error *err)
{
    struct stat st;
    if (stat(o->store, &st) != 0) {
        oc_error_errno(err, errno, "store %s", o->store);
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        oc_error_set(err, OC_E_USAGE, "store %s is not a directory", o->store);
        return NULL;
    }
    oc_srv_layout *l = calloc(1, sizeof *l);
    if (!l) {
        nomem(err);
        return NULL;
    }
    l->keep_host = o->keep_host;
    l->allow_rewritten = o->allow_rewritten;
    l->retire_seconds = o->retire_seconds ? o->retire_seconds : RETIRE_SECONDS_DEFAULT;
    l->log = o->log;
    l->log_opaque = o->log_opaque;
    if (!(l->store = strdup(o->store)) || !(l->index_path = join(o->store, "oci/index.json")) ||
        !(l->catalog_path = join(o->store, "catalog.json")) ||
        !(l->blob_dir = join(o->store, "oci/blobs/sha256")) || !(l->cache = oc_strmap_new(NULL)) ||
        !(l->repos = oc_strmap_new(NULL)) || !(l->logged = oc_strmap_new(NULL))) {
        oc_srv_layout_free(l);
        nomem(err);
        return NULL;
    }
    return l;
}

void oc_srv_layout_free(oc_srv_layout *l)
{
    if (!l)
        return;
    oc_strmap_free_with(l->repos, repo_free);
    oc_strmap_free_with(l->cache, manifest_free);
    oc_strmap_free_with(l->logged, NULL);
    free(l->names);
    free(l->store);
    free(l->index_path);
    free(l->catalog_path);
    free(l->blob_dir);
    free(l);
}

void oc_srv_layout_get_stats(const oc_srv_layout *l, oc_srv_layout_stats *st)
{
    st->repos = l->n_names;
    st->tags = l->n_tags;
    st->manifests = oc_strmap_count(l->cache);
    st->rewritten = l->n_rewritten;
    st->not_served = l->n_not_served;
    st->reloads = l->reloads;
}

const char *const *oc_srv_layout_repo_names(const oc_srv_layout *l, size_t *n)
{
    *n = l->n_names;
    return (const char *const *)l->names;
}

const oc_srv_repo *oc_srv_layout_repo(const oc_srv_layout *l, const char *name)
{
    return oc_strmap_get(l->repos, name);
}

const oc_srv_tag *oc_srv_repo_tags(const oc_srv_repo *r, size_t *n)
{
    *n = r->n_tags;
    return r->tags;
}

const oc_srv_manifest *oc_srv_repo_tag(const oc_srv_repo *r, const char *tag)
{
    oc_srv_tag key = {(char *)tag, NULL};
    const oc_srv_tag *t = bsearch(&key, r->tags, r->n_tags, sizeof *r->tags, cmp_tag);
    return t ? t->m : NULL;
}

const oc_srv_manifest *oc_srv_repo_manifest(const oc_srv_repo *r, const char *hex)
{
    const oc_srv_manifest *m = oc_strmap_get(r->manifests, hex);
    if (m)
        return m;
    const retired *e = oc_strmap_get(r->retired_manifests, hex);
    return e ? e->m : NULL;
}

const oc_srv_blob *oc_srv_repo_blob(const oc_srv_repo *r, const char *hex)
{
    const oc_srv_blob *b = oc_strmap_get(r->blobs, hex);
    if (b)
        return b;
    const retired *e = oc_strmap_get(r->retired_blobs, hex);
    return e ? &e->blob : NULL;
}

const oc_srv_manifest *const *oc_srv_repo_referrers(const oc_srv_repo *r, const char *hex,
                                                    size_t *n)
{
    const referrers *list = oc_strmap_get(r->referrers, hex);
    *n = list ? list->n : 0;
    return list ? list->items : NULL;
}

char *oc_srv_layout_file(const oc_srv_layout *l, const char *hex, const oc_srv_blob *where)
{
    char name[OC_SHA256_HEX_LEN + 32];
    switch (where ? where->kind : OC_SRV_BLOB_OCI) {
    case OC_SRV_BLOB_LAYER_TAR:
        snprintf(name, sizeof name, "%s/layer.tar", where->file_hex);
        return join(l->store, name);
    case OC_SRV_BLOB_CONFIG:
        snprintf(name, sizeof name, "%s.json", where->file_hex);
        return join(l->store, name);
    case OC_SRV_BLOB_OCI:
        break;
    }
    return join(l->blob_dir, hex);
}
