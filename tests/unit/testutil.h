/* testutil.h - the set-up the unit tests share: a scratch directory of
 * their own under $TMPDIR (made in a cmocka setup, removed in teardown),
 * whole files read and written, and "is this tool installed". Header-only,
 * static: each test program includes it once. */
#ifndef OCCY_TESTS_TESTUTIL_H
#define OCCY_TESTS_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Make "$TMPDIR/occy-test-NAME-XXXXXX" in dir (size bytes); 0 or -1. */
static inline int tu_mkdtemp(char *dir, size_t size, const char *name)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, size, "%s/occy-test-%s-XXXXXX", t ? t : "/tmp", name);
    return mkdtemp(dir) ? 0 : -1;
}

/* Remove a scratch tree made by tu_mkdtemp (nothing if it is gone). */
static inline int tu_rmtree(const char *dir)
{
    if (!dir[0] || strstr(dir, "occy-test-") == NULL)
        return -1; /* never anything but our own scratch */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The whole file, NUL-terminated (len without it), or NULL. */
static inline char *tu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 65536 * 2;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, 65536, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Write len bytes to path (created or truncated); 0 or -1. */
static inline int tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* 1 when `command -v tool` finds it. */
static inline int tu_have_tool(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

#endif
