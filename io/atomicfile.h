/* atomicfile.h - files that appear whole or not at all.
 *
 * A file is written under a temporary name in a scratch directory on the
 * same file system, fsynced, renamed into place and its directory fsynced.
 * Until commit nothing exists under the final name; abort removes the
 * temporary. Short writes and ENOSPC are reported, never ignored. */
#ifndef OC_IO_ATOMICFILE_H
#define OC_IO_ATOMICFILE_H

#include <stddef.h>
#include <stdint.h>

#include "io/error.h"

typedef struct oc_atomic_file {
    int fd;
    char *tmp_path;
    char *final_path;
    uint64_t written;
} oc_atomic_file;

/* tmp_dir must exist and be on the same file system as final_path. */
int oc_atomic_open(oc_atomic_file *f, const char *tmp_dir, const char *final_path, oc_error *err);
int oc_atomic_write(oc_atomic_file *f, const void *data, size_t len, oc_error *err);
/* fsync, rename over final_path, fsync the final directory. Closes the file. */
int oc_atomic_commit(oc_atomic_file *f, oc_error *err);
/* Close and unlink the temporary; safe to call after commit or twice. */
void oc_atomic_abort(oc_atomic_file *f);

/* Whole-buffer write that retries EINTR and short writes; what names the file
 * in the error. */
int oc_write_all(int fd, const void *data, size_t len, const char *what, oc_error *err);
/* The same at an explicit offset (pwrite), leaving the file offset alone. */
int oc_pwrite_all(int fd, const void *data, size_t len, uint64_t offset, const char *what,
                  oc_error *err);
int oc_fsync_dir(const char *dir, oc_error *err);
/* Unlink path (gone already is fine) and fsync dir, the directory it was
 * in, so that the removal is durable. */
int oc_unlink_durably(const char *path, const char *dir, oc_error *err);
/* mkdir -p with mode 0755. */
int oc_mkdirs(const char *path, oc_error *err);
/* Write a whole small file atomically. */
int oc_atomic_write_file(const char *tmp_dir, const char *final_path, const void *data, size_t len,
                         oc_error *err);
/* The same without the directory's fsync: the bytes are durable and the name
 * is in place, but the name is not yet durable. For callers that fsync the
 * directory once for many files (oc_fsync_dir) before anything depends on
 * the names. */
int oc_atomic_write_file_entry_later(const char *tmp_dir, const char *final_path, const void *data,
                                     size_t len, oc_error *err);
/* Read a whole small file (NUL-terminated; len may be NULL); max bounds it. */
char *oc_read_file(const char *path, size_t max, size_t *len, oc_error *err);

#endif
