/* error.c - filling and decorating oc_error (see error.h). */
#include "io/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void oc_error_set(oc_error *err, oc_errcode code, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

void oc_error_prefix(oc_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char head[512];
    char old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* head and old together may exceed the message: keep the front, which
     * names the image and blob, and cut the tail. */
    size_t hl = strlen(head);
    if (hl > sizeof err->msg - 3)
        hl = sizeof err->msg - 3;
    memcpy(err->msg, head, hl);
    memcpy(err->msg + hl, ": ", 2);
    size_t room = sizeof err->msg - hl - 3;
    size_t ol = strnlen(old, room);
    memcpy(err->msg + hl + 2, old, ol);
    err->msg[hl + 2 + ol] = '\0';
}

void oc_error_errno(oc_error *err, int errno_value, const char *fmt, ...)
{
    if (!err)
        return;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    oc_errcode code = OC_E_IO;
    if (errno_value == ENOSPC || errno_value == EDQUOT)
        code = OC_E_NOSPACE;
    else if (errno_value == ENOMEM)
        code = OC_E_NOMEM;
    oc_error_set(err, code, "%s: %s", what, strerror(errno_value));
}

void oc_error_clear(oc_error *err)
{
    if (!err)
        return;
    err->code = OC_OK;
    err->msg[0] = '\0';
}

const char *oc_errcode_name(oc_errcode code)
{
    switch (code) {
    case OC_OK:
        return "ok";
    case OC_E_USAGE:
        return "usage error";
    case OC_E_IO:
        return "i/o error";
    case OC_E_NOSPACE:
        return "disk full";
    case OC_E_NOMEM:
        return "out of memory";
    case OC_E_NET:
        return "network error";
    case OC_E_HTTP:
        return "http error";
    case OC_E_AUTH:
        return "authentication refused";
    case OC_E_NOTFOUND:
        return "not found";
    case OC_E_DIGEST:
        return "digest mismatch";
    case OC_E_FORMAT:
        return "malformed input";
    case OC_E_UNSUPPORTED:
        return "unsupported";
    case OC_E_PLATFORM:
        return "platform not found";
    case OC_E_LIMIT:
        return "limit exceeded";
    case OC_E_CANCELLED:
        return "cancelled";
    }
    return "unknown error";
}

const char *oc_excerpt(const char *s, size_t len, size_t max_chars, char *out, size_t outsz)
{
    size_t o = 0;
    if (!s) {
        s = "(null)";
        len = 6;
    }
    for (size_t i = 0; i < len && o + 8 < outsz; i++) {
        if (i == max_chars) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (outsz)
        out[o < outsz ? o : outsz - 1] = '\0';
    return out;
}
