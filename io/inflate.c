/* inflate.c - streaming decompression of layer blobs (see inflate.h).
 *
 * gzip: we parse each member's header ourselves (RFC 1952: magic, method 8,
 * reserved flags clear, FEXTRA, FNAME, FCOMMENT and FHCRC checked) and hand
 * only the deflate data and the trailer to ISA-L's igzip with crc_flag =
 * ISAL_GZIP_NO_HDR_VER, which inflates and checks the CRC32/ISIZE trailer.
 * igzip's own header parsing (ISAL_GZIP) is not used because it is wrong when
 * a header with optional fields arrives split over several isal_inflate
 * calls (ISA-L 2.30 to 2.32 keep the parsed flags and the running header
 * CRC in a local of isal_inflate, so they are lost, or read uninitialised,
 * between calls), and network input splits anywhere.
 *
 * A gzip stream may hold several members back to back (pigz, concatenated
 * files). When a member's trailer has been checked (block_state ==
 * ISAL_BLOCK_FINISH), igzip has already handed back the input bytes it had
 * read ahead, so the next member starts exactly at next_in. Whatever follows
 * a member must be another member: anything else, padding zeros included,
 * is an error. That is stricter than gzip(1), which warns and ignores
 * trailing zeros, and the same as Go's compress/gzip that docker and
 * containerd use.
 *
 * zstd goes through libzstd's streaming decoder, which crosses frame
 * boundaries (skippable frames included) by itself; a frame that needs a
 * window above the library default (128 MiB) is refused, which bounds memory.
 *
 * OC_COMP_AUTO holds back the first bytes (at most 4) until they either match
 * a magic number or cannot, so input fed one byte at a time is sniffed the
 * same way as input fed in one piece. A stream shorter than a magic number is
 * taken as uncompressed.
 *
 * Output collects in one buffer that goes out when full and at finish, so
 * the consumer sees large chunks whatever the input chunking. The buffer is
 * our own 1 MiB (a sink gets a pointer into it), or lent by the caller
 * (oc_inflater_new_lent): then the decoder writes straight into the
 * caller's buffer and hands it over, no copy, and when the caller has no
 * buffer free the feed stops where it is (ISA-L's and zstd's states keep
 * what they hold) and continues when fed again. */
#include "io/inflate.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <zstd.h>

#define OUT_BUF_SIZE ((size_t)1024 * 1024)
/* isal_inflate takes a 32-bit avail_in: hand it at most this much at once. */
#define GZIP_MAX_CHUNK ((size_t)1 << 30)
#define SNIFF_MAX 4

struct oc_inflater {
    oc_comp want; /* as created; restored by reset */
    oc_comp comp; /* in use; AUTO until the first bytes decided it */
    oc_inflate_sink sink;
    void *opaque;
    uint64_t max_out;
    uint64_t total_out; /* bytes produced so far */
    uint64_t total_in;  /* compressed bytes taken by the decoder */
    int failed;         /* an error was reported: refuse more input until reset */
    int finished;

    unsigned char sniff[SNIFF_MAX];
    size_t sniff_len;
    size_t sniff_off; /* once decided: held bytes already replayed to the decoder */

    oc_inflate_output lend; /* lent mode: the caller's buffers */
    int lent;
    unsigned char *own; /* sink mode: our buffer */
    unsigned char *out; /* the buffer being filled, or NULL */
    size_t out_cap;
    size_t out_len;
    int blocked;     /* this feed stopped: no buffer to be had */
    int pending_out; /* the decoder may hold output it could not place yet */

    struct inflate_state *gz;
    uint64_t gz_members;      /* members completed */
    int gz_in_member;         /* some bytes of the current member were fed */
    uint64_t gz_member_at;    /* input offset where the current member starts */
    int gz_phase;             /* where in the member we are (GZ_FIXED ... GZ_BODY) */
    unsigned gz_flags;        /* FLG of the current member */
    unsigned char gz_hdr[10]; /* the fixed header, XLEN or HCRC being collected */
    size_t gz_have;           /* bytes of gz_hdr collected */
    uint32_t gz_need;         /* FEXTRA bytes still to skip */
    uint32_t gz_hcrc;         /* CRC32 of the header so far, for FHCRC */

    ZSTD_DCtx *zd;
    size_t zstd_hint; /* last ZSTD_decompressStream result; 0 = at a frame boundary */
};

static const unsigned char gzip_magic[2] = {0x1f, 0x8b};

/* ISA-L's AVX-512 routines (crc32_gzip_refl_by16_10, which isal_inflate
 * calls on every block of output, and the header CRC below) return without
 * VZEROUPPER, so the calling thread is left with dirty upper vector state.
 * Legacy-SSE code run next on that thread then pays for every instruction:
 * OpenSSL's SHA-NI SHA-256, which the same pool threads run between inflate
 * tasks, fell from 1.79 to 1.33 GB/s. So after each ISA-L call we clear
 * the upper halves ourselves, on CPUs that have them (set once by
 * isal_dispatch_once, before any thread inflates). */
static int cpu_has_avx;

static void clear_upper_vector_state(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (cpu_has_avx)
        __asm__ volatile("vzeroupper" ::: "memory");
#endif
}

/* Parts of a gzip member, in stream order. */
enum { GZ_FIXED, GZ_XLEN, GZ_EXTRA, GZ_NAME, GZ_COMMENT, GZ_HCRC, GZ_BODY };

/* ---- media types and names ---- */

static int has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

oc_comp oc_comp_from_media_type(const char *media_type)
{
    if (!media_type)
        return OC_COMP_AUTO;
    size_t n = strcspn(media_type, "; \t");
    if (has_suffix(media_type, n, "+gzip") || has_suffix(media_type, n, ".tar.gzip") ||
        has_suffix(media_type, n, ".tar.gz"))
        return OC_COMP_GZIP;
    if (has_suffix(media_type, n, "+zstd") || has_suffix(media_type, n, ".tar.zstd"))
        return OC_COMP_ZSTD;
    if (has_suffix(media_type, n, ".tar") || has_suffix(media_type, n, "/x-tar"))
        return OC_COMP_NONE;
    return OC_COMP_AUTO;
}

const char *oc_comp_name(oc_comp c)
{
    switch (c) {
    case OC_COMP_AUTO:
        return "auto";
    case OC_COMP_NONE:
        return "none";
    case OC_COMP_GZIP:
        return "gzip";
    case OC_COMP_ZSTD:
        return "zstd";
    }
    return "unknown";
}

/* ---- output ---- */

static int fail(oc_inflater *inf)
{
    inf->failed = 1;
    return -1;
}

static int flush_out(oc_inflater *inf, oc_error *err)
{
    if (!inf->out || inf->out_len == 0)
        return 0;
    size_t n = inf->out_len;
    inf->out_len = 0;
    if (!inf->lent) {
        if (inf->sink(inf->opaque, inf->out, n, err) != 0)
            return fail(inf);
        return 0;
    }
    unsigned char *buf = inf->out;
    inf->out = NULL;
    if (inf->lend.put(inf->lend.opaque, buf, n, err) != 0)
        return fail(inf);
    return 0;
}

/* A buffer with room: bytes of room, 0 when none can be had now (the feed
 * stops, blocked), -1 on error. */
static long long out_room(oc_inflater *inf, oc_error *err)
{
    if (inf->out && inf->out_len == inf->out_cap && flush_out(inf, err) != 0)
        return -1;
    if (!inf->out) {
        if (!inf->lent) {
            inf->out = inf->own;
            inf->out_cap = OUT_BUF_SIZE;
        } else {
            unsigned char *buf = NULL;
            size_t cap = 0;
            int r = inf->lend.get(inf->lend.opaque, &buf, &cap, err);
            if (r < 0)
                return fail(inf);
            if (r > 0 || !buf || cap == 0) {
                inf->blocked = 1;
                return 0;
            }
            inf->out = buf;
            inf->out_cap = cap;
        }
        inf->out_len = 0;
    }
    return (long long)(inf->out_cap - inf->out_len);
}

/* out_room for a decoder (gzip, zstd), which may hold output it could not
 * place: when no buffer can be had now, pending_out says so, and the next
 * feed (or the finish) lets it place that output first. */
static long long decoder_room(oc_inflater *inf, oc_error *err)
{
    long long room = out_room(inf, err);
    inf->pending_out = room == 0;
    return room;
}

/* A lent buffer we hold empty goes back to its owner. */
static void drop_empty(oc_inflater *inf)
{
    if (inf->lent && inf->out && inf->out_len == 0) {
        if (inf->lend.drop)
            inf->lend.drop(inf->lend.opaque, inf->out);
        inf->out = NULL;
    }
}

/* Count n new bytes of output and enforce max_out. */
static int account_out(oc_inflater *inf, size_t n, oc_error *err)
{
    inf->total_out += n;
    if (inf->max_out && inf->total_out > inf->max_out) {
        oc_error_set(err, OC_E_LIMIT,
                     "%s stream decompresses to more than the limit of %" PRIu64 " bytes",
                     oc_comp_name(inf->comp), inf->max_out);
        return fail(inf);
    }
    return 0;
}

/* ---- plain ---- */

/* Returns the bytes taken (fewer than len only when blocked) or -1. */
static long long none_feed(oc_inflater *inf, const unsigned char *data, size_t len, oc_error *err)
{
    size_t done = 0;
    while (done < len) {
        long long room = out_room(inf, err);
        if (room <= 0)
            return room < 0 ? -1 : (long long)done;
        size_t n = len - done < (size_t)room ? len - done : (size_t)room;
        if (account_out(inf, n, err) != 0)
            return -1;
        memcpy(inf->out + inf->out_len, data + done, n);
        inf->out_len += n;
        inf->total_in += n;
        done += n;
    }
    return (long long)done;
}

/* ---- gzip ---- */

/* RFC 1952 header flags. */
#define GZ_FHCRC 0x02
#define GZ_FEXTRA 0x04
#define GZ_FNAME 0x08
#define GZ_FCOMMENT 0x10
#define GZ_FRESERVED 0xe0

static const char *isal_reason(int ret)
{
    switch (ret) {
    case ISAL_INVALID_BLOCK:
        return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
        return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
        return "invalid deflate back-reference distance";
    case ISAL_INVALID_WRAPPER:
        return "invalid gzip wrapper";
    case ISAL_UNSUPPORTED_METHOD:
        return "unsupported compression method";
    case ISAL_NEED_DICT:
        return "stream needs a preset dictionary";
    }
    return "unknown igzip error";
}

/* Ready igzip for the deflate data of a member whose header we parsed: it
 * inflates and then checks the CRC32/ISIZE trailer that follows. */
static void gzip_body_state(struct inflate_state *gz)
{
    isal_inflate_reset(gz);
    gz->crc_flag = ISAL_GZIP_NO_HDR_VER;
}

static int gzip_header_error(oc_inflater *inf, const char *what, oc_error *err)
{
    oc_error_set(err, OC_E_FORMAT,
                 "corrupt gzip stream: member %" PRIu64 " (at input byte %" PRIu64 ") has %s",
                 inf->gz_members + 1, inf->gz_member_at, what);
    return fail(inf);
}

/* Move to the next header part the flags ask for, or to the deflate data. */
static void gzip_next_phase(oc_inflater *inf)
{
    static const struct {
        int phase;
        unsigned flag;
    } order[] = {{GZ_XLEN, GZ_FEXTRA},
                 {GZ_EXTRA, GZ_FEXTRA},
                 {GZ_NAME, GZ_FNAME},
                 {GZ_COMMENT, GZ_FCOMMENT},
                 {GZ_HCRC, GZ_FHCRC}};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (order[i].phase > inf->gz_phase && (inf->gz_flags & order[i].flag)) {
            inf->gz_phase = order[i].phase;
            inf->gz_have = 0;
            return;
        }
    }
    inf->gz_phase = GZ_BODY;
    gzip_body_state(inf->gz);
}

/* Parse header bytes of the current member; returns how many were used (the
 * header may end inside data) or -1. Keeps nothing but a few counters, so a
 * name or comment of any length, split anywhere, costs no memory. */
static long long gzip_header(oc_inflater *inf, const unsigned char *data, size_t len, oc_error *err)
{
    size_t used = 0;
    while (used < len && inf->gz_phase != GZ_BODY) {
        const unsigned char *q = data + used;
        size_t avail = len - used;
        size_t take = 0;
        int phase = inf->gz_phase;
        int done = 0;
        if (phase == GZ_FIXED || phase == GZ_XLEN || phase == GZ_HCRC) {
            size_t want = phase == GZ_FIXED ? 10 : 2;
            take = want - inf->gz_have < avail ? want - inf->gz_have : avail;
            for (size_t i = 0; i < take; i++) {
                size_t at = inf->gz_have + i;
                if (phase == GZ_FIXED && at < 2 && q[i] != gzip_magic[at]) {
                    if (inf->gz_members == 0) {
                        oc_error_set(err, OC_E_FORMAT,
                                     "not a gzip stream: bad magic number at input byte %" PRIu64,
                                     inf->total_in + used + i);
                    } else {
                        oc_error_set(err, OC_E_FORMAT,
                                     "gzip stream has trailing data that is not a gzip member "
                                     "after member %" PRIu64 " (at input byte %" PRIu64 ")",
                                     inf->gz_members, inf->gz_member_at);
                    }
                    return fail(inf);
                }
            }
            memcpy(inf->gz_hdr + inf->gz_have, q, take);
            inf->gz_have += take;
            done = inf->gz_have == want;
        } else if (phase == GZ_EXTRA) {
            take = inf->gz_need < avail ? inf->gz_need : avail;
            inf->gz_need -= (uint32_t)take;
            done = inf->gz_need == 0;
        } else { /* GZ_NAME, GZ_COMMENT: up to and including a NUL */
            const unsigned char *nul = memchr(q, 0, avail);
            take = nul ? (size_t)(nul - q) + 1 : avail;
            done = nul != NULL;
        }
        if (phase != GZ_HCRC) {
            inf->gz_hcrc = crc32_gzip_refl(inf->gz_hcrc, q, take);
            clear_upper_vector_state();
        }
        used += take;
        if (!done)
            break;

        if (phase == GZ_FIXED) {
            if (inf->gz_hdr[2] != 8)
                return gzip_header_error(inf, "an unsupported compression method", err);
            if (inf->gz_hdr[3] & GZ_FRESERVED)
                return gzip_header_error(inf, "reserved header flags set", err);
            inf->gz_flags = inf->gz_hdr[3];
        } else if (phase == GZ_XLEN) {
            inf->gz_need = (uint32_t)inf->gz_hdr[0] | (uint32_t)inf->gz_hdr[1] << 8;
        } else if (phase == GZ_HCRC) {
            uint32_t want = (uint32_t)inf->gz_hdr[0] | (uint32_t)inf->gz_hdr[1] << 8;
            if ((inf->gz_hcrc & 0xffff) != want)
                return gzip_header_error(inf, "a bad header checksum (FHCRC)", err);
        }
        gzip_next_phase(inf);
    }
    return (long long)used;
}

static int gzip_error(oc_inflater *inf, int ret, uint64_t near, oc_error *err)
{
    if (ret == ISAL_INCORRECT_CHECKSUM)
        oc_error_set(err, OC_E_FORMAT,
                     "corrupt gzip stream: member %" PRIu64 " (from input byte %" PRIu64
                     ") fails its CRC32/ISIZE check",
                     inf->gz_members + 1, inf->gz_member_at);
    else
        oc_error_set(err, OC_E_FORMAT,
                     "corrupt gzip stream: %s in member %" PRIu64 " near input byte %" PRIu64,
                     isal_reason(ret), inf->gz_members + 1, near);
    return fail(inf);
}

/* Feed at most GZIP_MAX_CHUNK bytes of deflate data and trailer (none: only
 * let the decoder place output it holds); returns how many were taken
 * (fewer when the member ended inside the chunk, or when blocked) or -1. */
static long long gzip_body(oc_inflater *inf, const unsigned char *data, size_t len, oc_error *err)
{
    struct inflate_state *gz = inf->gz;
    gz->next_in = (uint8_t *)data;
    gz->avail_in = (uint32_t)len;
    long long room;
    while ((room = decoder_room(inf, err)) > 0) {
        uint32_t in_before = gz->avail_in;
        unsigned char *out_at = inf->out + inf->out_len;
        gz->next_out = out_at;
        gz->avail_out = (uint32_t)room;

        int ret = isal_inflate(gz);
        clear_upper_vector_state();

        size_t produced = (size_t)(gz->next_out - out_at);
        inf->out_len += produced;
        if (ret < 0)
            return gzip_error(inf, ret, inf->total_in + (len - in_before), err);
        if (account_out(inf, produced, err) != 0)
            return -1;
        if (gz->block_state == ISAL_BLOCK_FINISH) {
            /* igzip has given back what it read beyond the trailer. */
            inf->gz_members++;
            inf->gz_in_member = 0;
            break;
        }
        if (inf->out_len == inf->out_cap)
            continue; /* more output may be waiting inside the decoder */
        if (gz->avail_in == 0)
            break;
        if (produced == 0 && gz->avail_in == in_before) {
            oc_error_set(err, OC_E_FORMAT,
                         "gzip decoder stopped making progress at input byte %" PRIu64,
                         inf->total_in + (len - gz->avail_in));
            return fail(inf);
        }
    }
    if (room < 0)
        return -1;
    return (long long)(len - gz->avail_in);
}

/* Returns the bytes taken (fewer than len only when blocked) or -1. */
static long long gzip_feed(oc_inflater *inf, const unsigned char *data, size_t len, oc_error *err)
{
    size_t start = len;
    if (inf->pending_out) { /* first the output the decoder held when it blocked */
        if (gzip_body(inf, data, 0, err) < 0)
            return -1;
        if (inf->blocked)
            return 0;
    }
    while (len > 0 && !inf->blocked) {
        if (!inf->gz_in_member) {
            inf->gz_in_member = 1;
            inf->gz_phase = GZ_FIXED;
            inf->gz_have = 0;
            inf->gz_flags = 0;
            inf->gz_hcrc = 0;
            inf->gz_member_at = inf->total_in;
        }
        long long used;
        if (inf->gz_phase != GZ_BODY)
            used = gzip_header(inf, data, len, err);
        else
            used = gzip_body(inf, data, len < GZIP_MAX_CHUNK ? len : GZIP_MAX_CHUNK, err);
        if (used < 0)
            return -1;
        inf->total_in += (uint64_t)used;
        data += used;
        len -= (size_t)used;
    }
    return (long long)(start - len);
}

static int gzip_finish(oc_inflater *inf, oc_error *err)
{
    if (inf->gz_in_member || inf->gz_members == 0) {
        if (inf->total_in == 0)
            oc_error_set(err, OC_E_FORMAT, "truncated gzip stream: no data");
        else
            oc_error_set(err, OC_E_FORMAT,
                         "truncated gzip stream: member %" PRIu64 " (from input byte %" PRIu64
                         ") ends in its %s after %" PRIu64 " input bytes",
                         inf->gz_members + 1, inf->gz_member_at,
                         inf->gz_phase == GZ_BODY ? "data" : "header", inf->total_in);
        return fail(inf);
    }
    return 0;
}

/* ---- zstd ---- */

/* Returns the bytes taken (fewer than len only when blocked) or -1; with
 * len 0, places the output the decoder held when it last blocked. */
static long long zstd_feed(oc_inflater *inf, const unsigned char *data, size_t len, oc_error *err)
{
    ZSTD_inBuffer in = {data, len, 0};
    long long room;
    while ((room = decoder_room(inf, err)) > 0) {
        size_t in_before = in.pos;
        ZSTD_outBuffer out = {inf->out, inf->out_cap, inf->out_len};

        size_t r = ZSTD_decompressStream(inf->zd, &out, &in);

        size_t produced = out.pos - inf->out_len;
        inf->out_len = out.pos;
        inf->total_in += in.pos - in_before;
        if (ZSTD_isError(r)) {
            oc_error_set(err, OC_E_FORMAT, "corrupt zstd stream near input byte %" PRIu64 ": %s",
                         inf->total_in, ZSTD_getErrorName(r));
            return fail(inf);
        }
        /* A call that neither took input nor gave output (after the output
         * buffer filled exactly at the end of a frame) reports the header size
         * of a next frame that may never come: it does not move the boundary. */
        if (produced > 0 || in.pos > in_before)
            inf->zstd_hint = r;
        if (account_out(inf, produced, err) != 0)
            return -1;
        /* All input taken and room left over: the decoder flushed all it could. */
        if (in.pos == in.size && out.pos < out.size)
            break;
        if (produced == 0 && in.pos == in_before && out.pos < out.size) {
            oc_error_set(err, OC_E_FORMAT,
                         "zstd decoder stopped making progress at input byte %" PRIu64,
                         inf->total_in);
            return fail(inf);
        }
    }
    if (room < 0)
        return -1;
    return (long long)in.pos;
}

static int zstd_finish(oc_inflater *inf, oc_error *err)
{
    if (inf->total_in == 0) {
        oc_error_set(err, OC_E_FORMAT, "truncated zstd stream: no data");
        return fail(inf);
    }
    if (inf->zstd_hint != 0) {
        oc_error_set(err, OC_E_FORMAT,
                     "truncated zstd stream: the last frame is incomplete after %" PRIu64
                     " input bytes",
                     inf->total_in);
        return fail(inf);
    }
    return 0;
}

/* ---- choosing and setting up the decoder ---- */

/* Decide from the first n bytes; AUTO while a magic number could still match
 * (only when more input may come). */
static oc_comp sniff(const unsigned char *b, size_t n, int final)
{
    static const struct {
        unsigned char magic[4];
        unsigned char mask0; /* mask for the first byte (zstd skippable frames: 0x5?) */
        size_t len;
        oc_comp comp;
    } known[] = {
        {{0x1f, 0x8b}, 0xff, 2, OC_COMP_GZIP},
        {{0x28, 0xb5, 0x2f, 0xfd}, 0xff, 4, OC_COMP_ZSTD},
        {{0x50, 0x2a, 0x4d, 0x18}, 0xf0, 4, OC_COMP_ZSTD},
    };
    int possible = 0;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        size_t i = 0;
        for (; i < n && i < known[k].len; i++) {
            unsigned char mask = i == 0 ? known[k].mask0 : 0xff;
            if ((b[i] & mask) != known[k].magic[i])
                break;
        }
        if (i == known[k].len)
            return known[k].comp;
        if (i == n)
            possible = 1;
    }
    return (possible && !final) ? OC_COMP_AUTO : OC_COMP_NONE;
}

static int setup_decoder(oc_inflater *inf, oc_error *err)
{
    if (inf->comp == OC_COMP_GZIP && !inf->gz) {
        inf->gz = malloc(sizeof *inf->gz);
        if (!inf->gz)
            goto nomem;
        isal_inflate_init(inf->gz);
    }
    if (inf->comp == OC_COMP_ZSTD && !inf->zd) {
        inf->zd = ZSTD_createDCtx();
        if (!inf->zd)
            goto nomem;
    }
    return 0;
nomem:
    oc_error_set(err, OC_E_NOMEM, "%s decoder: out of memory", oc_comp_name(inf->comp));
    return fail(inf);
}

/* Returns the bytes taken (fewer than len only when blocked) or -1. */
static long long feed_resolved(oc_inflater *inf, const unsigned char *data, size_t len,
                               oc_error *err)
{
    switch (inf->comp) {
    case OC_COMP_GZIP:
        return gzip_feed(inf, data, len, err);
    case OC_COMP_ZSTD:
        if (len == 0 && !inf->pending_out)
            return 0;
        return zstd_feed(inf, data, len, err);
    default:
        return none_feed(inf, data, len, err);
    }
}

/* AUTO decided (or input ended): set up the decoder; the held bytes are
 * replayed to it next (replay_held). */
static int resolve(oc_inflater *inf, oc_comp comp, oc_error *err)
{
    inf->comp = comp;
    inf->sniff_off = 0;
    return setup_decoder(inf, err);
}

/* The held bytes of a decided stream into its decoder: 0 done (or none),
 * 1 blocked (more of them next time), -1 error. */
static int replay_held(oc_inflater *inf, oc_error *err)
{
    if (inf->comp == OC_COMP_AUTO)
        return 0;
    while (inf->sniff_off < inf->sniff_len) {
        long long took =
            feed_resolved(inf, inf->sniff + inf->sniff_off, inf->sniff_len - inf->sniff_off, err);
        if (took < 0)
            return -1;
        inf->sniff_off += (size_t)took;
        if (inf->blocked)
            return 1;
    }
    inf->sniff_len = inf->sniff_off = 0;
    return 0;
}

/* ISA-L picks each function's CPU-specific version on its first call and
 * stores the pointer in a global: two pipeline threads making that first
 * call at once write the same value (benign, but a data race for helgrind
 * and TSan). Make the first calls once, here, before any thread can. */
static void isal_dispatch_once(void)
{
    static const unsigned char raw[] = {0x4b, 0x04, 0x00}; /* deflate of "a" */
    unsigned char out[8];
    struct inflate_state st;
    isal_inflate_init(&st);
    st.crc_flag = ISAL_GZIP_NO_HDR_VER;
    st.next_in = (uint8_t *)raw;
    st.avail_in = sizeof raw;
    st.next_out = out;
    st.avail_out = sizeof out;
    (void)isal_inflate(&st);
    (void)crc32_gzip_refl(0, out, 1);
#if defined(__x86_64__) || defined(__i386__)
    cpu_has_avx = __builtin_cpu_supports("avx");
#endif
    clear_upper_vector_state();
}

/* ---- public API ---- */

static oc_inflater *inflater_new(oc_comp comp, uint64_t max_out)
{
    static pthread_once_t dispatch_once = PTHREAD_ONCE_INIT;
    pthread_once(&dispatch_once, isal_dispatch_once);
    if (comp != OC_COMP_AUTO && comp != OC_COMP_NONE && comp != OC_COMP_GZIP &&
        comp != OC_COMP_ZSTD)
        return NULL;
    oc_inflater *inf = calloc(1, sizeof *inf);
    if (!inf)
        return NULL;
    inf->want = comp;
    inf->comp = comp;
    inf->max_out = max_out;
    if (comp != OC_COMP_AUTO && setup_decoder(inf, NULL) != 0) {
        oc_inflater_free(inf);
        return NULL;
    }
    return inf;
}

oc_inflater *oc_inflater_new(oc_comp comp, oc_inflate_sink sink, void *opaque, uint64_t max_out)
{
    if (!sink)
        return NULL;
    oc_inflater *inf = inflater_new(comp, max_out);
    if (!inf)
        return NULL;
    inf->own = malloc(OUT_BUF_SIZE);
    if (!inf->own) {
        oc_inflater_free(inf);
        return NULL;
    }
    inf->sink = sink;
    inf->opaque = opaque;
    return inf;
}

oc_inflater *oc_inflater_new_lent(oc_comp comp, const oc_inflate_output *out, uint64_t max_out)
{
    if (!out || !out->get || !out->put)
        return NULL;
    oc_inflater *inf = inflater_new(comp, max_out);
    if (!inf)
        return NULL;
    inf->lend = *out;
    inf->lent = 1;
    return inf;
}

static int check_usable(oc_inflater *inf, oc_error *err)
{
    if (inf->failed) {
        oc_error_set(err, OC_E_USAGE, "inflater used after an error (reset it first)");
        return -1;
    }
    if (inf->finished) {
        oc_error_set(err, OC_E_USAGE, "inflater used after finish (reset it first)");
        return -1;
    }
    return 0;
}

int oc_inflater_feed_some(oc_inflater *inf, const void *data, size_t len, size_t *used,
                          oc_error *err)
{
    *used = 0;
    if (check_usable(inf, err) != 0)
        return -1;
    inf->blocked = 0;
    const unsigned char *p = data;
    size_t left = len;
    int r = replay_held(inf, err);
    if (r != 0)
        return r;
    if (inf->comp == OC_COMP_AUTO) {
        while (left > 0 && inf->comp == OC_COMP_AUTO) {
            inf->sniff[inf->sniff_len++] = *p++;
            left--;
            oc_comp c = sniff(inf->sniff, inf->sniff_len, 0);
            if (c != OC_COMP_AUTO && resolve(inf, c, err) != 0)
                return -1;
        }
        if ((r = replay_held(inf, err)) != 0) {
            *used = len - left;
            return r;
        }
        if (inf->comp == OC_COMP_AUTO) {
            *used = len;
            return 0;
        }
    }
    long long took = feed_resolved(inf, p, left, err);
    if (took < 0)
        return -1;
    *used = len - left + (size_t)took;
    return inf->blocked ? 1 : 0;
}

int oc_inflater_feed(oc_inflater *inf, const void *data, size_t len, oc_error *err)
{
    size_t used;
    int rc = oc_inflater_feed_some(inf, data, len, &used, err);
    if (rc > 0) { /* only a lent inflater blocks: use feed_some with those */
        oc_error_set(err, OC_E_USAGE, "inflater: no output buffer to be had");
        return fail(inf);
    }
    return rc;
}

int oc_inflater_finish(oc_inflater *inf, oc_error *err)
{
    if (check_usable(inf, err) != 0)
        return -1;
    inf->blocked = 0;
    if (inf->pending_out) { /* what the decoder held when it last blocked */
        size_t used;
        int rc = oc_inflater_feed_some(inf, NULL, 0, &used, err);
        if (rc != 0)
            return rc;
    }
    if (inf->comp == OC_COMP_AUTO && resolve(inf, sniff(inf->sniff, inf->sniff_len, 1), err) != 0)
        return -1;
    int held = replay_held(inf, err);
    if (held != 0)
        return held;
    int rc = 0;
    if (inf->comp == OC_COMP_GZIP)
        rc = gzip_finish(inf, err);
    else if (inf->comp == OC_COMP_ZSTD)
        rc = zstd_finish(inf, err);
    if (rc != 0 || flush_out(inf, err) != 0)
        return -1;
    drop_empty(inf);
    inf->finished = 1;
    return 0;
}

void oc_inflater_reset(oc_inflater *inf)
{
    inf->comp = inf->want;
    inf->total_out = 0;
    inf->total_in = 0;
    inf->failed = 0;
    inf->finished = 0;
    inf->blocked = 0;
    inf->pending_out = 0;
    inf->sniff_len = 0;
    inf->sniff_off = 0;
    inf->out_len = 0;
    if (!inf->lent)
        inf->out = NULL;
    inf->gz_members = 0;
    inf->gz_in_member = 0;
    inf->gz_member_at = 0;
    inf->zstd_hint = 0;
    if (inf->zd)
        ZSTD_DCtx_reset(inf->zd, ZSTD_reset_session_only);
}

uint64_t oc_inflater_total_out(const oc_inflater *inf)
{
    return inf->total_out;
}

oc_comp oc_inflater_comp(const oc_inflater *inf)
{
    return inf->comp;
}

void oc_inflater_free(oc_inflater *inf)
{
    if (!inf)
        return;
    if (inf->lent && inf->out) {
        inf->out_len = 0;
        drop_empty(inf);
    }
    free(inf->gz);
    ZSTD_freeDCtx(inf->zd);
    free(inf->own);
    free(inf);
}
