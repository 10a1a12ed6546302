/* store_gc.c - remove unreferenced blobs from a store (see store_gc.h). */
#include "engine/store/store_gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomicfile.h"
#include "io/fsutil.h"

typedef struct gctx {
    oc_store *s;
    int dry_run;
    oc_gc_cb report;
    void *opaque;
    oc_gc_stats *st;
    oc_store_entries e;
    int *layer_used;  /* parallel to e.layers */
    int *config_used; /* parallel to e.configs */
    oc_error *err;
    int missing; /* the catalog names a manifest file that is not there */
} gctx;

/* Bytes of the regular files under dirfd/name (not following symlinks). */
static uint64_t tree_bytes(int at, const char *name, int depth)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    if (S_ISREG(st.st_mode))
        return (uint64_t)st.st_size;
    if (!S_ISDIR(st.st_mode) || depth > 64)
        return 0;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            sum += tree_bytes(dirfd(d), e->d_name, depth + 1);
    closedir(d);
    return sum;
}

static int check_listed(void *opaque, const char *image, const char *tag, const char *file)
{
    gctx *g = opaque;
    if (!oc_catalog_file_name_ok(file) ||
        oc_store_entries_find(g->e.manifests, g->e.n_manifests, file) < 0) {
        oc_error_set(g->err, OC_E_FORMAT,
                     "catalog.json names %s for %s:%s, which is missing: not collecting (run "
                     "verify)",
                     file, image, tag);
        g->missing = 1;
        return 1;
    }
    return 0;
}

/* Mark what the catalog and the manifest files reference. */
static int find_references(gctx *g)
{
    oc_catalog *c = NULL;
    if (oc_store_catalog_load(g->s, &c, g->err) != 0) {
        oc_error_prefix(g->err, "not collecting (run verify)");
        return -1;
    }
    oc_catalog_foreach(c, check_listed, g);
    oc_catalog_free(c);
    if (g->missing)
        return -1;
    for (size_t i = 0; i < g->e.n_manifests; i++) {
        char *path = oc_store_path(g->s, g->e.manifests[i]);
        oc_store_image si;
        if (!path || oc_store_image_load(&si, path, g->err) != 0) {
            if (!path)
                oc_error_set(g->err, OC_E_NOMEM, "out of memory");
            oc_error_prefix(g->err, "not collecting (run verify)");
            free(path);
            return -1;
        }
        free(path);
        long k = oc_store_entries_find(g->e.configs, g->e.n_configs, si.config_hex);
        if (k >= 0)
            g->config_used[k] = 1;
        for (size_t l = 0; l < si.n_layers; l++)
            if ((k = oc_store_entries_find(g->e.layers, g->e.n_layers, si.layer_hex[l])) >= 0)
                g->layer_used[k] = 1;
        oc_store_image_free(&si);
    }
    return 0;
}

/* Remove the marker of hex if there is one; counts it. */
static int drop_mark(gctx *g, const char *hex)
{
    if (oc_store_entries_find(g->e.marks, g->e.n_marks, hex) < 0)
        return 0;
    g->st->markers++;
    if (g->dry_run)
        return 0;
    char *path = oc_store_mark_path(g->s, hex);
    if (!path) {
        oc_error_set(g->err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    int rc = 0;
    if (unlink(path) != 0 && errno != ENOENT) {
        oc_error_errno(g->err, errno, "remove %s", path);
        rc = -1;
    }
    free(path);
    return rc;
}

static int drop(gctx *g, const char *hex, const char *name, int is_layer)
{
    int dfd = open(oc_store_dir(g->s), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    uint64_t bytes = dfd >= 0 ? tree_bytes(dfd, name, 0) : 0;
    if (dfd >= 0)
        close(dfd);
    if (drop_mark(g, hex) != 0)
        return -1;
    if (!g->dry_run) {
        char *path = oc_store_path(g->s, name);
        if (!path) {
            oc_error_set(g->err, OC_E_NOMEM, "out of memory");
            return -1;
        }
        int rc = is_layer ? oc_remove_tree(path, g->err) : unlink(path);
        if (rc != 0 && !is_layer)
            oc_error_errno(g->err, errno, "remove %s", path);
        free(path);
        if (rc != 0)
            return -1;
    }
    if (is_layer)
        g->st->layers++;
    else
        g->st->configs++;
    g->st->bytes += bytes;
    if (g->report)
        g->report(name, bytes, g->opaque);
    return 0;
}

static int collect(gctx *g)
{
    for (size_t k = 0; k < g->e.n_layers; k++) {
        if (g->layer_used[k]) {
            g->st->kept_layers++;
            continue;
        }
        if (drop(g, g->e.layers[k], g->e.layers[k], 1) != 0)
            return -1;
    }
    for (size_t k = 0; k < g->e.n_configs; k++) {
        if (g->config_used[k]) {
            g->st->kept_configs++;
            continue;
        }
        char name[OC_SHA256_HEX_LEN + 8];
        snprintf(name, sizeof name, "%s.json", g->e.configs[k]);
        if (drop(g, g->e.configs[k], name, 0) != 0)
            return -1;
    }
    for (size_t k = 0; k < g->e.n_marks; k++) {
        const char *hex = g->e.marks[k];
        if (oc_store_entries_find(g->e.layers, g->e.n_layers, hex) >= 0 ||
            oc_store_entries_find(g->e.configs, g->e.n_configs, hex) >= 0)
            continue;
        if (drop_mark(g, hex) != 0)
            return -1;
        if (g->report) {
            char name[OC_SHA256_HEX_LEN + 32];
            snprintf(name, sizeof name, ".occystrap/blobs/%s.json", hex);
            g->report(name, 0, g->opaque);
        }
    }
    return 0;
}

int oc_store_gc(oc_store *s, int dry_run, oc_gc_cb report, void *opaque, oc_gc_stats *stats,
                oc_error *err)
{
    oc_gc_stats local = {0};
    gctx g = {.s = s,
              .dry_run = dry_run,
              .report = report,
              .opaque = opaque,
              .st = stats ? stats : &local,
              .err = err};
    memset(g.st, 0, sizeof *g.st);
    if (oc_store_entries_read(s, &g.e, err) != 0)
        return -1;
    int rc = -1;
    g.layer_used = calloc(g.e.n_layers + 1, sizeof *g.layer_used);
    g.config_used = calloc(g.e.n_configs + 1, sizeof *g.config_used);
    if (!g.layer_used || !g.config_used) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    if (find_references(&g) != 0 || collect(&g) != 0)
        goto out;
    if (!dry_run) {
        char *blobs = oc_store_path(s, ".occystrap/blobs");
        if (!blobs) {
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            goto out;
        }
        int synced = oc_fsync_dir(oc_store_dir(s), err) == 0 &&
                     (g.e.n_marks == 0 || oc_fsync_dir(blobs, err) == 0);
        free(blobs);
        if (!synced)
            goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        oc_error_prefix(err, "gc of %s", oc_store_dir(s));
    free(g.layer_used);
    free(g.config_used);
    oc_store_entries_free(&g.e);
    return rc;
}
