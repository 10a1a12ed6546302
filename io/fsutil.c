/* fsutil.c - scratch directories and their removal (see fsutil.h). */
#include "io/fsutil.h"

#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

int oc_remove_tree(const char *path, oc_error *err)
{
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return 0;
    if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS) != 0) {
        oc_error_errno(err, errno, "cannot remove %s", path);
        return -1;
    }
    return 0;
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
