#!/usr/bin/python3
"""check_tarball.py - the oracle for a docker-load tarball written by occystrap.

usage: check_tarball.py TARBALL FIXTURES_JSON FIXTURE_KEY [PLATFORM] [REPO_TAG]

Checks, against the lab's fixtures.json (digests as the registry serves them):
  - the config member is <config-hex>.json and hashes to the config digest;
  - manifest.json has one image whose Layers are <layer-hex>/layer.tar in
    manifest order (a repeated layer repeated there, stored once);
  - every layer.tar hashes to its diff_id; RepoTags is REPO_TAG when given;
  - the archive ends with the two zero blocks of a proper POSIX tar;
  - skopeo accepts it: `skopeo copy docker-archive:TARBALL oci:DIR` and the
    OCI image it writes has the same number of layers.
Exits non-zero with a message naming the first failed check.
"""
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile


def fail(msg):
    print("check_tarball: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def sha256_of(fobj):
    h = hashlib.sha256()
    for chunk in iter(lambda: fobj.read(1 << 20), b""):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def expected_image(fixtures, key, platform):
    fx = fixtures["fixtures"][key]
    if fx["format"] != "index":
        return fx
    for m in fx["manifests"]:
        p = m["platform"]
        name = p["os"] + "/" + p["architecture"] + ("/" + p["variant"] if p.get("variant") else "")
        if name == platform or (platform == "linux/arm64" and name == "linux/arm64/v8"):
            return m
    fail("fixture %s has no platform %s" % (key, platform))


def main():
    if len(sys.argv) < 4:
        fail("usage: check_tarball.py TARBALL FIXTURES_JSON FIXTURE_KEY [PLATFORM] [REPO_TAG]")
    tarball, fixtures_path, key = sys.argv[1:4]
    platform = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else "linux/amd64"
    repo_tag = sys.argv[5] if len(sys.argv) > 5 else None
    fixtures = json.load(open(fixtures_path))
    img = expected_image(fixtures, key, platform)
    config_hex = img["config"]["digest"].split(":", 1)[1]
    layers = img["layers"]

    with open(tarball, "rb") as f:
        f.seek(-1024, os.SEEK_END)
        if f.read(1024) != b"\0" * 1024:
            fail("%s does not end with the two zero blocks of a POSIX tar" % tarball)

    with tarfile.open(tarball) as tf:
        names = tf.getnames()
        if names[-1] != "manifest.json":
            fail("manifest.json is not the last member (members: %s)" % names)
        manifest = json.load(tf.extractfile("manifest.json"))
        if len(manifest) != 1:
            fail("manifest.json lists %d images, wanted 1" % len(manifest))
        entry = manifest[0]
        if entry["Config"] != config_hex + ".json":
            fail("Config is %s, wanted %s.json" % (entry["Config"], config_hex))
        got = sha256_of(tf.extractfile(entry["Config"]))
        if got != img["config"]["digest"]:
            fail("config member hashes to %s, wanted %s" % (got, img["config"]["digest"]))
        if repo_tag is not None and entry.get("RepoTags") != [repo_tag]:
            fail("RepoTags is %s, wanted [%s]" % (entry.get("RepoTags"), repo_tag))
        want_layers = [l["digest"].split(":", 1)[1] + "/layer.tar" for l in layers]
        if entry["Layers"] != want_layers:
            fail("Layers is %s, wanted %s" % (entry["Layers"], want_layers))
        for name in set(want_layers):
            if names.count(name) != 1:
                fail("%s is stored %d times" % (name, names.count(name)))
        for layer, name in zip(layers, want_layers):
            got = sha256_of(tf.extractfile(name))
            if got != layer["diff_id"]:
                fail("%s hashes to %s, its diff_id is %s" % (name, got, layer["diff_id"]))

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "oci")
        r = subprocess.run(["skopeo", "copy", "-q", "docker-archive:" + tarball, "oci:" + out],
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail("skopeo refused %s: %s" % (tarball, r.stderr.strip()))
        index = json.load(open(os.path.join(out, "index.json")))
        mdigest = index["manifests"][0]["digest"].split(":", 1)[1]
        oci_manifest = json.load(open(os.path.join(out, "blobs", "sha256", mdigest)))
        if len(oci_manifest["layers"]) != len(layers):
            fail("skopeo sees %d layers, wanted %d" % (len(oci_manifest["layers"]), len(layers)))
    print("check_tarball: ok %s (%s, %d layers)" % (key, platform, len(layers)))


main()
