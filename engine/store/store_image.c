/* store_image.c - parse an image's manifest file in a store (see
 * store_image.h). */
#include "engine/store/store_image.h"

#include <stdlib.h>
#include <string.h>

#include "io/atomicfile.h"
#include "engine/image/limits.h"

int oc_store_name_is_hex(const char *name, const char *suffix, char hex[OC_SHA256_HEX_LEN + 1])
{
    if (!name)
        return 0;
    for (int i = 0; i < OC_SHA256_HEX_LEN; i++) {
        char ch = name[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    if (strcmp(name + OC_SHA256_HEX_LEN, suffix) != 0)
        return 0;
    if (hex) {
        memcpy(hex, name, OC_SHA256_HEX_LEN);
        hex[OC_SHA256_HEX_LEN] = '\0';
    }
    return 1;
}

void oc_store_image_free(oc_store_image *si)
{
    if (!si)
        return;
    free(si->config);
    for (size_t i = 0; i < si->n_repo_tags; i++)
        free(si->repo_tags[i]);
    free(si->repo_tags);
    for (size_t i = 0; i < si->n_layers; i++)
        free(si->layers[i]);
    free(si->layers);
    free(si->layer_hex);
    free(si->image_name);
    free(si->registry);
    free(si->repository);
    free(si->tag);
    free(si->manifest_digest);
    free(si->index_digest);
    free(si->platform);
    free(si->media_type);
    free(si->fetched_at);
    memset(si, 0, sizeof *si);
}

/* Copy an optional string member; a present non-string is an error. */
static int opt_string(json_t *obj, const char *key, char **out, const char *what, oc_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        oc_error_set(err, OC_E_FORMAT, "%s: \"%s\" is not a string", what, key);
        return -1;
    }
    *out = strdup(json_string_value(v));
    if (!*out) {
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what);
        return -1;
    }
    return 0;
}

static int parse_layers(oc_store_image *si, json_t *layers, const char *what, oc_error *err)
{
    if (!json_is_array(layers)) {
        oc_error_set(err, OC_E_FORMAT, "%s: \"Layers\" is missing or not a list", what);
        return -1;
    }
    size_t n = json_array_size(layers);
    si->layers = calloc(n ? n : 1, sizeof *si->layers);
    si->layer_hex = calloc(n ? n : 1, sizeof *si->layer_hex);
    if (!si->layers || !si->layer_hex) {
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(layers, i));
        if (!oc_store_name_is_hex(name, "/layer.tar", si->layer_hex[i])) {
            if (name && oc_store_name_is_hex(name, "/layer.tgz", NULL))
                oc_error_set(err, OC_E_UNSUPPORTED,
                             "%s: layer %zu is \"%s\": compressed layer files (written by later "
                             "occystrap versions) are not supported",
                             what, i, name);
            else
                oc_error_set(err, OC_E_FORMAT,
                             "%s: layer %zu is \"%s\", not <sha256 hex>/layer.tar", what, i,
                             name ? name : "(not a string)");
            return -1;
        }
        if (!(si->layers[i] = strdup(name))) {
            oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what);
            return -1;
        }
        si->n_layers++;
    }
    return 0;
}

static int parse_repo_tags(oc_store_image *si, json_t *tags, const char *what, oc_error *err)
{
    if (!tags || json_is_null(tags))
        return 0;
    if (!json_is_array(tags)) {
        oc_error_set(err, OC_E_FORMAT, "%s: \"RepoTags\" is not a list", what);
        return -1;
    }
    size_t n = json_array_size(tags);
    si->repo_tags = calloc(n ? n : 1, sizeof *si->repo_tags);
    if (!si->repo_tags) {
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(tags, i));
        if (!t) {
            oc_error_set(err, OC_E_FORMAT, "%s: RepoTags[%zu] is not a string", what, i);
            return -1;
        }
        if (!(si->repo_tags[i] = strdup(t))) {
            oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what);
            return -1;
        }
        si->n_repo_tags++;
    }
    return 0;
}

static int parse_ours(oc_store_image *si, json_t *ours, const char *what, oc_error *err)
{
    if (!ours)
        return 0;
    if (!json_is_object(ours)) {
        oc_error_set(err, OC_E_FORMAT, "%s: \"Occystrap\" is not an object", what);
        return -1;
    }
    si->has_ours = 1;
    return opt_string(ours, "registry", &si->registry, what, err) ||
                   opt_string(ours, "repository", &si->repository, what, err) ||
                   opt_string(ours, "tag", &si->tag, what, err) ||
                   opt_string(ours, "manifest_digest", &si->manifest_digest, what, err) ||
                   opt_string(ours, "index_digest", &si->index_digest, what, err) ||
                   opt_string(ours, "platform", &si->platform, what, err) ||
                   opt_string(ours, "media_type", &si->media_type, what, err) ||
                   opt_string(ours, "fetched_at", &si->fetched_at, what, err)
               ? -1
               : 0;
}

int oc_store_image_parse(oc_store_image *si, const char *text, size_t len, const char *what,
                         oc_error *err)
{
    memset(si, 0, sizeof *si);
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    if (!doc) {
        oc_error_set(err, OC_E_FORMAT, "%s is not valid JSON: %s (line %d)", what, jerr.text,
                     jerr.line);
        return -1;
    }
    int rc = -1;
    if (!json_is_array(doc) || json_array_size(doc) != 1 ||
        !json_is_object(json_array_get(doc, 0))) {
        oc_error_set(err, OC_E_FORMAT, "%s is not a list of one image", what);
        goto out;
    }
    json_t *entry = json_array_get(doc, 0);
    const char *config = json_string_value(json_object_get(entry, "Config"));
    if (!oc_store_name_is_hex(config, ".json", si->config_hex)) {
        oc_error_set(err, OC_E_FORMAT, "%s: \"Config\" is \"%s\", not <sha256 hex>.json", what,
                     config ? config : "(missing)");
        goto out;
    }
    if (!(si->config = strdup(config))) {
        oc_error_set(err, OC_E_NOMEM, "%s: out of memory", what);
        goto out;
    }
    if (parse_layers(si, json_object_get(entry, "Layers"), what, err) != 0 ||
        parse_repo_tags(si, json_object_get(entry, "RepoTags"), what, err) != 0 ||
        opt_string(entry, "ImageName", &si->image_name, what, err) != 0 ||
        parse_ours(si, json_object_get(entry, "Occystrap"), what, err) != 0)
        goto out;
    rc = 0;
out:
    json_decref(doc);
    if (rc != 0)
        oc_store_image_free(si);
    return rc;
}

int oc_store_image_load(oc_store_image *si, const char *path, oc_error *err)
{
    memset(si, 0, sizeof *si);
    size_t len = 0;
    char *text = oc_read_file(path, OC_STORE_JSON_MAX, &len, err);
    if (!text)
        return -1;
    int rc = oc_store_image_parse(si, text, len, path, err);
    free(text);
    return rc;
}

json_t *oc_store_image_docker_entry(const oc_store_image *si, const char *const *repo_tags,
                                    size_t n_repo_tags)
{
    json_t *entry = json_object();
    json_t *tags = json_array();
    json_t *layers = json_array();
    if (!entry || !tags || !layers) {
        json_decref(entry);
        json_decref(tags);
        json_decref(layers);
        return NULL;
    }
    json_object_set_new(entry, "Config", json_string(si->config));
    for (size_t i = 0; i < n_repo_tags; i++)
        json_array_append_new(tags, json_string(repo_tags[i]));
    json_object_set_new(entry, "RepoTags", tags);
    for (size_t i = 0; i < si->n_layers; i++)
        json_array_append_new(layers, json_string(si->layers[i]));
    json_object_set_new(entry, "Layers", layers);
    return entry;
}

json_t *oc_store_origin_json(const oc_store_origin *o)
{
    const struct {
        const char *key, *value;
    } fields[] = {
        {"registry", o->registry},
        {"repository", o->repository},
        {"tag", o->tag},
        {"manifest_digest", o->manifest_digest},
        {"index_digest", o->index_digest},
        {"platform", o->platform},
        {"media_type", o->media_type},
        {"fetched_at", o->fetched_at},
    };
    json_t *ours = json_object();
    for (size_t i = 0; ours && i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i].value &&
            json_object_set_new(ours, fields[i].key, json_string(fields[i].value)) != 0) {
            json_decref(ours);
            return NULL;
        }
    }
    return ours;
}
