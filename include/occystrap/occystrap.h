/* occystrap/occystrap.h - the occystrap library's public interface.
 *
 * occystrap mirrors container images from registries into verified local
 * files: docker-load tarballs, extracted directories, and a deduplicated
 * store that many images share; and pushes a store's images, or a list's
 * straight from their registries, into a registry with every digest
 * unchanged. This header is all a program needs (the occystrap command is
 * written against it and nothing else).
 *
 * Shape (libuv's vocabulary, curl's split of tool and library):
 * - The caller owns the libuv loop. oc_engine_new() puts an engine on it;
 *   jobs (a fetch, a mirror run, a push) are started on the engine with an
 *   options struct and a completion callback, and run while the caller runs
 *   the loop. The engine never calls uv_run; oc_engine_close() starts its
 *   teardown and calls back once every handle it opened is closed, after
 *   which the caller may close its loop.
 * - The library never prints and never exits. What it has to say arrives
 *   through the engine's event callback (log lines with a level, job and
 *   blob progress, each mirror entry or pushed image as it finishes);
 *   failures are oc_error values with a message that names the image, the
 *   blob and the cause; results are data (oc_mirror_report,
 *   oc_push_report), never process exit codes.
 * - The store commands (export, list, verify, gc, expand) need no network
 *   and no loop: they are plain calls that return when done.
 * - serve is a job too: a read-only registry over a store, on the caller's
 *   loop, until oc_serve_stop or oc_engine_interrupt.
 *
 * Threads: every call and callback happens on the loop's thread, except the
 *   store commands, which may run on any thread (one call per store at a
 *   time is not required: the store's own locks order them).
 * Versioning: OCCYSTRAP_API_VERSION grows when this header changes in a way
 *   that breaks callers; every options struct is filled by its _init()
 *   function first, which records the version the caller was built with. */
#ifndef OCCYSTRAP_H
#define OCCYSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "occystrap/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCCYSTRAP_API_VERSION 2

/* A size bound left at its default, the guard against decompression bombs:
 * max(1 GiB, 100 times the compressed size) (of the layer for a layer's
 * bound, of the image's layers for the image's). 0 as a bound means none. */
#define OC_LIMIT_DEFAULT UINT64_MAX

/* ---- the library ---------------------------------------------------- */

/* occystrap's version, e.g. "0.4.0". */
OC_API const char *oc_version(void);
/* Lines naming occystrap's version and those of the libraries it runs on,
 * with what matters about each (HTTP/2 through nghttp2, ISA-L in use), as
 * `occystrap --version` shows them. Returns the length written (the text
 * is cut, always terminated, when size is too small). */
OC_API size_t oc_version_describe(char *buf, size_t size);
/* Process-wide set-up of the HTTP library (libcurl's global init): call
 * once before the first engine, from one thread. */
OC_API int oc_global_init(oc_error *err);
OC_API void oc_global_cleanup(void);

/* ---- events ------------------------------------------------------------ */

typedef enum oc_log_level {
    OC_LOG_ERROR = 0, /* something failed (also reported as an oc_error) */
    OC_LOG_WARNING,   /* worth a human's attention; the work goes on */
    OC_LOG_INFO,      /* a summary line a quiet run would not show */
    OC_LOG_DEBUG,     /* every request (verbose >= 1) */
    OC_LOG_TRACE,     /* the HTTP library's own trace (verbose >= 2) */
} oc_log_level;

typedef struct oc_mirror_entry oc_mirror_entry;
typedef struct oc_push_image oc_push_image;

typedef enum oc_event_kind {
    OC_EVENT_LOG = 0,        /* level, message */
    OC_EVENT_JOB_STARTED,    /* count: entries (mirror) or 1 (fetch) */
    OC_EVENT_JOB_FINISHED,   /* the job's completion callback follows */
    OC_EVENT_BLOB_STARTED,   /* digest, size: a layer download begins */
    OC_EVENT_BLOB_BYTES,     /* bytes: more of a layer arrived */
    OC_EVENT_BLOB_FINISHED,  /* digest: a layer download ended (either way) */
    OC_EVENT_BLOB_REUSED,    /* digest, size: a layer the store already held */
    OC_EVENT_ENTRY_FINISHED, /* entry: one mirror entry is done (any status) */
    OC_EVENT_PUSH_FINISHED,  /* pushed: one image of a push is done (any status) */
    OC_EVENT_REQUEST,        /* message: serve answered a request (its access-log line) */
} oc_event_kind;

typedef struct oc_event {
    oc_event_kind kind;
    oc_log_level level;           /* OC_EVENT_LOG */
    const char *message;          /* OC_EVENT_LOG: one line, no newline */
    double seconds;               /* since the engine was made */
    const char *digest;           /* blob events */
    uint64_t size;                /* BLOB_STARTED, BLOB_REUSED: the blob's size */
    uint64_t bytes;               /* BLOB_BYTES */
    uint64_t count;               /* JOB_STARTED */
    const oc_mirror_entry *entry; /* ENTRY_FINISHED */
    const oc_push_image *pushed;  /* PUSH_FINISHED */
} oc_event;

/* Called on the loop thread; the event and its strings live until it
 * returns. It must not close the engine. */
typedef void (*oc_event_cb)(const oc_event *ev, void *opaque);

/* ---- the engine ---------------------------------------------------------- */

typedef struct oc_engine oc_engine;

typedef struct oc_engine_options {
    int api_version;         /* set by oc_engine_options_init */
    const char *ca_file;     /* extra CA bundle for TLS registries */
    int insecure;            /* plain HTTP (skip TLS verification if https is forced) */
    const char *username;    /* credentials for every registry; else the config */
    const char *password;    /* file's, else ~/.docker/config.json's */
    const char *config_file; /* per-registry settings (JSON), or NULL */
    unsigned jobs;           /* requests in flight in all; 0 = 32 (or the config's) */
    unsigned per_registry;   /* requests in flight per registry; 0 = 8 */
    int retries;             /* attempts per request; 0 = 5 (or the config's) */
    long stall_seconds;      /* abort and retry a transfer idle this long; 0 = 30 */
    long rate_limit_wait_s;  /* longest wait for a registry's rate limit or a
                                Retry-After, beyond which it fails; 0 = 60 (or the config's) */
    int verbose;             /* 1: a DEBUG event per request; 2: the HTTP trace too */
    uint64_t random_seed;    /* retry jitter; 0 = from the clock and the pid */
    /* The layer pipeline: 0 keeps each default. */
    size_t pipe_chunk_size; /* bytes per buffer */
    int pipe_in_chunks;     /* compressed buffers per layer */
    int pipe_out_bufs;      /* uncompressed buffers per layer */
    int pipe_threads;       /* worker threads; 0 = the cores */
    /* How layer files that are synced reach the disk: 0 auto (direct I/O on
     * ext4, xfs and btrfs, else the page cache with writeback started as
     * they are written), 1 direct, 2 writeback, 3 the page cache alone
     * (all of it written back by the final fsync). */
    int pipe_write;
    oc_event_cb on_event; /* NULL: events are dropped */
    void *event_opaque;
} oc_engine_options;

OC_API void oc_engine_options_init(oc_engine_options *o);
/* An engine on loop: nothing runs until the caller runs the loop. */
OC_API int oc_engine_new(uv_loop_t *loop, const oc_engine_options *o, oc_engine **out,
                         oc_error *err);
/* Stop every job of the engine as soon as possible: transfers in flight are
 * cancelled, none start, retries and waits end; each job then completes
 * with OC_E_CANCELLED. What verified is kept. signum names the cause in
 * messages ("interrupted by SIGTERM"); 0 names none. Safe to call twice. */
OC_API void oc_engine_interrupt(oc_engine *e, int signum);
/* The signal passed to oc_engine_interrupt, -1 for 0, or 0 if never. */
OC_API int oc_engine_interrupted(const oc_engine *e);
/* Start closing: the jobs must have completed. closed(opaque) runs from the
 * loop once every handle is closed and the engine is freed. */
OC_API void oc_engine_close(oc_engine *e, void (*closed)(void *opaque), void *opaque);

/* ---- fetch: one image into a tarball or a directory ----------------------- */

typedef enum oc_fetch_target {
    OC_FETCH_TARFILE = 0, /* a docker-load tarball at path */
    OC_FETCH_EXTRACTED,   /* the tarball's files in the directory path */
} oc_fetch_target;

typedef enum oc_expand_strategy {
    OC_EXPAND_AUTO = 0, /* write-once */
    OC_EXPAND_OLDEST_FIRST,
    OC_EXPAND_WRITE_ONCE,
} oc_expand_strategy;

typedef struct oc_expand_opts {
    oc_expand_strategy strategy;
    uint64_t max_bytes; /* bound on file bytes written per expand; 0 = none */
    int no_sync;        /* skip the final syncfs (tests, benchmarks) */
} oc_expand_opts;

/* What an expansion did (and could not do: not running as root). */
typedef struct oc_expand_stats {
    uint64_t entries; /* tar entries read */
    uint64_t files, dirs, symlinks, hardlinks, others;
    uint64_t bytes;           /* file bytes written */
    uint64_t whiteouts;       /* whiteout and opaque markers applied */
    uint64_t owners_skipped;  /* entries not owned by us whose owner we could not set */
    uint64_t devices_skipped; /* device nodes not made (not root) */
    uint64_t warnings;        /* other things that could not be restored */
    char first_warning[256];
    double seconds;
} oc_expand_stats;

typedef struct oc_fetch_options {
    int api_version;      /* set by oc_fetch_options_init */
    const char *registry; /* host[:port]; "docker.io" is Docker Hub */
    const char *image;    /* repository; a one-part Docker Hub name gets library/ */
    const char *tag;      /* a tag, or a digest "sha256:..." */
    oc_fetch_target target;
    const char *path;     /* TARFILE or DIR */
    const char *platform; /* "os/arch[/variant]" from an index; NULL = linux/amd64 */
    int unique_names;     /* EXTRACTED: the merged-store layout (catalog.json) */
    int exact;            /* with unique_names: the registry's exact bytes too, in the store's OCI
                             layout STORE/oci/ (compressed layers, config, manifest, index) */
    int expand;           /* EXTRACTED: layers and the root filesystem expanded too */
    oc_expand_opts expand_opts;
    /* Refuse a layer whose tar grows beyond this, and an image whose
     * layers' tars grow beyond max_image_bytes in all (counted as they are
     * decompressed, so a bomb stops early): OC_LIMIT_DEFAULT (what init
     * sets) or a number of bytes; 0 = none. The image's default never
     * refuses what a layer bound set here allows one layer (with
     * max_layer_bytes 0 and max_image_bytes left at its default, neither
     * bound applies). */
    uint64_t max_layer_bytes;
    uint64_t max_image_bytes;
} oc_fetch_options;

typedef struct oc_fetch_result {
    const oc_error *error; /* NULL when the image was written */
    const char *name;      /* "image:tag" as docker names it */
    size_t layers_reused;  /* EXTRACTED: layers the directory already held */
    int interrupted;       /* as oc_engine_interrupted(), when it stopped the fetch */
} oc_fetch_result;

typedef void (*oc_fetch_done_cb)(const oc_fetch_result *res, void *opaque);

OC_API void oc_fetch_options_init(oc_fetch_options *o);
/* Start the fetch; done runs once, from the loop. A fetch that fails or is
 * interrupted leaves no TARFILE and no scratch files. When it cannot start,
 * err->code is OC_E_USAGE if the options are at fault (a malformed
 * reference or platform), another code if the target is (it cannot be
 * created or is not a store). */
OC_API int oc_fetch_start(oc_engine *e, const oc_fetch_options *o, oc_fetch_done_cb done,
                          void *opaque, oc_error *err);

/* ---- mirror: every entry of a list into one store, at once ------------------
 *
 * A list entry is [REGISTRY/]REPO(:TAG|@sha256:DIGEST), or a whole
 * repository: REPO:* (every tag) or REPO:/REGEX/ (the tags the PCRE2
 * REGEX matches whole); the config file's "repositories" section
 * may narrow those by a semver range, exclude regexes and latest: N. A run
 * may take one shard of the list (shard_k of shard_n: the entries whose
 * reference hashes there, DESIGN.md 7.4), so N processes share one list,
 * into one store or several. */

typedef enum oc_entry_status {
    OC_ENTRY_PENDING = 0,
    OC_ENTRY_UP_TO_DATE,  /* the registry's digest is the one the store holds */
    OC_ENTRY_FETCHED,     /* stored now */
    OC_ENTRY_FAILED,      /* error says why; the other entries went on */
    OC_ENTRY_WOULD_FETCH, /* dry run */
    OC_ENTRY_INTERRUPTED, /* stopped by oc_engine_interrupt before it was mirrored */
} oc_entry_status;

/* One entry of the list, as the report and ENTRY_FINISHED events give it. */
struct oc_mirror_entry {
    int line;              /* in the list file */
    const char *reference; /* the entry's text */
    const char *name;      /* the image's name in the store, or NULL */
    const char *digest;    /* what the tag resolved to, or NULL */
    oc_entry_status status;
    const char *const *platforms; /* "os/arch[/variant]" of each stored image */
    size_t n_platforms;
    const oc_error *error; /* FAILED, INTERRUPTED: why */
    const char *note;      /* WOULD_FETCH: what would be fetched */
    uint64_t bytes_fetched;
    uint64_t bytes_reused;
    double seconds;
    /* With referrers: the image's referrers (signatures, SBOMs,
     * attestations) and tag-schema tags fetched now, and those the store
     * held already; why some could not be mirrored (the image is still
     * mirrored unless they were required), or NULL. */
    size_t referrers_fetched, referrers_known;
    const oc_error *referrers_error;
};

typedef enum oc_referrers_mode {
    OC_REFERRERS_OFF = 0,  /* nothing of them is asked for */
    OC_REFERRERS_ON,       /* mirrored; a failure is reported, the image still counts */
    OC_REFERRERS_REQUIRED, /* a failure fails the image's entry */
} oc_referrers_mode;

typedef struct oc_mirror_options {
    int api_version;       /* set by oc_mirror_options_init */
    const char *list_path; /* one entry a line, "-" = standard input */
    const char *list_text; /* or the list itself (the same lines), if list_path is NULL */
    const char *store_dir;
    const char *default_registry; /* for entries that name none; NULL = Docker Hub */
    const char *const *platforms; /* "os/arch[/variant]", or one "all"; none = linux/amd64 */
    size_t n_platforms;
    int fail_fast;    /* stop scheduling at the first failure */
    int dry_run;      /* say what would be fetched, fetch nothing */
    long lock_wait_s; /* wait this long for another run on the store; 0 = don't */
    unsigned shard_k; /* this run is shard K (1..N) of N; N 0 or 1: the whole list */
    unsigned shard_n;
    /* Keep the registry's exact bytes too: the store's OCI image layout
     * STORE/oci/ (compressed layers, configs, manifests, indexes, and
     * index.json naming each image and tag). 1 by oc_mirror_options_init;
     * 0 keeps only the 0.2.0 files (and drops index.json's entry of every
     * tag it stores, which would name older bytes). An image the store
     * holds without its exact bytes gains them on the next run that keeps
     * them (only the compressed blobs are fetched). */
    int exact;
    /* Each image's bounds, as oc_fetch_options' (init: OC_LIMIT_DEFAULT). */
    uint64_t max_layer_bytes;
    uint64_t max_image_bytes;
    /* The images' referrers (DESIGN.md 7.5): for each manifest mirrored
     * (the tag's, and each platform's of an index), the artifacts that
     * refer to it (the referrers API, else the fallback tag sha256-<hex>)
     * and cosign's tags sha256-<hex>.sig/.att/.sbom, recursively up to
     * referrers_depth levels (0 = 3), only the referrer_types given (none =
     * all), with their exact bytes into STORE/oci/. The config file's
     * "referrers" (per registry, per repository) wins over this. Needs
     * exact. */
    oc_referrers_mode referrers;
    unsigned referrers_depth;
    const char *const *referrer_types;
    size_t n_referrer_types;
} oc_mirror_options;

typedef struct oc_mirror_report {
    const oc_mirror_entry *entries; /* in list order */
    size_t n_entries;
    size_t fetched, up_to_date, failed, would_fetch, interrupted;
    uint64_t bytes_fetched, bytes_reused;
    /* The run itself failed (the list, the store, the lock), or it was
     * interrupted, or ended with entries unfinished: error says so. */
    const oc_error *error;
    int config_error;          /* error is the caller's: a bad list or option, a lock held */
    int signal;                /* as oc_engine_interrupted() when interrupted */
    unsigned catalog_writes;   /* times catalog.json was renamed into place (in batches) */
    unsigned blob_waits;       /* waits for a layer another process was downloading */
    unsigned shard_k, shard_n; /* the shard this run took, 0 0 for the whole list */
} oc_mirror_report;

/* The report lives until the callback returns. */
typedef void (*oc_mirror_done_cb)(const oc_mirror_report *report, void *opaque);

OC_API void oc_mirror_options_init(oc_mirror_options *o);
/* Start the run; done runs once, from the loop, with the report. Returns
 * -1 only when nothing could start (err). */
OC_API int oc_mirror_start(oc_engine *e, const oc_mirror_options *o, oc_mirror_done_cb done,
                           void *opaque, oc_error *err);

/* ---- push: a store's exact bytes into a registry ------------------------------- */

typedef enum oc_push_status {
    OC_PUSH_PENDING = 0,
    OC_PUSH_PUSHED,      /* its manifests were put; the tag names the store's digest */
    OC_PUSH_UP_TO_DATE,  /* the tag already named that digest: nothing was sent */
    OC_PUSH_FAILED,      /* error says why; the other images went on */
    OC_PUSH_INTERRUPTED, /* stopped by oc_engine_interrupt before it was pushed */
} oc_push_status;

/* One image and tag of a push, as the report and PUSH_FINISHED events give
 * it. Its digest is the store's (the registry's when it was mirrored), and
 * the target's tag names the same digest when it is pushed. */
struct oc_push_image {
    const char *name;   /* the store's image name, e.g. "busybox" */
    const char *tag;    /* a tag, or a digest "sha256:..." */
    const char *target; /* "REGISTRY/REPOSITORY:TAG" (or "@sha256:...") it goes to */
    const char *digest; /* of the manifest or index, or NULL when unknown */
    oc_push_status status;
    const oc_error *error; /* FAILED, INTERRUPTED: why */
    const char *note;      /* something worth saying (a partial index), or NULL */
    size_t manifests;      /* manifests and indexes put */
    size_t blobs_uploaded, blobs_mounted, blobs_present;
    uint64_t bytes_uploaded; /* blob bytes this push sent (the sum of blob sizes) */
    uint64_t bytes_mounted;  /* linked from another repository of the target */
    uint64_t bytes_present;  /* the target had them already (HEAD) */
    uint64_t bytes_fetched;  /* mirror --to: read from the source registry */
    double seconds;
    /* What goes with an image (its referrers, DESIGN.md 7.6): the digest
     * it refers to, else NULL (an image). A referrer manifest's tag is its
     * digest; cosign's tags and the fallback tag are "sha256-<hex>[.sig]". */
    const char *subject;
    const char *artifact_type; /* a referrer's artifactType, or NULL */
};

typedef struct oc_push_options {
    int api_version;       /* set by oc_push_options_init */
    const char *store_dir; /* the store: its exact bytes are STORE/oci/ */
    const char *target;    /* REGISTRY[/PREFIX] */
    /* IMAGE[:TAG] (or IMAGE@sha256:...): an image's one tag, or every tag of
     * the image; none = every image and tag of the store. */
    const char *const *images;
    size_t n_images;
    /* Or, instead of a store (mirror --to): the images of a list (one
     * reference a line, as mirror's), streamed registry to registry through
     * a bounded buffer, each blob's digest checked before its upload is
     * committed; nothing on disk. */
    const char *list_path;        /* "-" = standard input */
    const char *list_text;        /* or the list itself */
    const char *default_registry; /* for entries that name none; NULL = Docker Hub */
    /* An index: NULL = every platform (the index keeps its digest);
     * "os/arch[/variant]" = that platform's manifest under the tag. */
    const char *platform;
    int keep_host;       /* PREFIX/<host>/<repository> instead of PREFIX/<repository> */
    uint64_t chunk_size; /* bytes per PATCH; blobs up to this go in one PUT; 0 = 32 MiB */
} oc_push_options;

typedef struct oc_push_report {
    const oc_push_image *images; /* in the store's (or the arguments') order */
    size_t n_images;
    size_t pushed, up_to_date, failed, interrupted;
    uint64_t bytes_uploaded, bytes_mounted, bytes_present;
    /* The run itself failed (the store, the target), or it was interrupted,
     * or ended with images unfinished: error says so. */
    const oc_error *error;
    int config_error; /* error is the caller's: a bad target, not a store */
    int signal;       /* as oc_engine_interrupted() when interrupted */
} oc_push_report;

/* The report lives until the callback returns. */
typedef void (*oc_push_done_cb)(const oc_push_report *report, void *opaque);

OC_API void oc_push_options_init(oc_push_options *o);
/* Push the store's images to the target registry, each to PREFIX/<its
 * repository> (the source registry's host dropped; Docker Hub names keep
 * library/), with their exact bytes: every digest is unchanged. Per image:
 * HEAD of the tag (the same digest there: nothing more), HEAD of each blob,
 * a mount from another repository of the target this run or the store
 * knows to hold it, an upload of the rest (resumed after a broken
 * connection from the registry's offset), then the manifests (an index's
 * children first). All images at once under the engine's caps; one
 * image's failure never stops the others. done runs once, from the loop.
 * Returns -1 only when nothing could start (err). */
OC_API int oc_push_start(oc_engine *e, const oc_push_options *o, oc_push_done_cb done, void *opaque,
                         oc_error *err);

/* ---- the store, without network ------------------------------------------------ */

typedef struct oc_image_tag {
    const char *image; /* as stored, e.g. "busybox" or "quay.io/org/x" */
    const char *tag;
} oc_image_tag;

/* Split "IMAGE:TAG" (the last ':' after the last '/') into malloc'd parts. */
OC_API int oc_image_tag_split(const char *text, char **image, char **tag, oc_error *err);

typedef struct oc_export_stats {
    size_t images, layers, layers_dups;
    uint64_t total_bytes; /* written, headers and padding included */
    uint64_t copy_file_range_bytes, sendfile_bytes, readwrite_bytes;
} oc_export_stats;

/* One docker-load tarball with the images of a store, each layer once (one
 * image: what fetch-to-tarfile writes for it, byte for byte). force_readwrite
 * copies with read/write instead of the kernel's copy (measurements). */
OC_API int oc_export(const char *store, const oc_image_tag *images, size_t n, const char *tarfile,
                     int force_readwrite, oc_export_stats *stats, oc_error *err);
/* The same images as one OCI image layout in a tar (an oci-archive: what
 * `skopeo copy oci-archive:TARFILE:IMAGE:TAG` and `podman load` read) of the
 * registry's exact bytes the store keeps in STORE/oci/: oci-layout,
 * index.json with the images' entries, every blob they reach, each once.
 * An image whose exact bytes the store lacks is OC_E_NOTFOUND naming it. */
OC_API int oc_export_oci(const char *store, const oc_image_tag *images, size_t n,
                         const char *tarfile, int force_readwrite, oc_export_stats *stats,
                         oc_error *err);

/* What a store holds, as a JSON document (malloc'd text): {"images": [{image,
 * tag, layers, bytes, fetched_at, manifest_digest, in_catalog, exact, ...}],
 * "distinct_layers", "layer_bytes", "bytes_without_sharing", "exact_images",
 * "problems"}; "exact" says whether STORE/oci/index.json names the image
 * with the digest it was stored at (its exact bytes are in the store). */
OC_API char *oc_store_listing(const char *store, oc_error *err);

typedef enum oc_verify_finding {
    OC_VERIFY_DAMAGED = 0, /* a file that is not what it must be */
    OC_VERIFY_NOTE,        /* odd but not damage */
    OC_VERIFY_REMOVED,     /* repair: a damaged blob and its marker removed */
    OC_VERIFY_KEPT,        /* repair: a damaged file that is not a blob, left alone */
    OC_VERIFY_LISTED,      /* repair: a complete image catalog.json lacked, listed */
} oc_verify_finding;

typedef void (*oc_verify_cb)(oc_verify_finding kind, const char *file, const char *msg,
                             void *opaque);

typedef struct oc_verify_stats {
    size_t manifests, configs, layers, markers;
    uint64_t bytes_hashed;
    size_t damaged, notes, removed;
    size_t listed;          /* repair: complete images put back into catalog.json */
    size_t oci_blobs;       /* files of STORE/oci/blobs/sha256 hashed */
    size_t oci_descriptors; /* entries of STORE/oci/index.json followed */
    size_t dropped;         /* repair: index.json entries dropped (they reached damage) */
    size_t referrers;       /* referrers (signatures, SBOMs, ...) of index.json checked */
} oc_verify_stats;

/* Re-hash everything in a store: the 0.2.0 files, and the exact bytes of
 * its OCI layout STORE/oci/ (every blob against its name, everything
 * index.json's entries reach in place). With repair (which waits for
 * running writers), each damaged layer or config is removed with its
 * marker and each damaged blob of STORE/oci/, the entries of index.json
 * that reached a damaged or missing blob are dropped, so the next mirror
 * fetches them again, and every complete image a killed run left out of
 * catalog.json is listed in it. Returns 0 when the check ran
 * (stats->damaged says what it found), -1 when it could not. */
OC_API int oc_verify(const char *store, int repair, oc_verify_cb cb, void *opaque,
                     oc_verify_stats *stats, oc_error *err);

typedef void (*oc_gc_cb)(const char *file, uint64_t bytes, void *opaque);

typedef struct oc_gc_stats {
    uint64_t bytes;
    size_t layers, configs, markers;
    size_t kept_layers, kept_configs;
    size_t oci_blobs, kept_oci_blobs; /* STORE/oci/blobs/sha256: removed, kept */
    size_t oci_referrers; /* referrers no image reaches, dropped from STORE/oci/index.json */
} oc_gc_stats;

/* Remove the blobs no image of the store references, the referrers
 * (signatures, SBOMs, attestations) of STORE/oci/index.json that no image
 * reaches any more (their image removed, their tag moved), and the blobs of
 * STORE/oci/ no entry of its index.json reaches (waits for writers). The
 * dropped referrers are reported through cb with 0 bytes. */
OC_API int oc_gc(const char *store, int dry_run, oc_gc_cb cb, void *opaque, oc_gc_stats *stats,
                 oc_error *err);

/* An image's merged root filesystem from a store, into dir (which must not
 * exist, or be empty), whiteouts applied. layers is set to the image's
 * number of layers. */
OC_API int oc_expand_image(const char *store, const char *image, const char *tag, const char *dir,
                           const oc_expand_opts *o, oc_expand_stats *stats, size_t *layers,
                           oc_error *err);
/* "auto", "oldest-first", "write-once" -> strategy; -1 if unknown. */
OC_API int oc_expand_strategy_parse(const char *text);
OC_API const char *oc_expand_strategy_name(oc_expand_strategy s);
/* "N entries (...), M MB; ..." for a summary line. */
OC_API void oc_expand_stats_format(const oc_expand_stats *s, char *buf, size_t cap);

/* ---- bundles: a store's exact bytes across an air gap -----------------------------
 *
 * A bundle is a tar (plain or zstd-compressed) of the exact bytes of some
 * images of a store (their manifests, indexes, configs and compressed
 * layers, as STORE/oci/ holds them), less every blob the inventory it is
 * made against lists, with a manifest of what it holds and the inventory
 * the receiving store will have after importing it (formats: DESIGN.md
 * 7.7). It may be cut into parts of a given size, each a tar that is
 * verifiable alone. Plain calls, no network, no loop; what they have to
 * say on the way is OC_EVENT_LOG events through on_event. */

/* One image (index.json entry) of a bundle. */
typedef struct oc_bundle_item {
    const char *ref;        /* "NAME:TAG" as the store names it */
    const char *digest;     /* of what the tag names (a manifest or an index) */
    const char *media_type; /* of that */
    int changed;            /* import: the store's index.json named another digest, or none */
} oc_bundle_item;

typedef struct oc_bundle_options {
    int api_version;       /* set by oc_bundle_options_init */
    const char *store_dir; /* the store whose exact bytes go */
    const char *out;       /* the bundle's file, "-" = standard output (one part only);
                              split into parts: OUT.001, OUT.002, ... */
    /* IMAGE[:TAG]: that tag (and its platform entries TAG+os-arch), or every
     * tag of IMAGE; none = every image of the store's OCI index. */
    const char *const *images;
    size_t n_images;
    /* What the receiving store holds: an inventory (oc_store_inventory), or a
     * bundle made earlier (or a part of one: the inventory it carries).
     * Images it names at the same digest are left out, and so is every blob
     * it lists. NULL: everything goes. */
    const char *since;
    uint64_t split;       /* at most this many bytes per part (compressed, with zstd); 0 = one */
    int zstd;             /* compress each part with zstd */
    int zstd_level;       /* 0 = 3 */
    int dry_run;          /* plan only: the report says what it would hold; nothing is read or
                             written but the store's documents */
    oc_event_cb on_event; /* OC_EVENT_LOG: each part written; NULL: none */
    void *event_opaque;
} oc_bundle_options;

typedef struct oc_bundle_report {
    const char *id;               /* "sha256:...": the bundle's name, in every part */
    const oc_bundle_item *images; /* the images it brings (changed since the inventory) */
    size_t n_images;
    size_t blobs;            /* distinct blobs it carries */
    size_t segments;         /* pieces of blobs cut at part boundaries */
    uint64_t bytes;          /* the blobs' bytes */
    size_t required;         /* blobs its images reach that it does not carry: */
    uint64_t required_bytes; /* the receiving store must hold them already */
    size_t unchanged;        /* images left out: the inventory names them as they are */
    size_t no_exact;         /* images left out: the store has no exact bytes for them */
    const char *since;       /* the inventory's digest, or NULL */
    const char *since_from;  /* "inventory FILE" or "bundle sha256:...", or NULL */
    unsigned parts;
    const char *const *part_paths; /* where each part went ("-": standard output) */
    const uint64_t *part_bytes;    /* each part's size (dry run: the tar's, uncompressed) */
    uint64_t written;              /* bytes written in all */
    int dry_run;
    double seconds;
} oc_bundle_report;

OC_API void oc_bundle_options_init(oc_bundle_options *o);
/* Plan the bundle (under the store's shared lock, so gc waits), then write
 * its parts, reading every blob once and hashing it on the way: a blob of
 * the store that does not hash to its name stops the bundle (run verify).
 * A failed bundle leaves no part. *report (may be NULL; free it with
 * oc_bundle_report_free) is filled whenever the plan was made. OC_E_USAGE
 * for the options' faults (an inventory that does not parse, a split size
 * too small to hold the manifest, several parts to "-"). */
OC_API int oc_bundle(const oc_bundle_options *o, oc_bundle_report **report, oc_error *err);
OC_API void oc_bundle_report_free(oc_bundle_report *r);

/* What a store holds, as an inventory document (DESIGN.md 7.8): the blobs
 * its index.json entries reach and those entries; malloc'd, *len (may be
 * NULL) its length. The far side writes it to be carried back. */
OC_API char *oc_store_inventory(const char *store, size_t *len, oc_error *err);

typedef struct oc_import_options {
    int api_version;          /* set by oc_import_options_init */
    const char *store_dir;    /* created when missing */
    const char *const *parts; /* a bundle, or parts of one in any order ("-": standard input) */
    size_t n_parts;
    oc_event_cb on_event; /* OC_EVENT_LOG: each part read, each damage found; NULL: none */
    void *event_opaque;
    /* Refuse a layer whose tar grows beyond this, as oc_fetch_options'
     * max_layer_bytes: OC_LIMIT_DEFAULT (what init sets) = max(1 GiB, 100x
     * its compressed size), a number of bytes, or 0 = none. */
    uint64_t max_layer_bytes;
} oc_import_options;

typedef struct oc_import_report {
    const char *id;      /* the bundle's */
    unsigned parts;      /* it has */
    unsigned parts_read; /* given and read to their end */
    const oc_bundle_item *images;
    size_t n_images;
    size_t files;    /* the bundle's files (blobs and segments) */
    size_t received; /* verified by this import */
    size_t present;  /* the store, or an earlier import of the bundle, had them */
    size_t damaged;  /* failed their digest, or their part could not be read on */
    size_t missing;  /* not verified yet: in parts not given, or damaged */
    uint64_t bytes_received;
    size_t layers_unpacked; /* layer.tar files made from the compressed blobs */
    size_t changed;         /* images whose index.json entry is new or changed */
    int complete;           /* the bundle's images are in the store */
    const char *staged;     /* incomplete: where the verified files wait for the rest */
    double seconds;
} oc_import_report;

OC_API void oc_import_options_init(oc_import_options *o);
/* Import a bundle into a store: check each part's manifest (the same
 * bundle, every name and size), refuse a bundle made against blobs the
 * store does not have (naming them) before anything is written; stream
 * every file in, verifying its digest before it is renamed into the
 * stage (STORE/.occystrap/import/<id>/, kept across runs, so a damaged
 * part carried again completes the import); once every file is there,
 * make each layer's layer.tar (inflated, checked against the config's
 * diff_id), place blobs, configs and layers, and add the images to
 * catalog.json and index.json in one locked step. Until then the store
 * proper is unchanged. Importing a bundle the store holds already changes
 * nothing. Returns 0 when complete; -1 otherwise (err names the part and
 * the file, or what is missing), with *report (may be NULL; free it with
 * oc_import_report_free) filled whenever the parts could be read. */
OC_API int oc_import(const oc_import_options *o, oc_import_report **report, oc_error *err);
OC_API void oc_import_report_free(oc_import_report *r);

/* ---- serve: a store as a read-only registry ------------------------------------ */

/* The pull side of the OCI distribution API over the store's exact bytes
 * (STORE/oci/): GET /v2/, GET and HEAD of manifests by tag and digest and
 * of blobs (Range, If-None-Match), tags/list and _catalog (n, last, Link),
 * the referrers API; any write is 405 UNSUPPORTED. HTTP/1.1 and HTTP/2
 * (ALPN h2 with TLS). Repository names: the store's image names with the
 * registry host dropped ("busybox" -> library/busybox, "quay.io/org/x" ->
 * org/x), or kept with keep_host. The store may be written (mirror) while it
 * is served: what a new index.json lists is served from the next request on.
 * The process should ignore SIGPIPE (a client that goes away mid-write). */
typedef struct oc_serve_options {
    int api_version;          /* set by oc_serve_options_init */
    const char *store_dir;    /* the store */
    const char *listen;       /* "HOST:PORT", "[IPV6]:PORT", ":PORT"; NULL = "0.0.0.0:5000" */
    const char *tls_cert;     /* PEM certificate chain and key: HTTPS (and HTTP/2 by */
    const char *tls_key;      /* ALPN); NULL = plain HTTP (HTTP/2 by prior knowledge) */
    const char *htpasswd;     /* Basic authentication: bcrypt ($2y$) and {SHA} entries */
    int keep_host;            /* repository names keep the registry host */
    int allow_rewritten;      /* images without exact bytes (0.2.0 layout only) are served
                                 with uncompressed-layer OCI manifests (other digests) */
    unsigned max_connections; /* 0 = 4096; more are closed at once */
    unsigned idle_timeout_s;  /* 0 = 30: an idle connection is closed after this */
    unsigned drain_timeout_s; /* 0 = 30: a stop waits this long for responses in flight */
    int no_access_log;        /* no OC_EVENT_REQUEST (nor the cost of making its line) */
} oc_serve_options;

typedef struct oc_serve_result {
    const oc_error *error; /* NULL: stopped as asked */
    int signal;            /* the signal that stopped it (oc_engine_interrupt), else 0 */
    uint64_t requests;     /* answered */
    uint64_t bytes;        /* response bodies sent */
    uint64_t connections;  /* served */
    uint64_t refused;      /* closed at once, over max_connections */
} oc_serve_result;

typedef void (*oc_serve_done_cb)(const oc_serve_result *res, void *opaque);
typedef struct oc_server oc_server;

OC_API void oc_serve_options_init(oc_serve_options *o);
/* Listen and serve: returns once listening (an INFO event says where), or
 * -1 (err) when the store, the address, the TLS files or the htpasswd file
 * will not do (OC_E_USAGE for the options' faults). Every request answered
 * is an OC_EVENT_REQUEST (unless no_access_log). done runs once, from the loop, after the server
 * stopped; *out (may be NULL) is valid until then. */
OC_API int oc_serve_start(oc_engine *e, const oc_serve_options *o, oc_serve_done_cb done,
                          void *opaque, oc_server **out, oc_error *err);
/* Stop gracefully: no new connections, idle ones closed, responses in
 * flight finish (for at most drain_timeout_s). oc_engine_interrupt does
 * the same. Safe to call twice, and from any callback. */
OC_API void oc_serve_stop(oc_server *s);
/* The address listened on, e.g. "127.0.0.1:5000" (the port the kernel
 * chose for port 0). */
OC_API const char *oc_serve_address(const oc_server *s);

#ifdef __cplusplus
}
#endif

#endif
