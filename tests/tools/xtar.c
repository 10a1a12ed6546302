/* xtar.c - a test tool: expand uncompressed layer tars with occystrap's
 * expansion code (engine/expand.h), one tree per tar, in one process, for
 * the differential expand test (tests/integration/expand_differential.sh).
 *
 *   occy_xtar as-is|merge OUTROOT TAR...
 *
 * For each TAR, OUTROOT/<its file name without .tar> gets the layer as it
 * is (oc_expand_as_is: whiteout files kept) or merged as a one-layer image
 * (oc_expand_merge, write-once: whiteouts applied). One line on stdout per
 * TAR: "ok NAME" or "refused NAME<TAB>MESSAGE". Exit 0 when every line was
 * written, 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/expand/expand.h"

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "as-is") != 0 && strcmp(argv[1], "merge") != 0)) {
        fprintf(stderr, "usage: occy_xtar as-is|merge OUTROOT TAR...\n");
        return 2;
    }
    int merge = strcmp(argv[1], "merge") == 0;
    oc_expand_opts opts = {.strategy = OC_EXPAND_WRITE_ONCE, .no_sync = 1};
    for (int i = 3; i < argc; i++) {
        const char *base = strrchr(argv[i], '/');
        base = base ? base + 1 : argv[i];
        char name[512];
        snprintf(name, sizeof name, "%s", base);
        size_t len = strlen(name);
        if (len > 4 && strcmp(name + len - 4, ".tar") == 0)
            name[len - 4] = '\0';
        char *out = NULL;
        if (asprintf(&out, "%s/%s", argv[2], name) < 0)
            return 2;
        oc_expand_layer l = {.tar_path = argv[i], .label = name};
        oc_error err;
        oc_error_clear(&err);
        int rc = merge ? oc_expand_merge(&l, 1, out, 0, &opts, NULL, &err)
                       : oc_expand_as_is(&l, out, 0, &opts, NULL, &err);
        if (rc == 0)
            printf("ok %s\n", name);
        else
            printf("refused %s\t%s\n", name, err.msg);
        fflush(stdout);
        free(out);
    }
    return 0;
}
