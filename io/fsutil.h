/* fsutil.h - small file-system chores: removing a scratch tree and making a
 * private scratch directory beside a target path. */
#ifndef OC_IO_FSUTIL_H
#define OC_IO_FSUTIL_H

#include "io/error.h"

/* rm -rf path; missing path is fine. Does not follow symlinks. Without root,
 * directories of the tree that lack owner rwx (0555, 0000) are given it
 * first, as rm -rf would need the caller to do. */
int oc_remove_tree(const char *path, oc_error *err);

/* mkdtemp "<dir of target>/.<base of target>.occy-XXXXXX"; malloc'd path. */
char *oc_scratch_dir_beside(const char *target, oc_error *err);

#endif
