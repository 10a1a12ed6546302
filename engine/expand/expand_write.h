/* expand_write.h - how one tar entry lands in an expanded tree.
 *
 * Regular files are ours: created O_EXCL|O_NOFOLLOW beneath their parent's
 * fd, data written at its offsets (holes stay holes), then numeric owner
 * (as root), mode including setuid, xattrs and times, each fd closed on
 * every path. Symlinks, hard links, FIFOs and devices are written by
 * libarchive's disk writer with the secure extraction flags (no absolute
 * paths, no "..", nothing through a symlink), numeric owners (never mapped
 * through this host's user database) when running as root, permissions,
 * mtimes and xattrs; that writer never creates directories itself
 * (ARCHIVE_EXTRACT_NO_AUTODIR) and keeps no file open for these types.
 * Directories are ours: made beneath the root through no-follow fds
 * (safefs.h), their xattrs set at once, and their mode, owner and times
 * set at the very end, deepest first, so writing into them cannot disturb
 * their mtimes and a read-only directory can still be filled.
 *
 * The calling thread's working directory must be the root (expand.c runs
 * the writer on a thread of its own). The size limit and the counters live
 * here. */
#ifndef OC_ENGINE_EXPAND_WRITE_H
#define OC_ENGINE_EXPAND_WRITE_H

#include <stdint.h>

#include <archive.h>
#include <archive_entry.h>

#include "engine/expand/expand.h"
#include "engine/expand/expand_plan.h"
#include "io/error.h"
#include "io/safefs.h"

typedef struct oc_xwriter oc_xwriter;

oc_xwriter *oc_xwriter_new(int rootfd, uint64_t max_bytes, oc_expand_stats *stats, oc_error *err);
/* Finishes libarchive's writer; does not sync. */
int oc_xwriter_close(oc_xwriter *w, oc_error *err);
void oc_xwriter_free(oc_xwriter *w);

/* The directory holding path (normalised, non-empty), beneath the root. The
 * fd belongs to the writer (cached for the next entry in the same
 * directory). *leaf points into path at the last component. Returns the
 * oc_beneath status; *bad_len is the offending prefix length. */
oc_beneath oc_xwriter_parent(oc_xwriter *w, const char *path, int flags, int *fd, const char **leaf,
                             size_t *bad_len, oc_error *err);
/* Drop the cached directory fd (after deleting directories). */
void oc_xwriter_forget(oc_xwriter *w);

/* Write non-directory entry e (its data read from r) at path, which is
 * leaf in directory dirfd (from oc_xwriter_parent): the parent exists,
 * nothing is at path. Returns 0 written, 1 skipped (a device node while
 * not root), -1 error. */
int oc_xwriter_entry(oc_xwriter *w, struct archive *r, struct archive_entry *e, int dirfd,
                     const char *leaf, const char *path, oc_error *err);
/* Hard link path to the existing target (both normalised). */
int oc_xwriter_link(oc_xwriter *w, const char *path, const char *target, oc_error *err);
/* Make directory leaf in parent_fd unless one is there, then set the
 * entry's xattrs on it (e may be NULL). */
int oc_xwriter_mkdir(oc_xwriter *w, int parent_fd, const char *leaf, struct archive_entry *e,
                     oc_error *err);
/* Owner (as root), mode and times of directory path ("" = root); a path
 * that is gone or no longer a directory is left alone. */
int oc_xwriter_dir_meta(oc_xwriter *w, const char *path, const oc_plan_dirmeta *m, oc_error *err);

/* Directory metadata of a tar entry. */
void oc_xwriter_meta_of(struct archive_entry *e, oc_plan_dirmeta *m);

#endif
