/* store_verify.c - re-check a store (see store_verify.h).
 *
 * One pass over the listing: catalog, manifest files, configs (which give
 * each referenced layer its diff_id), layers, markers. Per-blob state lives
 * in arrays parallel to the sorted listing, found by binary search. */
#include "engine/store/store_verify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/image/manifest.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "engine/image/limits.h"

typedef struct vctx {
    const oc_store *s;
    oc_verify_out out;
    oc_store_entries e;
    oc_store_image *images;   /* parallel to e.manifests; config NULL when unparsable */
    oc_image_config *configs; /* parallel to e.configs; n_diff_ids 0 and no ids when unusable */
    int *config_ok;
    const char **expect;    /* parallel to e.layers: diff_id from the configs */
    const char **expect_by; /* the manifest file that said so */
    int *referenced;        /* parallel to e.layers */
    int *listed;            /* parallel to e.manifests: named by the catalog */
} vctx;

void oc_verify_say(const oc_verify_out *out, oc_verify_finding kind, const char *file,
                   const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (kind == OC_VERIFY_DAMAGED)
        out->st->damaged++;
    else
        out->st->notes++;
    if (out->report)
        out->report(kind, file, msg, out->opaque);
}

typedef struct cat_walk {
    vctx *v;
} cat_walk;

static int check_catalog_entry(void *opaque, const char *image, const char *tag, const char *file)
{
    vctx *v = ((cat_walk *)opaque)->v;
    long k = -1;
    if (!oc_catalog_file_name_ok(file))
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, "catalog.json",
                      "%s:%s names \"%s\", not a file in the store", image, tag, file);
    else if ((k = oc_store_entries_find(v->e.manifests, v->e.n_manifests, file)) < 0)
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, "catalog.json",
                      "%s:%s names %s, which is missing", image, tag, file);
    else
        v->listed[k] = 1;
    return 0;
}

/* catalog.json; sets *listed to the catalog (NULL when it does not parse). */
static void check_catalog(vctx *v, oc_catalog **listed)
{
    oc_error err;
    oc_error_clear(&err);
    *listed = NULL;
    if (oc_store_catalog_load(v->s, listed, &err) != 0) {
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, "catalog.json", "%s", err.msg);
        return;
    }
    cat_walk w = {v};
    oc_catalog_foreach(*listed, check_catalog_entry, &w);
}

static void check_manifests(vctx *v, const oc_catalog *listed)
{
    for (size_t i = 0; i < v->e.n_manifests; i++) {
        const char *name = v->e.manifests[i];
        char *path = oc_store_path(v->s, name);
        oc_error err;
        oc_error_clear(&err);
        v->out.st->manifests++;
        if (!path || oc_store_image_load(&v->images[i], path, &err) != 0) {
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "%s", path ? err.msg : "out of memory");
            free(path);
            continue;
        }
        free(path);
        const oc_store_image *si = &v->images[i];
        int unlisted = listed && !v->listed[i];
        if (unlisted)
            oc_verify_say(&v->out, OC_VERIFY_NOTE, name, "not listed in catalog.json");
        /* an unlisted image is a write the catalog never committed: a power
         * cut may have taken the names of its files (store_dirsync.h), and
         * the next mirror fetches what it lacks */
        oc_verify_finding lacks = unlisted ? OC_VERIFY_NOTE : OC_VERIFY_DAMAGED;
        if (oc_store_entries_find(v->e.configs, v->e.n_configs, si->config_hex) < 0)
            oc_verify_say(&v->out, lacks, name, "its config %s is missing", si->config);
        for (size_t l = 0; l < si->n_layers; l++) {
            long k = oc_store_entries_find(v->e.layers, v->e.n_layers, si->layer_hex[l]);
            if (k < 0)
                oc_verify_say(&v->out, lacks, name, "its layer %s is missing", si->layers[l]);
            else
                v->referenced[k] = 1;
        }
    }
}

static void check_configs(vctx *v)
{
    for (size_t i = 0; i < v->e.n_configs; i++) {
        const char *hex = v->e.configs[i];
        char name[OC_SHA256_HEX_LEN + 8];
        snprintf(name, sizeof name, "%s.json", hex);
        char *path = oc_store_path(v->s, name);
        oc_error err;
        oc_error_clear(&err);
        size_t len = 0;
        char *body = path ? oc_read_file(path, OC_IMAGE_CONFIG_MAX, &len, &err) : NULL;
        free(path);
        v->out.st->configs++;
        if (!body) {
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "%s",
                          err.code ? err.msg : "out of memory");
            continue;
        }
        v->out.st->bytes_hashed += len;
        char got[OC_SHA256_HEX_LEN + 1];
        oc_sha256_buf_hex(body, len, got);
        oc_blob_mark m;
        int marked = oc_store_mark_read(v->s, hex, &m, &err);
        if (marked < 0)
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "%s", err.msg);
        else if (marked == 1 && m.is_layer)
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "its marker says it is a layer");
        if (strcmp(got, hex) != 0) {
            if (marked == 1)
                oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "hashes to sha256:%s", got);
            else
                oc_verify_say(&v->out, OC_VERIFY_NOTE, name,
                              "does not hash to its name and has no marker: a re-serialised copy "
                              "(occystrap 0.2.0); its digest cannot be checked");
        } else if (marked == 1 && m.size != len) {
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name,
                          "is %zu bytes, its marker says %" PRIu64, len, m.size);
        }
        if (oc_image_config_parse(&v->configs[i], body, len, &err) != 0)
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "not a usable image config: %s",
                          err.msg);
        else
            v->config_ok[i] = 1;
        free(body);
    }
}

/* Give each referenced layer the diff_id its image's config lists. */
static void map_diff_ids(vctx *v)
{
    for (size_t i = 0; i < v->e.n_manifests; i++) {
        const oc_store_image *si = &v->images[i];
        if (!si->config)
            continue;
        long c = oc_store_entries_find(v->e.configs, v->e.n_configs, si->config_hex);
        if (c < 0 || !v->config_ok[c])
            continue;
        const oc_image_config *cfg = &v->configs[c];
        if (cfg->n_diff_ids != si->n_layers) {
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, v->e.manifests[i],
                          "lists %zu layers, its config %s lists %zu diff_ids", si->n_layers,
                          si->config, cfg->n_diff_ids);
            continue;
        }
        for (size_t l = 0; l < si->n_layers; l++) {
            long k = oc_store_entries_find(v->e.layers, v->e.n_layers, si->layer_hex[l]);
            if (k < 0)
                continue;
            if (!v->expect[k]) {
                v->expect[k] = cfg->diff_ids[l];
                v->expect_by[k] = v->e.manifests[i];
            } else if (strcmp(v->expect[k], cfg->diff_ids[l]) != 0) {
                oc_verify_say(&v->out, OC_VERIFY_DAMAGED, v->e.manifests[i],
                              "layer %s has diff_id %s here and %s in %s", si->layer_hex[l],
                              cfg->diff_ids[l], v->expect[k], v->expect_by[k]);
            }
        }
    }
}

static void check_layer(vctx *v, size_t k)
{
    const char *hex = v->e.layers[k];
    char name[OC_SHA256_HEX_LEN + 16];
    snprintf(name, sizeof name, "%s/layer.tar", hex);
    oc_error err;
    oc_error_clear(&err);
    oc_blob_mark m;
    int marked = oc_store_mark_read(v->s, hex, &m, &err);
    if (marked < 0) {
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "%s", err.msg);
    } else if (marked == 1 && !m.is_layer) {
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "its marker says it is a config");
        marked = 0;
    }
    char *path = oc_store_path(v->s, name);
    struct stat st;
    if (!path || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (v->referenced[k] || marked == 1)
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "missing");
        else
            oc_verify_say(&v->out, OC_VERIFY_NOTE, hex, "a layer directory without layer.tar");
        free(path);
        return;
    }
    v->out.st->layers++;
    const char *want = marked == 1 ? m.diff_id : v->expect[k];
    if (marked == 1 && v->expect[k] && strcmp(m.diff_id, v->expect[k]) != 0)
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "its marker says diff_id %s, %s says %s",
                      m.diff_id, v->expect_by[k], v->expect[k]);
    if (marked == 1 && (uint64_t)st.st_size != m.tar_size)
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name,
                      "is %" PRIu64 " bytes, its marker says %" PRIu64, (uint64_t)st.st_size,
                      m.tar_size);
    if (!want) {
        oc_verify_say(&v->out, OC_VERIFY_NOTE, name,
                      "no image uses it and it has no marker: cannot be checked (gc removes it)");
        free(path);
        return;
    }
    char got[OC_SHA256_HEX_LEN + 1];
    uint64_t size = 0;
    if (oc_sha256_file_hex(path, got, &size, &err) != 0) {
        oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name, "%s", err.msg);
    } else {
        v->out.st->bytes_hashed += size;
        if (strncmp(want, "sha256:", 7) != 0 || strcmp(want + 7, got) != 0)
            oc_verify_say(&v->out, OC_VERIFY_DAMAGED, name,
                          "hashes to sha256:%s, its diff_id is %s", got, want);
    }
    free(path);
}

static void check_marks(vctx *v)
{
    for (size_t i = 0; i < v->e.n_marks; i++) {
        const char *hex = v->e.marks[i];
        v->out.st->markers++;
        if (oc_store_entries_find(v->e.layers, v->e.n_layers, hex) >= 0 ||
            oc_store_entries_find(v->e.configs, v->e.n_configs, hex) >= 0)
            continue; /* read and judged with its blob */
        char name[OC_SHA256_HEX_LEN + 32];
        snprintf(name, sizeof name, ".occystrap/blobs/%s.json", hex);
        oc_verify_say(&v->out, OC_VERIFY_NOTE, name, "a marker whose blob is gone (gc removes it)");
    }
}

int oc_store_verify(const oc_store *s, oc_verify_cb report, void *opaque, oc_verify_stats *stats,
                    oc_error *err)
{
    oc_verify_stats local = {0};
    vctx v = {.s = s, .out = {report, opaque, stats ? stats : &local}};
    memset(v.out.st, 0, sizeof *v.out.st);
    if (oc_store_entries_read(s, &v.e, err) != 0)
        return -1;
    int rc = -1;
    oc_catalog *listed = NULL;
    v.images = calloc(v.e.n_manifests + 1, sizeof *v.images);
    v.configs = calloc(v.e.n_configs + 1, sizeof *v.configs);
    v.config_ok = calloc(v.e.n_configs + 1, sizeof *v.config_ok);
    v.expect = calloc(v.e.n_layers + 1, sizeof *v.expect);
    v.expect_by = calloc(v.e.n_layers + 1, sizeof *v.expect_by);
    v.referenced = calloc(v.e.n_layers + 1, sizeof *v.referenced);
    v.listed = calloc(v.e.n_manifests + 1, sizeof *v.listed);
    if (!v.images || !v.configs || !v.config_ok || !v.expect || !v.expect_by || !v.referenced ||
        !v.listed) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    check_catalog(&v, &listed);
    check_manifests(&v, listed);
    check_configs(&v);
    map_diff_ids(&v);
    for (size_t k = 0; k < v.e.n_layers; k++)
        check_layer(&v, k);
    check_marks(&v);
    rc = 0;
out:
    oc_catalog_free(listed);
    for (size_t i = 0; v.images && i < v.e.n_manifests; i++)
        oc_store_image_free(&v.images[i]);
    for (size_t i = 0; v.configs && i < v.e.n_configs; i++)
        oc_image_config_free(&v.configs[i]);
    free(v.images);
    free(v.configs);
    free(v.config_ok);
    free(v.expect);
    free(v.expect_by);
    free(v.referenced);
    free(v.listed);
    oc_store_entries_free(&v.e);
    return rc;
}

/* "<64 hex>/layer.tar" or "<64 hex>.json": the hex part into hex. */
static int blob_name(const char *file, char hex[OC_SHA256_HEX_LEN + 1], int *is_layer)
{
    for (int i = 0; i < OC_SHA256_HEX_LEN; i++)
        if (!((file[i] >= '0' && file[i] <= '9') || (file[i] >= 'a' && file[i] <= 'f')))
            return 0;
    const char *rest = file + OC_SHA256_HEX_LEN;
    if (strcmp(rest, "/layer.tar") == 0)
        *is_layer = 1;
    else if (strcmp(rest, ".json") == 0)
        *is_layer = 0;
    else
        return 0;
    memcpy(hex, file, OC_SHA256_HEX_LEN);
    hex[OC_SHA256_HEX_LEN] = '\0';
    return 1;
}

int oc_store_drop_blob(oc_store *s, const char *file, oc_error *err)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    int is_layer = 0;
    if (!blob_name(file, hex, &is_layer))
        return 0;
    char *mark = oc_store_mark_path(s, hex);
    char *marks_dir = oc_store_path(s, ".occystrap/blobs");
    char *path = oc_store_path(s, file);
    char *dir = is_layer ? oc_store_path(s, hex) : strdup(oc_store_dir(s));
    int rc = -1;
    if (!mark || !marks_dir || !path || !dir)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    else if (oc_unlink_durably(mark, marks_dir, err) == 0 && oc_unlink_durably(path, dir, err) == 0)
        rc = 1;
    free(mark);
    free(marks_dir);
    free(path);
    free(dir);
    return rc;
}
