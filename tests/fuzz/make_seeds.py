#!/usr/bin/python3
"""make_seeds.py - write the synthetic seeds of tests/fuzz/corpus/.

The seeds that came from the lab (manifests, configs, store files, layer
tars of the fixtures, real WWW-Authenticate headers) were fetched once and
are kept as files; this script writes the hand-made ones, so they can be
made again: references, challenges, token answers, lists, configs,
catalogs, manifest files and small layer tars (python tarfile) with
whiteouts, opaque directories, symlinks, hard links, escapes and devices.

    /usr/bin/python3 tests/fuzz/make_seeds.py [CORPUS_DIR]

Seed format of each fuzzer: see the comment at the top of fuzz_<name>.c.
"""
import io
import os
import sys
import tarfile

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
SEP = b"OCCYLAYER\n"
H1 = "1" * 64
H2 = "2" * 64
H3 = "a" * 64
D1 = "sha256:" + H1
D2 = "sha256:" + H2


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- references: P0 [NUL P1 [NUL P2]] ----
REFS = {
    "busybox": "busybox",
    "tag": "busybox:1.36",
    "hub-org": "homeassistant/home-assistant:latest",
    "digest": "busybox@" + D1,
    "tag-digest": "quay.io/org/img:v1@" + D1,
    "port": "127.0.0.1:5000/fixtures/x:v1",
    "ipv6": "[::1]:5000/x:v1",
    "localhost": "localhost/a",
    "long-tag": "my-registry.example.com:443/team/app/api:2024.01.02",
    "separators": "a.b/c__d/e-f.g:T_a.g-1",
    "default-registry": "fixtures/x:v1\0registry.local:5000",
    "parts": "registry-1.docker.io\0library/busybox\0latest",
    "parts-digest": "quay.io\0org/img\0" + D2,
    "parts-hub": "Docker.IO\0busybox\0" + "x" * 128,
    "hub-localhost": "docker.io/localhost/x:t",
    "bad-upper": "quay.io/Org/img",
    "bad-scheme": "https://quay.io/x",
}
for k, v in REFS.items():
    put("ref", k, v)

# ---- manifests: [CONTENT-TYPE NUL] BODY ----
def desc(mt, d, size, extra=""):
    return '{"mediaType":"%s","digest":"%s","size":%d%s}' % (mt, d, size, extra)


IDX = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":['
       + ",".join([
           desc("application/vnd.oci.image.manifest.v1+json", D1, 5,
                ',"platform":{"os":"linux","architecture":"amd64"}'),
           desc("application/vnd.oci.image.manifest.v1+json", D2, 5,
                ',"platform":{"os":"linux","architecture":"arm64","variant":"v8"}'),
           desc("application/vnd.oci.image.manifest.v1+json", D1, 5,
                ',"platform":{"os":"linux","architecture":"arm","variant":"v6"}'),
           desc("application/vnd.oci.image.manifest.v1+json", D2, 5,
                ',"platform":{"os":"linux","architecture":"arm","variant":"v7"}'),
           desc("application/vnd.oci.image.manifest.v1+json", D1, 5,
                ',"platform":{"os":"unknown","architecture":"unknown"}'),
           desc("application/vnd.oci.image.manifest.v1+json", D2, 5),
       ]) + "]}")
put("manifest", "index-platforms", IDX)
put("manifest", "index-ct", "application/vnd.docker.distribution.manifest.list.v2+json\0" + IDX)
put("manifest", "image-no-mediatype",
    '{"schemaVersion":2,"config":%s,"layers":[%s]}' % (
        desc("application/vnd.oci.image.config.v1+json", D1, 2),
        desc("application/vnd.oci.image.layer.v1.tar+gzip", D2, 3)))
put("manifest", "schema1", '{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}')
put("manifest", "platform-line", "linux/arm/7\n" + IDX)
put("manifest", "config", '{"architecture":"arm64","variant":"v8","os":"linux",'
    '"rootfs":{"type":"layers","diff_ids":["%s","%s"]}}' % (D1, D2))

# ---- auth: HEADER [NUL USER [NUL PASS]] (the whole input is also a token answer) ----
AUTH = {
    "hub": 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
           'scope="repository:library/busybox:pull"',
    "basic": 'Basic realm="occy-lab-basic"',
    "several": 'Negotiate abc==, Basic realm="r", Bearer realm="https://x/t"',
    "escapes": 'Bearer realm="https://x/t",service="a \\"quoted\\" svc",error="insufficient_scope"',
    "bare": "Bearer realm=https://x/t,service=registry.local:5000",
    "spaces": 'Bearer realm = "https://x/t" , service = "s"  ,,scope="a"',
    "token": '{"token":"abc.def.ghi","access_token":"x","expires_in":300,"issued_at":"2024-01-01T00:00:00Z"}',
    "access-token": '{"access_token":"xyz","expires_in":1e9}',
    "user-pass": 'Basic realm="x"\0occy\0lab-secret',
}
for k, v in AUTH.items():
    put("auth", k, v)

# ---- lists ----
put("listfile", "example",
    "# Example LIST\n\nbusybox:1.36\nlibrary/alpine:3.19  # comment\n"
    "quay.io/prometheus/node-exporter:v1.7.0\r\n"
    "\tregistry.internal:5000/team/app@" + D1 + "\n")
put("listfile", "bad-lines", "busybox:\nUPPER/case\n  # only a comment\nok#not-a-comment\n"
    "a\0b\n" + "x" * 300 + "\nlast-without-newline")

# ---- configs ----
put("config", "full",
    '{"registries":{"docker.io":{"endpoint":"mirror.internal:5000","insecure":false,'
    '"ca_cert":"/etc/ca.pem","username":"u","password":"p","concurrency":4,'
    '"requests_per_second":2.5}},"jobs":32,"retries":5,"stall_timeout":30}')
put("config", "aliases", '{"registries":{"docker.io":{},"registry-1.docker.io":{"insecure":true}}}')
put("config", "bad", '{"registries":{"x":{"username":"u"}},"jobz":1}')

# ---- store files ----
put("store", "catalog",
    '{"busybox": {"latest": "manifest-busybox-latest.json"},'
    ' "quay.io/org/img": {"v1": "manifest-quay.io_org_img-v1.json", "x": "../escape"}}')
put("store", "manifest-file",
    '[{"Config": "%s.json", "ImageName": "busybox", "Layers": ["%s/layer.tar", "%s/layer.tar"],'
    ' "Occystrap": {"registry": "registry-1.docker.io", "tag": "latest", "manifest_digest": "%s"},'
    ' "RepoTags": ["busybox:latest"]}]' % (H3, H1, H2, D1))
put("store", "manifest-escape",
    '[{"Config": "../../etc/passwd", "Layers": ["%s/../../x/layer.tar", "%s/layer.tgz"]}]' % (H1, H2))
put("store", "split-ref", "host:5000/img:sha256:%s\0{}" % H1)


# ---- layer tars: FLAGS, then tars separated by SEP ----
tarfile.RECORDSIZE = tarfile.BLOCKSIZE  # no padding beyond the end-of-archive blocks


def tar(entries, fmt=tarfile.GNU_FORMAT):
    """entries: (name, kind, arg) with kind file/dir/sym/hard/fifo/chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, arg in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.mode = 0o755 if kind == "dir" else 0o644
            data = None
            if kind == "file":
                data = arg.encode() if isinstance(arg, str) else arg
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                if arg is not None:
                    ti.mode = arg
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE
                ti.linkname = arg
            elif kind == "hard":
                ti.type = tarfile.LNKTYPE
                ti.linkname = arg
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = arg
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def layers(flags, *tars):
    return bytes([flags]) + SEP.join(tars)


L_BASE = tar([("a/", "dir", None), ("a/f1", "file", "one\n"), ("a/f2", "file", "two\n"),
              ("b/", "dir", None), ("b/sub/", "dir", None), ("b/sub/x", "file", "x\n"),
              ("c", "file", "c\n"), ("d/", "dir", 0o555), ("d/ro", "file", "ro\n")])
L_WHITE = tar([("a/.wh.f1", "file", ""), ("b/.wh..wh..opq", "file", ""), ("b/new", "file", "n\n"),
               (".wh.c", "file", ""), ("c/", "dir", None), (".wh..wh.plnk", "file", "")])
for mode in range(4):
    put("expand", "whiteouts-%d" % mode, layers(mode, L_BASE, L_WHITE))
put("expand", "whiteouts-replace", layers(2 | 8, L_BASE, L_WHITE))
put("expand", "whiteouts-limit", layers(1 | 16, L_BASE, L_WHITE, tar([("big", "file", "z" * 5000)])))

L_LINKS = tar([("bin/", "dir", None), ("bin/target", "file", "#!/bin/sh\n"),
               ("bin/hard", "hard", "bin/target"), ("abs", "sym", "/etc/passwd"),
               ("rel", "sym", "bin/target"), ("dirlink", "sym", "bin"),
               ("up", "sym", "../../../.."), ("dangling", "sym", "nowhere"),
               ("fifo", "fifo", None), ("null", "chr", (1, 3))], fmt=tarfile.PAX_FORMAT)
L_THROUGH = tar([("dirlink/evil", "file", "through a symlink\n"),
                 ("up/.wh.sentinel", "file", ""), ("up/sentinel", "file", "overwritten\n"),
                 ("bin/hard2", "hard", "dirlink/target"), ("rel", "file", "replaces the link\n")])
put("expand", "links", layers(0, L_LINKS))
put("expand", "links-through", layers(1, L_LINKS, L_THROUGH))
put("expand", "links-through-wo", layers(2, L_LINKS, L_THROUGH))
put("expand", "escape-dotdot", layers(0, tar([("../evil", "file", "x")])))
put("expand", "escape-abs", layers(2, tar([("/tmp/evil", "file", "x")])))
put("expand", "escape-hardlink", layers(1, tar([("h", "hard", "../../../../layers/0.tar")])))
put("expand", "escape-symlink-up",
    layers(2, tar([("up", "sym", "../../../../"), ("up/sentinel", "file", "x")])))
put("expand", "opaque-root", layers(1, L_BASE, tar([(".wh..wh..opq", "file", ""),
                                                    ("./", "dir", 0o700), ("only", "file", "1")])))
put("expand", "dir-file-swap",
    layers(2, tar([("x/", "dir", None), ("x/y", "file", "y"), ("z", "file", "z")]),
           tar([("x", "file", "now a file"), ("z/", "dir", None), ("z/w", "file", "w")]),
           tar([(".wh.x", "file", ""), ("x/", "dir", None)])))
LONG = "/".join(["very-long-component-%d-" % i + "x" * 40 for i in range(5)]) + "/end.txt"
put("expand", "long-names",
    layers(0, tar([(LONG, "file", "deep\n"), ("long-hard", "hard", LONG),
                   ("long-sym", "sym", LONG)], fmt=tarfile.PAX_FORMAT)))
put("expand", "long-names-gnu",
    layers(1, tar([(LONG, "file", "deep\n"), ("long-hard", "hard", LONG)], fmt=tarfile.GNU_FORMAT)))
put("expand", "ustar", layers(2, tar([("u/", "dir", None), ("u/f", "file", "u")],
                                     fmt=tarfile.USTAR_FORMAT)))
# bit 6: oldest-first and write-once must agree
put("expand", "compare-whiteouts", layers(64, L_BASE, L_WHITE))
put("expand", "compare-links", layers(64 | 8, L_LINKS, L_THROUGH))
put("expand", "compare-swap",
    layers(64, tar([("x/", "dir", None), ("x/y", "file", "y"), ("z", "file", "z"),
                    ("h", "hard", "z")]),
           tar([("x", "file", "now a file"), ("z/", "dir", None), ("z/w", "file", "w")]),
           tar([(".wh.x", "file", ""), ("x/", "dir", 0o700), ("x/h2", "hard", "h")])))
