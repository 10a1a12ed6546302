/* pull.h - one image from a registry into verified local files.
 *
 * The job graph of one image: manifest (by tag or digest) -> for an index,
 * the platform's manifest by digest -> config blob -> every distinct layer
 * blob in parallel. Each document is checked against its digest (the
 * manifest against Docker-Content-Digest when sent and always when fetched
 * by digest), each layer's compressed bytes against the manifest's digest
 * and size, and its uncompressed tar against the config's diff_id. Layers
 * land as uncompressed tar files in work_dir; nothing is reported done
 * until all of it verified. */
#ifndef OC_ENGINE_PULL_H
#define OC_ENGINE_PULL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/registry/engine.h"
#include "engine/image/manifest.h"
#include "engine/image/ref.h"
#include "io/digest.h"
#include "sched/once.h"

typedef struct oc_pulled_layer {
    char *digest;                    /* "sha256:..." of the blob */
    char hex[OC_SHA256_HEX_LEN + 1]; /* its hex part: the member directory name */
    char *diff_id;                   /* "sha256:..." of the tar */
    char *path;                      /* the verified uncompressed tar (shared by duplicates) */
    int reused;                      /* path is the caller's copy (have_layer), not fetched */
    /* exact: the verified compressed bytes as the registry served them, in
     * a file on the work directory's file system, not yet placed (an
     * emitter moves it and sets this NULL); NULL when not kept. */
    char *blob_path;
    uint64_t tar_size;
    uint64_t blob_size;
} oc_pulled_layer;

typedef struct oc_pulled_image {
    char *manifest_digest; /* of the image manifest (not the index) */
    char *index_digest;    /* when the tag pointed at an index, else NULL */
    char *index_body;      /* that index's exact bytes (exact only), else NULL */
    size_t index_len;
    char *index_media_type;
    char *manifest_media_type;
    char *manifest_body;
    size_t manifest_len;
    char *config_digest;
    char config_hex[OC_SHA256_HEX_LEN + 1];
    char *config_body; /* the registry's exact bytes */
    size_t config_len;
    oc_pulled_layer *layers; /* manifest order; a repeated digest repeats here */
    size_t n_layers;
    char *platform; /* "os/arch[/variant]" from the config, or NULL */
    uint64_t bytes_fetched;
} oc_pulled_image;

typedef struct oc_pull_opts {
    const oc_platform *platform; /* wanted platform for an index */
    const char *work_dir;        /* where layer tars are written; must exist */
    /* Bounds on one uncompressed layer and on the image's layers together
     * (the tar bytes this pull decompresses); 0 = none, OC_LIMIT_DEFAULT =
     * max(OC_BOMB_FLOOR, OC_BOMB_RATIO x the compressed size). */
    uint64_t max_layer_bytes;
    uint64_t max_image_bytes;
    int no_sync_layers; /* layer files are copied and deleted: skip their fsync */
    /* Optional: keep the compressed bytes of large layers here as they
     * arrive, so a later run continues a broken download with Range
     * (io/blobpipe.h oc_blobpipe_keep_partial). */
    const char *partial_dir;
    /* Keep the registry's exact bytes too (the store's OCI layout): every
     * fetched layer's compressed bytes are written to a file as they are
     * hashed (in partial_dir when set, else in work_dir), fsynced, and
     * handed over verified (oc_pulled_layer.blob_path, layer_placed); an
     * index the tag names is kept in the result. A layer whose tar the
     * caller holds (have_layer) but whose blob it lacks (have_blob says 0)
     * has its compressed bytes fetched and verified alone: nothing is
     * inflated and the caller's tar is not touched. */
    int exact;
    int (*have_blob)(void *opaque, const char *digest, uint64_t size);
    void *have_blob_opaque;
    /* Optional: the verified config the caller holds (a store): return 1
     * with *body (malloc'd) and *len to use it instead of a GET (its digest
     * and size are checked as a fetched one's), 0 to fetch it. */
    int (*have_config)(void *opaque, const char *digest, uint64_t size, char **body, size_t *len);
    void *have_config_opaque;
    /* Optional: write a fetched layer's tar straight into the caller's file
     * (a tarball being assembled): return 1 with fd and the offset base it
     * starts at, 0 for a temp file of our own, -1 with err to fail. img has
     * its config and layer digests filled in; index is the layer's place in
     * the manifest. The layer's path is then NULL in the result. */
    int (*layer_output)(void *opaque, const oc_pulled_image *img, size_t index, int *fd,
                        uint64_t *base, oc_error *err);
    void *layer_output_opaque;
    /* Optional, with layer_output: a layer of the image verified (index:
     * its first place in the manifest; path: its file, NULL when it was
     * written to the caller's fd; the file lives until done returns). After
     * it, layer_output is asked again for the layers still being fetched
     * into temp files, in manifest order, and a layer it answers 1 for
     * moves there (what it wrote so far is copied; oc_blobpipe_move_output).
     * Loop thread. */
    void (*layer_verified)(void *opaque, const oc_pulled_image *img, size_t index, const char *path,
                           uint64_t tar_size);
    /* Run the layers in manifest order (the first layer's work first)
     * rather than the biggest first: a tarball that places them in order
     * then streams nearly all of them into place. */
    int in_manifest_order;
    /* Optional: the manifest (or index) the reference's digest names, already
     * fetched by the caller: used instead of a GET (its digest is checked). */
    const char *manifest_body;
    size_t manifest_len;
    const char *manifest_type; /* its Content-Type */
    /* Optional: a verified copy of a layer the caller already holds (a store).
     * Return 1 with *path (malloc'd; the file is never deleted by the pull)
     * and *tar_size to reuse it, 0 to fetch the layer. */
    int (*have_layer)(void *opaque, const char *digest, const char *diff_id, char **path,
                      uint64_t *tar_size);
    void *have_layer_opaque;
    /* Optional: layers in flight across pulls of one run (sched/once.h), so
     * a layer shared by images pulled at the same time is fetched once. The
     * value remembered per digest is "<tar_size> <path>" of the placed file,
     * so layer_placed must be set too. */
    struct oc_once *in_flight;
    /* Optional: called on the loop thread as soon as a fetched layer has
     * verified: move the file at tmp_path into its final place and return
     * that path (malloc'd) in *final_path, or -1 with err. The pull will not
     * delete the placed file. With exact, layer->blob_path is the verified
     * compressed copy to place too; a layer whose tar the caller held
     * (only its blob was fetched) comes with tmp_path NULL and layer->path
     * the caller's tar. */
    int (*layer_placed)(void *opaque, const oc_pulled_layer *layer, const char *tmp_path,
                        char **final_path, oc_error *err);
    void *layer_placed_opaque;
    /* layer_placed is safe on any thread: it then runs on the pipeline's io
     * pool, so its renames and fsyncs never hold up the loop (the downloads
     * of the other layers); the pull goes on on the loop when it returns. */
    int layer_placed_any_thread;
    /* Optional: other processes writing the same store (a sharded mirror).
     * Before this pull fetches a layer (have_layer said no and no other pull
     * of the run has it in flight), claim_layer is asked: 0 fetch it
     * (release_layer follows when the fetch is over, placed or failed); 1
     * another live process is fetching it: the pull waits until again is
     * called, then asks have_layer (the other may have placed it) and
     * claim_layer once more; -1 with err fails the layer. */
    int (*claim_layer)(void *opaque, const char *digest, void (*again)(void *again_opaque),
                       void *again_opaque, oc_error *err);
    void (*release_layer)(void *opaque, const char *digest);
    void *claim_opaque;
    /* Optional: bytes of layer blobs as they arrive, for progress. */
    void (*on_bytes)(void *opaque, uint64_t n);
    void (*on_layer)(void *opaque, int started, uint64_t blob_size); /* 1 started, 0 ended */
    void *progress_opaque;
} oc_pull_opts;

typedef void (*oc_pull_done)(void *opaque, oc_pulled_image *img, const oc_error *err);

/* Start pulling ref. done runs once, from the loop, with the image or with
 * an error naming the image, the blob and the cause. The image and its layer
 * files live until done returns: an emitter uses them inside done, and may
 * move a layer file away (then it sets that layer's path to NULL). */
int oc_pull_start(oc_engine *e, const oc_ref *ref, const oc_pull_opts *opts, oc_pull_done done,
                  void *opaque, oc_error *err);

#endif
