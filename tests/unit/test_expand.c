/* test_expand.c - layer names, whiteouts and the merged tree.
 *
 * Layers are tar files written in the test with libarchive (pax format, in
 * the order given, so a test controls where a whiteout or opaque marker
 * stands). Each merge runs with both strategies and the two trees must be
 * equal; the tree is then checked path by path (type, content, link
 * target, shared inode). Hostile layers must fail with the entry named and
 * leave nothing outside the target. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/expand/expand.h"
#include "engine/expand/expand_plan.h"
#include "engine/expand/layerpath.h"
#include "engine/expand/layertar.h"
#include "io/fsutil.h"

static char tmpdir[256];
static int layer_no;

/* ---- building layers ---- */

/* One entry: "d path", "f path content", "l path target" (symlink),
 * "h path target" (hard link), "p path" (FIFO), "F path mode content". */
static char *make_layer(const char *const *spec)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/layer%d.tar", tmpdir, layer_no++) > 0);
    struct archive *a = archive_write_new();
    assert_non_null(a);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    for (const char *const *s = spec; *s; s++) {
        char kind = (*s)[0];
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", *s + 2);
        char *name = buf, *rest = strchr(buf, ' ');
        if (rest)
            *rest++ = '\0';
        archive_entry_clear(e);
        archive_entry_set_pathname(e, name);
        archive_entry_set_mtime(e, 1700000000, 0);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        const char *data = NULL;
        unsigned mode = 0644;
        switch (kind) {
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            mode = 0755;
            break;
        case 'f':
            archive_entry_set_filetype(e, AE_IFREG);
            data = rest ? rest : "";
            break;
        case 'F':
            archive_entry_set_filetype(e, AE_IFREG);
            mode = (unsigned)strtoul(rest, &rest, 8);
            data = rest + 1;
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, rest);
            mode = 0777;
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, rest);
            break;
        case 'p':
            archive_entry_set_filetype(e, AE_IFIFO);
            break;
        case 'c':
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_rdev(e, makedev(1, 3));
            break;
        default:
            fail_msg("bad spec %s", *s);
        }
        archive_entry_set_perm(e, mode);
        if (data)
            archive_entry_set_size(e, (la_int64_t)strlen(data));
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (data && *data)
            assert_int_equal(archive_write_data(a, data, strlen(data)), (la_ssize_t)strlen(data));
    }
    archive_entry_free(e);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return path;
}

/* ---- looking at the result ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char root[512];

static char *at(const char *rel)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    return p;
}

static void expect_file(const char *rel, const char *content)
{
    struct stat st;
    if (lstat(at(rel), &st) != 0)
        fail_msg("%s is missing", rel);
    assert_true(S_ISREG(st.st_mode));
    const char *got = slurp(at(rel));
    assert_non_null(got);
    assert_string_equal(got, content);
}

static void expect_absent(const char *rel)
{
    struct stat st;
    if (lstat(at(rel), &st) == 0)
        fail_msg("%s exists", rel);
}

static void expect_type(const char *rel, mode_t type)
{
    struct stat st;
    if (lstat(at(rel), &st) != 0)
        fail_msg("%s is missing", rel);
    assert_int_equal(st.st_mode & S_IFMT, type);
}

static ino_t inode_of(const char *rel)
{
    struct stat st;
    if (lstat(at(rel), &st) != 0)
        fail_msg("%s is missing", rel);
    return st.st_ino;
}

/* A listing of a tree: one line per path with type, mode, size, content
 * and link target, hard links by group; sorted. */
static char *listing_buf;
static size_t listing_len, listing_cap;
static const char *listing_root;
static ino_t seen_ino[4096];
static int n_seen;

static int list_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    char line[2048], extra[1024] = "";
    const char *rel = path + strlen(listing_root);
    if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlink(path, extra, sizeof extra - 1);
        extra[n > 0 ? n : 0] = '\0';
    } else if (S_ISREG(st->st_mode)) {
        const char *c = slurp(path);
        snprintf(extra, sizeof extra, "%.1000s", c ? c : "?");
        int g = -1;
        for (int i = 0; i < n_seen; i++)
            if (seen_ino[i] == st->st_ino)
                g = i;
        if (g < 0 && st->st_nlink > 1 && n_seen < 4096) {
            g = n_seen;
            seen_ino[n_seen++] = st->st_ino;
        }
        if (g >= 0)
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " link-group");
    }
    snprintf(line, sizeof line, "%s %o %lld %s\n", rel, (unsigned)st->st_mode,
             S_ISDIR(st->st_mode) ? 0LL : (long long)st->st_size, extra);
    size_t l = strlen(line);
    if (listing_len + l + 1 > listing_cap) {
        listing_cap = (listing_len + l + 1) * 2;
        char *nb = realloc(listing_buf, listing_cap);
        assert_non_null(nb);
        listing_buf = nb;
    }
    memcpy(listing_buf + listing_len, line, l + 1);
    listing_len += l;
    return 0;
}

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *listing(const char *dir)
{
    listing_buf = NULL;
    listing_len = listing_cap = 0;
    listing_root = dir;
    n_seen = 0;
    assert_int_equal(nftw(dir, list_one, 16, FTW_PHYS), 0);
    /* sort the lines */
    static char *lines[8192];
    int n = 0;
    for (char *s = strtok(listing_buf, "\n"); s && n < 8192; s = strtok(NULL, "\n"))
        lines[n++] = s;
    qsort(lines, (size_t)n, sizeof *lines, cmp_lines);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += strlen(lines[i]) + 1;
    char *out = malloc(total + 1);
    assert_non_null(out);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    free(listing_buf);
    return out;
}

/* Merge with both strategies; the trees must match; root is the
 * write-once one. Returns 0, or -1 with err from the first failure (then
 * the other strategy must fail too). */
static int merge(char **tars, size_t n, oc_error *err, uint64_t max_bytes)
{
    oc_expand_layer layers[16];
    for (size_t i = 0; i < n; i++) {
        layers[i].tar_path = tars[i];
        layers[i].label = tars[i] + strlen(tmpdir) + 1;
    }
    char other[512];
    snprintf(root, sizeof root, "%s/root-%d", tmpdir, layer_no);
    snprintf(other, sizeof other, "%s/root-oldest-%d", tmpdir, layer_no);
    oc_expand_opts o1 = {.strategy = OC_EXPAND_WRITE_ONCE, .max_bytes = max_bytes, .no_sync = 1};
    oc_expand_opts o2 = {.strategy = OC_EXPAND_OLDEST_FIRST, .max_bytes = max_bytes, .no_sync = 1};
    oc_error e2;
    int r1 = oc_expand_merge(layers, n, root, 0, &o1, NULL, err);
    int r2 = oc_expand_merge(layers, n, other, 0, &o2, NULL, &e2);
    if (r1 != r2)
        fail_msg("write-once %d (%s), oldest-first %d (%s)", r1, r1 ? err->msg : "", r2,
                 r2 ? e2.msg : "");
    if (r1 != 0)
        return -1;
    char *a = listing(root), *b = listing(other);
    if (strcmp(a, b) != 0)
        fail_msg("strategies differ:\nwrite-once:\n%s\noldest-first:\n%s", a, b);
    free(a);
    free(b);
    return 0;
}

static void nothing_outside(void)
{
    /* tmpdir holds only layer tars and root-* trees */
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || de->d_name[1] == '.'))
            continue;
        if (strncmp(de->d_name, "layer", 5) == 0 || strncmp(de->d_name, "root-", 5) == 0)
            continue;
        fail_msg("%s appeared outside the target", de->d_name);
    }
    closedir(d);
    expect_absent("../escaped");
}

/* ---- tests ---- */

static void test_layerpath(void **state)
{
    (void)state;
    char out[256];
    const char *why = NULL;
    assert_int_equal(oc_lp_normalize("./a//b/./c/", out, &why), 0);
    assert_string_equal(out, "a/b/c");
    assert_int_equal(oc_lp_normalize("./", out, &why), 0);
    assert_string_equal(out, "");
    assert_int_equal(oc_lp_normalize("/etc/passwd", out, &why), -1);
    assert_string_equal(why, "absolute path");
    assert_int_equal(oc_lp_normalize("a/../../x", out, &why), -1);
    assert_int_equal(oc_lp_normalize("..", out, &why), -1);
    assert_int_equal(oc_lp_normalize("a/..b/c..", out, &why), 0);
    assert_string_equal(out, "a/..b/c..");

    strcpy(out, "a/.wh.gone");
    assert_int_equal(oc_lp_classify(out, &why), OC_LP_WHITEOUT);
    assert_string_equal(out, "a/gone");
    strcpy(out, ".wh.gone");
    assert_int_equal(oc_lp_classify(out, &why), OC_LP_WHITEOUT);
    assert_string_equal(out, "gone");
    strcpy(out, "opq/.wh..wh..opq");
    assert_int_equal(oc_lp_classify(out, &why), OC_LP_OPAQUE);
    assert_string_equal(out, "opq");
    strcpy(out, ".wh..wh..opq");
    assert_int_equal(oc_lp_classify(out, &why), OC_LP_OPAQUE);
    assert_string_equal(out, "");
    strcpy(out, "x/.wh..wh.plnk");
    assert_int_equal(oc_lp_classify(out, &why), OC_LP_META);
    strcpy(out, ".wh...");
    assert_int_equal(oc_lp_classify(out, &why), -1);
    strcpy(out, "a/.wh..");
    assert_int_equal(oc_lp_classify(out, &why), -1);
    strcpy(out, ".wh.");
    assert_int_equal(oc_lp_classify(out, &why), -1);
    strcpy(out, "a/x.wh.y");
    assert_int_equal(oc_lp_classify(out, &why), OC_LP_CONTENT);
    strcpy(out, "");
    assert_int_equal(oc_lp_classify(out, &why), OC_LP_ROOT);
}

static void test_file_and_dir_whiteouts(void **state)
{
    (void)state;
    const char *l1[] = {
        "d a",          "f a/file1 one",    "f a/file2 two", "d deldir",   "f deldir/x x",
        "d deldir/sub", "f deldir/sub/y y", "f gone g",      "f gonez gz", NULL};
    const char *l2[] = {"d a",
                        "f a/.wh.file1 ",
                        "f .wh.deldir ",
                        "f .wh.gone ",
                        "f .wh.neverexisted ",
                        "d nope",
                        "f nope/.wh.deeper ",
                        NULL};
    char *tars[] = {make_layer(l1), make_layer(l2)};
    oc_error err;
    assert_int_equal(merge(tars, 2, &err, 0), 0);
    expect_absent("a/file1");
    expect_absent("a/.wh.file1");
    expect_file("a/file2", "two");
    expect_absent("deldir");
    expect_absent("gone");
    expect_absent(".wh.gone");
    expect_file("gonez", "gz");
    expect_absent("neverexisted");
    expect_type("nope", S_IFDIR);
    free(tars[0]);
    free(tars[1]);
}

static void test_opaque_marker_anywhere(void **state)
{
    (void)state;
    const char *l1[] = {"d opq", "f opq/old1 o1", "d opq/sub", "f opq/sub/old3 o3", "f keep k",
                        NULL};
    const char *l2[] = {"d opq", "f opq/new1 n1", "f opq/.wh..wh..opq ", "f opq/new2 n2", NULL};
    const char *l3[] = {"f opq/new3 n3", NULL};
    char *tars[] = {make_layer(l1), make_layer(l2), make_layer(l3)};
    oc_error err;
    assert_int_equal(merge(tars, 3, &err, 0), 0);
    expect_absent("opq/old1");
    expect_absent("opq/sub");
    expect_absent("opq/.wh..wh..opq");
    expect_file("opq/new1", "n1");
    expect_file("opq/new2", "n2");
    expect_file("opq/new3", "n3");
    expect_file("keep", "k");
    for (int i = 0; i < 3; i++)
        free(tars[i]);
}

static void test_whiteout_same_layer_and_recreate(void **state)
{
    (void)state;
    /* A whiteout acts on lower layers only: the same layer's file stays. */
    const char *l1[] = {"f x lower", "d dd", "f dd/old o", NULL};
    const char *l2[] = {"f x upper", "f .wh.x ", "f .wh.dd ", NULL};
    const char *l3[] = {"d dd", "f dd/fresh f", NULL};
    char *tars[] = {make_layer(l1), make_layer(l2), make_layer(l3)};
    oc_error err;
    assert_int_equal(merge(tars, 3, &err, 0), 0);
    expect_file("x", "upper");
    expect_absent("dd/old");
    expect_file("dd/fresh", "f");
    for (int i = 0; i < 3; i++)
        free(tars[i]);
}

static void test_replacements(void **state)
{
    (void)state;
    const char *l1[] = {"f f2d file", "d d2f", "f d2f/inner i", "l s2d target", "d lnk",
                        "f lnk/a a",  NULL};
    const char *l2[] = {
        "d f2d", "f f2d/child c", "f d2f now-a-file", "d s2d", "f s2d/in in", "l lnk f2d", NULL};
    char *tars[] = {make_layer(l1), make_layer(l2)};
    oc_error err;
    assert_int_equal(merge(tars, 2, &err, 0), 0);
    expect_file("f2d/child", "c");
    expect_file("d2f", "now-a-file");
    expect_file("s2d/in", "in");
    expect_type("lnk", S_IFLNK);
    for (int i = 0; i < 2; i++)
        free(tars[i]);
}

static void test_hardlinks_across_layers(void **state)
{
    (void)state;
    const char *l1[] = {"d bin", "f bin/orig original", "f bin/other other", "p fifo", NULL};
    /* same-layer link, link to a lower file, chain */
    const char *l2[] = {"h up1 bin/orig", "f mine m", "h mine2 mine", "h up2 up1", NULL};
    /* the original deleted, another overwritten: the links keep the old bytes */
    const char *l3[] = {"f bin/.wh.orig ", "f mine replaced", "h o2 bin/other", NULL};
    char *tars[] = {make_layer(l1), make_layer(l2), make_layer(l3)};
    oc_error err;
    assert_int_equal(merge(tars, 3, &err, 0), 0);
    expect_absent("bin/orig");
    expect_file("up1", "original");
    expect_file("up2", "original");
    assert_int_equal(inode_of("up1"), inode_of("up2"));
    expect_file("mine", "replaced");
    expect_file("mine2", "m");
    assert_int_not_equal(inode_of("mine"), inode_of("mine2"));
    assert_int_equal(inode_of("o2"), inode_of("bin/other"));
    expect_type("fifo", S_IFIFO);
    for (int i = 0; i < 3; i++)
        free(tars[i]);
}

static void test_modes(void **state)
{
    (void)state;
    const char *l1[] = {"d ro", "F ro/file 0444 r", "F suid 4755 s", "d dev", "c dev/null", NULL};
    char *tars[] = {make_layer(l1)};
    oc_error err;
    assert_int_equal(merge(tars, 1, &err, 0), 0);
    if (geteuid() == 0) { /* device nodes only as root; else skipped and counted */
        struct stat ds;
        assert_int_equal(lstat(at("dev/null"), &ds), 0);
        assert_true(S_ISCHR(ds.st_mode));
        assert_int_equal(ds.st_rdev, makedev(1, 3));
    } else {
        expect_absent("dev/null");
    }
    struct stat st;
    assert_int_equal(lstat(at("suid"), &st), 0);
    if (geteuid() == 0)
        assert_int_equal(st.st_mode & 07777, 04755);
    assert_int_equal(lstat(at("ro/file"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    assert_int_equal(st.st_mtime, 1700000000);
    assert_int_equal(lstat(at("ro"), &st), 0);
    assert_int_equal(st.st_mtime, 1700000000);
    free(tars[0]);
}

static void expect_hostile(const char *const *spec, const char *needle)
{
    const char *base[] = {"d etc", "f etc/ok ok", NULL};
    char *tars[] = {make_layer(base), make_layer(spec)};
    oc_error err;
    oc_error_clear(&err);
    assert_int_equal(merge(tars, 2, &err, 0), -1);
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' does not mention '%s'", err.msg, needle);
    nothing_outside();
    expect_absent(""); /* no target left behind */
    free(tars[0]);
    free(tars[1]);
}

static void test_hostile(void **state)
{
    (void)state;
    const char *abs[] = {"f /escaped evil", NULL};
    expect_hostile(abs, "'/escaped': absolute path");
    const char *dotdot[] = {"f ../escaped evil", NULL};
    expect_hostile(dotdot, "'../escaped'");
    const char *through[] = {"l evil /", "f evil/escaped x", NULL};
    expect_hostile(through, "'evil/escaped'");
    const char *through_rel[] = {"l up ..", "f up/escaped x", NULL};
    expect_hostile(through_rel, "symlink");
    const char *hl_abs[] = {"h hl /etc/passwd", NULL};
    expect_hostile(hl_abs, "'hl'");
    const char *hl_up[] = {"h hl ../../etc/passwd", NULL};
    expect_hostile(hl_up, "'hl'");
    const char *hl_sym[] = {"l s /etc", "h hl s/passwd", NULL};
    expect_hostile(hl_sym, "'hl'");
    const char *hl_missing[] = {"h hl nothing/here", NULL};
    expect_hostile(hl_missing, "does not exist");
    const char *wh_dots[] = {"f .wh... ", NULL};
    expect_hostile(wh_dots, "'.wh...'");
    const char *wh_up[] = {"f ../.wh.x ", NULL};
    expect_hostile(wh_up, "'../.wh.x'");
    const char *hl_dir[] = {"h hl etc", NULL};
    expect_hostile(hl_dir, "directory");
}

static void test_size_limit(void **state)
{
    (void)state;
    const char *l1[] = {"f a 0123456789", "f b 0123456789", NULL};
    char *tars[] = {make_layer(l1)};
    oc_error err;
    assert_int_equal(merge(tars, 1, &err, 15), -1);
    assert_int_equal(err.code, OC_E_LIMIT);
    assert_non_null(strstr(err.msg, "'b'"));
    assert_int_equal(merge(tars, 1, &err, 20), 0);
    free(tars[0]);
}

static void test_as_is_keeps_whiteouts(void **state)
{
    (void)state;
    const char *l1[] = {"d opq", "f opq/.wh..wh..opq ", "f .wh.gone ", "f kept k", NULL};
    char *tar = make_layer(l1);
    oc_expand_layer l = {tar, "as-is"};
    snprintf(root, sizeof root, "%s/root-asis", tmpdir);
    oc_error err;
    oc_expand_opts o = {.no_sync = 1};
    assert_int_equal(oc_expand_as_is(&l, root, 0, &o, NULL, &err), 0);
    expect_file("opq/.wh..wh..opq", "");
    expect_file(".wh.gone", "");
    expect_file("kept", "k");
    /* a second run refuses a non-empty target unless replacing */
    assert_int_equal(oc_expand_as_is(&l, root, 0, &o, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_int_equal(oc_expand_as_is(&l, root, 1, &o, NULL, &err), 0);
    expect_file("kept", "k");
    free(tar);
}

static void test_plan_direct(void **state)
{
    (void)state;
    /* The planner alone: two layers, a link to a lower file later deleted. */
    oc_plan *p = oc_plan_new();
    oc_error err;
    oc_plan_dirmeta m = {.mode = 0755};
    assert_int_equal(oc_plan_begin_layer(p, 0, &err), 0);
    assert_int_equal(oc_plan_add(p, 0, "d", "d", OC_PLAN_DIR, NULL, &m, &err), 0);
    assert_int_equal(oc_plan_add(p, 1, "d/f", "d/f", OC_PLAN_FILE, NULL, NULL, &err), 0);
    assert_int_equal(oc_plan_end_layer(p, &err), 0);
    assert_int_equal(oc_plan_begin_layer(p, 1, &err), 0);
    assert_int_equal(oc_plan_add(p, 0, "l", "l", OC_PLAN_HARDLINK, "d/f", NULL, &err), 0);
    assert_int_equal(oc_plan_end_layer(p, &err), 0);
    assert_int_equal(oc_plan_begin_layer(p, 2, &err), 0);
    assert_int_equal(oc_plan_add_whiteout(p, "d", 0, &err), 0);
    assert_int_equal(oc_plan_end_layer(p, &err), 0);
    assert_int_equal(oc_plan_finish(p, &err), 0);
    oc_plan_action act;
    oc_plan_action_for(p, 0, 0, &act);
    assert_int_equal(act.act, OC_ACT_SKIP); /* d is gone */
    oc_plan_action_for(p, 0, 1, &act);
    assert_int_equal(act.act, OC_ACT_WRITE); /* d/f's bytes live on as l */
    assert_int_equal(act.n_paths, 1);
    char path[64];
    assert_int_equal(oc_plan_node_path(act.paths[0], path, sizeof path), 0);
    assert_string_equal(path, "l");
    assert_int_equal(oc_plan_n_dirs(p), 0);
    oc_plan_free(p);
}

/* ---- raw tars: headers where tar readers part ways (issue 17, 6a-6d) ---- */

typedef struct rawtar {
    unsigned char b[16 * 512];
    size_t len;
} rawtar;

static void raw_checksum(unsigned char *h)
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* A header (ustar, or GNU with gnu=1) and its data, padded to a block. */
static unsigned char *raw_entry(rawtar *t, const char *name, char type, const char *data,
                                size_t len, int gnu)
{
    unsigned char *h = t->b + t->len;
    memset(h, 0, 512);
    memcpy(h, name, strlen(name));
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011zo", len);
    snprintf((char *)h + 136, 12, "%011o", 1700000000);
    h[156] = (unsigned char)type;
    memcpy(h + 257,
           gnu ? "ustar  \0"
               : "ustar\0"
                 "00",
           8);
    raw_checksum(h);
    t->len += 512;
    if (len) {
        memset(t->b + t->len, 0, (len + 511) / 512 * 512);
        memcpy(t->b + t->len, data, len);
        t->len += (len + 511) / 512 * 512;
    }
    return h;
}

static char *raw_write(rawtar *t)
{
    memset(t->b + t->len, 0, 1024);
    t->len += 1024;
    char *path = NULL;
    assert_true(asprintf(&path, "%s/layer%d.tar", tmpdir, layer_no++) > 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t->b, 1, t->len, f), t->len);
    fclose(f);
    return path;
}

/* Both strategies and as-is refuse tar with a message holding each of the
 * strings given; nothing is left at the target. */
static void expect_refused(char *tar, const char *a, const char *b)
{
    oc_error err;
    assert_int_equal(merge(&tar, 1, &err, 0), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    if (!strstr(err.msg, a) || (b && !strstr(err.msg, b)))
        fail_msg("'%s' lacks '%s' / '%s'", err.msg, a, b ? b : "");
    if (strstr(err.msg, "(null)"))
        fail_msg("'%s' prints a NULL", err.msg);
    oc_expand_layer l = {.tar_path = tar, .label = "L"};
    oc_expand_opts o = {.no_sync = 1};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/root-asis-%d", tmpdir, layer_no);
    assert_int_equal(oc_expand_as_is(&l, dir, 0, &o, NULL, &err), -1);
    assert_true(strstr(err.msg, a) != NULL);
    nothing_outside();
    expect_absent("");
}

/* 6a: an old-GNU header whose "realsize" field (star-style bytes there)
 * is not its size: libarchive made the 14-byte file 2,176 bytes long. */
static void test_gnu_realsize_refused(void **state)
{
    (void)state;
    rawtar t = {.len = 0};
    unsigned char *h = raw_entry(&t, "a", '0', "0123456789abcd", 14, 1);
    memcpy(h + 483, "00000004200", 12);
    raw_checksum(h);
    raw_entry(&t, "b", '0', "ok", 2, 0);
    char *tar = raw_write(&t);
    expect_refused(tar, "entry 'a'", "14 bytes");
    free(tar);
    /* the same field holding the header's own size is harmless */
    rawtar u = {.len = 0};
    h = raw_entry(&u, "a", '0', "0123456789abcd", 14, 1);
    memcpy(h + 483, "00000000016", 12);
    raw_checksum(h);
    tar = raw_write(&u);
    oc_error err;
    assert_int_equal(merge(&tar, 1, &err, 0), 0);
    expect_file("a", "0123456789abcd");
    free(tar);
}

/* 6b: a PAX record without its newline: libarchive warned and wrote the
 * entry as 'foo' instead of the PAX path. */
static void test_malformed_pax_refused(void **state)
{
    (void)state;
    const char *bad[] = {"30 path=PAX1/PAX1/long-path-nameX", "12 pathfoo\n", "14 path=PA\0X1\n"};
    const size_t len[] = {33, 11, 14};
    for (int i = 0; i < 3; i++) {
        rawtar t = {.len = 0};
        raw_entry(&t, "PaxHeaders/foo", 'x', bad[i], len[i], 0);
        raw_entry(&t, "foo", '0', "abc", 3, 0);
        char *tar = raw_write(&t);
        expect_refused(tar, "malformed", "(tar byte 0)");
        free(tar);
    }
}

/* 6c: no message from libarchive is a cause of ours, never "(null)". */
static void test_archive_why_never_null(void **state)
{
    (void)state;
    struct archive *a = archive_read_new();
    char buf[128];
    assert_null(archive_error_string(a));
    const char *why = oc_archive_why(a, buf, sizeof buf);
    assert_non_null(why);
    assert_string_equal(why, "libarchive gave no reason");
    archive_read_free(a);
    assert_string_equal(oc_archive_why(NULL, buf, sizeof buf), "libarchive gave no reason");
}

/* 6d: a damaged header names the entry read before it (libarchive's
 * ARCHIVE_RETRY was taken for an entry). */
static void test_damaged_header_names_last_entry(void **state)
{
    (void)state;
    rawtar t = {.len = 0};
    raw_entry(&t, "tmp/16gig.txt", '0', "abcd", 4, 0);
    unsigned char *h = raw_entry(&t, "second", '0', "efgh", 4, 0);
    memcpy(h + 148, "0000000", 8);
    char *tar = raw_write(&t);
    expect_refused(tar, "after entry 'tmp/16gig.txt'", "damaged header");
    free(tar);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_expand.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    oc_error err;
    return oc_remove_tree(tmpdir, &err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layerpath),
        cmocka_unit_test(test_file_and_dir_whiteouts),
        cmocka_unit_test(test_opaque_marker_anywhere),
        cmocka_unit_test(test_whiteout_same_layer_and_recreate),
        cmocka_unit_test(test_replacements),
        cmocka_unit_test(test_hardlinks_across_layers),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_as_is_keeps_whiteouts),
        cmocka_unit_test(test_plan_direct),
        cmocka_unit_test(test_gnu_realsize_refused),
        cmocka_unit_test(test_malformed_pax_refused),
        cmocka_unit_test(test_archive_why_never_null),
        cmocka_unit_test(test_damaged_header_names_last_entry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
