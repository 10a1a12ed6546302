/* test_tarwrite.c - tar archives written with oc_tar_*: read back with
 * libarchive and GNU tar (names, types, sizes, modes, content, end blocks),
 * deterministic bytes, and the failures: missing source, a source that grows
 * or shrinks while copied, a full disk. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "io/digest.h"
#include "io/tarwrite.h"
#include "testutil.h"

static char base[512];
static char src_big[700];
static unsigned char *big;
static size_t big_len = 3 * 1024 * 1024 + 4321;

static int setup(void **state)
{
    (void)state;
    if (tu_mkdtemp(base, sizeof base, "tar") != 0)
        return -1;
    big = malloc(big_len);
    if (!big)
        return -1;
    uint32_t x = 7;
    for (size_t i = 0; i < big_len; i++) {
        x = x * 1664525u + 1013904223u;
        big[i] = (unsigned char)(x >> 24);
    }
    snprintf(src_big, sizeof src_big, "%s/layer.src", base);
    return tu_write_file(src_big, big, big_len);
}

static int teardown(void **state)
{
    (void)state;
    free(big);
    return tu_rmtree(base);
}

static const char manifest[] = "[{\"Config\":\"abc.json\",\"Layers\":[\"0123/layer.tar\"]}]";
static const char config[] = "{\"architecture\":\"amd64\"}";

static char long_name[200];

/* The archive every test compares against. */
static void write_sample(const char *path)
{
    memset(long_name, 0, sizeof long_name);
    memcpy(long_name, "dir/", 4);
    memset(long_name + 4, 'n', 150);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    oc_error err = {0};
    oc_tar_writer *w = oc_tar_writer_open_fd(fd, path, &err);
    assert_non_null(w);
    assert_int_equal(oc_tar_add_buffer(w, "abc.json", config, strlen(config), &err), 0);
    assert_int_equal(oc_tar_add_dir(w, "0123", &err), 0);
    if (oc_tar_add_file(w, "0123/layer.tar", src_big, &err) != 0)
        fail_msg("add_file: %s", err.msg);
    assert_int_equal(oc_tar_add_buffer(w, "empty", "", 0, &err), 0);
    assert_int_equal(oc_tar_add_buffer(w, long_name, "long", 4, &err), 0);
    assert_int_equal(oc_tar_add_buffer(w, "manifest.json", manifest, strlen(manifest), &err), 0);
    if (oc_tar_writer_close(w, &err) != 0)
        fail_msg("close: %s", err.msg);
    close(fd);
}

static void test_read_back(void **state)
{
    (void)state;
    char path[700];
    snprintf(path, sizeof path, "%s/image.tar", base);
    write_sample(path);

    struct {
        const char *name;
        mode_t type;
        int perm;
        const void *data;
        size_t len;
    } want[] = {
        {"abc.json", AE_IFREG, 0644, config, strlen(config)},
        {"0123/", AE_IFDIR, 0755, NULL, 0},
        {"0123/layer.tar", AE_IFREG, 0644, big, big_len},
        {"empty", AE_IFREG, 0644, "", 0},
        {long_name, AE_IFREG, 0644, "long", 4},
        {"manifest.json", AE_IFREG, 0644, manifest, strlen(manifest)},
    };
    size_t n_want = sizeof want / sizeof want[0];

    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
    struct archive_entry *e;
    size_t i = 0;
    static unsigned char buf[1 << 16];
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true(i < n_want);
        assert_string_equal(archive_entry_pathname(e), want[i].name);
        assert_int_equal(archive_entry_filetype(e), want[i].type);
        assert_int_equal(archive_entry_perm(e), want[i].perm);
        assert_int_equal(archive_entry_size(e), want[i].len);
        assert_int_equal(archive_entry_uid(e), 0);
        assert_int_equal(archive_entry_gid(e), 0);
        assert_int_equal(archive_entry_mtime(e), 0);
        oc_sha256 *h = oc_sha256_new();
        size_t got = 0;
        la_ssize_t r;
        while ((r = archive_read_data(a, buf, sizeof buf)) > 0) {
            oc_sha256_update(h, buf, (size_t)r);
            got += (size_t)r;
        }
        assert_int_equal(r, 0);
        assert_int_equal(got, want[i].len);
        char hg[OC_SHA256_HEX_LEN + 1], hw[OC_SHA256_HEX_LEN + 1];
        oc_sha256_final_hex(h, hg);
        oc_sha256_buf_hex(want[i].data ? want[i].data : "", want[i].len, hw);
        assert_string_equal(hg, hw);
        oc_sha256_free(h);
        i++;
    }
    assert_int_equal(i, n_want);
    archive_read_free(a);

    /* a POSIX archive: whole 512-byte records, ending in two zero records */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size % 512, 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, -1024, SEEK_END), 0);
    unsigned char tail[1024];
    assert_int_equal(fread(tail, 1, sizeof tail, f), sizeof tail);
    fclose(f);
    for (size_t k = 0; k < sizeof tail; k++)
        assert_int_equal(tail[k], 0);
    /* and no padding beyond them: 6 headers, 1 pax header pair, data, end */
    size_t data_blocks = 0;
    for (size_t k = 0; k < n_want; k++)
        data_blocks += (want[k].len + 511) / 512;
    assert_true((size_t)st.st_size <= (6 + 2 + 1 + data_blocks + 2) * 512);
}

static void test_gnu_tar_reads_it(void **state)
{
    (void)state;
    if (system("command -v tar >/dev/null 2>&1") != 0)
        skip();
    char path[700], cmd[8192], out[800];
    snprintf(path, sizeof path, "%s/gnu.tar", base);
    snprintf(out, sizeof out, "%s/x", base);
    write_sample(path);
    int n =
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s' && tar -xf '%s' -C '%s' && cmp '%s' '%s/0123/layer.tar'"
                 " && test -d '%s/0123' && test \"$(cat '%s/manifest.json')\" = '%s'"
                 " && test \"$(cat '%s/%s')\" = long && test ! -s '%s/empty'"
                 " && tar -tf '%s' | tr '\\n' ' ' | grep -qx 'abc.json 0123/ 0123/layer.tar empty "
                 "dir/n* manifest.json '",
                 out, path, out, src_big, out, out, out, manifest, out, long_name, out, path);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    if (system(cmd) != 0)
        fail_msg("GNU tar disagrees: %s", cmd);
}

static void test_deterministic(void **state)
{
    (void)state;
    char p1[700], p2[700];
    snprintf(p1, sizeof p1, "%s/one.tar", base);
    snprintf(p2, sizeof p2, "%s/two.tar", base);
    write_sample(p1);
    write_sample(p2);
    char h1[OC_SHA256_HEX_LEN + 1], h2[OC_SHA256_HEX_LEN + 1];
    oc_error err = {0};
    assert_int_equal(oc_sha256_file_hex(p1, h1, NULL, &err), 0);
    assert_int_equal(oc_sha256_file_hex(p2, h2, NULL, &err), 0);
    assert_string_equal(h1, h2);
}

static void test_source_errors(void **state)
{
    (void)state;
    char path[700], missing[700];
    snprintf(path, sizeof path, "%s/errors.tar", base);
    snprintf(missing, sizeof missing, "%s/no-such-layer", base);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    oc_error err = {0};
    oc_tar_writer *w = oc_tar_writer_open_fd(fd, "errors.tar", &err);
    assert_non_null(w);

    /* a missing or non-regular source is refused before anything is written */
    assert_int_equal(oc_tar_add_file(w, "a/layer.tar", missing, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, missing));
    assert_int_equal(oc_tar_add_file(w, "a/layer.tar", base, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_int_equal(oc_tar_add_buffer(w, "", "x", 1, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);

    /* ... and the archive is still fine */
    assert_int_equal(oc_tar_add_buffer(w, "ok", "ok", 2, &err), 0);
    assert_int_equal(oc_tar_writer_close(w, &err), 0);
    close(fd);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
    struct archive_entry *e;
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
    assert_string_equal(archive_entry_pathname(e), "ok");
    assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_EOF);
    archive_read_free(a);
}

static void test_source_changes_size(void **state)
{
    (void)state;
    char path[700];
    snprintf(path, sizeof path, "%s/changing.tar", base);
    oc_error err = {0};

    /* procfs files say size 0 and then deliver bytes: they "grow" */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    oc_tar_writer *w = oc_tar_writer_open_fd(fd, path, &err);
    assert_int_equal(oc_tar_add_file(w, "status", "/proc/self/status", &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, "grew"));
    assert_non_null(strstr(err.msg, "/proc/self/status"));
    /* the writer refuses more work and close reports the failure */
    assert_int_equal(oc_tar_add_buffer(w, "more", "x", 1, &err), -1);
    assert_int_equal(oc_tar_writer_close(w, &err), -1);
    close(fd);

    /* sysfs files say 4096 and deliver less: they "shrink" */
    const char *sys = "/sys/devices/system/cpu/online";
    struct stat st;
    if (stat(sys, &st) == 0 && st.st_size == 4096) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        w = oc_tar_writer_open_fd(fd, path, &err);
        assert_int_equal(oc_tar_add_file(w, "online", sys, &err), -1);
        assert_int_equal(err.code, OC_E_IO);
        assert_non_null(strstr(err.msg, "shrank"));
        oc_tar_writer_free(w);
        close(fd);
    }
}

static void test_disk_full(void **state)
{
    (void)state;
    int fd = open("/dev/full", O_WRONLY);
    if (fd < 0)
        skip();
    oc_error err = {0};

    /* writes are not blocked: the first member already reaches the file */
    oc_tar_writer *w = oc_tar_writer_open_fd(fd, "/dev/full", &err);
    assert_non_null(w);
    assert_int_equal(oc_tar_add_buffer(w, "a", "a", 1, &err), -1);
    assert_int_equal(err.code, OC_E_NOSPACE);
    assert_non_null(strstr(err.msg, "/dev/full"));
    assert_non_null(strstr(err.msg, "No space left"));
    assert_int_equal(oc_tar_writer_close(w, &err), -1);

    w = oc_tar_writer_open_fd(fd, "/dev/full", &err);
    assert_int_equal(oc_tar_add_file(w, "big", src_big, &err), -1);
    assert_int_equal(err.code, OC_E_NOSPACE);
    assert_non_null(strstr(err.msg, "big"));
    oc_tar_writer_free(w);
    oc_tar_writer_free(NULL);
    close(fd);
}

/* The end blocks are written by close, so close reports a failing output. */
static void test_close_reports_write_error(void **state)
{
    (void)state;
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    int p[2];
    assert_int_equal(pipe(p), 0);
    oc_error err = {0};
    oc_tar_writer *w = oc_tar_writer_open_fd(p[1], "pipe", &err);
    assert_int_equal(oc_tar_add_buffer(w, "a", "a", 1, &err), 0);
    close(p[0]);
    assert_int_equal(oc_tar_writer_close(w, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, "pipe"));
    assert_non_null(strstr(err.msg, "Broken pipe"));
    close(p[1]);
    signal(SIGPIPE, old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_back),
        cmocka_unit_test(test_gnu_tar_reads_it),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_source_errors),
        cmocka_unit_test(test_source_changes_size),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_close_reports_write_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
