/* error.h - the one error type every layer returns.
 *
 * Library code never prints and never exits: a failing call fills an
 * oc_error with a code and a one-line message naming what failed and why,
 * and returns -1 (or NULL). Callers add context with oc_error_prefix so the
 * final line names the image, the blob and the cause. */
#ifndef OC_IO_ERROR_H
#define OC_IO_ERROR_H

#include <stddef.h>

typedef enum oc_errcode {
    OC_OK = 0,
    OC_E_USAGE,       /* bad arguments or configuration */
    OC_E_IO,          /* local file system error */
    OC_E_NOSPACE,     /* disk full or quota */
    OC_E_NOMEM,       /* allocation failed */
    OC_E_NET,         /* connection, TLS or protocol failure */
    OC_E_HTTP,        /* unexpected HTTP status */
    OC_E_AUTH,        /* authentication refused */
    OC_E_NOTFOUND,    /* image, tag or blob unknown */
    OC_E_DIGEST,      /* content does not match its digest or size */
    OC_E_FORMAT,      /* malformed input: JSON, reference, tar, stream */
    OC_E_UNSUPPORTED, /* well-formed but not supported (schema 1, ...) */
    OC_E_PLATFORM,    /* no manifest for the wanted platform */
    OC_E_LIMIT,       /* a configured size limit was exceeded */
    OC_E_CANCELLED,   /* stopped because another part failed */
} oc_errcode;

typedef struct oc_error {
    oc_errcode code;
    char msg[1024];
} oc_error;

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

/* Name of a code, e.g. "digest mismatch", for reports. */
const char *oc_errcode_name(oc_errcode code);

#endif
