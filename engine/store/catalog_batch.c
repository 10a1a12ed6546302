/* catalog_batch.c - catalog.json in memory, written in batches (see
 * catalog_batch.h). */
#include "engine/store/catalog_batch.h"
#include "engine/store/store_dirsync.h"
#include "io/grow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct queued {
    char *image, *tag, *file;
} queued;

typedef struct queued_oci {
    char *ref, *text; /* text NULL: drop ref */
} queued_oci;

/* What identifies the catalog file we last read or wrote. We keep that
 * file open (fd), so its inode cannot be freed and given to the file
 * another writer renames over it: an equal inode number then really is
 * the same file, whatever the clock's granularity makes of its mtime. */
typedef struct file_id {
    int exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int fd; /* held (seen ids only), or -1 */
} file_id;

struct oc_catalog_batch {
    oc_store *s;
    char *path;
    oc_catalog *view;
    file_id seen;
    queued *q;
    size_t n_q, cap_q;
    unsigned writes, rereads;
    char *oci_path; /* STORE/oci/index.json */
    oc_oci_index *oci;
    file_id oci_seen;
    queued_oci *oq;
    size_t n_oq, cap_oq;
};

/* What st says identifies its file (fd left as it is). */
static void id_of(file_id *id, const struct stat *st)
{
    id->exists = 1;
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime = st->st_mtim;
}

static int identify(const char *path, file_id *id, oc_error *err)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        oc_error_errno(err, errno, "stat %s", path);
        return -1;
    }
    id_of(id, &st);
    return 0;
}

/* Identify path and hold it open into *id (the lock is held, so it is the
 * file just read or written). */
static int hold(const char *path, file_id *id, oc_error *err)
{
    if (id->fd >= 0)
        close(id->fd);
    memset(id, 0, sizeof *id);
    id->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (id->fd < 0 || fstat(id->fd, &st) != 0) {
        int e = errno;
        if (id->fd >= 0)
            close(id->fd);
        id->fd = -1;
        if (e == ENOENT)
            return 0;
        oc_error_errno(err, e, "open %s", path);
        return -1;
    }
    id_of(id, &st);
    return 0;
}

static int same_file(const file_id *a, const file_id *b)
{
    if (!a->exists || !b->exists)
        return a->exists == b->exists;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Read catalog.json into the view (the lock is held). */
static int reload(oc_catalog_batch *b, oc_error *err)
{
    oc_catalog *c = NULL;
    if (hold(b->path, &b->seen, err) != 0 || oc_store_catalog_load(b->s, &c, err) != 0)
        return -1;
    oc_catalog_free(b->view);
    b->view = c;
    return 0;
}

/* The same for index.json. */
static int reload_oci(oc_catalog_batch *b, oc_error *err)
{
    oc_oci_index *x = NULL;
    if (hold(b->oci_path, &b->oci_seen, err) != 0 || oc_store_oci_index_load(b->s, &x, err) != 0)
        return -1;
    oc_oci_index_free(b->oci);
    b->oci = x;
    return 0;
}

oc_catalog_batch *oc_catalog_batch_open(oc_store *s, oc_error *err)
{
    oc_catalog_batch *b = calloc(1, sizeof *b);
    if (!b || !(b->path = oc_store_path(s, "catalog.json")) ||
        !(b->oci_path = oc_store_path(s, "oci/index.json"))) {
        if (b)
            free(b->path);
        free(b);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    b->s = s;
    b->seen.fd = b->oci_seen.fd = -1;
    int fd = oc_store_catalog_lock(s, err);
    int rc = fd < 0 ? -1 : reload(b, err);
    if (rc == 0)
        rc = reload_oci(b, err);
    oc_store_catalog_unlock(fd);
    if (rc != 0) {
        oc_catalog_batch_free(b);
        return NULL;
    }
    return b;
}

static void drop_catalog_queue(oc_catalog_batch *b)
{
    for (size_t i = 0; i < b->n_q; i++) {
        free(b->q[i].image);
        free(b->q[i].tag);
        free(b->q[i].file);
    }
    b->n_q = 0;
}

static void drop_queue(oc_catalog_batch *b)
{
    drop_catalog_queue(b);
    for (size_t i = 0; i < b->n_oq; i++) {
        free(b->oq[i].ref);
        free(b->oq[i].text);
    }
    b->n_oq = 0;
}

void oc_catalog_batch_free(oc_catalog_batch *b)
{
    if (!b)
        return;
    drop_queue(b);
    free(b->q);
    free(b->oq);
    oc_catalog_free(b->view);
    oc_oci_index_free(b->oci);
    if (b->seen.fd >= 0)
        close(b->seen.fd);
    if (b->oci_seen.fd >= 0)
        close(b->oci_seen.fd);
    free(b->path);
    free(b->oci_path);
    free(b);
}

const oc_catalog *oc_catalog_batch_view(const oc_catalog_batch *b)
{
    return b->view;
}

size_t oc_catalog_batch_pending(const oc_catalog_batch *b)
{
    return b->n_q + b->n_oq;
}

const oc_oci_index *oc_catalog_batch_oci_view(const oc_catalog_batch *b)
{
    return b->oci;
}

static int apply_oci(oc_oci_index *x, const queued_oci *q, oc_error *err)
{
    if (q->text)
        return oc_oci_index_set(x, q->ref, q->text, err);
    (void)oc_oci_index_remove(x, q->ref);
    return 0;
}

int oc_catalog_batch_oci_set(oc_catalog_batch *b, const char *ref_name, const char *text,
                             oc_error *err)
{
    if (!text && !oc_oci_index_digest(b->oci, ref_name))
        return 0; /* nothing to drop */
    queued_oci *grown = oc_grow(b->oq, &b->cap_oq, b->n_oq + 1, sizeof *grown, 64);
    if (!grown) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    b->oq = grown;
    queued_oci *e = &b->oq[b->n_oq];
    e->ref = strdup(ref_name);
    e->text = text ? strdup(text) : NULL;
    if (!e->ref || (text && !e->text) || apply_oci(b->oci, e, err) != 0) {
        free(e->ref);
        free(e->text);
        if (err && err->code == OC_OK)
            oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    b->n_oq++;
    return 0;
}

unsigned oc_catalog_batch_writes(const oc_catalog_batch *b)
{
    return b->writes;
}

unsigned oc_catalog_batch_rereads(const oc_catalog_batch *b)
{
    return b->rereads;
}

int oc_catalog_batch_add(oc_catalog_batch *b, const char *image, const char *tag,
                         const char *manifest_file, oc_error *err)
{
    queued *grown = oc_grow(b->q, &b->cap_q, b->n_q + 1, sizeof *grown, 64);
    if (!grown) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    b->q = grown;
    queued *e = &b->q[b->n_q];
    e->image = strdup(image);
    e->tag = strdup(tag);
    e->file = strdup(manifest_file);
    if (!e->image || !e->tag || !e->file ||
        oc_catalog_set(b->view, image, tag, manifest_file, err) != 0) {
        free(e->image);
        free(e->tag);
        free(e->file);
        if (err && err->code == OC_OK)
            oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    b->n_q++;
    return 0;
}

/* index.json's part of a flush (the lock is held). */
static int flush_oci(oc_catalog_batch *b, oc_error *err)
{
    file_id now;
    if (identify(b->oci_path, &now, err) != 0)
        return -1;
    if (!same_file(&now, &b->oci_seen) && reload_oci(b, err) != 0)
        return -1;
    for (size_t i = 0; i < b->n_oq; i++)
        if (apply_oci(b->oci, &b->oq[i], err) != 0)
            return -1;
    if (oc_store_oci_index_replace(b->s, b->oci, err) != 0)
        return -1;
    return hold(b->oci_path, &b->oci_seen, err);
}

int oc_catalog_batch_flush(oc_catalog_batch *b, oc_error *err)
{
    if (b->n_q == 0 && b->n_oq == 0)
        return 0;
    /* what the catalog and index.json are about to name, durable first */
    if (oc_store_sync_dirs(b->s, err) != 0)
        return -1;
    int fd = oc_store_catalog_lock(b->s, err);
    if (fd < 0)
        return -1;
    int rc = -1;
    file_id now;
    if (b->n_q) {
        if (identify(b->path, &now, err) != 0)
            goto out;
        if (!same_file(&now, &b->seen)) {
            /* another process wrote it since: merge our entries into its */
            if (reload(b, err) != 0)
                goto out;
            b->rereads++;
        }
        /* (again after a reload, and after a flush that failed half-way) */
        for (size_t i = 0; i < b->n_q; i++)
            if (oc_catalog_set(b->view, b->q[i].image, b->q[i].tag, b->q[i].file, err) != 0)
                goto out;
        if (oc_store_catalog_replace(b->s, b->view, err) != 0 || hold(b->path, &b->seen, err) != 0)
            goto out;
        b->writes++;
    }
    if (b->n_oq && flush_oci(b, err) != 0) {
        /* the catalog landed: keep only the descriptors for the next try */
        drop_catalog_queue(b);
        goto out;
    }
    drop_queue(b);
    rc = 0;
out:
    oc_store_catalog_unlock(fd); /* after the rename: the next writer reads ours */
    return rc;
}
