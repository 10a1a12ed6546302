/* outstream.c - plain or zstd-compressed output to an fd (see outstream.h). */
#include "io/outstream.h"

#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "io/atomicfile.h"

struct oc_outstream {
    int fd;
    char *what;
    ZSTD_CCtx *cctx; /* NULL: plain */
    unsigned char *buf;
    size_t cap;
    uint64_t in, out;
};

static int put(oc_outstream *o, const void *data, size_t len, oc_error *err)
{
    if (oc_write_all(o->fd, data, len, o->what, err) != 0)
        return -1;
    o->out += len;
    return 0;
}

oc_outstream *oc_outstream_new(int fd, const char *what, int zstd_level, int threads, oc_error *err)
{
    oc_outstream *o = calloc(1, sizeof *o);
    if (!o || !(o->what = strdup(what ? what : "output"))) {
        free(o);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    o->fd = fd;
    if (zstd_level == 0)
        return o;
    o->cap = ZSTD_CStreamOutSize();
    o->cctx = ZSTD_createCCtx();
    o->buf = o->cctx ? malloc(o->cap) : NULL;
    if (!o->buf) {
        oc_outstream_free(o);
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    size_t r = ZSTD_CCtx_setParameter(o->cctx, ZSTD_c_compressionLevel, zstd_level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(o->cctx, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(r)) {
        oc_error_set(err, OC_E_USAGE, "%s: zstd level %d: %s", o->what, zstd_level,
                     ZSTD_getErrorName(r));
        oc_outstream_free(o);
        return NULL;
    }
    /* a libzstd built without threads refuses workers: compress here then */
    if (threads > 0)
        (void)ZSTD_CCtx_setParameter(o->cctx, ZSTD_c_nbWorkers, threads);
    return o;
}

static int compress(oc_outstream *o, const void *data, size_t len, ZSTD_EndDirective mode,
                    oc_error *err)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {o->buf, o->cap, 0};
        size_t left = ZSTD_compressStream2(o->cctx, &out, &in, mode);
        if (ZSTD_isError(left)) {
            oc_error_set(err, OC_E_IO, "%s: zstd: %s", o->what, ZSTD_getErrorName(left));
            return -1;
        }
        if (out.pos && put(o, o->buf, out.pos, err) != 0)
            return -1;
        if (mode == ZSTD_e_continue ? in.pos == in.size : left == 0)
            return 0;
    }
}

int oc_outstream_write(oc_outstream *o, const void *data, size_t len, oc_error *err)
{
    o->in += len;
    if (!o->cctx)
        return put(o, data, len, err);
    return compress(o, data, len, ZSTD_e_continue, err);
}

int oc_outstream_finish(oc_outstream *o, oc_error *err)
{
    return o->cctx ? compress(o, NULL, 0, ZSTD_e_end, err) : 0;
}

uint64_t oc_outstream_in(const oc_outstream *o)
{
    return o->in;
}

uint64_t oc_outstream_out(const oc_outstream *o)
{
    return o->out;
}

void oc_outstream_free(oc_outstream *o)
{
    if (!o)
        return;
    ZSTD_freeCCtx(o->cctx);
    free(o->buf);
    free(o->what);
    free(o);
}

uint64_t oc_outstream_bound(int zstd, uint64_t n)
{
    if (!zstd)
        return n;
    /* ZSTD_COMPRESSBOUND, in 64 bits, plus the frame header and checksum */
    uint64_t small = n < (128u << 10) ? ((128u << 10) - n) >> 11 : 0;
    return n + (n >> 8) + small + 32;
}
