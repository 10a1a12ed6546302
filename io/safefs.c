/* safefs.c - file-system operations confined beneath a root directory (see
 * safefs.h). Directories are walked with openat(O_NOFOLLOW | O_DIRECTORY);
 * when that fails, fstatat(AT_SYMLINK_NOFOLLOW) tells a symlink from a
 * missing name or another kind of file. */
#include "io/safefs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* One component: open it as a directory beneath fd, or say why not. */
static oc_beneath step(int fd, const char *name, int flags, int *out, unsigned long *created,
                       oc_error *err)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int nfd = openat(fd, name, DIR_OPEN_FLAGS);
        if (nfd >= 0) {
            *out = nfd;
            return OC_BENEATH_OK;
        }
        int e = errno;
        struct stat st;
        if (e == ENOENT) {
            if (!(flags & OC_BENEATH_CREATE))
                return OC_BENEATH_MISSING;
            if (mkdirat(fd, name, 0755) != 0 && errno != EEXIST) {
                oc_error_errno(err, errno, "cannot create directory %s", name);
                return OC_BENEATH_ERROR;
            }
            if (created)
                (*created)++;
            continue;
        }
        if (e != ENOTDIR && e != ELOOP) {
            oc_error_errno(err, e, "cannot open directory %s", name);
            return OC_BENEATH_ERROR;
        }
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* raced away: try again */
            oc_error_errno(err, errno, "cannot stat %s", name);
            return OC_BENEATH_ERROR;
        }
        if (S_ISLNK(st.st_mode))
            return OC_BENEATH_SYMLINK;
        if (S_ISDIR(st.st_mode))
            continue; /* became a directory meanwhile */
        if (!(flags & OC_BENEATH_REPLACE))
            return OC_BENEATH_NOTDIR;
        if (unlinkat(fd, name, 0) != 0 && errno != ENOENT) {
            oc_error_errno(err, errno, "cannot remove %s", name);
            return OC_BENEATH_ERROR;
        }
    }
    oc_error_set(err, OC_E_IO, "%s keeps changing under us", name);
    return OC_BENEATH_ERROR;
}

oc_beneath oc_beneath_open_dir(int dirfd, const char *rel, size_t len, int flags, int *fd,
                               size_t *bad_len, unsigned long *created, oc_error *err)
{
    char name[256];
    int cur = openat(dirfd, ".", DIR_OPEN_FLAGS);
    if (cur < 0) {
        oc_error_errno(err, errno, "cannot open the target directory");
        return OC_BENEATH_ERROR;
    }
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && rel[j] != '/')
            j++;
        size_t n = j - i;
        if (n == 0) {
            i = j + 1;
            continue;
        }
        if (n >= sizeof name) {
            close(cur);
            oc_error_errno(err, ENAMETOOLONG, "cannot open directory %.*s",
                           (int)(j > 200 ? 200 : j), rel);
            return OC_BENEATH_ERROR;
        }
        memcpy(name, rel + i, n);
        name[n] = '\0';
        int next = -1;
        oc_beneath r = step(cur, name, flags, &next, created, err);
        close(cur);
        if (r != OC_BENEATH_OK) {
            if (bad_len)
                *bad_len = j;
            if (r == OC_BENEATH_ERROR)
                oc_error_prefix(err, "in %.*s", (int)i, rel);
            return r;
        }
        cur = next;
        i = j + 1;
    }
    *fd = cur;
    return OC_BENEATH_OK;
}

static int clear_fd(int dfd, const char *what, int depth, oc_error *err);

static int remove_at(int dirfd, const char *name, int depth, oc_error *err)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM) {
        oc_error_errno(err, errno, "cannot remove %s", name);
        return -1;
    }
    if (depth > 4096) {
        oc_error_set(err, OC_E_IO, "cannot remove %s: directory tree too deep", name);
        return -1;
    }
    int fd = openat(dirfd, name, DIR_OPEN_FLAGS);
    if (fd < 0) {
        oc_error_errno(err, errno, "cannot remove %s", name);
        return -1;
    }
    if (clear_fd(fd, name, depth + 1, err) != 0)
        return -1; /* clear_fd closed fd */
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
        oc_error_errno(err, errno, "cannot remove directory %s", name);
        return -1;
    }
    return 0;
}

/* Takes ownership of dfd. */
static int clear_fd(int dfd, const char *what, int depth, oc_error *err)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        oc_error_errno(err, errno, "cannot read directory %s", what);
        close(dfd);
        return -1;
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno != 0) {
                oc_error_errno(err, errno, "cannot read directory %s", what);
                rc = -1;
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (de->d_type == DT_DIR) {
            if (remove_at(dirfd(d), de->d_name, depth, err) != 0) {
                rc = -1;
                break;
            }
        } else if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT) {
            if (remove_at(dirfd(d), de->d_name, depth, err) != 0) {
                rc = -1;
                break;
            }
        }
    }
    closedir(d);
    return rc;
}

int oc_beneath_remove(int dirfd, const char *name, oc_error *err)
{
    return remove_at(dirfd, name, 0, err);
}

int oc_beneath_clear_dir(int dirfd, oc_error *err)
{
    int fd = openat(dirfd, ".", DIR_OPEN_FLAGS);
    if (fd < 0) {
        oc_error_errno(err, errno, "cannot open directory");
        return -1;
    }
    return clear_fd(fd, ".", 0, err);
}
