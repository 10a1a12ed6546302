/* test_config.c - the mirror's JSON config, the parts added for whole
 * repositories: "tags_page_size" per registry and "repositories" with
 * semver, exclude and latest, looked up under any spelling of the
 * repository; and the clear errors for what is wrong in them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/registry/config.h"

static void test_repositories(void **state)
{
    (void)state;
    const char *text = "{\"registries\": {\"127.0.0.1:5000\": {\"insecure\": true, "
                       "\"tags_page_size\": 50}},"
                       " \"repositories\": {"
                       "  \"nginx\": {\"semver\": \">=1.24 <2\", \"exclude\": [\".*-alpine\"], "
                       "\"latest\": 3},"
                       "  \"127.0.0.1:5000/team/app\": {\"latest\": 1}}}";
    oc_config c;
    oc_error err;
    assert_int_equal(oc_config_parse(&c, text, strlen(text), "cfg", &err), 0);
    const oc_registry_config *r = oc_config_registry(&c, "127.0.0.1:5000");
    assert_non_null(r);
    assert_int_equal(r->tags_page_size, 50);
    const oc_repo_config *n = oc_config_repository(&c, "docker.io", "library/nginx");
    assert_non_null(n);
    assert_string_equal(n->semver, ">=1.24 <2");
    assert_int_equal(n->n_exclude, 1);
    assert_string_equal(n->exclude[0], ".*-alpine");
    assert_int_equal(n->latest, 3);
    assert_non_null(oc_config_repository(&c, "registry-1.docker.io", "library/nginx"));
    const oc_repo_config *a = oc_config_repository(&c, "127.0.0.1:5000", "team/app");
    assert_non_null(a);
    assert_null(a->semver);
    assert_int_equal(a->latest, 1);
    assert_null(oc_config_repository(&c, "127.0.0.1:5000", "team/other"));
    oc_config_free(&c);
}

static void test_errors(void **state)
{
    (void)state;
    struct {
        const char *text, *says;
    } bad[] = {
        {"{\"repositories\": {\"nginx\": {\"semver\": \">=1.2 <\"}}}", "semver range"},
        {"{\"repositories\": {\"nginx\": {\"exclude\": [\"(a\"]}}}", "(a"},
        {"{\"repositories\": {\"nginx\": {\"exclude\": \".*\"}}}", "list of regexes"},
        {"{\"repositories\": {\"nginx\": {\"latest\": 0}}}", "latest"},
        {"{\"repositories\": {\"nginx\": {\"lastest\": 3}}}", "lastest"},
        {"{\"repositories\": {\"nginx:1.2\": {\"latest\": 3}}}", "no tag"},
        {"{\"repositories\": {\"Bad Name\": {}}}", "Bad Name"},
        {"{\"repositories\": []}", "repositories"},
        {"{\"registries\": {\"r.example\": {\"tags_page_size\": 0}}}", "tags_page_size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        oc_config c;
        oc_error err;
        oc_error_clear(&err);
        if (oc_config_parse(&c, bad[i].text, strlen(bad[i].text), "cfg", &err) == 0)
            fail_msg("accepted: %s", bad[i].text);
        assert_int_equal(err.code, OC_E_USAGE);
        if (!strstr(err.msg, bad[i].says))
            fail_msg("error for %s does not say \"%s\": %s", bad[i].text, bad[i].says, err.msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repositories),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
