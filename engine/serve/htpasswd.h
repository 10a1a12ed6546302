/* htpasswd.h - Basic authentication against an htpasswd file, as
 * distribution's htpasswd auth takes it: one "user:hash" a line, where hash
 * is bcrypt ($2y$, $2a$, $2b$; checked with libxcrypt's crypt_r) or {SHA}
 * (base64 of the password's SHA-1). Other schemes ($apr1$, crypt, plain
 * text) are refused when the file is loaded, naming the line.
 *
 * bcrypt is slow on purpose (tens of milliseconds at cost 10) and runs on
 * the caller's thread, so answers are cached by the exact header value:
 * a client sends the same header with every request and pays once, and a
 * repeated wrong one is refused without hashing again. Each cache holds at
 * most OC_HTPASSWD_CACHE entries and is emptied when full. */
#ifndef OC_SERVE_HTPASSWD_H
#define OC_SERVE_HTPASSWD_H

#include <stddef.h>

#include "io/error.h"

#define OC_HTPASSWD_CACHE 1024

typedef struct oc_htpasswd oc_htpasswd;

oc_htpasswd *oc_htpasswd_load(const char *path, oc_error *err);
void oc_htpasswd_free(oc_htpasswd *h);
/* The Authorization header value (len bytes): 1 when it is "Basic" with a
 * user and password the file accepts (the user is copied into user), 0
 * otherwise (a missing, malformed or wrong header). */
int oc_htpasswd_check(oc_htpasswd *h, const char *value, size_t len, char *user, size_t user_cap);

#endif
