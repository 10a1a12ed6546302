/* store_relist.c - complete images back into the catalog (see
 * store_relist.h). */
#include "engine/store/store_relist.h"

#include <stdlib.h>
#include <string.h>

#include "io/strmap.h"

/* Every file the catalog names, into a set. */
static int collect(void *opaque, const char *image, const char *tag, const char *file)
{
    (void)image;
    (void)tag;
    return oc_strmap_set(opaque, file, NULL) == 0 ? 0 : -1;
}

/* Should file (not named by the catalog) be listed? Its image and tag. */
static int listable(oc_store *s, const oc_catalog *c, const char *file, char **image, char **tag)
{
    char *path = oc_store_path(s, file);
    oc_store_image si;
    oc_error ignored;
    int ok = path && oc_store_image_load(&si, path, &ignored) == 0;
    free(path);
    if (!ok)
        return 0; /* verify says why */
    char why[512];
    char *rule = si.image_name && si.has_ours && si.tag
                     ? oc_catalog_manifest_name(si.image_name, si.tag)
                     : NULL;
    ok = rule && strcmp(rule, file) == 0 && !oc_catalog_get(c, si.image_name, si.tag) &&
         oc_store_image_intact(s, &si, why, sizeof why);
    if (ok) {
        *image = strdup(si.image_name);
        *tag = strdup(si.tag);
        ok = *image && *tag;
    }
    free(rule);
    oc_store_image_free(&si);
    return ok;
}

long oc_store_relist(oc_store *s, oc_relist_report report, void *opaque, oc_error *err)
{
    oc_store_entries e;
    if (oc_store_entries_read(s, &e, err) != 0)
        return -1;
    long added = -1;
    oc_catalog *c = NULL;
    oc_strmap *named = oc_strmap_new(NULL);
    int fd = named ? oc_store_catalog_lock(s, err) : -1;
    if (!named)
        oc_error_set(err, OC_E_NOMEM, "out of memory");
    if (fd < 0 || oc_store_catalog_load(s, &c, err) != 0)
        goto out;
    if (oc_catalog_foreach(c, collect, named) != 0) {
        oc_error_set(err, OC_E_NOMEM, "out of memory");
        goto out;
    }
    added = 0;
    for (size_t i = 0; i < e.n_manifests; i++) {
        char *image = NULL, *tag = NULL;
        if (oc_strmap_has(named, e.manifests[i]) || !listable(s, c, e.manifests[i], &image, &tag)) {
            free(image);
            free(tag);
            continue;
        }
        int rc = oc_catalog_set(c, image, tag, e.manifests[i], err);
        if (rc == 0 && report)
            report(opaque, e.manifests[i], image, tag);
        free(image);
        free(tag);
        if (rc != 0) {
            added = -1;
            goto out;
        }
        added++;
    }
    if (added > 0 && oc_store_catalog_replace(s, c, err) != 0)
        added = -1;
out:
    oc_store_catalog_unlock(fd);
    oc_catalog_free(c);
    oc_strmap_free(named);
    oc_store_entries_free(&e);
    return added;
}
