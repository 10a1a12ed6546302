/* expand_write.c - one tar entry onto disk (see expand_write.h). */
#include "engine/expand/expand_write.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/expand/layertar.h"
#include "io/atomicfile.h"

struct oc_xwriter {
    struct archive *disk;
    struct archive_entry *link_entry;
    int rootfd;
    int is_root;
    uid_t uid;
    gid_t gid;
    uint64_t max_bytes;
    oc_expand_stats *st;
    char *cache_path; /* parent directory of the last entry, and its fd */
    size_t cache_len, cache_cap;
    int cache_fd;
};

static void warn(oc_xwriter *w, const char *path, const char *msg)
{
    if (w->st->warnings++ == 0)
        snprintf(w->st->first_warning, sizeof w->st->first_warning, "%s: %s", path, msg);
}

oc_xwriter *oc_xwriter_new(int rootfd, uint64_t max_bytes, oc_expand_stats *stats, oc_error *err)
{
    oc_xwriter *w = calloc(1, sizeof *w);
    if (!w) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    w->rootfd = rootfd;
    w->uid = geteuid();
    w->gid = getegid();
    w->is_root = w->uid == 0;
    w->max_bytes = max_bytes;
    w->st = stats;
    w->cache_fd = -1;
    w->disk = archive_write_disk_new();
    w->link_entry = archive_entry_new();
    if (!w->disk || !w->link_entry) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        oc_xwriter_free(w);
        return NULL;
    }
    int flags = ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_NO_AUTODIR |
                ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR;
    if (w->is_root)
        flags |= ARCHIVE_EXTRACT_OWNER;
    if (archive_write_disk_set_options(w->disk, flags) != ARCHIVE_OK) {
        char buf[128];
        oc_error_set(err, OC_E_IO, "libarchive's disk writer refused its options: %s",
                     oc_archive_why(w->disk, buf, sizeof buf));
        oc_xwriter_free(w);
        return NULL;
    }
    return w;
}

int oc_xwriter_close(oc_xwriter *w, oc_error *err)
{
    oc_xwriter_forget(w);
    if (archive_write_close(w->disk) < ARCHIVE_WARN) {
        char buf[128];
        oc_error_set(err, OC_E_IO, "finishing the tree: %s",
                     oc_archive_why(w->disk, buf, sizeof buf));
        return -1;
    }
    return 0;
}

void oc_xwriter_free(oc_xwriter *w)
{
    if (!w)
        return;
    oc_xwriter_forget(w);
    if (w->disk)
        archive_write_free(w->disk);
    if (w->link_entry)
        archive_entry_free(w->link_entry);
    free(w->cache_path);
    free(w);
}

void oc_xwriter_forget(oc_xwriter *w)
{
    if (w->cache_fd >= 0)
        close(w->cache_fd);
    w->cache_fd = -1;
    w->cache_len = 0;
}

oc_beneath oc_xwriter_parent(oc_xwriter *w, const char *path, int flags, int *fd, const char **leaf,
                             size_t *bad_len, oc_error *err)
{
    const char *slash = strrchr(path, '/');
    size_t plen = slash ? (size_t)(slash - path) : 0;
    *leaf = slash ? slash + 1 : path;
    if (w->cache_fd >= 0 && w->cache_len == plen && memcmp(w->cache_path, path, plen) == 0) {
        *fd = w->cache_fd;
        return OC_BENEATH_OK;
    }
    oc_xwriter_forget(w);
    unsigned long made = 0;
    int nfd = -1;
    oc_beneath r = oc_beneath_open_dir(w->rootfd, path, plen, flags, &nfd, bad_len, &made, err);
    if (r != OC_BENEATH_OK)
        return r;
    if (plen + 1 > w->cache_cap) {
        char *np = realloc(w->cache_path, plen + 64);
        if (!np) {
            close(nfd);
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            return OC_BENEATH_ERROR;
        }
        w->cache_path = np;
        w->cache_cap = plen + 64;
    }
    memcpy(w->cache_path, path, plen);
    w->cache_len = plen;
    w->cache_fd = nfd;
    *fd = nfd;
    return OC_BENEATH_OK;
}

static int disk_error(oc_xwriter *w, const char *path, oc_error *err)
{
    int e = archive_errno(w->disk);
    char buf[128];
    const char *msg = oc_archive_why(w->disk, buf, sizeof buf);
    oc_errcode code = e == ENOSPC || e == EDQUOT ? OC_E_NOSPACE : OC_E_IO;
    if (e == EPERM || strstr(msg, "symlink") || strstr(msg, "..") || strstr(msg, "bsolute"))
        code = OC_E_FORMAT;
    oc_error_set(err, code, "cannot write %s: %s", path, msg);
    return -1;
}

static int header(oc_xwriter *w, struct archive_entry *e, const char *path, oc_error *err)
{
    int r = archive_write_header(w->disk, e);
    if (r == ARCHIVE_WARN) {
        char buf[128];
        warn(w, path, oc_archive_why(w->disk, buf, sizeof buf));
        return 0;
    }
    return r == ARCHIVE_OK ? 0 : disk_error(w, path, err);
}

static int finish(oc_xwriter *w, const char *path, oc_error *err)
{
    int r = archive_write_finish_entry(w->disk);
    if (r == ARCHIVE_WARN) {
        char buf[128];
        warn(w, path, oc_archive_why(w->disk, buf, sizeof buf));
        return 0;
    }
    return r == ARCHIVE_OK ? 0 : disk_error(w, path, err);
}

/* The entry's extended attributes on fd; one that cannot be set is a warning. */
static void set_xattrs(oc_xwriter *w, int fd, struct archive_entry *e, const char *path)
{
    if (archive_entry_xattr_count(e) == 0)
        return;
    archive_entry_xattr_reset(e);
    const char *name;
    const void *value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
        if (name && fsetxattr(fd, name, value, size, 0) != 0)
            warn(w, path, "cannot restore an extended attribute");
}

/* containerd's boundTime: a time before 1970 or beyond what 64 bits of
 * nanoseconds hold (2262) is written as the epoch. */
static void bound_time(int64_t *sec, long *nsec)
{
    const int64_t max_sec = INT64_MAX / 1000000000, max_nsec = INT64_MAX % 1000000000;
    if (*sec < 0 || *sec > max_sec || (*sec == max_sec && *nsec > max_nsec))
        *sec = *nsec = 0;
}

/* The entry's times as containerd sets them: mtime bounded, atime the later
 * of atime and mtime (the mtime when unset), bounded. */
static void bound_times(struct archive_entry *e)
{
    int64_t ms = (int64_t)archive_entry_mtime(e), as = ms;
    long mn = archive_entry_mtime_nsec(e), an = mn;
    if (archive_entry_atime_is_set(e) &&
        ((int64_t)archive_entry_atime(e) > ms ||
         ((int64_t)archive_entry_atime(e) == ms && archive_entry_atime_nsec(e) > mn))) {
        as = (int64_t)archive_entry_atime(e);
        an = archive_entry_atime_nsec(e);
    }
    bound_time(&ms, &mn);
    bound_time(&as, &an);
    archive_entry_set_mtime(e, (time_t)ms, mn);
    archive_entry_set_atime(e, (time_t)as, an);
}

/* Owner, mode, xattrs and times of the regular file fd, in the order that
 * keeps each: chown clears setuid bits and capabilities, so it goes first. */
static void file_meta(oc_xwriter *w, int fd, struct archive_entry *e, const char *path)
{
    uid_t uid = (uid_t)archive_entry_uid(e);
    gid_t gid = (gid_t)archive_entry_gid(e);
    mode_t mode = archive_entry_perm(e) & 07777;
    if (w->is_root) {
        if (fchown(fd, uid, gid) != 0)
            warn(w, path, "cannot set the owner");
    } else {
        /* the file is ours: setuid/setgid to someone else is not kept */
        if (uid != w->uid)
            mode &= ~(mode_t)S_ISUID;
        if (gid != w->gid)
            mode &= ~(mode_t)S_ISGID;
    }
    if (fchmod(fd, mode) != 0)
        warn(w, path, "cannot set the mode");
    set_xattrs(w, fd, e, path);
    /* an unset mtime is now, as for libarchive; times as containerd sets
     * them (bound_times) */
    struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    if (archive_entry_mtime_is_set(e)) {
        bound_times(e);
        ts[1].tv_sec = (time_t)archive_entry_mtime(e);
        ts[1].tv_nsec = archive_entry_mtime_nsec(e);
        ts[0].tv_sec = (time_t)archive_entry_atime(e);
        ts[0].tv_nsec = archive_entry_atime_nsec(e);
    }
    if (futimens(fd, ts) != 0)
        warn(w, path, "cannot set the times");
}

/* A regular file with its data, written by us rather than by libarchive's
 * disk writer: the fd is ours from open to close on every path (libarchive
 * 3.6 keeps its fd open when it fails to write or extend a file), it is
 * made beneath the parent fd (no path walk, O_EXCL and O_NOFOLLOW), and
 * sparse files keep their holes. */
static int write_regular(oc_xwriter *w, struct archive *r, struct archive_entry *e, int dirfd,
                         const char *leaf, const char *path, int64_t size, oc_error *err)
{
    int fd = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        oc_error_errno(err, errno, "cannot create %s", path);
        return -1;
    }
    uint64_t end = 0;
    while (size > 0) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int rr = archive_read_data_block(r, &buf, &len, &off);
        if (rr == ARCHIVE_EOF)
            break;
        if (rr != ARCHIVE_OK) { /* a warning here is a damaged entry too */
            char why[128];
            oc_error_set(err, OC_E_FORMAT, "reading the data of %s: %s", path,
                         oc_archive_why(r, why, sizeof why));
            goto fail;
        }
        if (off < 0 || (uint64_t)off > (uint64_t)size || len > (uint64_t)size - (uint64_t)off) {
            oc_error_set(err, OC_E_FORMAT, "%s: more data than its size", path);
            goto fail;
        }
        if (len && oc_pwrite_all(fd, buf, len, (uint64_t)off, path, err) != 0)
            goto fail;
        if ((uint64_t)off + len > end)
            end = (uint64_t)off + len;
    }
    if (end < (uint64_t)size && ftruncate(fd, (off_t)size) != 0) {
        oc_error_errno(err, errno, "cannot extend %s to %" PRId64 " bytes", path, size);
        goto fail;
    }
    file_meta(w, fd, e, path);
    if (close(fd) != 0) {
        oc_error_errno(err, errno, "cannot write %s", path);
        return -1;
    }
    return 0;
fail:
    close(fd);
    return -1;
}

int oc_xwriter_entry(oc_xwriter *w, struct archive *r, struct archive_entry *e, int dirfd,
                     const char *leaf, const char *path, oc_error *err)
{
    mode_t type = archive_entry_filetype(e);
    if (!w->is_root && (type == AE_IFCHR || type == AE_IFBLK)) {
        w->st->devices_skipped++;
        return 1;
    }
    if (!w->is_root &&
        ((uid_t)archive_entry_uid(e) != w->uid || (gid_t)archive_entry_gid(e) != w->gid))
        w->st->owners_skipped++;
    int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (size < 0)
        size = 0;
    if (type != AE_IFLNK && type != AE_IFCHR && type != AE_IFBLK && type != AE_IFIFO) {
        /* regular, or a type libarchive would write as a regular file */
        if (w->max_bytes && (uint64_t)size > w->max_bytes - w->st->bytes) {
            oc_error_set(err, OC_E_LIMIT,
                         "%s (%" PRId64 " bytes) would take the tree beyond the limit of %" PRIu64
                         " bytes (--max-expand-size)",
                         path, size, w->max_bytes);
            return -1;
        }
        if (write_regular(w, r, e, dirfd, leaf, path, size, err) != 0)
            return -1;
        w->st->bytes += (uint64_t)size;
        w->st->files++;
        return 0;
    }
    archive_entry_set_pathname(e, path);
    archive_entry_set_size(e, 0); /* only regular files carry data */
    if (archive_entry_mtime_is_set(e))
        bound_times(e);
    if (header(w, e, path, err) != 0 || finish(w, path, err) != 0)
        return -1;
    if (type == AE_IFLNK)
        w->st->symlinks++;
    else
        w->st->others++;
    return 0;
}

int oc_xwriter_link(oc_xwriter *w, const char *path, const char *target, oc_error *err)
{
    struct archive_entry *e = w->link_entry;
    archive_entry_clear(e);
    archive_entry_set_pathname(e, path);
    archive_entry_set_hardlink(e, target);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    if (header(w, e, path, err) != 0 || finish(w, path, err) != 0)
        return -1;
    w->st->hardlinks++;
    return 0;
}

int oc_xwriter_mkdir(oc_xwriter *w, int parent_fd, const char *leaf, struct archive_entry *e,
                     oc_error *err)
{
    if (mkdirat(parent_fd, leaf, 0755) != 0) {
        struct stat st;
        if (errno != EEXIST) {
            oc_error_errno(err, errno, "cannot create directory %s", leaf);
            return -1;
        }
        if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            oc_error_errno(err, errno, "cannot stat %s", leaf);
            return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (oc_beneath_remove(parent_fd, leaf, err) != 0)
                return -1;
            if (mkdirat(parent_fd, leaf, 0755) != 0) {
                oc_error_errno(err, errno, "cannot create directory %s", leaf);
                return -1;
            }
        }
    }
    w->st->dirs++;
    if (!e || archive_entry_xattr_count(e) == 0)
        return 0;
    int fd = openat(parent_fd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        oc_error_errno(err, errno, "cannot open directory %s", leaf);
        return -1;
    }
    set_xattrs(w, fd, e, leaf);
    close(fd);
    return 0;
}

int oc_xwriter_dir_meta(oc_xwriter *w, const char *path, const oc_plan_dirmeta *m, oc_error *err)
{
    int fd = -1;
    if (!*path) {
        fd = openat(w->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        oc_beneath r = oc_beneath_open_dir(w->rootfd, path, strlen(path), 0, &fd, NULL, NULL, err);
        if (r == OC_BENEATH_ERROR)
            return -1;
        if (r != OC_BENEATH_OK)
            return 0;
    }
    if (fd < 0) {
        oc_error_errno(err, errno, "cannot open %s", path);
        return -1;
    }
    if (w->is_root && fchown(fd, (uid_t)m->uid, (gid_t)m->gid) != 0)
        warn(w, path, "cannot set the owner");
    else if (!w->is_root && ((uid_t)m->uid != w->uid || (gid_t)m->gid != w->gid))
        w->st->owners_skipped++;
    if (fchmod(fd, m->mode & 07777) != 0)
        warn(w, path, "cannot set the mode");
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = (time_t)m->mtime;
    ts[0].tv_nsec = ts[1].tv_nsec = m->mtime_ns;
    if (futimens(fd, ts) != 0)
        warn(w, path, "cannot set the times");
    close(fd);
    return 0;
}

void oc_xwriter_meta_of(struct archive_entry *e, oc_plan_dirmeta *m)
{
    m->mode = archive_entry_perm(e) & 07777;
    m->uid = archive_entry_uid(e);
    m->gid = archive_entry_gid(e);
    int64_t sec = archive_entry_mtime_is_set(e) ? (int64_t)archive_entry_mtime(e) : 0;
    long nsec = archive_entry_mtime_is_set(e) ? archive_entry_mtime_nsec(e) : 0;
    bound_time(&sec, &nsec);
    m->mtime = sec;
    m->mtime_ns = nsec;
}
