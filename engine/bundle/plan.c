/* plan.c - what a bundle holds and how it is cut into parts (see plan.h). */
#include "engine/bundle/plan.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/image/manifest.h"
#include "engine/store/catalog.h"
#include "engine/store/oci_index.h"
#include "engine/store/oci_layout.h"
#include "engine/store/oci_read.h"
#include "engine/store/oci_walk.h"
#include "io/grow.h"
#include "io/outstream.h"
#include "io/strmap.h"
#include "io/tarwrite.h"

#define TAR_BLOCK 512u
#define END_BLOCKS 1024u
#define USTAR_SIZE_MAX 077777777777ull
#define MIN_SEGMENT ((uint64_t)1 << 20)
#define NO_DIGEST "sha256:0000000000000000000000000000000000000000000000000000000000000000"
#define READ_CHUNK ((size_t)1 << 20)

static int oom(oc_error *err)
{
    oc_error_set(err, OC_E_NOMEM, "out of memory");
    return -1;
}

int oc_bundle_member_header(const char *name, uint64_t size, unsigned char **hdr, size_t *len,
                            oc_error *err)
{
    return oc_tar_file_header(name, size, hdr, len, err);
}

uint64_t oc_bundle_member_size(size_t header_len, uint64_t size)
{
    return header_len + size + (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
}

/* The header length of a member (a ustar block unless the name or the size
 * needs more: then as the writer makes it). */
static int header_len(const char *name, uint64_t size, size_t *len, oc_error *err)
{
    if (strlen(name) < 100 && size <= USTAR_SIZE_MAX) {
        *len = TAR_BLOCK;
        return 0;
    }
    unsigned char *hdr = NULL;
    if (oc_tar_file_header(name, size, &hdr, len, err) != 0)
        return -1;
    free(hdr);
    return 0;
}

/* ---- selecting the images and their blobs ---- */

enum { KIND_DOC = 0, KIND_CONFIG, KIND_LAYER };

typedef struct pblob {
    char hex[OC_SHA256_HEX_LEN + 1];
    uint64_t size;
    char *media_type;
    int kind;
    size_t order; /* as met: the sort by kind keeps it */
} pblob;

typedef struct pick {
    char *ref;
    const char *text; /* the descriptor (the index's) */
} pick;

typedef struct ctx {
    const oc_store *s;
    const oc_bundle_plan_opts *o;
    oc_bundle_plan *p;
    oc_oci_index *x;
    oc_catalog *cat;
    pick *picks;
    size_t n_picks, cap_picks;
    oc_strmap *picked;
    pblob *blobs;
    size_t n_blobs, cap_blobs;
    oc_strmap *seen; /* hex -> index + 1 into blobs */
    /* walking one image */
    const char *ref;
    char problem[600];
    char **docs; /* manifests and indexes the image reaches (digests) */
    size_t n_docs, cap_docs;
    int nomem;
    oc_error *err;
} ctx;

static int add_pick(ctx *c, const char *ref, const char *text)
{
    if (oc_strmap_has(c->picked, ref))
        return 0;
    pick *grown = oc_grow(c->picks, &c->cap_picks, c->n_picks + 1, sizeof *grown, 16);
    char *copy = grown ? strdup(ref) : NULL;
    if (grown)
        c->picks = grown;
    if (!copy || oc_strmap_set(c->picked, ref, NULL) != 0) {
        free(copy);
        return oom(c->err);
    }
    c->picks[c->n_picks++] = (pick){copy, text};
    return 0;
}

typedef struct match {
    ctx *c;
    const char *name;
    const char *tag; /* NULL: every tag of name */
    int found;
} match;

/* Does ref (NAME:TAG) belong to what m asks for: NAME's TAG or one of its
 * platforms TAG+..., or any tag of NAME? */
static int on_index_entry(void *opaque, const char *ref, const char *digest, const char *text)
{
    match *m = opaque;
    (void)digest;
    if (!ref)
        return 0;
    if (!m->name) /* every image */
        return add_pick(m->c, ref, text);
    size_t nl = strlen(m->name);
    if (strncmp(ref, m->name, nl) != 0 || ref[nl] != ':')
        return 0;
    const char *tag = ref + nl + 1;
    size_t tl = m->tag ? strlen(m->tag) : 0;
    if (m->tag && !(strcmp(tag, m->tag) == 0 || (strncmp(tag, m->tag, tl) == 0 && tag[tl] == '+')))
        return 0;
    m->found = 1;
    return add_pick(m->c, ref, text);
}

typedef struct unexact {
    ctx *c;
    const char *name; /* NULL: all */
    const char *tag;
    size_t n;
    char first[600];
} unexact;

static int on_catalog(void *opaque, const char *image, const char *tag, const char *file)
{
    unexact *u = opaque;
    (void)file;
    if ((u->name && strcmp(image, u->name) != 0) || (u->tag && strcmp(tag, u->tag) != 0))
        return 0;
    char *ref = oc_oci_ref_name(image, tag);
    if (!ref)
        return -1;
    if (!oc_oci_index_get(u->c->x, ref)) {
        if (!u->n)
            snprintf(u->first, sizeof u->first, "%s", ref);
        u->n++;
    }
    free(ref);
    return 0;
}

static int select_images(ctx *c)
{
    const oc_bundle_plan_opts *o = c->o;
    if (o->n_images == 0) {
        match m = {.c = c};
        if (oc_oci_index_foreach(c->x, on_index_entry, &m) != 0)
            return -1;
        unexact u = {.c = c};
        if (oc_catalog_foreach(c->cat, on_catalog, &u) != 0)
            return oom(c->err);
        c->p->no_exact = u.n;
        return 0;
    }
    for (size_t i = 0; i < o->n_images; i++) {
        char *name = NULL, *tag = NULL;
        int has_tag = oc_oci_split_ref_name(o->images[i], &name, &tag) == 0;
        match m = {.c = c, .name = has_tag ? name : o->images[i], .tag = has_tag ? tag : NULL};
        int rc = oc_oci_index_foreach(c->x, on_index_entry, &m);
        if (rc == 0 && !m.found) {
            unexact u = {.c = c, .name = m.name, .tag = m.tag};
            (void)oc_catalog_foreach(c->cat, on_catalog, &u);
            if (u.n)
                oc_error_set(c->err, OC_E_NOTFOUND,
                             "%s has no exact bytes in %s (oci/index.json does not name it): it "
                             "cannot be carried with its digests; mirror it again (without "
                             "--no-exact)",
                             u.first, oc_store_dir(c->s));
            else
                oc_error_set(c->err, OC_E_NOTFOUND, "%s is not in %s", o->images[i],
                             oc_store_dir(c->s));
            rc = -1;
        }
        free(name);
        free(tag);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static void on_ref(void *opaque, const oc_oci_ref *r)
{
    ctx *c = opaque;
    if (r->state != OC_OCI_PRESENT) {
        if (r->kind == OC_OCI_CHILD && r->state == OC_OCI_MISSING)
            return; /* a platform the store does not hold */
        if (!c->problem[0])
            snprintf(c->problem, sizeof c->problem, "%s: blob %s is %s (run occystrap verify)",
                     c->ref, r->digest,
                     r->state == OC_OCI_MISSING      ? "missing"
                     : r->state == OC_OCI_WRONG_SIZE ? "not the size its descriptor says"
                                                     : "unreadable");
        return;
    }
    int kind = r->kind == OC_OCI_CONFIG  ? KIND_CONFIG
               : r->kind == OC_OCI_LAYER ? KIND_LAYER
                                         : KIND_DOC;
    if (kind == KIND_DOC) {
        char **grown = oc_grow(c->docs, &c->cap_docs, c->n_docs + 1, sizeof *grown, 8);
        if (!grown || !(grown[c->n_docs] = strdup(r->digest))) {
            if (grown)
                c->docs = grown;
            c->nomem = 1;
            return;
        }
        c->docs = grown;
        c->n_docs++;
    }
    if (oc_strmap_has(c->seen, r->hex))
        return;
    pblob *grown = oc_grow(c->blobs, &c->cap_blobs, c->n_blobs + 1, sizeof *grown, 32);
    if (!grown) {
        c->nomem = 1;
        return;
    }
    c->blobs = grown;
    pblob *b = &c->blobs[c->n_blobs];
    memset(b, 0, sizeof *b);
    memcpy(b->hex, r->hex, sizeof b->hex);
    b->size = r->size;
    b->kind = kind;
    b->order = c->n_blobs;
    b->media_type = r->media_type ? strdup(r->media_type) : NULL;
    if ((r->media_type && !b->media_type) || oc_strmap_set(c->seen, r->hex, NULL) != 0) {
        free(b->media_type);
        c->nomem = 1;
        return;
    }
    c->n_blobs++;
}

static void free_docs(ctx *c)
{
    for (size_t i = 0; i < c->n_docs; i++)
        free(c->docs[i]);
    c->n_docs = 0;
}

static char *dup_or_null(const char *s, int *nomem)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *nomem = 1;
    return d;
}

/* The image's 0.2.0 view (its manifest file), when the catalog lists it
 * and the file says which manifest it describes, one the image reaches. */
static int catalog_of(ctx *c, oc_bundle_image *im)
{
    const char *file = oc_catalog_get(c->cat, im->name, im->tag);
    if (!file || !oc_catalog_file_name_ok(file))
        return 0;
    char *path = oc_store_path(c->s, file);
    oc_store_image si;
    oc_error ignored;
    if (!path)
        return oom(c->err);
    int loaded = oc_store_image_load(&si, path, &ignored) == 0;
    free(path);
    if (!loaded)
        return 0; /* verify says why; the image still goes, without its 0.2.0 view */
    int reached = 0;
    for (size_t i = 0; si.manifest_digest && i < c->n_docs; i++)
        reached |= strcmp(c->docs[i], si.manifest_digest) == 0;
    int rc = 0;
    if (reached) {
        oc_bundle_catalog *cat = calloc(1, sizeof *cat);
        int nomem = !cat;
        if (cat) {
            cat->manifest_digest = dup_or_null(si.manifest_digest, &nomem);
            cat->registry = dup_or_null(si.registry, &nomem);
            cat->repository = dup_or_null(si.repository, &nomem);
            cat->tag = dup_or_null(si.tag, &nomem);
            cat->index_digest = dup_or_null(si.index_digest, &nomem);
            cat->platform = dup_or_null(si.platform, &nomem);
            cat->media_type = dup_or_null(si.media_type, &nomem);
            cat->fetched_at = dup_or_null(si.fetched_at, &nomem);
            cat->repo_tags = calloc(si.n_repo_tags + 1, sizeof *cat->repo_tags);
            nomem |= !cat->repo_tags;
            for (size_t i = 0; !nomem && i < si.n_repo_tags; i++)
                if (!(cat->repo_tags[cat->n_repo_tags++] = strdup(si.repo_tags[i])))
                    nomem = 1;
        }
        if (nomem) {
            oc_bundle_catalog_free(cat);
            rc = oom(c->err);
        } else {
            im->catalog = cat;
        }
    }
    oc_store_image_free(&si);
    return rc;
}

/* Each picked image: unchanged since the inventory (left out), or walked
 * for its blobs and added to the manifest. */
static int take_images(ctx *c)
{
    oc_bundle_doc *d = c->p->doc;
    for (size_t i = 0; i < c->n_picks; i++) {
        const pick *pk = &c->picks[i];
        char *mt = NULL, *dg = NULL;
        uint64_t size = 0;
        if (oc_oci_descriptor_parse(pk->text, &mt, &dg, &size, c->err) != 0)
            return -1;
        const oc_inv_image *old = c->o->since ? oc_inventory_image(c->o->since, pk->ref) : NULL;
        if (old && strcmp(old->digest, dg) == 0) {
            c->p->unchanged++;
            free(mt);
            free(dg);
            continue;
        }
        c->ref = pk->ref;
        c->problem[0] = '\0';
        free_docs(c);
        (void)oc_store_oci_walk(c->s, mt, dg, size, on_ref, c);
        free(mt);
        free(dg);
        if (c->nomem)
            return oom(c->err);
        if (c->problem[0]) {
            oc_error_set(c->err, OC_E_NOTFOUND, "%s", c->problem);
            return -1;
        }
        oc_bundle_image *im = oc_bundle_doc_add_image(d, pk->ref, pk->text, c->err);
        if (!im || catalog_of(c, im) != 0)
            return -1;
    }
    return 0;
}

static int cmp_kind(const void *a, const void *b)
{
    const pblob *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind - y->kind;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* ---- parts ---- */

typedef struct assign {
    uint64_t cap;     /* tar bytes a part may hold */
    uint64_t fixed;   /* what every part holds before its files */
    uint64_t min_seg; /* a segment is at least this large */
    unsigned parts;
    uint64_t *part_bytes;
    size_t cap_parts;
} assign;

static int part_done(assign *a, uint64_t used, oc_error *err)
{
    uint64_t *grown = oc_grow(a->part_bytes, &a->cap_parts, a->parts, sizeof *grown, 8);
    if (!grown)
        return oom(err);
    a->part_bytes = grown;
    a->part_bytes[a->parts - 1] = used;
    return 0;
}

static int add_file(oc_bundle_doc *d, const pblob *b, unsigned part, int segment, uint64_t offset,
                    uint64_t size, oc_error *err)
{
    char path[128];
    if (segment)
        snprintf(path, sizeof path, "segments/sha256/%s/%020" PRIu64, b->hex, offset);
    else
        snprintf(path, sizeof path, "blobs/sha256/%s", b->hex);
    oc_bundle_file *f = oc_bundle_doc_add_file(d, path, err);
    if (!f)
        return -1;
    if (b->media_type && !(f->media_type = strdup(b->media_type)))
        return oom(err);
    snprintf(f->blob, sizeof f->blob, "sha256:%s", b->hex);
    snprintf(f->digest, sizeof f->digest, "%s", segment ? NO_DIGEST : f->blob);
    f->size = size;
    f->part = part;
    f->segment = segment;
    f->blob_size = b->size;
    f->offset = offset;
    return 0;
}

/* Lay the carried blobs into parts of a->cap bytes. */
static int lay_out(oc_bundle_doc *d, const pblob *blobs, size_t n, assign *a, oc_error *err)
{
    a->parts = 1;
    uint64_t used = a->fixed;
    for (size_t i = 0; i < n; i++) {
        const pblob *b = &blobs[i];
        uint64_t off = 0, left = b->size;
        for (;;) {
            char name[128];
            size_t hl = 0;
            if (off == 0)
                snprintf(name, sizeof name, "blobs/sha256/%s", b->hex);
            else
                snprintf(name, sizeof name, "segments/sha256/%s/%020" PRIu64, b->hex, off);
            if (header_len(name, left, &hl, err) != 0)
                return -1;
            uint64_t room = a->cap - used;
            if (oc_bundle_member_size(hl, left) <= room) {
                if (add_file(d, b, a->parts, off != 0, off, left, err) != 0)
                    return -1;
                used += oc_bundle_member_size(hl, left);
                break;
            }
            char seg[128];
            size_t sl = 0;
            snprintf(seg, sizeof seg, "segments/sha256/%s/%020" PRIu64, b->hex, off);
            if (header_len(seg, left, &sl, err) != 0)
                return -1;
            if (room > sl + a->min_seg) {
                uint64_t s = (room - sl) / TAR_BLOCK * TAR_BLOCK;
                if (add_file(d, b, a->parts, 1, off, s, err) != 0)
                    return -1;
                used += sl + s;
                off += s;
                left -= s;
            }
            if (part_done(a, used, err) != 0)
                return -1;
            a->parts++;
            used = a->fixed;
        }
    }
    return part_done(a, used, err);
}

/* Drop the files laid out so far (a new layout follows). */
static void clear_files(oc_bundle_doc *d)
{
    for (size_t i = 0; i < d->n_files; i++) {
        free(d->files[i].path);
        free(d->files[i].media_type);
    }
    d->n_files = 0;
}

/* The bytes of tar a part of split bytes may hold. */
static uint64_t tar_capacity(uint64_t split, int zstd)
{
    if (!zstd)
        return split;
    uint64_t t = split - split / 256;
    while (t > 0 && oc_outstream_bound(1, t) > split)
        t -= t / 1024 + 1;
    return t;
}

static int meta_member(const char *name, size_t len, uint64_t *out, oc_error *err)
{
    size_t hl = 0;
    if (header_len(name, len, &hl, err) != 0)
        return -1;
    *out = oc_bundle_member_size(hl, len);
    return 0;
}

static int layout_parts(ctx *c, const pblob *carried, size_t n)
{
    oc_bundle_plan *p = c->p;
    oc_bundle_doc *d = p->doc;
    uint64_t inv = 0, lay = 0, idx = 0;
    if (meta_member(OC_BUNDLE_INVENTORY_NAME, p->inventory_len, &inv, c->err) != 0 ||
        meta_member("oci-layout", strlen(OC_STORE_OCI_LAYOUT_TEXT), &lay, c->err) != 0 ||
        meta_member("index.json", p->index_len, &idx, c->err) != 0)
        return -1;
    uint64_t split = c->o->split;
    assign a = {.cap = split ? tar_capacity(split, c->o->zstd) : UINT64_MAX};
    uint64_t reserve = 0;
    for (int round = 0; round < 16; round++) {
        clear_files(d);
        free(a.part_bytes);
        a.part_bytes = NULL;
        a.cap_parts = 0;
        a.fixed = reserve + inv + lay + idx + END_BLOCKS;
        if (split && (a.fixed >= a.cap || a.cap - a.fixed < 8 * TAR_BLOCK)) {
            oc_error_set(c->err, OC_E_USAGE,
                         "--split %" PRIu64 " is too small: every part carries %" PRIu64
                         " bytes of manifest, inventory and index; give at least %" PRIu64,
                         split, a.fixed, a.fixed + 64 * 1024);
            free(a.part_bytes);
            return -1;
        }
        uint64_t room = a.cap == UINT64_MAX ? UINT64_MAX : a.cap - a.fixed;
        a.min_seg = room / 8 < MIN_SEGMENT ? room / 8 : MIN_SEGMENT;
        if (lay_out(d, carried, n, &a, c->err) != 0) {
            free(a.part_bytes);
            return -1;
        }
        d->parts = a.parts;
        /* the manifest of the last part is the longest (its number) */
        size_t len = 0;
        char *text = oc_bundle_doc_text(d, a.parts, &len, c->err);
        if (!text) {
            free(a.part_bytes);
            return -1;
        }
        free(text);
        uint64_t need = 0;
        if (meta_member(OC_BUNDLE_MANIFEST_NAME, len, &need, c->err) != 0) {
            free(a.part_bytes);
            return -1;
        }
        if (need <= reserve) {
            for (unsigned k = 0; k < a.parts; k++) /* the manifest as it is, not as reserved */
                a.part_bytes[k] = a.part_bytes[k] - reserve + need;
            p->part_bytes = a.part_bytes;
            return 0;
        }
        /* room for a longer manifest (more parts and segments make it grow) */
        reserve = need + need / 16 + 4096;
    }
    free(a.part_bytes);
    oc_error_set(c->err, OC_E_USAGE, "cannot lay the bundle out in parts of %" PRIu64 " bytes",
                 split);
    return -1;
}

/* ---- the plan ---- */

static int index_entry_of(ctx *c, oc_oci_index *out)
{
    oc_bundle_doc *d = c->p->doc;
    for (size_t i = 0; i < d->n_images; i++)
        if (oc_oci_index_set(out, d->images[i].ref, d->images[i].descriptor, c->err) != 0)
            return -1;
    return 0;
}

static int after_inventory(ctx *c, const pblob *carried, size_t n)
{
    oc_bundle_plan *p = c->p;
    p->after = oc_inventory_new();
    if (!p->after)
        return oom(c->err);
    if (c->o->since && oc_inventory_merge(p->after, c->o->since, c->err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char digest[OC_BUNDLE_DIGEST_LEN];
        snprintf(digest, sizeof digest, "sha256:%s", carried[i].hex);
        if (oc_inventory_add_blob(p->after, digest, carried[i].size, c->err) != 0)
            return -1;
    }
    for (size_t i = 0; i < p->doc->n_images; i++) {
        const oc_bundle_image *im = &p->doc->images[i];
        if (oc_inventory_set_image(p->after, im->ref, im->media_type, im->digest, im->size,
                                   c->err) != 0)
            return -1;
    }
    return 0;
}

int oc_bundle_plan_make(const oc_store *s, const oc_bundle_plan_opts *o, oc_bundle_plan *p,
                        oc_error *err)
{
    memset(p, 0, sizeof *p);
    ctx c = {.s = s, .o = o, .p = p, .err = err};
    pblob *carried = NULL;
    size_t n_carried = 0;
    oc_oci_index *idx = oc_oci_index_new();
    int rc = -1;
    p->doc = oc_bundle_doc_new();
    c.picked = oc_strmap_new(NULL);
    c.seen = oc_strmap_new(NULL);
    if (!p->doc || !c.picked || !c.seen || !idx) {
        oom(err);
        goto out;
    }
    oc_store_now(p->doc->created);
    if (o->creator && !(p->doc->creator = strdup(o->creator))) {
        oom(err);
        goto out;
    }
    if (oc_store_oci_index_load(s, &c.x, err) != 0 || oc_store_catalog_load(s, &c.cat, err) != 0 ||
        select_images(&c) != 0 || take_images(&c) != 0)
        goto out;
    /* documents first (the import reads what an image is before its
     * layers arrive), then configs, then layers, each in the order met */
    if (c.n_blobs > 1)
        qsort(c.blobs, c.n_blobs, sizeof *c.blobs, cmp_kind);
    carried = calloc(c.n_blobs + 1, sizeof *carried);
    if (!carried) {
        oom(err);
        goto out;
    }
    for (size_t i = 0; i < c.n_blobs; i++) {
        char digest[OC_BUNDLE_DIGEST_LEN];
        uint64_t have = 0;
        snprintf(digest, sizeof digest, "sha256:%s", c.blobs[i].hex);
        if (o->since && oc_inventory_has_blob(o->since, digest, &have) && have == c.blobs[i].size) {
            if (oc_bundle_doc_add_require(p->doc, digest, have, err) != 0)
                goto out;
            p->required_bytes += have;
        } else {
            carried[n_carried++] = c.blobs[i];
        }
    }
    if (o->since) {
        p->doc->has_since = 1;
        snprintf(p->doc->since_digest, sizeof p->doc->since_digest, "%s",
                 o->since_digest ? o->since_digest : NO_DIGEST);
        const char *created = oc_inventory_created(o->since);
        if (!(p->doc->since_created = strdup(created ? created : "")) ||
            !(p->doc->since_from = strdup(o->since_from ? o->since_from : ""))) {
            oom(err);
            goto out;
        }
        p->doc->since_blobs = oc_inventory_n_blobs(o->since);
        p->doc->since_images = oc_inventory_n_images(o->since);
    }
    if (after_inventory(&c, carried, n_carried) != 0 || index_entry_of(&c, idx) != 0 ||
        !(p->inventory_text = oc_inventory_dump(p->after, &p->inventory_len, err)) ||
        !(p->index_text = oc_oci_index_dump(idx, &p->index_len, err)))
        goto out;
    const char *texts[OC_BUNDLE_META_N] = {p->inventory_text, OC_STORE_OCI_LAYOUT_TEXT,
                                           p->index_text};
    size_t lens[OC_BUNDLE_META_N] = {p->inventory_len, strlen(OC_STORE_OCI_LAYOUT_TEXT),
                                     p->index_len};
    for (int i = 0; i < OC_BUNDLE_META_N; i++) {
        char hex[OC_SHA256_HEX_LEN + 1];
        oc_sha256_buf_hex(texts[i], lens[i], hex);
        snprintf(p->doc->meta[i].digest, OC_BUNDLE_DIGEST_LEN, "sha256:%s", hex);
        p->doc->meta[i].size = lens[i];
    }
    if (layout_parts(&c, carried, n_carried) != 0)
        goto out;
    p->doc->bytes = 0;
    for (size_t i = 0; i < p->doc->n_files; i++)
        p->doc->bytes += p->doc->files[i].size;
    rc = 0;
out:
    free(carried);
    for (size_t i = 0; i < c.n_blobs; i++)
        free(c.blobs[i].media_type);
    free(c.blobs);
    for (size_t i = 0; i < c.n_picks; i++)
        free(c.picks[i].ref);
    free(c.picks);
    free_docs(&c);
    free(c.docs);
    oc_strmap_free(c.picked);
    oc_strmap_free(c.seen);
    oc_oci_index_free(c.x);
    oc_oci_index_free(idx);
    oc_catalog_free(c.cat);
    if (rc != 0)
        oc_bundle_plan_free(p);
    return rc;
}

void oc_bundle_plan_free(oc_bundle_plan *p)
{
    oc_bundle_doc_free(p->doc);
    oc_inventory_free(p->after);
    free(p->inventory_text);
    free(p->index_text);
    free(p->part_bytes);
    memset(p, 0, sizeof *p);
}

/* ---- segment digests ---- */

/* Hash the blob whole and each of its segments (files[first..] while they
 * belong to it). */
static int hash_blob(const oc_store *s, oc_bundle_doc *d, size_t first, size_t *next,
                     unsigned char *buf, oc_error *err)
{
    oc_bundle_file *f0 = &d->files[first];
    char *path = oc_store_oci_blob_path(s, f0->blob + 7);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    oc_sha256 *whole = oc_sha256_new(), *part = oc_sha256_new();
    int rc = -1;
    size_t i = first;
    if (!path || !whole || !part) {
        oom(err);
        goto out;
    }
    if (fd < 0) {
        oc_error_errno(err, errno, "blob %s (%s)", f0->blob, path);
        goto out;
    }
    uint64_t at = 0;
    for (; i < d->n_files && d->files[i].segment && strcmp(d->files[i].blob, f0->blob) == 0; i++) {
        oc_bundle_file *f = &d->files[i];
        uint64_t left = f->size;
        while (left > 0) {
            size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
            ssize_t got = pread(fd, buf, want, (off_t)at);
            if (got <= 0) {
                if (got < 0)
                    oc_error_errno(err, errno, "read blob %s", f0->blob);
                else
                    oc_error_set(err, OC_E_IO,
                                 "blob %s in %s is shorter than its %" PRIu64
                                 " bytes (run occystrap verify)",
                                 f0->blob, oc_store_dir(s), f->blob_size);
                goto out;
            }
            oc_sha256_update(whole, buf, (size_t)got);
            oc_sha256_update(part, buf, (size_t)got);
            at += (uint64_t)got;
            left -= (uint64_t)got;
        }
        char hex[OC_SHA256_HEX_LEN + 1];
        oc_sha256_final_hex(part, hex);
        snprintf(f->digest, sizeof f->digest, "sha256:%s", hex);
    }
    char hex[OC_SHA256_HEX_LEN + 1];
    oc_sha256_final_hex(whole, hex);
    if (strcmp(hex, f0->blob + 7) != 0) {
        oc_error_set(err, OC_E_DIGEST,
                     "blob %s in %s is damaged: its bytes hash to sha256:%s (run occystrap "
                     "verify)",
                     f0->blob, oc_store_dir(s), hex);
        goto out;
    }
    rc = 0;
out:
    *next = i > first ? i : first + 1;
    if (fd >= 0)
        close(fd);
    free(path);
    oc_sha256_free(whole);
    oc_sha256_free(part);
    return rc;
}

int oc_bundle_hash_segments(const oc_store *s, oc_bundle_plan *p, oc_error *err)
{
    oc_bundle_doc *d = p->doc;
    unsigned char *buf = malloc(READ_CHUNK);
    if (!buf)
        return oom(err);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < d->n_files;) {
        if (d->files[i].segment)
            rc = hash_blob(s, d, i, &i, buf, err);
        else
            i++;
    }
    free(buf);
    return rc == 0 ? oc_bundle_doc_seal(d, err) : -1;
}
