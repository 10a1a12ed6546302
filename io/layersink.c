/* layersink.c - hash, inflate, hash, write for one layer blob (see
 * layersink.h). Runs wherever its caller runs; it owns one file descriptor,
 * two hashers and one inflater. */
#include "io/layersink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomicfile.h"

struct oc_layer_sink {
    int fd;
    char *path;
    char *label;
    int taken;
    oc_sha256 *compressed;
    oc_sha256 *uncompressed;
    oc_inflater *inflater;
    uint64_t received;
    uint64_t written;
    int stream_failed; /* inflater refused the stream: only hash from now on */
    oc_error stream_err;
};

static int sink_out(void *opaque, const void *data, size_t len, oc_error *err)
{
    oc_layer_sink *s = opaque;
    oc_sha256_update(s->uncompressed, data, len);
    if (oc_write_all(s->fd, data, len, s->path, err) != 0)
        return -1;
    s->written += len;
    return 0;
}

oc_layer_sink *oc_layer_sink_new(const char *tmp_dir, const char *label, oc_comp comp,
                                 uint64_t max_out, oc_error *err)
{
    oc_layer_sink *s = calloc(1, sizeof *s);
    if (!s) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    s->fd = -1;
    s->label = strdup(label);
    if (asprintf(&s->path, "%s/layer-XXXXXX", tmp_dir) < 0)
        s->path = NULL;
    s->compressed = oc_sha256_new();
    s->uncompressed = oc_sha256_new();
    s->inflater = oc_inflater_new(comp, sink_out, s, max_out);
    if (!s->label || !s->path || !s->compressed || !s->uncompressed || !s->inflater) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        oc_layer_sink_free(s);
        return NULL;
    }
    s->fd = mkostemp(s->path, O_CLOEXEC);
    if (s->fd < 0) {
        oc_error_errno(err, errno, "cannot create a temporary file in %s", tmp_dir);
        free(s->path);
        s->path = NULL;
        oc_layer_sink_free(s);
        return NULL;
    }
    return s;
}

int oc_layer_sink_restart(oc_layer_sink *s, uint64_t offset, oc_error *err)
{
    if (offset == s->received)
        return 0; /* continuing where the previous transfer stopped */
    if (offset != 0) {
        oc_error_set(err, OC_E_NET,
                     "%s: cannot continue at byte %llu, %llu bytes were received", s->label,
                     (unsigned long long)offset, (unsigned long long)s->received);
        return -1;
    }
    if (ftruncate(s->fd, 0) != 0 || lseek(s->fd, 0, SEEK_SET) != 0) {
        oc_error_errno(err, errno, "%s: cannot truncate %s", s->label, s->path);
        return -1;
    }
    oc_sha256_reset(s->compressed);
    oc_sha256_reset(s->uncompressed);
    oc_inflater_reset(s->inflater);
    s->received = 0;
    s->written = 0;
    s->stream_failed = 0;
    oc_error_clear(&s->stream_err);
    return 0;
}

int oc_layer_sink_write(oc_layer_sink *s, const void *data, size_t len, oc_error *err)
{
    oc_sha256_update(s->compressed, data, len);
    s->received += len;
    if (s->stream_failed)
        return 0;
    if (oc_inflater_feed(s->inflater, data, len, &s->stream_err) != 0) {
        if (s->stream_err.code == OC_E_IO || s->stream_err.code == OC_E_NOSPACE ||
            s->stream_err.code == OC_E_NOMEM) {
            *err = s->stream_err; /* local trouble: stop now */
            oc_error_prefix(err, "%s", s->label);
            return -1;
        }
        s->stream_failed = 1;
    }
    return 0;
}

uint64_t oc_layer_sink_received(const oc_layer_sink *s)
{
    return s->received;
}

int oc_layer_sink_finish(oc_layer_sink *s, oc_layer_result *res, oc_error *err)
{
    if (!s->stream_failed && oc_inflater_finish(s->inflater, &s->stream_err) != 0)
        s->stream_failed = 1;
    res->stream_ok = !s->stream_failed;
    res->stream_err = s->stream_err;
    if (s->stream_failed)
        oc_error_prefix(&res->stream_err, "%s", s->label);
    if (fsync(s->fd) != 0) {
        oc_error_errno(err, errno, "%s: fsync %s", s->label, s->path);
        return -1;
    }
    oc_sha256_final_hex(s->compressed, res->compressed_hex);
    oc_sha256_final_hex(s->uncompressed, res->diff_hex);
    res->compressed_size = s->received;
    res->diff_size = s->written;
    res->comp = oc_inflater_comp(s->inflater);
    return 0;
}

const char *oc_layer_sink_path(const oc_layer_sink *s)
{
    return s->path;
}

char *oc_layer_sink_take_file(oc_layer_sink *s)
{
    s->taken = 1;
    return s->path ? strdup(s->path) : NULL;
}

void oc_layer_sink_free(oc_layer_sink *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->path && !s->taken)
        unlink(s->path);
    free(s->path);
    free(s->label);
    oc_sha256_free(s->compressed);
    oc_sha256_free(s->uncompressed);
    oc_inflater_free(s->inflater);
    free(s);
}
