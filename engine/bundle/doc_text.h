/* doc_text.h - the text form of the bundle's JSON documents (the bundle
 * manifest and the inventory, DESIGN.md 7.8): one key of the top-level
 * object a line, sorted, each value compact JSON with sorted keys, except
 * that an array of objects has one element a line. So a large document is
 * still one small object a line (diffable, greppable, and jq reads it as
 * any JSON), and the same document always gives the same bytes, which makes
 * its digest a name for it. */
#ifndef OC_ENGINE_BUNDLE_DOC_TEXT_H
#define OC_ENGINE_BUNDLE_DOC_TEXT_H

#include <stddef.h>

#include <jansson.h>

#include "io/error.h"

/* doc must be an object; malloc'd text ending in a newline, *len without
 * the NUL. */
char *oc_doc_text(const json_t *doc, size_t *len, oc_error *err);

/* Parse text that must be one JSON object of at most max bytes (the caller
 * checked the size before reading); what names it in errors. */
json_t *oc_doc_parse(const char *text, size_t len, const char *what, oc_error *err);

#endif
