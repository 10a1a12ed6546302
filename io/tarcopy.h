/* tarcopy.h - a tar writer whose file members are copied by the kernel.
 *
 * It writes the same bytes as io/tarwrite.c for the same members (pax
 * restricted headers made by libarchive, files 0644, directories 0755, uid
 * and gid 0, mtime 0, two zero blocks at the end and no padding beyond),
 * but a file's data never passes through user space when the kernel can
 * help: copy_file_range(2) first (in-kernel copy, or a reflink where the
 * file system and alignment allow), then sendfile(2), then read/write with
 * a large buffer. libarchive only renders each header into memory; we write
 * it, the data and the padding to 512 bytes ourselves.
 *
 * The output fd must be a regular file opened for writing without O_APPEND
 * (a pipe works too, through the sendfile or read/write fallback). */
#ifndef OC_IO_TARCOPY_H
#define OC_IO_TARCOPY_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

typedef struct oc_tarcopy oc_tarcopy;

/* How each file's bytes were moved (for measurements). */
typedef struct oc_tarcopy_stats {
    uint64_t copy_file_range_bytes;
    uint64_t sendfile_bytes;
    uint64_t readwrite_bytes;
    uint64_t total_bytes; /* everything written, headers and padding included */
} oc_tarcopy_stats;

/* what names the archive in errors. The fd is not closed. */
oc_tarcopy *oc_tarcopy_open(int fd, const char *what, oc_error *err);
int oc_tarcopy_add_dir(oc_tarcopy *w, const char *name, oc_error *err);
int oc_tarcopy_add_buffer(oc_tarcopy *w, const char *name, const void *data, size_t len,
                          oc_error *err);
/* Add src_path (a regular file) as name. expect_size, unless UINT64_MAX,
 * must equal the file's size. The file must not change meanwhile. */
int oc_tarcopy_add_file(oc_tarcopy *w, const char *name, const char *src_path, uint64_t expect_size,
                        oc_error *err);
/* Disable the kernel paths (copy_file_range, sendfile): for measurements. */
void oc_tarcopy_force_readwrite(oc_tarcopy *w, int on);
void oc_tarcopy_get_stats(const oc_tarcopy *w, oc_tarcopy_stats *out);
/* End-of-archive blocks, then free. */
int oc_tarcopy_close(oc_tarcopy *w, oc_error *err);
/* Free without finishing. NULL is fine. */
void oc_tarcopy_free(oc_tarcopy *w);

#endif
