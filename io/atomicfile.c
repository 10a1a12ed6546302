/* atomicfile.c - files that appear whole or not at all (see atomicfile.h),
 * and the small file-system helpers they need: full writes, directory fsync,
 * durable unlink, mkdir -p and bounded whole-file reads.
 *
 * The temporary is created with O_CREAT | O_EXCL under a random name
 * (".tmp-<basename>-<random>") in tmp_dir, mode 0666 less the umask, so a
 * committed file has the permissions an ordinary create would give it.
 * Every file-system error names the file and becomes OC_E_IO, or
 * OC_E_NOSPACE for ENOSPC / EDQUOT (through oc_error_errno). */
#include "io/atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* How much of the final name goes into the temporary name (for humans). */
#define TMP_BASE_MAX 64
#define TMP_TRIES 64

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Directory part of path: "." when there is none, "/" for "/name". */
static char *dir_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static unsigned long long random_u64(void)
{
    unsigned long long v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        /* Not expected on Linux; uniqueness still comes from O_EXCL and retries. */
        static unsigned long long counter;
        v = ((unsigned long long)getpid() << 32) ^
            __atomic_add_fetch(&counter, 0x9e3779b97f4a7c15ULL, __ATOMIC_RELAXED);
    }
    return v;
}

static void atomic_clear(oc_atomic_file *f)
{
    free(f->tmp_path);
    free(f->final_path);
    f->tmp_path = NULL;
    f->final_path = NULL;
    f->fd = -1;
    f->written = 0;
}

int oc_atomic_open(oc_atomic_file *f, const char *tmp_dir, const char *final_path, oc_error *err)
{
    f->fd = -1;
    f->tmp_path = NULL;
    f->final_path = NULL;
    f->written = 0;

    const char *base = base_name(final_path);
    if (!*base) {
        oc_error_set(err, OC_E_USAGE, "atomic write: \"%s\" does not name a file", final_path);
        return -1;
    }
    f->final_path = strdup(final_path);
    size_t cap = strlen(tmp_dir) + TMP_BASE_MAX + 40;
    f->tmp_path = malloc(cap);
    if (!f->final_path || !f->tmp_path) {
        atomic_clear(f);
        oc_error_set(err, OC_E_NOMEM, "create temporary for %s: out of memory", final_path);
        return -1;
    }
    for (int i = 0; i < TMP_TRIES; i++) {
        snprintf(f->tmp_path, cap, "%s/.tmp-%.*s-%016llx", tmp_dir, TMP_BASE_MAX, base,
                 random_u64());
        f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    int e = errno;
    oc_error_errno(err, e, "create temporary for %s in %s", final_path, tmp_dir);
    atomic_clear(f);
    return -1;
}

int oc_atomic_write(oc_atomic_file *f, const void *data, size_t len, oc_error *err)
{
    if (f->fd < 0) {
        oc_error_set(err, OC_E_USAGE, "write %s: file is not open",
                     f->final_path ? f->final_path : "(atomic file)");
        return -1;
    }
    if (oc_write_all(f->fd, data, len, f->final_path, err) != 0)
        return -1;
    f->written += len;
    return 0;
}

/* fsync, close, rename; then the directory's fsync when sync_dir. */
static int commit(oc_atomic_file *f, int sync_dir, oc_error *err)
{
    if (f->fd < 0 || !f->tmp_path || !f->final_path) {
        oc_error_set(err, OC_E_USAGE, "commit %s: file is not open",
                     f->final_path ? f->final_path : "(atomic file)");
        return -1;
    }
    if (fsync(f->fd) != 0) {
        oc_error_errno(err, errno, "fsync %s", f->final_path);
        oc_atomic_abort(f);
        return -1;
    }
    /* close can report write-back errors (NFS, quotas): check it too. */
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) {
        oc_error_errno(err, errno, "close %s", f->final_path);
        oc_atomic_abort(f);
        return -1;
    }
    if (rename(f->tmp_path, f->final_path) != 0) {
        int e = errno;
        oc_error_errno(err, e, "rename %s to %s%s", f->tmp_path, f->final_path,
                       e == EXDEV ? " (scratch directory on another file system)" : "");
        oc_atomic_abort(f);
        return -1;
    }
    /* The file is in place now; only its durability is in question below. */
    free(f->tmp_path);
    f->tmp_path = NULL;
    if (!sync_dir) {
        atomic_clear(f);
        return 0;
    }
    char *dir = dir_name(f->final_path);
    if (!dir) {
        oc_error_set(err, OC_E_NOMEM, "fsync directory of %s: out of memory", f->final_path);
        atomic_clear(f);
        return -1;
    }
    int rc = oc_fsync_dir(dir, err);
    free(dir);
    atomic_clear(f);
    return rc;
}

int oc_atomic_commit(oc_atomic_file *f, oc_error *err)
{
    return commit(f, 1, err);
}

void oc_atomic_abort(oc_atomic_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp_path)
        unlink(f->tmp_path);
    atomic_clear(f);
}

/* Write all of data, retrying EINTR and short writes: at the file offset
 * (at < 0, write) or at offset at (pwrite). */
static int write_fully(int fd, const void *data, size_t len, int64_t at, const char *what,
                       oc_error *err)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = at < 0 ? write(fd, p, len) : pwrite(fd, p, len, (off_t)at);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            oc_error_errno(err, errno, "write %s", what);
            return -1;
        }
        if (n == 0) {
            /* A regular file or pipe never does this with len > 0; do not spin. */
            oc_error_set(err, OC_E_IO, "write %s: no progress (wrote 0 bytes)", what);
            return -1;
        }
        p += n;
        len -= (size_t)n;
        if (at >= 0)
            at += n;
    }
    return 0;
}

int oc_write_all(int fd, const void *data, size_t len, const char *what, oc_error *err)
{
    return write_fully(fd, data, len, -1, what, err);
}

int oc_pwrite_all(int fd, const void *data, size_t len, uint64_t offset, const char *what,
                  oc_error *err)
{
    return write_fully(fd, data, len, (int64_t)offset, what, err);
}

int oc_fsync_dir(const char *dir, oc_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        oc_error_errno(err, errno, "open directory %s", dir);
        return -1;
    }
    int rc = 0;
    /* Some file systems cannot sync a directory and say EINVAL: nothing to do. */
    if (fsync(fd) != 0 && errno != EINVAL) {
        oc_error_errno(err, errno, "fsync directory %s", dir);
        rc = -1;
    }
    close(fd);
    return rc;
}

int oc_unlink_durably(const char *path, const char *dir, oc_error *err)
{
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return 0;
        oc_error_errno(err, errno, "cannot remove %s", path);
        return -1;
    }
    return oc_fsync_dir(dir, err);
}

static int mkdir_one(const char *path, oc_error *err)
{
    if (mkdir(path, 0755) == 0)
        return 0;
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        e = ENOTDIR;
    }
    oc_error_errno(err, e, "create directory %s", path);
    return -1;
}

int oc_mkdirs(const char *path, oc_error *err)
{
    if (!path || !*path) {
        oc_error_set(err, OC_E_USAGE, "create directory: empty path");
        return -1;
    }
    char *p = strdup(path);
    if (!p) {
        oc_error_set(err, OC_E_NOMEM, "create directory %s: out of memory", path);
        return -1;
    }
    /* Create each prefix ending before a '/', then the whole path. */
    int rc = 0;
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/' || s[-1] == '/')
            continue;
        *s = '\0';
        rc = mkdir_one(p, err);
        *s = '/';
    }
    if (rc == 0)
        rc = mkdir_one(p, err);
    free(p);
    return rc;
}

static int write_file(const char *tmp_dir, const char *final_path, const void *data, size_t len,
                      int sync_dir, oc_error *err)
{
    oc_atomic_file f;
    if (oc_atomic_open(&f, tmp_dir, final_path, err) != 0)
        return -1;
    if (oc_atomic_write(&f, data, len, err) != 0) {
        oc_atomic_abort(&f);
        return -1;
    }
    return commit(&f, sync_dir, err);
}

int oc_atomic_write_file(const char *tmp_dir, const char *final_path, const void *data, size_t len,
                         oc_error *err)
{
    return write_file(tmp_dir, final_path, data, len, 1, err);
}

int oc_atomic_write_file_entry_later(const char *tmp_dir, const char *final_path, const void *data,
                                     size_t len, oc_error *err)
{
    return write_file(tmp_dir, final_path, data, len, 0, err);
}

char *oc_read_file(const char *path, size_t max, size_t *len, oc_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        oc_error_errno(err, errno, "open %s", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        oc_error_errno(err, errno, "stat %s", path);
        close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        oc_error_errno(err, EISDIR, "read %s", path);
        close(fd);
        return NULL;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        oc_error_set(err, OC_E_LIMIT, "read %s: file is larger than the limit of %zu bytes", path,
                     max);
        close(fd);
        return NULL;
    }

    if (max > SIZE_MAX - 2)
        max = SIZE_MAX - 2;
    /* Start from the size fstat gave (plus the NUL and one byte to see EOF
     * or growth), and grow up to max + 1 for files whose size is unknown. */
    size_t cap = (S_ISREG(st.st_mode) ? (size_t)st.st_size : 4096) + 2;
    if (cap > max + 2)
        cap = max + 2;
    char *buf = malloc(cap);
    size_t used = 0;
    while (buf) {
        if (used + 1 == cap) {
            size_t ncap = cap - 1 > (max + 1) / 2 ? max + 2 : cap * 2;
            char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + used, cap - 1 - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            oc_error_errno(err, errno, "read %s", path);
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            oc_error_set(err, OC_E_LIMIT, "read %s: file is larger than the limit of %zu bytes",
                         path, max);
            free(buf);
            close(fd);
            return NULL;
        }
    }
    close(fd);
    if (!buf) {
        oc_error_set(err, OC_E_NOMEM, "read %s: out of memory", path);
        return NULL;
    }
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
}
