/* storelock.c - flock(2) locks on files and directories (see storelock.h). */
#include "io/storelock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int oc_lock_open(const char *path, int create, oc_error *err)
{
    int fd;
    do {
        fd = create ? open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)
                    : open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0 && create && errno == EISDIR) {
        /* a directory lock: directories only open read-only */
        do {
            fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        } while (fd < 0 && errno == EINTR);
    }
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && !create)
            oc_error_set(err, OC_E_NOTFOUND, "lock %s does not exist", path);
        else
            oc_error_errno(err, e, "open lock %s", path);
        return -1;
    }
    return fd;
}

int oc_lock_take(int fd, oc_lock_mode mode, int wait, const char *what, oc_error *err)
{
    int op = (mode == OC_LOCK_EXCLUSIVE ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
    for (;;) {
        if (flock(fd, op) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK && !wait)
            return 1;
        oc_error_errno(err, errno, "%s lock on %s",
                       mode == OC_LOCK_EXCLUSIVE ? "exclusive" : "shared", what);
        return -1;
    }
}

void oc_lock_drop(int fd)
{
    if (fd >= 0)
        (void)flock(fd, LOCK_UN);
}

void oc_lock_close(int fd)
{
    if (fd >= 0)
        close(fd); /* closing the last fd of the description releases the lock */
}
