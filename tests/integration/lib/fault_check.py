#!/usr/bin/python3
"""fault_check.py - an oracle for a store after a fault: independent of
occystrap's own `verify`, from the digests the test images were pushed with.

usage: fault_check.py STORE IMAGES_JSON REGISTRY [--present KEY ...] [--absent KEY ...]
                      [--tmp-empty] [--after-crash] [--exact | --no-exact]

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
The exact bytes (STORE/oci/, DESIGN.md 7.5), when the store has them:
  - oci-layout says {"imageLayoutVersion": "1.0.0"}; nothing but oci-layout,
    index.json and blobs/sha256/<hex> is in oci/;
  - every blob hashes to its name, has the size IMAGES_JSON gives and is a
    compressed layer, a config, an image manifest or an index of the test
    images; a config's blob is the same inode as <hex>.json when both are
    there;
  - index.json parses, every descriptor names a test image as
    REGISTRY/KEY:TAG (or a platform tag TAG+os-arch[-variant] of an index)
    with its digest, media type and size, the three annotations, and every
    blob it reaches (manifest, config, layers; an index's children that are
    there) is in place: a descriptor is written only after all of that;
  - --exact: every --present image is in index.json too; --no-exact:
    index.json names none of them; --absent: index.json does not name it.
IMAGES_JSON may also be the lab's fixtures.json: an index fixture's
platforms come from its "manifests" (the catalog's image is its linux/amd64
one).
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


def platform_images(img):
    """The image manifests of a test image: itself, or an index's children."""
    return img["manifests"] if "manifests" in img else [img]


def amd64_image(img):
    """What the catalog holds for a test image mirrored for linux/amd64."""
    for one in platform_images(img):
        p = one.get("platform") or {"os": "linux", "architecture": "amd64"}
        if p.get("os") == "linux" and p.get("architecture") == "amd64":
            return one
    return platform_images(img)[0]


def platform_tag(tag, p):
    return "%s+%s-%s%s" % (tag, p["os"], p["architecture"],
                           "-" + p["variant"] if p.get("variant") else "")


def check_oci(store, images, registry, present, absent, exact):
    """The exact bytes in STORE/oci/ (see the docstring); a summary."""
    odir = os.path.join(store, "oci")
    if not os.path.isdir(odir):
        if exact and present:
            fail("--exact, but the store has no oci/")
        return ", no oci/"
    # every blob the test images have, by hex: (size, kind, media type)
    known = {}
    refs = {}  # ref.name -> (digest, media type, size)
    for key, img in images.items():
        known[img["digest"].split(":", 1)[1]] = (img["size"], "manifest", img["media_type"])
        refs["%s/%s:%s" % (registry, key, img["tag"])] = (img["digest"], img["media_type"], img["size"])
        for one in platform_images(img):
            known[one["digest"].split(":", 1)[1]] = (one["size"], "manifest", one["media_type"])
            known[one["config"]["digest"].split(":", 1)[1]] = (one["config"]["size"], "config", None)
            for l in one["layers"]:
                known[l["digest"].split(":", 1)[1]] = (l["size"], "layer", l["media_type"])
            if one is not img and one.get("platform"):
                refs["%s/%s:%s" % (registry, key, platform_tag(img["tag"], one["platform"]))] = (
                    one["digest"], one["media_type"], one["size"])
    try:
        layout = json.load(open(os.path.join(odir, "oci-layout")))
    except (OSError, ValueError) as e:
        fail("oci/oci-layout: %s" % e)
    if layout != {"imageLayoutVersion": "1.0.0"}:
        fail("oci/oci-layout says %s" % layout)
    blobs = set()
    for root, dirs, files in os.walk(odir):
        rel = os.path.relpath(root, odir)
        for name in files:
            relpath = os.path.normpath(os.path.join(rel, name))
            if relpath in ("oci-layout", "index.json"):
                continue
            parts = relpath.split(os.sep)
            if len(parts) != 3 or parts[:2] != ["blobs", "sha256"]:
                fail("unexpected file in oci/: %s" % relpath)
            hexd = parts[2]
            if hexd not in known:
                fail("oci/%s: not a blob of the test images" % relpath)
            path = os.path.join(odir, relpath)
            size, kind, _ = known[hexd]
            if os.path.getsize(path) != size:
                fail("oci/%s holds %d bytes, not %d" % (relpath, os.path.getsize(path), size))
            got = sha256_file(path)
            if got != "sha256:" + hexd:
                fail("oci/%s hashes to %s (an unverified blob in the store)" % (relpath, got))
            if kind == "config":
                cfg = os.path.join(store, hexd + ".json")
                if os.path.exists(cfg) and os.stat(cfg).st_ino != os.stat(path).st_ino:
                    fail("oci/%s and %s.json are not one inode" % (relpath, hexd))
            blobs.add(hexd)
    ipath = os.path.join(odir, "index.json")
    index = {"manifests": []}
    if os.path.exists(ipath):
        try:
            index = json.load(open(ipath))
        except ValueError as e:
            fail("oci/index.json does not parse: %s" % e)
        if index.get("schemaVersion") != 2 or not isinstance(index.get("manifests"), list):
            fail("oci/index.json is not an image index")
    named = {}
    for d in index["manifests"]:
        ann = d.get("annotations") or {}
        ref = ann.get("org.opencontainers.image.ref.name")
        if ref not in refs:
            fail("oci/index.json names %s, not a test image" % ref)
        if ref in named:
            fail("oci/index.json names %s twice" % ref)
        want = refs[ref]
        if (d.get("digest"), d.get("mediaType"), d.get("size")) != want:
            fail("oci/index.json: %s is %s %s %s, wanted %s" % (
                ref, d.get("digest"), d.get("mediaType"), d.get("size"), want))
        if not ann.get("io.containerd.image.name") or "@" + want[0] not in ann.get(
                "org.occystrap.source", ""):
            fail("oci/index.json: %s lacks its annotations: %s" % (ref, ann))
        named[ref] = d
        # everything it reaches is in place
        top = want[0].split(":", 1)[1]
        if top not in blobs:
            fail("oci/index.json names %s, whose blob %s is missing" % (ref, top))
        doc = json.load(open(os.path.join(odir, "blobs", "sha256", top)))
        children = [m["digest"].split(":", 1)[1] for m in doc.get("manifests", [])]
        manifests = [top] if "manifests" not in doc else [c for c in children if c in blobs]
        if "manifests" in doc and not manifests:
            fail("oci/index.json: %s is an index none of whose manifests is in oci/" % ref)
        for mh in manifests:
            m = json.load(open(os.path.join(odir, "blobs", "sha256", mh)))
            for b in [m["config"]] + m["layers"]:
                if b["digest"].split(":", 1)[1] not in blobs:
                    fail("oci/index.json: %s reaches %s, which is missing" % (ref, b["digest"]))
    for key in present:
        ref = "%s/%s:%s" % (registry, key, images[key]["tag"])
        if exact and ref not in named:
            fail("--exact: oci/index.json does not name %s" % ref)
        if exact is False and ref in named:
            fail("--no-exact: oci/index.json names %s" % ref)
    for key in absent:
        ref = "%s/%s:%s" % (registry, key, images[key]["tag"])
        if ref in named:
            fail("oci/index.json names %s, which failed" % ref)
    return ", oci/: %d blobs, %d index.json entries" % (len(blobs), len(named))


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        fail(__doc__.split("\n")[2])
    store, images_path, registry = args[:3]
    present, absent, tmp_empty, after_crash, exact = [], [], False, False, None
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
        elif args[i] in ("--exact", "--no-exact"):
            exact = args[i] == "--exact"
            i += 1
        else:
            fail("unknown argument %s" % args[i])
    images = json.load(open(images_path))["fixtures"]
    layers = {}   # hex -> diff_id
    configs = set()
    for img in images.values():
        for one in platform_images(img):
            configs.add(one["config"]["digest"].split(":", 1)[1])
            for l in one["layers"]:
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
            dirs[:] = [d for d in dirs if d not in (".occystrap", ".tmp", "oci")]
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
        img = amd64_image(images[key])
        name = registry + "/" + key
        tag = images[key]["tag"]
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
    oci = check_oci(store, images, registry, present, absent, exact)
    print("fault_check: ok %s (%d layers, %d configs, %d unmarked unreferenced layers, images %s%s)"
          % (store, len(seen_layers), len(seen_configs), len(unmarked), sorted(catalog), oci))


main()
