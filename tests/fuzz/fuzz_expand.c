/* fuzz_expand.c - libFuzzer harness for layer expansion with whiteouts
 * (engine/expand.h: oc_expand_merge, oc_expand_as_is) on fuzz-made tars.
 *
 * Input: one flags byte, then up to three uncompressed layer tars separated
 * by the 10 bytes "OCCYLAYER\n" (oldest first). Flags:
 *   bits 0-1  0 merge (auto), 1 merge oldest-first, 2 merge write-once,
 *             3 one layer as it is (oc_expand_as_is, first layer only)
 *   bits 2-3  the target before: 0 absent, 1 an empty directory, 2 an
 *             earlier tree and replace=1, 3 absent and replace=1
 *   bit 4     max_bytes = 4096 (else no limit)
 *   bit 5     keep tar header checksums as they are (else every 512-byte
 *             block with the ustar magic gets its checksum fixed, so
 *             mutated headers get past libarchive's checksum test)
 *   bit 6     compare the strategies (merges only): oldest-first and
 *             write-once, one after the other, must both fail or both
 *             build the same tree (names, types, modes, owners, sizes,
 *             contents, mtimes set from the tar, symlink texts,
 *             hard-link groups)
 * (expand takes uncompressed tars only, as the store holds them: no gzip.)
 *
 * Layout, in a private base directory B made once per process under
 * $OCCY_FUZZ_TMPDIR (else $TMPDIR, else /tmp):
 *   B/r/layers/N.tar     the layers        B/r/sentinel   a file to protect
 *   B/r/a/b/c/target     the target (several ".." away from B/r)
 *
 * Properties checked after every expand, successful or not:
 * - nothing outside the target changed: a listing of B (type, mode, owner,
 *   size, mtime, symlink text; the target's subtree left out) is the same
 *   before and after; so the target's parent holds only the target (or
 *   nothing: no scratch left behind), the sentinel is intact, and the layer
 *   files are byte for byte what was written;
 * - when OCCY_FUZZ_TMPDIR is set it must be a directory for this process
 *   alone (tests/fuzz/run.sh mounts a tmpfs): it must still hold only B;
 * - inside the target, no file has a hard link outside it (link counts are
 *   all accounted for inside), and no symlink resolves to something that
 *   was created outside the target;
 * - on failure the target is as it was (absent, empty, or the earlier
 *   tree); on success a given max_bytes bounds the file bytes in the tree;
 * - the process keeps its working directory, umask and open files;
 * - with bit 6, the two strategies agree, but for an error in an entry a
 *   later layer replaces or deletes (only oldest-first creates it).
 * Everything under B/r is removed after each input. The process runs with
 * RLIMIT_FSIZE at 1 GiB (SIGXFSZ ignored), so a file that would grow
 * beyond it fails the same way on every file system (tmpfs takes sparse
 * files of exabytes, ext4 refuses beyond 16 TiB). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "engine/expand/expand.h"
#include "fuzz_common.h"

#define SEP "OCCYLAYER\n"
#define SEP_LEN 10
#define MAX_LAYERS 3
#define MAX_BYTES_SMALL 4096
#define BLOCK 512
#define OLD_TEXT "earlier tree\n"
#define FSIZE_LIMIT (1ull << 30) /* RLIMIT_FSIZE: no file may grow beyond 1 GiB */
#define HASH_MAX (1u << 20)

static char g_tmp[4096];  /* $OCCY_FUZZ_TMPDIR or the like */
static char g_base[4096]; /* B */
static int g_private_tmp;

/* ---- small dynamic strings and lists ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_need(sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra + 1)
        nc *= 2;
    char *ns = realloc(b->s, nc);
    FZ_CHECK(ns != NULL, "harness out of memory");
    b->s = ns;
    b->cap = nc;
}

static void sb_add(sbuf *b, const char *s, size_t n)
{
    sb_need(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_cut(sbuf *b, size_t len)
{
    b->len = len;
    if (b->s)
        b->s[len] = '\0';
}

typedef struct slist {
    char **v;
    size_t n, cap;
} slist;

static void sl_add(slist *l, char *s)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof *nv);
        FZ_CHECK(nv != NULL, "harness out of memory");
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
}

static void sl_free(slist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- walking a tree through fds (paths inside may exceed PATH_MAX) ---- */

/* The sorted names in directory fd (fd stays open). */
static void read_names(int fd, slist *out)
{
    memset(out, 0, sizeof *out);
    int d = dup(fd);
    FZ_CHECK(d >= 0, "dup: %s", strerror(errno));
    DIR *dir = fdopendir(d);
    FZ_CHECK(dir != NULL, "fdopendir: %s", strerror(errno));
    struct dirent *de;
    while ((de = readdir(dir)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            char *s = strdup(de->d_name);
            FZ_CHECK(s != NULL, "harness out of memory");
            sl_add(out, s);
        }
    closedir(dir);
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
}

/* Called for every entry below the walk's top: before its contents (post 0)
 * and, for directories, after them (post 1). dirfd is the entry's parent,
 * path its path from the top ("/"-joined). A pre-visit returning 1 skips a
 * directory's contents. */
typedef int (*visit_fn)(void *ctx, int dirfd, const char *name, const char *path,
                        const struct stat *st, int post);

typedef struct level {
    slist names;
    size_t next;
    size_t path_len; /* length of this directory's path */
} level;

/* Depth-first walk below topfd holding only one fd: a directory's parent is
 * reached again through "..", which for a directory opened with O_NOFOLLOW
 * is the directory it was opened from. */
static void walk(int topfd, visit_fn fn, void *ctx)
{
    level *stack = NULL;
    size_t depth = 0, cap = 0;
    sbuf path = {0};
    int fd = dup(topfd);
    FZ_CHECK(fd >= 0, "dup: %s", strerror(errno));
    sb_add(&path, "", 0);
    cap = 16;
    stack = malloc(cap * sizeof *stack);
    FZ_CHECK(stack != NULL, "harness out of memory");
    read_names(fd, &stack[0].names);
    stack[0].next = 0;
    stack[0].path_len = 0;
    depth = 1;
    while (depth > 0) {
        level *l = &stack[depth - 1];
        if (l->next == l->names.n) {
            sl_free(&l->names);
            depth--;
            if (depth == 0)
                break;
            int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            FZ_CHECK(up >= 0, "open ..: %s", strerror(errno));
            close(fd);
            fd = up;
            level *p = &stack[depth - 1];
            const char *name = p->names.v[p->next - 1];
            struct stat st;
            if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                fn(ctx, fd, name, path.s, &st, 1);
            sb_cut(&path, p->path_len);
            continue;
        }
        const char *name = l->names.v[l->next++];
        struct stat st;
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (l->path_len)
            sb_add(&path, "/", 1);
        sb_add(&path, name, strlen(name));
        int r = fn(ctx, fd, name, path.s, &st, 0);
        if (S_ISDIR(st.st_mode) && r == 0) {
            int child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child < 0 && errno == EACCES && fchmodat(fd, name, 0700, 0) == 0)
                child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child >= 0) {
                if (depth == cap) {
                    cap *= 2;
                    level *ns = realloc(stack, cap * sizeof *ns);
                    FZ_CHECK(ns != NULL, "harness out of memory");
                    stack = ns;
                }
                close(fd);
                fd = child;
                read_names(fd, &stack[depth].names);
                stack[depth].next = 0;
                stack[depth].path_len = path.len;
                depth++;
                continue;
            }
        }
        if (S_ISDIR(st.st_mode))
            fn(ctx, fd, name, path.s, &st, 1);
        sb_cut(&path, l->path_len);
    }
    close(fd);
    free(stack);
    free(path.s);
}

/* ---- removing ---- */

static int rm_visit(void *ctx, int dirfd, const char *name, const char *path, const struct stat *st,
                    int post)
{
    (void)ctx;
    (void)path;
    if (S_ISDIR(st->st_mode)) {
        if (post)
            FZ_CHECK(unlinkat(dirfd, name, AT_REMOVEDIR) == 0, "rmdir %s: %s", path,
                     strerror(errno));
        return 0;
    }
    FZ_CHECK(unlinkat(dirfd, name, 0) == 0, "unlink %s: %s", path, strerror(errno));
    return 0;
}

/* Remove everything in directory path, and it too when self. */
static void rm_tree(const char *path, int self)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        FZ_CHECK(errno == ENOENT, "open %s: %s", path, strerror(errno));
        return;
    }
    walk(fd, rm_visit, NULL);
    close(fd);
    if (self)
        FZ_CHECK(rmdir(path) == 0, "rmdir %s: %s", path, strerror(errno));
}

static void base_cleanup(void)
{
    if (g_base[0])
        rm_tree(g_base, 1);
}

static void base_init(void)
{
    const char *tmp = getenv("OCCY_FUZZ_TMPDIR");
    g_private_tmp = tmp && *tmp;
    if (!g_private_tmp)
        tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(g_tmp, sizeof g_tmp, "%s", tmp);
    snprintf(g_base, sizeof g_base, "%s/occy-fuzz-expand-XXXXXX", tmp);
    /* the same file size limit on every file system (tmpfs takes files of
     * exabytes): growing a file beyond it fails with EFBIG, not SIGXFSZ */
    struct rlimit rl;
    FZ_CHECK(getrlimit(RLIMIT_FSIZE, &rl) == 0, "getrlimit: %s", strerror(errno));
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > FSIZE_LIMIT) {
        rl.rlim_cur = FSIZE_LIMIT;
        FZ_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, "setrlimit: %s", strerror(errno));
    }
    signal(SIGXFSZ, SIG_IGN);
    FZ_CHECK(mkdtemp(g_base) != NULL, "mkdtemp %s: %s", g_base, strerror(errno));
    atexit(base_cleanup);
}

/* ---- listing outside the target ---- */

typedef struct lister {
    const char *skip; /* the target's path from B: not listed, not entered */
    slist lines;
} lister;

static int list_visit(void *ctx, int dirfd, const char *name, const char *path,
                      const struct stat *st, int post)
{
    lister *l = ctx;
    if (post)
        return 0;
    if (strcmp(path, l->skip) == 0)
        return 1;
    char link[512] = "";
    if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlinkat(dirfd, name, link, sizeof link - 1);
        link[n > 0 ? n : 0] = '\0';
    }
    /* directories: no size or mtime (they change when the target appears) */
    int isdir = S_ISDIR(st->st_mode);
    char *line = NULL;
    int n =
        asprintf(&line, "%s\t%o\t%u:%u\t%lld\t%lld.%09ld\t%s", path, (unsigned)st->st_mode,
                 (unsigned)st->st_uid, (unsigned)st->st_gid, isdir ? 0LL : (long long)st->st_size,
                 isdir ? 0LL : (long long)st->st_mtime, isdir ? 0L : st->st_mtim.tv_nsec, link);
    FZ_CHECK(n >= 0, "harness out of memory");
    sl_add(&l->lines, line);
    return 0;
}

static char *listing(const char *skip)
{
    lister l = {skip, {0}};
    int fd = open(g_base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FZ_CHECK(fd >= 0, "open %s: %s", g_base, strerror(errno));
    walk(fd, list_visit, &l);
    close(fd);
    sbuf out = {0};
    sb_add(&out, "", 0);
    for (size_t i = 0; i < l.lines.n; i++) {
        sb_add(&out, l.lines.v[i], strlen(l.lines.v[i]));
        sb_add(&out, "\n", 1);
    }
    sl_free(&l.lines);
    return out.s;
}

/* The first line that differs, for the message. */
static void report_diff(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && a[i] == b[i])
        i++;
    while (i > 0 && a[i - 1] != '\n')
        i--;
    fprintf(stderr, "listing before, from the first difference:\n%.600s\nafter:\n%.600s\n", a + i,
            b + i);
}

/* ---- inside the target ---- */

typedef struct inode {
    dev_t dev;
    ino_t ino;
    nlink_t nlink;
    uint64_t file_size; /* regular files; 0 for the rest */
} inode;

typedef struct inspector {
    inode *v;
    size_t n, cap;
    const char *before; /* listing before, to tell what was created outside */
} inspector;

static int cmp_inode(const void *a, const void *b)
{
    const inode *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

static int inspect_visit(void *ctx, int dirfd, const char *name, const char *path,
                         const struct stat *st, int post)
{
    inspector *in = ctx;
    if (post || S_ISDIR(st->st_mode))
        return 0;
    if (in->n == in->cap) {
        size_t nc = in->cap ? in->cap * 2 : 64;
        inode *nv = realloc(in->v, nc * sizeof *nv);
        FZ_CHECK(nv != NULL, "harness out of memory");
        in->v = nv;
        in->cap = nc;
    }
    in->v[in->n++] = (inode){st->st_dev, st->st_ino, st->st_nlink,
                             S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0};
    if (S_ISLNK(st->st_mode)) {
        /* where it leads, resolved by the kernel from the symlink's directory */
        int t = openat(dirfd, name, O_PATH | O_CLOEXEC);
        if (t >= 0) {
            char proc[64], real[4096];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", t);
            ssize_t n = readlink(proc, real, sizeof real - 1);
            close(t);
            size_t bl = strlen(g_base);
            if (n > 0) {
                real[n] = '\0';
                if (strncmp(real, g_base, bl) == 0 && real[bl] == '/') {
                    /* inside B: it must have been there before (a layer file,
                     * the sentinel, a directory) or be inside the target */
                    const char *rel = real + bl + 1;
                    size_t rl = strlen(rel);
                    int known = 0;
                    for (const char *p = in->before; *p && !known;) {
                        known = strncmp(p, rel, rl) == 0 && p[rl] == '\t';
                        p = strchr(p, '\n');
                        p = p ? p + 1 : "";
                    }
                    FZ_CHECK(known || strncmp(rel, "r/a/b/c/target", 14) == 0,
                             "symlink %s leads to %s, created outside the target", path, real);
                }
            }
        }
    }
    return 0;
}

/* Link counts of non-directories in the target must be accounted for
 * inside it: otherwise a file inside is the same inode as one outside. */
static void check_target(const char *target, int64_t max_bytes, int ok, const char *before)
{
    int fd = open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        FZ_CHECK(errno == ENOENT, "open %s: %s", target, strerror(errno));
        return;
    }
    inspector in = {0};
    in.before = before;
    walk(fd, inspect_visit, &in);
    close(fd);
    if (in.n)
        qsort(in.v, in.n, sizeof *in.v, cmp_inode);
    uint64_t file_bytes = 0; /* each inode once */
    for (size_t i = 0; i < in.n;) {
        size_t j = i;
        while (j < in.n && cmp_inode(&in.v[i], &in.v[j]) == 0)
            j++;
        FZ_CHECK((nlink_t)(j - i) == in.v[i].nlink,
                 "inode %llu has %llu links but %zu in the target: a link leads outside",
                 (unsigned long long)in.v[i].ino, (unsigned long long)in.v[i].nlink, j - i);
        file_bytes += in.v[i].file_size;
        i = j;
    }
    free(in.v);
    if (ok && max_bytes > 0)
        FZ_CHECK(file_bytes <= (uint64_t)max_bytes, "%llu file bytes in the tree, limit %lld",
                 (unsigned long long)file_bytes, (long long)max_bytes);
}

/* ---- the process state expand must not touch ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    FZ_CHECK(d != NULL, "opendir /proc/self/fd: %s", strerror(errno));
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Print the open files, for a message. */
static void print_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char link[64], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        fprintf(stderr, "  fd %s -> %s\n", de->d_name, target);
    }
    closedir(d);
}

/* ---- input ---- */

/* Fix the checksum of every 512-byte block that carries the ustar magic. */
static void fix_checksums(uint8_t *t, size_t n)
{
    for (size_t off = 0; off + BLOCK <= n; off += BLOCK) {
        uint8_t *h = t + off;
        if (memcmp(h + 257, "ustar", 5) != 0)
            continue;
        unsigned sum = 0;
        for (size_t i = 0; i < BLOCK; i++)
            sum += (i >= 148 && i < 156) ? ' ' : h[i];
        char chk[8];
        snprintf(chk, sizeof chk, "%06o", sum & 0777777);
        memcpy(h + 148, chk, 6);
        h[154] = '\0';
        h[155] = ' ';
    }
}

/* Offset of the first separator in the n bytes at p, or n. */
static size_t find_sep(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + SEP_LEN <= n; i++)
        if (p[i] == SEP[0] && memcmp(p + i, SEP, SEP_LEN) == 0)
            return i;
    return n;
}

static void write_file(const char *path, const uint8_t *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FZ_CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        FZ_CHECK(w > 0, "write %s: %s", path, strerror(errno));
        done += (size_t)w;
    }
    close(fd);
}

static void make_dir(const char *path)
{
    FZ_CHECK(mkdir(path, 0755) == 0, "mkdir %s: %s", path, strerror(errno));
}

static void path_of(char *out, size_t cap, const char *rel)
{
    int n = snprintf(out, cap, "%s/%s", g_base, rel);
    FZ_CHECK(n > 0 && (size_t)n < cap, "path too long");
}

/* Names in directory path, "\n"-joined; "" when it does not exist. */
static char *names_in(const char *path)
{
    sbuf out = {0};
    sb_add(&out, "", 0);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        FZ_CHECK(errno == ENOENT, "open %s: %s", path, strerror(errno));
        return out.s;
    }
    slist names;
    read_names(fd, &names);
    close(fd);
    for (size_t i = 0; i < names.n; i++) {
        sb_add(&out, names.v[i], strlen(names.v[i]));
        sb_add(&out, "\n", 1);
    }
    sl_free(&names);
    return out.s;
}

/* ---- a canonical description of a tree, to compare the strategies ---- */

typedef struct tree_entry {
    char *line;
    dev_t dev;
    ino_t ino;
    size_t order;
    int linkable; /* a non-directory: may share its inode */
} tree_entry;

typedef struct describer {
    tree_entry *v;
    size_t n, cap;
    time_t since; /* mtimes from then on were not set from the tar: "now" */
} describer;

/* An mtime for the description: "now" when it is the time of the run (the
 * tar did not set it, e.g. an implied directory), else sec.nsec. */
static void mtime_text(const struct stat *st, time_t since, char *out, size_t cap)
{
    if (st->st_mtime >= since)
        snprintf(out, cap, "now");
    else
        snprintf(out, cap, "%lld.%09ld", (long long)st->st_mtime, st->st_mtim.tv_nsec);
}

/* FNV-1a of the first HASH_MAX bytes (a sparse file may be far larger). */
static uint64_t fnv_fd(int fd)
{
    uint64_t h = 1469598103934665603ull;
    unsigned char buf[4096];
    ssize_t got;
    size_t total = 0;
    while (total < HASH_MAX && (got = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < got; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
        total += (size_t)got;
    }
    return h;
}

static int describe_visit(void *ctx, int dirfd, const char *name, const char *path,
                          const struct stat *st, int post)
{
    describer *d = ctx;
    if (post)
        return 0;
    char link[512] = "";
    uint64_t hash = 0;
    if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlinkat(dirfd, name, link, sizeof link - 1);
        link[n > 0 ? n : 0] = '\0';
    } else if (S_ISREG(st->st_mode)) {
        int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            hash = fnv_fd(fd);
            close(fd);
        }
    }
    char mt[64];
    mtime_text(st, d->since, mt, sizeof mt);
    char *line = NULL;
    int n = asprintf(&line, "%s\t%o\t%u:%u\t%lld\t%016llx\t%s\t%s", path, (unsigned)st->st_mode,
                     (unsigned)st->st_uid, (unsigned)st->st_gid,
                     S_ISDIR(st->st_mode) ? 0LL : (long long)st->st_size, (unsigned long long)hash,
                     mt, link);
    FZ_CHECK(n >= 0, "harness out of memory");
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 64;
        tree_entry *nv = realloc(d->v, nc * sizeof *nv);
        FZ_CHECK(nv != NULL, "harness out of memory");
        d->v = nv;
        d->cap = nc;
    }
    d->v[d->n] = (tree_entry){line, st->st_dev, st->st_ino, d->n, !S_ISDIR(st->st_mode)};
    d->n++;
    return 0;
}

static int cmp_tree_inode(const void *a, const void *b)
{
    const tree_entry *x = a, *y = b;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_tree_order(const void *a, const void *b)
{
    const tree_entry *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Every entry of the tree at path (names sorted, depth first): type and
 * mode, owner, size, content hash, mtime, symlink text, and for a hard link
 * the first path of its inode. NULL when there is no tree. */
static char *describe_tree(const char *path, time_t since)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat top;
    FZ_CHECK(fstat(fd, &top) == 0, "fstat %s", path);
    describer d = {0};
    d.since = since;
    walk(fd, describe_visit, &d);
    close(fd);
    /* name each hard link by the first path of its inode */
    if (d.n)
        qsort(d.v, d.n, sizeof *d.v, cmp_tree_inode);
    for (size_t i = 1; i < d.n; i++) {
        if (!d.v[i].linkable || d.v[i].ino != d.v[i - 1].ino || d.v[i].dev != d.v[i - 1].dev)
            continue;
        size_t k = i - 1;
        while (k > 0 && d.v[k - 1].ino == d.v[i].ino && d.v[k - 1].dev == d.v[i].dev)
            k--;
        const char *first = d.v[k].line;
        size_t fl = strcspn(first, "\t");
        char *line = NULL;
        FZ_CHECK(asprintf(&line, "%s\thard link to %.*s", d.v[i].line, (int)fl, first) >= 0,
                 "harness out of memory");
        free(d.v[i].line);
        d.v[i].line = line;
    }
    if (d.n)
        qsort(d.v, d.n, sizeof *d.v, cmp_tree_order);
    sbuf out = {0};
    char rootline[128], mt[64];
    mtime_text(&top, since, mt, sizeof mt);
    snprintf(rootline, sizeof rootline, ".\t%o\t%u:%u\t%s\n", (unsigned)top.st_mode,
             (unsigned)top.st_uid, (unsigned)top.st_gid, mt);
    sb_add(&out, rootline, strlen(rootline));
    for (size_t i = 0; i < d.n; i++) {
        sb_add(&out, d.v[i].line, strlen(d.v[i].line));
        sb_add(&out, "\n", 1);
        free(d.v[i].line);
    }
    free(d.v);
    return out.s;
}

/* ---- one expand and its checks ---- */

typedef struct setup {
    oc_expand_layer layers[MAX_LAYERS];
    char paths[MAX_LAYERS][4300];
    char labels[MAX_LAYERS][8];
    const uint8_t *bytes[MAX_LAYERS];
    size_t lens[MAX_LAYERS];
    size_t n;
    char parent[4200], target[4200];
} setup;

/* mode: 0 auto, 1 oldest-first, 2 write-once, 3 as it is. Runs every
 * check, describes the tree into *tree when it succeeded (and tree is not
 * NULL), and removes the target again. Returns expand's result. */
static int expand_once(const setup *s, unsigned mode, unsigned pre, uint64_t max_bytes, char **tree,
                       oc_error *err)
{
    int replace = pre >= 2;
    if (pre == 1 || pre == 2)
        make_dir(s->target);
    if (pre == 2) {
        char p[4300];
        snprintf(p, sizeof p, "%s/old-file", s->target);
        write_file(p, (const uint8_t *)OLD_TEXT, strlen(OLD_TEXT));
    }

    char *before = listing("r/a/b/c/target");
    char *tmp_before = g_private_tmp ? names_in(g_tmp) : NULL;
    char *target_before = names_in(s->target);
    int fds_before = count_fds();
    struct stat cwd_before, cwd_after;
    FZ_CHECK(stat(".", &cwd_before) == 0, "stat .");
    mode_t mask_before = umask(022);
    umask(mask_before);

    time_t since = time(NULL) - 1;
    oc_expand_opts opts = {0};
    opts.strategy = mode == 1   ? OC_EXPAND_OLDEST_FIRST
                    : mode == 2 ? OC_EXPAND_WRITE_ONCE
                                : OC_EXPAND_AUTO;
    opts.max_bytes = max_bytes;
    opts.no_sync = 1;
    oc_expand_stats st;
    err->msg[0] = '\0';
    int rc = mode == 3 ? oc_expand_as_is(&s->layers[0], s->target, replace, &opts, &st, err)
                       : oc_expand_merge(s->layers, s->n, s->target, replace, &opts, &st, err);

    /* the process */
    if (count_fds() != fds_before) {
        print_fds();
        FZ_CHECK(0, "open files: %d before, %d after (rc %d: %s)", fds_before, count_fds(), rc,
                 err->msg);
    }
    FZ_CHECK(stat(".", &cwd_after) == 0 && cwd_after.st_ino == cwd_before.st_ino &&
                 cwd_after.st_dev == cwd_before.st_dev,
             "the working directory changed");
    mode_t mask_after = umask(mask_before);
    FZ_CHECK(mask_after == mask_before, "umask %o became %o", (unsigned)mask_before,
             (unsigned)mask_after);

    /* outside the target */
    char *after = listing("r/a/b/c/target");
    if (strcmp(before, after) != 0) {
        report_diff(before, after);
        FZ_CHECK(0, "something outside the target changed (rc %d: %s)", rc, err->msg);
    }
    if (g_private_tmp) {
        char *tmp_after = names_in(g_tmp);
        FZ_CHECK(strcmp(tmp_before, tmp_after) == 0, "%s changed: was\n%s\nnow\n%s", g_tmp,
                 tmp_before, tmp_after);
        free(tmp_after);
    }
    char *in_parent = names_in(s->parent);
    int target_exists = strcmp(in_parent, "target\n") == 0;
    FZ_CHECK(target_exists || in_parent[0] == '\0', "the target's parent holds:\n%s", in_parent);
    for (size_t i = 0; i < s->n; i++) {
        int fd = open(s->paths[i], O_RDONLY | O_CLOEXEC);
        FZ_CHECK(fd >= 0, "open %s", s->paths[i]);
        uint8_t *back = fz_xmalloc(s->lens[i] + 1);
        ssize_t got = read(fd, back, s->lens[i] + 1);
        close(fd);
        FZ_CHECK(got == (ssize_t)s->lens[i] &&
                     (s->lens[i] == 0 || memcmp(back, s->bytes[i], s->lens[i]) == 0),
                 "layer %zu changed", i);
        free(back);
    }

    /* the target */
    if (rc != 0) {
        FZ_CHECK(err->msg[0] != '\0', "failure without a message");
        FZ_CHECK(target_exists == (pre == 1 || pre == 2), "failure: target %s",
                 target_exists ? "appeared" : "vanished");
        char *target_after = names_in(s->target);
        FZ_CHECK(strcmp(target_before, target_after) == 0, "failure changed the target: %s",
                 target_after);
        free(target_after);
    } else {
        FZ_CHECK(target_exists, "success without a target");
        if (max_bytes)
            FZ_CHECK(st.bytes <= max_bytes, "stats: %llu bytes written, limit %llu",
                     (unsigned long long)st.bytes, (unsigned long long)max_bytes);
    }
    check_target(s->target, (int64_t)max_bytes, rc == 0, before);
    if (tree)
        *tree = rc == 0 ? describe_tree(s->target, since) : NULL;

    free(in_parent);
    free(before);
    free(after);
    free(tmp_before);
    free(target_before);
    rm_tree(s->target, 1);
    return rc;
}

/* ---- shadowing ---- */

/* Strip leading "./" and "/" and trailing "/" from name, into out. */
static void norm_name(const char *name, char *out, size_t cap)
{
    while (name[0] == '/' || (name[0] == '.' && name[1] == '/'))
        name += name[0] == '/' ? 1 : 2;
    snprintf(out, cap, "%s", name);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* Whether prefix is path or an ancestor of it ("" is everyone's). */
static int is_at_or_under(const char *path, const char *prefix, int strict)
{
    size_t n = strlen(prefix);
    if (n == 0)
        return 1;
    if (strncmp(path, prefix, n) != 0)
        return 0;
    return path[n] == '/' || (!strict && path[n] == '\0');
}

/* A reader of layer li's tar as libarchive sees it (tar and GNU tar), or
 * NULL when it does not open; archive_read_free takes either. */
static struct archive *open_layer(const setup *s, size_t li)
{
    struct archive *a = archive_read_new();
    FZ_CHECK(a != NULL, "harness out of memory");
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_memory(a, s->bytes[li], s->lens[li]) == ARCHIVE_OK)
        return a;
    archive_read_free(a);
    return NULL;
}

/* Whether an entry of a layer after layer li replaces or deletes path: the
 * same name, a non-directory at an ancestor, a whiteout of it or of an
 * ancestor, an opaque whiteout above it, or, when path is not a directory
 * (nondir), an entry beneath it (its parent directory takes path's place).
 * Write-once never writes such an entry, so an error there is one only
 * oldest-first sees. */
static int shadowed_later(const setup *s, size_t li, const char *path, int nondir)
{
    for (size_t j = li + 1; j < s->n; j++) {
        struct archive *a = open_layer(s, j);
        int found = 0;
        if (a) {
            struct archive_entry *e;
            while (!found && archive_read_next_header(a, &e) >= ARCHIVE_WARN) {
                const char *raw = archive_entry_pathname(e);
                if (!raw)
                    continue;
                char n[4096];
                norm_name(raw, n, sizeof n);
                char *slash = strrchr(n, '/');
                const char *base = slash ? slash + 1 : n;
                if (strcmp(base, ".wh..wh..opq") == 0) {
                    if (slash)
                        *slash = '\0';
                    found = is_at_or_under(path, slash ? n : "", 1);
                } else if (strncmp(base, ".wh.", 4) == 0) {
                    char t[4096];
                    snprintf(t, sizeof t, "%.*s%s", (int)(base - n), n, base + 4);
                    found = is_at_or_under(path, t, 0);
                } else {
                    int dir = archive_entry_filetype(e) == AE_IFDIR && !archive_entry_hardlink(e);
                    found = strcmp(path, n) == 0 || (!dir && is_at_or_under(path, n, 1)) ||
                            (nondir && is_at_or_under(n, path, 1));
                }
            }
        }
        archive_read_free(a);
        if (found)
            return 1;
    }
    return 0;
}

/* Whether layer li has an entry named path that is not a directory. */
static int nondir_entry_in(const setup *s, size_t li, const char *path)
{
    struct archive *a = open_layer(s, li);
    int found = 0;
    if (a) {
        struct archive_entry *e;
        while (!found && archive_read_next_header(a, &e) >= ARCHIVE_WARN) {
            const char *raw = archive_entry_pathname(e);
            char n[4096];
            if (!raw)
                continue;
            norm_name(raw, n, sizeof n);
            found = strcmp(n, path) == 0 &&
                    (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e));
        }
    }
    archive_read_free(a);
    return found;
}

/* Whether msg is the error of one entry ("layer Ln: entry 'name': ...")
 * that a later layer shadows: only oldest-first creates such an entry (or
 * reads its data, or counts its bytes), write-once skips it. */
static int shadowed_entry_error(const setup *s, const char *msg)
{
    size_t li;
    int at = 0;
    if (sscanf(msg, "layer L%zu: entry '%n", &li, &at) != 1 || at == 0 || li >= s->n)
        return 0;
    const char *name = msg + at, *end = strstr(name, "': ");
    if (!end)
        return 0;
    char raw[4096], path[4096];
    snprintf(raw, sizeof raw, "%.*s", (int)(end - name), name);
    norm_name(raw, path, sizeof path);
    return shadowed_later(s, li, path, nondir_entry_in(s, li, path));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!g_base[0])
        base_init();
    unsigned flags = data[0];
    unsigned mode = flags & 3, pre = (flags >> 2) & 3;
    uint64_t max_bytes = (flags & 16) ? MAX_BYTES_SMALL : 0;
    int compare = (flags & 64) && mode != 3;

    /* layers */
    uint8_t *in = fz_xmalloc(size - 1);
    if (size > 1)
        memcpy(in, data + 1, size - 1);
    size_t len = size - 1;
    setup *s = calloc(1, sizeof *s);
    FZ_CHECK(s != NULL, "harness out of memory");
    size_t pos = 0;
    while (s->n < MAX_LAYERS) {
        size_t at = s->n < MAX_LAYERS - 1 ? find_sep(in + pos, len - pos) : len - pos;
        if (!(flags & 32))
            fix_checksums(in + pos, at);
        s->bytes[s->n] = in + pos;
        s->lens[s->n] = at;
        s->n++;
        if (at == len - pos)
            break;
        pos += at + SEP_LEN;
    }

    char root[4200], p[4300];
    path_of(root, sizeof root, "r");
    make_dir(root);
    path_of(p, sizeof p, "r/layers");
    make_dir(p);
    path_of(p, sizeof p, "r/a");
    make_dir(p);
    path_of(p, sizeof p, "r/a/b");
    make_dir(p);
    path_of(s->parent, sizeof s->parent, "r/a/b/c");
    make_dir(s->parent);
    path_of(s->target, sizeof s->target, "r/a/b/c/target");
    path_of(p, sizeof p, "r/sentinel");
    write_file(p, (const uint8_t *)"keep me\n", 8);
    for (size_t i = 0; i < s->n; i++) {
        snprintf(s->paths[i], sizeof s->paths[i], "%s/layers/%zu.tar", root, i);
        snprintf(s->labels[i], sizeof s->labels[i], "L%zu", i);
        write_file(s->paths[i], s->bytes[i], s->lens[i]);
        s->layers[i].tar_path = s->paths[i];
        s->layers[i].label = s->labels[i];
    }

    oc_error e1, e2;
    if (!compare) {
        expand_once(s, mode, pre, max_bytes, NULL, &e1);
    } else {
        /* the two strategies must agree (DESIGN: they give the same tree) */
        char *t1 = NULL, *t2 = NULL;
        int r1 = expand_once(s, 1, pre, max_bytes, &t1, &e1);
        int r2 = expand_once(s, 2, pre, max_bytes, &t2, &e2);
        FZ_CHECK((r1 == 0) == (r2 == 0) || (r1 != 0 && shadowed_entry_error(s, e1.msg)),
                 "oldest-first %s, write-once %s", r1 == 0 ? "succeeded" : e1.msg,
                 r2 == 0 ? "succeeded" : e2.msg);
        if (r1 == 0 && strcmp(t1, t2) != 0) {
            report_diff(t1, t2);
            FZ_CHECK(0, "oldest-first (before) and write-once (after) built different trees");
        }
        free(t1);
        free(t2);
    }

    rm_tree(root, 1);
    free(s);
    free(in);
    return 0;
}
