/* test_serve_layout.c - serve's view of a store (engine/serve/layout.h)
 * on layouts written here: names and tags from index.json, manifests
 * reached through an index (a missing child is simply absent), blobs only
 * where a served manifest names them, bytes that do not match their digest
 * never served, referrers, reloads when index.json is replaced (and a
 * broken one keeping the previous view), what a moved tag named still
 * served by digest for a while, and a 0.2.0-only image served rewritten
 * only when allowed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/serve/layout.h"
#include "io/digest.h"
#include "io/fsutil.h"

typedef struct fixture {
    char dir[64];
    char log[8192];
    oc_srv_layout *l;
} fixture;

static void on_log(void *opaque, oc_log_level level, const char *line)
{
    fixture *f = opaque;
    (void)level;
    strncat(f->log, line, sizeof f->log - strlen(f->log) - 2);
    strcat(f->log, "\n");
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(rename(tmp, path), 0); /* a new inode, as the store side does */
}

/* text into blobs/ under its own digest; hex receives it */
static void blob(fixture *f, const char *text, char hex[OC_SHA256_HEX_LEN + 1])
{
    oc_sha256_buf_hex(text, strlen(text), hex);
    char name[128];
    snprintf(name, sizeof name, "oci/blobs/sha256/%s", hex);
    write_file(f->dir, name, text);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/test_serve_layout_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char p[128];
    snprintf(p, sizeof p, "%s/oci", f->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/oci/blobs", f->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/oci/blobs/sha256", f->dir);
    mkdir(p, 0755);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    oc_srv_layout_free(f->l);
    oc_error err;
    oc_remove_tree(f->dir, &err);
    free(f);
    return 0;
}

/* a layout of f's store; retire_seconds as in layout.h (0: the default) */
static oc_srv_layout *open_layout(fixture *f, int allow_rewritten, int retire_seconds)
{
    oc_srv_layout_opts o = {.store = f->dir,
                            .allow_rewritten = allow_rewritten,
                            .retire_seconds = retire_seconds,
                            .log = on_log,
                            .log_opaque = f};
    oc_error err;
    oc_srv_layout *l = oc_srv_layout_new(&o, &err);
    assert_non_null(l);
    return l;
}

#define DESC(mt, ref)                                                                              \
    "{\"mediaType\":\"" mt "\",\"digest\":\"sha256:%s\",\"size\":%zu,\"annotations\":"             \
    "{\"org.opencontainers.image.ref.name\":\"" ref "\"}}"
#define MT_M "application/vnd.oci.image.manifest.v1+json"
#define MT_I "application/vnd.oci.image.index.v1+json"

static void view(void **state)
{
    fixture *f = *state;
    f->l = open_layout(f, 0, 0);
    oc_error err;
    /* no index.json yet: an empty view */
    assert_int_equal(oc_srv_layout_refresh(f->l, &err), 1);
    size_t n;
    oc_srv_layout_repo_names(f->l, &n);
    assert_int_equal(n, 0);

    char cfg[65], layer[65], m1[65], idx[65], art[65], bad[65], missing[65], secret[65];
    blob(f, "{\"architecture\":\"amd64\",\"os\":\"linux\"}", cfg);
    blob(f, "layer bytes", layer);
    blob(f, "not referenced by anything", secret);
    char text[4096];
    snprintf(text, sizeof text,
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_M "\",\"config\":{\"mediaType\":"
             "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\",\"size\":38},"
             "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":"
             "\"sha256:%s\",\"size\":11}]}",
             cfg, layer);
    blob(f, text, m1);
    size_t m1_size = strlen(text);
    oc_sha256_buf_hex("never written", 13, missing);
    snprintf(text, sizeof text,
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_I "\",\"manifests\":["
             "{\"mediaType\":\"" MT_M "\",\"digest\":\"sha256:%s\",\"size\":%zu},"
             "{\"mediaType\":\"" MT_M "\",\"digest\":\"sha256:%s\",\"size\":5}]}",
             m1, m1_size, missing);
    blob(f, text, idx);
    size_t idx_size = strlen(text);
    snprintf(text, sizeof text,
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_M "\",\"artifactType\":\"application/"
             "x.sig\",\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":"
             "\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\","
             "\"size\":2},\"layers\":[],\"subject\":{\"mediaType\":\"" MT_M "\",\"digest\":"
             "\"sha256:%s\",\"size\":%zu},\"annotations\":{\"k\":\"v\"}}",
             m1, m1_size);
    blob(f, text, art);
    size_t art_size = strlen(text);
    /* a manifest whose file does not hold its digest's bytes */
    oc_sha256_buf_hex("the real bytes", 14, bad);
    char name[128];
    snprintf(name, sizeof name, "oci/blobs/sha256/%s", bad);
    write_file(f->dir, name, "{\"schemaVersion\":2,\"manifests\":[]}");

    char index[8192];
    /* clang-format off */
    static const char listed[] = "{\"schemaVersion\":2,\"manifests\":["
        DESC(MT_M, "127.0.0.1:5000/fixtures/x:v1") ","
        DESC(MT_M, "127.0.0.1:5000/fixtures/x:sha256:%s") ","
        DESC(MT_I, "quay.io/org/y:latest") ","
        DESC(MT_I, "busybox:broken") "]}";
    /* clang-format on */
    snprintf(index, sizeof index, listed, m1, m1_size, art, art_size, art, idx, idx_size, bad,
             (size_t)34);
    write_file(f->dir, "oci/index.json", index);
    assert_int_equal(oc_srv_layout_refresh(f->l, &err), 1);
    assert_non_null(strstr(f->log, "busybox:broken"));
    const char *const *names = oc_srv_layout_repo_names(f->l, &n);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "fixtures/x");
    assert_string_equal(names[1], "org/y");
    assert_null(oc_srv_layout_repo(f->l, "library/busybox"));

    const oc_srv_repo *x = oc_srv_layout_repo(f->l, "fixtures/x");
    assert_non_null(x);
    const oc_srv_tag *tags = oc_srv_repo_tags(x, &n);
    assert_int_equal(n, 1); /* the digest entry is no tag */
    assert_string_equal(tags[0].tag, "v1");
    const oc_srv_manifest *m = oc_srv_repo_tag(x, "v1");
    assert_non_null(m);
    assert_string_equal(m->hex, m1);
    assert_string_equal(m->media_type, MT_M);
    assert_int_equal(m->size, m1_size);
    assert_non_null(oc_srv_repo_manifest(x, art));
    assert_non_null(oc_srv_repo_blob(x, cfg));
    assert_non_null(oc_srv_repo_blob(x, layer));
    assert_null(oc_srv_repo_blob(x, secret));
    assert_null(oc_srv_repo_manifest(x, idx));
    const oc_srv_manifest *const *refs = oc_srv_repo_referrers(x, m1, &n);
    assert_int_equal(n, 1);
    assert_string_equal(refs[0]->hex, art);
    assert_string_equal(refs[0]->artifact_type, "application/x.sig");
    assert_non_null(refs[0]->annotations);
    oc_srv_repo_referrers(x, cfg, &n);
    assert_int_equal(n, 0);

    const oc_srv_repo *y = oc_srv_layout_repo(f->l, "org/y");
    assert_non_null(y);
    assert_non_null(oc_srv_repo_tag(y, "latest"));
    assert_true(oc_srv_repo_tag(y, "latest")->is_index);
    assert_non_null(oc_srv_repo_manifest(y, m1)); /* a child of the listed index */
    assert_null(oc_srv_repo_manifest(y, missing));
    assert_non_null(oc_srv_repo_blob(y, layer));
    assert_null(oc_srv_repo_tag(y, "v1"));

    /* unchanged: nothing read */
    assert_int_equal(oc_srv_layout_refresh(f->l, &err), 0);

    /* a broken index.json keeps the view, and is reported once */
    write_file(f->dir, "oci/index.json", "{\"manifests\": [");
    assert_int_equal(oc_srv_layout_refresh(f->l, &err), -1);
    assert_int_equal(oc_srv_layout_refresh(f->l, &err), 0);
    assert_non_null(oc_srv_layout_repo(f->l, "fixtures/x"));

    /* a new index.json: a new tag, the old image gone */
    static const char moved[] =
        "{\"schemaVersion\":2,\"manifests\":[" DESC(MT_M, "127.0.0.1:5000/fixtures/x:v2") "]}";
    snprintf(index, sizeof index, moved, m1, m1_size);
    write_file(f->dir, "oci/index.json", index);
    assert_int_equal(oc_srv_layout_refresh(f->l, &err), 1);
    x = oc_srv_layout_repo(f->l, "fixtures/x");
    assert_non_null(oc_srv_repo_tag(x, "v2"));
    assert_null(oc_srv_repo_tag(x, "v1"));
    assert_null(oc_srv_layout_repo(f->l, "org/y"));
    /* what x no longer reaches is still served by digest (a pull under way) */
    assert_non_null(oc_srv_repo_manifest(x, art));
    oc_srv_repo_referrers(x, m1, &n);
    assert_int_equal(n, 0);
}

/* A tag that moves: the old image's manifest and layer stay served by
 * digest in that repository (not in another), across later views, until
 * retire_seconds pass; with retire_seconds < 0 they go at once. */
static void retired(void **state)
{
    fixture *f = *state;
    char cfg[65], layers[3][65], ms[3][65];
    size_t sizes[3];
    blob(f, "{\"architecture\":\"amd64\",\"os\":\"linux\"}", cfg);
    for (int i = 0; i < 3; i++) {
        char text[1024];
        snprintf(text, sizeof text, "layer %d", i);
        blob(f, text, layers[i]);
        snprintf(text, sizeof text,
                 "{\"schemaVersion\":2,\"mediaType\":\"" MT_M "\",\"config\":{\"mediaType\":"
                 "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\","
                 "\"size\":38},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1."
                 "tar\",\"digest\":\"sha256:%s\",\"size\":7}]}",
                 cfg, layers[i]);
        blob(f, text, ms[i]);
        sizes[i] = strlen(text);
    }
    static const char one[] = "{\"schemaVersion\":2,\"manifests\":[" DESC(
        MT_M, "r/moving:latest") "," DESC(MT_M, "r/other:v1") "]}";
    char index[4096];
    oc_error err;
    for (int pass = 0; pass < 3; pass++) {
        static const int retire[] = {0, -1, 1};
        f->l = open_layout(f, 0, retire[pass]);
        for (int i = 0; i < 3; i++) {
            /* latest moves 0 -> 1 -> 2; r/other keeps image 2 */
            snprintf(index, sizeof index, one, ms[i], sizes[i], ms[2], sizes[2]);
            write_file(f->dir, "oci/index.json", index);
            assert_int_equal(oc_srv_layout_refresh(f->l, &err), 1);
            if (i == 1 && retire[pass] > 0)
                sleep(2); /* image 0 retired at this view, image 1 two seconds later */
        }
        const oc_srv_repo *r = oc_srv_layout_repo(f->l, "r/moving");
        const oc_srv_repo *other = oc_srv_layout_repo(f->l, "r/other");
        assert_string_equal(oc_srv_repo_tag(r, "latest")->hex, ms[2]);
        assert_null(oc_srv_repo_manifest(other, ms[0]));
        assert_null(oc_srv_repo_blob(other, layers[1]));
        if (retire[pass] == 0) { /* an hour: both earlier images */
            for (int i = 0; i < 2; i++) {
                assert_non_null(oc_srv_repo_manifest(r, ms[i]));
                assert_non_null(oc_srv_repo_blob(r, layers[i]));
            }
        } else if (retire[pass] < 0) {
            assert_null(oc_srv_repo_manifest(r, ms[0]));
            assert_null(oc_srv_repo_blob(r, layers[1]));
        } else { /* one second: image 0 retired two seconds ago is gone, image 1 stays */
            assert_null(oc_srv_repo_manifest(r, ms[0]));
            assert_null(oc_srv_repo_blob(r, layers[0]));
            assert_non_null(oc_srv_repo_manifest(r, ms[1]));
            assert_non_null(oc_srv_repo_blob(r, layers[1]));
        }
        oc_srv_layout_free(f->l);
        f->l = NULL;
    }
}

static void rewritten(void **state)
{
    fixture *f = *state;
    /* a 0.2.0 image: catalog, manifest file, config, one layer.tar */
    const char *tar = "pretend this is a tar";
    char diff[65], lhex[65], chex[65];
    oc_sha256_buf_hex(tar, strlen(tar), diff);
    oc_sha256_buf_hex("compressed", 10, lhex);
    char text[2048], name[256];
    snprintf(text, sizeof text, "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}",
             diff);
    oc_sha256_buf_hex(text, strlen(text), chex);
    snprintf(name, sizeof name, "%s.json", chex);
    write_file(f->dir, name, text);
    snprintf(name, sizeof name, "%s/%s", f->dir, lhex);
    mkdir(name, 0755);
    snprintf(name, sizeof name, "%s/layer.tar", lhex);
    write_file(f->dir, name, tar);
    snprintf(text, sizeof text,
             "[{\"Config\":\"%s.json\",\"RepoTags\":[\"busybox:latest\"],\"Layers\":[\"%s/"
             "layer.tar\"]}]",
             chex, lhex);
    write_file(f->dir, "manifest-busybox-latest.json", text);
    write_file(f->dir, "catalog.json",
               "{\"busybox\":{\"latest\":\"manifest-busybox-latest.json\"}}");

    oc_error err;
    f->l = open_layout(f, 0, 0);
    assert_int_equal(oc_srv_layout_refresh(f->l, &err), 1);
    assert_null(oc_srv_layout_repo(f->l, "library/busybox"));
    assert_non_null(strstr(f->log, "1 image of"));
    assert_non_null(strstr(f->log, "--allow-rewritten"));
    oc_srv_layout_stats st;
    oc_srv_layout_get_stats(f->l, &st);
    assert_int_equal(st.not_served, 1);
    oc_srv_layout_free(f->l);

    f->log[0] = '\0';
    f->l = open_layout(f, 1, 0);
    assert_int_equal(oc_srv_layout_refresh(f->l, &err), 1);
    const oc_srv_repo *r = oc_srv_layout_repo(f->l, "library/busybox");
    assert_non_null(r);
    const oc_srv_manifest *m = oc_srv_repo_tag(r, "latest");
    assert_non_null(m);
    assert_non_null(m->bytes);
    assert_non_null(strstr(f->log, "rewritten manifest"));
    char hex[65];
    oc_sha256_buf_hex(m->bytes, m->size, hex);
    assert_string_equal(hex, m->hex);
    assert_non_null(strstr(m->bytes, "application/vnd.oci.image.layer.v1.tar"));
    assert_non_null(strstr(m->bytes, diff));
    const oc_srv_blob *b = oc_srv_repo_blob(r, diff);
    assert_non_null(b);
    assert_int_equal(b->kind, OC_SRV_BLOB_LAYER_TAR);
    char *path = oc_srv_layout_file(f->l, diff, b);
    snprintf(name, sizeof name, "%s/%s/layer.tar", f->dir, lhex);
    assert_string_equal(path, name);
    free(path);
    b = oc_srv_repo_blob(r, chex);
    assert_non_null(b);
    assert_int_equal(b->kind, OC_SRV_BLOB_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(view, setup, teardown),
        cmocka_unit_test_setup_teardown(rewritten, setup, teardown),
        cmocka_unit_test_setup_teardown(retired, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
