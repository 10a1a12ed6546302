/* fuzz_ref.c - libFuzzer harness for image references (engine/ref.h).
 *
 * Input: up to three strings separated by NUL bytes, P0 [NUL P1 [NUL P2]].
 *   oc_ref_parse(P0, NULL)              always
 *   oc_ref_parse(P0, P1)                when P1 is there (P1 = default registry)
 *   oc_ref_from_parts(P0, P1, P2)       when P2 is there (REGISTRY IMAGE TAG)
 *
 * Properties of every reference that parses:
 * - invariants: registry and repository set and canonical, a tag or a
 *   digest, the tag and digest grammars, no upper case in the repository;
 * - oc_ref_string round trip: parse(string(ref)) == ref, whenever the
 *   string is unambiguous (the registry looks like a host to the parser and
 *   the name is within the 255-byte limit);
 * - oc_ref_familiar round trip: parse(familiar(ref)) names the same
 *   registry, repository and tag (and the digest when there is no tag),
 *   under the same conditions; a Docker Hub repository whose first component
 *   itself looks like a host ("localhost/x") is ambiguous and skipped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image/ref.h"
#include "fuzz_common.h"

#define HUB "registry-1.docker.io"
#define NAME_MAX_LEN 255

/* The parser's rule for "the first component is a registry". */
static int looks_like_host(const char *s, size_t n)
{
    return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0) ||
           (n > 0 && s[0] == '[');
}

static int is_tag_char(char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
        return 1;
    return !first && (c == '.' || c == '-');
}

static void check_invariants(const oc_ref *r, const char *input)
{
    FZ_CHECK(r->registry && *r->registry, "no registry for \"%s\"", input);
    FZ_CHECK(r->repository && *r->repository, "no repository for \"%s\"", input);
    FZ_CHECK(r->tag || r->digest, "neither tag nor digest for \"%s\"", input);
    FZ_CHECK(oc_ref_tag_or_digest(r) != NULL, "tag_or_digest NULL for \"%s\"", input);
    FZ_CHECK(strcmp(oc_registry_canonical(r->registry), r->registry) == 0,
             "registry \"%s\" is not canonical", r->registry);
    size_t rl = strlen(r->repository);
    FZ_CHECK(rl <= NAME_MAX_LEN + 8, "repository of %zu bytes", rl);
    FZ_CHECK(r->repository[0] != '/' && r->repository[rl - 1] != '/' &&
                 !strstr(r->repository, "//"),
             "repository \"%s\" has an empty component", r->repository);
    for (const char *p = r->repository; *p; p++)
        FZ_CHECK((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
                     *p == '-' || *p == '/',
                 "repository \"%s\" has byte 0x%02x", r->repository, (unsigned char)*p);
    if (strcmp(r->registry, HUB) == 0)
        FZ_CHECK(strchr(r->repository, '/'), "hub repository \"%s\" lacks a namespace",
                 r->repository);
    if (r->tag) {
        size_t tl = strlen(r->tag);
        FZ_CHECK(tl >= 1 && tl <= 128, "tag of %zu bytes", tl);
        for (size_t i = 0; i < tl; i++)
            FZ_CHECK(is_tag_char(r->tag[i], i == 0), "tag \"%s\" byte %zu", r->tag, i);
    }
    if (r->digest)
        FZ_CHECK(fz_is_digest(r->digest), "bad digest \"%s\"", r->digest);
}

static void expect_same(const oc_ref *want, int with_digest, const char *text)
{
    oc_ref back;
    oc_error err;
    int rc = oc_ref_parse(&back, text, NULL, &err);
    FZ_CHECK(rc == 0, "\"%s\" (from %s/%s) does not parse back: %s", text, want->registry,
             want->repository, err.msg);
    const char *digest = with_digest ? want->digest : NULL;
    FZ_CHECK(fz_streq(back.registry, want->registry) &&
                 fz_streq(back.repository, want->repository) && fz_streq(back.tag, want->tag) &&
                 fz_streq(back.digest, digest),
             "\"%s\" parses to %s %s %s %s, expected %s %s %s %s", text, fz_str(back.registry),
             fz_str(back.repository), fz_str(back.tag), fz_str(back.digest), fz_str(want->registry),
             fz_str(want->repository), fz_str(want->tag), fz_str(digest));
    oc_ref_free(&back);
}

static void check_round_trips(const oc_ref *r)
{
    size_t reg_len = strlen(r->registry);
    size_t repo_len = strlen(r->repository);

    char *s = oc_ref_string(r);
    FZ_CHECK(s != NULL, "oc_ref_string returned NULL");
    if (looks_like_host(r->registry, reg_len) && reg_len + 1 + repo_len <= NAME_MAX_LEN)
        expect_same(r, 1, s);
    free(s);

    char *f = oc_ref_familiar(r);
    FZ_CHECK(f != NULL, "oc_ref_familiar returned NULL");
    int unambiguous;
    if (strcmp(r->registry, HUB) == 0) {
        const char *name = r->repository;
        if (strncmp(name, "library/", 8) == 0 && !strchr(name + 8, '/'))
            name += 8;
        const char *slash = strchr(name, '/');
        unambiguous = strlen(name) <= NAME_MAX_LEN &&
                      !(slash && looks_like_host(name, (size_t)(slash - name)));
        FZ_CHECK(strncmp(f, name, strlen(name)) == 0, "familiar \"%s\" does not start with \"%s\"",
                 f, name);
    } else {
        unambiguous =
            looks_like_host(r->registry, reg_len) && reg_len + 1 + repo_len <= NAME_MAX_LEN;
        FZ_CHECK(strncmp(f, r->registry, reg_len) == 0 && f[reg_len] == '/',
                 "familiar \"%s\" does not start with registry \"%s\"", f, r->registry);
    }
    if (unambiguous)
        expect_same(r, r->tag == NULL, f);
    free(f);
}

static void try_ref(int rc, oc_ref *r, const oc_error *err, const char *input)
{
    if (rc != 0) {
        FZ_CHECK(err->msg[0] != '\0', "failure without a message for \"%s\"", input);
        FZ_CHECK(!r->registry && !r->repository && !r->tag && !r->digest,
                 "failure left fields set for \"%s\"", input);
        return;
    }
    check_invariants(r, input);
    check_round_trips(r);
    oc_ref_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;
    char *p[3];
    size_t n = fz_split(data, size, &buf, p, 3);
    oc_ref r;
    oc_error err;

    err.msg[0] = '\0';
    try_ref(oc_ref_parse(&r, p[0], NULL, &err), &r, &err, p[0]);
    if (n >= 2) {
        err.msg[0] = '\0';
        try_ref(oc_ref_parse(&r, p[0], p[1], &err), &r, &err, p[0]);
    }
    if (n >= 3) {
        err.msg[0] = '\0';
        try_ref(oc_ref_from_parts(&r, p[0], p[1], p[2], &err), &r, &err, p[1]);
    }
    free(buf);
    return 0;
}
