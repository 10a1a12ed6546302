#!/usr/bin/python3
# corpus.py - build the benchmark corpus once and push it to the lab registry.
#
#   corpus.py build CORPUS_DIR            build the images into CORPUS_DIR/oci (an OCI
#                                         layout, one ref name per image) unless
#                                         CORPUS_DIR/corpus.json says it is already there
#   corpus.py push CORPUS_DIR REGISTRY    push every image the plain-HTTP REGISTRY does not
#                                         already serve with exactly our layers, then write
#                                         CORPUS_DIR/images.json (what bench/run.sh measures)
#
# The images (bench/README.md has the details):
#   realistic   4 layers cut from this machine's /usr (libs, binaries, interpreters and
#               headers, docs), ~360 MB of tar
#   big         one ~1 GiB layer: 40% seeded pseudo-random bytes, 60% text from /usr
#   many        60 small layers (20-400 KB of files each)
#   shared-1..3 realistic's two biggest layers plus one small layer of their own
# Layers are PAX tars (entries in path order, mtime 1700000000, owner root:root) compressed
# with `gzip -6 -n` (docker's default level, no name or time stamp), so a corpus built twice
# from the same /usr has the same digests. Run with Debian's /usr/bin/python3 (stdlib only).
import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import stat as S
import subprocess
import sys
import tarfile
import time
import urllib.request

GENERATOR_VERSION = "bench-corpus-1"
MTIME = 1700000000
MiB = 1 << 20
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_D2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
PUSH_FORMAT = "v2s2"   # skopeo --format: the registry serves Docker schema 2 manifests

# Where each image goes in the registry: name -> (repo, tag).
TARGETS = {
    "realistic": ("bench/realistic", "v1"),
    "big": ("bench/big", "v1"),
    "many": ("bench/many", "v1"),
    "shared-1": ("bench/shared", "1"),
    "shared-2": ("bench/shared", "2"),
    "shared-3": ("bench/shared", "3"),
}

# realistic: (layer name, source trees, budget of file bytes). Each tree is walked in path
# order and files are taken until the layer's budget is reached.
REALISTIC = [
    ("libs", ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"], 150 * MiB),
    ("bin", ["/usr/bin", "/usr/sbin", "/usr/libexec"], 100 * MiB),
    ("lang", ["/usr/lib/python3", "/usr/lib/python3.11", "/usr/share/perl", "/usr/include"],
     50 * MiB),
    ("docs", ["/usr/share/doc", "/usr/share/man", "/usr/share/locale", "/usr/share/zoneinfo"],
     30 * MiB),
]
BIG_BYTES = 1 << 30          # file data in the big layer
BIG_RANDOM_SHARE = 0.40
MANY_LAYERS = 60
MAX_FILE = 48 * MiB          # skip larger files from /usr


def log(msg):
    print(f"corpus: {msg}", flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def script_stamp():
    with open(os.path.abspath(__file__), "rb") as f:
        return f"{GENERATOR_VERSION}+{hashlib.sha256(f.read()).hexdigest()[:16]}"


# --- walking /usr ----------------------------------------------------------------------

def walk_sorted(root):
    """Yield (path, lstat) for root and everything under it, in path order."""
    try:
        st = os.lstat(root)
    except OSError:
        return
    yield root, st
    if not os.path.isdir(root) or os.path.islink(root):
        return
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return
    for n in names:
        yield from walk_sorted(os.path.join(root, n))


def pick_files(roots, budget):
    """Paths (dirs, symlinks, regular files) from roots, in order, until the regular files
    reach budget bytes."""
    out, total, inodes = [], 0, set()
    for root in roots:
        for path, st in walk_sorted(root):
            if total >= budget:
                return out, total
            if S.S_ISDIR(st.st_mode) or S.S_ISLNK(st.st_mode):
                out.append(path)
            elif S.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE and os.access(path, os.R_OK):
                out.append(path)
                if (st.st_dev, st.st_ino) not in inodes:   # a hard link adds no data
                    inodes.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return out, total


# --- writing a gzip layer -----------------------------------------------------------------

class HashingPipe:
    """File-like: counts and hashes what tarfile writes (the diff_id), passes it to gzip."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        self.f.write(b)
        return len(b)


def norm(ti):
    ti.mtime = MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def write_layer(blobdir, key, fill):
    """Run fill(tarfile) into `gzip -6 -n`; store the blob. Returns the layer descriptor."""
    tmp = os.path.join(blobdir, f".tmp-{key}")
    with open(tmp, "wb") as out:
        gz = subprocess.Popen(["gzip", "-6", "-n", "-c"], stdin=subprocess.PIPE, stdout=out,
                              bufsize=0)
        pipe = HashingPipe(gz.stdin)
        try:
            with tarfile.open(fileobj=pipe, mode="w|", format=tarfile.PAX_FORMAT,
                              bufsize=1 * MiB) as tf:
                fill(tf)
        finally:
            gz.stdin.close()
        if gz.wait() != 0:
            raise RuntimeError(f"gzip failed for layer {key}")
    hexd = sha256_file(tmp)
    size = os.path.getsize(tmp)
    os.replace(tmp, os.path.join(blobdir, hexd))
    return {"key": key, "digest": "sha256:" + hexd, "size": size,
            "diff_id": "sha256:" + pipe.h.hexdigest(), "tar_size": pipe.n}


def add_paths(tf, paths, prefix_from="/", prefix_to=""):
    """Add /usr paths to tf with normalised metadata (hard links kept as hard links)."""
    for p in paths:
        arc = prefix_to + os.path.relpath(p, prefix_from)
        try:
            ti = tf.gettarinfo(p, arcname=arc)
        except OSError:
            continue
        if ti is None:
            continue
        norm(ti)
        if ti.isreg():
            try:
                with open(p, "rb") as f:
                    tf.addfile(ti, f)
            except OSError:
                continue
        else:
            tf.addfile(ti)


def add_dir(tf, name, mode=0o755):
    ti = norm(tarfile.TarInfo(name))
    ti.type = tarfile.DIRTYPE
    ti.mode = mode
    tf.addfile(ti)


def add_bytes(tf, name, data, mode=0o644):
    import io
    ti = norm(tarfile.TarInfo(name))
    ti.size = len(data)
    ti.mode = mode
    tf.addfile(ti, io.BytesIO(data))


class Gen:
    """Readable stream of n generated bytes (random or cycling text) for tarfile.addfile."""

    def __init__(self, n, rng=None, pool=None, start=0):
        self.left, self.rng, self.pool, self.pos = n, rng, pool, start

    def read(self, k=-1):
        if k < 0 or k > self.left:
            k = self.left
        self.left -= k
        if self.rng is not None:
            return self.rng.randbytes(k)
        out = bytearray()
        while len(out) < k:
            take = min(k - len(out), len(self.pool) - self.pos)
            out += self.pool[self.pos:self.pos + take]
            self.pos = (self.pos + take) % len(self.pool)
        return bytes(out)


def text_pool(limit=64 * MiB):
    """Plain text from /usr (headers, Python sources, copyright files), in path order."""
    buf = bytearray()
    for root in ["/usr/include", "/usr/lib/python3.11", "/usr/share/doc"]:
        for path, st in walk_sorted(root):
            if len(buf) >= limit:
                return bytes(buf)
            if not S.S_ISREG(st.st_mode) or st.st_size > 4 * MiB:
                continue
            if not (path.endswith((".h", ".py", ".txt", ".md", ".rst"))
                    or os.path.basename(path) in ("copyright", "README", "changelog")):
                continue
            try:
                with open(path, "rb") as f:
                    buf += f.read()
            except OSError:
                pass
    if len(buf) < MiB:   # a bare machine: still text-like, still compressible
        words = [b"occystrap", b"layer", b"registry", b"manifest", b"digest", b"tar", b"\n"]
        r = random.Random(7)
        while len(buf) < 8 * MiB:
            buf += b" ".join(r.choice(words) for _ in range(1000))
    return bytes(buf)


# --- the images --------------------------------------------------------------------------

def fill_big(tf):
    rng = random.Random(20240601)
    pool = text_pool()
    add_dir(tf, "data")
    total = rnd = 0
    i = 0
    tpos = 0
    while total < BIG_BYTES:
        size = min(rng.randint(2 * MiB, 24 * MiB), BIG_BYTES - total)
        if rnd < BIG_RANDOM_SHARE * (total + size):
            add_file_gen(tf, f"data/random-{i:03d}.bin", Gen(size, rng=random.Random(i)))
            rnd += size
        else:
            add_file_gen(tf, f"data/text-{i:03d}.txt", Gen(size, pool=pool, start=tpos))
            tpos = (tpos + size) % len(pool)
        total += size
        i += 1


def add_file_gen(tf, name, gen):
    ti = norm(tarfile.TarInfo(name))
    ti.size = gen.left
    ti.mode = 0o644
    tf.addfile(ti, gen)


def many_sources():
    files = []
    for root in ["/usr/bin", "/usr/share/doc"]:
        for path, st in walk_sorted(root):
            if S.S_ISREG(st.st_mode) and 0 < st.st_size <= 256 * 1024:
                files.append((path, st.st_size))
    return files


def fill_many(i, files):
    """Layer i of `many`: srv/layer-NN/ with 20-400 KB of files, a rotating slice of files."""
    budget = 20 * 1024 * (1 + (i * 7) % 20)

    def fill(tf):
        add_dir(tf, "srv")
        add_dir(tf, f"srv/layer-{i:02d}")
        add_bytes(tf, f"srv/layer-{i:02d}/id", f"layer {i}\n".encode())
        if not files:
            add_file_gen(tf, f"srv/layer-{i:02d}/data", Gen(budget, rng=random.Random(i)))
            return
        j = (i * 37) % len(files)
        got, names = 0, set()
        while got < budget and len(names) < len(files):
            p, sz = files[j]
            j = (j + 1) % len(files)
            base = p.replace("/", "_").lstrip("_")
            if base in names:
                continue
            names.add(base)
            ti = tf.gettarinfo(p, arcname=f"srv/layer-{i:02d}/{base}")
            norm(ti)
            with open(p, "rb") as f:
                tf.addfile(ti, f)
            got += sz
    return fill


def fill_shared_own(n):
    """shared-N's own small layer: etc/shared-N plus ~2 MB of man pages under
    etc/shared-N.d/ (the N-th third of the first 6 MiB of /usr/share/man)."""
    def fill(tf):
        paths, _ = pick_files(["/usr/share/man", "/usr/share/doc"], 6 * MiB)
        third = paths[len(paths) * (n - 1) // 3:len(paths) * n // 3]
        add_dir(tf, "etc")
        add_bytes(tf, f"etc/shared-{n}", f"shared image {n}\n".encode())
        add_dir(tf, f"etc/shared-{n}.d")
        add_paths(tf, third, prefix_to=f"etc/shared-{n}.d/")
    return fill


def fill_realistic(idx):
    name, roots, budget = REALISTIC[idx]   # the layers' trees do not overlap

    def fill(tf):
        paths, _ = pick_files(roots, budget)
        parents = sorted({os.path.dirname(p) for p in roots if os.path.exists(p)})
        for d in sorted({a for p in parents for a in ancestors(p)}):
            add_dir(tf, d.lstrip("/"))
        add_paths(tf, paths)
    return fill


def ancestors(p):
    """/usr/lib -> ["/usr", "/usr/lib"]"""
    out = []
    while p not in ("/", ""):
        out.append(p)
        p = os.path.dirname(p)
    return out


def write_json_blob(blobdir, obj):
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobdir, hexd), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + hexd, "size": len(data)}


def image_manifest(blobdir, name, layers):
    config = {
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"], "Labels": {"occystrap.bench": name}},
        "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"bench layer {l['key']}"}
                    for l in layers],
    }
    cd = write_json_blob(blobdir, config)
    manifest = {
        "schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG, **cd},
        "layers": [{"mediaType": MT_OCI_LAYER, "digest": l["digest"], "size": l["size"]}
                   for l in layers],
    }
    md = write_json_blob(blobdir, manifest)
    return md


def build(corpus):
    stamp_path = os.path.join(corpus, "corpus.json")
    stamp = script_stamp()
    oci = os.path.join(corpus, "oci")
    try:
        with open(stamp_path) as f:
            old = json.load(f)
        blobs = os.path.join(oci, "blobs", "sha256")
        if old.get("generator") == stamp and all(
                os.path.exists(os.path.join(blobs, l["digest"][7:]))
                for im in old["images"].values() for l in im["layers"]):
            log(f"corpus up to date ({stamp_path})")
            return
    except (OSError, ValueError, KeyError):
        pass
    log("building the corpus (once; about a minute or two on 2 cores)")
    t0 = time.time()
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    shutil.rmtree(oci, ignore_errors=True)
    blobdir = os.path.join(oci, "blobs", "sha256")
    os.makedirs(blobdir)
    with open(os.path.join(oci, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')

    mfiles = many_sources()
    jobs = [("big", fill_big)]
    jobs += [(f"realistic-{REALISTIC[i][0]}", fill_realistic(i)) for i in range(len(REALISTIC))]
    jobs += [(f"shared-{n}-own", fill_shared_own(n)) for n in (1, 2, 3)]
    jobs += [(f"many-{i:02d}", fill_many(i, mfiles)) for i in range(MANY_LAYERS)]
    done = {}
    # two workers: the heavy lifting is in the gzip child processes, one per layer
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        futs = {ex.submit(write_layer, blobdir, k, fn): k for k, fn in jobs}
        for fu in concurrent.futures.as_completed(futs):
            l = fu.result()
            done[l["key"]] = l
            if not l["key"].startswith("many-"):
                log(f"layer {l['key']}: tar {l['tar_size'] / 1e6:.1f} MB, "
                    f"gzip {l['size'] / 1e6:.1f} MB ({time.time() - t0:.0f}s)")

    real = [done[f"realistic-{r[0]}"] for r in REALISTIC]
    two_big = sorted(real, key=lambda l: (-l["size"], l["key"]))[:2]
    two_big = [l for l in real if l in two_big]          # keep realistic's order
    images = {
        "realistic": real,
        "big": [done["big"]],
        "many": [done[f"many-{i:02d}"] for i in range(MANY_LAYERS)],
    }
    for n in (1, 2, 3):
        images[f"shared-{n}"] = two_big + [done[f"shared-{n}-own"]]

    index = {"schemaVersion": 2, "manifests": []}
    meta = {}
    for name, layers in images.items():
        md = image_manifest(blobdir, name, layers)
        index["manifests"].append({"mediaType": MT_OCI_MANIFEST, **md,
                                   "annotations": {"org.opencontainers.image.ref.name": name}})
        meta[name] = {"local_digest": md["digest"], "layers": layers}
    with open(os.path.join(oci, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True, indent=1)
    tar_total = sum(l["tar_size"] for l in real)
    if tar_total < 100e6:
        log(f"WARNING: realistic is only {tar_total / 1e6:.0f} MB of tar (this /usr is small)")
    with open(stamp_path + ".tmp", "w") as f:
        json.dump({"generator": stamp, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime()),
                   "build_seconds": round(time.time() - t0, 1), "images": meta}, f,
                  sort_keys=True, indent=1)
    os.replace(stamp_path + ".tmp", stamp_path)
    log(f"corpus built in {time.time() - t0:.0f}s")


# --- pushing ---------------------------------------------------------------------------

def served_layers(registry, repo, tag):
    """Layer digests of repo:tag as the registry serves it, or None; plus manifest digest."""
    req = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}",
                                 headers={"Accept": MT_D2_MANIFEST + "," + MT_OCI_MANIFEST})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
    except Exception:
        return None, None
    try:
        m = json.loads(body)
        return [l["digest"] for l in m["layers"]], "sha256:" + hashlib.sha256(body).hexdigest()
    except (ValueError, KeyError):
        return None, None


def blob_present(registry, repo, digest):
    req = urllib.request.Request(f"http://{registry}/v2/{repo}/blobs/{digest}", method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status == 200
    except Exception:
        return False


def push(corpus, registry):
    with open(os.path.join(corpus, "corpus.json")) as f:
        meta = json.load(f)["images"]
    policy = os.path.join(corpus, "policy.json")
    with open(policy, "w") as f:
        json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
    out = {}
    for name, (repo, tag) in TARGETS.items():
        want = [l["digest"] for l in meta[name]["layers"]]
        have, mdigest = served_layers(registry, repo, tag)
        if have != want or not all(blob_present(registry, repo, d) for d in want):
            t0 = time.time()
            cmd = ["skopeo", "--policy", policy, "copy", "--quiet", "--dest-tls-verify=false",
                   "--dest-no-creds", "--format", PUSH_FORMAT,
                   f"oci:{os.path.join(corpus, 'oci')}:{name}",
                   f"docker://{registry}/{repo}:{tag}"]
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                raise RuntimeError(f"push of {name} failed: {r.stdout.decode(errors='replace')}")
            have, mdigest = served_layers(registry, repo, tag)
            if have != want:
                raise RuntimeError(f"{repo}:{tag} serves layers {have}, expected {want}")
            log(f"pushed {name} to {repo}:{tag} in {time.time() - t0:.1f}s")
        else:
            log(f"{repo}:{tag} already in the registry")
        layers = meta[name]["layers"]
        out[name] = {
            "repo": repo, "tag": tag, "manifest_digest": mdigest, "format": PUSH_FORMAT,
            "layers": [{k: l[k] for k in ("digest", "size", "diff_id", "tar_size")}
                       for l in layers],
            "gz_bytes": sum(l["size"] for l in layers),
            "tar_bytes": sum(l["tar_size"] for l in layers),
        }
    with open(os.path.join(corpus, "images.json.tmp"), "w") as f:
        json.dump(out, f, sort_keys=True, indent=1)
    os.replace(os.path.join(corpus, "images.json.tmp"), os.path.join(corpus, "images.json"))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "build":
        build(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "push":
        push(sys.argv[2], sys.argv[3])
    else:
        print(__doc__ or "usage: corpus.py build DIR | push DIR REGISTRY", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
