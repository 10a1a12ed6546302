/* semver.c - version tags and ranges (see semver.h). A range is parsed
 * into sets of primitive comparisons (op + full version), so matching is a
 * walk over a few comparisons. */
#include "engine/image/semver.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_GE, OP_GT, OP_LE, OP_LT, OP_EQ, OP_ANY } cmp_op;

typedef struct comparator {
    cmp_op op;
    oc_semver v;
} comparator;

typedef struct cset {
    comparator *c;
    size_t n;
} cset;

struct oc_semver_range {
    cset *sets;
    size_t n;
};

/* digits only, no sign, fits in 64 bits */
static int parse_number(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int ident_ok(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* dot-separated identifiers, each non-empty [0-9A-Za-z-] */
static int idents_ok(const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (!ident_ok(s + start, i - start))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

/* text[0..len) as a version; partial allowed. */
static int parse_len(const char *text, size_t len, oc_semver *v)
{
    memset(v, 0, sizeof *v);
    const char *p = text, *end = text + len;
    if (p < end && (*p == 'v' || *p == 'V'))
        p++;
    const char *plus = memchr(p, '+', (size_t)(end - p));
    if (plus) {
        if (!idents_ok(plus + 1, (size_t)(end - plus - 1)))
            return -1;
        end = plus;
    }
    const char *dash = memchr(p, '-', (size_t)(end - p));
    if (dash) {
        size_t plen = (size_t)(end - dash - 1);
        if (!idents_ok(dash + 1, plen) || plen >= sizeof v->pre)
            return -1;
        memcpy(v->pre, dash + 1, plen);
        v->pre[plen] = '\0';
        end = dash;
    }
    while (p < end) {
        if (v->n_parts == 3)
            return -1;
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *stop = dot ? dot : end;
        if (parse_number(p, (size_t)(stop - p), &v->part[v->n_parts]) != 0)
            return -1;
        v->n_parts++;
        if (dot && dot + 1 == end)
            return -1; /* "1." */
        p = dot ? dot + 1 : end;
    }
    return v->n_parts > 0 ? 0 : -1;
}

int oc_semver_parse(const char *text, oc_semver *v)
{
    return parse_len(text, strlen(text), v);
}

static int is_numeric(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return len > 0;
}

static int cmp_pre(const char *a, const char *b)
{
    if (!*a || !*b)
        return !*a && !*b ? 0 : !*a ? 1 : -1; /* a release ranks above its prereleases */
    for (;;) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        int na = is_numeric(a, la), nb = is_numeric(b, lb);
        int c = 0;
        if (na && nb) {
            uint64_t x = 0, y = 0;
            if (parse_number(a, la, &x) != 0 || parse_number(b, lb, &y) != 0)
                c = la != lb ? (la < lb ? -1 : 1) : strncmp(a, b, la); /* huge: by length */
            else
                c = x < y ? -1 : x > y;
        } else if (na != nb) {
            c = na ? -1 : 1; /* numeric identifiers rank lower */
        } else {
            c = strncmp(a, b, la < lb ? la : lb);
            if (c == 0 && la != lb)
                c = la < lb ? -1 : 1;
        }
        if (c)
            return c < 0 ? -1 : 1;
        a += la;
        b += lb;
        if (!*a || !*b)
            return !*a && !*b ? 0 : !*a ? -1 : 1; /* fewer identifiers rank lower */
        a++;
        b++;
    }
}

int oc_semver_cmp(const oc_semver *a, const oc_semver *b)
{
    for (int i = 0; i < 3; i++)
        if (a->part[i] != b->part[i])
            return a->part[i] < b->part[i] ? -1 : 1;
    return cmp_pre(a->pre, b->pre);
}

/* ---- ranges ---- */

static int push(cset *s, cmp_op op, const oc_semver *v)
{
    comparator *grown = realloc(s->c, (s->n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    s->c = grown;
    s->c[s->n].op = op;
    if (v)
        s->c[s->n].v = *v;
    else
        memset(&s->c[s->n].v, 0, sizeof s->c[s->n].v);
    s->n++;
    return 0;
}

/* The version just above v at its written precision ("1.2" -> 1.3.0). */
static oc_semver bump(const oc_semver *v, int at)
{
    oc_semver n;
    memset(&n, 0, sizeof n);
    for (int i = 0; i < at; i++)
        n.part[i] = v->part[i];
    n.part[at] = v->part[at] + 1;
    n.n_parts = 3;
    return n;
}

static oc_semver padded(const oc_semver *v)
{
    oc_semver n = *v;
    n.n_parts = 3;
    return n;
}

/* One comparator word of a set, e.g. ">=1.2", "~1.4", "1.x" is not
 * supported (use "1"). */
static int add_word(cset *s, const char *w, size_t len, oc_error *err, const char *range)
{
    cmp_op op = OP_EQ;
    int tilde = 0, caret = 0;
    size_t skip = 0;
    if (len == 1 && w[0] == '*')
        return push(s, OP_ANY, NULL);
    if (len >= 2 && w[0] == '>' && w[1] == '=')
        op = OP_GE, skip = 2;
    else if (len >= 2 && w[0] == '<' && w[1] == '=')
        op = OP_LE, skip = 2;
    else if (w[0] == '>')
        op = OP_GT, skip = 1;
    else if (w[0] == '<')
        op = OP_LT, skip = 1;
    else if (w[0] == '=')
        op = OP_EQ, skip = 1;
    else if (w[0] == '~')
        tilde = 1, skip = 1;
    else if (w[0] == '^')
        caret = 1, skip = 1;
    oc_semver v;
    if (parse_len(w + skip, len - skip, &v) != 0) {
        oc_error_set(err, OC_E_USAGE,
                     "semver range \"%s\": \"%.*s\" is not a comparison with a version", range,
                     (int)len, w);
        return -1;
    }
    int partial = v.n_parts < 3;
    int last = v.n_parts - 1; /* index of the last part written */
    oc_semver lo = padded(&v);
    int rc = 0;
    if (tilde) {
        /* ~1.2.3 and ~1.2: <1.3.0; ~1: <2.0.0 */
        oc_semver hi = bump(&v, v.n_parts >= 2 ? 1 : 0);
        rc = push(s, OP_GE, &lo) || push(s, OP_LT, &hi);
    } else if (caret) {
        int at = 0;
        while (at < last && v.part[at] == 0)
            at++;
        oc_semver hi = bump(&v, at);
        rc = push(s, OP_GE, &lo) || push(s, OP_LT, &hi);
    } else if (op == OP_EQ && partial) {
        oc_semver hi = bump(&v, last);
        rc = push(s, OP_GE, &lo) || push(s, OP_LT, &hi);
    } else if (op == OP_GT && partial) {
        oc_semver hi = bump(&v, last);
        rc = push(s, OP_GE, &hi);
    } else if (op == OP_LE && partial) {
        oc_semver hi = bump(&v, last);
        rc = push(s, OP_LT, &hi);
    } else {
        rc = push(s, op, &lo);
    }
    if (rc != 0)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    return rc ? -1 : 0;
}

void oc_semver_range_free(oc_semver_range *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->sets[i].c);
    free(r->sets);
    free(r);
}

oc_semver_range *oc_semver_range_parse(const char *text, oc_error *err)
{
    oc_semver_range *r = calloc(1, sizeof *r);
    if (!r) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        return NULL;
    }
    const char *p = text;
    for (;;) {
        const char *bar = strstr(p, "||");
        const char *end = bar ? bar : p + strlen(p);
        cset *grown = realloc(r->sets, (r->n + 1) * sizeof *grown);
        if (!grown) {
            oc_error_set(err, OC_E_NOMEM, "out of memory");
            goto fail;
        }
        r->sets = grown;
        cset *s = &r->sets[r->n++];
        memset(s, 0, sizeof *s);
        const char *q = p;
        while (q < end) {
            while (q < end && isspace((unsigned char)*q))
                q++;
            const char *w = q;
            while (q < end && !isspace((unsigned char)*q))
                q++;
            /* ">= 1.2": an operator alone joins the next word */
            if (q > w && q < end && strspn(w, "<>=~^") == (size_t)(q - w)) {
                while (q < end && isspace((unsigned char)*q))
                    q++;
                char joined[160];
                const char *w2 = q;
                while (q < end && !isspace((unsigned char)*q))
                    q++;
                int n = snprintf(joined, sizeof joined, "%.*s%.*s", (int)(w2 - w), w, (int)(q - w2),
                                 w2);
                /* remove the blanks between operator and version */
                size_t k = 0;
                for (int i = 0; i < n && joined[i]; i++)
                    if (!isspace((unsigned char)joined[i]))
                        joined[k++] = joined[i];
                joined[k] = '\0';
                if (add_word(s, joined, k, err, text) != 0)
                    goto fail;
                continue;
            }
            if (q > w && add_word(s, w, (size_t)(q - w), err, text) != 0)
                goto fail;
        }
        if (s->n == 0) {
            oc_error_set(err, OC_E_USAGE, "semver range \"%s\" has an empty part", text);
            goto fail;
        }
        if (!bar)
            break;
        p = bar + 2;
    }
    return r;
fail:
    oc_semver_range_free(r);
    return NULL;
}

static int holds(const comparator *c, const oc_semver *v)
{
    int d = c->op == OP_ANY ? 0 : oc_semver_cmp(v, &c->v);
    switch (c->op) {
    case OP_GE:
        return d >= 0;
    case OP_GT:
        return d > 0;
    case OP_LE:
        return d <= 0;
    case OP_LT:
        return d < 0;
    case OP_EQ:
        return d == 0;
    case OP_ANY:
        return 1;
    }
    return 0;
}

static int set_matches(const cset *s, const oc_semver *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (!holds(&s->c[i], v))
            return 0;
    if (!v->pre[0])
        return 1;
    /* a prerelease only where the set names one of the same version */
    for (size_t i = 0; i < s->n; i++) {
        const oc_semver *c = &s->c[i].v;
        if (s->c[i].op != OP_ANY && c->pre[0] && c->part[0] == v->part[0] &&
            c->part[1] == v->part[1] && c->part[2] == v->part[2])
            return 1;
    }
    return 0;
}

int oc_semver_range_matches(const oc_semver_range *r, const oc_semver *v)
{
    for (size_t i = 0; i < r->n; i++)
        if (set_matches(&r->sets[i], v))
            return 1;
    return 0;
}
