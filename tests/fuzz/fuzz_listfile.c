/* fuzz_listfile.c - libFuzzer harness for the mirror's LIST parser
 * (engine/listfile.h, oc_list_parse).
 *
 * Input: the text of a LIST, parsed twice: with Docker Hub as the default
 * registry and with "registry.local:5000".
 *
 * Properties: entries come in increasing line order, each line number
 * within the lines the text has; an entry's text is non-empty, at most 200
 * bytes, has no NUL and no newline and does not start or end with a blank;
 * (a bad entry's text may be cut at a NUL byte); a good entry has a
 * complete reference, and, when its text is the whole
 * entry, parsing that text alone gives the same reference; a bad entry has
 * a message naming its line; oc_list_count_bad agrees; oc_list_free leaves
 * an empty list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/listfile.h"
#include "fuzz_common.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static void check_list(const char *text, size_t len, const char *default_registry)
{
    oc_list list;
    oc_error err;
    if (oc_list_parse(&list, text, len, default_registry, &err) != 0) {
        FZ_CHECK(err.code == OC_E_NOMEM, "parse failed: %s", err.msg);
        return;
    }
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    size_t bad = 0;
    int last = 0;
    for (size_t i = 0; i < list.n; i++) {
        const oc_list_entry *e = &list.entries[i];
        FZ_CHECK(e->line > last && (size_t)e->line <= lines, "entry %zu line %d (last %d, %zu)", i,
                 e->line, last, lines);
        last = e->line;
        FZ_CHECK(e->text, "entry %zu has no text", i);
        size_t tl = strlen(e->text);
        /* (a bad entry's text stops at a NUL byte, so it may be empty) */
        FZ_CHECK(tl <= 200 && (tl > 0 || !e->ok), "entry %zu text of %zu bytes", i, tl);
        FZ_CHECK(!strchr(e->text, '\n') && !is_blank(e->text[0]) &&
                     (!e->ok || !is_blank(e->text[tl - 1])),
                 "entry %zu text \"%s\"", i, e->text);
        if (!e->ok) {
            bad++;
            FZ_CHECK(e->err && e->err->msg[0] != '\0', "bad entry %zu has no message", i);
            FZ_CHECK(!e->ref.registry && !e->ref.repository, "bad entry %zu has a reference", i);
            continue;
        }
        /* a repository entry (REPO:*, REPO:/RE/) names no tag or digest */
        FZ_CHECK(e->ref.registry && e->ref.repository &&
                     (e->kind != OC_LIST_IMAGE || e->ref.tag || e->ref.digest) &&
                     (e->kind != OC_LIST_TAG_REGEX || e->tag_regex),
                 "good entry %zu is incomplete", i);
        if (tl < 200 && e->kind == OC_LIST_IMAGE) {
            oc_ref r;
            oc_error rerr;
            FZ_CHECK(oc_ref_parse(&r, e->text, default_registry, &rerr) == 0,
                     "entry \"%s\" does not parse alone: %s", e->text, rerr.msg);
            FZ_CHECK(fz_streq(r.registry, e->ref.registry) &&
                         fz_streq(r.repository, e->ref.repository) && fz_streq(r.tag, e->ref.tag) &&
                         fz_streq(r.digest, e->ref.digest),
                     "entry \"%s\" parses differently alone", e->text);
            oc_ref_free(&r);
        }
    }
    FZ_CHECK(oc_list_count_bad(&list) == bad, "count_bad %zu, counted %zu",
             oc_list_count_bad(&list), bad);
    oc_list_free(&list);
    FZ_CHECK(list.n == 0 && list.entries == NULL, "free left entries");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly size bytes, so ASan sees reads past the end */
    char *text = fz_xmalloc(size);
    if (size)
        memcpy(text, data, size);
    check_list(text, size, NULL);
    check_list(text, size, "registry.local:5000");
    free(text);
    return 0;
}
