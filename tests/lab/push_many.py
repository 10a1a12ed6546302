#!/usr/bin/python3
"""push_many.py - push many small images (one tag each) to a lab registry over
the plain v2 API, fast: for the scale bench (bench/scale.sh) and the mirror
scale tests.

usage: push_many.py REGISTRY --prefix REPO_PREFIX [--repos R] [--tags N]
                    [--tag-names T1,T2,...] [--tag-format FMT] [--layers K]
                    [--layer-bytes B] [--threads T] [--list OUT] [--json OUT]
                    [--seed S] [--oci]

Every image has K shared layers (the same K blobs in every repository: the
bench's "shared layers") and a config of its own (its repository and tag are
in it, so every manifest digest differs). Tags are spread round-robin over R
repositories named REPO_PREFIX/r000 .. (R > 1) or REPO_PREFIX itself (R = 1).
Tags are --tag-names as given, else --tag-format % i for i in 0..N-1
(default "t%05d"). With --list, the references pushed are written to OUT, one
a line, in push order (REGISTRY/REPO:TAG); with --json, {"layers": [the
shared layers' digests], "references": [...]}. Blobs already in a repository are
not uploaded again, and an existing tag is overwritten. The layers are random
bytes drawn from --seed (default: fresh each run), gzip-compressed. Images
are Docker schema 2, or with --oci OCI image manifests (OCI media types for
the manifest, its config and layers).

Requests go over keep-alive HTTP/1.1 connections, one per thread, so 10,000
tags push in well under a minute on the loopback lab. Only the standard
library; plain HTTP only; refuses fixtures/ and private/.
"""
import argparse
import gzip
import hashlib
import http.client
import io
import json
import random
import sys
import tarfile
import threading

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer(i, size, rnd):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        payload = rnd.randbytes(size)
        info = tarfile.TarInfo("shared%d.bin" % i)
        info.size = size
        info.mtime = 1700000000
        info.mode = 0o644
        tf.addfile(info, io.BytesIO(payload))
    tar = raw.getvalue()
    blob = gzip.compress(tar, compresslevel=1, mtime=0)
    return {"blob": blob, "digest": sha256(blob), "diff_id": sha256(tar), "size": len(blob)}


class Conn:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, reg):
        self.reg = reg
        self.c = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(3):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection(self.reg, timeout=60)
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                return r.status, r, data
            except (http.client.HTTPException, OSError):
                if self.c:
                    self.c.close()
                self.c = None
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")


def push_blob(conn, repo, blob, digest):
    status, _, _ = conn.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
    if status == 200:
        return
    status, r, body = conn.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"",
                                   headers={"Content-Length": "0"})
    if status != 202:
        sys.exit("push_many: upload start for %s: HTTP %d %s" % (repo, status, body[:200]))
    loc = r.getheader("Location")
    if loc.startswith("http"):
        loc = "/" + loc.split("/", 3)[3]
    loc += ("&" if "?" in loc else "?") + "digest=" + digest
    status, _, body = conn.request("PUT", loc, body=blob,
                                   headers={"Content-Type": "application/octet-stream",
                                            "Content-Length": str(len(blob))})
    if status != 201:
        sys.exit("push_many: upload of %s to %s: HTTP %d %s" % (digest, repo, status, body[:200]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("registry")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--repos", type=int, default=1)
    ap.add_argument("--tags", type=int, default=0)
    ap.add_argument("--tag-names", default="")
    ap.add_argument("--tag-format", default="t%05d")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--layer-bytes", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--list")
    ap.add_argument("--json")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--oci", action="store_true")
    a = ap.parse_args()
    mt_manifest, mt_config, mt_layer = ((OCI_MANIFEST, OCI_CONFIG, OCI_LAYER) if a.oci
                                        else (MT_MANIFEST, MT_CONFIG, MT_LAYER))
    if a.prefix.startswith(("fixtures/", "private/")):
        sys.exit("push_many: refusing to push under %s" % a.prefix)
    tags = [t for t in a.tag_names.split(",") if t] if a.tag_names else \
        [a.tag_format % i for i in range(a.tags)]
    if not tags:
        sys.exit("push_many: no tags (--tags N or --tag-names)")
    repos = [a.prefix] if a.repos <= 1 else ["%s/r%03d" % (a.prefix, r) for r in range(a.repos)]
    rnd = random.Random(a.seed)
    layers = [make_layer(i, a.layer_bytes, rnd) for i in range(a.layers)]
    work = [(repos[i % len(repos)], t) for i, t in enumerate(tags)]

    # the shared layers once into every repository
    conn = Conn(a.registry)
    for repo in repos:
        for l in layers:
            push_blob(conn, repo, l["blob"], l["digest"])

    lock = threading.Lock()
    pos = [0]
    failed = []

    def worker():
        c = Conn(a.registry)
        while True:
            with lock:
                if pos[0] >= len(work) or failed:
                    return
                repo, tag = work[pos[0]]
                pos[0] += 1
            try:
                config = json.dumps({
                    "architecture": "amd64", "os": "linux",
                    "config": {"Env": ["IMAGE=%s:%s" % (repo, tag)]},
                    "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
                }, sort_keys=True).encode()
                cd = sha256(config)
                push_blob(c, repo, config, cd)
                manifest = json.dumps({
                    "schemaVersion": 2, "mediaType": mt_manifest,
                    "config": {"mediaType": mt_config, "size": len(config), "digest": cd},
                    "layers": [{"mediaType": mt_layer, "size": l["size"], "digest": l["digest"]}
                               for l in layers],
                }, indent=3).encode()
                status, _, body = c.request("PUT", "/v2/%s/manifests/%s" % (repo, tag),
                                            body=manifest,
                                            headers={"Content-Type": mt_manifest,
                                                     "Content-Length": str(len(manifest))})
                if status != 201:
                    raise RuntimeError("manifest %s:%s: HTTP %d %s" % (repo, tag, status, body[:200]))
            except Exception as e:  # report once, stop the others
                with lock:
                    failed.append(str(e))
                return

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.threads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        sys.exit("push_many: " + failed[0])
    refs = ["%s/%s:%s" % (a.registry, repo, tag) for repo, tag in work]
    if a.list:
        with open(a.list, "w") as f:
            f.write("".join(r + "\n" for r in refs))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"layers": [l["digest"] for l in layers], "references": refs}, f, indent=1)


main()
