#!/usr/bin/python3
"""bundle_tool.py - read and forge occystrap bundles with the standard library
only, from the format DESIGN.md 7.8 documents (an independent reading of it,
for the bundle tests).

usage:
  bundle_tool.py check-id PART           the manifest's id is that of its content
  bundle_tool.py verify PART             every file of the part hashes to its manifest digest
  bundle_tool.py files PART              one "part path digest size" line per file
  bundle_tool.py forge KIND IN OUT       a hostile copy of the one-part bundle IN
  bundle_tool.py flip PART MEMBER OUT    PART with one byte of MEMBER's data flipped

KIND: dotdot, absolute, symlink, hardlink, badname (a blob whose bytes are
another blob's, the manifest made consistent with it), namedigest (the
manifest lists a blob under a name that is not its digest), unlisted (a
member after the last listed one), oversize-inventory, oversize-manifest.
Forged manifests get their id recomputed, so only the check under test can
refuse them.
"""
import hashlib
import io
import json
import sys
import tarfile

DOC_MAX = 64 * 1024 * 1024


def compact(v):
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def doc_text(doc):
    """The documents' text form: one top-level key a line, sorted; arrays of
    objects one element a line."""
    lines = []
    keys = sorted(doc)
    for i, k in enumerate(keys):
        v = doc[k]
        if isinstance(v, list) and v and all(isinstance(e, dict) for e in v):
            body = "[\n" + ",\n".join("    " + compact(e) for e in v) + "\n  ]"
        else:
            body = compact(v)
        lines.append("  %s: %s%s" % (compact(k), body, "," if i + 1 < len(keys) else ""))
    return ("{\n" + "\n".join(lines) + "\n}\n").encode()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def bundle_id(doc):
    d = dict(doc)
    d["id"] = ""
    d["part"] = 0
    return sha(doc_text(d))


def read_members(path):
    """(TarInfo, bytes) of every member, in order (uncompressed tars)."""
    out = []
    with tarfile.open(path, "r:") as tf:
        for m in tf.getmembers():
            data = tf.extractfile(m).read() if m.isfile() else b""
            out.append((m, data))
    return out


def write_members(path, members):
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for m, data in members:
            tf.addfile(m, io.BytesIO(data) if m.isfile() else None)


def info(name, size):
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o644
    return ti


def manifest_of(members):
    assert members[0][0].name == "occystrap-bundle.json"
    return json.loads(members[0][1])


def with_manifest(members, doc):
    doc["id"] = bundle_id(doc)
    text = doc_text(doc)
    members[0] = (info("occystrap-bundle.json", len(text)), text)
    return members


def first_blob(members):
    for i, (m, _) in enumerate(members):
        if m.name.startswith("blobs/sha256/"):
            return i
    sys.exit("no blob member")


def forge(kind, src, dst):
    members = read_members(src)
    doc = manifest_of(members)
    i = first_blob(members)
    m, data = members[i]
    if kind == "dotdot":
        members[i] = (info("blobs/sha256/../../../evil", len(data)), data)
    elif kind == "absolute":
        members[i] = (info("/tmp/occy-evil-" + m.name[-8:], len(data)), data)
    elif kind == "symlink":
        ti = tarfile.TarInfo(m.name)
        ti.type = tarfile.SYMTYPE
        ti.linkname = "/etc/passwd"
        members[i] = (ti, b"")
    elif kind == "hardlink":
        ti = tarfile.TarInfo(m.name)
        ti.type = tarfile.LNKTYPE
        ti.linkname = "occystrap-bundle.json"
        members[i] = (ti, b"")
    elif kind == "badname":
        # the next blob's bytes under this blob's name, the manifest's size
        # made to fit: only the digest check can tell
        j = next(k for k in range(i + 1, len(members)) if members[k][0].name.startswith("blobs/"))
        other = members[j][1]
        members[i] = (info(m.name, len(other)), other)
        for f in doc["files"]:
            if f["path"] == m.name:
                f["size"] = len(other)
        doc["bytes"] = sum(f["size"] for f in doc["files"])
        members = with_manifest(members, doc)
    elif kind == "namedigest":
        # the manifest lists a blob under another blob's name
        f0 = next(f for f in doc["files"] if f["path"] == m.name)
        f0["digest"] = sha(b"not these bytes")
        members = with_manifest(members, doc)
    elif kind == "unlisted":
        members.append((info("blobs/sha256/" + "0" * 64, 3), b"abc"))
    elif kind == "oversize-inventory":
        k = next(k for k, (mm, _) in enumerate(members) if mm.name == "inventory.json")
        inv = members[k][1].rstrip(b"\n") + b" " * (DOC_MAX + 4096) + b"\n"
        members[k] = (info("inventory.json", len(inv)), inv)
        for meta in doc["meta"]:
            if meta["path"] == "inventory.json":
                meta["digest"], meta["size"] = sha(inv), len(inv)
        members = with_manifest(members, doc)
    elif kind == "oversize-manifest":
        text = members[0][1].rstrip(b"\n") + b" " * (DOC_MAX + 4096) + b"\n"
        members[0] = (info("occystrap-bundle.json", len(text)), text)
    else:
        sys.exit("unknown kind " + kind)
    write_members(dst, members)


def flip(src, member, dst):
    """Flip one byte in the middle of member's data, in place of a copy."""
    with tarfile.open(src, "r:") as tf:
        m = tf.getmember(member)
        at = m.offset_data + m.size // 2
    data = bytearray(open(src, "rb").read())
    data[at] ^= 0x01
    open(dst, "wb").write(data)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "check-id":
        doc = manifest_of(read_members(sys.argv[2])[:1])
        want = bundle_id(doc)
        if want != doc["id"]:
            sys.exit("id %s, content says %s" % (doc["id"], want))
        print(doc["id"])
    elif cmd == "files":
        doc = manifest_of(read_members(sys.argv[2])[:1])
        for f in doc["files"]:
            print(f["part"], f["path"], f["digest"], f["size"])
    elif cmd == "verify":
        members = read_members(sys.argv[2])
        doc = manifest_of(members)
        byname = {m.name: d for m, d in members}
        n = 0
        for meta in doc["meta"]:
            assert sha(byname[meta["path"]]) == meta["digest"], meta["path"]
        for f in doc["files"]:
            if f["part"] != doc["part"]:
                continue
            if sha(byname[f["path"]]) != f["digest"]:
                sys.exit("%s does not hash to %s" % (f["path"], f["digest"]))
            n += 1
        print("%d files of part %d verified" % (n, doc["part"]))
    elif cmd == "forge":
        forge(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "flip":
        flip(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


main()
