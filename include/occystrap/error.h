/* occystrap/error.h - the one error type of the occystrap library (public).
 *
 * Every call that can fail fills an oc_error with a code and a one-line
 * message naming what failed and why (the image, the blob, the file and the
 * cause), and returns -1 (or NULL). The library never prints and never
 * exits. Included by occystrap.h; usable alone. */
#ifndef OCCYSTRAP_ERROR_H
#define OCCYSTRAP_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library's exported calls (it is built with hidden visibility). */
#ifndef OC_API
#define OC_API __attribute__((visibility("default")))
#endif

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
    OC_E_CANCELLED,   /* stopped: interrupted, or because another part failed */
} oc_errcode;

#define OC_ERROR_MSG_MAX 1024

typedef struct oc_error {
    oc_errcode code;
    char msg[OC_ERROR_MSG_MAX];
} oc_error;

/* Name of a code, e.g. "digest mismatch", for reports. */
OC_API const char *oc_errcode_name(oc_errcode code);

#ifdef __cplusplus
}
#endif

#endif
