/* store.h - a merged unique-names store on disk (DESIGN.md 7.1): opening it
 * under the right lock, its scratch space, the known-good markers, the
 * catalog on disk, and finding an image in it.
 *
 * Layout (the first four are occystrap 0.2.0's; the rest is ours, hidden
 * from `tar -cf x.tar *`):
 *   STORE/<layer-hex>/layer.tar           uncompressed layer, by blob digest
 *   STORE/<config-hex>.json               config, the registry's bytes
 *   STORE/manifest-<image>-<tag>.json     one image (store_image.h)
 *   STORE/catalog.json                    image -> tag -> manifest file (catalog.h)
 *   STORE/.occystrap/lock                 store lock (flock)
 *   STORE/.occystrap/catalog.lock         catalog read-merge-write lock
 *   STORE/.occystrap/blobs/<hex>.json     known-good marker of a layer or config
 *   STORE/.tmp/run-XXXXXX/                one writer's scratch (flocked by it)
 *
 * Locks. A writer (fetch) holds the store lock shared for its whole run and
 * its run directory exclusively; gc holds the store lock exclusively, so gc
 * never runs beside a writer. The catalog is rewritten under the catalog
 * lock: read what is on disk at that moment, merge, write a temporary,
 * fsync, rename, so concurrent writers all land and a crash leaves the old
 * or the new catalog. Readers (list, verify, recreate-image) take the store
 * lock shared when the store has one; a store that was never written by us
 * (0.2.0, read-only media) is read without it, and a reader never creates
 * anything in the store.
 *
 * Known-good. A marker is written (atomically) only after the blob it
 * describes was verified and renamed into place: for a layer {"kind":
 * "layer", "digest", "diff_id", "size" (compressed), "tar_size",
 * "verified_at"}, for a config {"kind": "config", "digest", "size",
 * "verified_at"}. A layer is reused only when its marker names the same
 * digest and diff_id and layer.tar has tar_size bytes; anything else (no
 * marker: a 0.2.0 store, a crash between rename and marker) is fetched
 * again. `verify` re-hashes everything.
 *
 * Leftovers. Scratch lives in per-run directories that their owner keeps
 * locked. A writer that finds the store lock free (no one else at work)
 * empties .tmp; otherwise it removes only run directories whose lock it can
 * take, i.e. whose owner died. A run directory is created under a name the
 * cleaner ignores (.new-XXXXXX), locked, then renamed to run-XXXXXX, so a
 * cleaner never sees an unlocked live one. */
#ifndef OC_ENGINE_STORE_H
#define OC_ENGINE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/store/catalog.h"
#include "engine/store/store_image.h"
#include "io/error.h"

typedef enum oc_store_mode {
    OC_STORE_READ = 0, /* must exist; shared lock when there is one; writes nothing */
    OC_STORE_WRITE,    /* created if missing; shared lock and a private run directory */
    OC_STORE_GC,       /* must exist; exclusive lock (waits for writers); .tmp emptied */
} oc_store_mode;

typedef struct oc_store oc_store;

oc_store *oc_store_open(const char *dir, oc_store_mode mode, oc_error *err);
/* Removes the run directory and releases the locks. NULL is fine. */
void oc_store_close(oc_store *s);

const char *oc_store_dir(const oc_store *s);
/* This run's scratch directory (WRITE only, else NULL): temporaries and
 * pulled layers go here, on the store's file system. */
const char *oc_store_run_dir(const oc_store *s);
/* Where a writer puts temporaries: its run directory, or (GC mode, alone
 * in the store) STORE/.tmp, made when missing. NULL with err on failure. */
const char *oc_store_scratch_dir(oc_store *s, oc_error *err);
/* Replace path (in the store) with len bytes of text, whole or not at
 * all, through the scratch directory; the crash point named crash
 * (oc_store_crash_point) falls between the write and the rename. */
int oc_store_replace_file(oc_store *s, const char *path, const char *text, size_t len,
                          const char *crash, oc_error *err);
/* STORE/name, malloc'd (NULL when out of memory). */
char *oc_store_path(const oc_store *s, const char *name);

/* ---- known-good markers ---- */

typedef struct oc_blob_mark {
    int is_layer;                        /* "layer", else "config" */
    char digest[8 + OC_SHA256_HEX_LEN];  /* "sha256:<hex>" */
    char diff_id[8 + OC_SHA256_HEX_LEN]; /* layers */
    uint64_t size;                       /* blob size (compressed, for a layer) */
    uint64_t tar_size;                   /* layers: layer.tar size */
    char verified_at[32];
} oc_blob_mark;

/* STORE/.occystrap/blobs/<hex>.json, malloc'd. */
char *oc_store_mark_path(const oc_store *s, const char *hex);
/* 1 read, 0 no marker, -1 unreadable or malformed (err says why). */
int oc_store_mark_read(const oc_store *s, const char *hex, oc_blob_mark *m, oc_error *err);
/* Write (replace) the marker of hex; WRITE mode. verified_at is filled in
 * when empty. A writer remembers the markers it wrote or found valid for
 * the rest of its run (have_layer and image_intact then cost a stat, not a
 * read and a parse, per blob), so a marker is read from disk at most once
 * per run while it stays valid. Safe on any thread (the pipeline's io
 * threads place layers and write their markers while the loop looks
 * markers up). */
int oc_store_mark_write(oc_store *s, const char *hex, oc_blob_mark *m, oc_error *err);

/* A file's identity: a cached fact about a file holds while it is the same
 * (inode, size and mtime unchanged). */
typedef struct oc_file_id {
    uint64_t ino;
    uint64_t size;
    int64_t mtime_s;
    long mtime_ns;
} oc_file_id;

/* The markers this run holds valid, each with its file's identity then
 * (the image index keeps them across runs: image_index.h). */
typedef void (*oc_store_mark_visit)(void *opaque, const char *hex, const oc_blob_mark *m,
                                    const oc_file_id *id);
void oc_store_marks_foreach(const oc_store *s, oc_store_mark_visit fn, void *opaque);
size_t oc_store_marks_count(const oc_store *s);
/* Seed the run's cache with a marker known valid while its file has
 * identity id (checked by a stat before each use, as any cached marker).
 * WRITE mode; ignored otherwise or when m does not name hex. */
void oc_store_marks_seed(oc_store *s, const char *hex, const oc_blob_mark *m, const oc_file_id *id);

/* oc_pull_opts.have_layer for this store (opaque is the oc_store). */
int oc_store_have_layer(void *opaque, const char *digest, const char *diff_id, char **path,
                        uint64_t *tar_size);

/* oc_pull_opts.have_config for this store (opaque is the oc_store): the
 * config's bytes when it is in place with a config marker of that size and
 * its bytes hash to its digest (configs are small; the pull checks them
 * again as it would a fetched one's). */
int oc_store_have_config(void *opaque, const char *digest, uint64_t size, char **body, size_t *len);

/* Whether every blob the image names is still in place as last verified:
 * the config and each layer.tar exist with a marker of their kind and the
 * size it records (stat only: no hashing; verify does that). 1 yes; 0 no,
 * with the first missing or changed file in why. */
int oc_store_image_intact(const oc_store *s, const oc_store_image *si, char *why, size_t cap);

/* ---- catalog and images ---- */

/* catalog.json as on disk now; a missing file is an empty catalog. */
int oc_store_catalog_load(const oc_store *s, oc_catalog **out, oc_error *err);
/* Record image:tag -> manifest_file: under the catalog lock, merged with
 * the catalog on disk at that moment, written atomically. WRITE mode. */
int oc_store_catalog_add(oc_store *s, const char *image, const char *tag, const char *manifest_file,
                         oc_error *err);
/* The pieces of oc_store_catalog_add, for a caller that merges many entries
 * at once (catalog_batch.h): take the catalog lock (an fd for
 * oc_store_catalog_unlock), and write c as catalog.json atomically (a
 * temporary in the run directory, fsync, rename, fsync of the store) while
 * holding it. WRITE mode, or GC mode (alone in the store: .tmp is used). */
int oc_store_catalog_lock(oc_store *s, oc_error *err);
void oc_store_catalog_unlock(int fd);
int oc_store_catalog_replace(oc_store *s, const oc_catalog *c, oc_error *err);

/* The image image:tag: the catalog's manifest file, or the file 0.2.0's
 * naming rule gives when the catalog lacks it (a run that died between the
 * two writes). OC_E_NOTFOUND names what the store holds for image (or its
 * images). *manifest_file (may be NULL) receives the file name. */
int oc_store_find(const oc_store *s, const char *image, const char *tag, oc_store_image *si,
                  char **manifest_file, oc_error *err);
/* The same with a catalog the caller already holds (a mirror run reads
 * catalog.json once, not once per image). */
int oc_store_find_in(const oc_store *s, const oc_catalog *c, const char *image, const char *tag,
                     oc_store_image *si, char **manifest_file, oc_error *err);
/* oc_store_find_in without the message listing what the store holds (its
 * cost grows with the store): 0 found, 1 the store has no such image, -1
 * error (a manifest file that does not parse, ...). */
int oc_store_lookup(const oc_store *s, const oc_catalog *c, const char *image, const char *tag,
                    oc_store_image *si, char **manifest_file, oc_error *err);

/* What the store directory holds, each list sorted. */
typedef struct oc_store_entries {
    char **layers; /* hex of each <hex>/ directory */
    size_t n_layers;
    char **configs; /* hex of each <hex>.json file */
    size_t n_configs;
    char **manifests; /* names of the manifest*.json files */
    size_t n_manifests;
    char **marks; /* hex of each .occystrap/blobs/<hex>.json */
    size_t n_marks;
} oc_store_entries;

int oc_store_entries_read(const oc_store *s, oc_store_entries *e, oc_error *err);
void oc_store_entries_free(oc_store_entries *e);
/* Index of name in one of the sorted lists, or -1. */
long oc_store_entries_find(char *const *list, size_t n, const char *name);

/* UTC "YYYY-MM-DDTHH:MM:SSZ". */
void oc_store_now(char out[32]);

/* Test hook: when $OCCYSTRAP_TEST_CRASH_AT equals name, the process kills
 * itself with SIGKILL here (a crash at a chosen moment). Names used:
 * "layer-placed" (layer renamed in, marker not yet written),
 * "manifest-written" (manifest file in place, catalog not yet updated),
 * "catalog-write" (new catalog written to its temporary, not renamed). */
void oc_store_crash_point(const char *name);

#endif
