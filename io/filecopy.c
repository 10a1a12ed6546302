/* filecopy.c - a file's bytes onto an fd by the kernel where it can (see
 * filecopy.h). */
#include "io/filecopy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/types.h>
#include <unistd.h>

#include "io/atomicfile.h"

#define RW_CHUNK ((size_t)1024 * 1024)
#define KERNEL_CHUNK ((size_t)1 << 30)

static int kernel_refused(int e)
{
    return e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == EBADF;
}

/* Move up to want bytes of src at *off onto dst; returns the count (0 = end
 * of file) or -1 with errno. */
static ssize_t move_some(oc_filecopy *c, int dst, const char *dst_what, int src, off_t *off,
                         size_t want)
{
    while (!c->no_cfr) {
        ssize_t n = copy_file_range(src, off, dst, NULL, want, 0);
        if (n >= 0) {
            c->copy_file_range_bytes += (uint64_t)n;
            return n;
        }
        if (errno == EINTR)
            continue;
        if (!kernel_refused(errno))
            return -1;
        c->no_cfr = 1;
    }
    while (!c->no_sendfile) {
        ssize_t n = sendfile(dst, src, off, want);
        if (n >= 0) {
            c->sendfile_bytes += (uint64_t)n;
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EINVAL && errno != ENOSYS)
            return -1;
        c->no_sendfile = 1;
    }
    if (!c->buf && !(c->buf = malloc(RW_CHUNK))) {
        errno = ENOMEM;
        return -1;
    }
    size_t chunk = want < RW_CHUNK ? want : RW_CHUNK;
    ssize_t n;
    do {
        n = pread(src, c->buf, chunk, *off);
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n;
    oc_error werr;
    if (oc_write_all(dst, c->buf, (size_t)n, dst_what, &werr) != 0) {
        errno = werr.code == OC_E_NOSPACE ? ENOSPC : EIO;
        return -1;
    }
    *off += n;
    c->readwrite_bytes += (uint64_t)n;
    return n;
}

int oc_filecopy_run(oc_filecopy *c, int dst, const char *dst_what, int src, const char *src_path,
                    const char *name, uint64_t size, oc_error *err)
{
    off_t off = 0;
    uint64_t done = 0;
    while (done < size) {
        uint64_t left = size - done;
        size_t want = left < KERNEL_CHUNK ? (size_t)left : KERNEL_CHUNK;
        ssize_t n = move_some(c, dst, dst_what, src, &off, want);
        if (n < 0) {
            oc_error_errno(err, errno, "%s: copy %s from %s", dst_what, name, src_path);
            return -1;
        }
        if (n == 0) {
            oc_error_set(err, OC_E_IO,
                         "%s shrank while it was copied into %s as %s: %" PRIu64 " of %" PRIu64
                         " bytes",
                         src_path, dst_what, name, done, size);
            return -1;
        }
        done += (uint64_t)n;
    }
    unsigned char extra;
    ssize_t n;
    do {
        n = pread(src, &extra, 1, off);
    } while (n < 0 && errno == EINTR);
    if (n != 0) {
        if (n < 0)
            oc_error_errno(err, errno, "read %s (adding %s to %s)", src_path, name, dst_what);
        else
            oc_error_set(err, OC_E_IO,
                         "%s grew while it was copied into %s as %s: more than %" PRIu64 " bytes",
                         src_path, dst_what, name, size);
        return -1;
    }
    return 0;
}

void oc_filecopy_release(oc_filecopy *c)
{
    free(c->buf);
    c->buf = NULL;
}
