/* fuzz_store.c - libFuzzer harness for the store's own files: catalog.json
 * (engine/catalog.h), an image's manifest file (engine/store_image.h) and
 * the OCI layout's index.json (engine/store/oci_index.h).
 *
 * Input: the text of a file, given to both parsers; the part before the
 * first NUL (when short) also goes to oc_catalog_split_ref.
 *
 * Properties:
 * - catalog: dump(parse(x)) parses again to a catalog with the same
 *   entries, whose dump is byte-identical (a fixed point); it is ASCII,
 *   ends in one newline; every visited entry is found by oc_catalog_get
 *   and oc_catalog_tags_of; a manifest file name oc_catalog_file_name_ok
 *   accepts is a single path component (no '/', ".", "..", control bytes);
 *   merge into an empty catalog copies every entry; removing every entry
 *   leaves nothing; the manifest name of an entry has no '/'.
 * - manifest file: every name it accepts and that the store will join to
 *   its path is exactly 64 lowercase hex followed by ".json" (Config) or
 *   "/layer.tar" (Layers), and the hex copies agree; so no accepted file can
 *   name a path outside the store. The docker entry built from it parses
 *   again to the same names.
 * - split_ref: image and tag are non-empty and rebuild the text.
 * - index.json: dump(parse(x)) parses again to as many descriptors, whose
 *   dump is byte-identical (a fixed point); every named descriptor is found
 *   by its ref name with the digest the walk gave; every digest is
 *   "sha256:" and 64 lowercase hex (the store joins it to blobs/sha256/). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/store/catalog.h"
#include "engine/store/oci_index.h"
#include "engine/store/store_image.h"
#include "fuzz_common.h"

#define HEX 64

/* Our own check of a store name: 64 lowercase hex, then exactly suffix. */
static int name_is(const char *name, const char *suffix)
{
    return name && strlen(name) == HEX + strlen(suffix) && fz_is_lower_hex(name, HEX) &&
           strcmp(name + HEX, suffix) == 0;
}

typedef struct walk {
    const oc_catalog *other; /* a catalog that must hold the same entries */
    size_t n;
} walk;

static int visit(void *opaque, const char *image, const char *tag, const char *file)
{
    walk *w = opaque;
    w->n++;
    FZ_CHECK(image && tag && file, "visit with NULL");
    FZ_CHECK(fz_streq(oc_catalog_get(w->other, image, tag), file),
             "entry \"%s\" \"%s\" -> \"%s\" not in the other catalog", image, tag, file);
    FZ_CHECK(oc_catalog_has_image(w->other, image), "image \"%s\" missing", image);
    char *name = oc_catalog_manifest_name(image, tag);
    FZ_CHECK(name != NULL, "manifest name NULL");
    FZ_CHECK(!strchr(name, '/'), "manifest name \"%s\" has a '/'", name);
    free(name);
    char *tags = oc_catalog_tags_of(w->other, image);
    FZ_CHECK(tags && strstr(tags, tag), "tags_of \"%s\" lacks \"%s\"", fz_str(tags), tag);
    free(tags);
    /* a name the store will open must stay inside it */
    if (oc_catalog_file_name_ok(file)) {
        FZ_CHECK(*file && strcmp(file, ".") != 0 && strcmp(file, "..") != 0 && !strchr(file, '/'),
                 "file name \"%s\" accepted", file);
        for (const unsigned char *p = (const unsigned char *)file; *p; p++)
            FZ_CHECK(*p >= 0x20 && *p != 0x7f, "file name with byte 0x%02x accepted", *p);
    }
    return 0;
}

typedef struct removal {
    oc_catalog *c;
} removal;

static int remove_entry(void *opaque, const char *image, const char *tag, const char *file)
{
    (void)file;
    removal *r = opaque;
    FZ_CHECK(oc_catalog_remove(r->c, image, tag) == 1, "cannot remove \"%s\" \"%s\"", image, tag);
    return 0;
}

static void check_catalog(const char *text, size_t len)
{
    oc_error err;
    err.msg[0] = '\0';
    oc_catalog *c = oc_catalog_parse(text, len, "fuzz", &err);
    if (!c) {
        FZ_CHECK(err.msg[0] != '\0', "catalog failure without a message");
        return;
    }
    size_t n = oc_catalog_count(c);
    size_t d1len = 0;
    char *d1 = oc_catalog_dump(c, &d1len, &err);
    FZ_CHECK(d1 != NULL, "dump failed: %s", err.msg);
    FZ_CHECK(d1len == strlen(d1) && d1len >= 1 && d1[d1len - 1] == '\n' &&
                 (d1len < 2 || d1[d1len - 2] != '\n'),
             "dump does not end in one newline");
    for (size_t i = 0; i < d1len; i++)
        FZ_CHECK((unsigned char)d1[i] < 0x80, "dump is not ASCII at %zu", i);

    oc_catalog *c2 = oc_catalog_parse(d1, d1len, "dump", &err);
    FZ_CHECK(c2 != NULL, "dump does not parse again: %s", err.msg);
    FZ_CHECK(oc_catalog_count(c2) == n, "count %zu after round trip, was %zu", oc_catalog_count(c2),
             n);
    size_t d2len = 0;
    char *d2 = oc_catalog_dump(c2, &d2len, &err);
    FZ_CHECK(d2 && d2len == d1len && memcmp(d1, d2, d1len) == 0, "dump is not a fixed point");

    walk w = {c2, 0};
    FZ_CHECK(oc_catalog_foreach(c, visit, &w) == 0 && w.n == n, "foreach visited %zu of %zu", w.n,
             n);
    walk back = {c, 0};
    FZ_CHECK(oc_catalog_foreach(c2, visit, &back) == 0 && back.n == n, "reverse walk");

    oc_catalog *m = oc_catalog_new(&err);
    FZ_CHECK(m != NULL, "new failed");
    FZ_CHECK(oc_catalog_merge(m, c, &err) == 0, "merge failed: %s", err.msg);
    FZ_CHECK(oc_catalog_count(m) == n, "merge copied %zu of %zu", oc_catalog_count(m), n);
    char *imgs = oc_catalog_images(c);
    FZ_CHECK(imgs != NULL, "images NULL");
    free(imgs);

    removal r = {c2};
    FZ_CHECK(oc_catalog_foreach(c, remove_entry, &r) == 0, "removal walk");
    FZ_CHECK(oc_catalog_count(c2) == 0, "%zu entries left after removing all",
             oc_catalog_count(c2));

    oc_catalog_free(m);
    oc_catalog_free(c2);
    oc_catalog_free(c);
    free(d1);
    free(d2);
}

static void check_names(const oc_store_image *si)
{
    FZ_CHECK(name_is(si->config, ".json"), "accepted Config \"%s\"", fz_str(si->config));
    FZ_CHECK(strlen(si->config_hex) == HEX && memcmp(si->config, si->config_hex, HEX) == 0,
             "config_hex \"%s\" for \"%s\"", si->config_hex, si->config);
    FZ_CHECK(si->n_layers == 0 || (si->layers && si->layer_hex), "layers NULL");
    for (size_t i = 0; i < si->n_layers; i++) {
        FZ_CHECK(name_is(si->layers[i], "/layer.tar"), "accepted layer %zu \"%s\"", i,
                 fz_str(si->layers[i]));
        FZ_CHECK(strlen(si->layer_hex[i]) == HEX &&
                     memcmp(si->layers[i], si->layer_hex[i], HEX) == 0,
                 "layer_hex %zu \"%s\"", i, si->layer_hex[i]);
    }
    for (size_t i = 0; i < si->n_repo_tags; i++)
        FZ_CHECK(si->repo_tags[i], "RepoTags[%zu] NULL", i);
}

static void check_store_image(const char *text, size_t len)
{
    oc_store_image si;
    oc_error err;
    err.msg[0] = '\0';
    if (oc_store_image_parse(&si, text, len, "fuzz", &err) != 0) {
        FZ_CHECK(err.msg[0] != '\0', "manifest file failure without a message");
        FZ_CHECK(!si.config && !si.layers && !si.repo_tags && si.n_layers == 0,
                 "failure left fields set");
        return;
    }
    check_names(&si);

    /* docker's entry of it, as recreate-image writes it, reads back the same */
    json_t *entry =
        oc_store_image_docker_entry(&si, (const char *const *)si.repo_tags, si.n_repo_tags);
    FZ_CHECK(entry != NULL, "docker entry NULL");
    json_t *arr = json_array();
    FZ_CHECK(arr && json_array_append_new(arr, entry) == 0, "array");
    char *dumped = json_dumps(arr, JSON_COMPACT);
    FZ_CHECK(dumped != NULL, "dump of the docker entry");
    oc_store_image back;
    FZ_CHECK(oc_store_image_parse(&back, dumped, strlen(dumped), "entry", &err) == 0,
             "docker entry does not parse again: %s", err.msg);
    FZ_CHECK(strcmp(back.config, si.config) == 0 && back.n_layers == si.n_layers &&
                 back.n_repo_tags == si.n_repo_tags,
             "docker entry differs");
    for (size_t i = 0; i < si.n_layers; i++)
        FZ_CHECK(strcmp(back.layers[i], si.layers[i]) == 0, "layer %zu differs", i);
    for (size_t i = 0; i < si.n_repo_tags; i++)
        FZ_CHECK(strcmp(back.repo_tags[i], si.repo_tags[i]) == 0, "RepoTag %zu differs", i);
    oc_store_image_free(&back);
    free(dumped);
    json_decref(arr);
    oc_store_image_free(&si);
}

typedef struct oci_walk {
    const oc_oci_index *x;
    size_t n;
} oci_walk;

static int oci_visit(void *opaque, const char *ref_name, const char *digest, const char *text)
{
    oci_walk *w = opaque;
    w->n++;
    FZ_CHECK(strncmp(digest, "sha256:", 7) == 0 && strlen(digest) == 7 + HEX &&
                 fz_is_lower_hex(digest + 7, HEX),
             "index.json: a descriptor's digest is not sha256:<64 hex>");
    FZ_CHECK(text && text[0] == '{', "index.json: a descriptor without its text");
    if (ref_name) {
        const char *d = oc_oci_index_digest(w->x, ref_name);
        FZ_CHECK(d && strcmp(d, digest) == 0, "index.json: a ref name does not find its digest");
    }
    return 0;
}

static void check_oci_index(const char *text, size_t len)
{
    oc_error err;
    oc_oci_index *x = oc_oci_index_parse(text, len, "fuzz", &err);
    if (!x)
        return;
    oci_walk w = {x, 0};
    FZ_CHECK(oc_oci_index_foreach(x, oci_visit, &w) == 0, "index.json: walk failed");
    FZ_CHECK(w.n == oc_oci_index_count(x), "index.json: the walk missed descriptors");
    size_t n1 = 0, n2 = 0;
    char *d1 = oc_oci_index_dump(x, &n1, &err);
    FZ_CHECK(d1 != NULL, "index.json: dump failed");
    oc_oci_index *y = oc_oci_index_parse(d1, n1, "dump", &err);
    FZ_CHECK(y != NULL, "index.json: our dump does not parse: %s", err.msg);
    FZ_CHECK(oc_oci_index_count(y) == oc_oci_index_count(x), "index.json: dump lost descriptors");
    char *d2 = oc_oci_index_dump(y, &n2, &err);
    FZ_CHECK(d2 && n1 == n2 && memcmp(d1, d2, n1) == 0, "index.json: dump is not a fixed point");
    free(d1);
    free(d2);
    oc_oci_index_free(x);
    oc_oci_index_free(y);
}

static void check_split(const char *text)
{
    char *image = NULL;
    char *tag = NULL;
    oc_error err;
    if (oc_catalog_split_ref(text, &image, &tag, &err) != 0) {
        FZ_CHECK(!image && !tag, "failed split left parts");
        return;
    }
    FZ_CHECK(image && *image && tag && *tag, "empty part from \"%s\"", text);
    size_t il = strlen(image);
    FZ_CHECK(strncmp(text, image, il) == 0, "image \"%s\" is not a prefix of \"%s\"", image, text);
    if (text[il] == '\0')
        FZ_CHECK(strcmp(tag, "latest") == 0, "no tag but \"%s\"", tag);
    else
        FZ_CHECK((text[il] == ':' || text[il] == '@') && strcmp(text + il + 1, tag) == 0,
                 "\"%s\" split into \"%s\" and \"%s\"", text, image, tag);
    free(image);
    free(tag);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly size bytes, so ASan sees reads past the end */
    char *text = fz_xmalloc(size);
    if (size)
        memcpy(text, data, size);
    check_catalog(text, size);
    check_store_image(text, size);
    check_oci_index(text, size);
    const uint8_t *nul = memchr(data, '\0', size);
    size_t first = nul ? (size_t)(nul - data) : size;
    if (first <= 4096) {
        char *s = fz_strndup(data, first);
        check_split(s);
        free(s);
    }
    free(text);
    return 0;
}
