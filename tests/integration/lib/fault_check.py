#!/usr/bin/python3
"""fault_check.py - an oracle for a store after a fault: independent of
occystrap's own `verify`, from the digests the test images were pushed with.

usage: fault_check.py STORE IMAGES_JSON REGISTRY [--present KEY ...] [--absent KEY ...]
                      [--tmp-empty] [--after-crash]

IMAGES_JSON is store_images.py's output (fixtures.json layout). REGISTRY is
the host:port the images were mirrored from (the store names images
REGISTRY/REPO). Checks:
  - every file of the store outside .occystrap/ and .tmp/ is known and
    verified: <hex>/layer.tar hashes to the diff_id of the layer <hex> of
    IMAGES_JSON and has a marker .occystrap/blobs/<hex>.json naming that
    digest and diff_id; <hex>.json hashes to sha256:<hex> and is a config
    of IMAGES_JSON; catalog.json and manifest-*.json parse; nothing else;
  - every marker names a blob that is in the store;
  - --present KEY: the catalog lists REGISTRY/KEY with its tag, and the
    manifest file it names has the right Config and Layers (all present);
  - --absent KEY: the catalog does not list REGISTRY/KEY;
  - --tmp-empty: no file is left under .tmp/ (a run that ended normally);
  - --after-crash: a run was killed, so a layer.tar may lack its marker
    (killed between the rename and the marker, DESIGN.md 7.1) as long as no
    manifest file names it; it must still hash to its diff_id.
Prints "fault_check: ok ..." or the first problem and exits 1.
"""
import hashlib
import json
import os
import sys


def fail(msg):
    print("fault_check: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        fail(__doc__.split("\n")[2])
    store, images_path, registry = args[:3]
    present, absent, tmp_empty, after_crash = [], [], False, False
    i = 3
    while i < len(args):
        if args[i] == "--present":
            present.append(args[i + 1])
            i += 2
        elif args[i] == "--absent":
            absent.append(args[i + 1])
            i += 2
        elif args[i] == "--tmp-empty":
            tmp_empty = True
            i += 1
        elif args[i] == "--after-crash":
            after_crash = True
            i += 1
        else:
            fail("unknown argument %s" % args[i])
    images = json.load(open(images_path))["fixtures"]
    layers = {}   # hex -> diff_id
    configs = set()
    for img in images.values():
        configs.add(img["config"]["digest"].split(":", 1)[1])
        for l in img["layers"]:
            layers[l["digest"].split(":", 1)[1]] = l["diff_id"]
    if not os.path.isdir(store):
        if present:
            fail("%s does not exist" % store)
        print("fault_check: ok %s (no store)" % store)
        return

    # layers named by some manifest file
    referenced = set()
    for name in os.listdir(store):
        if name.startswith("manifest-") and name.endswith(".json"):
            try:
                for entry in json.load(open(os.path.join(store, name))):
                    referenced.update(l.split("/")[0] for l in entry.get("Layers", []))
            except (ValueError, AttributeError, TypeError) as e:
                fail("%s does not parse as a manifest file: %s" % (name, e))

    # every file outside the dot-directories
    seen_layers, seen_configs, unmarked = set(), set(), set()
    for root, dirs, files in os.walk(store):
        rel = os.path.relpath(root, store)
        if rel == ".":
            dirs[:] = [d for d in dirs if d not in (".occystrap", ".tmp")]
        for name in files:
            relpath = os.path.normpath(os.path.join(rel, name))
            path = os.path.join(store, relpath)
            parts = relpath.split(os.sep)
            if len(parts) == 2 and parts[1] == "layer.tar":
                hexd = parts[0]
                if hexd not in layers:
                    fail("%s: not a layer of the test images" % relpath)
                got = sha256_file(path)
                if got != layers[hexd]:
                    fail("%s hashes to %s, its diff_id is %s (an unverified file in the store)"
                         % (relpath, got, layers[hexd]))
                mpath = os.path.join(store, ".occystrap", "blobs", hexd + ".json")
                if after_crash and not os.path.exists(mpath) and hexd not in referenced:
                    unmarked.add(hexd)
                    continue
                try:
                    marker = json.load(open(mpath))
                except (OSError, ValueError) as e:
                    fail("%s has no valid marker: %s" % (relpath, e))
                if marker.get("digest") != "sha256:" + hexd or marker.get("diff_id") != layers[hexd]:
                    fail("marker of %s names %s / %s" % (relpath, marker.get("digest"), marker.get("diff_id")))
                seen_layers.add(hexd)
            elif len(parts) == 1 and name == "catalog.json":
                try:
                    json.load(open(path))
                except ValueError as e:
                    fail("catalog.json does not parse: %s" % e)
            elif len(parts) == 1 and name.startswith("manifest-") and name.endswith(".json"):
                try:
                    json.load(open(path))
                except ValueError as e:
                    fail("%s does not parse: %s" % (name, e))
            elif len(parts) == 1 and name.endswith(".json") and len(name) == 69:
                hexd = name[:-5]
                if hexd not in configs:
                    fail("%s: not a config of the test images" % name)
                got = sha256_file(path)
                if got != "sha256:" + hexd:
                    fail("%s hashes to %s (an unverified config in the store)" % (name, got))
                seen_configs.add(hexd)
            else:
                fail("unexpected file in the store: %s" % relpath)

    bdir = os.path.join(store, ".occystrap", "blobs")
    for name in (os.listdir(bdir) if os.path.isdir(bdir) else []):
        hexd = name[:-5] if name.endswith(".json") else None
        if hexd is None or (hexd not in seen_layers and hexd not in seen_configs):
            fail("marker .occystrap/blobs/%s names no blob in the store" % name)

    if tmp_empty:
        for root, _, files in os.walk(os.path.join(store, ".tmp")):
            if files:
                fail("scratch left in %s: %s" % (root, files))

    catalog = {}
    cpath = os.path.join(store, "catalog.json")
    if os.path.exists(cpath):
        catalog = json.load(open(cpath))
    for key in present:
        img = images[key]
        name = registry + "/" + key
        tag = img["tag"]
        if name not in catalog or tag not in catalog[name]:
            fail("catalog.json does not list %s:%s (has %s)" % (name, tag, sorted(catalog)))
        entry = json.load(open(os.path.join(store, catalog[name][tag])))[0]
        want_cfg = img["config"]["digest"].split(":", 1)[1] + ".json"
        if entry["Config"] != want_cfg:
            fail("%s: Config %s, wanted %s" % (name, entry["Config"], want_cfg))
        want = [l["digest"].split(":", 1)[1] + "/layer.tar" for l in img["layers"]]
        if entry["Layers"] != want:
            fail("%s: Layers %s, wanted %s" % (name, entry["Layers"], want))
        for l in want:
            if l.split("/")[0] not in seen_layers:
                fail("%s: layer %s missing" % (name, l))
        if want_cfg[:-5] not in seen_configs:
            fail("%s: config %s missing" % (name, want_cfg))
    for key in absent:
        name = registry + "/" + key
        if name in catalog:
            fail("catalog.json lists %s, which failed" % name)
    print("fault_check: ok %s (%d layers, %d configs, %d unmarked unreferenced layers, images %s)"
          % (store, len(seen_layers), len(seen_configs), len(unmarked), sorted(catalog)))


main()
