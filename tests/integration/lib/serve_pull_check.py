#!/usr/bin/python3
# serve_pull_check.py - a client that pulls everything a registry lists, in
# a loop, and checks every pull: each manifest's bytes hash to the
# Docker-Content-Digest it came with (and to the digest it was asked for),
# every blob and child manifest it names is there and hashes to its digest,
# with the size the descriptor gives.
#
#   serve_pull_check.py URL STOP_FILE
#       pulls until STOP_FILE exists, then once more; prints one line per
#       problem and a summary "pulls N images M blobs B problems P repos R"
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])

stats = {"pulls": 0, "images": 0, "blobs": 0, "problems": 0}


def problem(msg):
    stats["problems"] += 1
    print("PROBLEM " + msg, flush=True)


def get(url, accept=None):
    req = urllib.request.Request(url)
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read(), r.headers


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_blob(base, repo, desc):
    try:
        data, _ = get(f"{base}/v2/{repo}/blobs/{desc['digest']}")
    except urllib.error.HTTPError as e:
        problem(f"{repo} blob {desc['digest']}: HTTP {e.code}")
        return
    stats["blobs"] += 1
    if sha(data) != desc["digest"] or len(data) != desc["size"]:
        problem(f"{repo} blob {desc['digest']}: {len(data)} bytes hashing to {sha(data)}")


def check_manifest(base, repo, ref, want=None, depth=0):
    try:
        data, headers = get(f"{base}/v2/{repo}/manifests/{ref}", ACCEPT)
    except urllib.error.HTTPError as e:
        problem(f"{repo} manifest {ref}: HTTP {e.code}")
        return
    digest = sha(data)
    if headers.get("Docker-Content-Digest") != digest or (want and want != digest):
        problem(f"{repo} manifest {ref}: bytes hash to {digest}, served as "
                f"{headers.get('Docker-Content-Digest')}, wanted {want}")
        return
    doc = json.loads(data)
    if "manifests" in doc:
        for child in doc["manifests"]:
            check_manifest(base, repo, child["digest"], child["digest"], depth + 1)
        return
    stats["images"] += 1
    check_blob(base, repo, doc["config"])
    for layer in doc["layers"]:
        check_blob(base, repo, layer)


def one_pass(base):
    data, _ = get(f"{base}/v2/_catalog")
    repos = json.loads(data)["repositories"]
    for repo in repos:
        data, _ = get(f"{base}/v2/{repo}/tags/list")
        for tag in json.loads(data)["tags"] or []:
            check_manifest(base, repo, tag)
    stats["pulls"] += 1
    return len(repos)


def main(argv):
    if len(argv) != 2:
        print("usage: serve_pull_check.py URL STOP_FILE", file=sys.stderr)
        return 2
    base, stop = argv
    repos = 0
    while not os.path.exists(stop):
        repos = one_pass(base)
    repos = one_pass(base)  # everything the writer added, once it is done
    print(f"pulls {stats['pulls']} images {stats['images']} blobs {stats['blobs']} "
          f"problems {stats['problems']} repos {repos}", flush=True)
    return 1 if stats["problems"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
