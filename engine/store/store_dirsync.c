/* store_dirsync.c - durable names in the store's shared directories (see
 * store_dirsync.h). */
#include "engine/store/store_dirsync.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "engine/store/oci_layout.h"
#include "io/atomicfile.h"

int oc_store_name_placed(oc_store *s, const char *dir, oc_error *err)
{
    return oc_store_dir_syncs_deferred(s) ? 0 : oc_fsync_dir(dir, err);
}

int oc_store_put_small(oc_store *s, const char *path, const void *data, size_t len, oc_error *err)
{
    const char *run = oc_store_run_dir(s);
    if (!run) {
        oc_error_set(err, OC_E_USAGE, "write %s: the store is not open to write", path);
        return -1;
    }
    return oc_store_dir_syncs_deferred(s)
               ? oc_atomic_write_file_entry_later(run, path, data, len, err)
               : oc_atomic_write_file(run, path, data, len, err);
}

/* fsync dir, unless it was never made (nothing placed in it to sync). */
static int sync_if_there(const char *dir, oc_error *err)
{
    struct stat st;
    return stat(dir, &st) != 0 && errno == ENOENT ? 0 : oc_fsync_dir(dir, err);
}

int oc_store_sync_dirs(oc_store *s, oc_error *err)
{
    if (!oc_store_dir_syncs_deferred(s))
        return 0;
    if (sync_if_there(oc_store_dir(s), err) != 0)
        return -1;
    static const char *const under[] = {OC_STORE_OCI_BLOBS, ".occystrap/blobs"};
    for (size_t i = 0; i < sizeof under / sizeof under[0]; i++) {
        char *dir = oc_store_path(s, under[i]);
        if (!dir) {
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            return -1;
        }
        int rc = sync_if_there(dir, err);
        free(dir);
        if (rc != 0)
            return -1;
    }
    return 0;
}
