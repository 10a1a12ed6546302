/* test_store_tarcopy.c - the store's kernel-copy tar writer (io/tarcopy)
 * writes exactly the bytes io/tarwrite writes for the same members (sizes
 * around the 512-byte block, empty files, names long enough for a pax
 * header), through copy_file_range and through the read/write fallback,
 * also into a pipe; and it refuses a file whose size is not the recorded
 * one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/tarcopy.h"
#include "io/tarwrite.h"
#include "testutil.h"

static char base[512];

static int setup(void **state)
{
    (void)state;
    return tu_mkdtemp(base, sizeof base, "tarcopy");
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmtree(base);
}

static const size_t sizes[] = {0, 1, 511, 512, 513, 1024, 100000, 3 * 1024 * 1024 + 7};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static char src[NSIZES][700];

static void make_sources(void)
{
    for (size_t i = 0; i < NSIZES; i++) {
        snprintf(src[i], sizeof src[i], "%s/src%zu", base, i);
        FILE *f = fopen(src[i], "wb");
        assert_non_null(f);
        for (size_t k = 0; k < sizes[i]; k++)
            fputc((int)((k * 31 + i) & 0xff), f);
        assert_int_equal(fclose(f), 0);
    }
}

static const char long_name[] =
    "a-directory-with-a-long-name/another-directory-with-a-long-name/and-a-file-whose-name-"
    "takes-us-past-the-hundred-bytes-of-ustar.bin";

static void write_with_tarwrite(const char *out)
{
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    oc_tar_writer *w = oc_tar_writer_open_fd(fd, out, NULL);
    assert_non_null(w);
    assert_int_equal(oc_tar_add_buffer(w, "cfg.json", "{\"a\": 1}", 8, NULL), 0);
    for (size_t i = 0; i < NSIZES; i++) {
        char name[64];
        snprintf(name, sizeof name, "d%zu/", i);
        assert_int_equal(oc_tar_add_dir(w, name, NULL), 0);
        snprintf(name, sizeof name, "d%zu/layer.tar", i);
        assert_int_equal(oc_tar_add_file(w, name, src[i], NULL), 0);
    }
    assert_int_equal(oc_tar_add_file(w, long_name, src[2], NULL), 0);
    assert_int_equal(oc_tar_add_buffer(w, "manifest.json", "[]", 2, NULL), 0);
    assert_int_equal(oc_tar_writer_close(w, NULL), 0);
    close(fd);
}

static void write_with_tarcopy(int fd, int readwrite, oc_tarcopy_stats *st)
{
    oc_tarcopy *w = oc_tarcopy_open(fd, "out", NULL);
    assert_non_null(w);
    oc_tarcopy_force_readwrite(w, readwrite);
    oc_error err;
    oc_error_clear(&err);
    assert_int_equal(oc_tarcopy_add_buffer(w, "cfg.json", "{\"a\": 1}", 8, &err), 0);
    for (size_t i = 0; i < NSIZES; i++) {
        char name[64];
        snprintf(name, sizeof name, "d%zu/", i);
        assert_int_equal(oc_tarcopy_add_dir(w, name, &err), 0);
        snprintf(name, sizeof name, "d%zu/layer.tar", i);
        if (oc_tarcopy_add_file(w, name, src[i], sizes[i], &err) != 0)
            fail_msg("%s", err.msg);
    }
    assert_int_equal(oc_tarcopy_add_file(w, long_name, src[2], UINT64_MAX, &err), 0);
    assert_int_equal(oc_tarcopy_add_buffer(w, "manifest.json", "[]", 2, &err), 0);
    oc_tarcopy_get_stats(w, st);
    assert_int_equal(oc_tarcopy_close(w, &err), 0);
}

static void test_same_bytes(void **state)
{
    (void)state;
    make_sources();
    char a[700], b[700], c[700];
    snprintf(a, sizeof a, "%s/tarwrite.tar", base);
    snprintf(b, sizeof b, "%s/tarcopy.tar", base);
    snprintf(c, sizeof c, "%s/tarcopy-rw.tar", base);
    write_with_tarwrite(a);
    uint64_t data = 0;
    for (size_t i = 0; i < NSIZES; i++)
        data += sizes[i];
    for (int rw = 0; rw < 2; rw++) {
        const char *out = rw ? c : b;
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        oc_tarcopy_stats st;
        write_with_tarcopy(fd, rw, &st);
        close(fd);
        size_t la, lb;
        char *ba = tu_slurp(a, &la), *bb = tu_slurp(out, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(ba, bb, la);
        assert_int_equal(st.total_bytes + 1024, lb);
        if (rw) {
            assert_int_equal(st.readwrite_bytes, data + sizes[2]);
            assert_int_equal(st.copy_file_range_bytes + st.sendfile_bytes, 0);
        } else {
            assert_int_equal(st.readwrite_bytes + st.copy_file_range_bytes + st.sendfile_bytes,
                             data + sizes[2]);
        }
        free(ba);
        free(bb);
    }
}

/* Into a pipe copy_file_range refuses; the fallbacks take over. */
static void test_pipe(void **state)
{
    (void)state;
    make_sources();
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/tarwrite.tar", base);
    snprintf(b, sizeof b, "%s/from-pipe.tar", base);
    write_with_tarwrite(a);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        int out = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char buf[65536];
        ssize_t n;
        while ((n = read(p[0], buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                _exit(1);
        close(out);
        _exit(n < 0);
    }
    close(p[0]);
    oc_tarcopy_stats st;
    write_with_tarcopy(p[1], 0, &st);
    close(p[1]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 0);
    size_t la, lb;
    char *ba = tu_slurp(a, &la), *bb = tu_slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void test_refusals(void **state)
{
    (void)state;
    make_sources();
    char out[700];
    snprintf(out, sizeof out, "%s/bad.tar", base);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    oc_tarcopy *w = oc_tarcopy_open(fd, out, NULL);
    oc_error err;
    oc_error_clear(&err);
    assert_int_equal(oc_tarcopy_add_file(w, "x/layer.tar", src[3], 511, &err), -1);
    assert_int_equal(err.code, OC_E_DIGEST);
    assert_non_null(strstr(err.msg, src[3]));
    assert_int_equal(oc_tarcopy_add_file(w, "x/layer.tar", base, UINT64_MAX, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
    char missing[720];
    snprintf(missing, sizeof missing, "%s/nope", base);
    assert_int_equal(oc_tarcopy_add_file(w, "y", missing, UINT64_MAX, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_int_equal(oc_tarcopy_add_buffer(w, "", "x", 1, &err), -1);
    /* after a failed member the archive refuses to finish */
    assert_int_equal(oc_tarcopy_close(w, &err), -1);
    close(fd);
    /* a full disk is OC_E_NOSPACE */
    int full = open("/dev/full", O_WRONLY);
    if (full >= 0) {
        w = oc_tarcopy_open(full, "/dev/full", NULL);
        assert_int_equal(oc_tarcopy_add_file(w, "big", src[NSIZES - 1], UINT64_MAX, &err), -1);
        assert_int_equal(err.code, OC_E_NOSPACE);
        oc_tarcopy_free(w);
        close(full);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
