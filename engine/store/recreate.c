/* recreate.c - docker-load tarballs from a store (see recreate.h). */
#include "engine/store/recreate.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "io/atomicfile.h"

typedef struct rimg {
    oc_store_image si;
    const char *image;
    const char *tag;
    uint64_t *layer_size; /* per layer: the marker's tar_size, or UINT64_MAX */
    json_t *entry;        /* its manifest.json entry (borrowed from the list) */
} rimg;

typedef struct job {
    const oc_store *s;
    rimg *imgs;
    size_t n;
    const char **written; /* member names already in the tarball */
    size_t n_written;
} job;

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

static int check_file(const oc_store *s, const char *name, const char *what, const rimg *r,
                      oc_error *err)
{
    char *path = oc_store_path(s, name);
    if (!path)
        return oom(err);
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0) {
        int e = errno;
        oc_error_errno(err, e, "%s:%s: %s %s", r->image, r->tag, what, path);
        if (err && e == ENOENT)
            err->code = OC_E_NOTFOUND;
        rc = -1;
    } else if (!S_ISREG(st.st_mode)) {
        oc_error_set(err, OC_E_FORMAT, "%s:%s: %s %s is not a regular file", r->image, r->tag, what,
                     path);
        rc = -1;
    }
    free(path);
    return rc;
}

/* Find every image and check its files before anything is written. */
static int locate(job *j, const oc_recreate_item *items, size_t n_items, oc_error *err)
{
    for (size_t i = 0; i < n_items; i++) {
        int dup = 0;
        for (size_t k = 0; k < j->n; k++)
            if (!strcmp(j->imgs[k].image, items[i].image) && !strcmp(j->imgs[k].tag, items[i].tag))
                dup = 1;
        if (dup)
            continue;
        rimg *r = &j->imgs[j->n];
        r->image = items[i].image;
        r->tag = items[i].tag;
        if (oc_store_find(j->s, r->image, r->tag, &r->si, NULL, err) != 0)
            return -1;
        j->n++;
        if (check_file(j->s, r->si.config, "config", r, err) != 0)
            return -1;
        r->layer_size = calloc(r->si.n_layers ? r->si.n_layers : 1, sizeof *r->layer_size);
        if (!r->layer_size)
            return oom(err);
        for (size_t l = 0; l < r->si.n_layers; l++) {
            if (check_file(j->s, r->si.layers[l], "layer", r, err) != 0)
                return -1;
            oc_blob_mark m;
            oc_error ignored;
            r->layer_size[l] =
                oc_store_mark_read(j->s, r->si.layer_hex[l], &m, &ignored) == 1 && m.is_layer
                    ? m.tar_size
                    : UINT64_MAX;
        }
    }
    return 0;
}

static int same_image(const oc_store_image *a, const oc_store_image *b)
{
    if (strcmp(a->config, b->config) != 0 || a->n_layers != b->n_layers)
        return 0;
    for (size_t i = 0; i < a->n_layers; i++)
        if (strcmp(a->layers[i], b->layers[i]) != 0)
            return 0;
    return 1;
}

static int has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

static json_t *build_manifest(job *j)
{
    json_t *list = json_array();
    for (size_t k = 0; list && k < j->n; k++) {
        rimg *r = &j->imgs[k];
        for (size_t e = 0; e < k && !r->entry; e++)
            if (same_image(&j->imgs[e].si, &r->si))
                r->entry = j->imgs[e].entry;
        if (r->entry) { /* another tag of an image already listed */
            json_t *tags = json_object_get(r->entry, "RepoTags");
            for (size_t t = 0; t < r->si.n_repo_tags; t++)
                if (!has_string(tags, r->si.repo_tags[t]))
                    json_array_append_new(tags, json_string(r->si.repo_tags[t]));
            continue;
        }
        r->entry = oc_store_image_docker_entry(&r->si, (const char *const *)r->si.repo_tags,
                                               r->si.n_repo_tags);
        if (!r->entry || json_array_append_new(list, r->entry) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static int seen(job *j, const char *name)
{
    for (size_t i = 0; i < j->n_written; i++)
        if (strcmp(j->written[i], name) == 0)
            return 1;
    j->written[j->n_written++] = name;
    return 0;
}

static int add_store_file(oc_tarcopy *w, const oc_store *s, const char *name, uint64_t expect,
                          oc_error *err)
{
    char *path = oc_store_path(s, name);
    if (!path)
        return oom(err);
    int rc = oc_tarcopy_add_file(w, name, path, expect, err);
    free(path);
    return rc;
}

static int write_members(job *j, oc_tarcopy *w, const char *manifest, oc_recreate_stats *st,
                         oc_error *err)
{
    for (size_t k = 0; k < j->n; k++) {
        const rimg *r = &j->imgs[k];
        if (!seen(j, r->si.config) && add_store_file(w, j->s, r->si.config, UINT64_MAX, err) != 0)
            return -1;
        for (size_t l = 0; l < r->si.n_layers; l++) {
            if (seen(j, r->si.layers[l])) {
                st->layers_dups++;
                continue;
            }
            char dir[OC_SHA256_HEX_LEN + 2];
            snprintf(dir, sizeof dir, "%s/", r->si.layer_hex[l]);
            if (oc_tarcopy_add_dir(w, dir, err) != 0 ||
                add_store_file(w, j->s, r->si.layers[l], r->layer_size[l], err) != 0)
                return -1;
            st->layers++;
        }
    }
    return oc_tarcopy_add_buffer(w, "manifest.json", manifest, strlen(manifest), err);
}

static int write_tarball(job *j, const char *tarfile, const char *manifest,
                         const oc_recreate_opts *opts, oc_recreate_stats *st, oc_error *err)
{
    char *copy = strdup(tarfile);
    if (!copy)
        return oom(err);
    oc_atomic_file f;
    int rc = oc_atomic_open(&f, dirname(copy), tarfile, err);
    free(copy);
    if (rc != 0)
        return -1;
    oc_tarcopy *w = oc_tarcopy_open(f.fd, tarfile, err);
    if (!w) {
        oc_atomic_abort(&f);
        return -1;
    }
    if (opts && opts->force_readwrite)
        oc_tarcopy_force_readwrite(w, 1);
    if (write_members(j, w, manifest, st, err) != 0) {
        oc_tarcopy_free(w);
        oc_atomic_abort(&f);
        return -1;
    }
    oc_tarcopy_get_stats(w, &st->copy);
    if (oc_tarcopy_close(w, err) != 0 || oc_atomic_commit(&f, err) != 0) {
        oc_atomic_abort(&f);
        return -1;
    }
    st->copy.total_bytes += 1024; /* the end blocks */
    return 0;
}

int oc_recreate(const oc_store *s, const oc_recreate_item *items, size_t n_items,
                const char *tarfile, const oc_recreate_opts *opts, oc_recreate_stats *stats,
                oc_error *err)
{
    oc_recreate_stats local = {0};
    oc_recreate_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    job j = {.s = s};
    json_t *list = NULL;
    char *manifest = NULL;
    int rc = -1;
    size_t max_members = 0;
    if (n_items == 0) {
        oc_error_set(err, OC_E_USAGE, "no image to write into %s", tarfile);
        return -1;
    }
    j.imgs = calloc(n_items, sizeof *j.imgs);
    if (!j.imgs) {
        oom(err);
        goto out;
    }
    if (locate(&j, items, n_items, err) != 0)
        goto out;
    for (size_t k = 0; k < j.n; k++)
        max_members += 1 + j.imgs[k].si.n_layers;
    j.written = calloc(max_members, sizeof *j.written);
    list = build_manifest(&j);
    manifest = list ? json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (!j.written || !manifest) {
        oom(err);
        goto out;
    }
    st->images = json_array_size(list);
    rc = write_tarball(&j, tarfile, manifest, opts, st, err);
out:
    if (rc != 0 && err && !strstr(err->msg, oc_store_dir(s)))
        oc_error_prefix(err, "recreating %s from %s", tarfile, oc_store_dir(s));
    else if (rc != 0)
        oc_error_prefix(err, "recreating %s", tarfile);
    for (size_t k = 0; k < j.n; k++) {
        oc_store_image_free(&j.imgs[k].si);
        free(j.imgs[k].layer_size);
    }
    free(j.imgs);
    free(j.written);
    json_decref(list);
    free(manifest);
    return rc;
}
