/* fsutil.c - scratch directories and their removal (see fsutil.h). */
#include "io/fsutil.h"

#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

/* Unreadable directories opened up by the current pass of open_dirs (per
 * thread: an nftw callback takes no argument of ours). */
static _Thread_local unsigned long dirs_opened_up;

/* Give the owner rwx on a directory that lacks it, so that what it holds can
 * be removed without root (an expanded layer has 0555 and 0000 directories).
 * nftw reports a directory before its entries, so a readable one is fixed
 * before its entries are; an unreadable one (FTW_DNR) is fixed but not
 * entered, which the next pass does. */
static int open_dir(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if ((flag == FTW_D || flag == FTW_DNR) && (st->st_mode & S_IRWXU) != S_IRWXU) {
        if (chmod(path, (st->st_mode & 07777) | S_IRWXU) != 0)
            return errno == ENOENT ? 0 : -1;
        if (flag == FTW_DNR)
            dirs_opened_up++;
    }
    return 0;
}

/* Until no unreadable directory is left (each pass enters at least one more
 * level; bounded in case a file system says yes and does not); a directory
 * that cannot be changed ends it, and the removal that follows names what is
 * left. */
static void open_dirs(const char *path)
{
    for (int pass = 0; pass < 4096; pass++) {
        dirs_opened_up = 0;
        if (nftw(path, open_dir, 32, FTW_PHYS) != 0 || dirs_opened_up == 0)
            return;
    }
}

int oc_remove_tree(const char *path, oc_error *err)
{
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return 0;
    if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS) == 0)
        return 0;
    /* without root, a directory lacking owner rwx stops the walk (EACCES,
     * or EISDIR for one it could not read): open the rest of the tree up (a
     * second walk, only then) and remove what is left */
    if (geteuid() != 0) {
        open_dirs(path);
        if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS) == 0)
            return 0;
    }
    oc_error_errno(err, errno, "cannot remove %s", path);
    return -1;
}

char *oc_scratch_dir_beside(const char *target, oc_error *err)
{
    char *a = strdup(target), *b = strdup(target), *path = NULL;
    if (!a || !b || asprintf(&path, "%s/.%s.occy-XXXXXX", dirname(a), basename(b)) < 0) {
        free(a);
        free(b);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    free(a);
    free(b);
    if (!mkdtemp(path)) {
        oc_error_errno(err, errno, "cannot create a scratch directory beside %s", target);
        free(path);
        return NULL;
    }
    return path;
}
