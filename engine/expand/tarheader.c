/* tarheader.c - Go's archive/tar view of one tar entry (see tarheader.h).
 *
 * Written from the tar formats (POSIX ustar and pax, GNU, star) and from
 * the behaviour of Go's reader as documented and observed; the rules that
 * matter are named where they are applied. Offsets are those of the
 * 512-byte header block. */
#include "engine/expand/tarheader.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 512
#define SPECIAL_MAX (1u << 20) /* Go refuses a PAX or GNU long-name body beyond 1 MiB */
#define MAX_RUN 64             /* headers in one run before we give up judging */

/* header fields: offset, length */
#define F_NAME 0, 100
#define F_MODE 100, 8
#define F_UID 108, 8
#define F_GID 116, 8
#define F_SIZE 124, 12
#define F_MTIME 136, 12
#define F_CHKSUM 148, 8
#define F_LINK 157, 100
#define F_DEVMAJOR 329, 8
#define F_DEVMINOR 337, 8
#define F_PREFIX 345, 155
#define F_STAR_PREFIX 345, 131
#define F_STAR_ATIME 476, 12
#define F_STAR_CTIME 488, 12
#define F_GNU_ATIME 345, 12
#define F_GNU_CTIME 357, 12
#define F_GNU_REALSIZE 483, 12
#define GNU_SPARSE 386     /* 4 entries of offset[12] length[12] */
#define GNU_ISEXTENDED 482 /* in the header */
#define EXT_ISEXTENDED 504 /* in an extension block of 21 entries */

enum { FMT_V7, FMT_USTAR, FMT_STAR, FMT_GNU };

typedef struct rec {
    char *key, *value;
    size_t vlen;
} rec;

typedef struct recs {
    rec *v;
    size_t n;
} recs;

typedef struct sparse_ent {
    int64_t off, len;
} sparse_ent;

static int failf(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int failf(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* Exactly len bytes at off, or -1 (short: the tar ends there). */
static int read_at(int fd, uint64_t off, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int is_zero(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* ---- numbers as Go parses them ---- */

/* Go's parseOctal: spaces and NULs trimmed at both ends, cut at a NUL, then
 * only octal digits (empty after the trim is 0). */
static int parse_octal(const unsigned char *p, size_t n, int64_t *out)
{
    size_t a = 0, b = n;
    while (a < b && (p[a] == ' ' || p[a] == 0))
        a++;
    while (b > a && (p[b - 1] == ' ' || p[b - 1] == 0))
        b--;
    *out = 0;
    if (a == b)
        return 0;
    for (size_t i = a; i < b; i++)
        if (p[i] == 0) {
            b = i;
            break;
        }
    uint64_t x = 0;
    if (a == b)
        return -1;
    for (size_t i = a; i < b; i++) {
        if (p[i] < '0' || p[i] > '7')
            return -1;
        if (x >> 61)
            return -1; /* beyond 64 bits */
        x = x * 8 + (uint64_t)(p[i] - '0');
    }
    *out = (int64_t)x;
    return 0;
}

/* Go's parseNumeric: base-256 (two's complement) when the top bit is set. */
static int parse_numeric(const unsigned char *p, size_t n, int64_t *out)
{
    if (n == 0 || !(p[0] & 0x80))
        return parse_octal(p, n, out);
    unsigned char inv = (p[0] & 0x40) ? 0xff : 0x00;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i] ^ inv;
        if (i == 0)
            c &= 0x7f;
        if (x >> 56)
            return -1;
        x = x << 8 | c;
    }
    if (x >> 63)
        return -1;
    *out = inv ? ~(int64_t)x : (int64_t)x;
    return 0;
}

/* Go's strconv.ParseInt(s, 10, 64): an optional sign, then digits. */
static int parse_dec(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return -1;
    uint64_t x = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    if (neg ? x > (uint64_t)INT64_MAX + 1 : x > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

/* Go's parsePAXTime: seconds as above, then optionally '.' and digits. */
static int parse_pax_time(const char *s, size_t n, int64_t *secs)
{
    const char *dot = memchr(s, '.', n);
    size_t sl = dot ? (size_t)(dot - s) : n;
    if (parse_dec(s, sl, secs) != 0)
        return -1;
    for (size_t i = sl + (dot ? 1 : 0); i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return -1;
    return 0;
}

/* A NUL-terminated copy of p up to its first NUL (Go's parseString). */
static char *field_string(const unsigned char *p, size_t n)
{
    size_t len = 0;
    while (len < n && p[len])
        len++;
    return strndup((const char *)p, len);
}

/* ---- the header block ---- */

static int block_format(const unsigned char *b, int *fmt)
{
    int64_t want;
    if (parse_octal(b + 148, 8, &want) != 0)
        return -1;
    uint64_t usum = 0;
    int64_t ssum = 0;
    for (int i = 0; i < BLOCK; i++) {
        unsigned char c = (i >= 148 && i < 156) ? ' ' : b[i];
        usum += c;
        ssum += (signed char)c;
    }
    if ((uint64_t)want != usum && want != ssum)
        return -1;
    if (memcmp(b + 257, "ustar\0", 6) == 0)
        *fmt = memcmp(b + 508, "tar\0", 4) == 0 ? FMT_STAR : FMT_USTAR;
    else if (memcmp(b + 257, "ustar ", 6) == 0 && memcmp(b + 263, " \0", 2) == 0)
        *fmt = FMT_GNU;
    else
        *fmt = FMT_V7;
    return 0;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

typedef struct raw_hdr {
    int fmt;
    char typeflag;
    char *name, *linkname;
    int64_t size, mode, uid, gid, mtime, devmajor, devminor;
} raw_hdr;

/* Go's readHeader: every numeric field must parse; names with the prefix. */
static int parse_block(const unsigned char *b, raw_hdr *r, char *why, size_t cap)
{
    memset(r, 0, sizeof *r);
    if (block_format(b, &r->fmt) != 0)
        return failf(why, cap, "header checksum does not match (a damaged header)");
    r->typeflag = (char)b[156];
    int bad = parse_numeric(b + 124, 12, &r->size) | parse_numeric(b + 100, 8, &r->mode) |
              parse_numeric(b + 108, 8, &r->uid) | parse_numeric(b + 116, 8, &r->gid) |
              parse_numeric(b + 136, 12, &r->mtime);
    if (r->fmt != FMT_V7)
        bad |= parse_numeric(b + 329, 8, &r->devmajor) | parse_numeric(b + 337, 8, &r->devminor);
    int64_t ignored;
    if (r->fmt == FMT_STAR)
        bad |= parse_numeric(b + 476, 12, &ignored) | parse_numeric(b + 488, 12, &ignored);
    if (bad)
        return failf(why, cap,
                     "a numeric header field (size, mode, owner, time or device) "
                     "is not a valid number");
    char *prefix = NULL;
    if (r->fmt == FMT_USTAR) {
        prefix = field_string(b + 345, 155);
    } else if (r->fmt == FMT_STAR) {
        prefix = field_string(b + 345, 131);
    } else if (r->fmt == FMT_GNU) {
        /* Go reads the GNU atime/ctime leniently; when they do not parse it
         * takes the field as a ustar prefix (tars of Go before 1.8) */
        int gbad = 0;
        if (b[345])
            gbad |= parse_numeric(b + 345, 12, &ignored);
        if (b[357])
            gbad |= parse_numeric(b + 357, 12, &ignored);
        if (gbad) {
            prefix = field_string(b + 345, 155);
            if (prefix && !is_ascii(prefix)) {
                free(prefix);
                prefix = NULL;
            }
        }
    }
    char *name = field_string(b, 100);
    r->linkname = field_string(b + 157, 100);
    if (name && prefix && *prefix) {
        if (asprintf(&r->name, "%s/%s", prefix, name) < 0)
            r->name = NULL;
        free(name);
    } else {
        r->name = name;
    }
    free(prefix);
    if (!r->name || !r->linkname)
        return failf(why, cap, "out of memory");
    return 0;
}

static void raw_free(raw_hdr *r)
{
    free(r->name);
    free(r->linkname);
    r->name = r->linkname = NULL;
}

/* ---- PAX records ---- */

static void recs_free(recs *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->v[i].key);
        free(rs->v[i].value);
    }
    free(rs->v);
    rs->v = NULL;
    rs->n = 0;
}

/* The last value of key, or NULL. */
static const rec *recs_get(const recs *rs, const char *key)
{
    for (size_t i = rs->n; i-- > 0;)
        if (strcmp(rs->v[i].key, key) == 0)
            return &rs->v[i];
    return NULL;
}

static int recs_add(recs *rs, const char *k, size_t kl, const char *v, size_t vl)
{
    rec *grown = realloc(rs->v, sizeof *grown * (rs->n + 1));
    if (!grown)
        return -1;
    rs->v = grown;
    rec *r = &rs->v[rs->n];
    r->key = strndup(k, kl);
    r->value = malloc(vl + 1);
    if (!r->key || !r->value) {
        free(r->key);
        free(r->value);
        return -1;
    }
    memcpy(r->value, v, vl);
    r->value[vl] = '\0';
    r->vlen = vl;
    rs->n++;
    return 0;
}

static int has_nul(const char *s, size_t n)
{
    return memchr(s, 0, n) != NULL;
}

/* Go's parsePAX and parsePAXRecord: "LEN key=value\n" records; the 0.0
 * sparse keys GNU.sparse.offset/numbytes alternate and become one
 * GNU.sparse.map. */
static int parse_pax(const char *s, size_t n, recs *out, char *why, size_t cap)
{
    char *map = NULL;
    size_t map_len = 0, map_items = 0;
    int rc = -1;
    while (n > 0) {
        const char *sp = memchr(s, ' ', n);
        int64_t len;
        if (!sp || parse_dec(s, (size_t)(sp - s), &len) != 0 || len < 5 || (uint64_t)len > n) {
            failf(why, cap, "malformed PAX extended header: a record without a valid length");
            goto out;
        }
        size_t head = (size_t)(sp - s) + 1;
        if ((uint64_t)len <= head) {
            failf(why, cap, "malformed PAX extended header: a record shorter than its length");
            goto out;
        }
        const char *recp = s + head;
        size_t rlen = (size_t)len - head - 1;
        if (s[len - 1] != '\n') {
            failf(why, cap, "malformed PAX extended header: a record does not end with a newline");
            goto out;
        }
        const char *eq = memchr(recp, '=', rlen);
        if (!eq) {
            failf(why, cap, "malformed PAX extended header: a record without '='");
            goto out;
        }
        size_t kl = (size_t)(eq - recp);
        const char *v = eq + 1;
        size_t vl = rlen - kl - 1;
        int named = (kl == 4 && memcmp(recp, "path", 4) == 0) ||
                    (kl == 8 && memcmp(recp, "linkpath", 8) == 0) ||
                    (kl == 5 && memcmp(recp, "uname", 5) == 0) ||
                    (kl == 5 && memcmp(recp, "gname", 5) == 0);
        if (kl == 0 || (named ? has_nul(v, vl) : has_nul(recp, kl))) {
            failf(why, cap, "malformed PAX extended header: an empty key or a NUL in a record");
            goto out;
        }
        int is_off = kl == 17 && memcmp(recp, "GNU.sparse.offset", 17) == 0;
        int is_num = kl == 19 && memcmp(recp, "GNU.sparse.numbytes", 19) == 0;
        if (is_off || is_num) {
            if ((map_items % 2 == 0) != is_off || memchr(v, ',', vl)) {
                failf(why, cap,
                      "malformed PAX extended header: GNU.sparse.offset and "
                      "GNU.sparse.numbytes out of order");
                goto out;
            }
            char *grown = realloc(map, map_len + vl + 2);
            if (!grown) {
                failf(why, cap, "out of memory");
                goto out;
            }
            map = grown;
            if (map_items++)
                map[map_len++] = ',';
            memcpy(map + map_len, v, vl);
            map_len += vl;
            map[map_len] = '\0';
        } else if (recs_add(out, recp, kl, v, vl) != 0) {
            failf(why, cap, "out of memory");
            goto out;
        }
        s += len;
        n -= (size_t)len;
    }
    if (map_items && recs_add(out, "GNU.sparse.map", 14, map, map_len) != 0) {
        failf(why, cap, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(map);
    return rc;
}

/* ---- sparse maps ---- */

static int sparse_valid(const sparse_ent *sp, size_t n, int64_t size)
{
    if (size < 0)
        return 0;
    int64_t pre_end = 0;
    for (size_t i = 0; i < n; i++) {
        if (sp[i].off < 0 || sp[i].len < 0 || sp[i].off > INT64_MAX - sp[i].len)
            return 0;
        if (sp[i].off + sp[i].len > size || pre_end > sp[i].off)
            return 0;
        pre_end = sp[i].off + sp[i].len;
    }
    return 1;
}

static int sparse_push(sparse_ent **sp, size_t *n, int64_t off, int64_t len)
{
    sparse_ent *grown = realloc(*sp, sizeof *grown * (*n + 1));
    if (!grown)
        return -1;
    *sp = grown;
    (*sp)[(*n)++] = (sparse_ent){off, len};
    return 0;
}

/* Old GNU sparse map: in the header, then extension blocks while
 * "isextended" is set; *pos moves past the extension blocks. */
static int old_gnu_sparse(int fd, const unsigned char *hdr, uint64_t *pos, int64_t size, char *why,
                          size_t cap)
{
    unsigned char blk[BLOCK];
    sparse_ent *sp = NULL;
    size_t n = 0;
    const unsigned char *b = hdr;
    int base = GNU_SPARSE, entries = 4, ext_at = GNU_ISEXTENDED, rc = -1;
    for (int guard = 0; guard < 1 << 16; guard++) {
        for (int i = 0; i < entries; i++) {
            const unsigned char *e = b + base + i * 24;
            if (e[0] == 0)
                break;
            int64_t off, len;
            if (parse_numeric(e, 12, &off) != 0 || parse_numeric(e + 12, 12, &len) != 0) {
                failf(why, cap, "old GNU sparse map: an entry is not a valid number");
                goto out;
            }
            if (sparse_push(&sp, &n, off, len) != 0) {
                failf(why, cap, "out of memory");
                goto out;
            }
        }
        if (b[ext_at] == 0)
            break;
        if (read_at(fd, *pos, blk, BLOCK) != 0) {
            failf(why, cap, "old GNU sparse map: the tar ends inside its extension blocks");
            goto out;
        }
        *pos += BLOCK;
        b = blk;
        base = 0;
        entries = 21;
        ext_at = EXT_ISEXTENDED;
    }
    if (!sparse_valid(sp, n, size)) {
        failf(why, cap, "old GNU sparse map: regions overlap, are out of order or beyond the size");
        goto out;
    }
    rc = 0;
out:
    free(sp);
    return rc;
}

/* PAX sparse 0.0/0.1: GNU.sparse.numblocks and the map "off,len,...". */
static int pax_sparse_0x(const recs *rs, int64_t size, char *why, size_t cap)
{
    const rec *nb = recs_get(rs, "GNU.sparse.numblocks");
    const rec *map = recs_get(rs, "GNU.sparse.map");
    int64_t count;
    if (!nb || parse_dec(nb->value, nb->vlen, &count) != 0 || count < 0 || count > INT32_MAX)
        return failf(why, cap, "PAX sparse map: GNU.sparse.numblocks missing or not a number");
    sparse_ent *sp = NULL;
    size_t n = 0;
    int rc = -1;
    const char *s = map ? map->value : "";
    size_t len = map ? map->vlen : 0, items = 0;
    int64_t pair[2];
    while (len > 0) {
        const char *comma = memchr(s, ',', len);
        size_t tl = comma ? (size_t)(comma - s) : len;
        if (parse_dec(s, tl, &pair[items % 2]) != 0) {
            failf(why, cap, "PAX sparse map: an entry is not a number");
            goto out;
        }
        if (items++ % 2 == 1 && sparse_push(&sp, &n, pair[0], pair[1]) != 0) {
            failf(why, cap, "out of memory");
            goto out;
        }
        if (!comma)
            break;
        s = comma + 1;
        len -= tl + 1;
        if (len == 0) { /* a trailing comma: an empty last item */
            failf(why, cap, "PAX sparse map: an entry is not a number");
            goto out;
        }
    }
    if (items != (size_t)count * 2) {
        failf(why, cap, "PAX sparse map: %zu numbers for %" PRId64 " regions", items, count);
        goto out;
    }
    if (!sparse_valid(sp, n, size)) {
        failf(why, cap, "PAX sparse map: regions overlap, are out of order or beyond the size");
        goto out;
    }
    rc = 0;
out:
    free(sp);
    return rc;
}

/* PAX sparse 1.0: the map is at the start of the data, decimal numbers one
 * a line (count, then offset and length pairs), padded to a block. */
static int pax_sparse_1x0(int fd, uint64_t data, int64_t size, char *why, size_t cap)
{
    size_t have = 0, at = 0, room = 0;
    char *buf = NULL;
    sparse_ent *sp = NULL;
    size_t n = 0;
    int rc = -1;
    int64_t count = -1, pair[2];
    size_t tokens = 0;
    for (;;) {
        char *nl = at < have ? memchr(buf + at, '\n', have - at) : NULL;
        if (!nl) {
            if (have + BLOCK > SPECIAL_MAX) {
                failf(why, cap, "PAX sparse 1.0 map larger than 1 MiB");
                goto out;
            }
            if (have + BLOCK > room) {
                room = room ? room * 2 : 4 * BLOCK;
                char *grown = realloc(buf, room);
                if (!grown) {
                    failf(why, cap, "out of memory");
                    goto out;
                }
                buf = grown;
            }
            if (read_at(fd, data + have, buf + have, BLOCK) != 0) {
                failf(why, cap, "PAX sparse 1.0 map: the tar ends inside it");
                goto out;
            }
            have += BLOCK;
            continue;
        }
        size_t tl = (size_t)(nl - (buf + at));
        int64_t v;
        if (parse_dec(buf + at, tl, &v) != 0) {
            failf(why, cap, "PAX sparse 1.0 map: an entry is not a number");
            goto out;
        }
        at += tl + 1;
        if (count < 0) {
            if (v < 0 || v > INT32_MAX) {
                failf(why, cap, "PAX sparse 1.0 map: a bad number of regions");
                goto out;
            }
            count = v;
        } else {
            pair[tokens % 2] = v;
            if (tokens++ % 2 == 1 && sparse_push(&sp, &n, pair[0], pair[1]) != 0) {
                failf(why, cap, "out of memory");
                goto out;
            }
        }
        if (count >= 0 && tokens == (size_t)count * 2)
            break;
    }
    if (!sparse_valid(sp, n, size)) {
        failf(why, cap, "PAX sparse map: regions overlap, are out of order or beyond the size");
        goto out;
    }
    rc = 0;
out:
    free(buf);
    free(sp);
    return rc;
}

/* ---- the entry ---- */

void oc_tarhdr_free(oc_tarhdr *h)
{
    free(h->name);
    free(h->linkname);
    for (size_t i = 0; i < h->n_xattrs; i++)
        free(h->xattr_names[i]);
    free(h->xattr_names);
    memset(h, 0, sizeof *h);
}

/* The body of a meta header (n bytes after it), NUL-terminated. */
static char *read_body(int fd, uint64_t at, int64_t n, char *why, size_t cap)
{
    if (n < 0 || n > SPECIAL_MAX) {
        failf(why, cap, "an extended header of %" PRId64 " bytes (more than 1 MiB)", n);
        return NULL;
    }
    char *body = malloc((size_t)n + 1);
    if (!body) {
        failf(why, cap, "out of memory");
        return NULL;
    }
    if (read_at(fd, at, body, (size_t)n) != 0) {
        free(body);
        failf(why, cap, "the tar ends inside an extended header");
        return NULL;
    }
    body[n] = '\0';
    return body;
}

/* Go's mergePAX: the keys it knows override the header (empty values
 * are skipped); a value that does not parse is ErrHeader. */
static int merge_pax(oc_tarhdr *h, const recs *rs, char *why, size_t cap)
{
    for (size_t i = 0; i < rs->n; i++) {
        const rec *r = &rs->v[i];
        if (strncmp(r->key, "SCHILY.xattr.", 13) == 0) {
            char **grown = realloc(h->xattr_names, sizeof *grown * (h->n_xattrs + 1));
            if (!grown)
                return failf(why, cap, "out of memory");
            h->xattr_names = grown;
            if (!(h->xattr_names[h->n_xattrs] = strdup(r->key + 13)))
                return failf(why, cap, "out of memory");
            h->n_xattrs++;
            continue;
        }
        if (r->vlen == 0)
            continue;
        int bad = 0;
        char **dst = NULL;
        if (strcmp(r->key, "path") == 0)
            dst = &h->name;
        else if (strcmp(r->key, "linkpath") == 0)
            dst = &h->linkname;
        else if (strcmp(r->key, "uid") == 0)
            bad = parse_dec(r->value, r->vlen, &h->uid);
        else if (strcmp(r->key, "gid") == 0)
            bad = parse_dec(r->value, r->vlen, &h->gid);
        else if (strcmp(r->key, "size") == 0)
            bad = parse_dec(r->value, r->vlen, &h->size);
        else if (strcmp(r->key, "mtime") == 0)
            bad = parse_pax_time(r->value, r->vlen, &h->mtime);
        else if (strcmp(r->key, "atime") == 0 || strcmp(r->key, "ctime") == 0) {
            int64_t ignored;
            bad = parse_pax_time(r->value, r->vlen, &ignored);
        }
        if (bad)
            return failf(why, cap, "PAX record '%s' holds a value that is not a valid number",
                         r->key);
        if (dst) {
            free(*dst);
            if (!(*dst = strdup(r->value)))
                return failf(why, cap, "out of memory");
        }
    }
    return 0;
}

static int header_only(char t)
{
    return t >= '1' && t <= '6';
}

int oc_tarhdr_read(int fd, uint64_t pos, oc_tarhdr *h, char *why, size_t cap)
{
    memset(h, 0, sizeof *h);
    unsigned char blk[BLOCK];
    recs pax = {0};
    char *long_name = NULL, *long_link = NULL;
    raw_hdr r = {0};
    int rc = -1;
    for (int n = 0;; n++) {
        if (n == MAX_RUN) {
            failf(why, cap, "more than %d extended headers before an entry", MAX_RUN);
            goto out;
        }
        if (read_at(fd, pos, blk, BLOCK) != 0) {
            failf(why, cap, "the tar ends inside a header");
            goto out;
        }
        if (is_zero(blk, BLOCK)) {
            failf(why, cap,
                  "an end-of-archive block where an entry's header should follow its "
                  "extended headers");
            goto out;
        }
        raw_free(&r);
        if (parse_block(blk, &r, why, cap) != 0)
            goto out;
        pos += BLOCK;
        if (!header_only(r.typeflag) && r.size < 0) {
            failf(why, cap, "a negative size");
            goto out;
        }
        char t = r.typeflag;
        if (t == 'x' || t == 'g' || t == 'L' || t == 'K') {
            char *body = read_body(fd, pos, r.size, why, cap);
            if (!body)
                goto out;
            pos += ((uint64_t)r.size + BLOCK - 1) / BLOCK * BLOCK;
            if (t == 'x' || t == 'g') {
                recs_free(&pax); /* Go keeps only the latest extended header */
                int prc = parse_pax(body, (size_t)r.size, &pax, why, cap);
                free(body);
                if (prc != 0)
                    goto out;
                if (t == 'g') { /* an entry of its own for Go: what came before is gone */
                    recs_free(&pax);
                    free(long_name);
                    free(long_link);
                    long_name = long_link = NULL;
                }
                continue;
            }
            size_t len = strlen(body); /* Go's parseString: cut at a NUL */
            char *s = strndup(body, len);
            free(body);
            if (!s) {
                failf(why, cap, "out of memory");
                goto out;
            }
            char **slot = t == 'L' ? &long_name : &long_link;
            free(*slot);
            *slot = s;
            continue;
        }
        break;
    }
    /* the entry's own header */
    h->typeflag = r.typeflag;
    h->name = r.name;
    h->linkname = r.linkname;
    r.name = r.linkname = NULL;
    h->size = r.size;
    h->mode = r.mode;
    h->uid = r.uid;
    h->gid = r.gid;
    h->mtime = r.mtime;
    h->devmajor = r.devmajor;
    h->devminor = r.devminor;
    if (merge_pax(h, &pax, why, cap) != 0)
        goto out;
    if (long_name && *long_name) {
        free(h->name);
        h->name = long_name;
        long_name = NULL;
    }
    if (long_link && *long_link) {
        free(h->linkname);
        h->linkname = long_link;
        long_link = NULL;
    }
    if (h->typeflag == '\0') {
        size_t len = strlen(h->name);
        h->typeflag = len && h->name[len - 1] == '/' ? '5' : '0';
    }
    if (!header_only(h->typeflag) && h->size < 0) {
        failf(why, cap, "a negative size");
        goto out;
    }
    /* the data Go skips to reach the next header: none for the types that
     * carry no data whatever their size field says */
    uint64_t phys = header_only(h->typeflag) ? 0 : (uint64_t)h->size;
    uint64_t data = pos;
    if (h->typeflag == 'S') {
        if (r.fmt != FMT_GNU) {
            failf(why, cap, "a sparse entry (type 'S') in a header that is not GNU format");
            goto out;
        }
        int64_t real;
        if (parse_numeric(blk + 483, 12, &real) != 0) {
            failf(why, cap, "old GNU sparse entry: the real size is not a valid number");
            goto out;
        }
        h->size = real;
        h->sparse = 1;
        if (old_gnu_sparse(fd, blk, &data, real, why, cap) != 0)
            goto out;
    } else {
        /* Go's readGNUSparsePAXHeaders: which PAX sparse format, if any */
        const rec *maj = recs_get(&pax, "GNU.sparse.major");
        const rec *min = recs_get(&pax, "GNU.sparse.minor");
        const char *mj = maj ? maj->value : "", *mn = min ? min->value : "";
        int fmt = 0; /* 0 none, 1 0.x, 2 1.0 */
        if (strcmp(mj, "0") == 0 && (strcmp(mn, "0") == 0 || strcmp(mn, "1") == 0))
            fmt = 1;
        else if (strcmp(mj, "1") == 0 && strcmp(mn, "0") == 0)
            fmt = 2;
        else if (*mj || *mn)
            fmt = 0;
        else if (recs_get(&pax, "GNU.sparse.map") && recs_get(&pax, "GNU.sparse.map")->vlen)
            fmt = 1;
        if (fmt) {
            const rec *nm = recs_get(&pax, "GNU.sparse.name");
            if (nm && nm->vlen) {
                free(h->name);
                if (!(h->name = strdup(nm->value))) {
                    failf(why, cap, "out of memory");
                    goto out;
                }
            }
            const rec *sz = recs_get(&pax, "GNU.sparse.size");
            if (!sz || !sz->vlen)
                sz = recs_get(&pax, "GNU.sparse.realsize");
            if (sz && sz->vlen && parse_dec(sz->value, sz->vlen, &h->size) != 0) {
                failf(why, cap, "PAX sparse entry: its real size is not a number");
                goto out;
            }
            if (header_only(h->typeflag)) {
                failf(why, cap, "a sparse map on an entry that holds no data");
                goto out;
            }
            h->sparse = 1;
            if ((fmt == 1 ? pax_sparse_0x(&pax, h->size, why, cap)
                          : pax_sparse_1x0(fd, data, h->size, why, cap)) != 0)
                goto out;
        }
    }
    if (phys > UINT64_MAX - data - BLOCK) {
        failf(why, cap, "a size beyond any file");
        goto out;
    }
    h->next = data + (phys + BLOCK - 1) / BLOCK * BLOCK;
    rc = 0;
out:
    raw_free(&r);
    recs_free(&pax);
    free(long_name);
    free(long_link);
    if (rc != 0)
        oc_tarhdr_free(h);
    return rc;
}

int oc_tarhdr_check_end(int fd, uint64_t pos, char *why, size_t cap)
{
    unsigned char blk[BLOCK];
    if (read_at(fd, pos, blk, BLOCK) != 0 || !is_zero(blk, BLOCK))
        return 0;
    if (read_at(fd, pos + BLOCK, blk, BLOCK) != 0 || is_zero(blk, BLOCK))
        return 0;
    return failf(why, cap,
                 "a single end-of-archive block at byte %" PRIu64 " followed by more headers", pos);
}
