# signing.py - cosign-style signatures for the test lab, without cosign.
#
# cosign (not in Debian) signs an image by storing a "simple signing" payload
# (application/vnd.dev.cosign.simplesigning.v1+json) whose critical.image
# ["docker-manifest-digest"] names the signed manifest, as a layer of a
# signature manifest, with the base64 ECDSA P-256 / SHA-256 signature of the
# payload's bytes in the layer descriptor's annotation
# "dev.cosignproject.cosign/signature". This module makes such payloads and
# signatures with a fixed lab key, and checks them with python3-cryptography.
#
# The signature is deterministic (k derived from the key and the message
# with HMAC-SHA256, in the spirit of RFC 6979), so the lab's signed artifacts
# keep their digests from one build to the next: python3-cryptography 38
# (Debian 12) only signs with a random k, so signing is done here in plain
# integer arithmetic; verification is python3-cryptography's.
import base64
import hashlib
import hmac
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MT_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"

# NIST P-256
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_A = _P - 3
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
      0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _add(p, q):
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0] and (p[1] + q[1]) % _P == 0:
        return None
    if p == q:
        lam = (3 * p[0] * p[0] + _A) * pow(2 * p[1], -1, _P) % _P
    else:
        lam = (q[1] - p[1]) * pow(q[0] - p[0], -1, _P) % _P
    x = (lam * lam - p[0] - q[0]) % _P
    return (x, (lam * (p[0] - x) - p[1]) % _P)


def _mul(k, p):
    r = None
    while k:
        if k & 1:
            r = _add(r, p)
        p = _add(p, p)
        k >>= 1
    return r


def lab_key(seed=b"occystrap lab cosign key"):
    """The lab's signing key: a private scalar derived from seed."""
    d = int.from_bytes(hashlib.sha256(seed).digest(), "big") % (_N - 1) + 1
    return ec.derive_private_key(d, ec.SECP256R1())


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(key, data):
    """Deterministic ECDSA P-256 / SHA-256 signature of data, DER, base64."""
    d = key.private_numbers().private_value
    h = hashlib.sha256(data).digest()
    e = int.from_bytes(h, "big")
    counter = 0
    while True:
        k = int.from_bytes(hmac.new(d.to_bytes(32, "big"), h + bytes([counter]),
                                    hashlib.sha256).digest(), "big") % _N
        counter += 1
        if k == 0:
            continue
        r = _mul(k, _G)[0] % _N
        s = pow(k, -1, _N) * (e + r * d) % _N
        if r and s:
            return base64.b64encode(encode_dss_signature(r, s)).decode()


def verify(pem, data, b64sig):
    """True when b64sig is a valid signature of data by the key in pem."""
    pub = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    try:
        pub.verify(base64.b64decode(b64sig), data, ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


def payload(reference, digest):
    """cosign's simple signing payload for the manifest digest (bytes)."""
    doc = {"critical": {"identity": {"docker-reference": reference},
                        "image": {"docker-manifest-digest": digest},
                        "type": "cosign container image signature"},
           "optional": None}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def payload_digest(data):
    """The manifest digest a payload names."""
    return json.loads(data)["critical"]["image"]["docker-manifest-digest"]
