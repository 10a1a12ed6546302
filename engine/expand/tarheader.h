/* tarheader.h - what Go's archive/tar (the reader containerd and moby
 * unpack layers with) makes of one tar entry, read from the raw bytes.
 *
 * An entry is a run of headers: PAX extended headers ('x'), PAX global
 * headers ('g'), GNU long names ('L', 'K'), then the entry's own header
 * (and, for an old-GNU sparse file, its extension blocks). This reads the
 * run that starts at a byte offset of an uncompressed tar and applies Go's
 * rules: the header checksum and format, numeric fields (octal or base-256,
 * with Go's strictness), PAX records and the values of the keys Go
 * understands, which of a GNU long name and a PAX path wins, a ustar or
 * star prefix, the old "regular file with a trailing slash is a directory"
 * rule, and the size of sparse files (old GNU and PAX 0.0/0.1/1.0). Where
 * Go's reader stops with ErrHeader (or the input ends inside a header) the
 * read fails with a reason. layertar.c compares the result with
 * libarchive's entry. */
#ifndef OC_ENGINE_EXPAND_TARHEADER_H
#define OC_ENGINE_EXPAND_TARHEADER_H

#include <stddef.h>
#include <stdint.h>

typedef struct oc_tarhdr {
    char typeflag; /* as Go reports it: '\0' becomes '0' or '5' */
    char *name;
    char *linkname;
    int64_t size; /* logical size (a sparse file's real size) */
    int64_t mode, uid, gid, mtime, devmajor, devminor;
    int sparse;         /* old-GNU 'S' or a PAX GNU sparse format */
    char **xattr_names; /* the SCHILY.xattr.NAME records */
    size_t n_xattrs;
    uint64_t next; /* where Go reads the next header: after the data it skips */
} oc_tarhdr;

/* Read the entry whose first header is at byte pos of the tar in fd (read
 * with pread: the file offset is not used). 0 with *h filled; -1 with why
 * (cap bytes) when Go's reader would refuse it. */
int oc_tarhdr_read(int fd, uint64_t pos, oc_tarhdr *h, char *why, size_t cap);
void oc_tarhdr_free(oc_tarhdr *h);

/* libarchive found the end of the archive at byte pos: 0 when Go's reader
 * ends there too (end of file, two zero blocks, one zero block and end of
 * file, or what is not a zero block: a 'g' header Go reports on its own);
 * -1 with why for a zero block followed by more (Go: ErrHeader). */
int oc_tarhdr_check_end(int fd, uint64_t pos, char *why, size_t cap);

#endif
