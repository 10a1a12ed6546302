/* listfile.h - the mirror's LIST: one entry a line, '#' comments (whole-line
 * or after blanks), blank lines ignored, "-" reads standard input. An entry
 * is an image reference, [REGISTRY/]REPO(:TAG|@sha256:DIGEST), or a whole
 * repository with a tag filter:
 *   [REGISTRY/]REPO:*          every tag of the repository
 *   [REGISTRY/]REPO:/REGEX/    the tags that match REGEX (PCRE2, anchored:
 *                              the whole tag must match)
 * A repository entry is expanded into tag entries when the run lists the
 * repository's tags (mirror_tags.h). A malformed line does not stop the
 * others: it is kept as a bad entry with its line number and the parser's
 * message, and the run reports it. */
#ifndef OC_ENGINE_LISTFILE_H
#define OC_ENGINE_LISTFILE_H

#include <stddef.h>
#include <stdio.h>

#include "engine/image/ref.h"
#include "io/error.h"

typedef enum oc_list_kind {
    OC_LIST_IMAGE = 0, /* ref names a tag or a digest */
    OC_LIST_ALL_TAGS,  /* REPO:*; ref has no tag and no digest */
    OC_LIST_TAG_REGEX, /* REPO:/REGEX/; ditto */
} oc_list_kind;

typedef struct oc_list_entry {
    int line;   /* 1-based line number in LIST */
    char *text; /* the entry as written (trimmed; at most 200 bytes shown) */
    int ok;     /* parsed: ref is valid */
    oc_list_kind kind;
    char *tag_regex; /* OC_LIST_TAG_REGEX: the REGEX */
    oc_ref ref;
    oc_error *err; /* when !ok: what is wrong with the line (malloc'd) */
} oc_list_entry;

typedef struct oc_list {
    oc_list_entry *entries;
    size_t n;
    size_t cap;
} oc_list;

/* Parse text (len bytes); default_registry for entries that name none
 * (NULL = Docker Hub). Fails only for an unreadable file or no memory. */
int oc_list_parse(oc_list *list, const char *text, size_t len, const char *default_registry,
                  oc_error *err);
/* Read path ("-" = stdin) and parse it. Lines longer than 4 KiB are bad entries. */
int oc_list_load(oc_list *list, const char *path, const char *default_registry, oc_error *err);
void oc_list_free(oc_list *list);
size_t oc_list_count_bad(const oc_list *list);

/* For the expansion of repository entries: append an image entry for tag
 * of the repository ref names (text "<repository entry without its
 * filter>:<tag>"), or a copy of entry e (a bad entry keeps its error). */
int oc_list_append_tag(oc_list *list, const oc_list_entry *repo_entry, const char *tag);
int oc_list_append_copy(oc_list *list, const oc_list_entry *e);
/* Append a bad entry for line with err's message. */
int oc_list_append_bad(oc_list *list, int line, const char *text, const oc_error *err);
/* The part of a repository entry before ":*" or ":/REGEX/". */
size_t oc_list_repo_text_len(const oc_list_entry *e);

#endif
