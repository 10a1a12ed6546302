/* listfile.c - parsing the mirror's LIST (see listfile.h). */
#include "engine/listfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 4096
#define LIST_MAX_BYTES (64u * 1024 * 1024)

static int append(oc_list *list, oc_list_entry *e)
{
    oc_list_entry *grown = realloc(list->entries, sizeof *grown * (list->n + 1));
    if (!grown)
        return -1;
    list->entries = grown;
    list->entries[list->n++] = *e;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
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
        oc_list_entry entry;
        memset(&entry, 0, sizeof entry);
        entry.line = line;
        size_t shown = e - b < 200 ? e - b : 200;
        entry.text = strndup(start + b, shown);
        if (!entry.text)
            goto oom;
        if (e - b > LINE_MAX_LEN) {
            oc_error_set(&entry.err, OC_E_FORMAT, "line %d: entry longer than %d bytes", line,
                         LINE_MAX_LEN);
        } else if (memchr(start + b, '\0', e - b)) {
            oc_error_set(&entry.err, OC_E_FORMAT, "line %d: entry contains a NUL byte", line);
        } else {
            char *one = strndup(start + b, e - b);
            if (!one) {
                free(entry.text);
                goto oom;
            }
            if (oc_ref_parse(&entry.ref, one, default_registry, &entry.err) == 0)
                entry.ok = 1;
            else
                oc_error_prefix(&entry.err, "line %d", line);
            free(one);
        }
        if (append(list, &entry) != 0) {
            free(entry.text);
            if (entry.ok)
                oc_ref_free(&entry.ref);
            goto oom;
        }
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
    for (size_t i = 0; i < list->n; i++) {
        free(list->entries[i].text);
        if (list->entries[i].ok)
            oc_ref_free(&list->entries[i].ref);
    }
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
