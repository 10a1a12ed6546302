/* test_auth.c - WWW-Authenticate challenges, token responses, the Basic
 * header and docker config.json lookups (in a temporary DOCKER_CONFIG),
 * including malformed and hostile input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/registry/auth.h"

#define HUB_REALM "https://auth.docker.io/token"

typedef struct challenge_case {
    const char *header;
    oc_auth_scheme scheme;
    const char *realm, *service, *scope, *error;
} challenge_case;

static const challenge_case good_challenges[] = {
    {"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
     "scope=\"repository:library/busybox:pull\"",
     OC_AUTH_BEARER, HUB_REALM, "registry.docker.io", "repository:library/busybox:pull", NULL},
    {"Bearer scope=\"repository:a:pull\",service=\"svc\",realm=\"https://x/token\"", OC_AUTH_BEARER,
     "https://x/token", "svc", "repository:a:pull", NULL},
    {"Bearer realm=\"https://x/t\",scope=\"repository:a:pull,push\"", OC_AUTH_BEARER, "https://x/t",
     NULL, "repository:a:pull,push", NULL},
    {"Bearer realm = \"https://x/t\" , service = \"s\"  ,scope=\"a\"", OC_AUTH_BEARER,
     "https://x/t", "s", "a", NULL},
    {"  \tBearer\trealm=\"https://x/t\"\t", OC_AUTH_BEARER, "https://x/t", NULL, NULL, NULL},
    {"Basic realm=\"x\"", OC_AUTH_BASIC, "x", NULL, NULL, NULL},
    {"basic realm=\"Registry Realm\"", OC_AUTH_BASIC, "Registry Realm", NULL, NULL, NULL},
    {"Basic", OC_AUTH_BASIC, NULL, NULL, NULL, NULL},
    {"Bearer realm=\"https://x/t\",service=\"a \\\"quoted\\\" svc\"", OC_AUTH_BEARER, "https://x/t",
     "a \"quoted\" svc", NULL, NULL},
    {"Bearer realm=\"https://x/t\\\\\"", OC_AUTH_BEARER, "https://x/t\\", NULL, NULL, NULL},
    {"bearer realm=\"https://x/t\"", OC_AUTH_BEARER, "https://x/t", NULL, NULL, NULL},
    {"BEARER REALM=\"https://x/t\",SERVICE=\"s\"", OC_AUTH_BEARER, "https://x/t", "s", NULL, NULL},
    {"Bearer realm=https://x/t,service=registry.local:5000", OC_AUTH_BEARER, "https://x/t",
     "registry.local:5000", NULL, NULL},
    {"Bearer realm=\"http://127.0.0.1:5001/auth\",service=\"lab\",error=\"insufficient_scope\","
     "scope=\"repository:x:pull\"",
     OC_AUTH_BEARER, "http://127.0.0.1:5001/auth", "lab", "repository:x:pull",
     "insufficient_scope"},
    {"Bearer realm=\"https://x/t\",foo=\"bar\",baz=1,qux=\"a,b\"", OC_AUTH_BEARER, "https://x/t",
     NULL, NULL, NULL},
    {"Bearer realm=\"https://x/t\",,, service=\"s\",", OC_AUTH_BEARER, "https://x/t", "s", NULL,
     NULL},
    {"Bearer ,realm=\"https://x/t\"", OC_AUTH_BEARER, "https://x/t", NULL, NULL, NULL},
    {"Basic realm=\"b\", Bearer realm=\"https://x/t\"", OC_AUTH_BEARER, "https://x/t", NULL, NULL,
     NULL},
    {"Negotiate abc==, Basic realm=\"r\"", OC_AUTH_BASIC, "r", NULL, NULL, NULL},
    {"Negotiate, Bearer realm=\"https://x/t\"", OC_AUTH_BEARER, "https://x/t", NULL, NULL, NULL},
    {"Bearer realm=\"https://a/t\", Bearer realm=\"https://b/t\"", OC_AUTH_BEARER, "https://a/t",
     NULL, NULL, NULL},
    {"Bearer realm=\"HTTPS://X/T\"", OC_AUTH_BEARER, "HTTPS://X/T", NULL, NULL, NULL},
    {"Bearer realm=\"https://x/t\",service=\"\"", OC_AUTH_BEARER, "https://x/t", "", NULL, NULL},
};

static void check_str(const char *got, const char *want, const char *header, const char *what)
{
    if (!want && got)
        fail_msg("%s: %s is \"%s\", want none", header, what, got);
    if (want && (!got || strcmp(got, want) != 0))
        fail_msg("%s: %s is \"%s\", want \"%s\"", header, what, got ? got : "(null)", want);
}

static void test_challenge_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_challenges / sizeof good_challenges[0]; i++) {
        const challenge_case *c = &good_challenges[i];
        oc_auth_challenge ch;
        oc_error err = {0};
        if (oc_auth_parse_challenge(&ch, c->header, &err) != 0)
            fail_msg("%s: %s", c->header, err.msg);
        assert_int_equal(ch.scheme, c->scheme);
        check_str(ch.realm, c->realm, c->header, "realm");
        check_str(ch.service, c->service, c->header, "service");
        check_str(ch.scope, c->scope, c->header, "scope");
        check_str(ch.error, c->error, c->header, "error");
        oc_auth_challenge_free(&ch);
        assert_null(ch.realm);
    }
}

static const struct {
    const char *header;
    oc_errcode code;
    const char *why;
} bad_challenges[] = {
    {"", OC_E_FORMAT, "empty"},
    {"   ", OC_E_FORMAT, "empty"},
    {",,", OC_E_FORMAT, "empty"},
    {"Bearer", OC_E_FORMAT, "no realm"},
    {"Bearer service=\"x\"", OC_E_FORMAT, "no realm"},
    {"Bearer realm=", OC_E_FORMAT, "no realm"},
    {"Bearer realm=\"\",realm2=\"x\"", OC_E_FORMAT, "not an http"},
    {"Bearer realm=\"ftp://x/t\"", OC_E_FORMAT, "not an http"},
    {"Bearer realm=\"/token\"", OC_E_FORMAT, "not an http"},
    {"Bearer realm=\"https://x/t", OC_E_FORMAT, "not terminated"},
    {"Bearer realm=\"https://x/t\\", OC_E_FORMAT, "not terminated"},
    {"Bearer realm=\"https://x/\nt\"", OC_E_FORMAT, "control character"},
    {"Bearer realm=\"https://x/t\"\r\nX-Injected: 1", OC_E_FORMAT, "separated by ','"},
    {"Bearer realm=\"https://x/t\" service=\"y\"", OC_E_FORMAT, "separated by ','"},
    {"Bearer realm=\"https://a/t\",realm=\"https://b/t\"", OC_E_FORMAT, "twice"},
    {"Bearer realm=\"https://a/t\",REALM=\"https://b/t\"", OC_E_FORMAT, "twice"},
    {"Bearer realm=https://x\"y", OC_E_FORMAT, "bare value"},
    {"Bearer service=x,realm=", OC_E_FORMAT, "no value"},
    {"Bearer service=x,realm= ,scope=y", OC_E_FORMAT, "no value"},
    {"Bearer realm=,service=x", OC_E_FORMAT, "scheme"}, /* "realm=" reads as a token68 */
    {"=foo", OC_E_FORMAT, "scheme"},
    {"\"Bearer\" realm=\"https://x\"", OC_E_FORMAT, "scheme"},
    {"Bearer=\"x\"", OC_E_FORMAT, "scheme"},
    {"Bearer realm=\"https://x/t\",=x", OC_E_FORMAT, "parameter name"},
    {"Bearer realm=\"https://x/t\",{}", OC_E_FORMAT, "parameter name"},
    {"Negotiate", OC_E_UNSUPPORTED, "unsupported"},
    {"Digest realm=\"x\", nonce=\"y\"", OC_E_UNSUPPORTED, "unsupported"},
    {"garbage!!!", OC_E_UNSUPPORTED, "unsupported"},
    {"\x01\x02", OC_E_FORMAT, "scheme"},
};

static void test_challenge_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_challenges / sizeof bad_challenges[0]; i++) {
        oc_auth_challenge ch;
        oc_error err = {0};
        if (oc_auth_parse_challenge(&ch, bad_challenges[i].header, &err) != -1)
            fail_msg("\"%s\" should fail", bad_challenges[i].header);
        if (err.code != bad_challenges[i].code || !strstr(err.msg, bad_challenges[i].why))
            fail_msg("\"%s\": got %d \"%s\", want \"%s\"", bad_challenges[i].header, err.code,
                     err.msg, bad_challenges[i].why);
        assert_non_null(strstr(err.msg, "WWW-Authenticate \""));
        assert_null(strchr(err.msg, '\n'));
        assert_null(strchr(err.msg, '\r'));
        assert_int_equal(ch.scheme, OC_AUTH_NONE);
        assert_null(ch.realm);
        oc_auth_challenge_free(&ch);
    }
    oc_auth_challenge ch;
    oc_error err = {0};
    assert_int_equal(oc_auth_parse_challenge(&ch, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_int_equal(oc_auth_parse_challenge(NULL, "Basic", &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
}

static void test_challenge_hostile_long(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *h = malloc(n + 1);
    assert_non_null(h);
    memcpy(h, "Bearer realm=\"https://x/", 24);
    memset(h + 24, 'a', n - 24);
    h[n] = '\0';
    oc_auth_challenge ch;
    oc_error err = {0};
    assert_int_equal(oc_auth_parse_challenge(&ch, h, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_non_null(strstr(err.msg, "too long"));
    assert_true(strlen(err.msg) < 400);
    /* long but allowed: a big scope */
    size_t m = 12000;
    snprintf(h, n, "Bearer realm=\"https://x/t\",scope=\"");
    size_t o = strlen(h);
    memset(h + o, 's', m);
    memcpy(h + o + m, "\"", 2);
    assert_int_equal(oc_auth_parse_challenge(&ch, h, &err), 0);
    assert_int_equal(strlen(ch.scope), m);
    oc_auth_challenge_free(&ch);
    /* many unknown parameters */
    o = (size_t)snprintf(h, n, "Bearer realm=\"https://x/t\"");
    for (int i = 0; i < 1000; i++)
        o += (size_t)snprintf(h + o, n - o, ",p%d=\"v\"", i);
    assert_int_equal(oc_auth_parse_challenge(&ch, h, &err), 0);
    assert_string_equal(ch.realm, "https://x/t");
    oc_auth_challenge_free(&ch);
    free(h);
}

static const struct {
    const char *body;
    const char *token;
    int expires;
} good_tokens[] = {
    {"{\"token\":\"abc\"}", "abc", 60},
    {"{\"access_token\":\"xyz\",\"expires_in\":300}", "xyz", 300},
    {"{\"token\":\"t1\",\"access_token\":\"t2\",\"expires_in\":120}", "t1", 120},
    {"{\"access_token\":\"t2\",\"token\":\"t1\"}", "t1", 60},
    {"{\"token\":\"\",\"access_token\":\"x\"}", "x", 60},
    {"{\"token\":null,\"access_token\":\"x\"}", "x", 60},
    {"{\"token\":\"a\",\"expires_in\":0}", "a", 60},
    {"{\"token\":\"a\",\"expires_in\":-5}", "a", 60},
    {"{\"token\":\"a\",\"expires_in\":1}", "a", 1},
    {"{\"token\":\"a\",\"expires_in\":86400}", "a", 86400},
    {"{\"token\":\"a\",\"expires_in\":86401}", "a", 86400},
    {"{\"token\":\"a\",\"expires_in\":9223372036854775807}", "a", 86400},
    {"{\"token\":\"a\",\"expires_in\":-9223372036854775807}", "a", 60},
    {"{\"token\":\"a\",\"expires_in\":300.7}", "a", 300},
    {"{\"token\":\"a\",\"expires_in\":1e300}", "a", 86400},
    {"{\"token\":\"a\",\"expires_in\":-1e300}", "a", 60},
    {"{\"token\":\"a\",\"expires_in\":0.5}", "a", 60},
    {"{\"token\":\"a\",\"expires_in\":null}", "a", 60},
    {"{\"token\":\"eyJhbGciOiJFUzI1NiJ9.e30.sig-_+/=\",\"issued_at\":\"2024-01-01T00:00:00Z\","
     "\"refresh_token\":\"r\"}",
     "eyJhbGciOiJFUzI1NiJ9.e30.sig-_+/=", 60},
};

static void test_token_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_tokens / sizeof good_tokens[0]; i++) {
        char *token = NULL;
        int expires = -1;
        oc_error err = {0};
        if (oc_auth_parse_token_response(good_tokens[i].body, strlen(good_tokens[i].body), &token,
                                         &expires, &err) != 0)
            fail_msg("%s: %s", good_tokens[i].body, err.msg);
        assert_string_equal(token, good_tokens[i].token);
        if (expires != good_tokens[i].expires)
            fail_msg("%s: expires %d, want %d", good_tokens[i].body, expires,
                     good_tokens[i].expires);
        free(token);
    }
    /* expires_in may be ignored by the caller */
    char *token = NULL;
    assert_int_equal(oc_auth_parse_token_response("{\"token\":\"a\"}", 13, &token, NULL, NULL), 0);
    free(token);
}

static void test_token_bad(void **state)
{
    (void)state;
    const struct {
        const char *body, *why;
    } cases[] = {
        {"", "empty"},
        {"<html>", "not valid JSON"},
        {"[\"token\"]", "not a JSON object"},
        {"{}", "neither"},
        {"{\"token\":\"\"}", "neither"},
        {"{\"access_token\":null}", "neither"},
        {"{\"token\":5}", "\"token\" is not a string"},
        {"{\"token\":\"a\",\"access_token\":[]}", "\"access_token\" is not a string"},
        {"{\"token\":\"a b\"}", "not allowed in an HTTP header"},
        {"{\"token\":\"a\\r\\nX-Evil: 1\"}", "not allowed in an HTTP header"},
        {"{\"token\":\"\\u00e9\"}", "not allowed in an HTTP header"},
        {"{\"token\":\"a\\u0000b\"}", "not valid JSON"},
        {"{\"token\":\"a\",\"expires_in\":\"300\"}", "not a number"},
        {"{\"token\":\"a\",\"expires_in\":true}", "not a number"},
        {"{\"token\":\"a\",\"expires_in\":99999999999999999999999}", "not valid JSON"},
        {"{\"token\":\"a\"} trailing", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *token = (char *)"sentinel";
        int expires = -1;
        oc_error err = {0};
        if (oc_auth_parse_token_response(cases[i].body, strlen(cases[i].body), &token, &expires,
                                         &err) != -1)
            fail_msg("%s should fail", cases[i].body);
        if (err.code != OC_E_FORMAT || !strstr(err.msg, cases[i].why))
            fail_msg("%s: got %d \"%s\", want \"%s\"", cases[i].body, err.code, err.msg,
                     cases[i].why);
        assert_null(token);
    }
    oc_error err = {0};
    assert_int_equal(oc_auth_parse_token_response(NULL, 0, NULL, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    /* len is honoured: the body is cut before its end */
    char *token = NULL;
    assert_int_equal(oc_auth_parse_token_response("{\"token\":\"abc\"}", 8, &token, NULL, &err),
                     -1);
    assert_null(token);
}

static char *b64_decode_for_test(const char *b64)
{
    size_t n = strlen(b64);
    unsigned char *out = calloc(1, n + 1);
    assert_non_null(out);
    int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    assert_true(got >= 0);
    size_t len = (size_t)got;
    if (n >= 1 && b64[n - 1] == '=')
        len--;
    if (n >= 2 && b64[n - 2] == '=')
        len--;
    out[len] = '\0';
    return (char *)out;
}

static void test_basic_header(void **state)
{
    (void)state;
    const struct {
        const char *user, *pass, *want;
    } cases[] = {
        {"user", "pass", "Basic dXNlcjpwYXNz"},
        {"a", "", "Basic YTo="},
        {"", "", "Basic Og=="},
        {"ab", "c", "Basic YWI6Yw=="},
        {"Aladdin", "open sesame", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="},
        {"user", "p:a:ss", "Basic dXNlcjpwOmE6c3M="},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *h = oc_auth_basic_header(cases[i].user, cases[i].pass);
        assert_non_null(h);
        assert_string_equal(h, cases[i].want);
        free(h);
    }
    char *h = oc_auth_basic_header(NULL, NULL);
    assert_string_equal(h, "Basic Og==");
    free(h);
    /* round trip of a long, odd password */
    char pass[1001];
    for (size_t i = 0; i < 1000; i++)
        pass[i] = (char)(0x21 + (i * 7) % 94);
    pass[1000] = '\0';
    h = oc_auth_basic_header("me", pass);
    assert_non_null(h);
    assert_int_equal(strncmp(h, "Basic ", 6), 0);
    char *plain = b64_decode_for_test(h + 6);
    assert_int_equal(strncmp(plain, "me:", 3), 0);
    assert_string_equal(plain + 3, pass);
    free(plain);
    free(h);
}

/* ---- docker config.json ---- */

static char config_dir[256];
static char config_file[300];

static int config_setup(void **state)
{
    (void)state;
    snprintf(config_dir, sizeof config_dir, "%s/occy-auth-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(config_dir))
        return -1;
    snprintf(config_file, sizeof config_file, "%s/config.json", config_dir);
    return setenv("DOCKER_CONFIG", config_dir, 1);
}

static int config_teardown(void **state)
{
    (void)state;
    char path[400];
    unlink(config_file);
    rmdir(config_file);
    snprintf(path, sizeof path, "%s/.docker/config.json", config_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/.docker", config_dir);
    rmdir(path);
    rmdir(config_dir);
    unsetenv("DOCKER_CONFIG");
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void write_config(const char *text)
{
    write_file(config_file, text);
}

/* Looks registry up; checks rc and, when found, user and pass. */
static void expect(const char *registry, int rc, const char *user, const char *pass)
{
    char *u = (char *)"sentinel";
    char *p = (char *)"sentinel";
    oc_error err = {0};
    int got = oc_auth_docker_config_lookup(registry, &u, &p, &err);
    if (got != rc)
        fail_msg("%s: rc %d, want %d (%s)", registry, got, rc, err.msg);
    if (rc == 1) {
        assert_string_equal(u, user);
        assert_string_equal(p, pass);
        free(u);
        free(p);
    } else {
        assert_null(u);
        assert_null(p);
    }
}

/* base64("u:p"), base64("hub:secret"), base64("user:pa:ss:word") */
#define AUTH_UP "dTpw"
#define AUTH_HUB "aHViOnNlY3JldA=="
#define AUTH_COLONS "dXNlcjpwYTpzczp3b3Jk"

static void test_config_absent(void **state)
{
    (void)state;
    unlink(config_file);
    expect("quay.io", 0, NULL, NULL);
    char missing[400];
    snprintf(missing, sizeof missing, "%s/nope", config_dir);
    setenv("DOCKER_CONFIG", missing, 1);
    expect("quay.io", 0, NULL, NULL);
    setenv("DOCKER_CONFIG", config_dir, 1);
}

static void test_config_keys(void **state)
{
    (void)state;
    write_config("{\"auths\":{"
                 "\"quay.io\":{\"auth\":\"" AUTH_UP "\"},"
                 "\"https://ghcr.io\":{\"auth\":\"" AUTH_COLONS "\"},"
                 "\"https://registry.example.com/v1/\":{\"username\":\"ex\",\"password\":\"pw\"},"
                 "\"http://localhost:5000/\":{\"auth\":\"" AUTH_UP "\"},"
                 "\"https://index.docker.io/v1/\":{\"auth\":\"" AUTH_HUB "\"},"
                 "\"helper.io\":{},"
                 "\"https://helper.io/v1/\":{\"auth\":\"\",\"identitytoken\":\"x\"}"
                 "},\"credsStore\":\"desktop\"}");
    expect("quay.io", 1, "u", "p");
    expect("QUAY.IO", 1, "u", "p");
    expect("ghcr.io", 1, "user", "pa:ss:word");
    expect("registry.example.com", 1, "ex", "pw");
    expect("localhost:5000", 1, "u", "p");
    expect("localhost:5001", 0, NULL, NULL);
    expect("localhost", 0, NULL, NULL);
    expect("docker.io", 1, "hub", "secret");
    expect("registry-1.docker.io", 1, "hub", "secret");
    expect("index.docker.io", 1, "hub", "secret");
    expect("helper.io", 0, NULL, NULL);
    expect("example.com", 0, NULL, NULL);
    expect("io", 0, NULL, NULL);
}

static void test_config_preference(void **state)
{
    (void)state;
    write_config("{\"auths\":{\"https://quay.io/v1/\":{\"auth\":\"" AUTH_HUB "\"},"
                 "\"quay.io\":{\"auth\":\"" AUTH_UP "\"},"
                 "\"docker.io\":{\"auth\":\"" AUTH_UP "\"},"
                 "\"https://index.docker.io/v1/\":{\"auth\":\"" AUTH_HUB "\"}}}");
    expect("quay.io", 1, "u", "p");                     /* the exact key wins */
    expect("docker.io", 1, "u", "p");                   /* exact */
    expect("registry-1.docker.io", 1, "hub", "secret"); /* docker's Hub key */
    /* an empty exact entry falls through to another matching key */
    write_config("{\"auths\":{\"quay.io\":{},\"https://quay.io\":{\"auth\":\"" AUTH_UP "\"}}}");
    expect("quay.io", 1, "u", "p");
}

static void test_config_padding(void **state)
{
    (void)state;
    /* unpadded base64 and surrounding blanks are tolerated */
    write_config("{\"auths\":{\"a.io\":{\"auth\":\"aHViOnNlY3JldA\"},"
                 "\"b.io\":{\"auth\":\" dTpw\\n\"},"
                 "\"c.io\":{\"auth\":\"Og==\"}}}");
    expect("a.io", 1, "hub", "secret");
    expect("b.io", 1, "u", "p");
    expect("c.io", 1, "", "");
}

static void test_config_no_auths(void **state)
{
    (void)state;
    write_config("{}");
    expect("quay.io", 0, NULL, NULL);
    write_config("{\"auths\":null,\"credHelpers\":{\"quay.io\":\"x\"}}");
    expect("quay.io", 0, NULL, NULL);
    write_config("{\"auths\":{}}");
    expect("quay.io", 0, NULL, NULL);
}

static void test_config_malformed(void **state)
{
    (void)state;
    const struct {
        const char *text, *why;
    } cases[] = {
        {"", "not valid JSON"},
        {"{\"auths\":", "not valid JSON"},
        {"{\"auths\":{\"quay.io\":{\"auth\":\"dTpw\"}}", "not valid JSON"},
        {"[]", "not a JSON object"},
        {"{\"auths\":[]}", "\"auths\" is not an object"},
        {"{\"auths\":{\"quay.io\":\"dTpw\"}}", "is not an object"},
        {"{\"auths\":{\"quay.io\":{\"auth\":5}}}", "not a string"},
        {"{\"auths\":{\"quay.io\":{\"auth\":\"!!!!\"}}}", "not base64"},
        {"{\"auths\":{\"quay.io\":{\"auth\":\"dXNlcg==\"}}}", "not base64 of user:password"},
        {"{\"auths\":{\"quay.io\":{\"auth\":\"d\"}}}", "not base64"},
        {"{\"auths\":{\"quay.io\":{\"auth\":\"dTpw===\"}}}", "not base64"},
        {"{\"auths\":{\"quay.io\":{\"auth\":\"dT=w\"}}}", "not base64"},
        {"{\"auths\":{\"quay.io\":{\"auth\":\"dTpwAA==\"}}}", "not base64"}, /* "u:p\0" */
        {"{\"auths\":{\"quay.io\":{\"username\":1,\"password\":\"x\"}}}", "not a string"},
        {"{\"auths\":{\"quay.io\":{\"username\":\"u\",\"password\":[]}}}", "not a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_config(cases[i].text);
        char *u = NULL;
        char *p = NULL;
        oc_error err = {0};
        if (oc_auth_docker_config_lookup("quay.io", &u, &p, &err) != -1)
            fail_msg("%s should fail", cases[i].text);
        if (err.code != OC_E_FORMAT || !strstr(err.msg, cases[i].why))
            fail_msg("%s: got %d \"%s\", want \"%s\"", cases[i].text, err.code, err.msg,
                     cases[i].why);
        if (!strstr(err.msg, config_file))
            fail_msg("%s: message \"%s\" does not name %s", cases[i].text, err.msg, config_file);
        assert_null(u);
        assert_null(p);
    }
    /* a malformed entry for another registry does not matter */
    write_config("{\"auths\":{\"other.io\":{\"auth\":5},\"quay.io\":{\"auth\":\"dTpw\"}}}");
    expect("quay.io", 1, "u", "p");
}

static void test_config_not_a_file(void **state)
{
    (void)state;
    unlink(config_file);
    assert_int_equal(mkdir(config_file, 0700), 0);
    char *u = NULL;
    char *p = NULL;
    oc_error err = {0};
    assert_int_equal(oc_auth_docker_config_lookup("quay.io", &u, &p, &err), -1);
    assert_int_equal(err.code, OC_E_IO);
    assert_non_null(strstr(err.msg, config_file));
    assert_int_equal(rmdir(config_file), 0);
    assert_int_equal(oc_auth_docker_config_lookup(NULL, &u, &p, &err), -1);
    assert_int_equal(err.code, OC_E_USAGE);
    assert_int_equal(oc_auth_docker_config_lookup("", &u, &p, &err), -1);
    assert_int_equal(oc_auth_docker_config_lookup("quay.io", NULL, &p, &err), -1);
}

static void test_config_home(void **state)
{
    (void)state;
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char path[400];
    unsetenv("DOCKER_CONFIG");
    setenv("HOME", config_dir, 1);
    expect("quay.io", 0, NULL, NULL); /* no ~/.docker */
    snprintf(path, sizeof path, "%s/.docker", config_dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/.docker/config.json", config_dir);
    write_file(path, "{\"auths\":{\"quay.io\":{\"auth\":\"" AUTH_UP "\"}}}");
    expect("quay.io", 1, "u", "p");
    setenv("DOCKER_CONFIG", "", 1); /* empty means unset */
    expect("quay.io", 1, "u", "p");
    unsetenv("HOME");
    unsetenv("DOCKER_CONFIG");
    expect("quay.io", 0, NULL, NULL);
    if (old_home) {
        setenv("HOME", old_home, 1);
        free(old_home);
    }
    setenv("DOCKER_CONFIG", config_dir, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge_good),
        cmocka_unit_test(test_challenge_bad),
        cmocka_unit_test(test_challenge_hostile_long),
        cmocka_unit_test(test_token_good),
        cmocka_unit_test(test_token_bad),
        cmocka_unit_test(test_basic_header),
        cmocka_unit_test(test_config_absent),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_config_preference),
        cmocka_unit_test(test_config_padding),
        cmocka_unit_test(test_config_no_auths),
        cmocka_unit_test(test_config_malformed),
        cmocka_unit_test(test_config_not_a_file),
        cmocka_unit_test(test_config_home),
    };
    return cmocka_run_group_tests(tests, config_setup, config_teardown);
}
