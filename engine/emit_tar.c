/* emit_tar.c - write a pulled image as a docker-load tarball (see
 * emit_tar.h). */
#include "engine/emit_tar.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomicfile.h"
#include "io/tarwrite.h"

json_t *oc_emit_manifest_entry(const oc_pulled_image *img, const char *repo_tag)
{
    json_t *entry = json_object();
    json_t *layers = json_array();
    json_t *tags = json_array();
    char name[OC_SHA256_HEX_LEN + 16];
    snprintf(name, sizeof name, "%s.json", img->config_hex);
    json_object_set_new(entry, "Config", json_string(name));
    if (repo_tag)
        json_array_append_new(tags, json_string(repo_tag));
    json_object_set_new(entry, "RepoTags", tags);
    for (size_t i = 0; i < img->n_layers; i++) {
        char lname[OC_SHA256_HEX_LEN + 16];
        snprintf(lname, sizeof lname, "%s/layer.tar", img->layers[i].hex);
        json_array_append_new(layers, json_string(lname));
    }
    json_object_set_new(entry, "Layers", layers);
    return entry;
}

static int already_written(const oc_pulled_image *img, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (strcmp(img->layers[k].hex, img->layers[i].hex) == 0)
            return 1;
    return 0;
}

static int write_members(oc_tar_writer *w, const oc_pulled_image *img, const char *repo_tag,
                         oc_error *err)
{
    char name[OC_SHA256_HEX_LEN + 16];
    snprintf(name, sizeof name, "%s.json", img->config_hex);
    if (oc_tar_add_buffer(w, name, img->config_body, img->config_len, err) != 0)
        return -1;
    for (size_t i = 0; i < img->n_layers; i++) {
        const oc_pulled_layer *l = &img->layers[i];
        if (already_written(img, i))
            continue;
        char dir[OC_SHA256_HEX_LEN + 2];
        snprintf(dir, sizeof dir, "%s/", l->hex);
        char member[OC_SHA256_HEX_LEN + 16];
        snprintf(member, sizeof member, "%s/layer.tar", l->hex);
        if (oc_tar_add_dir(w, dir, err) != 0 || oc_tar_add_file(w, member, l->path, err) != 0)
            return -1;
    }
    json_t *list = json_array();
    json_array_append_new(list, oc_emit_manifest_entry(img, repo_tag));
    char *text = json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(list);
    if (!text) {
        oc_error_set(err, OC_E_NOMEM, "out of memory writing manifest.json");
        return -1;
    }
    int rc = oc_tar_add_buffer(w, "manifest.json", text, strlen(text), err);
    free(text);
    return rc;
}

int oc_emit_tarball(const oc_pulled_image *img, const char *repo_tag, const char *tarfile,
                    oc_error *err)
{
    char *copy = strdup(tarfile);
    if (!copy) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    const char *dir = dirname(copy);
    oc_atomic_file f;
    if (oc_atomic_open(&f, dir, tarfile, err) != 0) {
        free(copy);
        return -1;
    }
    free(copy);
    oc_tar_writer *w = oc_tar_writer_open_fd(f.fd, tarfile, err);
    if (!w) {
        oc_atomic_abort(&f);
        return -1;
    }
    if (write_members(w, img, repo_tag, err) != 0) {
        oc_tar_writer_free(w);
        oc_atomic_abort(&f);
        oc_error_prefix(err, "writing %s", tarfile);
        return -1;
    }
    if (oc_tar_writer_close(w, err) != 0 || oc_atomic_commit(&f, err) != 0) {
        oc_atomic_abort(&f);
        oc_error_prefix(err, "writing %s", tarfile);
        return -1;
    }
    return 0;
}
