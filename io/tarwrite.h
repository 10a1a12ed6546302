/* tarwrite.h - writing a POSIX (pax) tar archive with libarchive: members
 * from memory, from files (streamed in large chunks) and directories, and the
 * end-of-archive blocks on close. */
#ifndef OC_IO_TARWRITE_H
#define OC_IO_TARWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

typedef struct oc_tar_writer oc_tar_writer;

/* Writes to fd (not closed by the writer). */
oc_tar_writer *oc_tar_writer_open_fd(int fd, const char *what, oc_error *err);
int oc_tar_add_dir(oc_tar_writer *w, const char *name, oc_error *err);
int oc_tar_add_buffer(oc_tar_writer *w, const char *name, const void *data, size_t len,
                      oc_error *err);
int oc_tar_add_file(oc_tar_writer *w, const char *name, const char *src_path, oc_error *err);
/* The exact bytes oc_tar_add_file writes before the data of a file member
 * name of size bytes (a ustar header; more when a pax header is needed),
 * so a caller can place file data into the archive itself. *hdr is
 * malloc'd. */
int oc_tar_file_header(const char *name, uint64_t size, unsigned char **hdr, size_t *len,
                       oc_error *err);

/* Finish the archive (end blocks) and free the writer. */
int oc_tar_writer_close(oc_tar_writer *w, oc_error *err);
/* Free without finishing, after an error. */
void oc_tar_writer_free(oc_tar_writer *w);

#endif
