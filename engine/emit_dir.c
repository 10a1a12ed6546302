/* emit_dir.c - a pulled image as files in a directory (see emit_dir.h). */
#include "engine/emit_dir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/emit_tar.h"
#include "io/atomicfile.h"

#define CATALOG_MAX (64u * 1024 * 1024)

char *oc_emit_dir_workdir(const char *dir, oc_error *err)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s/.tmp", dir) < 0) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    if (oc_mkdirs(tmp, err) != 0) {
        free(tmp);
        return NULL;
    }
    return tmp;
}

char *oc_emit_manifest_filename(const char *image, const char *tag)
{
    char *name = NULL;
    if (asprintf(&name, "manifest-%s-%s.json", image, tag) < 0)
        return NULL;
    for (char *p = name + strlen("manifest-"); *p; p++)
        if (*p == '/')
            *p = '_';
    return name;
}

static int write_json(const char *tmp, const char *path, json_t *doc, oc_error *err)
{
    char *text = json_dumps(doc, JSON_INDENT(4) | JSON_SORT_KEYS);
    if (!text) {
        oc_error_set(err, OC_E_NOMEM, "out of memory serialising %s", path);
        return -1;
    }
    size_t len = strlen(text);
    char *with_nl = realloc(text, len + 2);
    if (!with_nl) {
        free(text);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    with_nl[len] = '\n';
    with_nl[len + 1] = '\0';
    int rc = oc_atomic_write_file(tmp, path, with_nl, len + 1, err);
    free(with_nl);
    return rc;
}

static int place_layer(oc_pulled_image *img, size_t i, const char *dir, oc_error *err)
{
    oc_pulled_layer *l = &img->layers[i];
    char *ldir = NULL, *final = NULL;
    int rc = -1;
    if (asprintf(&ldir, "%s/%s", dir, l->hex) < 0 || asprintf(&final, "%s/layer.tar", ldir) < 0) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    if (!l->path || l->reused) { /* moved by an earlier occurrence, or already in place */
        rc = 0;
        goto out;
    }
    if (oc_mkdirs(ldir, err) != 0)
        goto out;
    if (rename(l->path, final) != 0) {
        oc_error_errno(err, errno, "cannot move layer into %s", final);
        goto out;
    }
    if (oc_fsync_dir(ldir, err) != 0)
        goto out;
    const char *moved = l->path;
    for (size_t k = 0; k < img->n_layers; k++)
        if (img->layers[k].path == moved)
            img->layers[k].path = NULL;
    rc = 0;
out:
    free(ldir);
    free(final);
    return rc;
}

static int merge_catalog(const char *dir, const char *tmp, const char *image, const char *tag,
                         const char *manifest_name, oc_error *err)
{
    char *path = NULL;
    if (asprintf(&path, "%s/catalog.json", dir) < 0) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    json_t *catalog = NULL;
    struct stat st;
    if (stat(path, &st) == 0) {
        size_t len = 0;
        char *text = oc_read_file(path, CATALOG_MAX, &len, err);
        if (!text) {
            free(path);
            return -1;
        }
        json_error_t jerr;
        catalog = json_loadb(text, len, 0, &jerr);
        free(text);
        if (!json_is_object(catalog)) {
            oc_error_set(err, OC_E_FORMAT, "%s is not a JSON object: %s", path,
                         catalog ? "wrong type" : jerr.text);
            json_decref(catalog);
            free(path);
            return -1;
        }
    } else {
        catalog = json_object();
    }
    json_t *tags = json_object_get(catalog, image);
    if (!json_is_object(tags)) {
        tags = json_object();
        json_object_set_new(catalog, image, tags);
    }
    json_object_set_new(tags, tag, json_string(manifest_name));
    int rc = write_json(tmp, path, catalog, err);
    json_decref(catalog);
    free(path);
    return rc;
}

int oc_emit_dir(oc_pulled_image *img, const char *dir, const char *image, const char *tag,
                const char *repo_tag, int unique_names, oc_error *err)
{
    char *tmp = oc_emit_dir_workdir(dir, err);
    char *config_path = NULL, *manifest_name = NULL, *manifest_path = NULL;
    json_t *doc = NULL;
    int rc = -1;
    if (!tmp)
        return -1;
    for (size_t i = 0; i < img->n_layers; i++)
        if (place_layer(img, i, dir, err) != 0)
            goto out;
    if (asprintf(&config_path, "%s/%s.json", dir, img->config_hex) < 0)
        goto oom;
    if (oc_atomic_write_file(tmp, config_path, img->config_body, img->config_len, err) != 0)
        goto out;
    manifest_name = unique_names ? oc_emit_manifest_filename(image, tag) : strdup("manifest.json");
    if (!manifest_name || asprintf(&manifest_path, "%s/%s", dir, manifest_name) < 0)
        goto oom;
    json_t *entry = oc_emit_manifest_entry(img, repo_tag);
    if (unique_names)
        json_object_set_new(entry, "ImageName", json_string(image));
    doc = json_array();
    json_array_append_new(doc, entry);
    if (write_json(tmp, manifest_path, doc, err) != 0)
        goto out;
    if (merge_catalog(dir, tmp, image, tag, manifest_name, err) != 0)
        goto out;
    rc = 0;
    goto out;
oom:
    oc_error_set(err, OC_E_NOMEM, "out of memory");
out:
    if (rc != 0)
        oc_error_prefix(err, "writing into %s", dir);
    json_decref(doc);
    free(tmp);
    free(config_path);
    free(manifest_name);
    free(manifest_path);
    return rc;
}
