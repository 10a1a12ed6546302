/* tarwrite.c - writing a POSIX tar archive with libarchive (see tarwrite.h).
 *
 * The format is "pax restricted": plain ustar headers, with a pax extended
 * header only for an entry ustar cannot express (long names). Entries are
 * deterministic: files 0644, directories 0755, uid/gid 0 without user or
 * group names, mtime 0 (the epoch), so the same inputs give the same bytes.
 * Close writes the two zero blocks that end a tar archive and nothing after
 * them (no padding to a 10 KiB record; readers do not need it).
 *
 * Blocking is off (bytes_per_block = 0): libarchive's default of 10240 would
 * cut every 1 MiB chunk of file data into 10 KiB write(2) calls; unblocked,
 * each archive_write_data call reaches the file as one write, and only
 * headers and padding are small writes.
 *
 * File members' data is written by us, not by libarchive: moved by the
 * kernel where it can (io/filecopy.h: copy_file_range, which may reflink,
 * then sendfile, then read/write). libarchive still writes the header and
 * the padding: after copying the data ourselves we let it "finish" the
 * entry, which emits zeros for the bytes it believes are missing plus the
 * padding, and the write callback swallows exactly as many zeros as we
 * copied, so only the padding reaches the file.
 *
 * libarchive writes through our own callback with oc_write_all, so a failed
 * write keeps its errno (ENOSPC -> OC_E_NOSPACE) and names the archive. After
 * any error the writer refuses more work; free it with oc_tar_writer_free.
 * That one closes the archive with the callback refusing every write, so no
 * end blocks reach the file and libarchive still releases its client state
 * (libarchive 3.6 frees it only in close, which archive_write_fail would
 * skip, leaking it). */
#include "io/tarwrite.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "io/atomicfile.h"
#include "io/filecopy.h"

struct oc_tar_writer {
    struct archive *a;
    int fd;
    char *what;
    int failed;
    oc_error io_err;  /* set by the write callback */
    int discard;      /* being freed: the callback refuses all writes */
    uint64_t swallow; /* entry bytes we wrote ourselves: drop as many of
                         libarchive's filler zeros */
    oc_filecopy copy; /* file members' data (io/filecopy.h) */
};

static la_ssize_t tar_write_cb(struct archive *a, void *client, const void *buf, size_t len)
{
    oc_tar_writer *w = client;
    if (w->discard) {
        archive_set_error(a, ECANCELED, "archive abandoned");
        return -1;
    }
    size_t skip = w->swallow < len ? (size_t)w->swallow : len;
    w->swallow -= skip;
    if (skip == len)
        return (la_ssize_t)len;
    if (oc_write_all(w->fd, (const char *)buf + skip, len - skip, w->what, &w->io_err) != 0) {
        archive_set_error(a, EIO, "%s", w->io_err.msg);
        return -1;
    }
    return (la_ssize_t)len;
}

/* Report the current libarchive (or write) failure for member name. */
static int tar_fail(oc_tar_writer *w, const char *action, const char *name, oc_error *err)
{
    w->failed = 1;
    if (w->io_err.code != OC_OK) {
        oc_error_set(err, w->io_err.code, "%s (%s %s)", w->io_err.msg, action, name);
        return -1;
    }
    int e = archive_errno(w->a);
    const char *msg = archive_error_string(w->a);
    oc_error_set(err, e == ENOMEM ? OC_E_NOMEM : OC_E_IO, "%s: %s %s: %s", w->what, action, name,
                 msg ? msg : "libarchive error");
    return -1;
}

static int check_usable(const oc_tar_writer *w, const char *name, oc_error *err)
{
    if (w->failed) {
        oc_error_set(err, OC_E_USAGE, "%s: cannot add %s after an earlier error", w->what, name);
        return -1;
    }
    if (!name || !*name) {
        oc_error_set(err, OC_E_USAGE, "%s: tar member without a name", w->what);
        return -1;
    }
    return 0;
}

oc_tar_writer *oc_tar_writer_open_fd(int fd, const char *what, oc_error *err)
{
    if (!what)
        what = "tar archive";
    oc_tar_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->what = strdup(what))) {
        free(w);
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    w->fd = fd;
    w->a = archive_write_new();
    if (!w->a) {
        free(w->what);
        free(w);
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w->a, 0) != ARCHIVE_OK ||
        archive_write_open2(w->a, w, NULL, tar_write_cb, NULL, NULL) != ARCHIVE_OK) {
        tar_fail(w, "open", "archive", err);
        oc_tar_writer_free(w);
        return NULL;
    }
    return w;
}

static int write_header(oc_tar_writer *w, const char *name, mode_t type, mode_t perm, int64_t size,
                        oc_error *err)
{
    struct archive_entry *e = archive_entry_new2(w->a);
    if (!e) {
        w->failed = 1;
        oc_error_set(err, OC_E_NOMEM, "%s: add %s: out of memory", w->what, name);
        return -1;
    }
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    int r = archive_write_header(w->a, e);
    archive_entry_free(e);
    if (r < ARCHIVE_WARN)
        return tar_fail(w, "add", name, err);
    return 0;
}

static int write_data(oc_tar_writer *w, const char *name, const void *data, size_t len,
                      oc_error *err)
{
    const unsigned char *p = data;
    while (len > 0) {
        la_ssize_t n = archive_write_data(w->a, p, len);
        if (n <= 0) {
            if (n == 0)
                archive_set_error(w->a, EINVAL, "more data than the entry size");
            return tar_fail(w, "write", name, err);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int finish_entry(oc_tar_writer *w, const char *name, oc_error *err)
{
    if (archive_write_finish_entry(w->a) < ARCHIVE_WARN)
        return tar_fail(w, "finish", name, err);
    return 0;
}

int oc_tar_add_dir(oc_tar_writer *w, const char *name, oc_error *err)
{
    if (check_usable(w, name, err) != 0)
        return -1;
    if (write_header(w, name, AE_IFDIR, 0755, 0, err) != 0)
        return -1;
    return finish_entry(w, name, err);
}

int oc_tar_add_buffer(oc_tar_writer *w, const char *name, const void *data, size_t len,
                      oc_error *err)
{
    if (check_usable(w, name, err) != 0)
        return -1;
    if (write_header(w, name, AE_IFREG, 0644, (int64_t)len, err) != 0 ||
        write_data(w, name, data, len, err) != 0)
        return -1;
    return finish_entry(w, name, err);
}

int oc_tar_add_file(oc_tar_writer *w, const char *name, const char *src_path, oc_error *err)
{
    if (check_usable(w, name, err) != 0)
        return -1;
    int src = open(src_path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        oc_error_errno(err, errno, "open %s (to add %s to %s)", src_path, name, w->what);
        return -1;
    }
    struct stat st;
    if (fstat(src, &st) != 0) {
        oc_error_errno(err, errno, "stat %s", src_path);
        close(src);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        oc_error_set(err, OC_E_USAGE, "add %s to %s: %s is not a regular file", name, w->what,
                     src_path);
        close(src);
        return -1;
    }
    (void)posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL);
    int rc = write_header(w, name, AE_IFREG, 0644, (int64_t)st.st_size, err);
    if (rc == 0) {
        if (oc_filecopy_run(&w->copy, w->fd, w->what, src, src_path, name, (uint64_t)st.st_size,
                            err) != 0) {
            w->failed = 1;
            rc = -1;
        } else {
            w->swallow = (uint64_t)st.st_size;
        }
    }
    if (rc == 0)
        rc = finish_entry(w, name, err);
    if (rc == 0 && w->swallow != 0) {
        w->failed = 1;
        oc_error_set(err, OC_E_IO, "%s: %s: libarchive did not finish the entry as expected",
                     w->what, name);
        rc = -1;
    }
    close(src);
    return rc;
}

int oc_tar_writer_close(oc_tar_writer *w, oc_error *err)
{
    if (!w)
        return 0;
    if (w->failed) {
        oc_error_set(err, OC_E_USAGE, "%s: not finished after an earlier error", w->what);
        oc_tar_writer_free(w);
        return -1;
    }
    int rc = 0;
    if (archive_write_close(w->a) != ARCHIVE_OK)
        rc = tar_fail(w, "finish", "archive", err);
    oc_tar_writer_free(w);
    return rc;
}

void oc_tar_writer_free(oc_tar_writer *w)
{
    if (!w)
        return;
    if (w->a) {
        w->discard = 1;
        (void)archive_write_close(w->a); /* a no-op after a successful close */
        archive_write_free(w->a);
    }
    oc_filecopy_release(&w->copy);
    free(w->what);
    free(w);
}

int oc_tar_file_header(const char *name, uint64_t size, unsigned char **hdr, size_t *len,
                       oc_error *err)
{
    /* The same writer, onto an anonymous in-memory file: the header comes
     * out byte for byte as oc_tar_add_file would write it. */
    int fd = memfd_create("occy-tar-header", MFD_CLOEXEC);
    if (fd < 0) {
        oc_error_errno(err, errno, "memfd_create (tar header of %s)", name);
        return -1;
    }
    int rc = -1;
    oc_tar_writer *w = oc_tar_writer_open_fd(fd, "tar header", err);
    if (w && write_header(w, name, AE_IFREG, 0644, (int64_t)size, err) == 0) {
        off_t n = lseek(fd, 0, SEEK_CUR);
        *hdr = n > 0 ? malloc((size_t)n) : NULL;
        if (*hdr && pread(fd, *hdr, (size_t)n, 0) == n) {
            *len = (size_t)n;
            rc = 0;
        } else {
            free(*hdr);
            *hdr = NULL;
            oc_error_set(err, OC_E_IO, "cannot read back the tar header of %s", name);
        }
    }
    oc_tar_writer_free(w);
    close(fd);
    return rc;
}
