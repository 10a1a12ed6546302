/* pidlock.h - a lock file that names its owner, for work that processes
 * sharing a directory (on one host, or several hosts on a shared file
 * system) must not do twice at the same time, such as downloading one blob
 * into one store.
 *
 * The file holds "<hostname> <pid> <start time>\n" (the start time, from
 * /proc/<pid>/stat, tells a live owner from a reused pid). Taking it means
 * creating it with O_EXCL. A file that is there already belongs to a live
 * owner unless:
 *   - its host is ours and no process with that pid and start time runs;
 *   - its host is another one and the file was not touched for stale_s
 *     seconds (a live owner touches it well within that: oc_pidlock_touch);
 *   - it does not parse (its owner died while writing it).
 * Then it is taken over. Every decision (create, judge, remove) is made
 * under an flock(2) on a mutex file beside it, held for microseconds, so two
 * processes never both take one lock, and an owner's release never removes
 * a lock someone took over in the meantime. flock works across hosts on NFS
 * (Linux maps it to POSIX locks there). Nothing here prints. */
#ifndef OC_IO_PIDLOCK_H
#define OC_IO_PIDLOCK_H

#include <stddef.h>

#include "io/error.h"

/* 0 taken (created, taken over from a dead owner, or already ours); 1 held
 * by a live owner (owner gets "host pid", may be NULL); -1 error. */
int oc_pidlock_try(const char *path, const char *mutex_path, unsigned stale_s, char *owner,
                   size_t cap, oc_error *err);
/* Remove path if it is still ours. */
void oc_pidlock_release(const char *path, const char *mutex_path);
/* Mark a held lock alive for other hosts (its mtime is now). */
void oc_pidlock_touch(const char *path);

#endif
