#!/usr/bin/python3
"""retag.py - point a tag of a plain-HTTP registry at an existing image, or at
that image with one more small layer on top (the "one tag moved" of the
bundle bench, bench/bundle.sh).

usage: retag.py REGISTRY FROM_REPO:TAG TO_REPO:TAG [--add-layer BYTES]

Every blob of FROM is mounted into TO's repository (no bytes move); with
--add-layer a gzip-compressed tar of one file of BYTES fresh random bytes is
pushed, the config gets its diff_id and a history entry, and the manifest
(Docker schema 2) lists it last. Prints the new manifest's digest. Standard
library only.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.error
import urllib.request

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def req(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r, timeout=120) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def push_blob(reg, repo, data):
    digest = sha(data)
    status, _, _ = req("HEAD", "http://%s/v2/%s/blobs/%s" % (reg, repo, digest))
    if status == 200:
        return digest
    status, headers, body = req("POST", "http://%s/v2/%s/blobs/uploads/" % (reg, repo), b"")
    if status != 202:
        sys.exit("retag: upload to %s: HTTP %d %s" % (repo, status, body[:200]))
    loc = headers["Location"]
    if loc.startswith("/"):
        loc = "http://%s%s" % (reg, loc)
    loc += ("&" if "?" in loc else "?") + "digest=" + digest
    status, _, body = req("PUT", loc, data, {"Content-Type": "application/octet-stream"})
    if status != 201:
        sys.exit("retag: upload of %s: HTTP %d %s" % (digest, status, body[:200]))
    return digest


def mount(reg, repo, src, digest):
    status, _, body = req("POST", "http://%s/v2/%s/blobs/uploads/?mount=%s&from=%s"
                          % (reg, repo, digest, src), b"")
    if status != 201:
        sys.exit("retag: mount of %s from %s: HTTP %d %s" % (digest, src, status, body[:200]))


def main():
    args = sys.argv[1:]
    add = 0
    if "--add-layer" in args:
        i = args.index("--add-layer")
        add = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    reg, frm, to = args
    frepo, _, ftag = frm.rpartition(":")
    trepo, _, ttag = to.rpartition(":")
    status, _, body = req("GET", "http://%s/v2/%s/manifests/%s" % (reg, frepo, ftag),
                          headers={"Accept": MT_MANIFEST})
    if status != 200:
        sys.exit("retag: GET %s: HTTP %d" % (frm, status))
    manifest = json.loads(body)
    for d in [manifest["config"]] + manifest["layers"]:
        mount(reg, trepo, frepo, d["digest"])
    if add:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
            ti = tarfile.TarInfo("moved-%s.bin" % os.urandom(4).hex())
            ti.size, ti.mtime, ti.mode = add, 1700000000, 0o644
            tf.addfile(ti, io.BytesIO(os.urandom(add)))
        tar = raw.getvalue()
        blob = gzip.compress(tar, compresslevel=6, mtime=0)
        push_blob(reg, trepo, blob)
        _, _, cfg_body = req("GET", "http://%s/v2/%s/blobs/%s" % (reg, frepo,
                                                                 manifest["config"]["digest"]))
        cfg = json.loads(cfg_body)
        cfg["rootfs"]["diff_ids"].append(sha(tar))
        cfg.setdefault("history", []).append({"created_by": "retag.py --add-layer %d" % add})
        cfg_bytes = json.dumps(cfg, sort_keys=True).encode()
        manifest["config"]["digest"] = push_blob(reg, trepo, cfg_bytes)
        manifest["config"]["size"] = len(cfg_bytes)
        manifest["layers"].append({"mediaType": MT_LAYER, "size": len(blob), "digest": sha(blob)})
        body = json.dumps(manifest, indent=3).encode()
    status, _, out = req("PUT", "http://%s/v2/%s/manifests/%s" % (reg, trepo, ttag), body,
                         {"Content-Type": MT_MANIFEST})
    if status != 201:
        sys.exit("retag: PUT %s: HTTP %d %s" % (to, status, out[:200]))
    print(sha(body))


main()
