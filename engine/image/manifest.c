/* manifest.c - image manifests, indexes and configs: deciding what a
 * registry answer is (Content-Type, then the body), parsing and checking
 * every descriptor, and picking the index entry for a platform.
 *
 * Selection rules (see manifest.h): entries without a platform, or with
 * "unknown" os or architecture (buildx attestation manifests), are never
 * picked. When no variant is wanted, arm picks its highest variant (v7 over
 * v6, as docker does), and other architectures prefer an entry without a
 * variant (amd64 over amd64/v3), else the first that matches. */
#include "engine/image/manifest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/digest.h"

#define JSON_FLAGS JSON_REJECT_DUPLICATES
#define EXCERPT_MAX 64
#define EXCERPT_BUF (EXCERPT_MAX * 4 + 8)
#define PLATFORM_TEXT_MAX 255
#define OFFERED_MAX_ITEMS 32

static const struct known_type {
    const char *type;
    oc_manifest_kind kind;
} known_types[] = {
    {OC_MT_DOCKER_MANIFEST, OC_MANIFEST_IMAGE}, {OC_MT_OCI_MANIFEST, OC_MANIFEST_IMAGE},
    {OC_MT_DOCKER_LIST, OC_MANIFEST_INDEX},     {OC_MT_OCI_INDEX, OC_MANIFEST_INDEX},
    {OC_MT_DOCKER_V1, OC_MANIFEST_SCHEMA1},     {OC_MT_DOCKER_V1_SIGNED, OC_MANIFEST_SCHEMA1},
};

/* Types that say nothing about the body: the body decides. */
static const char *const generic_types[] = {"application/json", "text/plain",
                                            "application/octet-stream"};

#define DOCKER_CONFIG_TYPE "application/vnd.docker.container.image.v1+json"

/* A printable excerpt of the n bytes at s for messages: escapes for
 * non-printable bytes, quotes and backslashes; cut with "..." when long. */
static const char *excerpt_n(const char *s, size_t n, char *out, size_t outsz)
{
    return oc_excerpt(s, n, EXCERPT_MAX, out, outsz);
}

static const char *excerpt(const char *s, char *out, size_t outsz)
{
    return excerpt_n(s, s ? strlen(s) : 0, out, outsz);
}

/* The known media type equal (case-insensitively) to the n bytes at t. */
static const struct known_type *lookup_type(const char *t, size_t n)
{
    for (size_t i = 0; i < sizeof known_types / sizeof known_types[0]; i++)
        if (strlen(known_types[i].type) == n && strncasecmp(known_types[i].type, t, n) == 0)
            return &known_types[i];
    return NULL;
}

static int is_generic_type(const char *t, size_t n)
{
    for (size_t i = 0; i < sizeof generic_types / sizeof generic_types[0]; i++)
        if (strlen(generic_types[i]) == n && strncasecmp(generic_types[i], t, n) == 0)
            return 1;
    return 0;
}

/* What a header or body says the document is. */
typedef struct verdict {
    oc_manifest_kind kind;
    const char *media_type;   /* canonical spelling of a known type, or NULL */
    const char *unknown_type; /* a media type we do not know, or NULL */
    size_t unknown_len;
    const char *problem; /* a malformed field that prevents a decision */
} verdict;

/* Fills v from the Content-Type; returns 1 when the body has to decide
 * (type missing, empty or generic). Parameters after ';' are ignored. */
static int judge_header(const char *ct, verdict *v)
{
    memset(v, 0, sizeof *v);
    if (!ct)
        return 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 0 || is_generic_type(ct, n))
        return 1;
    const struct known_type *k = lookup_type(ct, n);
    if (k) {
        v->kind = k->kind;
        v->media_type = k->type;
    } else {
        v->kind = OC_MANIFEST_UNKNOWN;
        v->unknown_type = ct;
        v->unknown_len = n;
    }
    return 0;
}

/* Fills v from the body: its mediaType, else schemaVersion 1, else its
 * shape ("manifests" -> index, "config" and "layers" -> image). */
static void judge_body(const json_t *root, verdict *v)
{
    memset(v, 0, sizeof *v);
    if (!json_is_object(root)) {
        v->problem = "the document is not a JSON object";
        return;
    }
    const json_t *mt = json_object_get(root, "mediaType");
    if (mt) {
        if (!json_is_string(mt)) {
            v->problem = "\"mediaType\" is not a string";
            return;
        }
        const char *s = json_string_value(mt);
        size_t n = json_string_length(mt);
        const struct known_type *k = lookup_type(s, n);
        if (k) {
            v->kind = k->kind;
            v->media_type = k->type;
        } else {
            v->unknown_type = s;
            v->unknown_len = n;
        }
        return;
    }
    const json_t *sv = json_object_get(root, "schemaVersion");
    if (json_is_integer(sv) && json_integer_value(sv) == 1) {
        v->kind = OC_MANIFEST_SCHEMA1;
        v->media_type = OC_MT_DOCKER_V1;
    } else if (json_object_get(root, "manifests")) {
        v->kind = OC_MANIFEST_INDEX;
    } else if (json_object_get(root, "config") && json_object_get(root, "layers")) {
        v->kind = OC_MANIFEST_IMAGE;
    }
}

oc_manifest_kind oc_manifest_sniff(const char *content_type, const char *body, size_t len)
{
    verdict v;
    if (!judge_header(content_type, &v))
        return v.kind;
    if (!body)
        return OC_MANIFEST_UNKNOWN;
    json_t *root = json_loadb(body, len, JSON_FLAGS, NULL);
    if (!root)
        return OC_MANIFEST_UNKNOWN;
    judge_body(root, &v);
    json_decref(root);
    return v.problem ? OC_MANIFEST_UNKNOWN : v.kind;
}

/* ---- field access: every type checked, messages name the field ---- */

static int field_error(oc_error *err, const char *doc, const char *where, const char *key,
                       const char *why)
{
    oc_error_set(err, OC_E_FORMAT, "%s: field \"%s%s%s\" %s", doc, where, *where ? "." : "", key,
                 why);
    return -1;
}

/* obj[key] as a string without NULs. *out is NULL when the field is absent
 * and not required; it points into the JSON value (not copied). */
static int get_string(const json_t *obj, const char *doc, const char *where, const char *key,
                      int required, const char **out, oc_error *err)
{
    const json_t *j = json_object_get(obj, key);
    *out = NULL;
    if (!j || json_is_null(j)) {
        if (required)
            return field_error(err, doc, where, key, "is missing");
        return 0;
    }
    if (!json_is_string(j))
        return field_error(err, doc, where, key, "is not a string");
    if (strlen(json_string_value(j)) != json_string_length(j))
        return field_error(err, doc, where, key, "contains a NUL byte");
    *out = json_string_value(j);
    return 0;
}

static int check_digest(const char *doc, const char *where, const char *key, const char *digest,
                        oc_error *err)
{
    char hex[OC_SHA256_HEX_LEN + 1];
    if (oc_digest_parse(digest, hex, err) != 0) {
        oc_error_prefix(err, "%s: field \"%s%s%s\"", doc, where, *where ? "." : "", key);
        return -1;
    }
    return 0;
}

static int nomem(oc_error *err, const char *what)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory parsing %s", what);
    return -1;
}

static void descriptor_free(oc_descriptor *d)
{
    free(d->media_type);
    free(d->digest);
    memset(d, 0, sizeof *d);
}

/* {"mediaType": string, "digest": "sha256:...", "size": integer >= 0}. */
static int parse_descriptor(const json_t *j, const char *doc, const char *where, oc_descriptor *d,
                            oc_error *err)
{
    const char *mt;
    const char *digest;
    memset(d, 0, sizeof *d);
    if (!json_is_object(j)) {
        oc_error_set(err, OC_E_FORMAT, "%s: field \"%s\" is not a descriptor object", doc, where);
        return -1;
    }
    if (get_string(j, doc, where, "mediaType", 1, &mt, err) != 0 ||
        get_string(j, doc, where, "digest", 1, &digest, err) != 0)
        return -1;
    if (*mt == '\0')
        return field_error(err, doc, where, "mediaType", "is empty");
    if (check_digest(doc, where, "digest", digest, err) != 0)
        return -1;
    const json_t *size = json_object_get(j, "size");
    if (!size)
        return field_error(err, doc, where, "size", "is missing");
    if (!json_is_integer(size))
        return field_error(err, doc, where, "size", "is not an integer");
    if (json_integer_value(size) < 0)
        return field_error(err, doc, where, "size", "is negative");
    d->size = (int64_t)json_integer_value(size);
    d->media_type = strdup(mt);
    d->digest = strdup(digest);
    if (!d->media_type || !d->digest) {
        descriptor_free(d);
        return nomem(err, doc);
    }
    return 0;
}

static int check_schema_version(const json_t *root, oc_error *err)
{
    const json_t *sv = json_object_get(root, "schemaVersion");
    if (!sv)
        return 0;
    if (!json_is_integer(sv))
        return field_error(err, "manifest", "", "schemaVersion", "is not an integer");
    if (json_integer_value(sv) == 1) {
        oc_error_set(err, OC_E_UNSUPPORTED,
                     "manifest: schema version 1 is deprecated and not supported; push the "
                     "image again with a current client (schema 2 or OCI)");
        return -1;
    }
    if (json_integer_value(sv) != 2) {
        oc_error_set(err, OC_E_FORMAT, "manifest: field \"schemaVersion\" is %lld, expected 2",
                     (long long)json_integer_value(sv));
        return -1;
    }
    return 0;
}

static int parse_image(oc_manifest *m, const json_t *root, oc_error *err)
{
    const json_t *config = json_object_get(root, "config");
    const json_t *layers = json_object_get(root, "layers");
    if (!config)
        return field_error(err, "manifest", "", "config", "is missing");
    if (parse_descriptor(config, "manifest", "config", &m->config, err) != 0)
        return -1;
    if (!layers)
        return field_error(err, "manifest", "", "layers", "is missing");
    if (!json_is_array(layers))
        return field_error(err, "manifest", "", "layers", "is not an array");
    size_t n = json_array_size(layers);
    if (n == 0)
        return 0;
    m->layers = calloc(n, sizeof *m->layers);
    if (!m->layers)
        return nomem(err, "manifest");
    for (size_t i = 0; i < n; i++) {
        char where[40];
        snprintf(where, sizeof where, "layers[%zu]", i);
        if (parse_descriptor(json_array_get(layers, i), "manifest", where, &m->layers[i], err))
            return -1;
        m->n_layers = i + 1;
    }
    return 0;
}

/* An index entry's optional "platform": os and architecture required
 * strings, variant an optional string ("" counts as none). */
static int parse_entry_platform(const json_t *entry, const char *where, oc_platform *p,
                                oc_error *err)
{
    const json_t *j = json_object_get(entry, "platform");
    const char *os;
    const char *arch;
    const char *variant;
    char pw[64];
    if (!j || json_is_null(j))
        return 0;
    snprintf(pw, sizeof pw, "%s.platform", where);
    if (!json_is_object(j)) {
        oc_error_set(err, OC_E_FORMAT, "index: field \"%s\" is not an object", pw);
        return -1;
    }
    if (get_string(j, "index", pw, "os", 1, &os, err) != 0 ||
        get_string(j, "index", pw, "architecture", 1, &arch, err) != 0 ||
        get_string(j, "index", pw, "variant", 0, &variant, err) != 0)
        return -1;
    p->os = strdup(os);
    p->arch = strdup(arch);
    if (variant && *variant)
        p->variant = strdup(variant);
    if (!p->os || !p->arch || (variant && *variant && !p->variant))
        return nomem(err, "index");
    return 0;
}

static int parse_index(oc_manifest *m, const json_t *root, oc_error *err)
{
    const json_t *manifests = json_object_get(root, "manifests");
    if (!manifests)
        return field_error(err, "index", "", "manifests", "is missing");
    if (!json_is_array(manifests))
        return field_error(err, "index", "", "manifests", "is not an array");
    size_t n = json_array_size(manifests);
    if (n == 0)
        return 0;
    m->manifests = calloc(n, sizeof *m->manifests);
    m->platforms = calloc(n, sizeof *m->platforms);
    if (!m->manifests || !m->platforms)
        return nomem(err, "index");
    for (size_t i = 0; i < n; i++) {
        char where[40];
        const json_t *entry = json_array_get(manifests, i);
        snprintf(where, sizeof where, "manifests[%zu]", i);
        m->n_manifests = i + 1;
        if (parse_descriptor(entry, "index", where, &m->manifests[i], err) != 0 ||
            parse_entry_platform(entry, where, &m->platforms[i], err) != 0)
            return -1;
    }
    return 0;
}

/* A media type for a body that did not name one. */
static const char *default_media_type(const oc_manifest *m)
{
    if (m->kind == OC_MANIFEST_INDEX)
        return OC_MT_OCI_INDEX;
    if (m->config.media_type && strcmp(m->config.media_type, DOCKER_CONFIG_TYPE) == 0)
        return OC_MT_DOCKER_MANIFEST;
    return OC_MT_OCI_MANIFEST;
}

static int unsupported_schema1(oc_error *err)
{
    oc_error_set(err, OC_E_UNSUPPORTED,
                 "manifest is Docker image manifest schema 1, which is deprecated and not "
                 "supported; push the image again with a current client (schema 2 or OCI)");
    return -1;
}

static int decide(const char *content_type, const json_t *root, verdict *out, oc_error *err)
{
    char ex[EXCERPT_BUF];
    char ex2[EXCERPT_BUF];
    verdict hv;
    verdict bv;
    int body_decides = judge_header(content_type, &hv);
    judge_body(root, &bv);
    if (bv.problem) {
        oc_error_set(err, OC_E_FORMAT, "manifest: %s", bv.problem);
        return -1;
    }
    if (bv.kind == OC_MANIFEST_SCHEMA1)
        return unsupported_schema1(err);
    if (body_decides) {
        *out = bv;
    } else {
        *out = hv;
        if (bv.unknown_type || (bv.media_type && bv.kind != hv.kind)) {
            const char *bt = bv.unknown_type ? bv.unknown_type : bv.media_type;
            size_t bl = bv.unknown_type ? bv.unknown_len : strlen(bv.media_type);
            oc_error_set(err, OC_E_FORMAT,
                         "manifest: Content-Type says \"%s\" but the body's mediaType is \"%s\"",
                         hv.media_type, excerpt_n(bt, bl, ex, sizeof ex));
            return -1;
        }
    }
    if (out->kind == OC_MANIFEST_SCHEMA1)
        return unsupported_schema1(err);
    if (out->kind == OC_MANIFEST_UNKNOWN) {
        if (out->unknown_type)
            oc_error_set(err, OC_E_UNSUPPORTED,
                         "manifest media type \"%s\" is not supported (expected a Docker schema 2 "
                         "or OCI manifest or index)",
                         excerpt_n(out->unknown_type, out->unknown_len, ex2, sizeof ex2));
        else
            oc_error_set(err, OC_E_FORMAT,
                         "manifest: not an image manifest or index (no \"mediaType\", and "
                         "neither \"manifests\" nor \"config\" and \"layers\")");
        return -1;
    }
    return 0;
}

int oc_manifest_parse(oc_manifest *m, const char *content_type, const char *body, size_t len,
                      oc_error *err)
{
    char ex[EXCERPT_BUF];
    verdict v;
    if (!m) {
        oc_error_set(err, OC_E_USAGE, "oc_manifest_parse: no manifest to fill");
        return -1;
    }
    memset(m, 0, sizeof *m);
    int body_decides = judge_header(content_type, &v);
    if (!body_decides && v.kind == OC_MANIFEST_SCHEMA1)
        return unsupported_schema1(err);
    if (!body_decides && v.kind == OC_MANIFEST_UNKNOWN) {
        oc_error_set(err, OC_E_UNSUPPORTED,
                     "manifest Content-Type \"%s\" is not supported (expected a Docker schema 2 "
                     "or OCI manifest or index)",
                     excerpt_n(v.unknown_type, v.unknown_len, ex, sizeof ex));
        return -1;
    }
    if (!body || len == 0) {
        oc_error_set(err, OC_E_FORMAT, "manifest is empty");
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_FLAGS, &je);
    if (!root) {
        oc_error_set(err, OC_E_FORMAT, "manifest is not valid JSON (line %d, column %d): %s",
                     je.line, je.column, excerpt(je.text, ex, sizeof ex));
        return -1;
    }
    int rc = decide(content_type, root, &v, err);
    if (rc == 0)
        rc = check_schema_version(root, err);
    if (rc == 0) {
        m->kind = v.kind;
        rc = v.kind == OC_MANIFEST_INDEX ? parse_index(m, root, err) : parse_image(m, root, err);
    }
    if (rc == 0) {
        m->media_type = strdup(v.media_type ? v.media_type : default_media_type(m));
        if (!m->media_type)
            rc = nomem(err, "manifest");
    }
    json_decref(root);
    if (rc != 0)
        oc_manifest_free(m);
    return rc;
}

void oc_platform_free(oc_platform *p)
{
    if (!p)
        return;
    free(p->os);
    free(p->arch);
    free(p->variant);
    memset(p, 0, sizeof *p);
}

void oc_manifest_free(oc_manifest *m)
{
    if (!m)
        return;
    free(m->media_type);
    descriptor_free(&m->config);
    for (size_t i = 0; i < m->n_layers; i++)
        descriptor_free(&m->layers[i]);
    free(m->layers);
    for (size_t i = 0; i < m->n_manifests; i++) {
        descriptor_free(&m->manifests[i]);
        if (m->platforms)
            oc_platform_free(&m->platforms[i]);
    }
    free(m->manifests);
    free(m->platforms);
    memset(m, 0, sizeof *m);
}

/* ---- platforms ---- */

static int is_platform_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static int replace(char **field, const char *value)
{
    char *v = value ? strdup(value) : NULL;
    if (value && !v)
        return -1;
    free(*field);
    *field = v;
    return 0;
}

/* docker's spellings: x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7,
 * armel -> arm/v6, i386 -> 386, and a bare variant number "7" -> "v7". */
static int normalise_platform(oc_platform *p)
{
    static const struct {
        const char *from, *arch, *variant;
    } aliases[] = {
        {"x86_64", "amd64", NULL}, {"x86-64", "amd64", NULL}, {"aarch64", "arm64", NULL},
        {"armhf", "arm", "v7"},    {"armel", "arm", "v6"},    {"i386", "386", NULL},
        {"i686", "386", NULL},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcmp(p->arch, aliases[i].from) != 0)
            continue;
        if (replace(&p->arch, aliases[i].arch) != 0)
            return -1;
        if (aliases[i].variant && !p->variant && replace(&p->variant, aliases[i].variant) != 0)
            return -1;
        break;
    }
    if (p->variant && p->variant[0] >= '0' && p->variant[0] <= '9' &&
        (strcmp(p->arch, "arm") == 0 || strcmp(p->arch, "arm64") == 0)) {
        size_t n = strlen(p->variant);
        char *v = malloc(n + 2);
        if (!v)
            return -1;
        v[0] = 'v';
        memcpy(v + 1, p->variant, n + 1);
        free(p->variant);
        p->variant = v;
    }
    return 0;
}

int oc_platform_parse(oc_platform *p, const char *text, oc_error *err)
{
    char ex[EXCERPT_BUF];
    char *parts[3] = {NULL, NULL, NULL};
    size_t n_parts = 0;
    if (!p) {
        oc_error_set(err, OC_E_USAGE, "oc_platform_parse: no platform to fill");
        return -1;
    }
    memset(p, 0, sizeof *p);
    if (!text) {
        oc_error_set(err, OC_E_USAGE, "no platform given (expected os/arch[/variant])");
        return -1;
    }
    size_t len = strlen(text);
    const char *why = NULL;
    if (len == 0)
        why = "is empty";
    else if (len > PLATFORM_TEXT_MAX)
        why = "is too long";
    for (size_t i = 0, start = 0; !why && i <= len; i++) {
        if (i < len && text[i] != '/') {
            if (!is_platform_char(text[i]))
                why = "has a character other than letters, digits, '.', '_' and '-'";
            continue;
        }
        if (i == start)
            why = "has an empty part";
        else if (n_parts == 3)
            why = "has more than three parts";
        else if (!(parts[n_parts++] = strndup(text + start, i - start)))
            why = "could not be stored (out of memory)";
        start = i + 1;
    }
    if (!why && n_parts < 2)
        why = "has no architecture";
    if (!why) {
        for (size_t k = 0; k < n_parts; k++)
            for (char *c = parts[k]; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
        p->os = parts[0];
        p->arch = parts[1];
        p->variant = parts[2];
        if (normalise_platform(p) != 0) {
            oc_platform_free(p);
            return nomem(err, "a platform");
        }
        return 0;
    }
    for (size_t k = 0; k < 3; k++)
        free(parts[k]);
    oc_error_set(err, OC_E_USAGE, "invalid platform \"%s\": it %s (expected os/arch[/variant])",
                 excerpt(text, ex, sizeof ex), why);
    return -1;
}

char *oc_platform_string(const oc_platform *p)
{
    const char *os = p && p->os ? p->os : "unknown";
    const char *arch = p && p->arch ? p->arch : "unknown";
    const char *variant = p ? p->variant : NULL;
    size_t n = strlen(os) + strlen(arch) + (variant ? strlen(variant) + 1 : 0) + 2;
    char *s = malloc(n);
    if (!s)
        return NULL;
    snprintf(s, n, "%s/%s%s%s", os, arch, variant ? "/" : "", variant ? variant : "");
    return s;
}

static int streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int is_v8_or_none(const char *variant)
{
    return !variant || !*variant || strcmp(variant, "v8") == 0;
}

int oc_platform_matches(const oc_platform *want, const oc_platform *have)
{
    if (!want || !have || !streq(want->os, have->os) || !streq(want->arch, have->arch))
        return 0;
    if (strcmp(want->arch, "arm64") == 0)
        return is_v8_or_none(want->variant) ? is_v8_or_none(have->variant)
                                            : streq(want->variant, have->variant);
    if (!want->variant || !*want->variant)
        return 1;
    return streq(want->variant, have->variant);
}

/* Index entries that can never be picked: no platform, or unknown/unknown. */
static int selectable(const oc_platform *p)
{
    return p->os && p->arch && strcmp(p->os, "unknown") != 0 && strcmp(p->arch, "unknown") != 0;
}

/* Preference among matches when no variant is wanted: higher is better. */
static long preference(const oc_platform *want, const oc_platform *have)
{
    if (want->variant && *want->variant)
        return 0;
    if (strcmp(want->arch, "arm") == 0) {
        const char *v = have->variant;
        if (!v || v[0] != 'v')
            return 0;
        char *end;
        long n = strtol(v + 1, &end, 10);
        return (*end == '\0' && n > 0 && n < 1000) ? n : 0;
    }
    if (strcmp(want->arch, "arm64") == 0)
        return 0;
    return (!have->variant || !*have->variant) ? 1 : 0;
}

/* Appends "a, b, c" of the selectable platforms to out, each once. */
static void list_offered(const oc_manifest *m, char *out, size_t outsz)
{
    size_t o = 0;
    size_t starts[OFFERED_MAX_ITEMS];
    size_t lens[OFFERED_MAX_ITEMS];
    size_t n_items = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->n_manifests; i++) {
        char ex[EXCERPT_BUF];
        const oc_platform *p = &m->platforms[i];
        if (!selectable(p))
            continue;
        char *s = oc_platform_string(p);
        if (!s)
            break;
        excerpt(s, ex, sizeof ex);
        free(s);
        size_t n = strlen(ex);
        int seen = 0;
        for (size_t k = 0; k < n_items && !seen; k++)
            seen = lens[k] == n && memcmp(out + starts[k], ex, n) == 0;
        if (seen)
            continue;
        if (n_items == OFFERED_MAX_ITEMS || o + n + 8 >= outsz) {
            snprintf(out + o, outsz - o, ", ...");
            return;
        }
        if (n_items > 0) {
            memcpy(out + o, ", ", 2);
            o += 2;
        }
        starts[n_items] = o;
        lens[n_items++] = n;
        memcpy(out + o, ex, n + 1);
        o += n;
    }
    if (n_items == 0)
        snprintf(out, outsz, "no usable platforms");
}

int oc_manifest_select_platform(const oc_manifest *m, const oc_platform *want, oc_error *err)
{
    if (!m || m->kind != OC_MANIFEST_INDEX) {
        oc_error_set(err, OC_E_USAGE, "platform selection needs an index");
        return -1;
    }
    if (!want || !want->os || !want->arch) {
        oc_error_set(err, OC_E_USAGE, "platform selection needs an os and an architecture");
        return -1;
    }
    int best = -1;
    long best_pref = -1;
    for (size_t i = 0; i < m->n_manifests && i < (size_t)INT32_MAX; i++) {
        const oc_platform *have = &m->platforms[i];
        if (!selectable(have) || !oc_platform_matches(want, have))
            continue;
        long pref = preference(want, have);
        if (pref > best_pref) {
            best = (int)i;
            best_pref = pref;
        }
    }
    if (best >= 0)
        return best;
    char offered[700];
    char *w = oc_platform_string(want);
    char ex[EXCERPT_BUF];
    list_offered(m, offered, sizeof offered);
    oc_error_set(err, OC_E_PLATFORM, "no manifest for platform %s; the index offers: %s",
                 w ? excerpt(w, ex, sizeof ex) : "?", offered);
    free(w);
    return -1;
}

/* ---- image config ---- */

void oc_image_config_free(oc_image_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_diff_ids; i++)
        free(c->diff_ids[i]);
    free(c->diff_ids);
    oc_platform_free(&c->platform);
    memset(c, 0, sizeof *c);
}

static int config_body(oc_image_config *c, const json_t *root, oc_error *err)
{
    static const char doc[] = "image config";
    const char *os;
    const char *arch;
    const char *variant;
    const char *type;
    if (!json_is_object(root)) {
        oc_error_set(err, OC_E_FORMAT, "%s is not a JSON object", doc);
        return -1;
    }
    const json_t *rootfs = json_object_get(root, "rootfs");
    if (!rootfs)
        return field_error(err, doc, "", "rootfs", "is missing");
    if (!json_is_object(rootfs))
        return field_error(err, doc, "", "rootfs", "is not an object");
    if (get_string(rootfs, doc, "rootfs", "type", 0, &type, err) != 0)
        return -1;
    if (type && strcmp(type, "layers") != 0)
        return field_error(err, doc, "rootfs", "type", "is not \"layers\"");
    const json_t *ids = json_object_get(rootfs, "diff_ids");
    if (!ids)
        return field_error(err, doc, "rootfs", "diff_ids", "is missing");
    if (!json_is_array(ids))
        return field_error(err, doc, "rootfs", "diff_ids", "is not an array");
    size_t n = json_array_size(ids);
    if (n > 0 && !(c->diff_ids = calloc(n, sizeof *c->diff_ids)))
        return nomem(err, doc);
    for (size_t i = 0; i < n; i++) {
        const json_t *id = json_array_get(ids, i);
        char key[40];
        snprintf(key, sizeof key, "diff_ids[%zu]", i);
        if (!json_is_string(id))
            return field_error(err, doc, "rootfs", key, "is not a string");
        if (strlen(json_string_value(id)) != json_string_length(id))
            return field_error(err, doc, "rootfs", key, "contains a NUL byte");
        if (check_digest(doc, "rootfs", key, json_string_value(id), err) != 0)
            return -1;
        if (!(c->diff_ids[i] = strdup(json_string_value(id))))
            return nomem(err, doc);
        c->n_diff_ids = i + 1;
    }
    if (get_string(root, doc, "", "os", 0, &os, err) != 0 ||
        get_string(root, doc, "", "architecture", 0, &arch, err) != 0 ||
        get_string(root, doc, "", "variant", 0, &variant, err) != 0)
        return -1;
    if ((os && replace(&c->platform.os, os) != 0) ||
        (arch && replace(&c->platform.arch, arch) != 0) ||
        (variant && *variant && replace(&c->platform.variant, variant) != 0))
        return nomem(err, doc);
    return 0;
}

int oc_image_config_parse(oc_image_config *c, const char *body, size_t len, oc_error *err)
{
    char ex[EXCERPT_BUF];
    if (!c) {
        oc_error_set(err, OC_E_USAGE, "oc_image_config_parse: no config to fill");
        return -1;
    }
    memset(c, 0, sizeof *c);
    if (!body || len == 0) {
        oc_error_set(err, OC_E_FORMAT, "image config is empty");
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_FLAGS, &je);
    if (!root) {
        oc_error_set(err, OC_E_FORMAT, "image config is not valid JSON (line %d, column %d): %s",
                     je.line, je.column, excerpt(je.text, ex, sizeof ex));
        return -1;
    }
    int rc = config_body(c, root, err);
    json_decref(root);
    if (rc != 0)
        oc_image_config_free(c);
    return rc;
}
