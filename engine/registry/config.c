/* config.c - parsing the JSON configuration (see config.h). */
#include "engine/registry/config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/image/ref.h"
#include "engine/image/semver.h"
#include "engine/image/tagfilter.h"
#include "io/atomicfile.h"
#include "engine/image/limits.h"

static int want_string(json_t *v, const char *what, const char *key, char **out, oc_error *err)
{
    if (!json_is_string(v)) {
        oc_error_set(err, OC_E_USAGE, "%s: \"%s\" must be a string", what, key);
        return -1;
    }
    *out = strdup(json_string_value(v));
    if (!*out) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    return 0;
}

static int want_count(json_t *v, const char *what, const char *key, long long max, long long *out,
                      oc_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > max) {
        oc_error_set(err, OC_E_USAGE, "%s: \"%s\" must be an integer from 1 to %lld", what, key,
                     max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* "referrers": true, false or "required" -> 1, 0, 2. */
static int want_referrers(json_t *v, const char *what, const char *name, int *out, oc_error *err)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_string(v) && strcmp(json_string_value(v), "required") == 0) {
        *out = 2;
        return 0;
    }
    oc_error_set(err, OC_E_USAGE, "%s: \"referrers\" of \"%s\" must be true, false or \"required\"",
                 what, name);
    return -1;
}

static int parse_registry(oc_registry_config *r, const char *name, json_t *obj, const char *what,
                          oc_error *err)
{
    memset(r, 0, sizeof *r);
    r->insecure = -1;
    r->referrers = -1;
    r->name = strdup(oc_registry_canonical(name));
    if (!r->name) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (!json_is_object(obj)) {
        oc_error_set(err, OC_E_USAGE, "%s: registry \"%s\" must be an object", what, name);
        return -1;
    }
    const char *key;
    json_t *v;
    long long n;
    json_object_foreach(obj, key, v)
    {
        int rc = 0;
        if (strcmp(key, "endpoint") == 0)
            rc = want_string(v, what, key, &r->endpoint, err);
        else if (strcmp(key, "ca_cert") == 0)
            rc = want_string(v, what, key, &r->ca_cert, err);
        else if (strcmp(key, "username") == 0)
            rc = want_string(v, what, key, &r->username, err);
        else if (strcmp(key, "password") == 0)
            rc = want_string(v, what, key, &r->password, err);
        else if (strcmp(key, "insecure") == 0) {
            if (!json_is_boolean(v)) {
                oc_error_set(err, OC_E_USAGE, "%s: \"insecure\" must be true or false", what);
                rc = -1;
            } else {
                r->insecure = json_is_true(v);
            }
        } else if (strcmp(key, "concurrency") == 0) {
            rc = want_count(v, what, key, 1024, &n, err);
            r->concurrency = (unsigned)n;
        } else if (strcmp(key, "tags_page_size") == 0) {
            rc = want_count(v, what, key, 100000, &n, err);
            r->tags_page_size = (unsigned)n;
        } else if (strcmp(key, "referrers") == 0) {
            rc = want_referrers(v, what, name, &r->referrers, err);
        } else if (strcmp(key, "requests_per_second") == 0) {
            if (!json_is_number(v) || json_number_value(v) <= 0) {
                oc_error_set(err, OC_E_USAGE, "%s: \"requests_per_second\" must be > 0", what);
                rc = -1;
            } else {
                r->requests_per_second = json_number_value(v);
            }
        } else {
            oc_error_set(err, OC_E_USAGE, "%s: unknown key \"%s\" for registry \"%s\"", what, key,
                         name);
            rc = -1;
        }
        if (rc != 0)
            return -1;
    }
    if ((r->username == NULL) != (r->password == NULL)) {
        oc_error_set(err, OC_E_USAGE, "%s: registry \"%s\" needs both username and password", what,
                     name);
        return -1;
    }
    return 0;
}

static int parse_repository(oc_repo_config *r, const char *name, json_t *obj, const char *what,
                            oc_error *err)
{
    memset(r, 0, sizeof *r);
    r->referrers = -1;
    oc_ref ref;
    if (oc_ref_parse(&ref, name, NULL, err) != 0) {
        oc_error_prefix(err, "%s: repository \"%s\"", what, name);
        err->code = OC_E_USAGE;
        return -1;
    }
    const char *tail = strrchr(name, '/');
    int named_tag = strchr(tail ? tail + 1 : name, ':') || strchr(name, '@');
    r->registry = strdup(ref.registry);
    r->repository = strdup(ref.repository);
    oc_ref_free(&ref);
    if (!r->registry || !r->repository) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return -1;
    }
    if (named_tag) {
        oc_error_set(err, OC_E_USAGE,
                     "%s: repository \"%s\" must name a repository, no tag or digest", what, name);
        return -1;
    }
    if (!json_is_object(obj)) {
        oc_error_set(err, OC_E_USAGE, "%s: repository \"%s\" must be an object", what, name);
        return -1;
    }
    const char *key;
    json_t *v;
    long long n;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "semver") == 0) {
            if (want_string(v, what, key, &r->semver, err) != 0)
                return -1;
            oc_semver_range *range = oc_semver_range_parse(r->semver, err);
            if (!range) {
                oc_error_prefix(err, "%s: repository \"%s\"", what, name);
                return -1;
            }
            oc_semver_range_free(range);
        } else if (strcmp(key, "exclude") == 0) {
            if (!json_is_array(v)) {
                oc_error_set(err, OC_E_USAGE, "%s: \"exclude\" of \"%s\" must be a list of regexes",
                             what, name);
                return -1;
            }
            r->exclude = calloc(json_array_size(v) + 1, sizeof *r->exclude);
            if (!r->exclude) {
                oc_error_set(err, OC_E_NOMEM, "out of memory");
                return -1;
            }
            size_t i;
            json_t *re;
            json_array_foreach(v, i, re)
            {
                if (want_string(re, what, key, &r->exclude[r->n_exclude], err) != 0)
                    return -1;
                r->n_exclude++;
                if (oc_tag_regex_check(r->exclude[i], err) != 0) {
                    oc_error_prefix(err, "%s: repository \"%s\"", what, name);
                    return -1;
                }
            }
        } else if (strcmp(key, "latest") == 0) {
            if (want_count(v, what, key, 1000000, &n, err) != 0)
                return -1;
            r->latest = (unsigned)n;
        } else if (strcmp(key, "referrers") == 0) {
            if (want_referrers(v, what, name, &r->referrers, err) != 0)
                return -1;
        } else {
            oc_error_set(err, OC_E_USAGE, "%s: unknown key \"%s\" for repository \"%s\"", what, key,
                         name);
            return -1;
        }
    }
    return 0;
}

int oc_config_parse(oc_config *c, const char *text, size_t len, const char *what, oc_error *err)
{
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        oc_error_set(err, OC_E_USAGE, "%s: line %d: %s", what, jerr.line, jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        oc_error_set(err, OC_E_USAGE, "%s: must be a JSON object", what);
        goto out;
    }
    const char *key;
    json_t *v;
    long long n;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "registries") == 0) {
            if (!json_is_object(v)) {
                oc_error_set(err, OC_E_USAGE, "%s: \"registries\" must be an object", what);
                goto out;
            }
            c->registries = calloc(json_object_size(v) + 1, sizeof *c->registries);
            if (!c->registries) {
                oc_error_set(err, OC_E_NOMEM, "out of memory");
                goto out;
            }
            const char *name;
            json_t *reg;
            json_object_foreach(v, name, reg)
            {
                if (parse_registry(&c->registries[c->n_registries++], name, reg, what, err) != 0)
                    goto out;
            }
        } else if (strcmp(key, "repositories") == 0) {
            if (!json_is_object(v)) {
                oc_error_set(err, OC_E_USAGE, "%s: \"repositories\" must be an object", what);
                goto out;
            }
            c->repositories = calloc(json_object_size(v) + 1, sizeof *c->repositories);
            if (!c->repositories) {
                oc_error_set(err, OC_E_NOMEM, "out of memory");
                goto out;
            }
            const char *name;
            json_t *repo;
            json_object_foreach(v, name, repo)
            {
                if (parse_repository(&c->repositories[c->n_repositories++], name, repo, what,
                                     err) != 0)
                    goto out;
            }
        } else if (strcmp(key, "jobs") == 0) {
            if (want_count(v, what, key, 4096, &n, err) != 0)
                goto out;
            c->jobs = (unsigned)n;
        } else if (strcmp(key, "retries") == 0) {
            if (want_count(v, what, key, 100, &n, err) != 0)
                goto out;
            c->retries = (int)n;
        } else if (strcmp(key, "stall_timeout") == 0) {
            if (want_count(v, what, key, 3600, &n, err) != 0)
                goto out;
            c->stall_timeout = (long)n;
        } else if (strcmp(key, "rate_limit_wait") == 0) {
            if (want_count(v, what, key, 86400, &n, err) != 0)
                goto out;
            c->rate_limit_wait = (long)n;
        } else {
            oc_error_set(err, OC_E_USAGE, "%s: unknown key \"%s\"", what, key);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        oc_config_free(c);
    return rc;
}

int oc_config_load(oc_config *c, const char *path, oc_error *err)
{
    size_t len = 0;
    char *text = oc_read_file(path, OC_SETTINGS_FILE_MAX, &len, err);
    if (!text) {
        oc_error_prefix(err, "config");
        if (err)
            err->code = OC_E_USAGE;
        return -1;
    }
    int rc = oc_config_parse(c, text, len, path, err);
    free(text);
    return rc;
}

void oc_config_free(oc_config *c)
{
    for (size_t i = 0; i < c->n_registries; i++) {
        oc_registry_config *r = &c->registries[i];
        free(r->name);
        free(r->endpoint);
        free(r->ca_cert);
        free(r->username);
        free(r->password);
    }
    free(c->registries);
    for (size_t i = 0; i < c->n_repositories; i++) {
        oc_repo_config *r = &c->repositories[i];
        free(r->registry);
        free(r->repository);
        free(r->semver);
        for (size_t k = 0; k < r->n_exclude; k++)
            free(r->exclude[k]);
        free(r->exclude);
    }
    free(c->repositories);
    memset(c, 0, sizeof *c);
}

const oc_registry_config *oc_config_registry(const oc_config *c, const char *name)
{
    if (!c)
        return NULL;
    const char *canon = oc_registry_canonical(name);
    for (size_t i = 0; i < c->n_registries; i++)
        if (strcmp(c->registries[i].name, canon) == 0)
            return &c->registries[i];
    return NULL;
}

const oc_repo_config *oc_config_repository(const oc_config *c, const char *registry,
                                           const char *repository)
{
    if (!c)
        return NULL;
    const char *canon = oc_registry_canonical(registry);
    for (size_t i = 0; i < c->n_repositories; i++)
        if (strcmp(c->repositories[i].registry, canon) == 0 &&
            strcmp(c->repositories[i].repository, repository) == 0)
            return &c->repositories[i];
    return NULL;
}
