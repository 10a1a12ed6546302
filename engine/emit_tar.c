/* emit_tar.c - write a pulled image as a docker-load tarball (see
 * emit_tar.h).
 *
 * Layers are placed in manifest order at the tarball's end (the tail) as
 * soon as they can be: the next layer to place streams there while it
 * downloads (its member header reserved, written when its size is known),
 * or, when it verified before its turn, its file is copied there. The
 * bytes of a copied layer go to the disk directly (io/outfile.h), like
 * those the pipeline streams, so the final fsync finds little to write.
 * The tarball's own small writes (config, directory entries, headers,
 * manifest.json, the end blocks) go through libarchive on the same fd,
 * whose file offset is kept at the tail. */
#include "engine/emit_tar.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomicfile.h"
#include "io/outfile.h"
#include "io/tarwrite.h"

#define TAR_BLOCK 512
#define COPY_CHUNK ((size_t)1 << 20)

struct oc_tarball {
    oc_atomic_file file;
    oc_tar_writer *w;
    char *tarfile;
    oc_write_mode mode;
    int config_written;
    /* placing layers in manifest order */
    size_t n;        /* layers in the manifest (0 until the first call) */
    size_t next;     /* index of the next layer to place */
    int streaming;   /* layer next streams at base */
    uint64_t base;   /* where its data starts (its header is the block before) */
    char **paths;    /* per index: the verified file, until placed */
    uint64_t *sizes; /* per index: the verified tar size */
    unsigned char *verified;
    int failed; /* placing failed: err says why, finish reports it */
    oc_error err;
    oc_outfile out; /* layer data copied in */
    int out_ready;
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

oc_tarball *oc_tarball_open(const char *tarfile, oc_write_mode mode, oc_error *err)
{
    oc_tarball *tb = calloc(1, sizeof *tb);
    char *copy = strdup(tarfile);
    if (!tb || !copy || !(tb->tarfile = strdup(tarfile))) {
        free(copy);
        free(tb);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    tb->mode = mode;
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

static int tail(oc_tarball *tb, uint64_t *at, oc_error *err)
{
    off_t pos = lseek(tb->file.fd, 0, SEEK_CUR);
    if (pos < 0) {
        oc_error_errno(err, errno, "%s", tb->tarfile);
        return -1;
    }
    *at = (uint64_t)pos;
    return 0;
}

/* The writer continues at end (past a member placed by hand). */
static int move_tail(oc_tarball *tb, uint64_t end, oc_error *err)
{
    if (lseek(tb->file.fd, (off_t)end, SEEK_SET) != (off_t)end) {
        oc_error_errno(err, errno, "%s", tb->tarfile);
        return -1;
    }
    return 0;
}

/* The layer file at path (size bytes) into the tarball at at. */
static int copy_in(oc_tarball *tb, const char *path, uint64_t size, uint64_t at, oc_error *err)
{
    if (!tb->out_ready) {
        oc_outfile_init(&tb->out, tb->file.fd, tb->mode, OC_OUTFILE_DURABLE);
        tb->out_ready = 1;
    }
    int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        oc_error_errno(err, errno, "open %s", path);
        return -1;
    }
    (void)posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL);
    void *buf = NULL;
    if (posix_memalign(&buf, OC_OUTFILE_ALIGN, COPY_CHUNK) != 0) {
        close(src);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    int rc = 0;
    for (uint64_t off = 0; off < size;) {
        size_t want = size - off < COPY_CHUNK ? (size_t)(size - off) : COPY_CHUNK;
        ssize_t got = pread(src, buf, want, (off_t)off);
        if (got <= 0) {
            if (got == 0)
                oc_error_set(err, OC_E_IO, "%s is shorter than its %llu bytes", path,
                             (unsigned long long)size);
            else
                oc_error_errno(err, errno, "read %s", path);
            rc = -1;
            break;
        }
        if (oc_outfile_pwrite(&tb->out, buf, (size_t)got, at + off, tb->tarfile, err) != 0) {
            rc = -1;
            break;
        }
        off += (uint64_t)got;
    }
    free(buf);
    close(src);
    return rc;
}

/* The member header and padding of a layer whose data is at base, size
 * bytes; the writer continues after it. A header longer than the block
 * reserved for it (a layer of 8 GiB or more needs a pax header) does not
 * fit: the data then moves out to a temporary file and is added the
 * ordinary way. */
static int close_member(oc_tarball *tb, uint64_t base, uint64_t size, const char *name,
                        oc_error *err)
{
    unsigned char *hdr = NULL;
    size_t hlen = 0;
    if (oc_tar_file_header(name, size, &hdr, &hlen, err) != 0)
        return -1;
    int fd = tb->file.fd;
    int rc = -1;
    if (hlen == TAR_BLOCK) {
        static const unsigned char zeros[TAR_BLOCK];
        size_t pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
        uint64_t end = base + size + pad;
        if (oc_pwrite_all(fd, hdr, hlen, base - TAR_BLOCK, tb->tarfile, err) == 0 &&
            oc_pwrite_all(fd, zeros, pad, base + size, tb->tarfile, err) == 0 &&
            ftruncate(fd, (off_t)end) == 0 && move_tail(tb, end, err) == 0)
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
    loff_t from = (loff_t)base;
    uint64_t left = size;
    while (out >= 0 && left > 0) {
        ssize_t n = copy_file_range(fd, &from, out, NULL, left, 0);
        if (n <= 0)
            break;
        left -= (uint64_t)n;
    }
    if (out >= 0 && left == 0 && ftruncate(fd, (off_t)(base - TAR_BLOCK)) == 0 &&
        move_tail(tb, base - TAR_BLOCK, err) == 0)
        rc = oc_tar_add_file(tb->w, name, tmp, err);
    else
        oc_error_errno(err, errno, "%s: moving a large streamed layer", tb->tarfile);
    if (out >= 0)
        close(out);
    unlink(tmp);
    free(tmp);
    return rc;
}

/* A verified layer file, placed whole at the tail: its directory entry,
 * header, data (copied) and padding. */
static int place_file(oc_tarball *tb, const char *hex, const char *path, uint64_t size,
                      oc_error *err)
{
    char name[OC_SHA256_HEX_LEN + 16];
    snprintf(name, sizeof name, "%s/layer.tar", hex);
    unsigned char *hdr = NULL;
    size_t hlen = 0;
    uint64_t at;
    if (add_layer_dir(tb, hex, err) != 0 || tail(tb, &at, err) != 0 ||
        oc_tar_file_header(name, size, &hdr, &hlen, err) != 0)
        return -1;
    static const unsigned char zeros[TAR_BLOCK];
    size_t pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
    uint64_t end = at + hlen + size + pad;
    int rc =
        oc_pwrite_all(tb->file.fd, hdr, hlen, at, tb->tarfile, err) == 0 &&
                copy_in(tb, path, size, at + hlen, err) == 0 &&
                oc_pwrite_all(tb->file.fd, zeros, pad, at + hlen + size, tb->tarfile, err) == 0 &&
                ftruncate(tb->file.fd, (off_t)end) == 0 && move_tail(tb, end, err) == 0
            ? 0
            : -1;
    if (rc != 0 && err->code == OC_OK)
        oc_error_errno(err, errno, "%s", tb->tarfile);
    free(hdr);
    return rc;
}

static int ensure_layers(oc_tarball *tb, const oc_pulled_image *img, oc_error *err)
{
    if (tb->n || img->n_layers == 0)
        return 0;
    size_t n = img->n_layers;
    tb->paths = calloc(n, sizeof *tb->paths);
    tb->sizes = calloc(n, sizeof *tb->sizes);
    tb->verified = calloc(n, 1);
    if (!tb->paths || !tb->sizes || !tb->verified) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    tb->n = n;
    return 0;
}

/* Place every layer that can be placed now, in manifest order: the one
 * streaming at the tail once it verified, then those that verified before
 * their turn. Stops at a layer still being fetched (it is offered the tail
 * through oc_tarball_layer_output). */
static int advance(oc_tarball *tb, const oc_pulled_image *img, oc_error *err)
{
    while (tb->next < tb->n) {
        size_t i = tb->next;
        if (already_written(img, i)) {
            tb->next++;
            continue;
        }
        if (!tb->verified[i])
            return 0;
        char name[OC_SHA256_HEX_LEN + 16];
        snprintf(name, sizeof name, "%s/layer.tar", img->layers[i].hex);
        if (tb->streaming) {
            /* its data is at base: streamed there, or verified before it
             * could move there (then it is copied now) */
            if (tb->paths[i] && copy_in(tb, tb->paths[i], tb->sizes[i], tb->base, err) != 0)
                return -1;
            if (close_member(tb, tb->base, tb->sizes[i], name, err) != 0)
                return -1;
            tb->streaming = 0;
        } else if (tb->paths[i]) {
            if (place_file(tb, img->layers[i].hex, tb->paths[i], tb->sizes[i], err) != 0)
                return -1;
        } else {
            oc_error_set(err, OC_E_USAGE, "%s: layer %s verified without a file", tb->tarfile,
                         img->layers[i].digest);
            return -1;
        }
        free(tb->paths[i]);
        tb->paths[i] = NULL;
        tb->next++;
    }
    return 0;
}

int oc_tarball_layer_output(void *opaque, const oc_pulled_image *img, size_t index, int *fd,
                            uint64_t *base, oc_error *err)
{
    oc_tarball *tb = opaque;
    if (tb->failed || ensure_layers(tb, img, err) != 0)
        return tb->failed ? 0 : -1;
    while (tb->next < tb->n && already_written(img, tb->next))
        tb->next++;
    if (tb->streaming || index != tb->next || index >= tb->n || tb->verified[index])
        return 0;
    uint64_t at;
    if (write_config(tb, img, err) != 0 || add_layer_dir(tb, img->layers[index].hex, err) != 0 ||
        tail(tb, &at, err) != 0)
        return -1;
    tb->streaming = 1;
    tb->base = at + TAR_BLOCK; /* the layer's header goes in between, at the end */
    *fd = tb->file.fd;
    *base = tb->base;
    return 1;
}

void oc_tarball_layer_verified(void *opaque, const oc_pulled_image *img, size_t index,
                               const char *path, uint64_t tar_size)
{
    oc_tarball *tb = opaque;
    if (tb->failed)
        return;
    oc_error *err = &tb->err;
    if (ensure_layers(tb, img, err) != 0 || index >= tb->n) {
        tb->failed = 1;
        return;
    }
    tb->verified[index] = 1;
    tb->sizes[index] = tar_size;
    if (path && !(tb->paths[index] = strdup(path))) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        tb->failed = 1;
        return;
    }
    if (write_config(tb, img, err) != 0 || advance(tb, img, err) != 0)
        tb->failed = 1;
}

static int write_members(oc_tarball *tb, const oc_pulled_image *img, const char *repo_tag,
                         oc_error *err)
{
    if (tb->failed) {
        *err = tb->err;
        return -1;
    }
    if (write_config(tb, img, err) != 0)
        return -1;
    /* what the hooks have not placed (a caller without them): in order */
    if (ensure_layers(tb, img, err) != 0)
        return -1;
    for (size_t i = tb->next; i < img->n_layers; i++) {
        const oc_pulled_layer *l = &img->layers[i];
        if (!tb->verified[i] && !already_written(img, i)) {
            tb->verified[i] = 1;
            tb->sizes[i] = l->tar_size;
            if (l->path && !(tb->paths[i] = strdup(l->path))) {
                oc_error_set(err, OC_E_NOMEM, "out of memory");
                return -1;
            }
        }
    }
    if (advance(tb, img, err) != 0)
        return -1;
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

static void tarball_free(oc_tarball *tb)
{
    for (size_t i = 0; i < tb->n; i++)
        free(tb->paths[i]);
    free(tb->paths);
    free(tb->sizes);
    free(tb->verified);
    if (tb->out_ready)
        oc_outfile_close(&tb->out);
    free(tb->tarfile);
    free(tb);
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
    tarball_free(tb);
    return 0;
}

void oc_tarball_abort(oc_tarball *tb)
{
    if (!tb)
        return;
    oc_tar_writer_free(tb->w);
    oc_atomic_abort(&tb->file);
    tarball_free(tb);
}

int oc_emit_tarball(const oc_pulled_image *img, const char *repo_tag, const char *tarfile,
                    oc_error *err)
{
    oc_tarball *tb = oc_tarball_open(tarfile, OC_WRITE_AUTO, err);
    return tb ? oc_tarball_finish(tb, img, repo_tag, err) : -1;
}
