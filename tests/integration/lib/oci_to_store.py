#!/usr/bin/python3
# oci_to_store.py - write one image of an OCI image layout into a merged
# store directory as occystrap lays it out (DESIGN.md 7.1), without a
# registry: STORE/<blob hex>/layer.tar (uncompressed, streamed),
# STORE/<config hex>.json, STORE/manifest-<image>-<tag>.json (with
# "ImageName") and STORE/catalog.json. Lets `occystrap expand` be tested
# and timed on an image that umoci reads from the very same layout.
#
#   oci_to_store.py LAYOUT REF STORE IMAGE TAG
import gzip
import json
import os
import shutil
import subprocess
import sys


def blob_path(layout, digest):
    return os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])


def main(argv):
    if len(argv) != 5:
        print("usage: oci_to_store.py LAYOUT REF STORE IMAGE TAG", file=sys.stderr)
        return 2
    layout, ref, store, image, tag = argv
    index = json.load(open(os.path.join(layout, "index.json")))
    desc = next(m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
    manifest = json.load(open(blob_path(layout, desc["digest"])))
    os.makedirs(store, exist_ok=True)
    cfg_hex = manifest["config"]["digest"].split(":", 1)[1]
    shutil.copyfile(blob_path(layout, manifest["config"]["digest"]),
                    os.path.join(store, cfg_hex + ".json"))
    layers = []
    for l in manifest["layers"]:
        hexd = l["digest"].split(":", 1)[1]
        out_dir = os.path.join(store, hexd)
        out = os.path.join(out_dir, "layer.tar")
        layers.append(f"{hexd}/layer.tar")
        if os.path.exists(out):
            continue
        os.makedirs(out_dir, exist_ok=True)
        src = blob_path(layout, l["digest"])
        mt = l["mediaType"]
        with open(out + ".tmp", "wb") as f:
            if mt.endswith("zstd"):
                subprocess.run(["zstd", "-q", "-dc", src], stdout=f, check=True)
            elif mt.endswith("gzip"):
                with gzip.open(src, "rb") as g:
                    shutil.copyfileobj(g, f, 1 << 20)
            else:
                with open(src, "rb") as g:
                    shutil.copyfileobj(g, f, 1 << 20)
        os.replace(out + ".tmp", out)
    name = "manifest-" + image.replace("/", "_") + "-" + tag.replace("/", "_") + ".json"
    doc = [{"Config": cfg_hex + ".json", "ImageName": image, "Layers": layers,
            "RepoTags": [f"{image}:{tag}"]}]
    with open(os.path.join(store, name), "w") as f:
        json.dump(doc, f, indent=4, sort_keys=True)
        f.write("\n")
    cat_path = os.path.join(store, "catalog.json")
    cat = json.load(open(cat_path)) if os.path.exists(cat_path) else {}
    cat.setdefault(image, {})[tag] = name
    with open(cat_path, "w") as f:
        json.dump(cat, f, indent=4, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
