#!/usr/bin/python3
# expand_hostile.py - hostile layers for the expand tests, as OCI image
# layouts ready for `skopeo copy oci:DIR:v1 docker://...`.
#
#   expand_hostile.py OUTDIR OUTSIDE       one layout per case in OUTDIR/<case>,
#                                          and OUTDIR/cases.json
#   expand_hostile.py --bomb OUTDIR SIZE[,SIZE...] [NAME]
#                                          OUTDIR/NAME (default bomb): one layer per
#                                          SIZE, each holding SIZE bytes of zeros in
#                                          one file (zeros, zeros-2, zeros-3, ...)
#
# OUTSIDE is a directory the test watches: every escaping entry aims into it
# (or at the file system root), so "nothing appeared outside" can be checked.
# Layers are PAX tars (tarfile, stdlib) gzipped with mtime 0. cases.json maps
# each case to the entry name the error must mention, and to whether the
# case must be refused ("refuse") or merely contained ("contain").
#
# The bomb is streamed, never held in memory: the tar header, then the
# zeros as many copies of one gzip member of 64 MiB of zeros (a valid
# multi-member gzip stream, ~2 MB for 2 GiB), then the padding and end
# blocks; diff_id and digest are computed on the way.
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MTIME = 1700000000


def entry(path, kind="file", data=b"", target=""):
    return {"path": path, "kind": kind, "data": data, "target": target}


def make_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e["path"])
            ti.mtime = MTIME
            ti.mode = 0o755 if e["kind"] in ("dir", "symlink") else 0o644
            data = None
            if e["kind"] == "dir":
                ti.type = tarfile.DIRTYPE
            elif e["kind"] == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["target"]
            elif e["kind"] == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["target"]
            else:
                data = e["data"]
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def put(self, data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, "blobs", "sha256", d), "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    def finish(self, layers):
        """layers: [(digest, size, diff_id)]"""
        cfg = {"architecture": "amd64", "os": "linux", "config": {},
               "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]}}
        cd, cs = self.put(json.dumps(cfg, sort_keys=True).encode())
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": cd, "size": cs},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                           "digest": d, "size": s} for d, s, _ in layers]}
        md, ms = self.put(json.dumps(man, sort_keys=True).encode())
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [
                {"mediaType": man["mediaType"], "digest": md, "size": ms,
                 "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)


def image(path, layer_entries):
    lo = Layout(path)
    layers = []
    for ents in layer_entries:
        tar = make_tar(ents)
        d, s = lo.put(gzip.compress(tar, mtime=0))
        layers.append((d, s, "sha256:" + hashlib.sha256(tar).hexdigest()))
    lo.finish(layers)


def cases(outside):
    o = outside.rstrip("/")
    rel_o = o.lstrip("/")
    up = "../" * 24
    return {
        # name: (layers, entry the error must name, refuse|contain)
        "abs": ([[entry(o + "/escaped-abs", data=b"x")]], o + "/escaped-abs", "refuse"),
        "dotdot": ([[entry(up + rel_o + "/escaped-dotdot", data=b"x")]],
                   up + rel_o + "/escaped-dotdot", "refuse"),
        "symlink-root": ([[entry("evil", "symlink", target="/"),
                           entry("evil/" + rel_o + "/escaped-symlink", data=b"x")]],
                         "evil/" + rel_o + "/escaped-symlink", "refuse"),
        "symlink-up": ([[entry("up", "symlink", target=up.rstrip("/")),
                         entry("up/" + rel_o + "/escaped-symlink-up", data=b"x")]],
                       "up/" + rel_o + "/escaped-symlink-up", "refuse"),
        "symlink-lower": ([[entry("evil", "symlink", target=o)],
                           [entry("evil/escaped-lower", data=b"x")]],
                          "evil/escaped-lower", "refuse"),
        "hardlink-abs": ([[entry("hl", "hardlink", target=o + "/victim")]], "hl", "refuse"),
        "hardlink-dotdot": ([[entry("hl", "hardlink", target=up + rel_o + "/victim")]], "hl",
                            "refuse"),
        "hardlink-symlink": ([[entry("s", "symlink", target=o),
                               entry("hl", "hardlink", target="s/victim")]], "hl", "refuse"),
        "whiteout-dots": ([[entry("keep", data=b"k")], [entry(".wh...")]], ".wh...", "refuse"),
        "whiteout-up": ([[entry("keep", data=b"k")], [entry("../.wh.victim")]], "../.wh.victim",
                        "refuse"),
        # a symlink with an empty target (no file system takes one; libarchive
        # would write a regular file, which a later "a/x" then turned into a
        # directory under one strategy only)
        "symlink-empty": ([[entry("a", "symlink", target=""), entry("a/f1", data=b"x")]], "a",
                          "refuse"),
        "whiteout-symlink": ([[entry("link", "symlink", target=o)],
                              [entry("link/.wh.victim"), entry("link/.wh..wh..opq")]],
                             "", "contain"),
    }


def bomb(outdir, sizes, name="bomb"):
    path = os.path.join(outdir, name)
    lo = Layout(path)
    lo.finish([bomb_layer(lo, size, "zeros" if k == 0 else f"zeros-{k + 1}")
               for k, size in enumerate(sizes)])


def bomb_layer(lo, size, file_name):
    path = lo.path
    ti = tarfile.TarInfo(file_name)
    ti.size = size
    ti.mtime = MTIME
    ti.mode = 0o644
    header = ti.tobuf(format=tarfile.PAX_FORMAT)
    chunk = 64 << 20
    zeros = bytes(chunk)
    member = gzip.compress(zeros, compresslevel=9, mtime=0)
    pad = (512 - size % 512) % 512
    trailer = bytes(pad + 1024)
    diff = hashlib.sha256()
    blob = hashlib.sha256()
    tmp = os.path.join(path, "blobs", "sha256", "tmp")
    n = 0
    with open(tmp, "wb") as f:
        def out(data):
            nonlocal n
            f.write(data)
            blob.update(data)
            n += len(data)
        diff.update(header)
        out(gzip.compress(header, mtime=0))
        left = size
        while left >= chunk:
            diff.update(zeros)
            out(member)
            left -= chunk
        if left:
            diff.update(bytes(left))
            out(gzip.compress(bytes(left), compresslevel=9, mtime=0))
        diff.update(trailer)
        out(gzip.compress(trailer, mtime=0))
    d = blob.hexdigest()
    os.replace(tmp, os.path.join(path, "blobs", "sha256", d))
    return ("sha256:" + d, n, "sha256:" + diff.hexdigest())


def main(argv):
    if argv[:1] == ["--bomb"] and len(argv) in (3, 4):
        bomb(argv[1], [int(x) for x in argv[2].split(",")], *argv[3:])
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    outdir, outside = argv
    meta = {}
    for name, (layers, needle, how) in cases(outside).items():
        image(os.path.join(outdir, name), layers)
        meta[name] = {"entry": needle, "expect": how}
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
