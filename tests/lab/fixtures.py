#!/usr/bin/python3
# fixtures.py - build the occystrap test lab's fixture images and push them.
#
#   /usr/bin/python3 fixtures.py LAB_DIR           build + push + write fixtures.json
#   /usr/bin/python3 fixtures.py --check LAB_DIR   exit 0 iff the fixtures in the lab's
#                                                  storage were made by this very
#                                                  generator and are all still served
#
# Run by tests/lab/lab.sh after the registries are up (it reads LAB_DIR/env.sh for
# LAB_PLAIN). Images are built from scratch as OCI image layouts in LAB_DIR/oci/
# with the stdlib only (tarfile, gzip, hashlib, json) plus the `zstd` CLI, and
# deterministically (fixed mtimes/owners, fixed entry order, gzip mtime 0), so
# their digests are stable across runs. Each is pushed to the plain instance with
# `skopeo copy` (storage is shared by all instances); `fixtures/duplayer` is
# pushed with curl if skopeo refuses it. Afterwards every manifest is read back
# from the registry with curl and fixtures.json records the digests AS SERVED
# (skopeo 1.9 rewrites manifests when converting to Docker schema 2).
#
# fixtures.json (also kept in the storage dir as the "generator version" stamp):
# {"generator": ..., "fixtures": {REPO: {name, repo, tag, format ("v2s2"|"oci"|
#  "index"), digest, media_type, size, config_digest, config: {digest,size,
#  media_type}, layers: [{digest,size,media_type,diff_id}], local_digest,
#  description, [expect: {present: [...], absent: [...], files: {...}}],
#  [manifests: [{platform, digest, media_type, size, config_digest, config,
#  layers}]] (index only)}}}
import concurrent.futures
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

GENERATOR_VERSION = 1
MTIME = 1700000000          # 2023-11-14T22:13:20Z, every tar entry
CREATED = "2023-11-14T22:13:20Z"

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_D2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_D2_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = ",".join([MT_OCI_MANIFEST, MT_OCI_INDEX, MT_D2_MANIFEST, MT_D2_LIST])


def generator_id():
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("fixtures.py", "signing.py"):  # the signed image is made by both
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    return f"v{GENERATOR_VERSION}-{h.hexdigest()[:16]}"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def log(msg):
    print(f"fixtures: {msg}", flush=True)


# --- tar building ------------------------------------------------------------

def D(path, mode=0o755):
    return {"path": path, "type": "dir", "mode": mode}


def F(path, data, mode=0o644):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return {"path": path, "type": "file", "data": data, "mode": mode}


def L(path, target):
    return {"path": path, "type": "symlink", "target": target, "mode": 0o777}


def H(path, target):
    return {"path": path, "type": "hardlink", "target": target, "mode": 0o644}


def FIFO(path, mode=0o644):
    return {"path": path, "type": "fifo", "mode": mode}


def make_tar(entries, sort=True):
    """Deterministic PAX tar of entries (sorted by path unless sort=False; hard
    links sorted after everything else so their targets come first)."""
    if sort:
        entries = sorted(entries, key=lambda e: (e["type"] == "hardlink", e["path"]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e["path"])
            ti.mtime = MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mode = e["mode"]
            data = None
            if e["type"] == "dir":
                ti.type = tarfile.DIRTYPE
            elif e["type"] == "file":
                ti.type = tarfile.REGTYPE
                data = e["data"]
                ti.size = len(data)
            elif e["type"] == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["target"]
            elif e["type"] == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["target"]
            elif e["type"] == "fifo":
                ti.type = tarfile.FIFOTYPE
            else:
                raise ValueError(e["type"])
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def zst(data):
    return subprocess.run(["zstd", "-q", "-c", "-3", "--no-progress"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def noise(seed, n):
    """n deterministic, incompressible bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def text(seed, lines):
    return "".join(f"{seed} line {i}: the quick brown fox jumps over the lazy dog\n"
                   for i in range(lines))


class Layer:
    def __init__(self, tar, blob, media_type):
        self.tar = tar
        self.blob = blob
        self.media_type = media_type
        self.diff_id = sha256(tar)
        self.digest = sha256(blob)


def gz_layer(entries, sort=True):
    t = make_tar(entries, sort)
    return Layer(t, gz(t), MT_OCI_GZIP)


def zstd_layer(entries):
    t = make_tar(entries)
    return Layer(t, zst(t), MT_OCI_ZSTD)


# --- OCI layout --------------------------------------------------------------

class Layout:
    def __init__(self, path):
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(os.path.join(path, "blobs", "sha256"))
        self.path = path
        self.refs = []
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def blob(self, data, media_type):
        d = sha256(data)
        p = os.path.join(self.path, "blobs", "sha256", d[7:])
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(data)
        return {"mediaType": media_type, "digest": d, "size": len(data)}

    def image(self, layers, arch="amd64", variant=None, comment=""):
        cfg = {
            "created": CREATED,
            "author": "occystrap test lab",
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": ["/bin/sh"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
            "history": [{"created": CREATED,
                         "created_by": f"occy-lab fixtures.py {comment} layer {i}"}
                        for i in range(len(layers))],
        }
        if variant:
            cfg["variant"] = variant
        cdesc = self.blob(json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode(),
                          MT_OCI_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": cdesc,
            "layers": [self.blob(l.blob, l.media_type) for l in layers],
        }
        return self.blob(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(),
                         MT_OCI_MANIFEST)

    def index(self, entries):
        """entries: [(manifest descriptor, platform dict)]"""
        idx = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
               "manifests": [dict(desc, platform=plat) for desc, plat in entries]}
        return self.blob(json.dumps(idx, sort_keys=True, separators=(",", ":")).encode(),
                         MT_OCI_INDEX)

    def tag(self, desc, tag):
        self.refs.append(dict(desc, annotations={"org.opencontainers.image.ref.name": tag}))
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": self.refs},
                      f, sort_keys=True, separators=(",", ":"))


# --- the fixtures ------------------------------------------------------------

def multilayer_layers():
    l1 = gz_layer([
        D("bin"), D("etc"), D("usr"), D("usr/lib"), D("usr/share"), D("usr/share/doc"),
        F("bin/busy", noise("busy", 300_000), 0o755),
        F("etc/hostname", "occy-lab\n"),
        F("etc/os-release", 'NAME="occy lab"\nID=occylab\n'),
        F("usr/lib/libbig.so", noise("libbig", 400_000), 0o755),
        F("usr/share/doc/README", text("doc", 2000)),
        F("empty", b""),
    ])
    l2 = gz_layer([
        D("usr"), D("usr/lib"), D("var"), D("var/lib"), D("var/lib/data"),
        F("usr/lib/libmore.so", noise("libmore", 300_000), 0o755),
        F("var/lib/data/blob.bin", noise("blob", 200_000)),
        F("etc/hostname", "occy-lab-layer2\n"),   # overrides layer 1 (no parent dir entry)
    ])
    l3 = gz_layer([
        D("app"), D("app/conf"),
        F("app/run.sh", "#!/bin/sh\necho hello from occy lab\n", 0o755),
        F("app/conf/app.json", json.dumps({"name": "occy", "n": list(range(50))})),
        F("app/data.bin", noise("app", 250_000)),
    ])
    return [l1, l2, l3]


def whiteouts_layers():
    lower = gz_layer([
        D("etc"), F("etc/keep.txt", "keep\n"),
        D("a"), F("a/file1.txt", "file1\n"), F("a/file2.txt", "file2\n"),
        D("deldir"), F("deldir/x", "x\n"), D("deldir/sub"), F("deldir/sub/y", "y\n"),
        D("opq"), F("opq/old1", "old1\n"), D("opq/sub"), F("opq/sub/old3", "old3\n"),
        F("gone", "gone\n"), F("gonez", "gonez\n"),
        F("f2d", "I am a file, later a directory\n"),
        D("d2f"), F("d2f/inner", "inner\n"),
    ])
    # Explicit order: the opaque marker is NOT the first entry of opq/, and the
    # layer adds files to opq/ both before and after it.
    upper = gz_layer([
        D("a"), F("a/.wh.file1.txt", b""),
        F(".wh.deldir", b""),
        D("opq"), F("opq/new1", "new1\n"), F("opq/.wh..wh..opq", b""), F("opq/new2", "new2\n"),
        F(".wh.neverexisted", b""),
        F(".wh.gone", b""),
        D("f2d"), F("f2d/child.txt", "child of f2d\n"),
    ], sort=False)
    top = gz_layer([
        F("d2f", "I was a directory\n"),
        D("deldir"), F("deldir/fresh.txt", "fresh\n"),
    ], sort=False)
    expect = {
        "present": ["etc/keep.txt", "a/file2.txt", "opq/new1", "opq/new2", "gonez",
                    "f2d/child.txt", "d2f", "deldir/fresh.txt"],
        "absent": ["a/file1.txt", "a/.wh.file1.txt", "deldir/x", "deldir/sub", "opq/old1",
                   "opq/sub", "opq/.wh..wh..opq", "gone", ".wh.gone", "neverexisted",
                   ".wh.neverexisted", ".wh.deldir", "d2f/inner"],
        "types": {"f2d": "dir", "d2f": "file", "opq": "dir", "deldir": "dir"},
    }
    return [lower, upper, top], expect


LONG1 = ("deep/" + "d" * 40 + "/" + "e" * 40 + "/file-with-a-path-longer-than-100-bytes.txt")
LONG2 = "/".join(["very-long-component-" + str(i) + "-" + "x" * 40 for i in range(5)]) + "/end.txt"
UTF8 = "données/ünïcödé.txt"


def links_layers():
    dirs = set()
    for p in (LONG1, LONG2):
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    entries = [D(d) for d in sorted(dirs)] + [
        D("bin"), D("rel"), D("données"), D("private", 0o700), D("ro-dir", 0o555), D("run"),
        F("bin/target", "#!/bin/sh\necho target\n", 0o755),
        H("bin/hard", "bin/target"),
        H("hard-at-root", "bin/target"),
        L("abs-link", "/bin/target"),
        L("rel/link", "../bin/target"),
        L("dir-link", "bin"),
        L("dangling", "/does/not/exist"),
        F(LONG1, "long path 1\n"),
        F(LONG2, "long path 2\n"),
        H("long-hardlink", LONG2),
        L("long-symlink", "/" + LONG2),
        F(UTF8, "unicode ✓\n"),
        F("private/secret.txt", "secret\n", 0o600),
        F("bin/suid", "#!/bin/sh\n", 0o4755),
        F("ro.txt", "read only\n", 0o555),
        F("ro-dir/inside.txt", "inside read-only dir\n", 0o444),
        FIFO("run/fifo", 0o644),
    ]
    expect = {
        "present": ["bin/target", "bin/hard", "hard-at-root", "abs-link", "rel/link", "dir-link",
                    "dangling", LONG1, LONG2, "long-hardlink", "long-symlink", UTF8,
                    "private/secret.txt", "bin/suid", "ro.txt", "ro-dir/inside.txt", "run/fifo"],
        "absent": [],
        "types": {"abs-link": "symlink", "rel/link": "symlink", "dir-link": "symlink",
                  "dangling": "symlink", "long-symlink": "symlink", "run/fifo": "fifo",
                  "private": "dir"},
        "modes": {"private": "0700", "bin/suid": "4755", "ro.txt": "0555", "ro-dir": "0555",
                  "bin/target": "0755"},
        "symlinks": {"abs-link": "/bin/target", "rel/link": "../bin/target", "dir-link": "bin",
                     "dangling": "/does/not/exist", "long-symlink": "/" + LONG2},
        "hardlinks": {"bin/hard": "bin/target", "hard-at-root": "bin/target",
                      "long-hardlink": LONG2},
    }
    return [gz_layer(entries)], expect


def base_layers():
    b1 = gz_layer([D("base"), F("base/one.txt", text("base1", 200)),
                   F("base/one.bin", noise("base1", 20_000))])
    b2 = gz_layer([D("base"), D("base/two"), F("base/two/two.txt", text("base2", 100)),
                   F("base/two/two.bin", noise("base2", 10_000))])
    return b1, b2


def multimember_layer():
    tar = make_tar([D("mm"), F("mm/a.txt", text("mm-a", 300)), F("mm/b.bin", noise("mm", 8_000)),
                    F("mm/c.txt", text("mm-c", 300))])
    cut = len(tar) // 2 + 7          # deliberately not on a 512-byte tar block boundary
    blob = gz(tar[:cut]) + gz(tar[cut:])
    return Layer(tar, blob, MT_OCI_GZIP)


# Each spec: name -> dict(repo, tag, format, build=callable(layout)->(desc, extra))
def build_all(ocidir):
    specs = []

    def add(repo, fmt, desc, layout, description, expect=None, push="skopeo"):
        specs.append({"repo": repo, "tag": "v1", "format": fmt, "local_digest": desc["digest"],
                      "dir": layout.path, "description": description, "expect": expect,
                      "push": push})

    def single(name, layers, comment, arch="amd64", variant=None):
        lo = Layout(os.path.join(ocidir, name))
        d = lo.image(layers, arch, variant, comment)
        lo.tag(d, "v1")
        return lo, d

    ml = multilayer_layers()
    lo, d = single("multilayer", ml, "multilayer")
    add("fixtures/multilayer", "v2s2", d, lo, "3 gzip layers, ~1.3 MB, Docker schema 2")
    lo, d = single("multilayer-oci", ml, "multilayer")
    add("fixtures/multilayer-oci", "oci", d, lo, "same layers as fixtures/multilayer, OCI")

    wl, wexp = whiteouts_layers()
    lo, d = single("whiteouts", wl, "whiteouts")
    add("fixtures/whiteouts", "v2s2", d, lo,
        "file/dir whiteouts, opaque dir (marker not first), whiteout of a never-existing "
        "path, gone vs gonez, file->dir and dir->file replacement, dir re-created after "
        "whiteout", wexp)

    ll, lexp = links_layers()
    lo, d = single("links", ll, "links")
    add("fixtures/links", "oci", d, lo,
        "abs/rel/dangling symlinks, hardlinks within the layer, paths >100 and >255 bytes, "
        "UTF-8 name, modes 0700/04755/0555, FIFO", lexp)

    lo = Layout(os.path.join(ocidir, "multiplatform"))
    plats = [("amd64", None), ("arm64", "v8"), ("arm", "v7")]
    ents = []
    for arch, var in plats:
        tag = arch + ("/" + var if var else "")
        lay = gz_layer([F("platform", tag + "\n"), D("etc"), F("etc/arch", f"arch={arch}\n")])
        md = lo.image([lay], arch, var, "multiplatform " + tag)
        plat = {"architecture": arch, "os": "linux"}
        if var:
            plat["variant"] = var
        ents.append((md, plat))
    d = lo.index(ents)
    lo.tag(d, "v1")
    add("fixtures/multiplatform", "index", d, lo,
        "OCI index: linux/amd64, linux/arm64/v8, linux/arm/v7; /platform differs",
        {"files": {"linux/amd64": {"platform": "amd64\n"},
                   "linux/arm64/v8": {"platform": "arm64/v8\n"},
                   "linux/arm/v7": {"platform": "arm/v7\n"}}})

    zl = zstd_layer([D("z"), F("z/zstd.txt", text("zstd", 200)), F("z/zstd.bin", noise("z", 5000))])
    gl = gz_layer([D("g"), F("g/gzip.txt", text("gzip", 100))])
    lo, d = single("zstd", [zl, gl], "zstd")
    add("fixtures/zstd", "oci", d, lo, "one tar+zstd layer then one tar+gzip layer, OCI")

    dl = gz_layer([D("dup"), F("dup/file.txt", "I am listed twice\n")])
    tl = gz_layer([F("top.txt", "on top of the duplicated layer\n")])
    lo, d = single("duplayer", [dl, tl, dl], "duplayer")
    add("fixtures/duplayer", "v2s2", d, lo,
        "the same layer blob listed twice (layers 0 and 2; diff_ids too)", push="skopeo-or-curl")

    b1, b2 = base_layers()
    for x in "abc":
        own = gz_layer([F(f"shared-{x}.txt", f"I am image {x}\n")])
        lo, d = single(f"shared-{x}", [b1, b2, own], f"shared-{x}")
        add(f"fixtures/shared-{x}", "v2s2", d, lo,
            "2 base layers identical in shared-a/b/c, plus one own layer")

    sl = gz_layer([D("secret"), F("secret/secret.txt", "only with credentials\n")])
    lo, d = single("secret", [sl], "secret")
    add("private/secret", "v2s2", d, lo,
        "needs Basic credentials at the token service to pull via the token instance")

    mm = multimember_layer()
    lo, d = single("multimember", [mm], "multimember")
    add("fixtures/multimember", "oci", d, lo,
        "one gzip layer made of two concatenated gzip members (split mid tar block)")
    return specs


# --- pushing and reading back ------------------------------------------------

def curl(args, data=None, check=True):
    r = subprocess.run(["curl", "-sS", "--max-time", "30"] + args, input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise RuntimeError(f"curl {' '.join(args)}: {r.stderr.decode(errors='replace')}")
    return r


def skopeo_push(spec, plain, policy):
    args = ["skopeo", "--policy", policy, "copy", "--quiet", "--dest-tls-verify=false",
            "--dest-no-creds"]
    if spec["format"] == "v2s2":
        args += ["--format", "v2s2"]
    elif spec["format"] == "index":
        args += ["--all"]
    else:
        args += ["--format", "oci"]
    args += [f"oci:{spec['dir']}:{spec['tag']}", f"docker://{plain}/{spec['repo']}:{spec['tag']}"]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode, r.stdout.decode(errors="replace")


def curl_push_blob(plain, repo, data):
    d = sha256(data)
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-I", f"http://{plain}/v2/{repo}/blobs/{d}"])
    if r.stdout.decode() == "200":
        return
    r = curl(["-D", "-", "-o", "/dev/null", "-X", "POST", f"http://{plain}/v2/{repo}/blobs/uploads/"])
    loc = None
    for line in r.stdout.decode().splitlines():
        if line.lower().startswith("location:"):
            loc = line.split(":", 1)[1].strip()
    if not loc:
        raise RuntimeError(f"blob upload to {repo}: no Location: {r.stdout!r}")
    if loc.startswith("/"):
        loc = f"http://{plain}{loc}"
    loc += ("&" if "?" in loc else "?") + "digest=" + d
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H",
              "Content-Type: application/octet-stream", "--data-binary", "@-", loc], data=data)
    if r.stdout.decode() != "201":
        raise RuntimeError(f"blob PUT {repo} {d}: HTTP {r.stdout.decode()}")


def curl_push(spec, plain, fmt_docker):
    """Push an OCI layout's single image by hand (blobs, config, manifest)."""
    lo = spec["dir"]
    blob = lambda d: open(os.path.join(lo, "blobs", "sha256", d[7:]), "rb").read()
    m = json.loads(blob(spec["local_digest"]))
    if fmt_docker:
        m["mediaType"] = MT_D2_MANIFEST
        m["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
        for l in m["layers"]:
            l["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    seen = set()
    for desc in [m["config"]] + m["layers"]:
        if desc["digest"] not in seen:
            seen.add(desc["digest"])
            curl_push_blob(plain, spec["repo"], blob(desc["digest"]))
    # Docker: re-serialised (3-space indent, like old docker); OCI: the local bytes.
    body = json.dumps(m, indent=3).encode() if fmt_docker else blob(spec["local_digest"])
    r = curl(["-o", "/dev/stderr", "-w", "%{http_code}", "-X", "PUT", "-H",
              f"Content-Type: {m['mediaType']}", "--data-binary", "@-",
              f"http://{plain}/v2/{spec['repo']}/manifests/{spec['tag']}"], data=body)
    if r.stdout.decode() != "201":
        raise RuntimeError(f"manifest PUT {spec['repo']}: HTTP {r.stdout.decode()} "
                           f"{r.stderr.decode(errors='replace')}")


def get_manifest(plain, repo, ref):
    r = curl(["-D", "/dev/stderr", "-H", f"Accept: {ACCEPT}",
              f"http://{plain}/v2/{repo}/manifests/{ref}"])
    body = r.stdout
    hdr = r.stderr.decode(errors="replace")
    status = hdr.split("\n", 1)[0]
    if " 200" not in status:
        raise RuntimeError(f"GET manifest {repo}:{ref}: {status} {body[:300]!r}")
    served = None
    for line in hdr.splitlines():
        if line.lower().startswith("docker-content-digest:"):
            served = line.split(":", 1)[1].strip()
    d = sha256(body)
    if served and served != d:
        raise RuntimeError(f"{repo}:{ref}: Docker-Content-Digest {served} != sha256(body) {d}")
    return body, d


def get_blob(plain, repo, digest):
    r = curl(["-L", f"http://{plain}/v2/{repo}/blobs/{digest}"])
    if sha256(r.stdout) != digest:
        raise RuntimeError(f"blob {repo}@{digest}: content does not match its digest")
    return r.stdout


def describe_image(plain, repo, body, digest):
    m = json.loads(body)
    cfg = json.loads(get_blob(plain, repo, m["config"]["digest"]))
    diff_ids = cfg["rootfs"]["diff_ids"]
    if len(diff_ids) != len(m["layers"]):
        raise RuntimeError(f"{repo}: {len(m['layers'])} layers but {len(diff_ids)} diff_ids")
    return {
        "digest": digest,
        "media_type": m.get("mediaType"),
        "size": len(body),
        "config_digest": m["config"]["digest"],
        "config": {"digest": m["config"]["digest"], "size": m["config"]["size"],
                   "media_type": m["config"]["mediaType"]},
        "platform": {k: cfg[k] for k in ("os", "architecture", "variant") if k in cfg},
        "layers": [{"digest": l["digest"], "size": l["size"], "media_type": l["mediaType"],
                    "diff_id": did} for l, did in zip(m["layers"], diff_ids)],
    }


def read_back(plain, spec):
    body, digest = get_manifest(plain, spec["repo"], spec["tag"])
    m = json.loads(body)
    out = {"name": spec["repo"].split("/", 1)[1], "repo": spec["repo"], "tag": spec["tag"],
           "format": spec["format"], "description": spec["description"],
           "local_digest": spec["local_digest"], "pushed_with": spec.get("pushed_with")}
    mt = m.get("mediaType")
    if mt in (MT_OCI_INDEX, MT_D2_LIST):
        out.update({"digest": digest, "media_type": mt, "size": len(body), "manifests": []})
        for ent in m["manifests"]:
            b2, d2 = get_manifest(plain, spec["repo"], ent["digest"])
            if d2 != ent["digest"]:
                raise RuntimeError(f"{spec['repo']}: child {ent['digest']} served as {d2}")
            child = describe_image(plain, spec["repo"], b2, d2)
            child["platform"] = ent.get("platform", {})
            out["manifests"].append(child)
    else:
        out.update(describe_image(plain, spec["repo"], body, digest))
        del out["platform"]
        want = {"v2s2": MT_D2_MANIFEST, "oci": MT_OCI_MANIFEST}[spec["format"]]
        if out["media_type"] != want:
            raise RuntimeError(f"{spec['repo']}: served as {out['media_type']}, wanted {want}")
    if spec["expect"]:
        out["expect"] = spec["expect"]
    return out


def check_local_diff_ids(spec, fx):
    """The config we built is what the registry serves (skopeo keeps configs)."""
    lo = spec["dir"]
    blob = lambda d: open(os.path.join(lo, "blobs", "sha256", d[7:]), "rb").read()
    top = json.loads(blob(spec["local_digest"]))
    mans = [json.loads(blob(m["digest"])) for m in top["manifests"]] if "manifests" in top else [top]
    locals_ = [[l["digest"] for l in mm["layers"]] for mm in mans]
    served = [[l["digest"] for l in x["layers"]] for x in fx.get("manifests", [fx])]
    if locals_ != served:
        raise RuntimeError(f"{spec['repo']}: served layer blobs {served} differ from local {locals_}")


# --- the signed image: a cosign signature tag, an SBOM referrer, its signature --

MT_EMPTY = "application/vnd.oci.empty.v1+json"
MT_SPDX = "application/spdx+json"
MT_COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIGNED_REPO = "signed/app"


def canon(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def build_signed(ocidir):
    """The signed image and its artifacts, made by hand as cosign and an SBOM
    tool would (signing.py): returns {"docs": [(tag_or_None, media_type,
    bytes)] in push order, "blobs": {digest: bytes}, "info": fixtures.json's
    "signed" section}. Pushed with curl: the registry keeps every byte."""
    import signing
    blobs = {}

    def blob(data, mt, **extra):
        blobs[sha256(data)] = data
        return dict({"mediaType": mt, "digest": sha256(data), "size": len(data)}, **extra)

    layer = gz_layer([D("app"), F("app/hello.txt", "a signed image\n"),
                      F("app/data.bin", noise("signed", 3000))])
    cfg = canon({"created": CREATED, "architecture": "amd64", "os": "linux",
                 "config": {"Cmd": ["/bin/sh"]},
                 "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                 "history": [{"created": CREATED, "created_by": "occy-lab signed layer 0"}]})
    image = canon({"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                   "config": blob(cfg, MT_OCI_CONFIG),
                   "layers": [blob(layer.blob, layer.media_type)]})
    image_desc = {"mediaType": MT_OCI_MANIFEST, "digest": sha256(image), "size": len(image)}
    key = signing.lab_key()
    ident = "occy-lab/" + SIGNED_REPO

    # cosign's tag schema: sha256-<hex>.sig, an image manifest whose layer is
    # the simple signing payload, the signature in its annotation
    pl = signing.payload(ident, image_desc["digest"])
    sig_cfg = canon({"architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                     "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                     "rootfs": {"type": "layers", "diff_ids": [sha256(pl)]}})
    sig = canon({"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                 "config": blob(sig_cfg, MT_OCI_CONFIG),
                 "layers": [blob(pl, signing.MT_SIMPLESIGNING,
                                 annotations={signing.SIG_ANNOTATION: signing.sign(key, pl)})]})
    sig_tag = "sha256-" + image_desc["digest"][7:] + ".sig"

    # an SBOM as an OCI 1.1 artifact with a subject, listed by the fallback
    # tag sha256-<hex> (the lab's registry has no referrers API)
    spdx = canon({"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
                  "name": SIGNED_REPO, "documentNamespace": "https://occystrap.invalid/lab/signed",
                  "creationInfo": {"created": CREATED, "creators": ["Tool: occy-lab fixtures.py"]},
                  "packages": [{"SPDXID": f"SPDXRef-Package-{i}", "name": f"lab-package-{i}",
                                "versionInfo": f"1.{i}.0", "downloadLocation": "NOASSERTION",
                                "licenseConcluded": "Apache-2.0"} for i in range(40)]})
    empty = b"{}"
    ann = {"org.opencontainers.image.created": CREATED}
    sbom = canon({"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST, "artifactType": MT_SPDX,
                  "config": blob(empty, MT_EMPTY), "layers": [blob(spdx, MT_SPDX)],
                  "subject": image_desc, "annotations": ann})
    sbom_desc = {"mediaType": MT_OCI_MANIFEST, "digest": sha256(sbom), "size": len(sbom)}
    fallback = canon({"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
                      "manifests": [dict(sbom_desc, artifactType=MT_SPDX, annotations=ann)]})

    # a signature of the SBOM: a referrer whose subject is the SBOM manifest
    # (cosign's OCI 1.1 signature artifact), listed by the SBOM's fallback tag
    spl = signing.payload(ident, sbom_desc["digest"])
    ssig = canon({"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                  "artifactType": MT_COSIGN_SIG_ARTIFACT, "config": blob(empty, MT_EMPTY),
                  "layers": [blob(spl, signing.MT_SIMPLESIGNING,
                                  annotations={signing.SIG_ANNOTATION: signing.sign(key, spl)})],
                  "subject": sbom_desc, "annotations": ann})
    ssig_desc = {"mediaType": MT_OCI_MANIFEST, "digest": sha256(ssig), "size": len(ssig)}
    sfallback = canon({"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
                       "manifests": [dict(ssig_desc, artifactType=MT_COSIGN_SIG_ARTIFACT,
                                          annotations=ann)]})

    fb_tag = "sha256-" + image_desc["digest"][7:]
    sfb_tag = "sha256-" + sbom_desc["digest"][7:]
    docs = [("v1", MT_OCI_MANIFEST, image), (sig_tag, MT_OCI_MANIFEST, sig),
            (None, MT_OCI_MANIFEST, sbom), (fb_tag, MT_OCI_INDEX, fallback),
            (None, MT_OCI_MANIFEST, ssig), (sfb_tag, MT_OCI_INDEX, sfallback)]
    os.makedirs(ocidir, exist_ok=True)
    with open(os.path.join(ocidir, "cosign.pub"), "w") as f:
        f.write(signing.public_pem(key))
    info = {
        "repo": SIGNED_REPO, "tag": "v1", "digest": image_desc["digest"],
        "media_type": MT_OCI_MANIFEST, "size": len(image),
        "layers": [{"digest": layer.digest, "size": len(layer.blob), "diff_id": layer.diff_id}],
        "public_key": signing.public_pem(key),
        "public_key_file": os.path.join(ocidir, "cosign.pub"),
        "identity": ident,
        "signature": {"tag": sig_tag, "digest": sha256(sig), "size": len(sig),
                      "payload_digest": sha256(pl)},
        "fallback": {"tag": fb_tag, "digest": sha256(fallback), "size": len(fallback)},
        "sbom": {"digest": sbom_desc["digest"], "size": sbom_desc["size"],
                 "artifact_type": MT_SPDX, "blob_digest": sha256(spdx), "blob_size": len(spdx)},
        "sbom_signature": {"digest": ssig_desc["digest"], "size": ssig_desc["size"],
                           "artifact_type": MT_COSIGN_SIG_ARTIFACT,
                           "payload_digest": sha256(spl)},
        "sbom_fallback": {"tag": sfb_tag, "digest": sha256(sfallback), "size": len(sfallback)},
        "description": "an OCI image with a cosign signature tag, an SBOM referrer (SPDX) "
                       "listed by the fallback tag, and a signature of the SBOM",
    }
    return {"docs": docs, "blobs": blobs, "info": info}


def push_signed(plain, s):
    """Blobs first, then each manifest with its bytes, by tag or by digest."""
    for data in s["blobs"].values():
        curl_push_blob(plain, SIGNED_REPO, data)
    for tag, mt, body in s["docs"]:
        ref = tag or sha256(body)
        r = curl(["-o", "/dev/stderr", "-w", "%{http_code}", "-X", "PUT", "-H",
                  f"Content-Type: {mt}", "--data-binary", "@-",
                  f"http://{plain}/v2/{SIGNED_REPO}/manifests/{ref}"], data=body)
        if r.stdout.decode() != "201":
            raise RuntimeError(f"manifest PUT {SIGNED_REPO}:{ref}: HTTP {r.stdout.decode()} "
                               f"{r.stderr.decode(errors='replace')}")
    for tag, _, body in s["docs"]:
        _, d = get_manifest(plain, SIGNED_REPO, tag or sha256(body))
        if d != sha256(body):
            raise RuntimeError(f"{SIGNED_REPO}:{tag}: served as {d}, pushed {sha256(body)}")


def check_signed(plain, info):
    """The signed image and every artifact still served at its digest."""
    refs = [(info["tag"], info["digest"]), (info["signature"]["tag"], info["signature"]["digest"]),
            (info["fallback"]["tag"], info["fallback"]["digest"]),
            (info["sbom"]["digest"], info["sbom"]["digest"]),
            (info["sbom_signature"]["digest"], info["sbom_signature"]["digest"]),
            (info["sbom_fallback"]["tag"], info["sbom_fallback"]["digest"])]
    for ref, want in refs:
        try:
            _, d = get_manifest(plain, info["repo"], ref)
        except RuntimeError as e:
            log(f"{info['repo']}: {e}")
            return False
        if d != want:
            log(f"{info['repo']}:{ref} now {d}, recorded {want}")
            return False
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-I",
              f"http://{plain}/v2/{info['repo']}/blobs/{info['sbom']['blob_digest']}"])
    return r.stdout.decode() == "200"


# --- main --------------------------------------------------------------------

def read_env(lab):
    env = {}
    with open(os.path.join(lab, "env.sh")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                k, v = line[7:].split("=", 1)
                env[k] = v.strip('"')
    return env


def check(lab, plain):
    stamp = os.path.join(lab, "storage", "occy-lab-fixtures.json")
    try:
        with open(stamp) as f:
            fx = json.load(f)
    except (OSError, ValueError):
        return False
    if fx.get("generator") != generator_id():
        log(f"generator changed ({fx.get('generator')} -> {generator_id()})")
        return False
    for repo, f in fx["fixtures"].items():
        try:
            _, d = get_manifest(plain, repo, f["tag"])
        except RuntimeError as e:
            log(f"{repo}: {e}")
            return False
        if d != f["digest"]:
            log(f"{repo}:{f['tag']} now {d}, recorded {f['digest']}")
            return False
        blobs = [l["digest"] for m in f.get("manifests", [f]) for l in m["layers"]]
        blobs += [m["config_digest"] for m in f.get("manifests", [f])]
        for b in sorted(set(blobs)):
            r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-I",
                      f"http://{plain}/v2/{repo}/blobs/{b}"])
            if r.stdout.decode() != "200":
                log(f"{repo}: blob {b} missing")
                return False
    if "signed" not in fx or not check_signed(plain, fx["signed"]):
        return False
    shutil.copyfile(stamp, os.path.join(lab, "fixtures.json"))
    return True


def main(argv):
    do_check = False
    if argv and argv[0] == "--check":
        do_check = True
        argv = argv[1:]
    if len(argv) != 1:
        print("usage: fixtures.py [--check] LAB_DIR", file=sys.stderr)
        return 2
    lab = os.path.abspath(argv[0])
    plain = read_env(lab)["LAB_PLAIN"]
    if do_check:
        return 0 if check(lab, plain) else 1

    t0 = time.time()
    ocidir = os.path.join(lab, "oci")
    os.makedirs(ocidir, exist_ok=True)
    specs = build_all(ocidir)
    signed = build_signed(os.path.join(ocidir, "signed"))
    log(f"built {len(specs)} OCI layouts and the signed image in {time.time() - t0:.1f}s")

    policy = os.path.join(lab, "oci", "policy.json")
    with open(policy, "w") as f:
        json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)

    def push(spec):
        if spec["push"] == "curl":
            curl_push(spec, plain, spec["format"] == "v2s2")
            spec["pushed_with"] = "curl"
            return
        rc, out = skopeo_push(spec, plain, policy)
        if rc == 0:
            spec["pushed_with"] = "skopeo"
            return
        if spec["push"] == "skopeo-or-curl":
            log(f"{spec['repo']}: skopeo refused ({out.strip()}); pushing with curl")
            curl_push(spec, plain, spec["format"] == "v2s2")
            spec["pushed_with"] = "curl"
            return
        raise RuntimeError(f"skopeo push of {spec['repo']} failed:\n{out}")

    # Push the images sharing blobs one after the other (so the later ones reuse
    # blobs), everything else in parallel.
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(push, s) for s in specs if not s["repo"].startswith("fixtures/shared-")]
        shared = [s for s in specs if s["repo"].startswith("fixtures/shared-")]
        futs.append(ex.submit(lambda: [push(s) for s in shared]))
        futs.append(ex.submit(push_signed, plain, signed))
        for f in futs:
            f.result()
    log(f"pushed in {time.time() - t0:.1f}s")

    out = {"generator": generator_id(), "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                      time.gmtime()),
           "registry_note": "digests are as served by the lab registries (shared storage)",
           "fixtures": {}}
    for spec in specs:
        fx = read_back(plain, spec)
        check_local_diff_ids(spec, fx)
        out["fixtures"][spec["repo"]] = fx
        kind = fx["format"]
        log(f"{spec['repo']}:{spec['tag']} {kind} {fx['digest']}"
            + ("" if fx["digest"] == spec["local_digest"] else f" (local {spec['local_digest']})"))
    out["signed"] = signed["info"]
    log(f"{SIGNED_REPO}:v1 signed {signed['info']['digest']} (signature, SBOM, SBOM signature)")
    data = json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    for p in (os.path.join(lab, "fixtures.json"), os.path.join(lab, "storage",
                                                               "occy-lab-fixtures.json")):
        with open(p + ".tmp", "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(p + ".tmp", p)
    log(f"done in {time.time() - t0:.1f}s -> {os.path.join(lab, 'fixtures.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
