#!/usr/bin/python3
"""oci_layout.py - copy images from a registry into an OCI image layout with
the registry's exact bytes, as the store keeps them in STORE/oci/
(OCI_LAYOUT contract, DESIGN.md): manifests, indexes, configs and layer
blobs byte for byte (skopeo 1.9 rewrites a Docker schema 2 manifest when it
writes oci:, which changes its digest), and index.json with one entry per
NAME:TAG carrying org.opencontainers.image.ref.name, io.containerd.image.name
and org.occystrap.source.

usage: oci_layout.py [--platform OS/ARCH[/VARIANT]]... [--name NAME] [--tag TAG]
                     REGISTRY LAYOUT_DIR REPO:TAG...

REGISTRY is host:port, plain HTTP. NAME is the store's image name (default
REGISTRY/REPO, docker's familiar name for a registry other than Docker
Hub); --tag stores the image under another tag. For an index, every child
manifest is copied unless --platform names the ones to keep (the index
itself is always kept, as the store keeps it). Entries already in
index.json stay (the file is merged, sorted by ref.name). Prints one line
per image: NAME:TAG DIGEST MEDIA_TYPE.
"""
import argparse
import hashlib
import json
import os
import sys
import urllib.request

ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
INDEXES = ("application/vnd.docker.distribution.manifest.list.v2+json",
           "application/vnd.oci.image.index.v1+json")


def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req) as r:
        return r.read(), r.headers.get("Content-Type", "").split(";")[0].strip()


def put_blob(layout, data, want=None):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    if want and d != want:
        raise SystemExit("oci_layout: %s hashes to %s" % (want, d))
    path = os.path.join(layout, "blobs", "sha256", d.split(":", 1)[1])
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
    return d


def copy_blob(base, repo, layout, desc):
    path = os.path.join(layout, "blobs", "sha256", desc["digest"].split(":", 1)[1])
    if os.path.exists(path):
        return
    data, _ = get("%s/v2/%s/blobs/%s" % (base, repo, desc["digest"]))
    if len(data) != desc["size"]:
        raise SystemExit("oci_layout: blob %s has %d bytes, not %d" % (desc["digest"], len(data), desc["size"]))
    put_blob(layout, data, desc["digest"])


def copy_image(base, repo, layout, digest):
    data, mt = get("%s/v2/%s/manifests/%s" % (base, repo, digest), ACCEPT)
    put_blob(layout, data, digest)
    m = json.loads(data)
    copy_blob(base, repo, layout, m["config"])
    for layer in m["layers"]:
        copy_blob(base, repo, layout, layer)


def platform_of(p):
    s = "%s/%s" % (p.get("os"), p.get("architecture"))
    return s + "/" + p["variant"] if p.get("variant") else s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--platform", action="append", default=[])
    ap.add_argument("--name")
    ap.add_argument("--tag")
    ap.add_argument("registry")
    ap.add_argument("layout")
    ap.add_argument("refs", nargs="+")
    a = ap.parse_args()
    base = "http://" + a.registry
    os.makedirs(os.path.join(a.layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(a.layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    index_path = os.path.join(a.layout, "index.json")
    entries = {}
    if os.path.exists(index_path):
        for d in json.load(open(index_path))["manifests"]:
            entries[d["annotations"]["org.opencontainers.image.ref.name"]] = d
    for ref in a.refs:
        repo, tag = ref.rsplit(":", 1)
        data, mt = get("%s/v2/%s/manifests/%s" % (base, repo, tag), ACCEPT)
        digest = put_blob(a.layout, data)
        m = json.loads(data)
        if mt in INDEXES:
            for child in m["manifests"]:
                if a.platform and platform_of(child.get("platform", {})) not in a.platform:
                    continue
                copy_image(base, repo, a.layout, child["digest"])
        else:
            copy_blob(base, repo, a.layout, m["config"])
            for layer in m["layers"]:
                copy_blob(base, repo, a.layout, layer)
        name = a.name or "%s/%s" % (a.registry, repo)
        stored_tag = a.tag or tag
        ref_name = "%s:%s" % (name, stored_tag)
        entries[ref_name] = {
            "mediaType": mt,
            "digest": digest,
            "size": len(data),
            "annotations": {
                "org.opencontainers.image.ref.name": ref_name,
                "io.containerd.image.name": ref_name if "/" in name.split("/")[0] or "." in name.split("/")[0] or ":" in name.split("/")[0] else "docker.io/" + ref_name,
                "org.occystrap.source": "%s/%s:%s@%s" % (a.registry, repo, tag, digest),
            },
        }
        print("%s %s %s" % (ref_name, digest, mt))
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [entries[k] for k in sorted(entries)]}
    with open(index_path + ".tmp", "w") as f:
        json.dump(doc, f, indent=2)
    os.rename(index_path + ".tmp", index_path)


main()
