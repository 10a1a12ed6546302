/* store.c - a merged store on disk: locks, scratch, markers, catalog,
 * lookup (see store.h for the layout and the rules). */
#include "engine/store/store.h"
#include "engine/store/store_dirsync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "io/atomicfile.h"
#include "io/digest.h"
#include "io/fsutil.h"
#include "io/storelock.h"
#include "io/strmap.h"
#include "engine/image/limits.h"
#include "io/grow.h"

#define META_DIR ".occystrap"
#define TMP_DIR ".tmp"
#define MARK_MAX (64u * 1024)

struct oc_store {
    char *dir;
    oc_store_mode mode;
    int lock_fd; /* store lock, -1 when reading unlocked */
    char *tmp_dir;
    char *run_dir;
    int run_fd;       /* our lock on run_dir */
    oc_strmap *marks; /* WRITE: hex -> oc_blob_mark known valid this run */
    /* marks is shared with the pipeline's io threads, which place layers
     * (oc_store_put_layer) while the loop thread looks markers up */
    pthread_mutex_t marks_lock;
    int defer_dir_syncs; /* store_dirsync.h; set before the io threads start */
};

static void marks_lock(const oc_store *s)
{
    pthread_mutex_lock((pthread_mutex_t *)&s->marks_lock);
}

static void marks_unlock(const oc_store *s)
{
    pthread_mutex_unlock((pthread_mutex_t *)&s->marks_lock);
}

void oc_store_crash_point(const char *name)
{
    const char *want = getenv("OCCYSTRAP_TEST_CRASH_AT");
    if (want && strcmp(want, name) == 0)
        raise(SIGKILL);
}

void oc_store_now(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *join(const char *a, const char *b)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

char *oc_store_path(const oc_store *s, const char *name)
{
    return join(s->dir, name);
}

const char *oc_store_dir(const oc_store *s)
{
    return s->dir;
}

const char *oc_store_run_dir(const oc_store *s)
{
    return s->run_dir;
}

const char *oc_store_scratch_dir(oc_store *s, oc_error *err)
{
    if (s->run_dir)
        return s->run_dir;
    return oc_mkdirs(s->tmp_dir, err) == 0 ? s->tmp_dir : NULL;
}

int oc_store_replace_file(oc_store *s, const char *path, const char *text, size_t len,
                          const char *crash, oc_error *err)
{
    const char *scratch = oc_store_scratch_dir(s, err);
    oc_atomic_file f = {.fd = -1};
    if (!scratch || oc_atomic_open(&f, scratch, path, err) != 0)
        return -1;
    if (oc_atomic_write(&f, text, len, err) != 0) {
        oc_atomic_abort(&f);
        return -1;
    }
    oc_store_crash_point(crash);
    if (oc_atomic_commit(&f, err) != 0) {
        oc_atomic_abort(&f);
        return -1;
    }
    return 0;
}

void oc_store_defer_dir_syncs(oc_store *s)
{
    s->defer_dir_syncs = 1;
}

int oc_store_dir_syncs_deferred(const oc_store *s)
{
    return s->defer_dir_syncs;
}

/* ---- opening ---- */

/* Remove every entry of .tmp (only when no one else works on the store). */
static void wipe_tmp(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = join(tmp, e->d_name);
        oc_error ignored;
        if (p)
            (void)oc_remove_tree(p, &ignored);
        free(p);
    }
    closedir(d);
}

/* Remove the run directories in .tmp whose owner is gone (their lock is
 * free). Best effort: a failure only leaves litter for the next run. */
static void clean_dead_runs(const char *tmp)
{
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "run-", 4) != 0)
            continue;
        char *p = join(tmp, e->d_name);
        if (!p)
            continue;
        oc_error ignored;
        int fd = oc_lock_open(p, 0, &ignored);
        if (fd >= 0 && oc_lock_take(fd, OC_LOCK_EXCLUSIVE, 0, p, &ignored) == 0)
            (void)oc_remove_tree(p, &ignored);
        oc_lock_close(fd);
        free(p);
    }
    closedir(d);
}

static int make_run_dir(oc_store *s, oc_error *err)
{
    char *tmpl = NULL;
    if (asprintf(&tmpl, "%s/.new-XXXXXX", s->tmp_dir) < 0) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (!mkdtemp(tmpl)) {
        oc_error_errno(err, errno, "create a scratch directory in %s", s->tmp_dir);
        free(tmpl);
        return -1;
    }
    s->run_fd = oc_lock_open(tmpl, 0, err);
    if (s->run_fd < 0 || oc_lock_take(s->run_fd, OC_LOCK_EXCLUSIVE, 1, tmpl, err) != 0) {
        rmdir(tmpl);
        free(tmpl);
        return -1;
    }
    const char *suffix = strrchr(tmpl, '-') + 1;
    if (asprintf(&s->run_dir, "%s/run-%s", s->tmp_dir, suffix) < 0) {
        s->run_dir = NULL;
        rmdir(tmpl);
        free(tmpl);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (rename(tmpl, s->run_dir) != 0) {
        oc_error_errno(err, errno, "rename %s to %s", tmpl, s->run_dir);
        rmdir(tmpl);
        free(tmpl);
        free(s->run_dir);
        s->run_dir = NULL;
        return -1;
    }
    free(tmpl);
    return 0;
}

static int open_write(oc_store *s, oc_error *err)
{
    char *meta = join(s->dir, META_DIR);
    char *blobs = meta ? join(meta, "blobs") : NULL;
    char *lock = meta ? join(meta, "lock") : NULL;
    int rc = -1;
    if (!meta || !blobs || !lock || !s->tmp_dir) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    if (oc_mkdirs(s->dir, err) != 0 || oc_mkdirs(blobs, err) != 0 ||
        oc_mkdirs(s->tmp_dir, err) != 0)
        goto out;
    s->lock_fd = oc_lock_open(lock, 1, err);
    if (s->lock_fd < 0)
        goto out;
    int busy = oc_lock_take(s->lock_fd, OC_LOCK_EXCLUSIVE, 0, lock, err);
    if (busy < 0)
        goto out;
    if (busy == 0)
        wipe_tmp(s->tmp_dir); /* alone: whatever is in .tmp is litter */
    /* from exclusive (or nothing) to shared; waits while gc runs */
    if (oc_lock_take(s->lock_fd, OC_LOCK_SHARED, 1, lock, err) != 0)
        goto out;
    if (busy)
        clean_dead_runs(s->tmp_dir);
    rc = make_run_dir(s, err);
out:
    free(meta);
    free(blobs);
    free(lock);
    return rc;
}

static int open_read(oc_store *s, oc_error *err)
{
    char *lock = join(s->dir, META_DIR "/lock");
    if (!lock) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    oc_error ignored;
    s->lock_fd = oc_lock_open(lock, 0, &ignored); /* none: a 0.2.0 or read-only store */
    int rc = 0;
    if (s->lock_fd >= 0 && oc_lock_take(s->lock_fd, OC_LOCK_SHARED, 1, lock, err) != 0)
        rc = -1;
    free(lock);
    return rc;
}

static int open_gc(oc_store *s, oc_error *err)
{
    char *meta = join(s->dir, META_DIR);
    char *lock = meta ? join(meta, "lock") : NULL;
    int rc = -1;
    if (!lock) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    if (oc_mkdirs(meta, err) != 0)
        goto out;
    s->lock_fd = oc_lock_open(lock, 1, err);
    if (s->lock_fd < 0 || oc_lock_take(s->lock_fd, OC_LOCK_EXCLUSIVE, 1, lock, err) != 0)
        goto out;
    wipe_tmp(s->tmp_dir);
    rc = 0;
out:
    free(meta);
    free(lock);
    return rc;
}

oc_store *oc_store_open(const char *dir, oc_store_mode mode, oc_error *err)
{
    oc_store *s = calloc(1, sizeof *s);
    if (s)
        pthread_mutex_init(&s->marks_lock, NULL);
    if (!s || !(s->dir = strdup(dir)) || !(s->tmp_dir = join(dir, TMP_DIR))) {
        oc_store_close(s);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    s->mode = mode;
    s->lock_fd = -1;
    s->run_fd = -1;
    /* strip trailing slashes (but keep "/") so paths read well */
    for (size_t n = strlen(s->dir); n > 1 && s->dir[n - 1] == '/'; n--)
        s->dir[n - 1] = '\0';
    if (mode == OC_STORE_WRITE && !(s->marks = oc_strmap_new(free))) {
        oc_store_close(s);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    if (mode != OC_STORE_WRITE) {
        struct stat st;
        int bad = stat(dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (bad) {
            if (bad == ENOENT || bad == ENOTDIR)
                oc_error_set(err, OC_E_NOTFOUND, "store %s: no such directory", dir);
            else
                oc_error_errno(err, bad, "store %s", dir);
            oc_store_close(s);
            return NULL;
        }
    }
    int rc = mode == OC_STORE_WRITE ? open_write(s, err)
             : mode == OC_STORE_GC  ? open_gc(s, err)
                                    : open_read(s, err);
    if (rc != 0) {
        oc_error_prefix(err, "store %s", s->dir);
        oc_store_close(s);
        return NULL;
    }
    return s;
}

void oc_store_close(oc_store *s)
{
    if (!s)
        return;
    if (s->run_dir) {
        oc_error ignored;
        (void)oc_remove_tree(s->run_dir, &ignored);
    }
    oc_lock_close(s->run_fd);
    oc_lock_close(s->lock_fd);
    oc_strmap_free(s->marks);
    pthread_mutex_destroy(&s->marks_lock);
    free(s->run_dir);
    free(s->tmp_dir);
    free(s->dir);
    free(s);
}

/* ---- markers ---- */

char *oc_store_mark_path(const oc_store *s, const char *hex)
{
    char *p = NULL;
    return asprintf(&p, "%s/" META_DIR "/blobs/%s.json", s->dir, hex) < 0 ? NULL : p;
}

static int copy_field(char *dst, size_t cap, json_t *v)
{
    const char *str = json_string_value(v);
    if (!str || strlen(str) >= cap)
        return -1;
    memcpy(dst, str, strlen(str) + 1);
    return 0;
}

int oc_store_mark_read(const oc_store *s, const char *hex, oc_blob_mark *m, oc_error *err)
{
    memset(m, 0, sizeof *m);
    char *path = oc_store_mark_path(s, hex);
    if (!path) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        free(path);
        return 0;
    }
    size_t len = 0;
    char *text = oc_read_file(path, MARK_MAX, &len, err);
    if (!text) {
        free(path);
        return -1;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    free(text);
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    json_t *size = json_object_get(doc, "size");
    json_t *tar_size = json_object_get(doc, "tar_size");
    int ok = kind && (strcmp(kind, "layer") == 0 || strcmp(kind, "config") == 0) &&
             json_is_integer(size) && json_integer_value(size) >= 0 &&
             copy_field(m->digest, sizeof m->digest, json_object_get(doc, "digest")) == 0 &&
             strncmp(m->digest, "sha256:", 7) == 0 && strcmp(m->digest + 7, hex) == 0;
    if (ok) {
        m->is_layer = strcmp(kind, "layer") == 0;
        m->size = (uint64_t)json_integer_value(size);
        (void)copy_field(m->verified_at, sizeof m->verified_at,
                         json_object_get(doc, "verified_at"));
    }
    if (ok && m->is_layer) {
        ok = json_is_integer(tar_size) && json_integer_value(tar_size) >= 0 &&
             copy_field(m->diff_id, sizeof m->diff_id, json_object_get(doc, "diff_id")) == 0 &&
             strncmp(m->diff_id, "sha256:", 7) == 0;
        if (ok)
            m->tar_size = (uint64_t)json_integer_value(tar_size);
    }
    json_decref(doc);
    if (!ok) {
        oc_error_set(err, OC_E_FORMAT, "marker %s is malformed or names another blob", path);
        free(path);
        return -1;
    }
    free(path);
    return 1;
}

/* A marker known valid this run, with the identity of its file then: a
 * lookup costs a stat of the marker instead of reading and parsing it, and
 * a marker changed since (by hand, by verify --repair) is read again. */
typedef struct known_mark {
    oc_blob_mark m;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} known_mark;

static int same_file(const known_mark *k, const struct stat *st)
{
    return k->ino == st->st_ino && k->size == st->st_size &&
           k->mtime.tv_sec == st->st_mtim.tv_sec && k->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Remember m as hex's valid marker, its file as it is now (best effort:
 * without memory it is read again next time). */
static void remember_mark(const oc_store *s, const char *hex, const oc_blob_mark *m)
{
    char want[8 + OC_SHA256_HEX_LEN];
    snprintf(want, sizeof want, "sha256:%s", hex);
    if (!s->marks || strcmp(m->digest, want) != 0)
        return;
    char *path = oc_store_mark_path(s, hex);
    struct stat st;
    known_mark *k = path && stat(path, &st) == 0 ? malloc(sizeof *k) : NULL;
    free(path);
    if (!k)
        return;
    k->m = *m;
    k->ino = st.st_ino;
    k->size = st.st_size;
    k->mtime = st.st_mtim;
    marks_lock(s);
    if (oc_strmap_set(s->marks, hex, k) != 0)
        free(k);
    marks_unlock(s);
}

typedef struct marks_walk {
    oc_store_mark_visit fn;
    void *opaque;
} marks_walk;

static void visit_mark(const char *hex, void *value, void *opaque)
{
    const known_mark *k = value;
    marks_walk *w = opaque;
    if (!k)
        return;
    oc_file_id id = {.ino = (uint64_t)k->ino,
                     .size = (uint64_t)k->size,
                     .mtime_s = (int64_t)k->mtime.tv_sec,
                     .mtime_ns = k->mtime.tv_nsec};
    w->fn(w->opaque, hex, &k->m, &id);
}

void oc_store_marks_foreach(const oc_store *s, oc_store_mark_visit fn, void *opaque)
{
    marks_walk w = {fn, opaque};
    marks_lock(s);
    if (s->marks)
        oc_strmap_foreach(s->marks, visit_mark, &w);
    marks_unlock(s);
}

size_t oc_store_marks_count(const oc_store *s)
{
    marks_lock(s);
    size_t n = s->marks ? oc_strmap_count(s->marks) : 0;
    marks_unlock(s);
    return n;
}

void oc_store_marks_seed(oc_store *s, const char *hex, const oc_blob_mark *m, const oc_file_id *id)
{
    char want[8 + OC_SHA256_HEX_LEN];
    snprintf(want, sizeof want, "sha256:%s", hex);
    if (!s->marks || strcmp(m->digest, want) != 0)
        return;
    known_mark *k = malloc(sizeof *k);
    if (!k)
        return;
    k->m = *m;
    k->ino = (ino_t)id->ino;
    k->size = (off_t)id->size;
    k->mtime.tv_sec = (time_t)id->mtime_s;
    k->mtime.tv_nsec = id->mtime_ns;
    marks_lock(s);
    if (oc_strmap_has(s->marks, hex) || oc_strmap_set(s->marks, hex, k) != 0)
        free(k);
    marks_unlock(s);
}

/* The marker of hex: from the run's cache when its file is unchanged, else
 * read (and cached when valid). 1, 0 or -1 as oc_store_mark_read. */
static int mark_lookup(const oc_store *s, const char *hex, oc_blob_mark *m, oc_error *err)
{
    known_mark copy;
    marks_lock(s);
    const known_mark *known = s->marks ? oc_strmap_get(s->marks, hex) : NULL;
    if (known)
        copy = *known;
    marks_unlock(s);
    if (known) {
        char *path = oc_store_mark_path(s, hex);
        struct stat st;
        int same = path && stat(path, &st) == 0 && same_file(&copy, &st);
        free(path);
        if (same) {
            *m = copy.m;
            return 1;
        }
    }
    int r = oc_store_mark_read(s, hex, m, err);
    if (r == 1)
        remember_mark(s, hex, m);
    return r;
}

int oc_store_mark_write(oc_store *s, const char *hex, oc_blob_mark *m, oc_error *err)
{
    if (!m->verified_at[0])
        oc_store_now(m->verified_at);
    json_t *doc = json_object();
    if (!doc) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    json_object_set_new(doc, "kind", json_string(m->is_layer ? "layer" : "config"));
    json_object_set_new(doc, "digest", json_string(m->digest));
    json_object_set_new(doc, "size", json_integer((json_int_t)m->size));
    json_object_set_new(doc, "verified_at", json_string(m->verified_at));
    if (m->is_layer) {
        json_object_set_new(doc, "diff_id", json_string(m->diff_id));
        json_object_set_new(doc, "tar_size", json_integer((json_int_t)m->tar_size));
    }
    char *text = json_dumps(doc, JSON_INDENT(4) | JSON_SORT_KEYS);
    json_decref(doc);
    char *path = oc_store_mark_path(s, hex);
    int rc = -1;
    if (!text || !path)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    else
        rc = oc_store_put_small(s, path, text, strlen(text), err);
    free(text);
    free(path);
    if (rc == 0)
        remember_mark(s, hex, m);
    return rc;
}

/* Whether hex's marker (read into *m) is of the kind wanted and file (under
 * the store) is a regular file of the size it records; its path into *path
 * when asked (malloc'd, only on success). */
static int blob_in_place(const oc_store *s, const char *hex, int is_layer, const char *file,
                         oc_blob_mark *m, char **path)
{
    oc_error ignored;
    if (mark_lookup(s, hex, m, &ignored) != 1 || m->is_layer != is_layer)
        return 0;
    char *p = join(s->dir, file);
    struct stat st;
    int ok = p && lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
             (uint64_t)st.st_size == (is_layer ? m->tar_size : m->size);
    if (ok && path)
        *path = p;
    else
        free(p);
    return ok;
}

int oc_store_have_layer(void *opaque, const char *digest, const char *diff_id, char **path,
                        uint64_t *tar_size)
{
    oc_store *s = opaque;
    if (strncmp(digest, "sha256:", 7) != 0 || !oc_store_name_is_hex(digest + 7, "", NULL))
        return 0;
    const char *hex = digest + 7;
    char file[OC_SHA256_HEX_LEN + 16];
    snprintf(file, sizeof file, "%s/layer.tar", hex);
    oc_blob_mark m;
    char *p = NULL;
    if (!blob_in_place(s, hex, 1, file, &m, &p))
        return 0;
    if (strcmp(m.diff_id, diff_id) != 0) {
        free(p);
        return 0;
    }
    *path = p;
    *tar_size = m.tar_size;
    return 1;
}

int oc_store_have_config(void *opaque, const char *digest, uint64_t size, char **body, size_t *len)
{
    const oc_store *s = opaque;
    if (strncmp(digest, "sha256:", 7) != 0 || !oc_store_name_is_hex(digest + 7, "", NULL) ||
        size > OC_IMAGE_CONFIG_MAX)
        return 0;
    const char *hex = digest + 7;
    char file[OC_SHA256_HEX_LEN + 8];
    snprintf(file, sizeof file, "%s.json", hex);
    oc_blob_mark m;
    char *p = NULL;
    if (!blob_in_place(s, hex, 0, file, &m, &p) || m.size != size) {
        free(p);
        return 0;
    }
    oc_error ignored;
    *body = oc_read_file(p, (size_t)size + 1, len, &ignored);
    free(p);
    char got[OC_SHA256_HEX_LEN + 1];
    if (*body && *len == size) {
        oc_sha256_buf_hex(*body, *len, got); /* changed since (a hand): fetch it */
        if (strcmp(got, hex) == 0)
            return 1;
    }
    free(*body);
    *body = NULL;
    return 0;
}

int oc_store_image_intact(const oc_store *s, const oc_store_image *si, char *why, size_t cap)
{
    oc_blob_mark m;
    if (!si->config || !blob_in_place(s, si->config_hex, 0, si->config, &m, NULL)) {
        snprintf(why, cap, "config %s is missing or not as last verified",
                 si->config ? si->config : "(none)");
        return 0;
    }
    for (size_t i = 0; i < si->n_layers; i++) {
        if (!blob_in_place(s, si->layer_hex[i], 1, si->layers[i], &m, NULL)) {
            snprintf(why, cap, "layer %s is missing or not as last verified", si->layers[i]);
            return 0;
        }
    }
    return 1;
}

/* ---- catalog ---- */

int oc_store_catalog_load(const oc_store *s, oc_catalog **out, oc_error *err)
{
    *out = NULL;
    char *path = join(s->dir, "catalog.json");
    if (!path) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        free(path);
        *out = oc_catalog_new(err);
        return *out ? 0 : -1;
    }
    size_t len = 0;
    char *text = oc_read_file(path, OC_STORE_JSON_MAX, &len, err);
    if (text)
        *out = oc_catalog_parse(text, len, path, err);
    free(text);
    free(path);
    return *out ? 0 : -1;
}

int oc_store_catalog_lock(oc_store *s, oc_error *err)
{
    char *lock = join(s->dir, META_DIR "/catalog.lock");
    if (!lock) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    int fd = oc_lock_open(lock, 1, err);
    if (fd >= 0 && oc_lock_take(fd, OC_LOCK_EXCLUSIVE, 1, lock, err) != 0) {
        oc_lock_close(fd);
        fd = -1;
    }
    free(lock);
    return fd;
}

void oc_store_catalog_unlock(int fd)
{
    oc_lock_close(fd);
}

int oc_store_catalog_replace(oc_store *s, const oc_catalog *c, oc_error *err)
{
    char *path = join(s->dir, "catalog.json");
    size_t len = 0;
    char *text = path ? oc_catalog_dump(c, &len, err) : NULL;
    int rc = -1;
    if (!path)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    /* gc and verify --repair (alone in the store) write through STORE/.tmp */
    if (text)
        rc = oc_store_replace_file(s, path, text, len, "catalog-write", err);
    free(text);
    free(path);
    return rc;
}

int oc_store_catalog_add(oc_store *s, const char *image, const char *tag, const char *manifest_file,
                         oc_error *err)
{
    oc_catalog *c = NULL;
    int rc = -1;
    int fd = oc_store_catalog_lock(s, err);
    if (fd < 0)
        return -1;
    if (oc_store_catalog_load(s, &c, err) == 0 &&
        oc_catalog_set(c, image, tag, manifest_file, err) == 0)
        rc = oc_store_catalog_replace(s, c, err);
    oc_store_catalog_unlock(fd); /* after the rename: the next writer reads our catalog */
    oc_catalog_free(c);
    return rc;
}

/* ---- finding images ---- */

static int not_found(const oc_store *s, const oc_catalog *c, const char *image, const char *tag,
                     oc_error *err)
{
    char *what = NULL;
    if (oc_catalog_has_image(c, image)) {
        what = oc_catalog_tags_of(c, image);
        oc_error_set(err, OC_E_NOTFOUND, "store %s has no tag \"%s\" of %s; its tags: %s", s->dir,
                     tag, image, what ? what : "?");
    } else if (oc_catalog_count(c) == 0) {
        oc_error_set(err, OC_E_NOTFOUND, "store %s holds no images (its catalog.json is %s)",
                     s->dir, access(s->dir, F_OK) == 0 ? "missing or empty" : "missing");
    } else {
        what = oc_catalog_images(c);
        oc_error_set(err, OC_E_NOTFOUND, "store %s has no image %s; it holds: %s", s->dir, image,
                     what ? what : "?");
    }
    free(what);
    return -1;
}

int oc_store_find(const oc_store *s, const char *image, const char *tag, oc_store_image *si,
                  char **manifest_file, oc_error *err)
{
    memset(si, 0, sizeof *si);
    if (manifest_file)
        *manifest_file = NULL;
    oc_catalog *c = NULL;
    if (oc_store_catalog_load(s, &c, err) != 0)
        return -1;
    int rc = oc_store_find_in(s, c, image, tag, si, manifest_file, err);
    oc_catalog_free(c);
    return rc;
}

int oc_store_lookup(const oc_store *s, const oc_catalog *c, const char *image, const char *tag,
                    oc_store_image *si, char **manifest_file, oc_error *err)
{
    memset(si, 0, sizeof *si);
    if (manifest_file)
        *manifest_file = NULL;
    const char *listed = oc_catalog_get(c, image, tag);
    char *name = listed ? strdup(listed) : oc_catalog_manifest_name(image, tag);
    char *path = name ? join(s->dir, name) : NULL;
    int rc = -1;
    if (!path) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    if (!oc_catalog_file_name_ok(name)) {
        oc_error_set(err, OC_E_FORMAT, "store %s: catalog.json names \"%s\" for %s:%s", s->dir,
                     name, image, tag);
        goto out;
    }
    if (!listed && access(path, F_OK) != 0) {
        rc = 1;
        goto out;
    }
    if (oc_store_image_load(si, path, err) != 0)
        goto out;
    if (si->image_name && strcmp(si->image_name, image) != 0) {
        oc_error_set(err, OC_E_FORMAT, "store %s: %s is image %s, not %s", s->dir, name,
                     si->image_name, image);
        oc_store_image_free(si);
        goto out;
    }
    if (manifest_file) {
        *manifest_file = name;
        name = NULL;
    }
    rc = 0;
out:
    free(name);
    free(path);
    return rc;
}

int oc_store_find_in(const oc_store *s, const oc_catalog *c, const char *image, const char *tag,
                     oc_store_image *si, char **manifest_file, oc_error *err)
{
    int r = oc_store_lookup(s, c, image, tag, si, manifest_file, err);
    if (r == 1)
        return not_found(s, c, image, tag, err);
    return r;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct name_list {
    char ***v;
    size_t *n;
    size_t cap;
} name_list;

static int push_name(name_list *l, const char *name, size_t len)
{
    char **grown = oc_grow(*l->v, &l->cap, *l->n + 1, sizeof *grown, 16);
    if (!grown)
        return -1;
    *l->v = grown;
    char *copy = strndup(name, len);
    if (!copy)
        return -1;
    (*l->v)[(*l->n)++] = copy;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void oc_store_entries_free(oc_store_entries *e)
{
    free_names(e->layers, e->n_layers);
    free_names(e->configs, e->n_configs);
    free_names(e->manifests, e->n_manifests);
    free_names(e->marks, e->n_marks);
    memset(e, 0, sizeof *e);
}

long oc_store_entries_find(char *const *list, size_t n, const char *name)
{
    char *const *hit = n > 0 ? bsearch(&name, list, n, sizeof *list, cmp_names) : NULL;
    return hit ? (long)(hit - list) : -1;
}

static int read_marks(const oc_store *s, name_list *marks, oc_error *err)
{
    char *dir = join(s->dir, META_DIR "/blobs");
    if (!dir) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        free(dir);
        if (e == ENOENT)
            return 0;
        oc_error_errno(err, e, "read directory %s/" META_DIR "/blobs", s->dir);
        return -1;
    }
    free(dir);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)))
        if (oc_store_name_is_hex(e->d_name, ".json", NULL))
            rc = push_name(marks, e->d_name, OC_SHA256_HEX_LEN);
    closedir(d);
    if (rc != 0)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    return rc;
}

int oc_store_entries_read(const oc_store *s, oc_store_entries *out, oc_error *err)
{
    memset(out, 0, sizeof *out);
    name_list layers = {&out->layers, &out->n_layers, 0};
    name_list configs = {&out->configs, &out->n_configs, 0};
    name_list manifests = {&out->manifests, &out->n_manifests, 0};
    name_list marks = {&out->marks, &out->n_marks, 0};
    DIR *d = opendir(s->dir);
    if (!d) {
        oc_error_errno(err, errno, "read directory %s", s->dir);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        struct stat st;
        if (name[0] == '.' || fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && oc_store_name_is_hex(name, "", NULL))
            rc = push_name(&layers, name, len);
        else if (S_ISREG(st.st_mode) && oc_store_name_is_hex(name, ".json", NULL))
            rc = push_name(&configs, name, OC_SHA256_HEX_LEN);
        else if (S_ISREG(st.st_mode) && strncmp(name, "manifest", 8) == 0 && len >= 13 &&
                 strcmp(name + len - 5, ".json") == 0)
            rc = push_name(&manifests, name, len);
    }
    closedir(d);
    if (rc != 0)
        oc_error_set(err, OC_E_NOMEM, "out of memory listing %s", s->dir);
    if (rc == 0)
        rc = read_marks(s, &marks, err);
    if (rc != 0) {
        oc_store_entries_free(out);
        return -1;
    }
    if (out->n_layers)
        qsort(out->layers, out->n_layers, sizeof *out->layers, cmp_names);
    if (out->n_configs)
        qsort(out->configs, out->n_configs, sizeof *out->configs, cmp_names);
    if (out->n_manifests)
        qsort(out->manifests, out->n_manifests, sizeof *out->manifests, cmp_names);
    if (out->n_marks)
        qsort(out->marks, out->n_marks, sizeof *out->marks, cmp_names);
    return 0;
}
