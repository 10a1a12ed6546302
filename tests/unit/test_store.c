/* test_store.c - the store on disk without a registry: layout and locks,
 * leftovers of dead runs cleaned but a live run's scratch kept, markers and
 * have_layer, writing images (emit_dir), verify finding damage, recreate
 * and export (members read back with libarchive), gc, catalog writers in
 * several processes at once, and the lookup errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "engine/emit_dir.h"
#include "engine/store/recreate.h"
#include "engine/store/store.h"
#include "engine/store/store_gc.h"
#include "engine/store/store_list.h"
#include "engine/store/store_relist.h"
#include "engine/store/store_verify.h"
#include "io/digest.h"
#include "io/storelock.h"
#include "testutil.h"

static char base[512];
static char dir[600];

static int setup(void **state)
{
    (void)state;
    if (tu_mkdtemp(base, sizeof base, "store") != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s/store", base);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmtree(base);
}

static char *path_in(const char *rel)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, rel);
    return buf[k];
}

static int exists(const char *rel)
{
    struct stat st;
    return lstat(path_in(rel), &st) == 0;
}

static void put(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static oc_store *open_store(oc_store_mode mode)
{
    oc_error err;
    oc_error_clear(&err);
    oc_store *s = oc_store_open(dir, mode, &err);
    if (!s)
        fail_msg("open %s: %s", dir, err.msg);
    return s;
}

/* ---- a fake pulled image ---- */

typedef struct fake_layer {
    const char *content; /* the "tar" */
    size_t repeat;       /* content repeated this many times */
} fake_layer;

typedef struct fake_image {
    oc_pulled_image img;
    char bodies[4][64];
} fake_image;

static void sha_hex(const void *data, size_t len, char out[OC_SHA256_HEX_LEN + 1])
{
    oc_sha256_buf_hex(data, len, out);
}

/* Layer files are written into the run directory, as a pull would. */
static void make_image(fake_image *f, oc_store *s, const char *name, const fake_layer *layers,
                       size_t n)
{
    memset(f, 0, sizeof *f);
    oc_pulled_image *img = &f->img;
    img->layers = calloc(n, sizeof *img->layers);
    img->n_layers = n;
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++) {
        oc_pulled_layer *l = &img->layers[i];
        size_t one = strlen(layers[i].content), len = one * layers[i].repeat;
        char *data = malloc(len + 1);
        for (size_t r = 0; r < layers[i].repeat; r++)
            memcpy(data + r * one, layers[i].content, one);
        char hex[OC_SHA256_HEX_LEN + 1], blob[OC_SHA256_HEX_LEN + 1];
        sha_hex(data, len, hex);
        char *salted = malloc(len + 5);
        memcpy(salted, "blob", 4);
        memcpy(salted + 4, data, len);
        sha_hex(salted, len + 4, blob);
        free(salted);
        assert_true(asprintf(&l->digest, "sha256:%s", blob) > 0);
        memcpy(l->hex, blob, sizeof l->hex);
        assert_true(asprintf(&l->diff_id, "sha256:%s", hex) > 0);
        assert_true(asprintf(&l->path, "%s/%s-%zu.tar", oc_store_run_dir(s), name, i) > 0);
        put(l->path, data, len);
        l->tar_size = len;
        l->blob_size = len / 2 + 1;
        json_array_append_new(ids, json_string(l->diff_id));
        free(data);
    }
    json_t *cfg = json_pack("{s:s, s:s, s:{s:s, s:o}}", "architecture", "amd64", "os", "linux",
                            "rootfs", "type", "layers", "diff_ids", ids);
    img->config_body = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(cfg);
    img->config_len = strlen(img->config_body);
    sha_hex(img->config_body, img->config_len, img->config_hex);
    assert_true(asprintf(&img->config_digest, "sha256:%s", img->config_hex) > 0);
    img->manifest_digest =
        strdup("sha256:"
               "0000000000000000000000000000000000000000000000000000000000000000");
    img->manifest_media_type = strdup("application/vnd.docker.distribution.manifest.v2+json");
    img->platform = strdup("linux/amd64");
}

static void free_image(fake_image *f)
{
    oc_pulled_image *img = &f->img;
    for (size_t i = 0; i < img->n_layers; i++) {
        free(img->layers[i].digest);
        free(img->layers[i].diff_id);
        free(img->layers[i].path);
    }
    free(img->layers);
    free(img->config_body);
    free(img->config_digest);
    free(img->manifest_digest);
    free(img->manifest_media_type);
    free(img->platform);
}

static int emit_no_catalog;

static void emit(oc_store *s, fake_image *f, const char *image, const char *tag)
{
    char repo_tag[256];
    snprintf(repo_tag, sizeof repo_tag, "reg.example/%s:%s", image, tag);
    oc_emit_dir_opts o = {.image = image,
                          .tag = tag,
                          .repo_tag = repo_tag,
                          .unique_names = 1,
                          .registry = "reg.example",
                          .repository = image,
                          .no_catalog = emit_no_catalog};
    oc_error err;
    oc_error_clear(&err);
    /* emit_dir moves the files and clears the paths; keep our copies to free */
    char *paths[8] = {0};
    for (size_t i = 0; i < f->img.n_layers && i < 8; i++)
        paths[i] = f->img.layers[i].path;
    if (oc_emit_dir(s, &f->img, &o, &err) != 0)
        fail_msg("emit: %s", err.msg);
    for (size_t i = 0; i < f->img.n_layers && i < 8; i++) {
        if (!f->img.layers[i].reused)
            assert_null(f->img.layers[i].path); /* moved into the store */
        f->img.layers[i].path = paths[i];
    }
}

/* ---- tests ---- */

static void test_layout_and_modes(void **state)
{
    (void)state;
    oc_error err;
    oc_error_clear(&err);
    assert_null(oc_store_open(dir, OC_STORE_READ, &err));
    assert_int_equal(err.code, OC_E_NOTFOUND);
    assert_non_null(strstr(err.msg, dir));
    assert_null(oc_store_open(dir, OC_STORE_GC, &err));

    oc_store *s = open_store(OC_STORE_WRITE);
    assert_true(exists(".occystrap/blobs"));
    assert_true(exists(".occystrap/lock"));
    const char *run = oc_store_run_dir(s);
    assert_non_null(run);
    assert_non_null(strstr(run, "/.tmp/run-"));
    struct stat st;
    assert_int_equal(stat(run, &st), 0);
    char run_copy[1024];
    snprintf(run_copy, sizeof run_copy, "%s", run);
    oc_store_close(s);
    assert_int_not_equal(stat(run_copy, &st), 0);
    assert_int_equal(count_entries(path_in(".tmp")), 0);

    /* a reader of a store we never wrote (0.2.0) creates nothing */
    char plain[700];
    snprintf(plain, sizeof plain, "%s/plain", base);
    assert_int_equal(mkdir(plain, 0755), 0);
    oc_store *r = oc_store_open(plain, OC_STORE_READ, &err);
    assert_non_null(r);
    assert_null(oc_store_run_dir(r));
    oc_store_close(r);
    assert_int_equal(count_entries(plain), 0);
}

static void test_leftovers(void **state)
{
    (void)state;
    oc_store *s = open_store(OC_STORE_WRITE);
    oc_store_close(s);
    /* a killed run: its run directory and a stray file */
    assert_int_equal(mkdir(path_in(".tmp/run-dead01"), 0700), 0);
    put(path_in(".tmp/run-dead01/partial.tar"), "x", 1);
    put(path_in(".tmp/.tmp-catalog.json-123"), "{", 1);
    assert_int_equal(mkdir(path_in(".tmp/.new-abc"), 0700), 0);

    /* alone on the store: everything in .tmp goes */
    oc_store *a = open_store(OC_STORE_WRITE);
    assert_int_equal(count_entries(path_in(".tmp")), 1);
    assert_false(exists(".tmp/run-dead01"));

    /* with a running at work: only dead run directories go */
    assert_int_equal(mkdir(path_in(".tmp/run-dead02"), 0700), 0);
    put(path_in(".tmp/loose"), "y", 1);
    oc_store *b = open_store(OC_STORE_WRITE);
    assert_false(exists(".tmp/run-dead02"));
    assert_true(exists(".tmp/loose")); /* may belong to a live writer */
    struct stat st;
    assert_int_equal(stat(oc_store_run_dir(a), &st), 0); /* a's scratch survives b's start */
    assert_int_equal(stat(oc_store_run_dir(b), &st), 0);
    assert_int_equal(count_entries(path_in(".tmp")), 3);

    /* gc waits for writers; while they run the store lock is not free */
    int fd = oc_lock_open(path_in(".occystrap/lock"), 0, NULL);
    assert_true(fd >= 0);
    assert_int_equal(oc_lock_take(fd, OC_LOCK_EXCLUSIVE, 0, "lock", NULL), 1);
    oc_store_close(a);
    assert_int_equal(oc_lock_take(fd, OC_LOCK_EXCLUSIVE, 0, "lock", NULL), 1);
    oc_store_close(b);
    assert_int_equal(oc_lock_take(fd, OC_LOCK_EXCLUSIVE, 0, "lock", NULL), 0);
    oc_lock_close(fd);

    oc_store *g = open_store(OC_STORE_GC);
    assert_int_equal(count_entries(path_in(".tmp")), 0);
    oc_store_close(g);
}

static void test_markers(void **state)
{
    (void)state;
    oc_store *s = open_store(OC_STORE_WRITE);
    const char *hex = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *diff = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    oc_blob_mark m, got;
    oc_error err;
    oc_error_clear(&err);
    assert_int_equal(oc_store_mark_read(s, hex, &got, &err), 0);
    char *path = NULL;
    uint64_t size = 0;
    char digest[80];
    snprintf(digest, sizeof digest, "sha256:%s", hex);
    assert_int_equal(oc_store_have_layer(s, digest, diff, &path, &size), 0);

    /* layer.tar in place but no marker yet: not known-good */
    char rel[100];
    snprintf(rel, sizeof rel, "%s", hex);
    assert_int_equal(mkdir(path_in(rel), 0755), 0);
    snprintf(rel, sizeof rel, "%s/layer.tar", hex);
    put(path_in(rel), "0123456789", 10);
    assert_int_equal(oc_store_have_layer(s, digest, diff, &path, &size), 0);

    memset(&m, 0, sizeof m);
    m.is_layer = 1;
    snprintf(m.digest, sizeof m.digest, "sha256:%s", hex);
    snprintf(m.diff_id, sizeof m.diff_id, "%s", diff);
    m.size = 7;
    m.tar_size = 10;
    assert_int_equal(oc_store_mark_write(s, hex, &m, &err), 0);
    assert_int_equal(oc_store_mark_read(s, hex, &got, &err), 1);
    assert_true(got.is_layer);
    assert_string_equal(got.digest, digest);
    assert_string_equal(got.diff_id, diff);
    assert_int_equal(got.size, 7);
    assert_int_equal(got.tar_size, 10);
    assert_int_equal(strlen(got.verified_at), 20);

    assert_int_equal(oc_store_have_layer(s, digest, diff, &path, &size), 1);
    assert_int_equal(size, 10);
    assert_non_null(strstr(path, rel));
    free(path);
    path = NULL;
    /* another diff_id, a truncated file, a malformed marker: fetch again */
    assert_int_equal(oc_store_have_layer(s, digest, "sha256:cc", &path, &size), 0);
    put(path_in(rel), "01234", 5);
    assert_int_equal(oc_store_have_layer(s, digest, diff, &path, &size), 0);
    put(path_in(rel), "0123456789", 10);
    snprintf(rel, sizeof rel, ".occystrap/blobs/%s.json", hex);
    put(path_in(rel), "{\"kind\": \"layer\"", 16);
    assert_int_equal(oc_store_mark_read(s, hex, &got, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    assert_int_equal(oc_store_have_layer(s, digest, diff, &path, &size), 0);
    /* a marker that names another blob */
    m.digest[10] = 'f';
    assert_int_equal(oc_store_mark_write(s, hex, &m, &err), 0);
    assert_int_equal(oc_store_mark_read(s, hex, &got, &err), -1);
    assert_null(path);
    oc_store_close(s);
}

typedef struct reports {
    int damaged;
    int notes;
    char last[2048];
} reports;

static void on_report(oc_verify_finding kind, const char *file, const char *msg, void *opaque)
{
    reports *r = opaque;
    if (kind == OC_VERIFY_DAMAGED)
        r->damaged++;
    else
        r->notes++;
    snprintf(r->last, sizeof r->last, "%s: %s", file, msg);
}

static reports verify(void)
{
    oc_store *s = open_store(OC_STORE_READ);
    reports r = {0};
    oc_verify_stats st;
    oc_error err;
    oc_error_clear(&err);
    assert_int_equal(oc_store_verify(s, on_report, &r, &st, &err), 0);
    assert_int_equal((int)st.damaged, r.damaged);
    oc_store_close(s);
    return r;
}

/* Members of a tar: names in order and their contents concatenated. */
static int read_tar(const char *path, char names[][128], size_t max, char **manifest)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
    struct archive_entry *e;
    int n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true((size_t)n < max);
        snprintf(names[n++], 128, "%s", archive_entry_pathname(e));
        if (strcmp(archive_entry_pathname(e), "manifest.json") == 0) {
            size_t len = (size_t)archive_entry_size(e);
            *manifest = calloc(1, len + 1);
            assert_int_equal(archive_read_data(a, *manifest, len), (la_ssize_t)len);
        }
    }
    archive_read_free(a);
    return n;
}

static void test_write_verify_recreate_gc(void **state)
{
    (void)state;
    oc_store *s = open_store(OC_STORE_WRITE);
    const fake_layer base_layers[] = {{"base layer one ", 3000}, {"base layer two ", 10}};
    const fake_layer a_layers[] = {base_layers[0], base_layers[1], {"only in a ", 100}};
    const fake_layer b_layers[] = {
        base_layers[0], base_layers[1], {"only in b ", 100}, base_layers[1]};
    fake_image a, b;
    make_image(&a, s, "a", a_layers, 3);
    emit(s, &a, "org/a", "v1");
    /* b's first two layers are in the store now: a pull would reuse them */
    make_image(&b, s, "b", b_layers, 4);
    for (int i = 0; i < 2; i++) {
        char *p = NULL;
        uint64_t size = 0;
        assert_int_equal(
            oc_store_have_layer(s, b.img.layers[i].digest, b.img.layers[i].diff_id, &p, &size), 1);
        assert_int_equal(size, b.img.layers[i].tar_size);
        unlink(b.img.layers[i].path);
        free(b.img.layers[i].path);
        b.img.layers[i].path = p;
        b.img.layers[i].reused = 1;
    }
    unlink(b.img.layers[3].path);
    free(b.img.layers[3].path);
    b.img.layers[3].path = b.img.layers[1].path; /* a repeated layer shares its file */
    b.img.layers[3].reused = 1;
    char *shared = b.img.layers[1].path;
    emit(s, &b, "org/b", "v1");
    b.img.layers[1].path = shared;
    b.img.layers[3].path = NULL;
    oc_store_close(s);

    assert_true(exists("catalog.json"));
    assert_true(exists("manifest-org_a-v1.json"));
    assert_true(exists("manifest-org_b-v1.json"));
    reports r = verify();
    assert_int_equal(r.damaged, 0);
    assert_int_equal(r.notes, 0);

    /* list */
    s = open_store(OC_STORE_READ);
    json_t *doc = oc_store_list(s, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "images")), 2);
    assert_int_equal(json_integer_value(json_object_get(doc, "distinct_layers")), 4);
    json_t *first = json_array_get(json_object_get(doc, "images"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "image")), "org/a");
    assert_string_equal(json_string_value(json_object_get(first, "registry")), "reg.example");
    json_decref(doc);

    /* recreate one image, then both: shared layers once */
    char tar1[700], tar2[700];
    snprintf(tar1, sizeof tar1, "%s/a.tar", base);
    snprintf(tar2, sizeof tar2, "%s/ab.tar", base);
    oc_recreate_item one = {"org/a", "v1"};
    oc_recreate_stats st;
    oc_error err;
    oc_error_clear(&err);
    assert_int_equal(oc_recreate(s, &one, 1, tar1, NULL, &st, &err), 0);
    assert_int_equal(st.images, 1);
    assert_int_equal(st.layers, 3);
    char names[32][128];
    char *manifest = NULL;
    int n = read_tar(tar1, names, 32, &manifest);
    assert_int_equal(n, 8); /* config, 3 x (dir, layer.tar), manifest.json */
    assert_non_null(strstr(names[0], a.img.config_hex));
    assert_string_equal(names[7], "manifest.json");
    assert_non_null(strstr(manifest, "reg.example/org/a:v1"));
    free(manifest);
    manifest = NULL;

    oc_recreate_item both[] = {{"org/a", "v1"}, {"org/b", "v1"}, {"org/a", "v1"}};
    assert_int_equal(oc_recreate(s, both, 3, tar2, NULL, &st, &err), 0);
    assert_int_equal(st.images, 2);
    assert_int_equal(st.layers, 4);
    assert_int_equal(st.layers_dups, 3);
    n = read_tar(tar2, names, 32, &manifest);
    assert_int_equal(n, 1 + 6 + 1 + 2 + 1);
    json_t *list = json_loads(manifest, 0, NULL);
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(json_array_size(json_object_get(json_array_get(list, 1), "Layers")), 4);
    json_decref(list);
    free(manifest);

    /* unknown image or tag */
    oc_recreate_item missing = {"org/a", "v9"};
    assert_int_equal(oc_recreate(s, &missing, 1, tar1, NULL, &st, &err), -1);
    assert_int_equal(err.code, OC_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "its tags: v1"));
    oc_store_close(s);

    /* damage: one flipped byte, then a truncated layer */
    char rel[100];
    snprintf(rel, sizeof rel, "%s/layer.tar", a.img.layers[2].hex);
    int fd = open(path_in(rel), O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 5), 1);
    r = verify();
    assert_int_equal(r.damaged, 1);
    assert_non_null(strstr(r.last, rel));
    assert_non_null(strstr(r.last, "hashes to"));
    assert_int_equal(pwrite(fd, "l", 1, 5), 1);
    assert_int_equal(ftruncate(fd, 10), 0);
    close(fd);
    r = verify();
    assert_int_equal(r.damaged, 2); /* size against the marker, and the hash */
    put(path_in(rel), "only in a only in a only in a only in a only in a ", 50);
    fd = open(path_in(rel), O_WRONLY | O_APPEND);
    for (int i = 0; i < 95; i++)
        assert_int_equal(write(fd, "only in a ", 10), 10);
    close(fd);
    r = verify();
    assert_int_equal(r.damaged, 0);

    /* gc: nothing to do, then b dropped from the catalog and its file removed */
    s = open_store(OC_STORE_GC);
    oc_gc_stats gs;
    assert_int_equal(oc_store_gc(s, 0, NULL, NULL, &gs, &err), 0);
    assert_int_equal(gs.layers + gs.configs + gs.markers, 0);
    assert_int_equal(gs.kept_layers, 4);
    oc_store_close(s);
    const char *only_a = "{\"org/a\": {\"v1\": \"manifest-org_a-v1.json\"}}";
    put(path_in("catalog.json"), only_a, strlen(only_a));
    assert_int_equal(unlink(path_in("manifest-org_b-v1.json")), 0);
    s = open_store(OC_STORE_GC);
    assert_int_equal(oc_store_gc(s, 1, NULL, NULL, &gs, &err), 0);
    assert_int_equal(gs.layers, 1);
    assert_int_equal(gs.configs, 1);
    assert_int_equal(gs.markers, 2);
    assert_int_equal(gs.bytes, 1000 + b.img.config_len);
    assert_true(exists(b.img.layers[2].hex)); /* dry run */
    assert_int_equal(oc_store_gc(s, 0, NULL, NULL, &gs, &err), 0);
    assert_int_equal(gs.layers, 1);
    assert_false(exists(b.img.layers[2].hex));
    assert_true(exists(b.img.layers[0].hex)); /* shared with a */
    oc_store_close(s);
    r = verify();
    assert_int_equal(r.damaged, 0);
    assert_int_equal(r.notes, 0);

    /* a manifest file that does not parse: gc refuses to guess */
    put(path_in("manifest-broken-v1.json"), "[{", 2);
    s = open_store(OC_STORE_GC);
    assert_int_equal(oc_store_gc(s, 0, NULL, NULL, &gs, &err), -1);
    assert_non_null(strstr(err.msg, "not collecting"));
    oc_store_close(s);
    r = verify();
    assert_int_equal(r.damaged, 1);
    unlink(path_in("manifest-broken-v1.json"));
    free_image(&a);
    free_image(&b);
}

/* A config without a marker that does not hash to its name is a 0.2.0
 * re-serialised copy: a note, not damage. With a marker it is damage. */
static void test_legacy_config(void **state)
{
    (void)state;
    oc_store *s = open_store(OC_STORE_WRITE);
    const fake_layer layers[] = {{"legacy ", 50}};
    fake_image a;
    make_image(&a, s, "a", layers, 1);
    emit(s, &a, "old", "latest");
    oc_store_close(s);
    char name[100];
    snprintf(name, sizeof name, "%s.json", a.img.config_hex);
    json_t *cfg = json_loads(a.img.config_body, 0, NULL);
    char *pretty = json_dumps(cfg, JSON_INDENT(4) | JSON_SORT_KEYS);
    json_decref(cfg);
    put(path_in(name), pretty, strlen(pretty));
    reports r = verify();
    assert_int_equal(r.damaged, 1);
    snprintf(name, sizeof name, ".occystrap/blobs/%s.json", a.img.config_hex);
    assert_int_equal(unlink(path_in(name)), 0);
    r = verify();
    assert_int_equal(r.damaged, 0);
    assert_int_equal(r.notes, 1);
    assert_non_null(strstr(r.last, "0.2.0"));
    free(pretty);
    free_image(&a);
}

/* Several processes add catalog entries at once: every entry lands. */
static int relisted;

static void on_relisted(void *opaque, const char *file, const char *image, const char *tag)
{
    (void)opaque;
    relisted++;
    assert_string_equal(file, "manifest-org_b-v1.json");
    assert_string_equal(image, "org/b");
    assert_string_equal(tag, "v1");
}

/* Images whose run died between the manifest file and the catalog: listed
 * again by oc_store_relist (verify --repair), but not one whose blob is
 * gone. */
static void test_relist(void **state)
{
    (void)state;
    oc_store *s = open_store(OC_STORE_WRITE);
    const fake_layer la[] = {{"layer of a ", 100}}, lb[] = {{"layer of b ", 100}},
                     lc[] = {{"layer of c ", 100}};
    fake_image a, b, c;
    make_image(&a, s, "a", la, 1);
    emit(s, &a, "org/a", "v1");
    emit_no_catalog = 1;
    make_image(&b, s, "b", lb, 1);
    emit(s, &b, "org/b", "v1");
    make_image(&c, s, "c", lc, 1);
    emit(s, &c, "org/c", "v1");
    emit_no_catalog = 0;
    char rel[100];
    snprintf(rel, sizeof rel, "%s/layer.tar", c.img.layers[0].hex);
    assert_int_equal(unlink(path_in(rel)), 0);
    oc_store_close(s);
    reports r = verify();
    assert_int_equal(r.notes, 2); /* b and c are not listed */

    s = open_store(OC_STORE_GC);
    oc_error err;
    relisted = 0;
    assert_int_equal(oc_store_relist(s, on_relisted, NULL, &err), 1);
    assert_int_equal(relisted, 1);
    assert_int_equal(oc_store_relist(s, on_relisted, NULL, &err), 0);
    oc_store_close(s);
    s = open_store(OC_STORE_READ);
    oc_store_image si;
    assert_int_equal(oc_store_find(s, "org/b", "v1", &si, NULL, &err), 0);
    oc_store_image_free(&si);
    oc_catalog *cat = NULL;
    assert_int_equal(oc_store_catalog_load(s, &cat, &err), 0);
    assert_null(oc_catalog_get(cat, "org/c", "v1"));
    assert_int_equal(oc_catalog_count(cat), 2);
    oc_catalog_free(cat);
    oc_store_close(s);
    free_image(&a);
    free_image(&b);
    free_image(&c);
}

static void test_concurrent_catalog(void **state)
{
    (void)state;
    enum { PROCS = 4, EACH = 25 };
    oc_store_close(open_store(OC_STORE_WRITE));
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            oc_error err;
            oc_store *s = oc_store_open(dir, OC_STORE_WRITE, &err);
            if (!s)
                _exit(2);
            for (int i = 0; i < EACH; i++) {
                char image[32], tag[32];
                snprintf(image, sizeof image, "proc%d", p);
                snprintf(tag, sizeof tag, "t%d", i);
                if (oc_store_catalog_add(s, image, tag, "manifest.json", &err) != 0)
                    _exit(3);
            }
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
    oc_store *s = open_store(OC_STORE_READ);
    oc_catalog *c = NULL;
    assert_int_equal(oc_store_catalog_load(s, &c, NULL), 0);
    assert_int_equal(oc_catalog_count(c), PROCS * EACH);
    oc_catalog_free(c);
    oc_store_close(s);
    assert_int_equal(count_entries(path_in(".tmp")), 0);
}

static void test_find(void **state)
{
    (void)state;
    oc_error err;
    oc_error_clear(&err);
    oc_store *s = open_store(OC_STORE_WRITE);
    oc_store_image si;
    assert_int_equal(oc_store_find(s, "x", "y", &si, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "holds no images"));
    const fake_layer layers[] = {{"find ", 3}};
    fake_image a;
    make_image(&a, s, "a", layers, 1);
    emit(s, &a, "lib/x", "v1");
    assert_int_equal(oc_store_catalog_add(s, "lib/x", "v2", "manifest-lib_x-v1.json", &err), 0);
    char *file = NULL;
    assert_int_equal(oc_store_find(s, "lib/x", "v2", &si, &file, &err), 0);
    assert_string_equal(file, "manifest-lib_x-v1.json");
    free(file);
    oc_store_image_free(&si);
    assert_int_equal(oc_store_find(s, "lib/x", "v3", &si, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "its tags: v1, v2"));
    assert_int_equal(oc_store_find(s, "lib/y", "v1", &si, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "it holds: lib/x"));
    /* the catalog lost the entry (a run died before its catalog write): the
     * file named by 0.2.0's rule is found anyway */
    put(path_in("catalog.json"), "{}", 2);
    assert_int_equal(oc_store_find(s, "lib/x", "v1", &si, NULL, &err), 0);
    oc_store_image_free(&si);
    /* a catalog pointing outside the store */
    const char *evil = "{\"lib/x\": {\"v1\": \"../../etc/passwd\"}}";
    put(path_in("catalog.json"), evil, strlen(evil));
    assert_int_equal(oc_store_find(s, "lib/x", "v1", &si, NULL, &err), -1);
    assert_int_equal(err.code, OC_E_FORMAT);
    oc_store_close(s);
    free_image(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout_and_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_verify_recreate_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
