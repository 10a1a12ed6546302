#!/usr/bin/python3
"""store_images.py - build small Docker schema 2 images with random layers and
push them to a lab registry over the plain v2 API, for the store tests.

usage: store_images.py REGISTRY OUT_JSON [--layer NAME=BYTES ...] [--broken-layer NAME=BYTES ...]
                        IMAGE=NAME,NAME,... ...

Each --layer is a gzip-compressed tar holding one file of BYTES random bytes
(incompressible, fresh on every run, so every blob digest belongs to this run
alone and a test can count its GETs in the registry's access log). A
--broken-layer is the same with its gzip stream cut short by 64 bytes: the
manifest gives the digest and size of the bytes pushed, so the blob verifies
and then fails to inflate (the publisher's fault, not the transport's). IMAGE is
REPO:TAG; images list layers by NAME, so several images can share a layer.
OUT_JSON is written in the layout of the lab's fixtures.json (so that
check_tarball.py can check tarballs of these images):
  {"fixtures": {REPO: {repo, tag, format: "v2s2", digest, media_type, size,
                       config_digest, config: {digest, size, media_type},
                       layers: [{name, digest, size, media_type, diff_id}]}}}
Uses only the standard library; pushes to plain HTTP (the lab's plain
instance), never to fixtures/ or private/.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer(name, size, broken=False):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        payload = os.urandom(size)
        info = tarfile.TarInfo(name + ".bin")
        info.size = size
        info.mtime = 1700000000
        info.mode = 0o644
        tf.addfile(info, io.BytesIO(payload))
    tar = raw.getvalue()
    blob = gzip.compress(tar, compresslevel=1, mtime=0)
    if broken:
        blob = blob[:-64]
    return {"name": name, "tar": tar, "blob": blob, "digest": sha256(blob),
            "diff_id": sha256(tar), "size": len(blob), "media_type": MT_LAYER}


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def push_blob(reg, repo, blob):
    digest = sha256(blob)
    status, _, _ = request("HEAD", "http://%s/v2/%s/blobs/%s" % (reg, repo, digest))
    if status == 200:
        return digest
    status, headers, body = request("POST", "http://%s/v2/%s/blobs/uploads/" % (reg, repo),
                                    data=b"")
    if status != 202:
        sys.exit("store_images: upload start for %s: HTTP %d %s" % (repo, status, body[:200]))
    loc = headers["Location"]
    if loc.startswith("/"):
        loc = "http://%s%s" % (reg, loc)
    loc += ("&" if "?" in loc else "?") + "digest=" + digest
    status, _, body = request("PUT", loc, data=blob,
                              headers={"Content-Type": "application/octet-stream"})
    if status != 201:
        sys.exit("store_images: upload of %s to %s: HTTP %d %s" % (digest, repo, status, body[:200]))
    return digest


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    reg, out = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    layers, images = {}, []
    i = 0
    while i < len(args):
        if args[i] in ("--layer", "--broken-layer"):
            name, _, size = args[i + 1].partition("=")
            layers[name] = make_layer(name, int(size), args[i] == "--broken-layer")
            i += 2
        else:
            ref, _, names = args[i].partition("=")
            repo, _, tag = ref.rpartition(":")
            if repo.startswith(("fixtures/", "private/")):
                sys.exit("store_images: refusing to push to %s" % repo)
            images.append((repo, tag, names.split(",")))
            i += 1
    result = {"generator": "store_images.py", "fixtures": {}}
    for repo, tag, names in images:
        ls = [layers[n] for n in names]
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["IMAGE=" + repo]},
            "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in ls]},
            "history": [{"created_by": "store_images.py " + l["name"]} for l in ls],
        }, sort_keys=True).encode()
        for l in ls:
            push_blob(reg, repo, l["blob"])
        push_blob(reg, repo, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "size": len(config), "digest": sha256(config)},
            "layers": [{"mediaType": l["media_type"], "size": l["size"], "digest": l["digest"]}
                       for l in ls],
        }, indent=3).encode()
        status, _, body = request("PUT", "http://%s/v2/%s/manifests/%s" % (reg, repo, tag),
                                  data=manifest, headers={"Content-Type": MT_MANIFEST})
        if status != 201:
            sys.exit("store_images: manifest %s:%s: HTTP %d %s" % (repo, tag, status, body[:200]))
        result["fixtures"][repo] = {
            "name": repo, "repo": repo, "tag": tag, "format": "v2s2",
            "digest": sha256(manifest), "media_type": MT_MANIFEST, "size": len(manifest),
            "config_digest": sha256(config),
            "config": {"digest": sha256(config), "size": len(config), "media_type": MT_CONFIG},
            "layers": [{"name": l["name"], "digest": l["digest"], "size": l["size"],
                        "media_type": l["media_type"], "diff_id": l["diff_id"]} for l in ls],
        }
    with open(out, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)


main()
