/* fuzz_common.h - helpers shared by the libFuzzer harnesses in tests/fuzz/:
 * a property check that aborts (libFuzzer then reports the input as a crash
 * and saves it), NUL-terminated copies of the input, splitting the input on
 * NUL bytes, and small validators the properties use.
 *
 * Everything here is header-only (static functions), so each harness is one
 * translation unit linked against occy_engine. */
#ifndef OC_FUZZ_COMMON_H
#define OC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property that must hold for every input: print where and why, then
 * abort() so libFuzzer keeps the input. The message is printf-style and
 * always has at least a format string. */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "\nfuzz property failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Allocation failure inside a harness is not a finding: stop loudly. */
static inline void *fz_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "fuzz harness: out of memory\n");
        abort();
    }
    return p;
}

/* A NUL-terminated copy of the n bytes at data (which may hold NULs). */
static inline char *fz_strndup(const uint8_t *data, size_t n)
{
    char *s = fz_xmalloc(n + 1);
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* Split a copy of the input on NUL bytes into at most max parts (the last
 * part keeps any further NULs, so it ends at its first one). parts[i] point
 * into *buf, which the caller frees. Returns the number of parts (>= 1). */
static inline size_t fz_split(const uint8_t *data, size_t size, char **buf, char **parts,
                              size_t max)
{
    char *b = fz_strndup(data, size);
    size_t n = 0;
    size_t start = 0;
    *buf = b;
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i == size || b[i] == '\0') {
            parts[n++] = b + start;
            start = i + 1;
        }
    }
    return n;
}

static inline int fz_is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* "sha256:" and exactly 64 lowercase hex digits. */
static inline int fz_is_digest(const char *s)
{
    return s && strlen(s) == 71 && strncmp(s, "sha256:", 7) == 0 && fz_is_lower_hex(s + 7, 64);
}

/* a == b, where both may be NULL. */
static inline int fz_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static inline const char *fz_str(const char *s)
{
    return s ? s : "(null)";
}

#endif
