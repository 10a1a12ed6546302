/* test_catalog_batch.c - catalog.json read once and written in batches:
 * nothing is written until a flush, one flush writes every queued entry
 * with one rename, a flush with nothing queued writes nothing, entries
 * another process wrote meanwhile are read again (size/mtime/inode check)
 * and kept, several processes batching into one store all land, and a
 * failed write keeps the entries queued. The store's oci/index.json rides
 * in the same batches, with the same rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/store/catalog_batch.h"
#include "engine/store/oci_layout.h"
#include "engine/store/store.h"
#include "testutil.h"

static char base[256];
static char dir[300];
static char catalog[400];

static int setup(void **state)
{
    (void)state;
    if (tu_mkdtemp(base, sizeof base, "batch") != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s/store", base);
    snprintf(catalog, sizeof catalog, "%s/catalog.json", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmtree(base);
}

static oc_store *open_store(oc_store_mode mode)
{
    oc_error err;
    oc_store *s = oc_store_open(dir, mode, &err);
    if (!s)
        fail_msg("open %s: %s", dir, err.msg);
    return s;
}

static size_t on_disk(void)
{
    oc_store *s = open_store(OC_STORE_READ);
    oc_catalog *c = NULL;
    assert_int_equal(oc_store_catalog_load(s, &c, NULL), 0);
    size_t n = oc_catalog_count(c);
    oc_catalog_free(c);
    oc_store_close(s);
    return n;
}

static void add(oc_catalog_batch *b, const char *image, const char *tag)
{
    oc_error err;
    char *file = oc_catalog_manifest_name(image, tag);
    assert_int_equal(oc_catalog_batch_add(b, image, tag, file, &err), 0);
    free(file);
}

static void test_batches(void **state)
{
    (void)state;
    oc_error err;
    oc_store *s = open_store(OC_STORE_WRITE);
    oc_catalog_batch *b = oc_catalog_batch_open(s, &err);
    assert_non_null(b);
    assert_int_equal(oc_catalog_batch_flush(b, &err), 0); /* nothing queued */
    assert_int_equal(oc_catalog_batch_writes(b), 0);
    struct stat st;
    assert_int_equal(stat(catalog, &st), -1);
    for (int i = 0; i < 100; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "t%d", i);
        add(b, "lib/a", tag);
    }
    assert_int_equal(oc_catalog_batch_pending(b), 100);
    assert_non_null(oc_catalog_get(oc_catalog_batch_view(b), "lib/a", "t7")); /* seen at once */
    assert_int_equal(stat(catalog, &st), -1);                                 /* not written */
    assert_int_equal(oc_catalog_batch_flush(b, &err), 0);
    assert_int_equal(oc_catalog_batch_writes(b), 1);
    assert_int_equal(oc_catalog_batch_pending(b), 0);
    assert_int_equal(on_disk(), 100);
    assert_int_equal(oc_catalog_batch_flush(b, &err), 0);
    assert_int_equal(oc_catalog_batch_writes(b), 1);

    /* another writer adds an entry: our next flush reads it again and
     * keeps it */
    oc_store *other = open_store(OC_STORE_WRITE);
    assert_int_equal(
        oc_store_catalog_add(other, "lib/other", "v1", "manifest-lib_other-v1.json", &err), 0);
    oc_store_close(other);
    add(b, "lib/b", "v1");
    assert_int_equal(oc_catalog_batch_flush(b, &err), 0);
    assert_int_equal(oc_catalog_batch_rereads(b), 1);
    assert_int_equal(oc_catalog_batch_writes(b), 2);
    assert_int_equal(on_disk(), 102);
    assert_non_null(oc_catalog_get(oc_catalog_batch_view(b), "lib/other", "v1"));
    /* our own write is not mistaken for another writer's */
    add(b, "lib/b", "v2");
    assert_int_equal(oc_catalog_batch_flush(b, &err), 0);
    assert_int_equal(oc_catalog_batch_rereads(b), 1);
    assert_int_equal(on_disk(), 103);
    oc_catalog_batch_free(b);
    oc_store_close(s);
}

static char *a_descriptor(const char *image, const char *tag)
{
    oc_oci_desc d = {.media_type = "application/vnd.oci.image.manifest.v1+json",
                     .digest = "sha256:"
                               "1111111111111111111111111111111111111111111111111111111111111111",
                     .size = 1,
                     .image = image,
                     .tag = tag};
    oc_error err;
    return oc_oci_descriptor_text(&d, &err);
}

static size_t oci_on_disk(void)
{
    oc_store *s = open_store(OC_STORE_READ);
    oc_oci_index *x = NULL;
    oc_error err;
    assert_int_equal(oc_store_oci_index_load(s, &x, &err), 0);
    size_t n = oc_oci_index_count(x);
    oc_oci_index_free(x);
    oc_store_close(s);
    return n;
}

static void test_oci_batches(void **state)
{
    (void)state;
    oc_error err;
    oc_store *s = open_store(OC_STORE_WRITE);
    assert_int_equal(oc_store_oci_prepare(s, &err), 0);
    oc_catalog_batch *b = oc_catalog_batch_open(s, &err);
    assert_non_null(b);
    /* dropping what is not there queues nothing */
    assert_int_equal(oc_catalog_batch_oci_set(b, "x:v1", NULL, &err), 0);
    assert_int_equal(oc_catalog_batch_pending(b), 0);
    char *d1 = a_descriptor("x", "v1"), *d2 = a_descriptor("x", "v2");
    assert_int_equal(oc_catalog_batch_oci_set(b, "x:v1", d1, &err), 0);
    assert_int_equal(oc_catalog_batch_pending(b), 1);
    assert_non_null(oc_oci_index_digest(oc_catalog_batch_oci_view(b), "x:v1")); /* at once */
    assert_int_equal(oci_on_disk(), 0);
    assert_int_equal(oc_catalog_batch_flush(b, &err), 0);
    assert_int_equal(oci_on_disk(), 1);
    /* another writer's entry is read again and kept */
    oc_store *other = open_store(OC_STORE_WRITE);
    char *dy = a_descriptor("y", "v1");
    assert_int_equal(oc_store_oci_index_update(other, "y:v1", dy, &err), 0);
    free(dy);
    oc_store_close(other);
    assert_int_equal(oc_catalog_batch_oci_set(b, "x:v2", d2, &err), 0);
    assert_int_equal(oc_catalog_batch_flush(b, &err), 0);
    assert_int_equal(oci_on_disk(), 3);
    assert_non_null(oc_oci_index_digest(oc_catalog_batch_oci_view(b), "y:v1"));
    /* a drop */
    assert_int_equal(oc_catalog_batch_oci_set(b, "x:v1", NULL, &err), 0);
    assert_int_equal(oc_catalog_batch_flush(b, &err), 0);
    assert_int_equal(oci_on_disk(), 2);
    free(d1);
    free(d2);
    oc_catalog_batch_free(b);
    oc_store_close(s);
}

static void test_failed_write_keeps_entries(void **state)
{
    (void)state;
    oc_error err;
    oc_store *s = open_store(OC_STORE_WRITE);
    oc_catalog_batch *b = oc_catalog_batch_open(s, &err);
    assert_non_null(b);
    add(b, "lib/a", "v1");
    /* a directory where catalog.json should be: it cannot be read or
     * replaced (also as root) */
    assert_int_equal(mkdir(catalog, 0755), 0);
    assert_int_equal(oc_catalog_batch_flush(b, &err), -1);
    assert_int_equal(oc_catalog_batch_pending(b), 1);
    assert_int_equal(oc_catalog_batch_writes(b), 0);
    assert_int_equal(rmdir(catalog), 0);
    assert_int_equal(oc_catalog_batch_flush(b, &err), 0);
    assert_int_equal(on_disk(), 1);
    oc_catalog_batch_free(b);
    oc_store_close(s);
}

static void test_processes(void **state)
{
    (void)state;
    enum { PROCS = 4, EACH = 200, BATCH = 25 };
    oc_store *first = open_store(OC_STORE_WRITE);
    oc_error err0;
    assert_int_equal(oc_store_oci_prepare(first, &err0), 0);
    oc_store_close(first);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            oc_error err;
            oc_store *s = oc_store_open(dir, OC_STORE_WRITE, &err);
            oc_catalog_batch *b = s ? oc_catalog_batch_open(s, &err) : NULL;
            if (!b)
                _exit(2);
            for (int i = 0; i < EACH; i++) {
                char image[32], tag[32];
                snprintf(image, sizeof image, "proc%d", p);
                snprintf(tag, sizeof tag, "t%d", i);
                char ref[80];
                snprintf(ref, sizeof ref, "%s:%s", image, tag);
                char *d = a_descriptor(image, tag);
                if (oc_catalog_batch_add(b, image, tag, "manifest.json", &err) != 0 || !d ||
                    oc_catalog_batch_oci_set(b, ref, d, &err) != 0)
                    _exit(3);
                free(d);
                if ((i + 1) % BATCH == 0 && oc_catalog_batch_flush(b, &err) != 0)
                    _exit(4);
            }
            if (oc_catalog_batch_writes(b) != EACH / BATCH)
                _exit(5);
            oc_catalog_batch_free(b);
            oc_store_close(s);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(on_disk(), PROCS * EACH);
    assert_int_equal(oci_on_disk(), PROCS * EACH); /* no index.json entry lost either */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oci_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_keeps_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
