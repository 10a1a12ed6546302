/* auth.h - registry authentication pieces that need no network: the
 * WWW-Authenticate challenge parser, token-response parsing, Basic header
 * encoding and credentials from docker's config.json.
 *
 * The network half of the bearer flow lives in registry.c. */
#ifndef OC_ENGINE_AUTH_H
#define OC_ENGINE_AUTH_H

#include "io/error.h"

typedef enum oc_auth_scheme {
    OC_AUTH_NONE = 0,
    OC_AUTH_BASIC,
    OC_AUTH_BEARER,
} oc_auth_scheme;

typedef struct oc_auth_challenge {
    oc_auth_scheme scheme;
    char *realm;   /* NULL if absent */
    char *service; /* NULL if absent */
    char *scope;   /* NULL if absent */
    char *error;   /* e.g. "insufficient_scope", NULL if absent */
} oc_auth_challenge;

/* Parse one WWW-Authenticate value: scheme case-insensitive, parameters in
 * any order, values quoted (with commas and backslash escapes inside) or bare
 * tokens, spaces around '=' and ',' tolerated, unknown parameters ignored.
 * Bearer without realm is OC_E_FORMAT. */
int oc_auth_parse_challenge(oc_auth_challenge *c, const char *header_value, oc_error *err);
void oc_auth_challenge_free(oc_auth_challenge *c);

/* Token endpoint answer: {"token": ...} or {"access_token": ...} (token wins
 * when both), optional "expires_in" seconds (default 60, as the spec says). */
int oc_auth_parse_token_response(const char *body, size_t len, char **token, int *expires_in,
                                 oc_error *err);

/* "Basic base64(user:pass)"; malloc'd. */
char *oc_auth_basic_header(const char *user, const char *pass);

/* Credentials for registry from $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json: "auths" keyed by host, by "https://host", by
 * "https://host/v1/" (and for Docker Hub "https://index.docker.io/v1/"),
 * "auth" = base64(user:pass), or "username"/"password". Returns 1 and sets
 * user/pass (malloc'd) when found, 0 when not, -1 on a malformed file. */
int oc_auth_docker_config_lookup(const char *registry, char **user, char **pass, oc_error *err);

#endif
