/* bundle_write.c - a planned bundle written out (see bundle_write.h). */
#include "engine/bundle/bundle_write.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/store/oci_layout.h"
#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/outstream.h"

#define CHUNK ((size_t)1 << 20)
#define TAR_BLOCK 512u

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

char *oc_bundle_part_path(const char *out, unsigned k, unsigned n)
{
    char *p = NULL;
    if (n <= 1)
        return strdup(out);
    int width = 3;
    for (unsigned v = n; v >= 1000; v /= 10)
        width++;
    return asprintf(&p, "%s.%0*u", out, width, k) < 0 ? NULL : p;
}

typedef struct writer {
    const oc_store *s;
    const oc_bundle_plan *p;
    oc_outstream *os;
    unsigned char *buf;
    const char *what; /* the part, for errors */
} writer;

static int pad(writer *w, uint64_t size, oc_error *err)
{
    static const unsigned char zeros[TAR_BLOCK];
    size_t n = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
    return n ? oc_outstream_write(w->os, zeros, n, err) : 0;
}

static int header(writer *w, const char *name, uint64_t size, oc_error *err)
{
    unsigned char *hdr = NULL;
    size_t len = 0;
    if (oc_bundle_member_header(name, size, &hdr, &len, err) != 0)
        return -1;
    int rc = oc_outstream_write(w->os, hdr, len, err);
    free(hdr);
    return rc;
}

static int member_bytes(writer *w, const char *name, const void *data, size_t len, oc_error *err)
{
    if (header(w, name, len, err) != 0 || oc_outstream_write(w->os, data, len, err) != 0)
        return -1;
    return pad(w, len, err);
}

/* A file of the bundle: its bytes from the store's blob, hashed. */
static int member_file(writer *w, const oc_bundle_file *f, oc_error *err)
{
    char *path = oc_store_oci_blob_path(w->s, f->blob + 7);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    oc_sha256 *h = oc_sha256_new();
    int rc = -1;
    if (!path || !h) {
        oom(err);
        goto out;
    }
    if (fd < 0) {
        oc_error_errno(err, errno, "blob %s (%s)", f->blob, path);
        goto out;
    }
    if (header(w, f->path, f->size, err) != 0)
        goto out;
    uint64_t at = f->offset, left = f->size;
    while (left > 0) {
        size_t want = left < CHUNK ? (size_t)left : CHUNK;
        ssize_t got = pread(fd, w->buf, want, (off_t)at);
        if (got <= 0) {
            if (got < 0)
                oc_error_errno(err, errno, "read blob %s", f->blob);
            else
                oc_error_set(err, OC_E_IO,
                             "blob %s in %s is shorter than its %" PRIu64
                             " bytes (run occystrap verify)",
                             f->blob, oc_store_dir(w->s), f->blob_size);
            goto out;
        }
        oc_sha256_update(h, w->buf, (size_t)got);
        if (oc_outstream_write(w->os, w->buf, (size_t)got, err) != 0)
            goto out;
        at += (uint64_t)got;
        left -= (uint64_t)got;
    }
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_final_hex(h, hex);
    if (strcmp(hex, f->digest + 7) != 0) {
        oc_error_set(err, OC_E_DIGEST,
                     "blob %s in %s is damaged: %s hashes to sha256:%s, not %s (run occystrap "
                     "verify)",
                     f->blob, oc_store_dir(w->s), f->segment ? "a segment of it" : "it", hex,
                     f->digest);
        goto out;
    }
    rc = pad(w, f->size, err);
out:
    if (fd >= 0)
        close(fd);
    free(path);
    oc_sha256_free(h);
    return rc;
}

static int write_part(writer *w, unsigned k, oc_error *err)
{
    const oc_bundle_plan *p = w->p;
    const oc_bundle_doc *d = p->doc;
    size_t len = 0;
    char *manifest = oc_bundle_doc_text(d, k, &len, err);
    if (!manifest)
        return -1;
    int rc = member_bytes(w, OC_BUNDLE_MANIFEST_NAME, manifest, len, err);
    free(manifest);
    if (rc == 0)
        rc = member_bytes(w, OC_BUNDLE_INVENTORY_NAME, p->inventory_text, p->inventory_len, err);
    if (rc == 0)
        rc = member_bytes(w, "oci-layout", OC_STORE_OCI_LAYOUT_TEXT,
                          strlen(OC_STORE_OCI_LAYOUT_TEXT), err);
    if (rc == 0)
        rc = member_bytes(w, "index.json", p->index_text, p->index_len, err);
    for (size_t i = 0; rc == 0 && i < d->n_files; i++)
        if (d->files[i].part == k)
            rc = member_file(w, &d->files[i], err);
    static const unsigned char end[2 * TAR_BLOCK];
    if (rc == 0)
        rc = oc_outstream_write(w->os, end, sizeof end, err);
    if (rc == 0)
        rc = oc_outstream_finish(w->os, err);
    return rc;
}

static void remove_parts(char **paths, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (paths[i])
            (void)unlink(paths[i]);
}

int oc_bundle_write(const oc_store *s, const oc_bundle_plan *p, const oc_bundle_write_opts *o,
                    uint64_t *bytes, oc_error *err)
{
    unsigned n = p->doc->parts;
    int to_stdout = strcmp(o->out, "-") == 0;
    if (to_stdout && n > 1) {
        oc_error_set(err, OC_E_USAGE, "a bundle in %u parts cannot go to standard output", n);
        return -1;
    }
    writer w = {.s = s, .p = p, .buf = malloc(CHUNK)};
    char **done = calloc(n + 1, sizeof *done);
    char *dir_copy = strdup(o->out);
    uint64_t total = 0;
    int rc = -1;
    if (!w.buf || !done || !dir_copy) {
        oom(err);
        goto out;
    }
    const char *dir = dirname(dir_copy);
    for (unsigned k = 1; k <= n; k++) {
        char *path = oc_bundle_part_path(o->out, k, n);
        oc_atomic_file f = {.fd = -1};
        if (!path) {
            oom(err);
            goto fail;
        }
        if (!to_stdout && oc_atomic_open(&f, dir, path, err) != 0) {
            free(path);
            goto fail;
        }
        w.os = oc_outstream_new(to_stdout ? STDOUT_FILENO : f.fd, path, o->zstd_level, o->threads,
                                err);
        int prc = w.os ? write_part(&w, k, err) : -1;
        uint64_t out = w.os ? oc_outstream_out(w.os) : 0;
        oc_outstream_free(w.os);
        w.os = NULL;
        if (prc == 0 && o->split && out > o->split) {
            oc_error_set(err, OC_E_IO,
                         "part %u came to %" PRIu64 " bytes, over the %" PRIu64
                         " asked for (a bug: please report it)",
                         k, out, o->split);
            prc = -1;
        }
        if (prc == 0 && !to_stdout && oc_atomic_commit(&f, err) != 0)
            prc = -1;
        if (prc != 0) {
            oc_atomic_abort(&f);
            oc_error_prefix(err, "bundle part %u of %u (%s)", k, n, path);
            free(path);
            goto fail;
        }
        done[k - 1] = path;
        total += out;
        if (o->on_part)
            o->on_part(o->opaque, k, n, path, out);
    }
    if (bytes)
        *bytes = total;
    rc = 0;
    goto out;
fail:
    if (!to_stdout)
        remove_parts(done, n);
out:
    for (unsigned i = 0; done && i < n; i++)
        free(done[i]);
    free(done);
    free(dir_copy);
    free(w.buf);
    return rc;
}
