/* storelock.h - advisory whole-file locks (flock(2)) for a store.
 *
 * A store is shared by processes that do not know each other: fetchers
 * writing layers, a catalog read-merge-write, gc removing blobs, readers
 * building tarballs. flock locks belong to an open file description, so
 * they vanish when the process dies (a SIGKILL leaves no stale lock) and
 * two opens in one process exclude each other like two processes do. A
 * lock may be taken on a regular file or on a directory (opened read-only).
 *
 * Waiting is retried over EINTR. Nothing here prints. */
#ifndef OC_IO_STORELOCK_H
#define OC_IO_STORELOCK_H

#include "io/error.h"

typedef enum oc_lock_mode {
    OC_LOCK_SHARED = 0,
    OC_LOCK_EXCLUSIVE = 1,
} oc_lock_mode;

/* Open path for locking. create: open read-write and create it (mode 0644)
 * if missing; otherwise open read-only and fail with OC_E_NOTFOUND when it
 * does not exist. A directory is opened read-only. Returns the fd or -1. */
int oc_lock_open(const char *path, int create, oc_error *err);

/* Lock fd in mode. wait: block until granted; otherwise return 1 at once
 * when another holder conflicts. Changing the mode of a held lock is not
 * atomic (the kernel drops it first). Returns 0 when held, 1 when busy (only
 * without wait), -1 on error; what names the lock in messages. */
int oc_lock_take(int fd, oc_lock_mode mode, int wait, const char *what, oc_error *err);

/* Release the lock, keep the fd. */
void oc_lock_drop(int fd);

/* Release and close; fd < 0 is ignored. */
void oc_lock_close(int fd);

#endif
