/* test_atomicfile.c - atomic files (nothing visible before commit, abort
 * leaves nothing, commit replaces whole), ENOSPC reporting (/dev/full, and a
 * tiny tmpfs when running as root), mkdir -p, bounded whole-file reads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomicfile.h"
#include "testutil.h"

static char base[512];
static char tmp_dir[600];
static char store[600];

static int setup(void **state)
{
    (void)state;
    if (tu_mkdtemp(base, sizeof base, "atomic") != 0)
        return -1;
    snprintf(tmp_dir, sizeof tmp_dir, "%s/.tmp", base);
    snprintf(store, sizeof store, "%s/store", base);
    umask(022);
    return mkdir(tmp_dir, 0755) || mkdir(store, 0755);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "%s/tiny", base);
    (void)umount2(cmd, MNT_DETACH); /* in case the tmpfs test failed half-way */
    return tu_rmtree(base);
}

/* Entries of dir other than . and ..; first receives the first name. */
static int count_entries(const char *dir, char *first, size_t first_len)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == 0 && first)
            snprintf(first, first_len, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void expect_content(const char *path, const void *want, size_t len)
{
    size_t got_len = 0;
    oc_error err = {0};
    char *got = oc_read_file(path, len + 10, &got_len, &err);
    if (!got)
        fail_msg("read %s: %s", path, err.msg);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, want, len);
    assert_int_equal(got[len], '\0');
    free(got);
}

static void test_commit(void **state)
{
    (void)state;
    char dir[700], final[800], first[300];
    snprintf(dir, sizeof dir, "%s/0123abcd", store);
    oc_error err = {0};
    assert_int_equal(oc_mkdirs(dir, &err), 0);
    snprintf(final, sizeof final, "%s/layer.tar", dir);

    oc_atomic_file f;
    assert_int_equal(oc_atomic_open(&f, tmp_dir, final, &err), 0);
    assert_true(f.fd >= 0);
    assert_non_null(strstr(f.tmp_path, "/.tmp/.tmp-layer.tar-"));

    /* 3 MiB + a bit, in pieces */
    size_t total = 3 * 1024 * 1024 + 333;
    unsigned char *data = malloc(total);
    assert_non_null(data);
    for (size_t i = 0; i < total; i++)
        data[i] = (unsigned char)(i * 31 + (i >> 12));
    size_t off = 0, step = 1;
    while (off < total) {
        size_t n = step < total - off ? step : total - off;
        assert_int_equal(oc_atomic_write(&f, data + off, n, &err), 0);
        off += n;
        step = step * 7 + 3;
        /* nothing under the final name until commit; the temporary is in tmp_dir */
        assert_false(exists(final));
        assert_int_equal(count_entries(tmp_dir, first, sizeof first), 1);
        assert_int_equal(strncmp(first, ".tmp-layer.tar-", 15), 0);
    }
    assert_int_equal(f.written, total);
    assert_int_equal(count_entries(dir, NULL, 0), 0);

    assert_int_equal(oc_atomic_commit(&f, &err), 0);
    assert_int_equal(f.fd, -1);
    assert_null(f.tmp_path);
    assert_null(f.final_path);
    expect_content(final, data, total);
    assert_int_equal(count_entries(tmp_dir, NULL, 0), 0);

    struct stat st;
    assert_int_equal(stat(final, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644); /* 0666 less the umask 022 */

    /* abort after commit does nothing (the committed file stays) */
    oc_atomic_abort(&f);
    oc_atomic_abort(&f);
    expect_content(final, data, total);
    free(data);
}

static void test_abort(void **state)
{
    (void)state;
    char final[700];
    snprintf(final, sizeof final, "%s/aborted.json", store);
    oc_error err = {0};
    oc_atomic_file f;
    assert_int_equal(oc_atomic_open(&f, tmp_dir, final, &err), 0);
    assert_int_equal(oc_atomic_write(&f, "{}", 2, &err), 0);
    assert_int_equal(count_entries(tmp_dir, NULL, 0), 1);
    oc_atomic_abort(&f);
    assert_int_equal(count_entries(tmp_dir, NULL, 0), 0);
    assert_false(exists(final));
    oc_atomic_abort(&f); /* twice is fine */

    /* a write or commit on an aborted file is a usage error, not a crash */
    assert_int_equal(oc_atomic_write(&f, "x", 1, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_int_equal(oc_atomic_commit(&f, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
}

static void test_replace_is_whole(void **state)
{
    (void)state;
    char final[700];
    snprintf(final, sizeof final, "%s/catalog.json", store);
    oc_error err = {0};
    assert_int_equal(oc_atomic_write_file(tmp_dir, final, "old catalog", 11, &err), 0);
    expect_content(final, "old catalog", 11);

    oc_atomic_file f;
    assert_int_equal(oc_atomic_open(&f, tmp_dir, final, &err), 0);
    assert_int_equal(oc_atomic_write(&f, "new ", 4, &err), 0);
    expect_content(final, "old catalog", 11); /* readers still see the old file whole */
    assert_int_equal(oc_atomic_write(&f, "catalog, longer", 15, &err), 0);
    expect_content(final, "old catalog", 11);
    assert_int_equal(oc_atomic_commit(&f, &err), 0);
    expect_content(final, "new catalog, longer", 19);

    /* the replacement is a new inode, so an open reader keeps the old bytes */
    int fd = open(final, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(oc_atomic_write_file(tmp_dir, final, "third", 5, &err), 0);
    char buf[64] = {0};
    assert_int_equal(read(fd, buf, sizeof buf), 19);
    assert_string_equal(buf, "new catalog, longer");
    close(fd);
    expect_content(final, "third", 5);
    assert_int_equal(count_entries(tmp_dir, NULL, 0), 0);

    /* an empty file is a file too */
    assert_int_equal(oc_atomic_write_file(tmp_dir, final, "", 0, &err), 0);
    expect_content(final, "", 0);
}

static void test_unique_temporaries(void **state)
{
    (void)state;
    enum { N = 40 };
    char final[700];
    snprintf(final, sizeof final, "%s/same-name", store);
    oc_atomic_file f[N];
    oc_error err = {0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(oc_atomic_open(&f[i], tmp_dir, final, &err), 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(f[i].tmp_path, f[j].tmp_path);
        char c = (char)('A' + i);
        assert_int_equal(oc_atomic_write(&f[i], &c, 1, &err), 0);
    }
    assert_int_equal(count_entries(tmp_dir, NULL, 0), N);
    /* the last commit wins, and each commit is one whole file */
    for (int i = 0; i < N; i++) {
        assert_int_equal(oc_atomic_commit(&f[i], &err), 0);
        char c = (char)('A' + i);
        expect_content(final, &c, 1);
    }
    assert_int_equal(count_entries(tmp_dir, NULL, 0), 0);

    /* very long final names are shortened in the temporary name */
    char longname[900];
    int n = snprintf(longname, sizeof longname, "%s/", store);
    memset(longname + n, 'x', 250);
    longname[n + 250] = '\0';
    assert_int_equal(oc_atomic_write_file(tmp_dir, longname, "long", 4, &err), 0);
    expect_content(longname, "long", 4);
}

static void test_open_and_commit_errors(void **state)
{
    (void)state;
    char final[700], missing_tmp[700];
    snprintf(final, sizeof final, "%s/x.json", store);
    snprintf(missing_tmp, sizeof missing_tmp, "%s/no-such-dir", base);
    oc_error err = {0};
    oc_atomic_file f;

    assert_int_equal(oc_atomic_open(&f, missing_tmp, final, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, final));
    assert_non_null(strstr(err.msg, "no-such-dir"));
    assert_int_equal(f.fd, -1);
    oc_atomic_abort(&f); /* safe after a failed open */

    char dirname_only[700];
    snprintf(dirname_only, sizeof dirname_only, "%s/", store);
    assert_int_equal(oc_atomic_open(&f, tmp_dir, dirname_only, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);

    /* the final directory vanished: commit fails, names the file, and cleans up */
    char gone[700];
    snprintf(gone, sizeof gone, "%s/not-created/layer.tar", store);
    assert_int_equal(oc_atomic_open(&f, tmp_dir, gone, &err), 0);
    assert_int_equal(oc_atomic_write(&f, "abc", 3, &err), 0);
    assert_int_equal(oc_atomic_commit(&f, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, gone));
    assert_int_equal(count_entries(tmp_dir, NULL, 0), 0);
    assert_null(f.tmp_path);
    oc_atomic_abort(&f);
}

static void test_write_all_dev_full(void **state)
{
    (void)state;
    int fd = open("/dev/full", O_WRONLY);
    if (fd < 0)
        skip();
    oc_error err = {0};
    char buf[4096] = {0};
    assert_int_equal(oc_write_all(fd, buf, sizeof buf, "the blob", &err), -1);
    assert_int_equal(err.code, OC_E_NOSPACE);
    assert_non_null(strstr(err.msg, "the blob"));
    assert_non_null(strstr(err.msg, "No space left"));
    close(fd);

    assert_int_equal(oc_write_all(-1, buf, 1, "bad fd", &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_int_equal(oc_write_all(-1, buf, 0, "nothing", &err), 0);
}

/* A real ENOSPC from a file system: a 64 KiB tmpfs (root only). */
static void test_enospc_tmpfs(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("not root: skipping the tmpfs ENOSPC test\n");
        skip();
    }
    char mnt[700];
    snprintf(mnt, sizeof mnt, "%s/tiny", base);
    assert_int_equal(mkdir(mnt, 0755), 0);
    if (mount("occy-test", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") != 0) {
        print_message("cannot mount tmpfs (%s): skipping\n", strerror(errno));
        skip();
    }
    char tdir[800], final[800];
    snprintf(tdir, sizeof tdir, "%s/.tmp", mnt);
    snprintf(final, sizeof final, "%s/big.tar", mnt);
    oc_error err = {0};
    assert_int_equal(oc_mkdirs(tdir, &err), 0);

    oc_atomic_file f;
    assert_int_equal(oc_atomic_open(&f, tdir, final, &err), 0);
    static char chunk[256 * 1024];
    int rc = 0;
    for (int i = 0; i < 16 && rc == 0; i++)
        rc = oc_atomic_write(&f, chunk, sizeof chunk, &err);
    assert_int_equal(rc, -1);
    assert_int_equal(err.code, OC_E_NOSPACE);
    assert_non_null(strstr(err.msg, final));
    oc_atomic_abort(&f);
    assert_int_equal(count_entries(tdir, NULL, 0), 0);
    assert_false(exists(final));

    /* the space came back with the temporary */
    assert_int_equal(oc_atomic_write_file(tdir, final, chunk, 16 * 1024, &err), 0);
    /* and a whole-file write that does not fit fails cleanly */
    assert_int_equal(oc_atomic_write_file(tdir, final, chunk, sizeof chunk, &err), -1);
    assert_int_equal(err.code, OC_E_NOSPACE);
    assert_int_equal(count_entries(tdir, NULL, 0), 0);
    expect_content(final, chunk, 16 * 1024);

    assert_int_equal(umount2(mnt, MNT_DETACH), 0);
}

static void test_mkdirs(void **state)
{
    (void)state;
    char p[800];
    oc_error err = {0};
    snprintf(p, sizeof p, "%s/a/b//c/d/", base);
    assert_int_equal(oc_mkdirs(p, &err), 0);
    snprintf(p, sizeof p, "%s/a/b/c/d", base);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0755);
    assert_int_equal(oc_mkdirs(p, &err), 0); /* exists already */

    snprintf(p, sizeof p, "%s/a/file", base);
    assert_int_equal(oc_atomic_write_file(tmp_dir, p, "f", 1, &err), 0);
    assert_int_equal(oc_mkdirs(p, &err), -1); /* a file is in the way */
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, p));
    snprintf(p, sizeof p, "%s/a/file/below", base);
    assert_int_equal(oc_mkdirs(p, &err), -1);
    assert_int_equal(err.code, OC_E_IO);

    assert_int_equal(oc_mkdirs("", &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);

    /* relative paths work from the current directory */
    char cwd[600];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(base), 0);
    assert_int_equal(oc_mkdirs("rel/x", &err), 0);
    assert_int_equal(chdir(cwd), 0);
    snprintf(p, sizeof p, "%s/rel/x", base);
    assert_int_equal(stat(p, &st), 0);
}

static void test_fsync_dir(void **state)
{
    (void)state;
    oc_error err = {0};
    assert_int_equal(oc_fsync_dir(store, &err), 0);
    char p[700];
    snprintf(p, sizeof p, "%s/nope", base);
    assert_int_equal(oc_fsync_dir(p, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, p));
}

static void test_read_file(void **state)
{
    (void)state;
    char p[700];
    snprintf(p, sizeof p, "%s/small.json", store);
    oc_error err = {0};
    assert_int_equal(oc_atomic_write_file(tmp_dir, p, "0123456789", 10, &err), 0);

    size_t len = 99;
    char *s = oc_read_file(p, 10, &len, &err);
    assert_non_null(s);
    assert_int_equal(len, 10);
    assert_string_equal(s, "0123456789");
    free(s);
    s = oc_read_file(p, 1 << 20, NULL, &err);
    assert_non_null(s);
    assert_string_equal(s, "0123456789");
    free(s);

    assert_null(oc_read_file(p, 9, &len, &err));
    assert_int_equal(err.code, OC_E_LIMIT);
    assert_non_null(strstr(err.msg, p));

    snprintf(p, sizeof p, "%s/missing.json", store);
    assert_null(oc_read_file(p, 100, &len, &err));
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, p));

    assert_null(oc_read_file(store, 100, &len, &err));
    assert_int_equal(err.code, OC_E_IO);

    snprintf(p, sizeof p, "%s/empty", store);
    assert_int_equal(oc_atomic_write_file(tmp_dir, p, "", 0, &err), 0);
    s = oc_read_file(p, 0, &len, &err);
    assert_non_null(s);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");
    free(s);

    /* a file whose size stat does not know (procfs) is still bounded */
    s = oc_read_file("/proc/self/status", 1 << 20, &len, &err);
    if (s) {
        assert_true(len > 10);
        assert_int_equal(strlen(s), len);
        assert_non_null(strstr(s, "Name:"));
        free(s);
        assert_null(oc_read_file("/proc/self/status", 10, &len, &err));
        assert_int_equal(err.code, OC_E_LIMIT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_replace_is_whole),
        cmocka_unit_test(test_unique_temporaries),
        cmocka_unit_test(test_open_and_commit_errors),
        cmocka_unit_test(test_write_all_dev_full),
        cmocka_unit_test(test_enospc_tmpfs),
        cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_fsync_dir),
        cmocka_unit_test(test_read_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
