#!/usr/bin/python3
# serve_store.py - writes a store's exact bytes (STORE/oci/, the OCI image
# layout of DESIGN.md 7.4) straight from a registry, byte for byte, as the
# store side does: every blob by temporary file and rename after its digest
# was checked, then index.json replaced atomically, one descriptor per
# NAME:TAG with the contract's annotations. skopeo is not used: skopeo 1.9
# rewrites Docker schema 2 manifests into OCI ones when it writes oci:, so
# the digests would not be the registry's.
#
#   serve_store.py add STORE REGISTRY REPO:TAG... [--platform-tags] [--delay S]
#       each image (an index with every child and its blobs), added to
#       index.json one at a time (with --delay, S seconds apart: a mirror
#       that writes while serve reads); NAME is REGISTRY/REPO
#   serve_store.py referrer STORE REGISTRY REPO:TAG ARTIFACT_TYPE
#       an artifact (OCI image manifest with artifactType, an empty config,
#       one small layer) whose subject is REPO:TAG's manifest, added as a
#       digest entry NAME:sha256:...; prints its digest
#   serve_store.py synth STORE NAME:TAG SIZE
#       an OCI image made here, no registry: one layer of SIZE random bytes
#       (streamed), its config and manifest; prints the layer's digest
#   serve_store.py symlink STORE NAME:TAG TARGET (layer|manifest)
#       a hostile store: an image whose layer blob (or whose manifest blob)
#       is a symlink to TARGET, a file outside the store (for a manifest,
#       TARGET is written with the manifest's bytes first)
#   serve_store.py check STORE
#       every blob under blobs/ hashes to its name; every descriptor's
#       manifest is in place
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.request

ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
INDEX_TYPES = ("application/vnd.docker.distribution.manifest.list.v2+json",
               "application/vnd.oci.image.index.v1+json")
REF_NAME = "org.opencontainers.image.ref.name"


def get(registry, path, accept=None):
    req = urllib.request.Request(f"http://{registry}{path}")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read(), r.headers


def oci_dir(store):
    return os.path.join(store, "oci")


def blob_path(store, digest):
    return os.path.join(oci_dir(store), "blobs", "sha256", digest.split(":", 1)[1])


def put_blob(store, digest, data):
    """The blob into blobs/ by rename, once its bytes match its digest."""
    assert hashlib.sha256(data).hexdigest() == digest.split(":", 1)[1], digest
    path = blob_path(store, digest)
    if os.path.exists(path):
        return
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def fetch_blob(registry, repo, store, digest):
    if not os.path.exists(blob_path(store, digest)):
        data, _ = get(registry, f"/v2/{repo}/blobs/{digest}")
        put_blob(store, digest, data)


def fetch_manifest(registry, repo, store, ref):
    """The manifest (and everything it reaches) into blobs/; returns
    (media type, digest, size, parsed)."""
    data, headers = get(registry, f"/v2/{repo}/manifests/{ref}", ACCEPT)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    served = headers.get("Docker-Content-Digest")
    assert not served or served == digest, (served, digest)
    doc = json.loads(data)
    media_type = doc.get("mediaType") or headers.get("Content-Type").split(";")[0]
    if media_type in INDEX_TYPES:
        for child in doc["manifests"]:
            fetch_manifest(registry, repo, store, child["digest"])
    else:
        fetch_blob(registry, repo, store, doc["config"]["digest"])
        for layer in doc["layers"]:
            fetch_blob(registry, repo, store, layer["digest"])
    put_blob(store, digest, data)  # last: the manifest after what it names
    return media_type, digest, len(data), doc


def read_index(store):
    path = os.path.join(oci_dir(store), "index.json")
    if not os.path.exists(path):
        return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": []}
    with open(path) as f:
        return json.load(f)


def write_index(store, index):
    """index.json replaced atomically, descriptors sorted by ref name."""
    index["manifests"].sort(key=lambda d: d.get("annotations", {}).get(REF_NAME, ""))
    d = oci_dir(store)
    os.makedirs(d, exist_ok=True)
    layout = os.path.join(d, "oci-layout")
    if not os.path.exists(layout):
        with open(layout, "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".index-")
    with os.fdopen(fd, "w") as f:
        json.dump(index, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(d, "index.json"))


def descriptor(media_type, digest, size, name, tag, registry, repo, platform=None):
    ref = f"{name}:{tag}"
    d = {"mediaType": media_type, "digest": digest, "size": size,
         "annotations": {REF_NAME: ref,
                         "io.containerd.image.name": ref,
                         "org.occystrap.source": f"{registry}/{repo}:{tag}@{digest}"}}
    if platform:
        d["platform"] = platform
    return d


def add_entries(index, entries):
    names = {d["annotations"][REF_NAME] for d in entries}
    index["manifests"] = [d for d in index["manifests"]
                          if d.get("annotations", {}).get(REF_NAME) not in names] + entries


def platform_tag(tag, p):
    s = f"{tag}+{p['os']}-{p['architecture']}"
    return s + (f"-{p['variant']}" if p.get("variant") else "")


def cmd_add(store, registry, refs, platform_tags, delay):
    for i, ref in enumerate(refs):
        repo, tag = ref.rsplit(":", 1)
        name = f"{registry}/{repo}"
        media_type, digest, size, doc = fetch_manifest(registry, repo, store, tag)
        entries = [descriptor(media_type, digest, size, name, tag, registry, repo)]
        if platform_tags and media_type in INDEX_TYPES:
            for child in doc["manifests"]:
                if "platform" in child:
                    entries.append(descriptor(child["mediaType"], child["digest"], child["size"],
                                              name, platform_tag(tag, child["platform"]),
                                              registry, repo, child["platform"]))
        index = read_index(store)
        add_entries(index, entries)
        write_index(store, index)
        print(f"added {name}:{tag} {digest}", flush=True)
        if delay and i + 1 < len(refs):
            time.sleep(delay)


def cmd_referrer(store, registry, ref, artifact_type):
    repo, tag = ref.rsplit(":", 1)
    name = f"{registry}/{repo}"
    media_type, digest, size, _ = fetch_manifest(registry, repo, store, tag)
    empty = b"{}"
    empty_digest = "sha256:" + hashlib.sha256(empty).hexdigest()
    sig = f"signature of {digest}\n".encode()
    sig_digest = "sha256:" + hashlib.sha256(sig).hexdigest()
    put_blob(store, empty_digest, empty)
    put_blob(store, sig_digest, sig)
    art = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "artifactType": artifact_type,
           "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                      "digest": empty_digest, "size": len(empty)},
           "layers": [{"mediaType": "application/vnd.example.signature",
                       "digest": sig_digest, "size": len(sig)}],
           "subject": {"mediaType": media_type, "digest": digest, "size": size},
           "annotations": {"org.example.kind": artifact_type}}
    data = json.dumps(art, separators=(",", ":")).encode()
    art_digest = "sha256:" + hashlib.sha256(data).hexdigest()
    put_blob(store, art_digest, data)
    index = read_index(store)
    add_entries(index, [descriptor(art["mediaType"], art_digest, len(data), name, art_digest,
                                   registry, repo)])
    write_index(store, index)
    print(art_digest)


def config_and_manifest(store, layer_digest, layer_size, layer_type):
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    put_blob(store, config_digest, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer_size}],
    }).encode()
    return manifest, "sha256:" + hashlib.sha256(manifest).hexdigest()


def add_image(store, ref, manifest, digest):
    name, tag = ref.rsplit(":", 1)
    index = read_index(store)
    add_entries(index, [descriptor("application/vnd.oci.image.manifest.v1+json", digest,
                                   len(manifest), name, tag, "synth", name)])
    write_index(store, index)


def cmd_synth(store, ref, size):
    d = os.path.join(oci_dir(store), "blobs", "sha256")
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    h = hashlib.sha256()
    with os.fdopen(fd, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
        f.flush()
        os.fsync(f.fileno())
    layer_digest = "sha256:" + h.hexdigest()
    os.rename(tmp, blob_path(store, layer_digest))
    manifest, digest = config_and_manifest(store, layer_digest, size,
                                           "application/vnd.oci.image.layer.v1.tar")
    put_blob(store, digest, manifest)
    add_image(store, ref, manifest, digest)
    print(layer_digest)


def cmd_symlink(store, ref, target, what):
    os.makedirs(os.path.join(oci_dir(store), "blobs", "sha256"), exist_ok=True)
    if what == "layer":
        with open(target, "rb") as f:
            data = f.read()
        layer_digest = "sha256:" + hashlib.sha256(data).hexdigest()
        os.symlink(target, blob_path(store, layer_digest))
        manifest, digest = config_and_manifest(store, layer_digest, len(data),
                                               "application/vnd.oci.image.layer.v1.tar")
        put_blob(store, digest, manifest)
        print(layer_digest)
    else:
        empty = b"layer"
        layer_digest = "sha256:" + hashlib.sha256(empty).hexdigest()
        put_blob(store, layer_digest, empty)
        manifest, digest = config_and_manifest(store, layer_digest, len(empty),
                                               "application/vnd.oci.image.layer.v1.tar")
        with open(target, "wb") as f:
            f.write(manifest)
        os.symlink(target, blob_path(store, digest))
        print(digest)
    add_image(store, ref, manifest, digest)


def cmd_check(store):
    bad = 0
    d = os.path.join(oci_dir(store), "blobs", "sha256")
    for name in os.listdir(d):
        if name.startswith("."):
            continue
        with open(os.path.join(d, name), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != name:
                print(f"blob {name} does not match its name", file=sys.stderr)
                bad += 1
    for desc in read_index(store)["manifests"]:
        if not os.path.exists(blob_path(store, desc["digest"])):
            print(f"{desc['digest']} is listed and missing", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "add":
        platform_tags = "--platform-tags" in argv
        delay = 0.0
        if "--delay" in argv:
            delay = float(argv[argv.index("--delay") + 1])
            argv = argv[:argv.index("--delay")] + argv[argv.index("--delay") + 2:]
        refs = [a for a in argv[3:] if not a.startswith("--")]
        cmd_add(argv[1], argv[2], refs, platform_tags, delay)
        return 0
    if len(argv) == 5 and argv[0] == "referrer":
        cmd_referrer(argv[1], argv[2], argv[3], argv[4])
        return 0
    if len(argv) == 4 and argv[0] == "synth":
        cmd_synth(argv[1], argv[2], int(argv[3]))
        return 0
    if len(argv) == 5 and argv[0] == "symlink":
        cmd_symlink(argv[1], argv[2], argv[3], argv[4])
        return 0
    if len(argv) == 2 and argv[0] == "check":
        return cmd_check(argv[1])
    print("usage: see the top of serve_store.py", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
