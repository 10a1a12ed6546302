#!/usr/bin/env bash
# expand_realistic.sh - build a realistic multi-layer image from this
# machine's /usr and time expanding it: occystrap's two strategies against
# `umoci unpack` of the same image, in the same run.
#
#   expand_realistic.sh OCCYSTRAP WORKDIR [RUNS]
#
# The image (uncompressed tar layers, so no tool pays for gunzip):
#   L1 usr/share                      the "base": many small files
#   L2 usr/bin, usr/share/doc again,  a package layer that rewrites docs and
#      .wh.locale in usr/share        deletes the locales
#   L3 usr/include, usr/bin again,    a rebuild that rewrites every binary
#      usr/share/man opaque
#   L4 usr/lib/python3.11             an application layer
# It is written as an OCI layout (for umoci) and as an occystrap store (the
# same tar files, hard-linked). Each timed run starts from an absent target
# and ends with the data on disk for occystrap (it syncfs'es); umoci's time
# is taken with and without a following sync. Prints one line per tool:
# best and median seconds over RUNS (default 3).
set -euo pipefail
OCC=$1
W=$2
RUNS=${3:-3}
PY=/usr/bin/python3
LIB=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$W"
cd "$W"
if [ ! -f built.ok ]; then
  rm -rf layers wh layout store
  mkdir -p layers wh/l2/usr/share wh/l3/usr/share/man
  : > wh/l2/usr/share/.wh.locale
  : > wh/l3/usr/share/man/.wh..wh..opq
  tar -cf layers/l1.tar -C / usr/share
  tar -cf layers/l2.tar -C / usr/bin usr/share/doc -C "$W/wh/l2" usr/share/.wh.locale
  tar -cf layers/l3.tar -C / usr/include usr/bin -C "$W/wh/l3" usr/share/man/.wh..wh..opq
  tar -cf layers/l4.tar -C / usr/lib/python3.11
  $PY - "$W" <<'PYEOF'
import hashlib, json, os, sys
w = sys.argv[1]
lo = os.path.join(w, "layout")
os.makedirs(os.path.join(lo, "blobs", "sha256"))
def put(data=None, path=None):
    h = hashlib.sha256()
    if path:
        with open(path, "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        size = os.path.getsize(path)
        os.link(path, os.path.join(lo, "blobs", "sha256", h.hexdigest()))
    else:
        h.update(data)
        size = len(data)
        with open(os.path.join(lo, "blobs", "sha256", h.hexdigest()), "wb") as f:
            f.write(data)
    return "sha256:" + h.hexdigest(), size
layers = []
for n in ("l1", "l2", "l3", "l4"):
    d, s = put(path=os.path.join(w, "layers", n + ".tar"))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s})
cfg = {"architecture": "amd64", "os": "linux", "config": {},
       "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}
cd, cs = put(json.dumps(cfg).encode())
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
       "layers": layers}
md, ms = put(json.dumps(man).encode())
with open(os.path.join(lo, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(lo, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": man["mediaType"], "digest": md,
               "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
PYEOF
  $PY "$LIB/oci_to_store.py" layout v1 store realistic v1
  touch built.ok
fi
du -sh layers | sed 's/^/layer tars: /'

timeit() { # LABEL CMD...: seconds of CMD
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
stats() { # LABEL TIMES...
  local label=$1
  shift
  printf '%s\n' "$@" | sort -n | awk -v l="$label" '{a[NR]=$1} END {printf "%-34s best %.2f s  median %.2f s  (%d runs)\n", l, a[1], a[int((NR+1)/2)], NR}'
}
umoci_sync() { umoci unpack --image layout:v1 "$O/out-umoci" && sync; }
# OUT (default: WORKDIR) is where the trees go: a tmpfs there times the
# tools without the disk (whose write-back is shared with whatever else runs).
O=${OUT:-$W}
clean() { rm -rf "$1"; sync; sleep 2; }
nosync() { OCCYSTRAP_EXPAND_NO_SYNC=1 "$@"; }
declare -A T
for i in $(seq "$RUNS"); do
  for s in write-once oldest-first; do
    clean "$O/out-$s"
    T[$s]+="$(timeit "$OCC" -q --expand-strategy "$s" expand store realistic v1 "$O/out-$s") "
    clean "$O/out-$s"
    T[$s-nosync]+="$(timeit nosync "$OCC" -q --expand-strategy "$s" expand store realistic v1 "$O/out-$s") "
  done
  if [ "${UMOCI:-1}" = 1 ]; then
    clean "$O/out-umoci"
    T[umoci]+="$(timeit umoci unpack --image layout:v1 "$O/out-umoci") "
    clean "$O/out-umoci"
    T[umoci+sync]+="$(timeit umoci_sync) "
  fi
done
stats "occystrap expand write-once" ${T[write-once]}
stats "occystrap expand oldest-first" ${T[oldest-first]}
echo "  the same without the final syncfs:"
stats "occystrap expand write-once" ${T[write-once-nosync]}
stats "occystrap expand oldest-first" ${T[oldest-first-nosync]}
if [ "${UMOCI:-1}" = 1 ]; then
  stats "umoci unpack (no sync)" ${T[umoci]}
  stats "umoci unpack + sync" ${T[umoci+sync]}
fi
if [ "${CHECK:-1}" = 1 ] && [ "${UMOCI:-1}" = 1 ]; then
  $PY "$LIB/expand_listing.py" "$O/out-write-once" > a.lst
  $PY "$LIB/expand_listing.py" "$O/out-oldest-first" > b.lst
  $PY "$LIB/expand_listing.py" "$O/out-umoci/rootfs" > c.lst
  cmp -s a.lst b.lst && cmp -s a.lst c.lst && echo "trees: write-once == oldest-first == umoci ($(wc -l < a.lst) paths)" ||
    { echo "trees differ"; diff a.lst c.lst | head; }
fi
