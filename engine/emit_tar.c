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

#define TAR_BLOCK 512

struct oc_tarball {
    oc_atomic_file file;
    oc_tar_writer *w;
    char *tarfile;
    int config_written;
    int streamed; /* a layer's data is in place at base */
    char streamed_hex[OC_SHA256_HEX_LEN + 1];
    uint64_t base; /* where its data starts */
};

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

oc_tarball *oc_tarball_open(const char *tarfile, oc_error *err)
{
    oc_tarball *tb = calloc(1, sizeof *tb);
    char *copy = strdup(tarfile);
    if (!tb || !copy || !(tb->tarfile = strdup(tarfile))) {
        free(copy);
        free(tb);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    tb->file.fd = -1;
    int rc = oc_atomic_open(&tb->file, dirname(copy), tarfile, err);
    free(copy);
    if (rc != 0) {
        free(tb->tarfile);
        free(tb);
        return NULL;
    }
    tb->w = oc_tar_writer_open_fd(tb->file.fd, tarfile, err);
    if (!tb->w) {
        oc_tarball_abort(tb);
        return NULL;
    }
    return tb;
}

static int write_config(oc_tarball *tb, const oc_pulled_image *img, oc_error *err)
{
    if (tb->config_written)
        return 0;
    char name[OC_SHA256_HEX_LEN + 16];
    snprintf(name, sizeof name, "%s.json", img->config_hex);
    if (oc_tar_add_buffer(tb->w, name, img->config_body, img->config_len, err) != 0)
        return -1;
    tb->config_written = 1;
    return 0;
}

static int add_layer_dir(oc_tarball *tb, const char *hex, oc_error *err)
{
    char dir[OC_SHA256_HEX_LEN + 2];
    snprintf(dir, sizeof dir, "%s/", hex);
    return oc_tar_add_dir(tb->w, dir, err);
}

int oc_tarball_layer_output(void *opaque, const oc_pulled_image *img, size_t index, int *fd,
                            uint64_t *base, oc_error *err)
{
    oc_tarball *tb = opaque;
    if (index != 0 || tb->streamed)
        return 0;
    if (write_config(tb, img, err) != 0 || add_layer_dir(tb, img->layers[0].hex, err) != 0)
        return -1;
    off_t at = lseek(tb->file.fd, 0, SEEK_CUR);
    if (at < 0) {
        oc_error_errno(err, errno, "%s", tb->tarfile);
        return -1;
    }
    tb->streamed = 1;
    tb->base = (uint64_t)at + TAR_BLOCK; /* the layer's header goes in between, at the end */
    memcpy(tb->streamed_hex, img->layers[0].hex, sizeof tb->streamed_hex);
    *fd = tb->file.fd;
    *base = tb->base;
    return 1;
}

/* The streamed layer's header and padding, then the writer continues after
 * it. A header longer than one block (a layer of 8 GiB or more needs a pax
 * header) does not fit the reserved block: the data then moves out to a
 * temporary file and is added the ordinary way. */
static int close_streamed(oc_tarball *tb, const oc_pulled_layer *l, const char *name, oc_error *err)
{
    unsigned char *hdr = NULL;
    size_t hlen = 0;
    if (oc_tar_file_header(name, l->tar_size, &hdr, &hlen, err) != 0)
        return -1;
    int fd = tb->file.fd;
    int rc = -1;
    if (hlen == TAR_BLOCK) {
        static const unsigned char zeros[TAR_BLOCK];
        size_t pad = (size_t)((TAR_BLOCK - l->tar_size % TAR_BLOCK) % TAR_BLOCK);
        uint64_t end = tb->base + l->tar_size + pad;
        if (oc_pwrite_all(fd, hdr, hlen, tb->base - TAR_BLOCK, tb->tarfile, err) == 0 &&
            oc_pwrite_all(fd, zeros, pad, tb->base + l->tar_size, tb->tarfile, err) == 0 &&
            ftruncate(fd, (off_t)end) == 0 && lseek(fd, (off_t)end, SEEK_SET) == (off_t)end)
            rc = 0;
        else if (err->code == OC_OK)
            oc_error_errno(err, errno, "%s", tb->tarfile);
        free(hdr);
        return rc;
    }
    free(hdr);
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.layer-XXXXXX", tb->file.tmp_path) < 0) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    int out = mkostemp(tmp, O_CLOEXEC);
    loff_t from = (loff_t)tb->base;
    uint64_t left = l->tar_size;
    while (out >= 0 && left > 0) {
        ssize_t n = copy_file_range(fd, &from, out, NULL, left, 0);
        if (n <= 0)
            break;
        left -= (uint64_t)n;
    }
    if (out >= 0 && left == 0 && ftruncate(fd, (off_t)(tb->base - TAR_BLOCK)) == 0 &&
        lseek(fd, (off_t)(tb->base - TAR_BLOCK), SEEK_SET) >= 0)
        rc = oc_tar_add_file(tb->w, name, tmp, err);
    else
        oc_error_errno(err, errno, "%s: moving a large streamed layer", tb->tarfile);
    if (out >= 0)
        close(out);
    unlink(tmp);
    free(tmp);
    return rc;
}

static int write_members(oc_tarball *tb, const oc_pulled_image *img, const char *repo_tag,
                         oc_error *err)
{
    if (write_config(tb, img, err) != 0)
        return -1;
    for (size_t i = 0; i < img->n_layers; i++) {
        const oc_pulled_layer *l = &img->layers[i];
        if (already_written(img, i))
            continue;
        char member[OC_SHA256_HEX_LEN + 16];
        snprintf(member, sizeof member, "%s/layer.tar", l->hex);
        if (tb->streamed && strcmp(l->hex, tb->streamed_hex) == 0) {
            if (close_streamed(tb, l, member, err) != 0)
                return -1;
            continue;
        }
        if (add_layer_dir(tb, l->hex, err) != 0 ||
            oc_tar_add_file(tb->w, member, l->path, err) != 0)
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
    int rc = oc_tar_add_buffer(tb->w, "manifest.json", text, strlen(text), err);
    free(text);
    return rc;
}

int oc_tarball_finish(oc_tarball *tb, const oc_pulled_image *img, const char *repo_tag,
                      oc_error *err)
{
    int rc = write_members(tb, img, repo_tag, err);
    if (rc == 0) {
        rc = oc_tar_writer_close(tb->w, err); /* frees the writer either way */
        tb->w = NULL;
    }
    if (rc != 0) {
        oc_error_prefix(err, "writing %s", tb->tarfile);
        oc_tarball_abort(tb);
        return -1;
    }
    if (oc_atomic_commit(&tb->file, err) != 0) {
        oc_error_prefix(err, "writing %s", tb->tarfile);
        oc_tarball_abort(tb);
        return -1;
    }
    oc_atomic_abort(&tb->file); /* frees the names; the file is in place */
    free(tb->tarfile);
    free(tb);
    return 0;
}

void oc_tarball_abort(oc_tarball *tb)
{
    if (!tb)
        return;
    oc_tar_writer_free(tb->w);
    oc_atomic_abort(&tb->file);
    free(tb->tarfile);
    free(tb);
}

int oc_emit_tarball(const oc_pulled_image *img, const char *repo_tag, const char *tarfile,
                    oc_error *err)
{
    oc_tarball *tb = oc_tarball_open(tarfile, err);
    return tb ? oc_tarball_finish(tb, img, repo_tag, err) : -1;
}
