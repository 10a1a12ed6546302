/* safefs.h - file-system operations confined beneath a root directory.
 *
 * A tar from a registry is untrusted: a symlink it planted earlier must not
 * lead a later write or delete outside the tree. Every path here is relative
 * to a directory fd and is resolved one component at a time with openat(...,
 * O_NOFOLLOW | O_DIRECTORY), so a component that is a symlink is reported
 * instead of followed; removal works through fds (unlinkat, fdopendir) and
 * never follows a symlink either. Callers pass normalised relative paths
 * (no "..", no leading "/", no empty or "." components). */
#ifndef OC_IO_SAFEFS_H
#define OC_IO_SAFEFS_H

#include <stddef.h>

#include "io/error.h"

/* What resolving a directory path found. */
typedef enum oc_beneath {
    OC_BENEATH_OK = 0,  /* *fd is the directory */
    OC_BENEATH_MISSING, /* a component does not exist (and create was not asked) */
    OC_BENEATH_SYMLINK, /* a component is a symlink: never followed */
    OC_BENEATH_NOTDIR,  /* a component is something else that is not a directory */
    OC_BENEATH_ERROR,   /* a system call failed: err is set */
} oc_beneath;

enum {
    OC_BENEATH_CREATE = 1,  /* mkdir missing components (mode 0755) */
    OC_BENEATH_REPLACE = 2, /* replace a component that is a file, FIFO or device by a dir */
};

/* Open the directory rel (len bytes of it; "" means dirfd itself) beneath
 * dirfd. On OC_BENEATH_OK *fd is a new fd (O_DIRECTORY); otherwise *bad_len
 * (if not NULL) is the length of the prefix of rel that names the offending
 * component. created (if not NULL) is incremented for each directory made. */
oc_beneath oc_beneath_open_dir(int dirfd, const char *rel, size_t len, int flags, int *fd,
                               size_t *bad_len, unsigned long *created, oc_error *err);

/* Remove name in dirfd: a file, a symlink (not its target) or a whole
 * directory tree. A missing name is fine. */
int oc_beneath_remove(int dirfd, const char *name, oc_error *err);

/* Remove everything inside the directory dirfd, keeping the directory. */
int oc_beneath_clear_dir(int dirfd, oc_error *err);

#endif
