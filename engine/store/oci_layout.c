/* oci_layout.c - the store's OCI image layout on disk (see oci_layout.h). */
#include "engine/store/oci_layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/store/store_dirsync.h"
#include "io/atomicfile.h"
#include "io/fsutil.h"

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

/* STORE/oci made whole in the run's scratch (oci-layout, blobs/sha256) and
 * renamed into place, so that no crash leaves an oci/ without its
 * oci-layout (verify calls that damage). Another run that made it first
 * wins: ours is dropped. */
static int make_layout_dir(oc_store *s, const char *oci, oc_error *err)
{
    char *tmp = NULL, *tblobs = NULL, *tlayout = NULL;
    const char *run = oc_store_run_dir(s);
    int rc = -1;
    if (asprintf(&tmp, "%s/oci-new", run) < 0 || asprintf(&tblobs, "%s/blobs/sha256", tmp) < 0 ||
        asprintf(&tlayout, "%s/oci-layout", tmp) < 0) {
        oom(err);
    } else if (oc_mkdirs(tblobs, err) == 0 &&
               oc_atomic_write_file(run, tlayout, OC_STORE_OCI_LAYOUT_TEXT,
                                    strlen(OC_STORE_OCI_LAYOUT_TEXT), err) == 0) {
        if (rename(tmp, oci) == 0 || errno == EEXIST || errno == ENOTEMPTY) {
            rc = oc_fsync_dir(oc_store_dir(s), err);
        } else {
            oc_error_set(err, OC_E_IO, "%s: %s", oci, strerror(errno));
        }
    }
    if (tmp) {
        oc_error ignored;
        oc_error_clear(&ignored);
        (void)oc_remove_tree(tmp, &ignored); /* gone after the rename */
    }
    free(tmp);
    free(tblobs);
    free(tlayout);
    return rc;
}

int oc_store_oci_prepare(oc_store *s, oc_error *err)
{
    char *oci = oc_store_path(s, OC_STORE_OCI_DIR);
    char *blobs = oc_store_path(s, OC_STORE_OCI_BLOBS);
    char *layout = oc_store_path(s, OC_STORE_OCI_DIR "/oci-layout");
    int rc = -1;
    struct stat st;
    if (!oci || !blobs || !layout) {
        oom(err);
    } else if (stat(oci, &st) != 0 && errno == ENOENT) {
        rc = make_layout_dir(s, oci, err);
    } else if (oc_mkdirs(blobs, err) == 0) {
        /* an oci/ of an older run: written whole by rename, and two writers
         * at once write the same bytes */
        rc = stat(layout, &st) == 0
                 ? 0
                 : oc_atomic_write_file(oc_store_run_dir(s), layout, OC_STORE_OCI_LAYOUT_TEXT,
                                        strlen(OC_STORE_OCI_LAYOUT_TEXT), err);
    }
    free(oci);
    free(blobs);
    free(layout);
    return rc;
}

char *oc_store_oci_blob_path(const oc_store *s, const char *hex)
{
    char *p = NULL;
    return asprintf(&p, "%s/" OC_STORE_OCI_BLOBS "/%s", oc_store_dir(s), hex) < 0 ? NULL : p;
}

int oc_store_oci_have(const oc_store *s, const char *hex, uint64_t size)
{
    char *path = oc_store_oci_blob_path(s, hex);
    struct stat st;
    int ok = path && lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
    free(path);
    return ok;
}

int oc_store_have_blob(void *opaque, const char *digest, uint64_t size)
{
    if (strncmp(digest, "sha256:", 7) != 0 || !oc_store_name_is_hex(digest + 7, "", NULL))
        return 0;
    return oc_store_oci_have(opaque, digest + 7, size);
}

static int fsync_blobs(oc_store *s, oc_error *err)
{
    char *dir = oc_store_path(s, OC_STORE_OCI_BLOBS);
    if (!dir)
        return oom(err);
    int rc = oc_store_name_placed(s, dir, err);
    free(dir);
    return rc;
}

int oc_store_oci_put_file(oc_store *s, const char *hex, const char *tmp_path, uint64_t size,
                          oc_error *err)
{
    struct stat st;
    if (stat(tmp_path, &st) != 0) {
        oc_error_errno(err, errno, "blob sha256:%s: its verified copy %s", hex, tmp_path);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
        oc_error_set(err, OC_E_IO,
                     "blob sha256:%s: its verified copy %s holds %llu bytes, not %llu", hex,
                     tmp_path, (unsigned long long)st.st_size, (unsigned long long)size);
        return -1;
    }
    char *final = oc_store_oci_blob_path(s, hex);
    if (!final)
        return oom(err);
    int rc = -1;
    if (rename(tmp_path, final) != 0)
        oc_error_errno(err, errno, "move blob sha256:%s into %s", hex, final);
    else
        rc = fsync_blobs(s, err);
    free(final);
    return rc;
}

int oc_store_oci_put_bytes(oc_store *s, const char *hex, const void *data, size_t len,
                           oc_error *err)
{
    if (oc_store_oci_have(s, hex, len))
        return 0;
    char *final = oc_store_oci_blob_path(s, hex);
    if (!final)
        return oom(err);
    int rc = oc_store_put_small(s, final, data, len, err);
    free(final);
    return rc;
}

/* The file system will not link src there: copy its bytes instead. */
static int copy_small(oc_store *s, const char *hex, const char *src, uint64_t size, oc_error *err)
{
    size_t len = 0;
    char *data = oc_read_file(src, (size_t)size + 1, &len, err);
    if (!data)
        return -1;
    int rc = -1;
    if (len != size)
        oc_error_set(err, OC_E_IO, "%s changed while it was copied into blob sha256:%s", src, hex);
    else
        rc = oc_store_oci_put_bytes(s, hex, data, len, err);
    free(data);
    return rc;
}

int oc_store_oci_link(oc_store *s, const char *hex, const char *src, uint64_t size, oc_error *err)
{
    if (oc_store_oci_have(s, hex, size))
        return 0;
    struct stat st;
    if (stat(src, &st) != 0 || (uint64_t)st.st_size != size) {
        oc_error_set(err, OC_E_IO, "%s is not the %llu bytes of blob sha256:%s it was written with",
                     src, (unsigned long long)size, hex);
        return -1;
    }
    char *tmp = NULL, *final = oc_store_oci_blob_path(s, hex);
    if (!final || asprintf(&tmp, "%s/link-%s", oc_store_run_dir(s), hex) < 0) {
        free(final);
        return oom(err);
    }
    int rc = -1;
    (void)unlink(tmp);
    if (link(src, tmp) != 0) {
        int e = errno;
        if (e == EXDEV || e == EPERM || e == EMLINK || e == ENOTSUP || e == EOPNOTSUPP ||
            e == ENOSYS)
            rc = copy_small(s, hex, src, size, err);
        else
            oc_error_errno(err, e, "link %s as blob sha256:%s", src, hex);
    } else if (rename(tmp, final) != 0) {
        oc_error_errno(err, errno, "move blob sha256:%s into %s", hex, final);
    } else {
        rc = fsync_blobs(s, err);
    }
    /* a rename between two names of one inode leaves both (rename(2)) */
    (void)unlink(tmp);
    free(tmp);
    free(final);
    return rc;
}
