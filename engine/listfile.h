/* listfile.h - the mirror's LIST: one image reference a line,
 * [REGISTRY/]REPO(:TAG|@sha256:DIGEST), '#' comments (whole-line or after
 * blanks), blank lines ignored, "-" reads standard input. A malformed line
 * does not stop the others: it is kept as a bad entry with its line number
 * and the parser's message, and the run reports it. */
#ifndef OC_ENGINE_LISTFILE_H
#define OC_ENGINE_LISTFILE_H

#include <stddef.h>
#include <stdio.h>

#include "engine/image/ref.h"
#include "io/error.h"

typedef struct oc_list_entry {
    int line;   /* 1-based line number in LIST */
    char *text; /* the entry as written (trimmed) */
    int ok;     /* parsed: ref is valid */
    oc_ref ref;
    oc_error err; /* when !ok: what is wrong with the line */
} oc_list_entry;

typedef struct oc_list {
    oc_list_entry *entries;
    size_t n;
} oc_list;

/* Parse text (len bytes); default_registry for entries that name none
 * (NULL = Docker Hub). Fails only for an unreadable file or no memory. */
int oc_list_parse(oc_list *list, const char *text, size_t len, const char *default_registry,
                  oc_error *err);
/* Read path ("-" = stdin) and parse it. Lines longer than 4 KiB are bad entries. */
int oc_list_load(oc_list *list, const char *path, const char *default_registry, oc_error *err);
void oc_list_free(oc_list *list);
size_t oc_list_count_bad(const oc_list *list);

#endif
