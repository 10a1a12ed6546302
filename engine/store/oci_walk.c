/* oci_walk.c - following a descriptor through the store's OCI layout (see
 * oci_walk.h). */
#include "engine/store/oci_walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/image/limits.h"
#include "engine/image/manifest.h"
#include "engine/store/oci_layout.h"
#include "io/atomicfile.h"
#include "io/digest.h"

#define DEPTH_MAX 4

typedef struct walk {
    const oc_store *s;
    oc_oci_ref_cb cb;
    void *opaque;
    unsigned problems;
} walk;

static oc_oci_ref_state stat_blob(const oc_store *s, const char *hex, uint64_t size)
{
    char *path = oc_store_oci_blob_path(s, hex);
    struct stat st;
    oc_oci_ref_state r = !path || lstat(path, &st) != 0 || !S_ISREG(st.st_mode) ? OC_OCI_MISSING
                         : (uint64_t)st.st_size != size                         ? OC_OCI_WRONG_SIZE
                                                                                : OC_OCI_PRESENT;
    free(path);
    return r;
}

static void report(walk *w, oc_oci_ref *r)
{
    if (r->state != OC_OCI_PRESENT && !(r->kind == OC_OCI_CHILD && r->state == OC_OCI_MISSING))
        w->problems++;
    if (w->cb)
        w->cb(w->opaque, r);
}

static int is_document(const char *media_type)
{
    return media_type && (strcmp(media_type, OC_MT_DOCKER_MANIFEST) == 0 ||
                          strcmp(media_type, OC_MT_DOCKER_LIST) == 0 ||
                          strcmp(media_type, OC_MT_OCI_MANIFEST) == 0 ||
                          strcmp(media_type, OC_MT_OCI_INDEX) == 0);
}

static void visit(walk *w, oc_oci_ref_kind kind, const char *media_type, const char *digest,
                  uint64_t size, const char *parent, int depth);

/* A document in place: read, parse and follow it. */
static void follow(walk *w, oc_oci_ref *r, int depth)
{
    char *path = oc_store_oci_blob_path(w->s, r->hex);
    oc_error err;
    oc_error_clear(&err);
    size_t len = 0;
    char *body = path ? oc_read_file(path, OC_MANIFEST_MAX, &len, &err) : NULL;
    free(path);
    oc_manifest m;
    if (!body || oc_manifest_parse(&m, r->media_type, body, len, &err) != 0) {
        r->state = OC_OCI_BAD;
        r->why = err.code ? err.msg : "out of memory";
        report(w, r);
        free(body);
        return;
    }
    free(body);
    report(w, r);
    if (m.kind == OC_MANIFEST_IMAGE) {
        visit(w, OC_OCI_CONFIG, m.config.media_type, m.config.digest, (uint64_t)m.config.size,
              r->digest, depth + 1);
        for (size_t i = 0; i < m.n_layers; i++)
            visit(w, OC_OCI_LAYER, m.layers[i].media_type, m.layers[i].digest,
                  (uint64_t)m.layers[i].size, r->digest, depth + 1);
    } else if (m.kind == OC_MANIFEST_INDEX && depth < DEPTH_MAX) {
        for (size_t i = 0; i < m.n_manifests; i++)
            visit(w, OC_OCI_CHILD, m.manifests[i].media_type, m.manifests[i].digest,
                  (uint64_t)m.manifests[i].size, r->digest, depth + 1);
    }
    oc_manifest_free(&m);
}

static void visit(walk *w, oc_oci_ref_kind kind, const char *media_type, const char *digest,
                  uint64_t size, const char *parent, int depth)
{
    char hex[OC_SHA256_HEX_LEN + 1] = "";
    oc_oci_ref r = {.kind = kind,
                    .digest = digest,
                    .hex = hex,
                    .media_type = media_type,
                    .size = size,
                    .parent = parent};
    if (oc_digest_parse(digest, hex, NULL) != 0) {
        r.state = OC_OCI_BAD;
        r.why = "not a sha256 digest";
        report(w, &r);
        return;
    }
    r.state = stat_blob(w->s, hex, size);
    if (r.state == OC_OCI_PRESENT && kind != OC_OCI_CONFIG && kind != OC_OCI_LAYER &&
        is_document(media_type)) {
        follow(w, &r, depth);
        return;
    }
    report(w, &r);
}

unsigned oc_store_oci_walk(const oc_store *s, const char *media_type, const char *digest,
                           uint64_t size, oc_oci_ref_cb cb, void *opaque)
{
    walk w = {.s = s, .cb = cb, .opaque = opaque};
    visit(&w, OC_OCI_TOP, media_type, digest, size, NULL, 0);
    return w.problems;
}
