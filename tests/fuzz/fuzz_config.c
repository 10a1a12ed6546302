/* fuzz_config.c - libFuzzer harness for the JSON configuration of mirror
 * runs (engine/config.h, oc_config_parse).
 *
 * Input: the text of a --config file.
 *
 * Properties: a failure says why (as a usage error, or out of memory) and
 * leaves an empty config; a parsed config has every value within the
 * documented range (jobs 1-4096, retries 1-100, stall_timeout 1-3600,
 * concurrency 1-1024, requests_per_second > 0, insecure -1/0/1), registry
 * names in canonical form, credentials as a pair, and oc_config_registry
 * finds a registry for each name (under its other Docker Hub spellings
 * too); oc_config_free leaves an empty config. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/registry/config.h"
#include "engine/image/ref.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly size bytes, so ASan sees reads past the end */
    char *text = fz_xmalloc(size);
    if (size)
        memcpy(text, data, size);
    oc_config c;
    oc_error err;
    err.msg[0] = '\0';
    if (oc_config_parse(&c, text, size, "fuzz.json", &err) != 0) {
        FZ_CHECK(err.code == OC_E_USAGE || err.code == OC_E_NOMEM, "failure code %d: %s",
                 (int)err.code, err.msg);
        FZ_CHECK(err.msg[0] != '\0', "failure without a message");
        FZ_CHECK(!c.registries && c.n_registries == 0 && !c.jobs && !c.retries && !c.stall_timeout,
                 "failure left fields set");
        free(text);
        return 0;
    }
    FZ_CHECK(c.jobs <= 4096, "jobs %u", c.jobs);
    FZ_CHECK(c.retries >= 0 && c.retries <= 100, "retries %d", c.retries);
    FZ_CHECK(c.stall_timeout >= 0 && c.stall_timeout <= 3600, "stall_timeout %ld", c.stall_timeout);
    FZ_CHECK(c.n_registries == 0 || c.registries, "registries NULL");
    for (size_t i = 0; i < c.n_registries; i++) {
        const oc_registry_config *r = &c.registries[i];
        FZ_CHECK(r->name, "registry %zu has no name", i);
        FZ_CHECK(strcmp(oc_registry_canonical(r->name), r->name) == 0, "name \"%s\" not canonical",
                 r->name);
        FZ_CHECK(r->insecure >= -1 && r->insecure <= 1, "insecure %d", r->insecure);
        FZ_CHECK(r->concurrency <= 1024, "concurrency %u", r->concurrency);
        FZ_CHECK(r->requests_per_second == 0 ||
                     (r->requests_per_second > 0 && isfinite(r->requests_per_second)),
                 "requests_per_second %g", r->requests_per_second);
        FZ_CHECK(!r->username == !r->password, "credentials not a pair for \"%s\"", r->name);
        const oc_registry_config *found = oc_config_registry(&c, r->name);
        FZ_CHECK(found && strcmp(found->name, r->name) == 0, "\"%s\" not found", r->name);
        if (strcmp(r->name, "registry-1.docker.io") == 0)
            FZ_CHECK(oc_config_registry(&c, "docker.io") == found &&
                         oc_config_registry(&c, "index.docker.io") == found,
                     "Docker Hub spellings disagree");
    }
    oc_config_free(&c);
    FZ_CHECK(!c.registries && c.n_registries == 0, "free left registries");
    free(text);
    return 0;
}
