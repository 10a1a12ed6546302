/* expand.c - expanding layers: the two strategies, the worker thread with a
 * private working directory, and placing the result (see expand.h).
 *
 * Every tar is read with libarchive from its file (1 MiB reads; data that
 * is not wanted is skipped with lseek). Each entry's name goes through
 * layerpath.c first, so a hostile name fails the same way in every mode.
 * Directory metadata is applied last (expand_write.h). Oldest-first keeps
 * the metadata of every directory entry it applied in a list, dropping the
 * records under a path it deletes; write-once takes it from the plan. */
#include "engine/expand/expand.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/expand/expand_plan.h"
#include "engine/expand/expand_write.h"
#include "engine/expand/layerpath.h"
#include "engine/expand/layertar.h"
#include "io/atomicfile.h"
#include "io/fsutil.h"
#include "io/safefs.h"
#include "io/grow.h"

#define PATH_CAP 8192

typedef struct job {
    const oc_expand_layer *layers;
    int *fds; /* each layer's tar, opened before the thread changes directory */
    size_t n;
    int as_is;
    oc_expand_strategy strategy;
    uint64_t max_bytes;
    int rootfd;
    oc_expand_stats *st;
    int rc;
    oc_error err;
} job;

/* ---- reading layers ---- */

static oc_layertar *open_layer(const oc_expand_layer *l, int fd, oc_error *err)
{
    return oc_layertar_open(fd, l->label, l->tar_path, err);
}

static int entry_fail(oc_error *err, oc_errcode code, const oc_expand_layer *l, const char *name,
                      const char *why)
{
    oc_error_set(err, code, "layer %s: entry '%s': %s", l->label, name ? name : "(no name)", why);
    return -1;
}

/* The classified path of entry e in buf (PATH_CAP bytes): a layerpath kind,
 * or -1 with err set. as_is treats whiteouts as plain names. */
static int entry_path(struct archive_entry *e, const oc_expand_layer *l, int as_is, char *buf,
                      oc_error *err)
{
    const char *name = archive_entry_pathname(e);
    const char *why = NULL;
    if (!name)
        return entry_fail(err, OC_E_FORMAT, l, name, "no name");
    if (strlen(name) >= PATH_CAP)
        return entry_fail(err, OC_E_FORMAT, l, name, "name too long");
    if (oc_lp_normalize(name, buf, &why) != 0)
        return entry_fail(err, OC_E_FORMAT, l, name, why);
    /* no file system takes one; libarchive would write a regular file */
    const char *target = archive_entry_symlink(e);
    if (archive_entry_filetype(e) == AE_IFLNK && !archive_entry_hardlink(e) &&
        (!target || !*target))
        return entry_fail(err, OC_E_FORMAT, l, name, "a symlink with an empty target");
    if (as_is)
        return buf[0] ? OC_LP_CONTENT : OC_LP_ROOT;
    int kind = oc_lp_classify(buf, &why);
    if (kind < 0)
        return entry_fail(err, OC_E_FORMAT, l, name, why);
    return kind;
}

/* The normalised hard-link target of e into buf, or -1. */
static int link_target(struct archive_entry *e, const oc_expand_layer *l, char *buf, oc_error *err)
{
    const char *name = archive_entry_pathname(e);
    const char *target = archive_entry_hardlink(e);
    const char *why = NULL;
    if (strlen(target) >= PATH_CAP)
        return entry_fail(err, OC_E_FORMAT, l, name, "hard link target too long");
    if (oc_lp_normalize(target, buf, &why) != 0) {
        char msg[PATH_CAP + 64];
        snprintf(msg, sizeof msg, "hard link target '%s': %s", target, why);
        return entry_fail(err, OC_E_FORMAT, l, name, msg);
    }
    if (!buf[0])
        return entry_fail(err, OC_E_FORMAT, l, name, "hard link to the root");
    return 0;
}

static int parent_fail(oc_beneath r, const oc_expand_layer *l, const char *name, const char *path,
                       size_t bad, oc_error *err)
{
    char msg[PATH_CAP + 64];
    if (r == OC_BENEATH_ERROR) {
        oc_error_prefix(err, "layer %s: entry '%s'", l->label, name);
        return -1;
    }
    snprintf(msg, sizeof msg, "%s '%.*s' refused",
             r == OC_BENEATH_SYMLINK ? "write through the symlink"
                                     : "write below the non-directory",
             (int)bad, path);
    return entry_fail(err, OC_E_FORMAT, l, name, msg);
}

/* ---- oldest-first ---- */

typedef struct dir_record {
    char *path;
    size_t depth;
    size_t seq;
    oc_plan_dirmeta meta;
} dir_record;

typedef struct dir_records {
    dir_record *v;
    size_t n, cap, seq;
} dir_records;

static int records_add(dir_records *d, const char *path, const oc_plan_dirmeta *m, oc_error *err)
{
    dir_record *nv = oc_grow(d->v, &d->cap, d->n + 1, sizeof *nv, 256);
    if (!nv) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    d->v = nv;
    dir_record *r = &d->v[d->n];
    r->path = strdup(path);
    if (!r->path) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    r->depth = 0;
    for (const char *p = path; *p; p++)
        r->depth += *p == '/';
    r->depth += path[0] != '\0';
    r->seq = d->seq++;
    r->meta = *m;
    d->n++;
    return 0;
}

/* Forget records for path and what is below it (self: path itself too). */
static void records_drop(dir_records *d, const char *path, int self)
{
    size_t len = strlen(path), o = 0;
    for (size_t i = 0; i < d->n; i++) {
        const char *p = d->v[i].path;
        int under = len == 0 ? p[0] != '\0'
                             : strncmp(p, path, len) == 0 && (p[len] == '/' || (self && !p[len]));
        if (under)
            free(d->v[i].path);
        else
            d->v[o++] = d->v[i];
    }
    d->n = o;
}

static void records_free(dir_records *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].path);
    free(d->v);
}

static int by_depth_desc(const void *a, const void *b)
{
    const dir_record *x = a, *y = b;
    if (x->depth != y->depth)
        return x->depth < y->depth ? 1 : -1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

typedef struct whiteout_list {
    char **paths;
    int *opaque;
    size_t n, cap;
} whiteout_list;

static void wl_clear(whiteout_list *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->paths[i]);
    w->n = 0;
}

static int wl_add(whiteout_list *w, const char *path, int opaque, oc_error *err)
{
    size_t cap_o = w->cap; /* the two arrays grow together */
    char **np = oc_grow(w->paths, &w->cap, w->n + 1, sizeof *np, 32);
    if (np)
        w->paths = np;
    int *no = np ? oc_grow(w->opaque, &cap_o, w->n + 1, sizeof *no, 32) : NULL;
    if (!np || !no) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    w->opaque = no;
    if (!(w->paths[w->n] = strdup(path))) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    w->opaque[w->n++] = opaque;
    return 0;
}

/* The end of a walk through a layer's entries: its reader and path
 * buffers freed (any may be NULL), rc returned. */
static int walk_done(oc_layertar *a, char *path, char *target, int rc)
{
    if (a)
        oc_layertar_free(a);
    free(path);
    free(target);
    return rc;
}

/* Pass 1 of a layer: its whiteouts. */
static int collect_whiteouts(const oc_expand_layer *l, int fd, whiteout_list *wl, oc_error *err)
{
    char *path = malloc(PATH_CAP);
    oc_layertar *a = path ? open_layer(l, fd, err) : NULL;
    int rc = -1, r;
    struct archive_entry *e;
    if (!path) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    if (!a)
        goto out;
    while ((r = oc_layertar_next(a, &e, err)) == 1) {
        int kind = entry_path(e, l, 0, path, err);
        if (kind < 0)
            goto out;
        if ((kind == OC_LP_WHITEOUT || kind == OC_LP_OPAQUE) &&
            wl_add(wl, path, kind == OC_LP_OPAQUE, err) != 0)
            goto out;
    }
    rc = r;
out:
    return walk_done(a, path, NULL, rc);
}

static int apply_whiteouts(job *j, oc_xwriter *w, const whiteout_list *wl, dir_records *dirs)
{
    for (size_t i = 0; i < wl->n; i++) {
        const char *path = wl->paths[i];
        j->st->whiteouts++;
        oc_xwriter_forget(w);
        if (wl->opaque[i]) {
            int fd = -1;
            oc_beneath r =
                oc_beneath_open_dir(j->rootfd, path, strlen(path), 0, &fd, NULL, NULL, &j->err);
            if (r == OC_BENEATH_ERROR)
                return -1;
            if (r != OC_BENEATH_OK)
                continue;
            int rc = oc_beneath_clear_dir(fd, &j->err);
            close(fd);
            if (rc != 0)
                return -1;
            records_drop(dirs, path, 0);
            continue;
        }
        int fd = -1;
        const char *leaf = NULL;
        size_t bad = 0;
        oc_beneath r = oc_xwriter_parent(w, path, 0, &fd, &leaf, &bad, &j->err);
        if (r == OC_BENEATH_ERROR)
            return -1;
        if (r != OC_BENEATH_OK)
            continue; /* never existed (or not below a directory): nothing to delete */
        if (oc_beneath_remove(fd, leaf, &j->err) != 0)
            return -1;
        records_drop(dirs, path, 1);
        oc_xwriter_forget(w);
    }
    return 0;
}

/* Does path exist beneath the root as a non-directory? 1 yes, 0 no (msg
 * says why), -1 error. */
static int link_target_ok(job *j, const char *target, const char **msg)
{
    int fd = -1;
    size_t bad = 0;
    const char *slash = strrchr(target, '/');
    size_t plen = slash ? (size_t)(slash - target) : 0;
    oc_beneath r = oc_beneath_open_dir(j->rootfd, target, plen, 0, &fd, &bad, NULL, &j->err);
    if (r == OC_BENEATH_ERROR)
        return -1;
    if (r == OC_BENEATH_SYMLINK) {
        *msg = "hard link target through a symlink refused";
        return 0;
    }
    if (r != OC_BENEATH_OK) {
        *msg = "hard link target does not exist";
        return 0;
    }
    struct stat st;
    int sr = fstatat(fd, slash ? slash + 1 : target, &st, AT_SYMLINK_NOFOLLOW);
    close(fd);
    if (sr != 0) {
        *msg = "hard link target does not exist";
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        *msg = "hard link to a directory refused";
        return 0;
    }
    return 1;
}

static int extract_layer(job *j, oc_xwriter *w, size_t li, dir_records *dirs)
{
    const oc_expand_layer *l = &j->layers[li];
    char *path = malloc(PATH_CAP), *target = malloc(PATH_CAP);
    oc_layertar *a = path && target ? open_layer(l, j->fds[li], &j->err) : NULL;
    struct archive_entry *e;
    int rc = -1, r;
    if (!path || !target) {
        oc_error_set(&j->err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    if (!a)
        goto out;
    while ((r = oc_layertar_next(a, &e, &j->err)) == 1) {
        j->st->entries++;
        const char *name = archive_entry_pathname(e);
        int kind = entry_path(e, l, j->as_is, path, &j->err);
        if (kind < 0)
            goto out;
        if (kind == OC_LP_WHITEOUT || kind == OC_LP_OPAQUE || kind == OC_LP_META)
            continue;
        int is_link = archive_entry_hardlink(e) != NULL;
        int is_dir = !is_link && archive_entry_filetype(e) == AE_IFDIR;
        oc_plan_dirmeta meta;
        if (kind == OC_LP_ROOT) {
            if (!is_dir) {
                entry_fail(&j->err, OC_E_FORMAT, l, name, "the root replaced by a non-directory");
                goto out;
            }
            oc_xwriter_meta_of(e, &meta);
            if (records_add(dirs, "", &meta, &j->err) != 0)
                goto out;
            continue;
        }
        if (is_link && link_target(e, l, target, &j->err) != 0)
            goto out;
        if (is_link && strcmp(target, path) == 0)
            continue;
        int fd = -1;
        const char *leaf = NULL;
        size_t bad = 0;
        oc_beneath pr = oc_xwriter_parent(w, path, OC_BENEATH_CREATE | OC_BENEATH_REPLACE, &fd,
                                          &leaf, &bad, &j->err);
        if (pr != OC_BENEATH_OK) {
            parent_fail(pr, l, name, path, bad, &j->err);
            goto out;
        }
        if (is_dir) {
            if (oc_xwriter_mkdir(w, fd, leaf, e, &j->err) != 0) {
                oc_error_prefix(&j->err, "layer %s: entry '%s'", l->label, name);
                goto out;
            }
            oc_xwriter_meta_of(e, &meta);
            if (records_add(dirs, path, &meta, &j->err) != 0)
                goto out;
            continue;
        }
        if (is_link) {
            const char *msg = NULL;
            int ok = link_target_ok(j, target, &msg);
            if (ok < 0)
                goto out;
            if (!ok) {
                char m[PATH_CAP + 128];
                snprintf(m, sizeof m, "%s ('%s')", msg, archive_entry_hardlink(e));
                entry_fail(&j->err, OC_E_FORMAT, l, name, m);
                goto out;
            }
        }
        struct stat st;
        if (fstatat(fd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (oc_beneath_remove(fd, leaf, &j->err) != 0)
                goto out;
            if (S_ISDIR(st.st_mode))
                records_drop(dirs, path, 1);
        }
        int wr = is_link ? oc_xwriter_link(w, path, target, &j->err)
                         : oc_xwriter_entry(w, oc_layertar_archive(a), e, fd, leaf, path, &j->err);
        if (wr < 0) {
            oc_error_prefix(&j->err, "layer %s: entry '%s'", l->label, name);
            goto out;
        }
    }
    rc = r;
out:
    return walk_done(a, path, target, rc);
}

static int apply_records(job *j, oc_xwriter *w, dir_records *dirs)
{
    if (dirs->n > 1)
        qsort(dirs->v, dirs->n, sizeof *dirs->v, by_depth_desc);
    for (size_t i = 0; i < dirs->n; i++)
        if (oc_xwriter_dir_meta(w, dirs->v[i].path, &dirs->v[i].meta, &j->err) != 0)
            return -1;
    return 0;
}

static int run_oldest_first(job *j, oc_xwriter *w)
{
    dir_records dirs = {0};
    whiteout_list wl = {0};
    int rc = -1;
    for (size_t i = 0; i < j->n; i++) {
        const oc_expand_layer *l = &j->layers[i];
        if (!j->as_is) {
            wl_clear(&wl);
            if (collect_whiteouts(l, j->fds[i], &wl, &j->err) != 0 ||
                apply_whiteouts(j, w, &wl, &dirs) != 0)
                goto out;
        }
        if (extract_layer(j, w, i, &dirs) != 0)
            goto out;
    }
    oc_xwriter_forget(w);
    rc = apply_records(j, w, &dirs);
out:
    wl_clear(&wl);
    free(wl.paths);
    free(wl.opaque);
    records_free(&dirs);
    return rc;
}

/* ---- write-once ---- */

static int plan_layer(job *j, oc_plan *p, unsigned li)
{
    const oc_expand_layer *l = &j->layers[li];
    char *path = malloc(PATH_CAP), *target = malloc(PATH_CAP);
    oc_layertar *a = path && target ? open_layer(l, j->fds[li], &j->err) : NULL;
    struct archive_entry *e;
    int rc = -1, r;
    uint32_t idx = 0;
    if (!path || !target) {
        oc_error_set(&j->err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    if (!a || oc_plan_begin_layer(p, li, &j->err) != 0)
        goto out;
    for (; (r = oc_layertar_next(a, &e, &j->err)) == 1; idx++) {
        j->st->entries++;
        const char *name = archive_entry_pathname(e);
        int kind = entry_path(e, l, 0, path, &j->err);
        if (kind < 0)
            goto out;
        if (kind == OC_LP_META)
            continue;
        if (kind == OC_LP_WHITEOUT || kind == OC_LP_OPAQUE) {
            j->st->whiteouts++;
            if (oc_plan_add_whiteout(p, path, kind == OC_LP_OPAQUE, &j->err) != 0)
                goto out;
            continue;
        }
        int is_link = archive_entry_hardlink(e) != NULL;
        mode_t ft = archive_entry_filetype(e);
        oc_plan_type type = is_link          ? OC_PLAN_HARDLINK
                            : ft == AE_IFDIR ? OC_PLAN_DIR
                            : ft == AE_IFLNK ? OC_PLAN_SYMLINK
                                             : OC_PLAN_FILE;
        if (kind == OC_LP_ROOT && type != OC_PLAN_DIR) {
            entry_fail(&j->err, OC_E_FORMAT, l, name, "the root replaced by a non-directory");
            goto out;
        }
        if (is_link && link_target(e, l, target, &j->err) != 0)
            goto out;
        oc_plan_dirmeta meta;
        if (type == OC_PLAN_DIR)
            oc_xwriter_meta_of(e, &meta);
        if (oc_plan_add(p, idx, name, path, type, is_link ? target : NULL,
                        type == OC_PLAN_DIR ? &meta : NULL, &j->err) != 0)
            goto out;
    }
    if (r != 0)
        goto out;
    if (oc_plan_end_layer(p, &j->err) != 0) {
        oc_error_prefix(&j->err, "layer %s", l->label);
        goto out;
    }
    rc = 0;
out:
    return walk_done(a, path, target, rc);
}

static int make_dirs(job *j, oc_xwriter *w, const oc_plan *p, char *path)
{
    for (size_t i = 0; i < oc_plan_n_dirs(p); i++) {
        if (oc_plan_node_path(oc_plan_dir(p, i), path, PATH_CAP) != 0) {
            oc_error_set(&j->err, OC_E_FORMAT, "a path longer than %d bytes", PATH_CAP);
            return -1;
        }
        int fd = -1;
        const char *leaf = NULL;
        size_t bad = 0;
        oc_beneath r = oc_xwriter_parent(w, path, 0, &fd, &leaf, &bad, &j->err);
        if (r != OC_BENEATH_OK) {
            if (r != OC_BENEATH_ERROR)
                oc_error_set(&j->err, OC_E_IO, "%s: parent vanished", path);
            return -1;
        }
        if (mkdirat(fd, leaf, 0755) != 0 && errno != EEXIST) {
            oc_error_errno(&j->err, errno, "cannot create directory %s", path);
            return -1;
        }
    }
    return 0;
}

static int write_layer(job *j, oc_xwriter *w, const oc_plan *p, unsigned li, char *path,
                       char *other)
{
    const oc_expand_layer *l = &j->layers[li];
    oc_layertar *a = open_layer(l, j->fds[li], &j->err);
    struct archive_entry *e;
    int rc = -1, r;
    uint32_t idx = 0;
    if (!a)
        return -1;
    for (; (r = oc_layertar_next(a, &e, &j->err)) == 1; idx++) {
        oc_plan_action act;
        oc_plan_action_for(p, li, idx, &act);
        if (act.act == OC_ACT_SKIP)
            continue;
        const char *name = archive_entry_pathname(e);
        if (oc_plan_node_path(act.paths[0], path, PATH_CAP) != 0) {
            entry_fail(&j->err, OC_E_FORMAT, l, name, "path too long");
            goto out;
        }
        int fd = -1;
        const char *leaf = NULL;
        size_t bad = 0;
        oc_beneath pr = oc_xwriter_parent(w, path, 0, &fd, &leaf, &bad, &j->err);
        if (pr != OC_BENEATH_OK) {
            parent_fail(pr, l, name, path, bad, &j->err);
            goto out;
        }
        if (act.act == OC_ACT_DIR) {
            if (oc_xwriter_mkdir(w, fd, leaf, e, &j->err) != 0) {
                oc_error_prefix(&j->err, "layer %s: entry '%s'", l->label, name);
                goto out;
            }
            continue;
        }
        int wr = oc_xwriter_entry(w, oc_layertar_archive(a), e, fd, leaf, path, &j->err);
        if (wr < 0) {
            oc_error_prefix(&j->err, "layer %s: entry '%s'", l->label, name);
            goto out;
        }
        for (size_t k = 1; wr == 0 && k < act.n_paths; k++) {
            if (oc_plan_node_path(act.paths[k], other, PATH_CAP) != 0) {
                entry_fail(&j->err, OC_E_FORMAT, l, name, "path too long");
                goto out;
            }
            if (oc_xwriter_link(w, other, path, &j->err) != 0) {
                oc_error_prefix(&j->err, "layer %s: entry '%s'", l->label, name);
                goto out;
            }
        }
    }
    rc = r;
out:
    oc_layertar_free(a);
    return rc;
}

static int run_write_once(job *j, oc_xwriter *w)
{
    oc_plan *p = oc_plan_new();
    char *path = malloc(PATH_CAP), *other = malloc(PATH_CAP);
    int rc = -1;
    if (!p || !path || !other) {
        oc_error_set(&j->err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < j->n; i++)
        if (plan_layer(j, p, (unsigned)i) != 0)
            goto out;
    if (oc_plan_finish(p, &j->err) != 0 || make_dirs(j, w, p, path) != 0)
        goto out;
    for (size_t i = 0; i < j->n; i++)
        if (write_layer(j, w, p, (unsigned)i, path, other) != 0)
            goto out;
    oc_xwriter_forget(w);
    for (size_t i = oc_plan_n_dirs(p); i-- > 0;) {
        const oc_plan_node *n = oc_plan_dir(p, i);
        const oc_plan_dirmeta *m = oc_plan_node_meta(n);
        if (!m)
            continue;
        if (oc_plan_node_path(n, path, PATH_CAP) != 0 ||
            oc_xwriter_dir_meta(w, path, m, &j->err) != 0)
            goto out;
    }
    const oc_plan_dirmeta *rm = oc_plan_root_meta(p);
    if (rm && oc_xwriter_dir_meta(w, "", rm, &j->err) != 0)
        goto out;
    rc = 0;
out:
    oc_plan_free(p);
    free(path);
    free(other);
    return rc;
}

/* ---- the worker thread ---- */

static void *job_main(void *arg)
{
    job *j = arg;
    j->rc = -1;
    /* A working directory of our own: libarchive's writer resolves entry
     * names against it, and no other thread may see it change. */
    if (unshare(CLONE_FS) != 0) {
        oc_error_errno(&j->err, errno, "unshare(CLONE_FS)");
        return NULL;
    }
    umask(0);
    if (fchdir(j->rootfd) != 0) {
        oc_error_errno(&j->err, errno, "cannot enter the target directory");
        return NULL;
    }
    oc_xwriter *w = oc_xwriter_new(j->rootfd, j->max_bytes, j->st, &j->err);
    if (!w)
        return NULL;
    int rc = j->strategy == OC_EXPAND_OLDEST_FIRST || j->as_is ? run_oldest_first(j, w)
                                                               : run_write_once(j, w);
    if (oc_xwriter_close(w, rc == 0 ? &j->err : NULL) != 0)
        rc = -1;
    oc_xwriter_free(w);
    j->rc = rc;
    return NULL;
}

/* ---- placing the result ---- */

static int is_empty_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    int empty = 1;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
}

static int run(const oc_expand_layer *layers, size_t n, int as_is, const char *dir, int replace,
               const oc_expand_opts *opts, oc_expand_stats *stats, oc_error *err)
{
    oc_expand_opts defaults = {0};
    oc_expand_stats local;
    if (!opts)
        opts = &defaults;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    struct stat st;
    int exists = lstat(dir, &st) == 0;
    if (!exists && errno != ENOENT) {
        oc_error_errno(err, errno, "cannot stat %s", dir);
        return -1;
    }
    if (exists && !S_ISDIR(st.st_mode)) {
        oc_error_set(err, OC_E_USAGE, "%s exists and is not a directory", dir);
        return -1;
    }
    int swap_old = exists && !is_empty_dir(dir);
    if (swap_old && !replace) {
        oc_error_set(err, OC_E_USAGE, "%s exists and is not empty", dir);
        return -1;
    }
    int *fds = calloc(n ? n : 1, sizeof *fds);
    if (!fds) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        fds[i] = -1;
    for (size_t i = 0; i < n; i++) {
        fds[i] = open(layers[i].tar_path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            oc_error_errno(err, errno, "layer %s: cannot open %s", layers[i].label,
                           layers[i].tar_path);
            close_all(fds, n);
            return -1;
        }
    }
    char *scratch = oc_scratch_dir_beside(dir, err);
    if (!scratch) {
        close_all(fds, n);
        return -1;
    }
    char *old = NULL;
    job j = {.layers = layers,
             .fds = fds,
             .n = n,
             .as_is = as_is,
             .strategy = opts->strategy,
             .max_bytes = opts->max_bytes,
             .st = stats,
             .rc = -1};
    oc_error_clear(&j.err);
    int rc = -1;
    j.rootfd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j.rootfd < 0) {
        oc_error_errno(err, errno, "cannot open %s", scratch);
        goto out;
    }
    if (fchmod(j.rootfd, 0755) != 0) {
        oc_error_errno(err, errno, "cannot chmod %s", scratch);
        goto out;
    }
    pthread_t th;
    int pe = pthread_create(&th, NULL, job_main, &j);
    if (pe != 0) {
        oc_error_errno(err, pe, "cannot start the expand thread");
        goto out;
    }
    pthread_join(th, NULL);
    if (j.rc != 0) {
        *err = j.err;
        goto out;
    }
    if (!opts->no_sync && syncfs(j.rootfd) != 0) {
        oc_error_errno(err, errno, "syncfs %s", scratch);
        goto out;
    }
    if (swap_old) {
        old = oc_scratch_dir_beside(dir, err);
        if (!old)
            goto out;
        if (rename(dir, old) != 0) {
            oc_error_errno(err, errno, "cannot move the old %s aside", dir);
            goto out;
        }
    }
    if (rename(scratch, dir) != 0) {
        oc_error_errno(err, errno, "cannot rename the new tree to %s", dir);
        if (old && rename(old, dir) == 0) {
            free(old);
            old = NULL;
        }
        goto out;
    }
    free(scratch);
    scratch = NULL;
    rc = 0;
out:
    close_all(fds, n);
    if (j.rootfd >= 0)
        close(j.rootfd);
    if (scratch) {
        oc_error rm;
        (void)oc_remove_tree(scratch, &rm);
        free(scratch);
    }
    if (old) {
        oc_error rm;
        (void)oc_remove_tree(old, &rm);
        free(old);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return rc;
}

int oc_expand_merge(const oc_expand_layer *layers, size_t n, const char *dir, int replace,
                    const oc_expand_opts *opts, oc_expand_stats *stats, oc_error *err)
{
    return run(layers, n, 0, dir, replace, opts, stats, err);
}

int oc_expand_as_is(const oc_expand_layer *layer, const char *dir, int replace,
                    const oc_expand_opts *opts, oc_expand_stats *stats, oc_error *err)
{
    return run(layer, 1, 1, dir, replace, opts, stats, err);
}

int oc_expand_strategy_parse(const char *text)
{
    if (strcmp(text, "auto") == 0)
        return OC_EXPAND_AUTO;
    if (strcmp(text, "oldest-first") == 0)
        return OC_EXPAND_OLDEST_FIRST;
    if (strcmp(text, "write-once") == 0)
        return OC_EXPAND_WRITE_ONCE;
    return -1;
}

const char *oc_expand_strategy_name(oc_expand_strategy s)
{
    switch (s) {
    case OC_EXPAND_OLDEST_FIRST:
        return "oldest-first";
    case OC_EXPAND_WRITE_ONCE:
        return "write-once";
    default:
        return "auto";
    }
}

void oc_expand_stats_format(const oc_expand_stats *s, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "%llu entries read: %llu files (%.1f MB), %llu dirs, %llu symlinks, %llu hard "
                     "links, %llu other, %llu whiteouts, in %.2f s",
                     (unsigned long long)s->entries, (unsigned long long)s->files,
                     (double)s->bytes / 1e6, (unsigned long long)s->dirs,
                     (unsigned long long)s->symlinks, (unsigned long long)s->hardlinks,
                     (unsigned long long)s->others, (unsigned long long)s->whiteouts, s->seconds);
    (void)n;
}
