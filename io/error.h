/* error.h - the one error type every layer returns.
 *
 * Library code never prints and never exits: a failing call fills an
 * oc_error with a code and a one-line message naming what failed and why,
 * and returns -1 (or NULL). Callers add context with oc_error_prefix so the
 * final line names the image, the blob and the cause. */
#ifndef OC_IO_ERROR_H
#define OC_IO_ERROR_H

#include <stddef.h>

#include "occystrap/error.h"

/* Set code and message (printf format). Safe with err == NULL. */
void oc_error_set(oc_error *err, oc_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Put "context: " in front of the current message. */
void oc_error_prefix(oc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set OC_E_IO / OC_E_NOSPACE / OC_E_NOMEM from errno_value with
 * "what: strerror" as message. */
void oc_error_errno(oc_error *err, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void oc_error_clear(oc_error *err);

/* A printable excerpt of the first len bytes of s (NULL prints "(null)"),
 * for quoting untrusted input in messages: quotes, backslashes and bytes
 * outside printable ASCII are escaped, and it is cut with "..." after
 * max_chars characters. out should hold max_chars * 4 + 8 bytes. */
const char *oc_excerpt(const char *s, size_t len, size_t max_chars, char *out, size_t outsz);

#endif
