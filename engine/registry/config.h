/* config.h - the JSON configuration file (--config FILE) for mirror runs:
 * per-registry endpoint, credentials, TLS and concurrency settings.
 *
 *   {
 *     "registries": {
 *       "docker.io": {                      // the registry as named in LIST
 *         "endpoint": "mirror.internal:5000", // served by this host instead
 *         "insecure": false,                  // plain HTTP
 *         "ca_cert": "/etc/ssl/private-ca.pem",
 *         "username": "u", "password": "p",   // else ~/.docker/config.json
 *         "concurrency": 4,                   // requests in flight to it
 *         "requests_per_second": 10,          // start at most this many a second
 *         "tags_page_size": 100,              // "n" of tags/list (else the registry's)
 *         "referrers": true                   // mirror --referrers for its images
 *       }                                     //   (or "required"; false: not even asked)
 *     },
 *     "repositories": {                       // filters of LIST's REPO:* and REPO:/RE/,
 *                                             // and per-repository referrers
 *       "docker.io/library/nginx": {          // [REGISTRY/]REPO as in LIST
 *         "semver": ">=1.24 <2",              // version range (image/semver.h)
 *         "exclude": ["[0-9.]+-alpine.*"],    // anchored PCRE2 regexes
 *         "latest": 3,                        // keep the 3 highest
 *         "referrers": "required"             // as the registry's, for this repository
 *       }
 *     },
 *     "jobs": 32, "retries": 5, "stall_timeout": 30,
 *     "rate_limit_wait": 60   // longest wait for a rate limit or Retry-After
 *   }
 *
 * Unknown keys are an error (a typo must not silently do nothing). Keys are
 * matched after normalisation ("docker.io" == "registry-1.docker.io"). */
#ifndef OC_ENGINE_CONFIG_H
#define OC_ENGINE_CONFIG_H

#include "io/error.h"

typedef struct oc_registry_config {
    char *name;     /* canonical registry name as in references */
    char *endpoint; /* host[:port] to contact, NULL = name */
    int insecure;   /* -1 unset */
    char *ca_cert;
    char *username;
    char *password;
    unsigned concurrency;       /* 0 unset */
    double requests_per_second; /* 0 unset */
    unsigned tags_page_size;    /* 0 unset */
    int referrers;              /* mirror its images' referrers: -1 unset, 0, 1, 2 required */
} oc_registry_config;

typedef struct oc_repo_config {
    char *registry; /* canonical, as in references */
    char *repository;
    char *semver;   /* range, or NULL */
    char **exclude; /* regexes */
    size_t n_exclude;
    unsigned latest; /* 0 unset */
    int referrers;   /* as the registry's, for this repository (wins over it) */
} oc_repo_config;

typedef struct oc_config {
    oc_registry_config *registries;
    size_t n_registries;
    oc_repo_config *repositories;
    size_t n_repositories;
    unsigned jobs;      /* 0 unset */
    int retries;        /* 0 unset */
    long stall_timeout; /* 0 unset */

    long rate_limit_wait; /* seconds, 0 unset */
} oc_config;

int oc_config_parse(oc_config *c, const char *text, size_t len, const char *what, oc_error *err);
int oc_config_load(oc_config *c, const char *path, oc_error *err);
void oc_config_free(oc_config *c);
/* Settings for a registry name (canonical), or NULL. */
const oc_registry_config *oc_config_registry(const oc_config *c, const char *name);
/* Tag filters for a repository (registry canonical), or NULL. */
const oc_repo_config *oc_config_repository(const oc_config *c, const char *registry,
                                           const char *repository);

#endif
