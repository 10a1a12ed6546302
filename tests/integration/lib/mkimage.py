#!/usr/bin/python3
"""mkimage.py - build a small OCI image from seeded layers and push it.

usage: mkimage.py REGISTRY REPO:TAG LAYER_SPEC... [--format v2s2|oci] [--work DIR]

Each LAYER_SPEC is SEED:BYTES: a gzip layer holding one file, /data-SEED,
of BYTES pseudo-random bytes derived from SEED (the same spec always gives
the same blob, so images built from shared specs share layers). The image is
written as an OCI layout and pushed with skopeo to the plain-HTTP REGISTRY.
Prints the pushed manifest digest and, per layer, "layer <digest> <size>".
"""
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile


def blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", d)
    with open(path, "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def layer_bytes(seed, size):
    rnd = random.Random(seed)
    buf = rnd.randbytes(size)  # incompressible: the blob is as large as asked
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("data-%s" % seed)
        info.size = len(buf)
        info.mtime = 0
        info.mode = 0o644
        tf.addfile(info, io.BytesIO(bytes(buf)))
    tar = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(tar)
    return tar, gz.getvalue()


def main():
    args = [a for a in sys.argv[1:]]
    fmt = "v2s2"
    work = None
    if "--format" in args:
        i = args.index("--format")
        fmt = args[i + 1]
        del args[i:i + 2]
    if "--work" in args:
        i = args.index("--work")
        work = args[i + 1]
        del args[i:i + 2]
    registry, ref, specs = args[0], args[1], args[2:]
    layout = tempfile.mkdtemp(prefix="mkimage-", dir=work)
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    layers, diff_ids = [], []
    for spec in specs:
        seed, size = spec.split(":")
        tar, gz = layer_bytes(seed, int(size))
        d, n = blob(layout, gz)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "config": {}}, sort_keys=True).encode()
    cd, cn = blob(layout, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                           "layers": layers}, sort_keys=True).encode()
    md, mn = blob(layout, manifest)
    tag = ref.rsplit(":", 1)[1]
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
             "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
    cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
    if fmt == "v2s2":
        cmd += ["--format", "v2s2"]
    cmd += ["oci:%s:%s" % (layout, tag), "docker://%s/%s" % (registry, ref)]
    subprocess.run(cmd, check=True)
    out = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://%s/%s" % (registry, ref)],
                         check=True, capture_output=True).stdout
    print("sha256:" + hashlib.sha256(out).hexdigest())
    for l in layers:
        print("layer %s %d" % (l["digest"], l["size"]))
    subprocess.run(["rm", "-rf", layout])


main()
