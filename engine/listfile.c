/* listfile.c - parsing the mirror's LIST (see listfile.h). */
#include "engine/listfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image/tagfilter.h"
#include "io/grow.h"

#define LINE_MAX_LEN 4096
#define LIST_MAX_BYTES (64u * 1024 * 1024)
#define TEXT_SHOWN 200

static oc_list_entry *grow(oc_list *list)
{
    oc_list_entry *grown = oc_grow(list->entries, &list->cap, list->n + 1, sizeof *grown, 64);
    if (!grown)
        return NULL;
    list->entries = grown;
    oc_list_entry *e = &list->entries[list->n];
    memset(e, 0, sizeof *e);
    return e;
}

static void entry_free(oc_list_entry *e)
{
    free(e->text);
    free(e->tag_regex);
    free(e->err);
    if (e->ok)
        oc_ref_free(&e->ref);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int set_error(oc_list_entry *e, const oc_error *from)
{
    e->err = malloc(sizeof *e->err);
    if (!e->err)
        return -1;
    *e->err = *from;
    return 0;
}

/* A repository entry? "REPO:*" or "REPO:/REGEX/": the kind and the length
 * of the REPO part, else OC_LIST_IMAGE. */
static oc_list_kind repo_kind(const char *s, size_t len, size_t *repo_len)
{
    if (len >= 3 && s[len - 1] == '*' && s[len - 2] == ':') {
        *repo_len = len - 2;
        return OC_LIST_ALL_TAGS;
    }
    if (len >= 4 && s[len - 1] == '/') {
        /* the first ":/" ends the repository: a port is ":<digit>" */
        for (size_t i = 0; i + 1 < len - 1; i++) {
            if (s[i] == ':' && s[i + 1] == '/') {
                *repo_len = i;
                return OC_LIST_TAG_REGEX;
            }
        }
    }
    return OC_LIST_IMAGE;
}

/* Parse one trimmed entry s[0..len) into e (line and text set). */
static int parse_entry(oc_list_entry *e, const char *s, size_t len, const char *default_registry)
{
    oc_error perr;
    oc_error_clear(&perr);
    if (len > LINE_MAX_LEN) {
        oc_error_set(&perr, OC_E_FORMAT, "line %d: entry longer than %d bytes", e->line,
                     LINE_MAX_LEN);
        return set_error(e, &perr);
    }
    if (memchr(s, '\0', len)) {
        oc_error_set(&perr, OC_E_FORMAT, "line %d: entry contains a NUL byte", e->line);
        return set_error(e, &perr);
    }
    size_t repo_len = len;
    oc_list_kind kind = repo_kind(s, len, &repo_len);
    char *one = strndup(s, repo_len);
    if (!one)
        return -1;
    int rc = 0;
    if (kind != OC_LIST_IMAGE) {
        size_t rl = strlen(one);
        const char *tail = strrchr(one, '/');
        if (strchr(tail ? tail + 1 : one, ':') || strchr(one, '@') || rl == 0) {
            oc_error_set(&perr, OC_E_FORMAT,
                         "line %d: \"%s\" names a tag or digest before its tag filter (write "
                         "REPO:* or REPO:/REGEX/)",
                         e->line, one);
            rc = set_error(e, &perr);
            free(one);
            return rc;
        }
    }
    if (oc_ref_parse(&e->ref, one, default_registry, &perr) != 0) {
        oc_error_prefix(&perr, "line %d", e->line);
        rc = set_error(e, &perr);
    } else if (kind != OC_LIST_IMAGE) {
        free(e->ref.tag); /* the parser's default "latest" */
        e->ref.tag = NULL;
        e->kind = kind;
        e->ok = 1;
        if (kind == OC_LIST_TAG_REGEX) {
            e->tag_regex = strndup(s + repo_len + 2, len - repo_len - 3);
            if (!e->tag_regex) {
                rc = -1;
            } else if (oc_tag_regex_check(e->tag_regex, &perr) != 0) {
                oc_error_prefix(&perr, "line %d", e->line);
                oc_ref_free(&e->ref);
                e->ok = 0;
                rc = set_error(e, &perr);
            }
        }
    } else {
        e->ok = 1;
    }
    free(one);
    return rc;
}

int oc_list_parse(oc_list *list, const char *text, size_t len, const char *default_registry,
                  oc_error *err)
{
    memset(list, 0, sizeof *list);
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        line++;
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - start) : len - pos;
        pos += llen + (nl ? 1 : 0);
        /* trim; a '#' after blanks (or at the start) begins a comment */
        size_t b = 0, e = llen;
        while (b < e && is_blank(start[b]))
            b++;
        for (size_t i = b; i < e; i++) {
            if (start[i] == '#' && (i == b || is_blank(start[i - 1]))) {
                e = i;
                break;
            }
        }
        while (e > b && is_blank(start[e - 1]))
            e--;
        if (e == b)
            continue;
        oc_list_entry *entry = grow(list);
        if (!entry)
            goto oom;
        entry->line = line;
        /* the entry as shown: cut at TEXT_SHOWN, and trimmed again after the
         * cut (a long regex may have blanks inside) */
        size_t shown = e - b < TEXT_SHOWN ? e - b : TEXT_SHOWN;
        while (shown > 1 && is_blank(start[b + shown - 1]))
            shown--;
        entry->text = strndup(start + b, shown);
        if (!entry->text || parse_entry(entry, start + b, e - b, default_registry) != 0) {
            entry_free(entry);
            goto oom;
        }
        list->n++;
    }
    return 0;
oom:
    oc_list_free(list);
    oc_error_set(err, OC_E_NOMEM, "out of memory reading the list");
    return -1;
}

int oc_list_load(oc_list *list, const char *path, const char *default_registry, oc_error *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        oc_error_errno(err, errno, "cannot open list %s", path);
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 65536 * 2;
            char *grown = cap <= LIST_MAX_BYTES * 2 ? realloc(buf, cap) : NULL;
            if (!grown) {
                free(buf);
                if (f != stdin)
                    fclose(f);
                oc_error_set(err, OC_E_LIMIT, "list %s is too large", path);
                return -1;
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > LIST_MAX_BYTES) {
            free(buf);
            if (f != stdin)
                fclose(f);
            oc_error_set(err, OC_E_LIMIT, "list %s is larger than %u bytes", path, LIST_MAX_BYTES);
            return -1;
        }
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        free(buf);
        oc_error_set(err, OC_E_IO, "cannot read list %s", path);
        return -1;
    }
    int rc = oc_list_parse(list, buf ? buf : "", len, default_registry, err);
    free(buf);
    return rc;
}

void oc_list_free(oc_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        entry_free(&list->entries[i]);
    free(list->entries);
    memset(list, 0, sizeof *list);
}

size_t oc_list_count_bad(const oc_list *list)
{
    size_t bad = 0;
    for (size_t i = 0; i < list->n; i++)
        bad += !list->entries[i].ok;
    return bad;
}

size_t oc_list_repo_text_len(const oc_list_entry *e)
{
    size_t len = strlen(e->text), repo_len = len;
    if (repo_kind(e->text, len, &repo_len) == OC_LIST_IMAGE)
        return len;
    return repo_len;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int oc_list_append_tag(oc_list *list, const oc_list_entry *repo_entry, const char *tag)
{
    oc_list_entry *e = grow(list);
    if (!e)
        return -1;
    e->line = repo_entry->line;
    size_t rl = oc_list_repo_text_len(repo_entry);
    if (asprintf(&e->text, "%.*s:%s", (int)rl, repo_entry->text, tag) < 0) {
        e->text = NULL;
        return -1;
    }
    e->ref.registry = xstrdup(repo_entry->ref.registry);
    e->ref.repository = xstrdup(repo_entry->ref.repository);
    e->ref.tag = strdup(tag);
    e->ok = 1;
    if (!e->ref.registry || !e->ref.repository || !e->ref.tag) {
        entry_free(e);
        return -1;
    }
    list->n++;
    return 0;
}

int oc_list_append_copy(oc_list *list, const oc_list_entry *from)
{
    oc_list_entry *e = grow(list);
    if (!e)
        return -1;
    e->line = from->line;
    e->kind = from->kind;
    e->ok = from->ok;
    e->text = strdup(from->text);
    int bad = !e->text;
    if (from->tag_regex && !(e->tag_regex = strdup(from->tag_regex)))
        bad = 1;
    if (from->err && set_error(e, from->err) != 0)
        bad = 1;
    if (from->ok) {
        e->ref.registry = xstrdup(from->ref.registry);
        e->ref.repository = xstrdup(from->ref.repository);
        e->ref.tag = xstrdup(from->ref.tag);
        e->ref.digest = xstrdup(from->ref.digest);
        if (!e->ref.registry || !e->ref.repository || (from->ref.tag && !e->ref.tag) ||
            (from->ref.digest && !e->ref.digest))
            bad = 1;
    }
    if (bad) {
        entry_free(e);
        return -1;
    }
    list->n++;
    return 0;
}

int oc_list_append_bad(oc_list *list, int line, const char *text, const oc_error *err)
{
    oc_list_entry *e = grow(list);
    if (!e)
        return -1;
    e->line = line;
    e->text = strdup(text);
    if (!e->text || set_error(e, err) != 0) {
        entry_free(e);
        return -1;
    }
    list->n++;
    return 0;
}
