/* layertar.c - a layer's tar read strictly (see layertar.h).
 *
 * libarchive reads; for every entry oc_tarhdr_read (tarheader.c) reads the
 * same header run again from the file, as Go's archive/tar would, at the
 * offset libarchive reports (archive_read_header_position: layers are plain
 * tar files, so stream and file offsets are the same). The entry is taken
 * only when the two agree on what is written to disk: type, name, link
 * target, size of a regular file, permission bits, owner, mtime, device
 * numbers and the names of extended attributes. */
#include "engine/expand/layertar.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/expand/tarheader.h"

#define READ_BLOCK (1u << 20)
#define WHY_CAP 512

struct oc_layertar {
    struct archive *a;
    int fd;
    char *label;
    char *last;    /* the last entry read, for errors about what follows it */
    uint64_t next; /* where Go's reader finds the next header */
    int empty;     /* an empty file: an archive without entries, as for Go */
};

const char *oc_archive_why(struct archive *a, char *buf, size_t cap)
{
    const char *msg = a ? archive_error_string(a) : NULL;
    if (msg && *msg)
        return msg;
    int e = a ? archive_errno(a) : 0;
    if (e > 0)
        snprintf(buf, cap, "%s (libarchive gave no message)", strerror(e));
    else
        snprintf(buf, cap, "libarchive gave no reason");
    return buf;
}

oc_layertar *oc_layertar_open(int fd, const char *label, const char *path, oc_error *err)
{
    if (lseek(fd, 0, SEEK_SET) != 0) {
        oc_error_errno(err, errno, "layer %s: cannot rewind %s", label, path);
        return NULL;
    }
    oc_layertar *t = calloc(1, sizeof *t);
    if (!t || !(t->label = strdup(label)) || !(t->a = archive_read_new())) {
        oc_layertar_free(t);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    t->fd = fd;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
        t->empty = 1; /* libarchive recognises no format in it */
        return t;
    }
    archive_read_support_format_tar(t->a);
    archive_read_support_format_gnutar(t->a);
    if (archive_read_open_fd(t->a, fd, READ_BLOCK) != ARCHIVE_OK) {
        char buf[128];
        if (archive_errno(t->a) == EILSEQ) /* ARCHIVE_ERRNO_FILE_FORMAT */
            oc_error_set(err, OC_E_FORMAT,
                         "layer %s: malformed tar: its first header is damaged or not a tar "
                         "header (%s)",
                         label, oc_archive_why(t->a, buf, sizeof buf));
        else
            oc_error_set(err, OC_E_IO, "layer %s: cannot open %s: %s", label, path,
                         oc_archive_why(t->a, buf, sizeof buf));
        oc_layertar_free(t);
        return NULL;
    }
    return t;
}

void oc_layertar_free(oc_layertar *t)
{
    if (!t)
        return;
    if (t->a)
        archive_read_free(t->a);
    free(t->label);
    free(t->last);
    free(t);
}

struct archive *oc_layertar_archive(oc_layertar *t)
{
    return t->a;
}

/* "after 'NAME'" or "at the start" for errors about a header that could
 * not be read. */
static void after_last(const oc_layertar *t, char *buf, size_t cap)
{
    if (t->last)
        snprintf(buf, cap, "after entry '%.300s'", t->last);
    else
        snprintf(buf, cap, "at the first entry");
}

/* libarchive's notice that a PAX name in UTF-8 has no form in the current
 * locale: the name's bytes are kept, as Go keeps them. (Its errno is
 * ARCHIVE_ERRNO_FILE_FORMAT, which is EILSEQ on Linux; archive.h does not
 * export the name.) */
static int charset_notice(struct archive *a)
{
    const char *msg = archive_error_string(a);
    return archive_errno(a) == EILSEQ && msg && strstr(msg, "can't be converted") != NULL;
}

static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Where Go's view and libarchive's differ in what reaches the disk:
 * 0, or 1 with why. */
static int disagree(const oc_tarhdr *g, struct archive_entry *e, char *why, size_t cap)
{
    const char *hl = archive_entry_hardlink(e);
    mode_t ft = archive_entry_filetype(e);
    int want_ft = -1;
    switch (g->typeflag) {
    case '0':
        want_ft = AE_IFREG;
        break;
    case '1':
        want_ft = 0; /* a hard link: libarchive names the target */
        break;
    case '2':
        want_ft = AE_IFLNK;
        break;
    case '3':
        want_ft = AE_IFCHR;
        break;
    case '4':
        want_ft = AE_IFBLK;
        break;
    case '5':
        want_ft = AE_IFDIR;
        break;
    case '6':
        want_ft = AE_IFIFO;
        break;
    default: /* containerd: "unhandled tar header type" */
        snprintf(why, cap, "type '%c' (0x%02x)%s, which containerd does not unpack",
                 g->typeflag >= 0x20 && g->typeflag < 0x7f ? g->typeflag : '?',
                 (unsigned char)g->typeflag,
                 g->typeflag == 'S'   ? " (an old-GNU sparse file; PAX sparse files are fine)"
                 : g->typeflag == '7' ? " (contiguous file)"
                                      : "");
        return 1;
    }
    if (g->uid < 0 || g->uid > 0xfffffffe || g->gid < 0 || g->gid > 0xfffffffe) {
        snprintf(why, cap, "owner %" PRId64 ":%" PRId64 " is beyond 32 bits", g->uid, g->gid);
        return 1;
    }
    if (want_ft == 0 ? !hl : (hl || (int)ft != want_ft)) {
        snprintf(why, cap,
                 "the tar readers disagree on its type (Go's archive/tar: '%c'; libarchive: %s)",
                 g->typeflag,
                 hl               ? "a hard link"
                 : ft == AE_IFDIR ? "a directory"
                 : ft == AE_IFREG ? "a regular file"
                 : ft == AE_IFLNK ? "a symlink"
                                  : "a special file");
        return 1;
    }
    if (!same_str(g->name, archive_entry_pathname(e))) {
        snprintf(why, cap, "the tar readers disagree on its name (Go's archive/tar: '%.200s')",
                 g->name);
        return 1;
    }
    const char *target = g->typeflag == '1'   ? hl
                         : g->typeflag == '2' ? archive_entry_symlink(e)
                                              : NULL;
    if ((g->typeflag == '1' || g->typeflag == '2') && !same_str(g->linkname, target)) {
        snprintf(why, cap,
                 "the tar readers disagree on its link target (Go's archive/tar: '%.200s', "
                 "libarchive: '%.200s')",
                 g->linkname, target ? target : "");
        return 1;
    }
    if (want_ft == AE_IFREG && archive_entry_size(e) != g->size) {
        snprintf(why, cap,
                 "its header says %" PRId64 " bytes but another size field says %" PRId64
                 " (an old-GNU or PAX 'realsize' on a file that is not sparse); Go's "
                 "archive/tar, which containerd unpacks with, reads %" PRId64,
                 g->size, (int64_t)archive_entry_size(e), g->size);
        return 1;
    }
    if ((int64_t)(archive_entry_perm(e) & 07777) != (g->mode & 07777) ||
        (int64_t)archive_entry_uid(e) != g->uid || (int64_t)archive_entry_gid(e) != g->gid ||
        (int64_t)archive_entry_mtime(e) != g->mtime) {
        snprintf(why, cap,
                 "the tar readers disagree on its mode, owner or time (Go's archive/tar: mode "
                 "%04" PRIo64 ", owner %" PRId64 ":%" PRId64 ", mtime %" PRId64 ")",
                 (uint64_t)(g->mode & 07777), g->uid, g->gid, g->mtime);
        return 1;
    }
    if ((ft == AE_IFCHR || ft == AE_IFBLK) && !hl &&
        ((int64_t)archive_entry_rdevmajor(e) != g->devmajor ||
         (int64_t)archive_entry_rdevminor(e) != g->devminor)) {
        snprintf(why, cap,
                 "the tar readers disagree on its device numbers (Go's archive/tar: %" PRId64
                 ",%" PRId64 ")",
                 g->devmajor, g->devminor);
        return 1;
    }
    size_t nx = (size_t)archive_entry_xattr_count(e);
    int xattrs_differ = nx != g->n_xattrs;
    if (!xattrs_differ && nx) {
        const char *xn;
        const void *xv;
        size_t xs;
        archive_entry_xattr_reset(e);
        while (!xattrs_differ && archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK) {
            int found = 0;
            for (size_t i = 0; i < g->n_xattrs && !found; i++)
                found = same_str(xn, g->xattr_names[i]);
            xattrs_differ = !found;
        }
        archive_entry_xattr_reset(e);
    }
    if (xattrs_differ) {
        snprintf(why, cap,
                 "the tar readers disagree on its extended attributes (Go's archive/tar reads "
                 "%zu SCHILY.xattr records, libarchive %zu attributes)",
                 g->n_xattrs, nx);
        return 1;
    }
    return 0;
}

static int entry_refused(oc_layertar *t, struct archive_entry *e, uint64_t pos, const char *why,
                         oc_error *err)
{
    const char *name = e ? archive_entry_pathname(e) : NULL;
    if (name && *name) {
        oc_error_set(err, OC_E_FORMAT, "layer %s: entry '%.400s' (tar byte %" PRIu64 "): %s",
                     t->label, name, pos, why);
    } else {
        char where[360];
        after_last(t, where, sizeof where);
        oc_error_set(err, OC_E_FORMAT, "layer %s: the entry at tar byte %" PRIu64 " (%s): %s",
                     t->label, pos, where, why);
    }
    return -1;
}

int oc_layertar_next(oc_layertar *t, struct archive_entry **e, oc_error *err)
{
    char why[WHY_CAP], buf[128], where[360], at[48] = "";
    if (t->empty)
        return 0;
    int r = archive_read_next_header(t->a, e);
    int64_t where_at = archive_read_header_position(t->a);
    uint64_t pos = where_at >= 0 ? (uint64_t)where_at : t->next;
    if (r != ARCHIVE_RETRY && r >= ARCHIVE_WARN && pos != t->next) {
        oc_error_set(err, OC_E_FORMAT,
                     "layer %s: the tar readers disagree where entry '%.300s' ends (libarchive "
                     "reads the next header at byte %" PRIu64 ", Go's archive/tar at %" PRIu64
                     "; a link, directory or device with a data size?)",
                     t->label, t->last ? t->last : "", pos, t->next);
        return -1;
    }
    if (r == ARCHIVE_EOF) {
        if (oc_tarhdr_check_end(t->fd, pos, why, sizeof why) != 0) {
            after_last(t, where, sizeof where);
            oc_error_set(err, OC_E_FORMAT,
                         "layer %s: malformed tar %s: %s (libarchive would stop there and drop "
                         "the rest; Go's archive/tar refuses it)",
                         t->label, where, why);
            return -1;
        }
        return 0;
    }
    if (r == ARCHIVE_RETRY || r < ARCHIVE_WARN) {
        /* after a fatal error libarchive reports no position: the header
         * is where the last entry ended (the readers agreed on it) */
        after_last(t, where, sizeof where);
        snprintf(at, sizeof at, " (tar byte %" PRIu64 ")", pos);
        const char *msg = archive_error_string(t->a);
        oc_tarhdr g;
        int go_refuses = oc_tarhdr_read(t->fd, pos, &g, why, sizeof why) != 0;
        if (!go_refuses)
            oc_tarhdr_free(&g);
        if (msg && *msg)
            oc_error_set(err, OC_E_FORMAT, "layer %s: malformed tar: a damaged header %s%s: %s%s%s",
                         t->label, where, at, msg, go_refuses ? "; " : "", go_refuses ? why : "");
        else
            oc_error_set(err, OC_E_FORMAT, "layer %s: malformed tar: a damaged header %s%s: %s",
                         t->label, where, at,
                         go_refuses ? why : oc_archive_why(t->a, buf, sizeof buf));
        return -1;
    }
    if (r == ARCHIVE_WARN && !charset_notice(t->a)) {
        snprintf(why, sizeof why, "malformed tar header: %s",
                 oc_archive_why(t->a, buf, sizeof buf));
        return entry_refused(t, *e, pos, why, err);
    }
    oc_tarhdr g;
    if (oc_tarhdr_read(t->fd, pos, &g, why, sizeof why) != 0) {
        char full[WHY_CAP + 80];
        snprintf(full, sizeof full, "a header Go's archive/tar (containerd) refuses: %s", why);
        return entry_refused(t, *e, pos, full, err);
    }
    int differ = disagree(&g, *e, why, sizeof why);
    t->next = g.next;
    oc_tarhdr_free(&g);
    if (differ)
        return entry_refused(t, *e, pos, why, err);
    const char *name = archive_entry_pathname(*e);
    free(t->last);
    t->last = name ? strdup(name) : NULL;
    return 1;
}
