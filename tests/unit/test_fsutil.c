/* test_fsutil.c - oc_remove_tree removes a tree whose directories lack owner
 * permissions (0555 holding files, 0000 nested inside 0555), as an expanded
 * layer has them, without root; and keeps its symlinks' targets. As root the
 * removal runs in a child that drops to an unprivileged uid first, since
 * root's removal would pass without the fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/fsutil.h"

#define UNPRIVILEGED 65534

static int make_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("x\n", f);
    return fclose(f);
}

/* The tree under base, then the removal: 0 when it worked and left nothing
 * but the symlink's target. Runs in the (unprivileged) child. */
static int build_and_remove(const char *base)
{
    char p[4096], outside[4096];
    snprintf(outside, sizeof outside, "%s/outside", base);
    if (make_file(outside) != 0)
        return 10;
    snprintf(p, sizeof p, "%s/t", base);
    const char *dirs[] = {"t", "t/ro", "t/ro/sub", "t/ro/sub/none", "t/none"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", base, dirs[i]);
        if (mkdir(p, 0755) != 0)
            return 11;
    }
    const char *files[] = {"t/ro/f", "t/ro/sub/f", "t/ro/sub/none/f", "t/none/f"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", base, files[i]);
        if (make_file(p) != 0)
            return 12;
    }
    snprintf(p, sizeof p, "%s/t/ro/link", base);
    if (symlink(outside, p) != 0)
        return 13;
    /* innermost first: a 0000 directory cannot be changed from inside */
    const char *modes_dirs[] = {"t/ro/sub/none", "t/none", "t/ro/sub", "t/ro"};
    const mode_t modes[] = {0000, 0000, 0555, 0555};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", base, modes_dirs[i]);
        if (chmod(p, modes[i]) != 0)
            return 14;
    }
    snprintf(p, sizeof p, "%s/t", base);
    oc_error err;
    oc_error_clear(&err);
    if (oc_remove_tree(p, &err) != 0) {
        fprintf(stderr, "oc_remove_tree: %s\n", err.msg);
        return 20;
    }
    struct stat st;
    if (lstat(p, &st) == 0 || lstat(outside, &st) != 0)
        return 21;
    return 0;
}

static void test_remove_tree_without_permissions(void **state)
{
    (void)state;
    char base[] = "/tmp/occy-fsutil-XXXXXX";
    assert_non_null(mkdtemp(base));
    int status = 0;
    if (geteuid() == 0) {
        assert_int_equal(chown(base, UNPRIVILEGED, UNPRIVILEGED), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (setgid(UNPRIVILEGED) != 0 || setuid(UNPRIVILEGED) != 0)
                _exit(9);
            _exit(build_and_remove(base));
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        status = WEXITSTATUS(status);
    } else {
        status = build_and_remove(base);
    }
    assert_int_equal(status, 0);
    char outside[4096];
    snprintf(outside, sizeof outside, "%s/outside", base);
    assert_int_equal(unlink(outside), 0);
    assert_int_equal(rmdir(base), 0);
}

static void test_remove_tree_missing_is_fine(void **state)
{
    (void)state;
    oc_error err;
    oc_error_clear(&err);
    assert_int_equal(oc_remove_tree("/tmp/occy-fsutil-does-not-exist/x", &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remove_tree_without_permissions),
        cmocka_unit_test(test_remove_tree_missing_is_fine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
