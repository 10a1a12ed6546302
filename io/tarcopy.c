/* tarcopy.c - tar members whose data the kernel copies (see tarcopy.h).
 *
 * Each header is rendered by a short-lived libarchive writer that outputs
 * unblocked (bytes_per_block 0) into a memory buffer and is closed before
 * any data, refusing the padding it then tries to write (archive_write_fail
 * would leak its client state): so headers are byte for byte what
 * io/tarwrite.c writes,
 * long names and sizes beyond ustar's 8 GiB included (pax records). The
 * data is then moved by io/filecopy.h (copy_file_range, sendfile,
 * pread/write, taking over from each other; a way the kernel refuses once
 * is not tried again for this archive).
 * Errors name the archive, the member and the source; ENOSPC becomes
 * OC_E_NOSPACE. */
#include "io/tarcopy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "io/atomicfile.h"
#include "io/filecopy.h"

#define BLOCK 512

struct oc_tarcopy {
    int fd;
    char *what;
    int failed;
    unsigned char *hdr; /* rendered header */
    size_t hlen, hcap;
    int sealed;       /* capture_cb refuses more bytes */
    oc_filecopy copy; /* file members' data */
    oc_tarcopy_stats st;
};

static const unsigned char zeros[2 * BLOCK];

static la_ssize_t capture_cb(struct archive *a, void *client, const void *buf, size_t len)
{
    oc_tarcopy *w = client;
    if (w->sealed) { /* the header is out: refuse the entry's padding */
        archive_set_error(a, EPIPE, "header captured");
        return -1;
    }
    if (w->hlen + len > w->hcap) {
        size_t cap = w->hcap ? w->hcap : 4096;
        while (cap < w->hlen + len)
            cap *= 2;
        unsigned char *grown = realloc(w->hdr, cap);
        if (!grown) {
            archive_set_error(a, ENOMEM, "out of memory");
            return -1;
        }
        w->hdr = grown;
        w->hcap = cap;
    }
    memcpy(w->hdr + w->hlen, buf, len);
    w->hlen += len;
    return (la_ssize_t)len;
}

static int fail(oc_tarcopy *w)
{
    w->failed = 1;
    return -1;
}

static int emit(oc_tarcopy *w, const void *data, size_t len, const char *name, oc_error *err)
{
    if (oc_write_all(w->fd, data, len, w->what, err) != 0) {
        oc_error_prefix(err, "adding %s", name);
        return fail(w);
    }
    w->st.total_bytes += len;
    return 0;
}

/* Render and write the header of one member. */
static int put_header(oc_tarcopy *w, const char *name, mode_t type, mode_t perm, uint64_t size,
                      oc_error *err)
{
    if (w->failed) {
        oc_error_set(err, OC_E_USAGE, "%s: cannot add %s after an earlier error", w->what, name);
        return -1;
    }
    if (!name || !*name || size > INT64_MAX) {
        oc_error_set(err, OC_E_USAGE, "%s: bad member %s", w->what, name ? name : "(none)");
        return fail(w);
    }
    w->hlen = 0;
    struct archive *a = archive_write_new();
    struct archive_entry *e = a ? archive_entry_new2(a) : NULL;
    int ok = a && e && archive_write_set_format_pax_restricted(a) == ARCHIVE_OK &&
             archive_write_set_bytes_per_block(a, 0) == ARCHIVE_OK &&
             archive_write_open2(a, w, NULL, capture_cb, NULL, NULL) == ARCHIVE_OK;
    if (ok) {
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, perm);
        archive_entry_set_size(e, (la_int64_t)size);
        archive_entry_set_mtime(e, 0, 0);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        ok = archive_write_header(a, e) >= ARCHIVE_WARN;
    }
    if (!ok) {
        const char *msg = a ? archive_error_string(a) : NULL;
        oc_error_set(err, OC_E_IO, "%s: header of %s: %s", w->what, name,
                     msg ? msg : "out of memory");
    }
    archive_entry_free(e);
    if (a) {
        /* Close so that libarchive frees its client state, but refuse the
         * bytes it would now write (the entry's zero data, end blocks): the
         * first refusal ends the close. */
        w->sealed = 1;
        archive_write_close(a);
        archive_write_free(a);
        w->sealed = 0;
    }
    if (!ok)
        return fail(w);
    return emit(w, w->hdr, w->hlen, name, err);
}

static int pad(oc_tarcopy *w, uint64_t size, const char *name, oc_error *err)
{
    size_t rest = (size_t)(size % BLOCK);
    return rest ? emit(w, zeros, BLOCK - rest, name, err) : 0;
}

int oc_tarcopy_add_dir(oc_tarcopy *w, const char *name, oc_error *err)
{
    return put_header(w, name, AE_IFDIR, 0755, 0, err);
}

int oc_tarcopy_add_buffer(oc_tarcopy *w, const char *name, const void *data, size_t len,
                          oc_error *err)
{
    if (put_header(w, name, AE_IFREG, 0644, len, err) != 0 || emit(w, data, len, name, err) != 0)
        return -1;
    return pad(w, len, name, err);
}

int oc_tarcopy_add_file(oc_tarcopy *w, const char *name, const char *src_path, uint64_t expect_size,
                        oc_error *err)
{
    int src = open(src_path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        oc_error_errno(err, errno, "open %s (to add %s to %s)", src_path, name, w->what);
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat(src, &st) != 0) {
        oc_error_errno(err, errno, "stat %s", src_path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        oc_error_set(err, OC_E_USAGE, "add %s to %s: %s is not a regular file", name, w->what,
                     src_path);
        goto out;
    }
    if (expect_size != UINT64_MAX && (uint64_t)st.st_size != expect_size) {
        oc_error_set(err, OC_E_DIGEST, "%s is %" PRIu64 " bytes, %" PRIu64 " were recorded",
                     src_path, (uint64_t)st.st_size, expect_size);
        goto out;
    }
    (void)posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint64_t size = (uint64_t)st.st_size;
    if (put_header(w, name, AE_IFREG, 0644, size, err) != 0)
        goto out;
    if (oc_filecopy_run(&w->copy, w->fd, w->what, src, src_path, name, size, err) != 0) {
        fail(w);
        goto out;
    }
    w->st.total_bytes += size;
    if (pad(w, size, name, err) == 0)
        rc = 0;
out:
    close(src);
    return rc;
}

oc_tarcopy *oc_tarcopy_open(int fd, const char *what, oc_error *err)
{
    oc_tarcopy *w = calloc(1, sizeof *w);
    if (!w || !(w->what = strdup(what ? what : "tar archive"))) {
        free(w);
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what ? what : "tar archive");
        return NULL;
    }
    w->fd = fd;
    return w;
}

void oc_tarcopy_force_readwrite(oc_tarcopy *w, int on)
{
    w->copy.no_cfr = on;
    w->copy.no_sendfile = on;
}

void oc_tarcopy_get_stats(const oc_tarcopy *w, oc_tarcopy_stats *out)
{
    *out = w->st;
    out->copy_file_range_bytes = w->copy.copy_file_range_bytes;
    out->sendfile_bytes = w->copy.sendfile_bytes;
    out->readwrite_bytes = w->copy.readwrite_bytes;
}

int oc_tarcopy_close(oc_tarcopy *w, oc_error *err)
{
    if (!w)
        return 0;
    int rc = 0;
    if (w->failed) {
        oc_error_set(err, OC_E_USAGE, "%s: not finished after an earlier error", w->what);
        rc = -1;
    } else {
        rc = emit(w, zeros, sizeof zeros, "end of archive", err);
    }
    oc_tarcopy_free(w);
    return rc;
}

void oc_tarcopy_free(oc_tarcopy *w)
{
    if (!w)
        return;
    free(w->hdr);
    oc_filecopy_release(&w->copy);
    free(w->what);
    free(w);
}
