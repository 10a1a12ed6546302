#!/usr/bin/python3
# expand_listing.py - the full listing of a directory tree, for comparing
# expanded root filesystems exactly (ours, umoci's, an expected one).
#
#   expand_listing.py DIR [--exclude NAME]...
#
# One line per path below DIR (DIR itself left out), sorted by path, fields
# separated by a tab:
#   path  type  mode  uid:gid  size  sha256  link-target  hardlink-group
# type is dir, file, symlink, fifo, char, block or socket; mode is the octal
# permission bits (setuid, setgid and sticky included); size and sha256 are
# for regular files ("-" otherwise); link-target is a symlink's target or
# "major,minor" of a device; hardlink-group is "-" for a file with no other
# name in the tree, else the first (sorted) path of the files sharing its
# inode. Names are printed with Python's backslashreplace for odd bytes.
import hashlib
import os
import stat
import sys


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def main(argv):
    excludes = set()
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == "--exclude":
            excludes.add(argv[i + 1])
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if len(args) != 1:
        print("usage: expand_listing.py DIR [--exclude NAME]...", file=sys.stderr)
        return 2
    root = os.fsencode(args[0])
    rows = []
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if os.fsdecode(d) not in excludes]
            filenames = [f for f in filenames if os.fsdecode(f) not in excludes]
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            m = st.st_mode
            size = digest = target = "-"
            if stat.S_ISDIR(m):
                kind = "dir"
            elif stat.S_ISREG(m):
                kind = "file"
                size = str(st.st_size)
                digest = sha256_of(full)
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISLNK(m):
                kind = "symlink"
                target = os.readlink(full).decode("utf-8", "backslashreplace")
            elif stat.S_ISFIFO(m):
                kind = "fifo"
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                kind = "char" if stat.S_ISCHR(m) else "block"
                target = f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
            else:
                kind = "socket"
            rows.append([rel, kind, f"{stat.S_IMODE(m):04o}", f"{st.st_uid}:{st.st_gid}", size,
                         digest, target, (st.st_dev, st.st_ino) if kind == "file" else None])
    group = {}
    for key, paths in inodes.items():
        if len(paths) > 1:
            group[key] = sorted(paths)[0].decode("utf-8", "backslashreplace")
    out = []
    for r in sorted(rows, key=lambda r: r[0]):
        r[0] = r[0].decode("utf-8", "backslashreplace")
        r[7] = group.get(r[7], "-") if r[7] else "-"
        out.append("\t".join(r))
    sys.stdout.write("".join(line + "\n" for line in out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
