#!/usr/bin/python3
"""expand_diff.py - the differential test of layer expansion: tar layers
expanded by occystrap's code (occy_xtar) and by independent readers, trees
compared; where they differ, occystrap must have refused the layer.

  expand_diff.py --xtar OCCY_XTAR --work DIR [--seed N] [--random N]
                 [--fixtures LAB_DIR] [--fuzz-corpus DIR]...

Layers (DIR/layers/NAME.tar), about 250 in all:
  gen-*     random trees written by Python's tarfile in ustar, GNU and PAX
            format (long names and link targets, UTF-8 names, hard links,
            symlinks, FIFOs, devices when root, xattrs, odd modes, large
            owners and times in base-256 or PAX), --random of them;
  gnu-*     trees and sparse files written by GNU tar (gnu and posix
            formats, sparse versions 0.0, 0.1 and 1.0, xattrs);
  edge-*    hand-made headers at the corners where tar readers part ways:
            old-GNU realsize on a plain file, malformed PAX records,
            damaged checksums, a lone zero block, a directory or link with
            a data size, base-256 and odd octal fields, GNU long names
            against PAX paths, V7 and star headers, unknown types, ...;
            each says whether it must be refused, must come out the same,
            or may do either;
  fixture-* every layer of the lab's fixtures (decompressed);
  fuzz-*    the tars inside the expand fuzzer's corpus and regression
            inputs (header checksums fixed as the harness fixes them).

Each layer is expanded as it is by occy_xtar and by GNU tar (root: same
owner and permissions, xattrs), and merged as a one-layer image by
occy_xtar and by umoci unpack (Go's archive/tar, as containerd) when umoci
can read it. Trees are compared path by path: type, permission bits,
owner, mtime (ns), size and SHA-256 of files, symlink targets, device
numbers, xattrs, hard-link groups. Verdicts:
  - occystrap refused: fine unless the layer must come out the same; the
    message must name the layer;
  - occystrap wrote a tree: it must equal GNU tar's (and umoci's when
    umoci succeeded); an oracle that failed where we succeeded is a
    failure too, unless the case says why that is expected.
Prints one line per layer that is not plainly equal, a summary, and exits
1 on any silent difference or broken expectation.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import time

MTIME = 1700000000
ROOT = os.geteuid() == 0
CASES = {}  # name -> {"expect", "why", "umoci", "gnutar", "want", "epoch"}: see add()


# ---------------------------------------------------------------- raw tar


def octal(n, width):
    s = ("%0" + str(width - 1) + "o") % n
    return s.encode() + b"\0"


def b256(n, width):
    """GNU base-256: top bit set, two's complement big-endian."""
    if n < 0:
        n += 1 << (8 * width)
    raw = n.to_bytes(width, "big")
    return bytes([raw[0] | 0x80]) + raw[1:]


def header(name, typeflag=b"0", size=0, mode=0o644, uid=0, gid=0, mtime=MTIME, linkname=b"",
           magic=b"ustar\x0000", devmajor=0, devminor=0, prefix=b"", fields=None,
           checksum=True):
    """One 512-byte header; fields maps offset -> raw bytes put in last."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(linkname, str):
        linkname = linkname.encode()
    b = bytearray(512)
    b[0:len(name[:100])] = name[:100]
    b[100:108] = octal(mode, 8)
    b[108:116] = octal(uid, 8)
    b[116:124] = octal(gid, 8)
    b[124:136] = octal(size, 12)
    b[136:148] = octal(mtime, 12)
    b[156:157] = typeflag
    b[157:157 + len(linkname[:100])] = linkname[:100]
    b[257:265] = magic
    if magic.startswith(b"ustar"):
        b[329:337] = octal(devmajor, 8)
        b[337:345] = octal(devminor, 8)
        b[345:345 + len(prefix)] = prefix
    for off, raw in (fields or {}).items():
        b[off:off + len(raw)] = raw
    if checksum:
        fix_checksum(b)
    return bytes(b)


def fix_checksum(b):
    b[148:156] = b" " * 8
    b[148:156] = ("%06o\0 " % sum(b)).encode()


def pad(data):
    return data + b"\0" * (-len(data) % 512)


def member(hdr, data=b""):
    return hdr + pad(data)


def pax_records(records):
    """PAX body from (key, value) pairs (bytes or str)."""
    out = b""
    for k, v in records:
        k = k.encode() if isinstance(k, str) else k
        v = v.encode() if isinstance(v, str) else v
        body = b" " + k + b"=" + v + b"\n"
        n = len(body) + 1
        while len(str(n).encode()) + len(body) != n:
            n = len(str(n).encode()) + len(body)
        out += str(n).encode() + body
    return out


def pax(body, typeflag=b"x"):
    return member(header("PaxHeaders/x", typeflag, len(body)), body)


def gnu_long(name, typeflag=b"L"):
    data = (name.encode() if isinstance(name, str) else name) + b"\0"
    return member(header("././@LongLink", typeflag, len(data), magic=b"ustar  \0"), data)


def end():
    return b"\0" * 1024


# ------------------------------------------------------------ generators


def add(name, data, expect="same", why="", umoci=True, gnutar=True, want=None, epoch=()):
    """expect: "same" (must expand, equal to the oracles), "refuse" (must
    be refused) or "either". umoci / gnutar: compare with that oracle (False
    where it departs from Go's reader or from containerd, said in why).
    want: paths our tree must hold (checked when the oracles are not).
    epoch: paths whose mtime must be 0 (containerd's bound on times)."""
    CASES[name] = {"expect": expect, "why": why, "umoci": umoci, "gnutar": gnutar,
                   "want": want, "epoch": set(epoch)}
    return name, data


def gen_random(rng, i):
    fmt = rng.choice([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
    buf = io.BytesIO()
    names_files = []
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8") as tf:
        dirs = [""]
        used = set()

        def new_name():
            for _ in range(50):
                parent = rng.choice(dirs)
                comp = rng.choice([
                    "f%d" % rng.randrange(1000), "dir %d" % rng.randrange(100),
                    "x" * rng.choice([1, 50, 99, 100, 101, 155, 200]),
                    "données-%d" % rng.randrange(100), "日本-%d" % rng.randrange(100),
                    ".hidden%d" % rng.randrange(100), "a-b_c.d%d" % rng.randrange(100)])
                name = (parent + "/" + comp) if parent else comp
                if fmt == tarfile.USTAR_FORMAT and (len(name.encode()) > 99 or not name.isascii()
                                                    or any(len(c.encode()) > 99 for c in
                                                           name.split("/"))):
                    continue
                if name not in used:
                    used.add(name)
                    return name
            return None

        if rng.random() < 0.3:
            ti = tarfile.TarInfo("./")
            ti.type = tarfile.DIRTYPE
            ti.mode = rng.choice([0o755, 0o700, 0o1777])
            ti.mtime = MTIME - 5
            tf.addfile(ti)
        for _ in range(rng.randrange(1, 40)):
            name = new_name()
            if name is None:
                continue
            kind = rng.choices(["dir", "file", "symlink", "hardlink", "fifo", "dev"],
                               [4, 8, 2, 2, 1, 1 if ROOT else 0])[0]
            if kind == "hardlink" and not names_files:
                kind = "file"
            ti = tarfile.TarInfo(name)
            ti.mtime = rng.choice([MTIME, 0, 1, MTIME + rng.randrange(10 ** 6)])
            if fmt != tarfile.USTAR_FORMAT and rng.random() < 0.1:
                ti.mtime = rng.choice([2 ** 33 + 7, 9 * 10 ** 9])  # before 2262
            if fmt == tarfile.PAX_FORMAT and rng.random() < 0.1:
                ti.mtime = MTIME + rng.randrange(1000) / 1000.0
            ti.uid = rng.choice([0, 0, 1000, 65534])
            ti.gid = rng.choice([0, 0, 1000, 65534])
            if fmt != tarfile.USTAR_FORMAT and rng.random() < 0.1:
                ti.uid = rng.choice([2 ** 21 + 5, 10 ** 8])
            ti.mode = rng.choice([0o644, 0o755, 0o600, 0o4755, 0o2755, 0o1777, 0o444, 0o000, 0o777])
            data = None
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode |= 0o700  # our expand and GNU tar both need to write into it
                dirs.append(name)
            elif kind == "file":
                size = rng.choice([0, 1, 511, 512, 513, 1024, rng.randrange(5000)])
                data = bytes(rng.randrange(256) for _ in range(size))
                ti.size = size
                names_files.append(name)
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = rng.choice(["/etc/passwd", "../" * rng.randrange(3) + "x",
                                          rng.choice(names_files or ["nowhere"]),
                                          "t" * rng.choice([10, 99, 100, 150, 300])])
                if fmt == tarfile.USTAR_FORMAT and len(ti.linkname) > 99:
                    ti.linkname = "short"
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = rng.choice(names_files)
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            else:
                ti.type = rng.choice([tarfile.CHRTYPE, tarfile.BLKTYPE])
                ti.devmajor, ti.devminor = rng.choice([(1, 3), (8, 1), (0, 0), (254, 255)])
            if fmt == tarfile.PAX_FORMAT and kind in ("file", "dir") and rng.random() < 0.3:
                ti.pax_headers = {"SCHILY.xattr.user.k%d" % rng.randrange(9): "v%d" % rng.randrange(99)}
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return add("gen-%03d" % i, buf.getvalue())


def gnu_tar_layers(scratch):
    """Trees and sparse files archived by GNU tar itself."""
    out = []
    src = os.path.join(scratch, "gnusrc")
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(os.path.join(src, "d/" + "long" * 40))
    with open(os.path.join(src, "d/plain"), "wb") as f:
        f.write(b"plain data\n" * 100)
    os.link(os.path.join(src, "d/plain"), os.path.join(src, "d/" + "long" * 40 + "/hard"))
    os.symlink("../" + "t" * 200, os.path.join(src, "d/longlink"))
    os.mkfifo(os.path.join(src, "d/fifo"))
    for name, spec in [("sparse-holes", [(0, b"a"), (1 << 20, b"b" * 5000), (5 << 20, b"c")]),
                       ("sparse-tail", [(4096, b"x" * 10)]),
                       ("sparse-empty", []),
                       ("sparse-many", [(i * 65536, b"%d" % i) for i in range(40)])]:
        path = os.path.join(src, "d", name)
        with open(path, "wb") as f:
            for off, data in spec:
                f.seek(off)
                f.write(data)
            f.truncate(8 << 20)
    try:
        os.setxattr(os.path.join(src, "d/plain"), "user.comment", b"hello")
    except OSError:
        pass
    for root, ds, fs in os.walk(src):
        for n in ds + fs:
            os.utime(os.path.join(root, n), (MTIME, MTIME), follow_symlinks=False)
    variants = [("gnu", ["--format=gnu"]), ("gnu-sparse", ["--format=gnu", "--sparse"]),
                ("posix", ["--format=posix"]),
                ("posix-sparse-1.0", ["--format=posix", "--sparse", "--sparse-version=1.0"]),
                ("posix-sparse-0.1", ["--format=posix", "--sparse", "--sparse-version=0.1"]),
                ("posix-sparse-0.0", ["--format=posix", "--sparse", "--sparse-version=0.0"]),
                ("posix-xattrs", ["--format=posix", "--xattrs"]),
                ("oldgnu", ["--format=oldgnu"]), ("ustar-short", ["--format=ustar"])]
    for tag, opts in variants:
        what = ["d"] if tag != "ustar-short" else ["d/plain", "d/fifo", "d/sparse-tail"]
        if "--format=posix" in opts:
            opts = opts + ["--pax-option=delete=atime,delete=ctime"]
        data = subprocess.run(["tar", "-c", "-f", "-", "-C", src, "--numeric-owner", "--owner=0",
                               "--group=0", "--sort=name"] + opts + what,
                              check=True, stdout=subprocess.PIPE,
                              env=dict(os.environ, LC_ALL="C.UTF-8")).stdout
        if tag == "gnu-sparse":  # type 'S': containerd (and umoci) refuse it
            out.append(add("gnu-" + tag, data, "refuse", "old-GNU sparse files"))
        else:
            out.append(add("gnu-" + tag, data))
    return out


def edge_layers():
    out = []
    E = out.append
    # 6a: old-GNU realsize on a plain file (star-style bytes in the field)
    h = bytearray(header("a", size=14, magic=b"ustar  \0"))
    h[483:495] = b"00000004200\0"
    fix_checksum(h)
    E(add("edge-gnu-realsize", member(bytes(h), b"0123456789abcd") + member(header("b", size=2), b"ok") + end(),
          "refuse", "old-GNU realsize on a non-sparse entry"))
    h = bytearray(header("a", size=14, magic=b"ustar  \0"))
    h[483:495] = b"00000000016\0"  # equal to the size: harmless
    fix_checksum(h)
    E(add("edge-gnu-realsize-equal", member(bytes(h), b"0123456789abcd") + end()))
    E(add("edge-pax-sparse-realsize-no-map",
          pax(pax_records([("GNU.sparse.realsize", "3000")])) + member(header("f", size=5), b"hello") + end(),
          "refuse", "GNU.sparse.realsize without a sparse map"))
    E(add("edge-schily-realsize",
          pax(pax_records([("SCHILY.realsize", "3000")])) + member(header("f", size=5), b"hello") + end(),
          "either", "SCHILY.realsize on a plain file"))
    # 6b: malformed PAX records
    long = "PAX1/PAX1/long-path-name"
    E(add("edge-pax-no-newline", pax(b"30 path=" + long.encode() + b"X") + member(header("foo", size=3), b"abc") + end(),
          "refuse", "PAX record without its newline"))
    E(add("edge-pax-no-equals", pax(b"12 pathfoo\n") + member(header("foo", size=3), b"abc") + end(),
          "refuse", "PAX record without '='"))
    E(add("edge-pax-nul", pax(pax_records([("path", b"PAX1\0tail")])) + member(header("foo", size=3), b"abc") + end(),
          "refuse", "NUL inside a PAX path"))
    E(add("edge-pax-bad-length", pax(b"99 path=x\n") + member(header("foo", size=3), b"abc") + end(),
          "refuse", "PAX record length beyond the header"))
    E(add("edge-pax-bad-mtime", pax(pax_records([("mtime", "12x")])) + member(header("foo", size=3), b"abc") + end(),
          "refuse", "PAX mtime that is not a number"))
    E(add("edge-pax-bad-uid", pax(pax_records([("uid", "-")])) + member(header("foo", size=3), b"abc") + end(),
          "refuse", "PAX uid that is not a number"))
    E(add("edge-pax-size", pax(pax_records([("size", "5")])) + member(header("foo", size=0), b"hello") + end()))
    E(add("edge-pax-empty-path", pax(pax_records([("path", "")])) + member(header("kept", size=1), b"k") + end(),
          "either", "an empty PAX path keeps the header's name in Go (GNU tar makes it '.')",
          gnutar=False, want=["kept"]))
    E(add("edge-pax-mtime-frac", pax(pax_records([("mtime", "1700000000.123456789")])) +
          member(header("f", size=1), b"x") + end()))
    E(add("edge-pax-neg-mtime", pax(pax_records([("mtime", "-1000.5")])) +
          member(header("f", size=1), b"x") + end(), "same", "a time before 1970: containerd "
          "writes the epoch", umoci=False, epoch=["f"]))
    E(add("edge-time-beyond-2262", member(header("f", size=1, fields={136: b256(2 ** 34, 12)}), b"x") +
          end(), "same", "a time beyond 64 bits of ns: containerd writes the epoch", umoci=False,
          epoch=["f"]))
    E(add("edge-pax-xattr", pax(pax_records([("SCHILY.xattr.user.a", "1"), ("SCHILY.xattr.user.b", "")])) +
          member(header("f", size=1), b"x") + end(), "same", "an empty xattr value: containerd sets "
          "it from PAXRecords, umoci from Xattrs (which skips it)", umoci=False))
    E(add("edge-libarchive-xattr", pax(pax_records([("LIBARCHIVE.xattr.user.a", "MQ")])) +
          member(header("f", size=1), b"x") + end(), "refuse", "an xattr only libarchive reads"))
    E(add("edge-pax-global", pax(pax_records([("comment", "hi")]), b"g") +
          member(header("f", size=1), b"x") + end(), "same", "containerd ignores a global "
          "header, umoci refuses it", umoci=False))
    E(add("edge-pax-global-path", pax(pax_records([("path", "elsewhere")]), b"g") +
          member(header("f", size=1), b"x") + end(), "either", "a path in a global header: "
          "GNU tar applies it to the next entry, Go does not", umoci=False, gnutar=False,
          want=["f"]))
    # 6d: damaged header after an entry
    h2 = bytearray(header("second", size=4))
    h2[148:156] = b"0000000\0"
    E(add("edge-bad-checksum", member(header("tmp/16gig.txt", size=4), b"abcd") + member(bytes(h2), b"efgh") + end(),
          "refuse", "a header that fails its checksum after 'tmp/16gig.txt'"))
    E(add("edge-bad-checksum-first", member(bytes(h2), b"efgh") + end(), "refuse", "a damaged first header"))
    E(add("edge-lone-zero-block", member(header("a", size=1), b"a") + b"\0" * 512 + member(header("b", size=1), b"b") + end(),
          "refuse", "one zero block, then more entries"))
    E(add("edge-no-trailer", member(header("a", size=1), b"a")))
    E(add("edge-one-zero-block-end", member(header("a", size=1), b"a") + b"\0" * 512))
    E(add("edge-trailing-garbage", member(header("a", size=1), b"a") + end() + b"garbage" * 100))
    E(add("edge-truncated-data", member(header("a", size=2000), b"a" * 100)[:612], "refuse", "data cut short"))
    # types
    E(add("edge-rega-dir", member(header("olddir/", b"\0", mode=0o755)) + member(header("olddir/f", b"\0", size=1), b"x") + end()))
    E(add("edge-reg0-slash", member(header("slashfile/", b"0", size=0)) + end(), "refuse",
          "a regular-file type with a trailing slash"))
    E(add("edge-contiguous", member(header("cont", b"7", size=3), b"abc") + end(), "refuse",
          "type 7, which containerd does not unpack"))
    E(add("edge-unknown-type", member(header("weird", b"Z", size=3), b"abc") + end(), "refuse",
          "a type containerd does not unpack"))
    E(add("edge-dumpdir", member(header("dd", b"D", size=3), b"abc") + end(), "refuse", "GNU dumpdir"))
    E(add("edge-volume", member(header("vol", b"V", magic=b"ustar  \0")) + member(header("f", size=1), b"x") + end(),
          "refuse", "GNU volume header"))
    E(add("edge-dir-with-size", member(header("d", b"5", size=512, mode=0o755), b"\0" * 512) +
          member(header("f", size=1), b"x") + end(), "refuse", "a directory with a data size"))
    E(add("edge-symlink-with-size", member(header("s", b"2", size=3, linkname="t"), b"abc") +
          member(header("f", size=1), b"x") + end(), "refuse", "a symlink with a data size"))
    E(add("edge-hardlink-with-data", member(header("f", size=1), b"x") +
          pax(pax_records([("size", "3")])) + member(header("h", b"1", size=3, linkname="f"), b"abc") + end(),
          "refuse", "a hard link with data"))
    # numbers
    E(add("edge-base256", member(header("big", size=0, fields={124: b256(3, 12), 108: b256(2 ** 22, 8),
                                                                136: b256(2 ** 33, 12)}), b"abc") + end(),
          "same", "base-256 size, owner, time"))
    E(add("edge-owner-beyond-32-bits", member(header("big", size=1, fields={108: b256(2 ** 40, 8)}), b"x") +
          end(), "refuse", "an owner beyond uid_t"))
    E(add("edge-base256-neg-time", member(header("old", size=1, fields={136: b256(-100, 12)}), b"x") + end(),
          "same", "a negative base-256 time: containerd writes the epoch", umoci=False, epoch=["old"]))
    E(add("edge-octal-spaces", member(header("sp", size=3, fields={124: b"     3     \0", 100: b" 644 \0\0\0"}), b"abc") + end()))
    E(add("edge-octal-garbage", member(header("gb", size=3, fields={100: b"0644x\0\0\0"}), b"abc") + end(),
          "refuse", "a mode field that is not octal"))
    E(add("edge-octal-8-9", member(header("g9", size=3, fields={100: b"0000688\0"}), b"abc") + end(),
          "refuse", "an 8 in an octal field"))
    first = member(header("first", size=1), b"1")
    E(add("edge-octal-garbage-second", first + member(header("gb", size=3, fields={100: b"0644x\0\0\0"}), b"abc") +
          end(), "refuse", "a mode field that is not octal"))
    E(add("edge-uid-garbage-second", first + member(header("gb", size=3, fields={108: b"1 2\0\0\0\0\0"}), b"abc") +
          end(), "refuse", "an owner field with a space inside"))
    E(add("edge-size-garbage-second", first + member(header("gb", size=3, fields={124: b"0000000003z\0"}), b"abc") +
          end(), "refuse", "a size field with a letter after the digits"))
    E(add("edge-size-no-nul", member(header("nn", size=3, fields={124: b"000000000003"}), b"abc") + end()))
    E(add("edge-negative-size", member(header("neg", size=0, fields={124: b256(-1, 12)})) + end(),
          "refuse", "a negative size"))
    # names
    E(add("edge-gnu-longname", gnu_long("L" * 200 + "/" + "M" * 200) +
          member(header("short", size=1, magic=b"ustar  \0"), b"x") + end()))
    E(add("edge-gnu-longlink", member(header("t", size=1), b"x") + gnu_long("t" + "/." * 0, b"K") +
          member(header("h", b"1", linkname="xxx", magic=b"ustar  \0")) + end()))
    E(add("edge-pax-then-gnu-name", pax(pax_records([("path", "paxname")])) + gnu_long("gnuname") +
          member(header("hdrname", size=1, magic=b"ustar  \0"), b"x") + end(), "either", "PAX path then GNU long name"))
    E(add("edge-gnu-then-pax-name", gnu_long("gnuname") + pax(pax_records([("path", "paxname")])) +
          member(header("hdrname", size=1, magic=b"ustar  \0"), b"x") + end(), "either",
          "GNU long name then PAX path: Go takes the GNU name, GNU tar the later one",
          gnutar=False, want=["gnuname"]))
    E(add("edge-ustar-prefix", member(header("name", size=1, prefix=b"pre/fix"), b"x") + end()))
    E(add("edge-gnu-prefix-ignored", member(header("name", size=1, magic=b"ustar  \0", fields={345: b"00000000001\0"}), b"x") + end()))
    star = bytearray(header("sname", size=1, prefix=b"spre"))
    star[476:488] = octal(MTIME, 12)
    star[508:512] = b"tar\0"
    fix_checksum(star)
    E(add("edge-star", member(bytes(star), b"x") + end(), "either", "a star header"))
    E(add("edge-v7", member(header("v7file", size=2, magic=b"\0" * 8), b"v7") + end()))
    E(add("edge-dot-slash", member(header("./", b"5", mode=0o750)) + member(header("./a//b", size=1), b"x") + end(), "either",
          "./ and a doubled slash"))
    E(add("edge-dup-file", member(header("dup", size=1), b"1") + member(header("dup", size=1), b"2") + end()))
    E(add("edge-file-then-dir", member(header("fd", size=1), b"1") + member(header("fd", b"5", mode=0o755)) + end(),
          "either", "a file replaced by a directory"))
    E(add("edge-hardlink-to-symlink", member(header("s", b"2", linkname="target")) +
          member(header("h", b"1", linkname="s")) + end(), "either", "a hard link to a symlink"))
    E(add("edge-hardlink-missing", member(header("h", b"1", linkname="nothing")) + end(), "refuse",
          "a hard link to nothing"))
    E(add("edge-empty", end()))
    E(add("edge-zero-length", b"", "same", "an empty file: an empty archive for Go, not a tar "
          "for GNU tar", gnutar=False, want=[]))
    E(add("edge-many-pax", b"".join(pax(pax_records([("comment", "c%d" % i)])) for i in range(80)) +
          member(header("f", size=1), b"x") + end(), "either", "80 extended headers in a row"))
    E(add("edge-pax-0.1-bad-map", pax(pax_records([("GNU.sparse.major", "0"), ("GNU.sparse.minor", "1"),
                                                    ("GNU.sparse.numblocks", "2"), ("GNU.sparse.map", "0,1"),
                                                    ("GNU.sparse.size", "10")])) +
          member(header("sp", size=1), b"x") + end(), "refuse", "a sparse map with too few numbers"))
    return out


def fixture_layers(lab_dir):
    out = []
    seen = set()
    for layout in sorted(os.listdir(os.path.join(lab_dir, "oci"))):
        blobs = os.path.join(lab_dir, "oci", layout, "blobs", "sha256")
        if not os.path.isdir(blobs):
            continue
        for hexname in sorted(os.listdir(blobs)):
            path = os.path.join(blobs, hexname)
            if os.path.getsize(path) > 8 << 20:
                continue
            try:
                doc = json.load(open(path))
            except (ValueError, UnicodeDecodeError):
                continue
            for layer in doc.get("layers", []) if isinstance(doc, dict) else []:
                digest = layer["digest"].split(":", 1)[1]
                if digest in seen:
                    continue
                seen.add(digest)
                raw = open(os.path.join(blobs, digest), "rb").read()
                mt = layer.get("mediaType", "")
                if "zstd" in mt:
                    raw = subprocess.run(["zstd", "-dc"], input=raw, stdout=subprocess.PIPE,
                                         check=True).stdout
                elif raw[:2] == b"\x1f\x8b":
                    raw = gzip.decompress(raw)
                out.append(add("fixture-%s-%s" % (layout, digest[:12]), raw))
    return out


def fuzz_layers(dirs):
    out = []
    for d in dirs:
        if not os.path.isdir(d):
            continue
        for fname in sorted(os.listdir(d)):
            if "expand" not in fname and os.path.basename(d) != "expand":
                continue
            data = open(os.path.join(d, fname), "rb").read()
            if not data:
                continue
            flags, rest = data[0], data[1:]
            for k, part in enumerate(rest.split(b"OCCYLAYER\n")[:3]):
                if not flags & 0x20:  # the harness fixes checksums of ustar blocks
                    b = bytearray(part)
                    for off in range(0, len(b) - 511, 512):
                        if b[off + 257:off + 262] == b"ustar":
                            fix_checksum(memoryview(b)[off:off + 512])
                    part = bytes(b)
                tag = "".join(c if c.isalnum() or c in "-_" else "_" for c in fname)[:60]
                out.append(add("fuzz-%s-%d" % (tag, k), part, "either", "a fuzz input", umoci=False))
    return out


# --------------------------------------------------------------- listing


def listing(root):
    """path -> attributes; plus the hard-link groups."""
    rows = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        names = [""] if dirpath == root else []
        for n in names + dirnames + filenames:
            full = os.path.join(dirpath, n) if n else dirpath
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            m = st.st_mode
            row = {"type": stat.S_IFMT(m), "uid": st.st_uid, "gid": st.st_gid}
            if not stat.S_ISLNK(m):
                row["mode"] = "%04o" % stat.S_IMODE(m)
                row["mtime"] = st.st_mtime_ns
                try:
                    row["xattrs"] = sorted((x, os.getxattr(full, x, follow_symlinks=False))
                                           for x in os.listxattr(full, follow_symlinks=False))
                except OSError:
                    row["xattrs"] = "?"
            if stat.S_ISREG(m):
                row["size"] = st.st_size
                with open(full, "rb") as f:
                    row["sha256"] = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(m):
                row["target"] = os.readlink(full)
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                row["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            rows[rel] = row
    groups = sorted(sorted(v) for v in inodes.values() if len(v) > 1)
    return rows, groups


STARTED_NS = time.time_ns()


def compare(a, b, skip_root_meta=False):
    """First difference between two listings, or None. A directory no entry
    names (the root, an implicit parent) gets the time of its creation from
    every reader: two such times made during this run count as equal."""
    ra, ga = a
    rb, gb = b
    for path in sorted(set(ra) | set(rb)):
        if path not in ra:
            return "%r only in ours" % path
        if path not in rb:
            return "%r only in the oracle's tree" % path
        x, y = dict(ra[path]), dict(rb[path])
        if path == "." and skip_root_meta:
            continue
        if stat.S_ISDIR(x["type"]) and min(x.get("mtime", 0), y.get("mtime", 0)) > STARTED_NS - 60e9:
            x.pop("mtime", None)
            y.pop("mtime", None)
        if x != y:
            diff = {k: (x.get(k), y.get(k)) for k in set(x) | set(y) if x.get(k) != y.get(k)}
            return "%r differs: %s" % (path, {k: v for k, v in list(diff.items())[:3]})
    if ga != gb:
        return "hard-link groups differ: %s vs %s" % (ga[:3], gb[:3])
    return None


# ---------------------------------------------------------------- oracles


def gnu_tar(tar, out):
    os.makedirs(out)
    opts = ["--numeric-owner", "--xattrs", "--xattrs-include=*", "--delay-directory-restore"]
    if ROOT:
        opts += ["--same-owner", "--same-permissions"]
    p = subprocess.run(["tar", "-x", "-f", tar, "-C", out] + opts, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL="C.UTF-8"))
    return p.returncode == 0, p.stderr.decode("utf-8", "replace").strip()


def umoci_layout(work, names):
    """One OCI image per layer, uncompressed layers, in one layout."""
    lay = os.path.join(work, "oci")
    shutil.rmtree(lay, ignore_errors=True)
    os.makedirs(os.path.join(lay, "blobs", "sha256"))
    open(os.path.join(lay, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')

    def blob(data):
        h = hashlib.sha256(data).hexdigest()
        p = os.path.join(lay, "blobs", "sha256", h)
        if not os.path.exists(p):
            open(p, "wb").write(data)
        return "sha256:" + h, len(data)

    manifests = []
    for name in names:
        data = open(os.path.join(work, "layers", name + ".tar"), "rb").read()
        ld, ls = blob(data)
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
        cd, cs = blob(cfg)
        man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                     "digest": cd, "size": cs},
                          "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                      "digest": ld, "size": ls}]}).encode()
        md, ms = blob(man)
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                          "size": ms, "annotations": {"org.opencontainers.image.ref.name": name}})
    json.dump({"schemaVersion": 2, "manifests": manifests}, open(os.path.join(lay, "index.json"), "w"))
    return lay


def umoci_unpack(layout, name, out):
    p = subprocess.run(["umoci", "unpack", "--image", "%s:%s" % (layout, name), out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode == 0, p.stderr.decode("utf-8", "replace").strip()[-300:]


def run_xtar(xtar, mode, outroot, tars):
    os.makedirs(outroot, exist_ok=True)
    res = {}
    for i in range(0, len(tars), 100):
        p = subprocess.run([xtar, mode, outroot] + tars[i:i + 100], stdout=subprocess.PIPE,
                           check=True)
        for line in p.stdout.decode("utf-8", "replace").splitlines():
            word, rest = line.split(" ", 1)
            name, _, msg = rest.partition("\t")
            res[name] = (word == "ok", msg)
    return res


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xtar", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--random", type=int, default=160)
    ap.add_argument("--fixtures")
    ap.add_argument("--fuzz-corpus", action="append", default=[])
    ap.add_argument("--no-umoci", action="store_true")
    a = ap.parse_args()
    work = os.path.abspath(a.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "layers"))
    rng = random.Random(a.seed)
    layers = [gen_random(rng, i) for i in range(a.random)]
    layers += gnu_tar_layers(work)
    layers += edge_layers()
    if a.fixtures:
        layers += fixture_layers(a.fixtures)
    layers += fuzz_layers(a.fuzz_corpus)
    for name, data in layers:
        open(os.path.join(work, "layers", name + ".tar"), "wb").write(data)
    names = [n for n, _ in layers]
    tars = [os.path.join(work, "layers", n + ".tar") for n in names]
    t0 = time.time()
    ours = run_xtar(a.xtar, "as-is", os.path.join(work, "ours"), tars)
    ours_merged = run_xtar(a.xtar, "merge", os.path.join(work, "ours-merged"), tars)
    use_umoci = not a.no_umoci and ROOT and shutil.which("umoci")
    layout = umoci_layout(work, [n for n in names if CASES[n]["umoci"]]) if use_umoci else None
    problems = []
    counts = {"same": 0, "refused": 0, "umoci-same": 0, "asserted": 0}
    for name in names:
        case = CASES[name]
        ok, msg = ours[name]
        mok, mmsg = ours_merged[name]
        if ok != mok:
            problems.append("%s: as-is %s but merged %s (%s)" % (name, "ok" if ok else "refused",
                                                                 "ok" if mok else "refused", msg or mmsg))
            continue
        if not ok:
            counts["refused"] += 1
            if case["expect"] == "same":
                problems.append("%s: refused a layer that must expand (%s)" % (name, msg))
            elif ("layer %s" % name) not in msg:
                problems.append("%s: the error does not name the layer: %s" % (name, msg))
            else:
                print("refused %s (%s): %s" % (name, case["why"] or "as it may", msg))
            continue
        if case["expect"] == "refuse":
            problems.append("%s: expanded a layer that must be refused (%s)" % (name, case["why"]))
            continue
        mine = listing(os.path.join(work, "ours", name))
        mine_merged = listing(os.path.join(work, "ours-merged", name))
        bad = [p for p in case["epoch"] if mine[0].get(p, {}).get("mtime") != 0]
        if bad:
            problems.append("%s: %s should have the epoch as mtime (containerd's bound)" % (name, bad))
            continue
        for rows, _ in (mine, mine_merged):
            for p in case["epoch"]:
                rows.get(p, {}).pop("mtime", None)
        if case["want"] is not None and sorted(p for p in mine[0] if p != ".") != sorted(case["want"]):
            problems.append("%s: holds %s, Go's reader gives %s" % (name, sorted(mine[0]), case["want"]))
            continue
        if case["gnutar"]:
            oracle = os.path.join(work, "gnutar", name)
            gok, gmsg = gnu_tar(os.path.join(work, "layers", name + ".tar"), oracle)
            if not gok:
                problems.append("%s: we expanded it, GNU tar failed: %s" % (name, gmsg[:300]))
                continue
            theirs = listing(oracle)
            for p in case["epoch"]:
                theirs[0].get(p, {}).pop("mtime", None)
            d = compare(theirs, mine)
            if d:
                problems.append("%s: SILENT DIFFERENCE from GNU tar: %s" % (name, d))
                continue
            counts["same"] += 1
        if layout and case["umoci"]:
            bundle = os.path.join(work, "umoci", name)
            uok, umsg = umoci_unpack(layout, name, bundle)
            if not uok:
                problems.append("%s: we expanded it, umoci (Go's archive/tar) failed: %s" % (name, umsg))
                continue
            d = compare(listing(os.path.join(bundle, "rootfs")), mine_merged, skip_root_meta=True)
            if d:
                problems.append("%s: SILENT DIFFERENCE from umoci: %s" % (name, d))
                continue
            counts["umoci-same"] += 1
        if not case["gnutar"] and not (layout and case["umoci"]):
            counts["asserted"] += 1
    for p in problems:
        print("FAIL " + p)
    print("%d layers (%d generated, %d fixture, %d fuzz): %d equal to GNU tar's tree, %d to umoci's, "
          "%d checked against Go's reading only, %d refused by occystrap, %d problems; %.1f s" % (
              len(names), sum(n.startswith(("gen-", "gnu-", "edge-")) for n in names),
              sum(n.startswith("fixture-") for n in names), sum(n.startswith("fuzz-") for n in names),
              counts["same"], counts["umoci-same"], counts["asserted"], counts["refused"],
              len(problems), time.time() - t0))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
