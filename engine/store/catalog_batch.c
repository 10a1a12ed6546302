/* catalog_batch.c - catalog.json in memory, written in batches (see
 * catalog_batch.h). */
#include "engine/store/catalog_batch.h"
#include "io/grow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct queued {
    char *image, *tag, *file;
} queued;

/* What identifies the catalog file we last read or wrote. */
typedef struct file_id {
    int exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id;

struct oc_catalog_batch {
    oc_store *s;
    char *path;
    oc_catalog *view;
    file_id seen;
    queued *q;
    size_t n_q, cap_q;
    unsigned writes, rereads;
};

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
    id->exists = 1;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;
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
    file_id id;
    oc_catalog *c = NULL;
    if (identify(b->path, &id, err) != 0 || oc_store_catalog_load(b->s, &c, err) != 0)
        return -1;
    oc_catalog_free(b->view);
    b->view = c;
    b->seen = id;
    return 0;
}

oc_catalog_batch *oc_catalog_batch_open(oc_store *s, oc_error *err)
{
    oc_catalog_batch *b = calloc(1, sizeof *b);
    if (!b || !(b->path = oc_store_path(s, "catalog.json"))) {
        free(b);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    b->s = s;
    int fd = oc_store_catalog_lock(s, err);
    int rc = fd < 0 ? -1 : reload(b, err);
    oc_store_catalog_unlock(fd);
    if (rc != 0) {
        oc_catalog_batch_free(b);
        return NULL;
    }
    return b;
}

static void drop_queue(oc_catalog_batch *b)
{
    for (size_t i = 0; i < b->n_q; i++) {
        free(b->q[i].image);
        free(b->q[i].tag);
        free(b->q[i].file);
    }
    b->n_q = 0;
}

void oc_catalog_batch_free(oc_catalog_batch *b)
{
    if (!b)
        return;
    drop_queue(b);
    free(b->q);
    oc_catalog_free(b->view);
    free(b->path);
    free(b);
}

const oc_catalog *oc_catalog_batch_view(const oc_catalog_batch *b)
{
    return b->view;
}

size_t oc_catalog_batch_pending(const oc_catalog_batch *b)
{
    return b->n_q;
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

int oc_catalog_batch_flush(oc_catalog_batch *b, oc_error *err)
{
    if (b->n_q == 0)
        return 0;
    int fd = oc_store_catalog_lock(b->s, err);
    if (fd < 0)
        return -1;
    int rc = -1;
    file_id now;
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
    if (oc_store_catalog_replace(b->s, b->view, err) != 0 || identify(b->path, &b->seen, err) != 0)
        goto out;
    b->writes++;
    drop_queue(b);
    rc = 0;
out:
    oc_store_catalog_unlock(fd); /* after the rename: the next writer reads ours */
    return rc;
}
