/* outfile.c - files made durable as they are written (see outfile.h).
 *
 * Direct I/O needs a second descriptor: the caller's may have been opened
 * without O_DIRECT (mkostemp, the tarball's), and toggling O_DIRECT on a
 * shared descriptor with fcntl would change it under other users. The file
 * is opened again through /proc/self/fd, which gives a new open file
 * description of the same inode. Direct and page-cache writes to one file
 * stay coherent (the kernel writes back and drops cached pages over a
 * direct write's range), and pieces never overlap here; after the first
 * piece that must go through the page cache, later ones follow it, so the
 * two never alternate.
 *
 * Writeback (sync_file_range): each time WINDOW more bytes are written,
 * writeback of them starts (SYNC_FILE_RANGE_WRITE, which only queues the
 * I/O), and the writer waits for what lies more than LAG bytes behind, so it
 * never runs far ahead of the disk and the final fsync has at most LAG
 * bytes to wait for. A file system that does not do it (tmpfs) says
 * nothing and nothing happens. */
#include "io/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "io/atomicfile.h"

#define WINDOW ((uint64_t)8 << 20)
#define LAG ((uint64_t)32 << 20)
/* Zero pieces at least this large past the end become holes. */
#define HOLE_MIN ((size_t)64 << 10)

/* statfs f_type of the file systems where direct I/O goes straight to a
 * local disk and is cheap. */
#define FS_EXT4 0xEF53
#define FS_XFS 0x58465342
#define FS_BTRFS 0x9123683E

int oc_write_mode_parse(const char *text)
{
    static const char *const names[] = {"auto", "direct", "writeback", "buffered"};
    for (int i = 0; i < 4; i++)
        if (text && strcasecmp(text, names[i]) == 0)
            return i;
    return -1;
}

const char *oc_write_mode_name(oc_write_mode m)
{
    switch (m) {
    case OC_WRITE_AUTO:
        return "auto";
    case OC_WRITE_DIRECT:
        return "direct";
    case OC_WRITE_WRITEBACK:
        return "writeback";
    case OC_WRITE_BUFFERED:
        return "buffered";
    }
    return "unknown";
}

static int fs_does_direct(int fd)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0)
        return 0;
    unsigned long t = (unsigned long)sf.f_type;
    return t == FS_EXT4 || t == FS_XFS || t == FS_BTRFS;
}

/* Open fd again with O_DIRECT and learn its alignment; 0 on success. */
static int open_direct(oc_outfile *f, int require_known)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
    int dfd = open(proc, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    uint32_t mem = 0, off = 0;
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (statx(dfd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN)) {
        mem = sx.stx_dio_mem_align;
        off = sx.stx_dio_offset_align;
    }
#endif
    if (mem == 0 || off == 0) { /* not said: unsupported, or an old kernel */
        if (require_known) {
            close(dfd);
            return -1;
        }
        mem = off = OC_OUTFILE_ALIGN;
    }
    if (mem > OC_OUTFILE_ALIGN || off > OC_OUTFILE_ALIGN || (off & (off - 1)) ||
        (mem & (mem - 1))) {
        close(dfd);
        return -1;
    }
    f->dfd = dfd;
    f->mem_align = mem;
    f->off_align = off;
    return 0;
}

void oc_outfile_init(oc_outfile *f, int fd, oc_write_mode mode, int use)
{
    memset(f, 0, sizeof *f);
    f->fd = fd;
    f->dfd = -1;
    f->aside = use == OC_OUTFILE_ASIDE;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        f->size = f->end = (uint64_t)st.st_size;
    f->mode = OC_WRITE_BUFFERED;
    if (use == OC_OUTFILE_SCRATCH || mode == OC_WRITE_BUFFERED)
        return;
    if (mode == OC_WRITE_DIRECT && open_direct(f, 0) == 0)
        f->mode = OC_WRITE_DIRECT;
    else if (mode == OC_WRITE_AUTO && fs_does_direct(fd) && open_direct(f, 1) == 0)
        f->mode = OC_WRITE_DIRECT;
    else if (use == OC_OUTFILE_DURABLE)
        f->mode = OC_WRITE_WRITEBACK;
}

/* From now on, every piece goes through the page cache. */
static void leave_direct(oc_outfile *f)
{
    if (f->dfd >= 0)
        close(f->dfd);
    f->dfd = -1;
    f->mode = f->aside ? OC_WRITE_BUFFERED : OC_WRITE_WRITEBACK;
}

/* Writeback of what was written up to end: start it window by window, and
 * wait for what is more than LAG behind. Best effort: errors are the final
 * fsync's to report. */
static void writeback(oc_outfile *f, uint64_t end)
{
    if (end < f->started + WINDOW)
        return;
    (void)sync_file_range(f->fd, (off_t)f->started, (off_t)(end - f->started),
                          SYNC_FILE_RANGE_WRITE);
    f->started = end;
    if (end > f->waited + LAG) {
        uint64_t to = end - LAG;
        (void)sync_file_range(f->fd, (off_t)f->waited, (off_t)(to - f->waited),
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                  SYNC_FILE_RANGE_WAIT_AFTER);
        f->waited = to;
    }
}

/* Direct writes of the aligned part of [buf, buf+len) at off: how many
 * bytes went (0 when none could), or -1 with err. */
static long long write_direct(oc_outfile *f, const unsigned char *buf, size_t len, uint64_t off,
                              const char *what, oc_error *err)
{
    if ((uintptr_t)buf % f->mem_align || off % f->off_align)
        return 0;
    size_t want = len - len % f->off_align, done = 0;
    while (done < want) {
        ssize_t n = pwrite(f->dfd, buf + done, want - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL) { /* not this way after all */
            leave_direct(f);
            break;
        }
        if (n < 0) {
            oc_error_errno(err, errno, "write %s", what);
            return -1;
        }
        if (n == 0 || (size_t)n % f->off_align) {
            done += (size_t)n;
            leave_direct(f); /* the rest, unaligned now, through the cache */
            break;
        }
        done += (size_t)n;
    }
    f->direct_bytes += done;
    return (long long)done;
}

static int all_zero(const unsigned char *p, size_t len)
{
    return len > 0 && p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

int oc_outfile_pwrite(oc_outfile *f, const void *buf, size_t len, uint64_t off, const char *what,
                      oc_error *err)
{
    const unsigned char *p = buf;
    if (off + len > f->end)
        f->end = off + len;
    if (len >= HOLE_MIN && off >= f->size && all_zero(p, len)) {
        f->hole_bytes += len;
        return 0;
    }
    if (off + len > f->size)
        f->size = off + len;
    if (f->mode == OC_WRITE_DIRECT) {
        long long n = write_direct(f, p, len, off, what, err);
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
        if (len == 0)
            return 0;
        leave_direct(f); /* an unaligned piece: the cache from here on */
    }
    if (oc_pwrite_all(f->fd, p, len, off, what, err) != 0)
        return -1;
    f->cached_bytes += len;
    if (f->mode == OC_WRITE_WRITEBACK)
        writeback(f, off + len);
    return 0;
}

int oc_outfile_truncate(oc_outfile *f, uint64_t size, const char *what, oc_error *err)
{
    if (ftruncate(f->fd, (off_t)size) != 0) {
        oc_error_errno(err, errno, "%s: cannot truncate", what);
        return -1;
    }
    f->size = f->end = size;
    if (f->started > size)
        f->started = size;
    if (f->waited > size)
        f->waited = size;
    return 0;
}

int oc_outfile_finish(oc_outfile *f, const char *what, oc_error *err)
{
    if (f->end <= f->size)
        return 0;
    if (ftruncate(f->fd, (off_t)f->end) != 0) {
        oc_error_errno(err, errno, "%s: cannot set its size", what);
        return -1;
    }
    f->size = f->end;
    return 0;
}

int oc_outfile_sync(oc_outfile *f, const char *what, oc_error *err)
{
    if (oc_outfile_finish(f, what, err) != 0)
        return -1;
    if (fsync(f->fd) != 0) {
        oc_error_errno(err, errno, "fsync %s", what);
        return -1;
    }
    return 0;
}

void oc_outfile_close(oc_outfile *f)
{
    if (f->dfd >= 0)
        close(f->dfd);
    f->dfd = -1;
}
