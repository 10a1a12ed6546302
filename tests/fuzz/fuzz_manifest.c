/* fuzz_manifest.c - libFuzzer harness for manifests, indexes, platform
 * selection and image configs (engine/manifest.h).
 *
 * Input: a body, optionally preceded by a Content-Type and a NUL byte (a NUL
 * within the first 160 bytes splits them; otherwise the whole input is the
 * body). The body is given to:
 * - oc_manifest_sniff and oc_manifest_parse with the input's Content-Type
 *   (if any) and with each of a fixed list (none, empty, the six known
 *   types, generic types, parameters, an unknown type);
 * - oc_manifest_select_platform, for every index that parses, with a few
 *   wanted platforms (and the first line of the body as one, when
 *   oc_platform_parse accepts it);
 * - oc_image_config_parse.
 *
 * Properties: a parsed manifest is an image (valid config and layer
 * descriptors, no index entries) or an index (valid entries, os and arch
 * both set or both absent, no empty variant) with a supported media type;
 * sniff agrees with parse; a known Content-Type decides the kind; a selected
 * entry is in range, selectable and matches the wanted platform, and a
 * refusal is OC_E_PLATFORM; config diff_ids are valid digests. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image/manifest.h"
#include "fuzz_common.h"

#define CT_MAX 160

static const char *const content_types[] = {
    NULL,
    "",
    OC_MT_DOCKER_MANIFEST,
    OC_MT_DOCKER_LIST,
    OC_MT_OCI_MANIFEST,
    OC_MT_OCI_INDEX,
    OC_MT_DOCKER_V1,
    OC_MT_DOCKER_V1_SIGNED,
    "application/json",
    "text/plain; charset=utf-8",
    " APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON ; x=y",
    "application/x-unknown",
};

static const char *const wanted[] = {
    "linux/amd64",  "linux/arm64",  "linux/arm64/v8", "linux/arm",
    "linux/arm/v7", "linux/arm/v6", "windows/amd64",  "linux/x86_64/v3",
};

static int is_known(const char *mt)
{
    return mt && (strcmp(mt, OC_MT_DOCKER_MANIFEST) == 0 || strcmp(mt, OC_MT_DOCKER_LIST) == 0 ||
                  strcmp(mt, OC_MT_OCI_MANIFEST) == 0 || strcmp(mt, OC_MT_OCI_INDEX) == 0);
}

static void check_descriptor(const oc_descriptor *d, const char *what, size_t i)
{
    FZ_CHECK(d->media_type && *d->media_type, "%s %zu: no media type", what, i);
    FZ_CHECK(fz_is_digest(d->digest), "%s %zu: digest \"%s\"", what, i, fz_str(d->digest));
    FZ_CHECK(d->size >= 0, "%s %zu: size %lld", what, i, (long long)d->size);
}

static int selectable(const oc_platform *p)
{
    return p->os && p->arch && strcmp(p->os, "unknown") != 0 && strcmp(p->arch, "unknown") != 0;
}

static void check_select(const oc_manifest *m, const oc_platform *want)
{
    oc_error err;
    err.code = OC_OK;
    int r = oc_manifest_select_platform(m, want, &err);
    if (r < 0) {
        FZ_CHECK(r == -1 && err.code == OC_E_PLATFORM && err.msg[0], "refusal %d code %d \"%s\"", r,
                 (int)err.code, err.msg);
        return;
    }
    FZ_CHECK((size_t)r < m->n_manifests, "selected %d of %zu", r, m->n_manifests);
    const oc_platform *have = &m->platforms[r];
    FZ_CHECK(selectable(have), "selected entry %d is not selectable", r);
    FZ_CHECK(oc_platform_matches(want, have), "selected %s/%s does not match %s/%s",
             fz_str(have->os), fz_str(have->arch), want->os, want->arch);
    FZ_CHECK(oc_manifest_select_platform(m, want, &err) == r, "selection is not deterministic");
}

static void check_manifest(const oc_manifest *m, const char *ct, const char *body, size_t len,
                           const oc_platform *extra)
{
    FZ_CHECK(m->kind == OC_MANIFEST_IMAGE || m->kind == OC_MANIFEST_INDEX, "kind %d", (int)m->kind);
    FZ_CHECK(is_known(m->media_type), "media type \"%s\"", fz_str(m->media_type));
    FZ_CHECK(oc_manifest_sniff(ct, body, len) == m->kind, "sniff disagrees with parse (ct %s)",
             fz_str(ct));
    if (m->kind == OC_MANIFEST_IMAGE) {
        FZ_CHECK(m->n_manifests == 0 && !m->manifests, "image with index entries");
        check_descriptor(&m->config, "config", 0);
        for (size_t i = 0; i < m->n_layers; i++)
            check_descriptor(&m->layers[i], "layer", i);
        FZ_CHECK(strcmp(m->media_type, OC_MT_DOCKER_MANIFEST) == 0 ||
                     strcmp(m->media_type, OC_MT_OCI_MANIFEST) == 0,
                 "image with media type %s", m->media_type);
        oc_error err;
        oc_platform want = {"linux", "amd64", NULL};
        FZ_CHECK(oc_manifest_select_platform(m, &want, &err) == -1 && err.code == OC_E_USAGE,
                 "selection on an image manifest");
        return;
    }
    FZ_CHECK(m->n_layers == 0 && !m->layers, "index with layers");
    FZ_CHECK(strcmp(m->media_type, OC_MT_DOCKER_LIST) == 0 ||
                 strcmp(m->media_type, OC_MT_OCI_INDEX) == 0,
             "index with media type %s", m->media_type);
    for (size_t i = 0; i < m->n_manifests; i++) {
        check_descriptor(&m->manifests[i], "entry", i);
        const oc_platform *p = &m->platforms[i];
        FZ_CHECK(!p->os == !p->arch, "entry %zu: os %s arch %s", i, fz_str(p->os), fz_str(p->arch));
        FZ_CHECK(!p->variant || (*p->variant && p->os), "entry %zu: variant \"%s\"", i,
                 fz_str(p->variant));
    }
    for (size_t k = 0; k < sizeof wanted / sizeof wanted[0]; k++) {
        oc_platform want;
        oc_error err;
        FZ_CHECK(oc_platform_parse(&want, wanted[k], &err) == 0, "platform %s: %s", wanted[k],
                 err.msg);
        check_select(m, &want);
        oc_platform_free(&want);
    }
    if (extra)
        check_select(m, extra);
}

static void parse_with(const char *ct, const char *body, size_t len, const oc_platform *extra)
{
    oc_manifest m;
    oc_error err;
    err.msg[0] = '\0';
    oc_manifest_kind sniffed = oc_manifest_sniff(ct, body, len);
    FZ_CHECK(sniffed >= OC_MANIFEST_UNKNOWN && sniffed <= OC_MANIFEST_SCHEMA1, "sniff %d",
             (int)sniffed);
    if (oc_manifest_parse(&m, ct, body, len, &err) != 0) {
        FZ_CHECK(err.msg[0] != '\0', "parse failed without a message");
        FZ_CHECK(m.kind == OC_MANIFEST_UNKNOWN && !m.media_type && !m.layers && !m.manifests &&
                     !m.platforms,
                 "a failed parse left fields set");
        return;
    }
    check_manifest(&m, ct, body, len, extra);
    oc_manifest_free(&m);
}

static void check_config(const char *body, size_t len)
{
    oc_image_config c;
    oc_error err;
    if (oc_image_config_parse(&c, body, len, &err) != 0) {
        FZ_CHECK(!c.diff_ids && c.n_diff_ids == 0, "a failed config parse left fields set");
        return;
    }
    for (size_t i = 0; i < c.n_diff_ids; i++)
        FZ_CHECK(fz_is_digest(c.diff_ids[i]), "diff_id %zu \"%s\"", i, fz_str(c.diff_ids[i]));
    FZ_CHECK(!c.platform.variant || *c.platform.variant, "empty variant kept");
    oc_image_config_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size < CT_MAX ? size : CT_MAX);
    char *own_ct = NULL;
    const uint8_t *b = data;
    size_t blen = size;
    if (nul) {
        own_ct = fz_strndup(data, (size_t)(nul - data));
        b = nul + 1;
        blen = size - (size_t)(b - data);
    }
    /* the body in a buffer of its own, so ASan sees reads past its end */
    char *body = fz_xmalloc(blen);
    if (blen)
        memcpy(body, b, blen);

    /* the first line of the body as a wanted platform */
    oc_platform extra;
    oc_error perr;
    int have_extra = 0;
    const char *eol = blen ? memchr(body, '\n', blen) : NULL;
    size_t l1 = eol ? (size_t)(eol - body) : blen;
    if (l1 > 0 && l1 < 300) {
        char *line = fz_strndup((const uint8_t *)body, l1);
        if (oc_platform_parse(&extra, line, &perr) == 0) {
            FZ_CHECK(extra.os && extra.arch, "parsed platform without os or arch");
            char *s = oc_platform_string(&extra);
            FZ_CHECK(s != NULL, "platform string");
            free(s);
            have_extra = 1;
        } else {
            FZ_CHECK(!extra.os && !extra.arch && !extra.variant, "failed platform left fields");
        }
        free(line);
    }

    if (own_ct)
        parse_with(own_ct, body, blen, have_extra ? &extra : NULL);
    for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++)
        parse_with(content_types[i], body, blen, have_extra ? &extra : NULL);
    check_config(body, blen);

    if (have_extra)
        oc_platform_free(&extra);
    free(body);
    free(own_ct);
    return 0;
}
