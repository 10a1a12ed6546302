/* filecopy.h - exactly SIZE bytes of a regular file onto an fd, moved by
 * the kernel where it can: copy_file_range(2) first (an in-kernel copy, or
 * a reflink where the file system and alignment allow), then sendfile(2),
 * then pread/write with a 1 MiB buffer. The source is read at explicit
 * offsets from 0, so the ways can take over from each other in the middle
 * of a file; a way the kernel refuses once (EXDEV, EINVAL, ENOSYS,
 * EOPNOTSUPP, EBADF) is not tried again with the same oc_filecopy. The
 * copy fails, naming the source, the member and the destination, if the
 * source has fewer than SIZE bytes or more. The destination is written at
 * its current position (a regular file without O_APPEND, or a pipe through
 * the sendfile and read/write ways). Both tar writers (tarwrite.h,
 * tarcopy.h) move their file members with it. */
#ifndef OC_IO_FILECOPY_H
#define OC_IO_FILECOPY_H

#include <stdint.h>

#include "io/error.h"

typedef struct oc_filecopy {
    int no_cfr;         /* copy_file_range refused once: not tried again */
    int no_sendfile;    /* sendfile refused once */
    unsigned char *buf; /* the read/write way's buffer, made on first use */
    /* bytes moved each way (for measurements) */
    uint64_t copy_file_range_bytes;
    uint64_t sendfile_bytes;
    uint64_t readwrite_bytes;
} oc_filecopy;

/* Copy the size bytes of src (src_path names it in errors) onto dst
 * (dst_what names it) as the member called name. */
int oc_filecopy_run(oc_filecopy *c, int dst, const char *dst_what, int src, const char *src_path,
                    const char *name, uint64_t size, oc_error *err);
/* Free the buffer; the struct may be reused. */
void oc_filecopy_release(oc_filecopy *c);

#endif
