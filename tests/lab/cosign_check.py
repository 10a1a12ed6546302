#!/usr/bin/python3
# cosign_check.py - what `cosign verify --key` checks, for the test lab (cosign
# is not in Debian): the signatures of a manifest in a registry, found by
# cosign's tag schema (sha256-<hex>.sig) and, for OCI 1.1 signature artifacts,
# by the referrers fallback tag (sha256-<hex>, an index of referrers).
#
#   /usr/bin/python3 cosign_check.py [--insecure] REGISTRY REPO DIGEST PUBKEY.pem
#                                    [--referrer DIGEST]...
#
# For DIGEST: GET its .sig tag; every layer must be a simple signing payload
# whose bytes hash to the layer's digest, whose critical.image names DIGEST, and
# whose "dev.cosignproject.cosign/signature" annotation verifies against the key.
# Each --referrer DIGEST (an SBOM, say) must be listed by DIGEST's fallback tag,
# and its own signature artifact, listed by its fallback tag, must verify the
# same way. Prints one line per verified signature; exit 0 when all verify, 1
# with the reason otherwise.
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import signing  # noqa: E402

ACCEPT = ("application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
          "application/vnd.docker.distribution.manifest.v2+json")
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"


def get(base, path):
    req = urllib.request.Request(base + path, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_signature_manifest(base, repo, man, subject, pem, what):
    layers = [l for l in man.get("layers", []) if l["mediaType"] == signing.MT_SIMPLESIGNING]
    if not layers:
        raise RuntimeError(f"{what}: no simple signing layer")
    for l in layers:
        data = get(base, f"/v2/{repo}/blobs/{l['digest']}")
        if digest(data) != l["digest"]:
            raise RuntimeError(f"{what}: payload {l['digest']} hashes to {digest(data)}")
        named = signing.payload_digest(data)
        if named != subject:
            raise RuntimeError(f"{what}: payload names {named}, not {subject}")
        sig = l.get("annotations", {}).get(signing.SIG_ANNOTATION)
        if not sig or not signing.verify(pem, data, sig):
            raise RuntimeError(f"{what}: the signature of payload {l['digest']} does not verify")
        print(f"verified: {what}: payload {l['digest']} signs {subject}")


def fallback(base, repo, subject):
    try:
        return json.loads(get(base, f"/v2/{repo}/manifests/sha256-{subject[7:]}"))
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return {"manifests": []}
        raise


def main(argv):
    scheme = "https"
    if argv and argv[0] == "--insecure":
        scheme = "http"
        argv = argv[1:]
    if len(argv) < 4 or (len(argv) - 4) % 2:
        print(__doc__ or "usage: cosign_check.py [--insecure] REGISTRY REPO DIGEST PUBKEY "
              "[--referrer DIGEST]...", file=sys.stderr)
        return 2
    registry, repo, subject, keyfile = argv[:4]
    referrers = [argv[i + 1] for i in range(4, len(argv), 2) if argv[i] == "--referrer"]
    base = f"{scheme}://{registry}"
    pem = open(keyfile).read()
    try:
        sig = json.loads(get(base, f"/v2/{repo}/manifests/sha256-{subject[7:]}.sig"))
        check_signature_manifest(base, repo, sig, subject, pem, f"{repo}:sha256-{subject[7:12]}.sig")
        listed = {d["digest"]: d for d in fallback(base, repo, subject)["manifests"]}
        for r in referrers:
            if r not in listed:
                raise RuntimeError(f"{r} is not listed by {repo}:sha256-{subject[7:]}")
            sigs = [d for d in fallback(base, repo, r)["manifests"]
                    if d.get("artifactType") == COSIGN_SIG_ARTIFACT]
            if not sigs:
                raise RuntimeError(f"no signature artifact refers to {r}")
            for d in sigs:
                body = get(base, f"/v2/{repo}/manifests/{d['digest']}")
                if digest(body) != d["digest"]:
                    raise RuntimeError(f"{d['digest']}: the manifest hashes to {digest(body)}")
                man = json.loads(body)
                if man.get("subject", {}).get("digest") != r:
                    raise RuntimeError(f"{d['digest']}: its subject is not {r}")
                check_signature_manifest(base, repo, man, r, pem, f"{repo}@{d['digest'][:19]}")
    except (RuntimeError, urllib.error.URLError, ValueError, KeyError) as e:
        print(f"cosign_check: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
