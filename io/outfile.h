/* outfile.h - a file written at explicit offsets, in large pieces, by one
 * thread at a time, that is made durable as it is written, so the final
 * fsync finds (almost) nothing left to do.
 *
 * Three ways to get the bytes to the disk:
 *   direct     O_DIRECT: the disk reads our buffer, no page-cache copy
 *              (pieces whose offset, length and address are aligned; the
 *              rest, normally a stream's last piece, takes the next way)
 *   writeback  the page cache, with writeback started every window
 *              (sync_file_range), and the writer held to the disk's pace
 *              a few windows behind, so dirty pages do not pile up
 *   buffered   the page cache alone (a scratch file that is read back and
 *              deleted, never synced)
 * OC_WRITE_AUTO takes direct on the file systems that do it well on a
 * local disk (ext4, xfs, btrfs: statx says how to align), writeback on the
 * others (tmpfs, NFS, FUSE...). A file that will not be synced is always
 * buffered. A piece the kernel refuses direct (EINVAL) goes through the page
 * cache, and so does every later piece of that file.
 *
 * A large piece of zeros past the end of the file is not written: it is
 * left a hole (reads give zeros), and oc_outfile_finish sets the file's
 * size. A layer with a big zero-filled file costs no disk for it. */
#ifndef OC_IO_OUTFILE_H
#define OC_IO_OUTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

typedef enum oc_write_mode {
    OC_WRITE_AUTO = 0,
    OC_WRITE_DIRECT,
    OC_WRITE_WRITEBACK,
    OC_WRITE_BUFFERED,
} oc_write_mode;

/* "auto", "direct", "writeback", "buffered" -> mode; -1 if unknown. */
int oc_write_mode_parse(const char *text);
const char *oc_write_mode_name(oc_write_mode m);

/* Buffers handed to oc_outfile_pwrite are best aligned to this (it is at
 * least every file system's direct-I/O memory alignment). */
#define OC_OUTFILE_ALIGN 4096

typedef struct oc_outfile {
    int fd;             /* the caller's, never closed here */
    int dfd;            /* O_DIRECT on the same file, or -1 */
    oc_write_mode mode; /* as resolved: DIRECT, WRITEBACK or BUFFERED */
    int aside;          /* OC_OUTFILE_ASIDE: never written back early */
    uint32_t mem_align, off_align;
    uint64_t size;    /* the file's size as written (holes not included) */
    uint64_t end;     /* the end of the last piece, holes included */
    uint64_t started; /* writeback started below this offset */
    uint64_t waited;  /* writeback waited for below this offset */
    uint64_t direct_bytes, cached_bytes, hole_bytes;
} oc_outfile;

/* What a file is for, which decides how it is written. */
enum {
    OC_OUTFILE_SCRATCH = 0, /* read back soon and deleted: the page cache */
    OC_OUTFILE_DURABLE,     /* will be synced: the mode (direct, or writeback) */
    OC_OUTFILE_ASIDE,       /* kept for a later run, seldom read, never synced:
                               direct if the mode gives it (no page-cache copy,
                               no cache pollution), else the page cache */
};

/* fd is the caller's (written with pwrite; kept open by the caller until
 * oc_outfile_close); use is OC_OUTFILE_*. Never fails: a way that cannot be
 * had falls back to the next. */
void oc_outfile_init(oc_outfile *f, int fd, oc_write_mode mode, int use);
int oc_outfile_pwrite(oc_outfile *f, const void *buf, size_t len, uint64_t off, const char *what,
                      oc_error *err);
/* Cut the file to size (a stream that starts over). */
int oc_outfile_truncate(oc_outfile *f, uint64_t size, const char *what, oc_error *err);
/* The file as long as the pieces say (a trailing hole is made by setting
 * the size). Before reading it or syncing it; oc_outfile_sync does it. */
int oc_outfile_finish(oc_outfile *f, const char *what, oc_error *err);
/* fsync (waits for what writeback is left). */
int oc_outfile_sync(oc_outfile *f, const char *what, oc_error *err);
/* Closes what init opened (the direct descriptor); fd stays the caller's. */
void oc_outfile_close(oc_outfile *f);

#endif
