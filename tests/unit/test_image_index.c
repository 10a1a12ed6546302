/* test_image_index.c - the store's image index: a run that reads the
 * manifest files records them; the next run finds every image without
 * reading a file (one stat each) and writes nothing; a manifest file that
 * changed is read again; an index that is damaged, or names files that are
 * gone, costs reads and never gives a wrong answer; markers seeded from the
 * index are trusted only while their file is unchanged; two processes'
 * indexes merge. */
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

#include "engine/store/image_index.h"
#include "engine/store/store.h"
#include "testutil.h"

static char base[256], dir[300];

static int setup(void **state)
{
    (void)state;
    if (tu_mkdtemp(base, sizeof base, "index") != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s/store", base);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmtree(base);
}

static oc_store *open_store(void)
{
    oc_error err;
    oc_store *s = oc_store_open(dir, OC_STORE_WRITE, &err);
    if (!s)
        fail_msg("open: %s", err.msg);
    return s;
}

/* A manifest file of ours for image:tag at manifest digest d. */
static void put_manifest(const char *image, const char *tag, char d)
{
    char *name = oc_catalog_manifest_name(image, tag);
    char path[600], hex[65];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(hex, d, 64);
    hex[64] = '\0';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "[{\"Config\": \"%s.json\", \"ImageName\": \"%s\", \"Layers\": [\"%s/layer.tar\"], "
            "\"Occystrap\": {\"manifest_digest\": \"sha256:%s\", \"tag\": \"%s\"}, "
            "\"RepoTags\": [\"%s:%s\"]}]\n",
            hex, image, hex, hex, tag, image, tag);
    assert_int_equal(fclose(f), 0);
    free(name);
}

static void expect(oc_image_index *x, oc_catalog *c, const char *image, const char *tag, char d)
{
    oc_store_image si;
    oc_error err;
    assert_int_equal(oc_image_index_lookup(x, c, image, tag, &si, &err), 0);
    char want[80];
    snprintf(want, sizeof want, "sha256:%.*s", 64,
             "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    memset(want + 7, d, 64);
    assert_string_equal(si.manifest_digest, want);
    assert_string_equal(si.image_name, image);
    assert_int_equal(si.n_layers, 1);
    assert_int_equal(si.config_hex[0], d);
    assert_true(si.has_ours);
    oc_store_image_free(&si);
}

static void test_index(void **state)
{
    (void)state;
    oc_error err;
    oc_catalog *c = oc_catalog_new(&err);
    oc_store *s = open_store();
    put_manifest("reg.example/a", "v1", 'a');
    put_manifest("reg.example/b", "v1", 'b');
    oc_image_index *x = oc_image_index_open(s);
    expect(x, c, "reg.example/a", "v1", 'a');
    expect(x, c, "reg.example/b", "v1", 'b');
    assert_int_equal(oc_image_index_misses(x), 2);
    oc_store_image si;
    assert_int_equal(oc_image_index_lookup(x, c, "reg.example/none", "v1", &si, &err), 1);
    assert_int_equal(oc_image_index_save(x, &err), 0);
    oc_image_index_free(x);
    oc_store_close(s);

    /* the next run: no file read, nothing written */
    char idx[400];
    snprintf(idx, sizeof idx, "%s/.occystrap/images.idx", dir);
    struct stat before, after;
    assert_int_equal(stat(idx, &before), 0);
    s = open_store();
    x = oc_image_index_open(s);
    expect(x, c, "reg.example/a", "v1", 'a');
    expect(x, c, "reg.example/b", "v1", 'b');
    assert_int_equal(oc_image_index_misses(x), 0);
    /* a manifest file rewritten (a new fetch): read again */
    sleep(1);
    put_manifest("reg.example/b", "v1", 'c');
    expect(x, c, "reg.example/b", "v1", 'c');
    assert_int_equal(oc_image_index_misses(x), 1);
    /* a file gone: not found, whatever the index says */
    char *gone = oc_catalog_manifest_name("reg.example/a", "v1");
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, gone);
    free(gone);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(oc_image_index_lookup(x, c, "reg.example/a", "v1", &si, &err), 1);
    assert_int_equal(oc_image_index_save(x, &err), 0);
    assert_int_equal(stat(idx, &after), 0);
    assert_true(after.st_ino != before.st_ino);
    oc_image_index_free(x);
    x = oc_image_index_open(s);
    assert_int_equal(oc_image_index_save(x, &err), 0); /* nothing new: not written */
    struct stat again;
    assert_int_equal(stat(idx, &again), 0);
    assert_true(again.st_ino == after.st_ino);
    oc_image_index_free(x);
    oc_store_close(s);

    /* a damaged index: ignored line by line, the files read instead */
    FILE *f = fopen(idx, "a");
    fputs(
        "I\tbroken\n\tM\tzz\nI\treg.example/b\tv1\tmanifest-reg.example_b-v1.json\t1\t2\t3\t4\t1\t"
        "sha256:x\t-\tx\tnothex\t-\n",
        f);
    fclose(f);
    s = open_store();
    x = oc_image_index_open(s);
    expect(x, c, "reg.example/b", "v1", 'c');
    oc_image_index_free(x);
    oc_store_close(s);
    FILE *g = fopen(idx, "w");
    fputs("not an index at all", g);
    fclose(g);
    s = open_store();
    x = oc_image_index_open(s);
    expect(x, c, "reg.example/b", "v1", 'c');
    assert_int_equal(oc_image_index_misses(x), 1);
    oc_image_index_free(x);
    oc_store_close(s);
    oc_catalog_free(c);
}

static void test_markers_and_merge(void **state)
{
    (void)state;
    oc_error err;
    oc_catalog *c = oc_catalog_new(&err);
    char hex[65];
    memset(hex, 'e', 64);
    hex[64] = '\0';
    oc_store *s = open_store();
    oc_blob_mark m;
    memset(&m, 0, sizeof m);
    snprintf(m.digest, sizeof m.digest, "sha256:%s", hex);
    m.size = 12;
    assert_int_equal(oc_store_mark_write(s, hex, &m, &err), 0);
    put_manifest("reg.example/a", "v1", 'a');
    oc_image_index *x = oc_image_index_open(s);
    expect(x, c, "reg.example/a", "v1", 'a');
    assert_int_equal(oc_image_index_save(x, &err), 0); /* the marker goes in too */
    oc_image_index_free(x);
    oc_store_close(s);

    /* another process's index, written meanwhile, is merged with ours */
    s = open_store();
    x = oc_image_index_open(s);
    assert_true(oc_store_marks_count(s) >= 1); /* seeded from the index */
    oc_store *other = open_store();
    put_manifest("reg.example/z", "v9", 'f');
    oc_image_index *y = oc_image_index_open(other);
    expect(y, c, "reg.example/z", "v9", 'f');
    assert_int_equal(oc_image_index_save(y, &err), 0);
    oc_image_index_free(y);
    oc_store_close(other);
    put_manifest("reg.example/b", "v1", 'b');
    expect(x, c, "reg.example/b", "v1", 'b');
    assert_int_equal(oc_image_index_save(x, &err), 0);
    oc_image_index_free(x);
    oc_store_close(s);
    s = open_store();
    x = oc_image_index_open(s);
    expect(x, c, "reg.example/a", "v1", 'a');
    expect(x, c, "reg.example/b", "v1", 'b');
    expect(x, c, "reg.example/z", "v9", 'f');
    assert_int_equal(oc_image_index_misses(x), 0);
    /* a seeded marker whose file changed is read again (here: damaged) */
    char mp[600];
    snprintf(mp, sizeof mp, "%s/.occystrap/blobs/%s.json", dir, hex);
    sleep(1);
    FILE *f = fopen(mp, "w");
    fputs("{}", f);
    fclose(f);
    oc_blob_mark got;
    assert_int_equal(oc_store_mark_read(s, hex, &got, &err), -1);
    char *p = NULL;
    uint64_t size = 0;
    assert_int_equal(oc_store_have_layer(s, m.digest, "sha256:00", &p, &size), 0);
    oc_image_index_free(x);
    oc_store_close(s);
    oc_catalog_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markers_and_merge, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
