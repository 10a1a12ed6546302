/* store_put.c - one verified layer into the store (see store_put.h). */
#include "engine/store_put.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/store/oci_layout.h"
#include "engine/store/store_dirsync.h"
#include "io/atomicfile.h"

int oc_store_put_layer(oc_store *s, const oc_pulled_layer *l, const char *tmp_path,
                       char **final_path, oc_error *err)
{
    /* the exact bytes first: a blob no descriptor reaches yet is only
     * garbage for gc if we die after this, never damage */
    if (l->blob_path) {
        if (oc_store_oci_put_file(s, l->hex, l->blob_path, l->blob_size, err) != 0)
            return -1;
        oc_store_crash_point("oci-blob-placed");
    }
    if (!tmp_path) { /* only the blob was fetched: the tar is in place */
        *final_path = l->path ? strdup(l->path) : NULL;
        if (!*final_path) {
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            return -1;
        }
        return 0;
    }
    char *ldir = oc_store_path(s, l->hex);
    char *final = NULL;
    int rc = -1;
    if (!ldir || asprintf(&final, "%s/layer.tar", ldir) < 0) {
        final = NULL;
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    struct stat st;
    int created = stat(ldir, &st) != 0;
    if (oc_mkdirs(ldir, err) != 0)
        goto out;
    if (rename(tmp_path, final) != 0) {
        oc_error_errno(err, errno, "move layer %s into %s", l->digest, final);
        goto out;
    }
    if (oc_fsync_dir(ldir, err) != 0 ||
        (created && oc_store_name_placed(s, oc_store_dir(s), err) != 0))
        goto out;
    oc_store_crash_point("layer-placed");
    oc_blob_mark m;
    memset(&m, 0, sizeof m);
    m.is_layer = 1;
    snprintf(m.digest, sizeof m.digest, "%s", l->digest);
    snprintf(m.diff_id, sizeof m.diff_id, "%s", l->diff_id);
    m.size = l->blob_size;
    m.tar_size = l->tar_size;
    if (oc_store_mark_write(s, l->hex, &m, err) != 0)
        goto out;
    *final_path = final;
    final = NULL;
    rc = 0;
out:
    free(ldir);
    free(final);
    return rc;
}
