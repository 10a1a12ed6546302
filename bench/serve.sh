#!/usr/bin/env bash
# serve.sh - `occystrap serve` against the distribution server (Debian's
# docker-registry) serving the same images from its own storage, both on
# loopback, measured with the same client (h2load from nghttp2-client, and
# curl --parallel for HEAD over HTTP/1.1).
#
#   bash bench/serve.sh [--reps N] [--quick]
#
# 1. builds occystrap (Release) in build-bench/ (or uses $OCCYSTRAP)
# 2. makes an image once (bench/out/serve/image: a 256 MiB random layer, a
#    4 KiB one, an OCI manifest), starts a docker-registry of its own (its
#    own storage, plain HTTP and TLS, access log off), pushes the image with
#    skopeo (OCI, bytes unchanged), and writes serve's store from that
#    registry byte for byte (tests/integration/lib/serve_store.py)
# 3. starts serve twice (plain, and TLS with the same certificate), with -q
#    (no access log, like the registry)
# 4. per server, N passes (default 3, medians) of:
#    head-h2   manifest HEADs/s, HTTPS + HTTP/2 (h2load -c 8 -m 10)
#    head-h1   manifest HEADs/s, plain HTTP/1.1 keep-alive (curl --parallel -I, 8 at once)
#    get-h1    manifest GETs/s, plain HTTP/1.1 (h2load --h1 -c 8)
#    blob-h1   MB/s of the big layer, plain HTTP/1.1 (h2load --h1, 4 clients)
#    blob-h2   MB/s of the big layer, HTTPS + HTTP/2 (h2load, 4 clients)
# 5. prints a table with the ratios serve/registry and the targets (blob
#    throughput >= 1x, manifest HEADs >= 2x), writes bench/out/serve/results.md
#
# --quick: 1 pass with fewer requests (checks the harness; numbers not
# quotable). Targets are reported, never asserted.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out/serve
PY=/usr/bin/python3
REPS=3
QUICK=0
usage() {
  echo "usage: bash bench/serve.sh [--reps N] [--quick]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) [ $# -ge 2 ] || usage; REPS=$2; shift 2 ;;
    --quick) QUICK=1; REPS=1; shift ;;
    -h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
  esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || usage
HEADS=200000
GETS=100000
CURL_HEADS=20000
BLOBS=16
if [ "$QUICK" = 1 ]; then
  HEADS=20000 GETS=10000 CURL_HEADS=2000 BLOBS=4
fi

say() { echo "bench: $*"; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }
for t in h2load curl skopeo openssl cmake /usr/bin/docker-registry "$PY"; do
  command -v "$t" >/dev/null || die "$t is missing; run: bash scripts/setup.sh"
done
mkdir -p "$OUT"

# --- 1. build -----------------------------------------------------------------------------
if [ -n "${OCCYSTRAP:-}" ]; then
  OCCY=$OCCYSTRAP
else
  BUILD=${OCCY_BENCH_BUILD:-$ROOT/build-bench}
  OCCY=$BUILD/occystrap
  [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    >"$OUT/build.log" 2>&1 || die "cmake configure failed ($OUT/build.log)"
  cmake --build "$BUILD" -j"$(nproc)" --target occystrap >>"$OUT/build.log" 2>&1 ||
    die "build failed ($OUT/build.log)"
fi
[ -x "$OCCY" ] || die "$OCCY is not an executable"

# --- 2. image, registry, store ------------------------------------------------------------------
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ! -s "$OUT/image/index.json" ]; then
  say "making the image (a 256 MiB random layer) in $OUT/image"
  rm -rf "$OUT/image"
  "$PY" - "$OUT/image" <<'EOF'
import hashlib, json, os, sys
root = sys.argv[1]
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
def put_random(size):
    h, tmp = hashlib.sha256(), os.path.join(blobs, ".tmp")
    with open(tmp, "wb") as f:
        left = size
        while left:
            c = os.urandom(min(left, 1 << 20)); h.update(c); f.write(c); left -= len(c)
    os.rename(tmp, os.path.join(blobs, h.hexdigest()))
    return {"digest": "sha256:" + h.hexdigest(), "size": size}
big, small = put_random(256 << 20), put_random(4096)
layers = [dict(l, mediaType="application/vnd.oci.image.layer.v1.tar") for l in (big, small)]
config = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
             "diff_ids": [big["digest"], small["digest"]]}}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config, "layers": layers}).encode())
m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
m["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [m]}, open(os.path.join(root, "index.json"), "w"))
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion": "1.0.0"}')
print(big["digest"])
EOF
fi

TLS=$OUT/tls
if [ ! -s "$TLS/server.crt" ]; then
  mkdir -p "$TLS"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout "$TLS/server.key" -out "$TLS/server.crt" -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || die "openssl failed"
fi

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# registry NAME [tls]: a docker-registry on a free port, logging errors only
# and no access log (as serve -q); sets REG_ADDR
registry() {
  local name=$1 conf=$OUT/registry-$1.yml
  REG_ADDR=127.0.0.1:$(free_port)
  cat >"$conf" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$OUT/registry-storage"
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $REG_ADDR
EOF
  if [ "${2:-}" = tls ]; then
    printf '  tls:\n    certificate: "%s"\n    key: "%s"\n' "$TLS/server.crt" "$TLS/server.key" >>"$conf"
  fi
  /usr/bin/docker-registry serve "$conf" >/dev/null 2>"$OUT/registry-$name.log" &
  PIDS+=($!)
  local scheme=http
  [ "${2:-}" = tls ] && scheme=https
  for _ in $(seq 200); do
    curl -sk -o /dev/null "$scheme://$REG_ADDR/v2/" && return 0
    sleep 0.05
  done
  die "registry $name did not start ($OUT/registry-$name.log)"
}
registry plain
REG_PLAIN=$REG_ADDR
registry tls tls
REG_TLS=$REG_ADDR
say "registry on http://$REG_PLAIN and https://$REG_TLS"
skopeo copy -q --dest-tls-verify=false "oci:$OUT/image:v1" "docker://$REG_PLAIN/bench/serve:v1" ||
  die "push to the registry failed"
rm -rf "$OUT/store"
"$PY" "$ROOT/tests/integration/lib/serve_store.py" add "$OUT/store" "$REG_PLAIN" bench/serve:v1 >/dev/null ||
  die "the serve store could not be written"

SERVE_PLAIN=127.0.0.1:$(free_port)
"$OCCY" -q serve --listen "$SERVE_PLAIN" "$OUT/store" 2>"$OUT/serve-plain.log" &
PIDS+=($!)
SERVE_TLS=127.0.0.1:$(free_port)
"$OCCY" -q serve --listen "$SERVE_TLS" --tls-cert "$TLS/server.crt" --tls-key "$TLS/server.key" \
  "$OUT/store" 2>"$OUT/serve-tls.log" &
PIDS+=($!)
for a in "$SERVE_PLAIN" "$SERVE_TLS"; do
  for _ in $(seq 100); do
    curl -sk -o /dev/null "http://$a/v2/" 2>/dev/null && break
    curl -sk -o /dev/null "https://$a/v2/" 2>/dev/null && break
    sleep 0.05
  done
done
MPATH=/v2/bench/serve/manifests/v1
ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json"
curl -s -H "$ACCEPT" -o "$OUT/manifest.json" "http://$REG_PLAIN$MPATH"
WANT=$(sha256sum <"$OUT/manifest.json" | cut -d' ' -f1)
BIG=$(jq -r '.layers | max_by(.size) | .digest' "$OUT/manifest.json")
BIG_SIZE=$(jq -r '.layers | max_by(.size) | .size' "$OUT/manifest.json")
for u in "http://$SERVE_PLAIN$MPATH" "https://$SERVE_TLS$MPATH" "https://$REG_TLS$MPATH"; do
  d=$(curl -sk -H "$ACCEPT" "$u" | sha256sum | cut -d' ' -f1)
  [ "$d" = "$WANT" ] || die "$u does not serve the registry's manifest sha256:$WANT"
done
say "serve on http://$SERVE_PLAIN and https://$SERVE_TLS; both servers answer with the same manifest"

# --- 4. measure -----------------------------------------------------------------------------
# h2load_rate ARGS...: "REQ_PER_S SECONDS" of an h2load run whose answers were all 2xx
h2load_run() {
  local out
  out=$(h2load "$@" 2>&1) || { echo "$out" >&2; die "h2load failed: $*"; }
  grep -q "status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" <<<"$out" || { echo "$out" >&2; die "h2load: not all 2xx: $*"; }
  grep -q "succeeded, 0 failed, 0 errored" <<<"$out" || { echo "$out" >&2; die "h2load: failures: $*"; }
  sed -n 's/^finished in \([0-9.]*\)\(m*s\), \([0-9.]*\) req\/s.*/\1 \2 \3/p' <<<"$out"
}
seconds() { # VALUE UNIT
  awk -v v="$1" -v u="$2" 'BEGIN { printf "%.6f", u == "ms" ? v / 1000 : v }'
}
measure() { # SERVER TEST -> prints the figure (req/s or MB/s)
  local plain tls
  if [ "$1" = serve ]; then plain=$SERVE_PLAIN tls=$SERVE_TLS; else plain=$REG_PLAIN tls=$REG_TLS; fi
  local v u r
  case "$2" in
    head-h2)
      read -r v u r < <(h2load_run -n "$HEADS" -c 8 -m 10 -H ':method: HEAD' -H "$ACCEPT" "https://$tls$MPATH")
      echo "$r" ;;
    get-h1)
      read -r v u r < <(h2load_run --h1 -n "$GETS" -c 8 -H "$ACCEPT" "http://$plain$MPATH")
      echo "$r" ;;
    head-h1)
      local cfg=$OUT/heads.cfg t0 t1
      : >"$cfg"
      for _ in $(seq "$CURL_HEADS"); do printf 'url = "http://%s%s"\noutput = "/dev/null"\n' "$plain" "$MPATH"; done >"$cfg"
      t0=$(date +%s.%N)
      curl -s -I --parallel --parallel-max 8 -H "$ACCEPT" -w '%{http_code}\n' -K "$cfg" >"$OUT/heads.codes" ||
        die "curl --parallel failed"
      t1=$(date +%s.%N)
      [ "$(grep -c '^200$' "$OUT/heads.codes")" = "$CURL_HEADS" ] || die "curl HEADs: not all 200"
      awk -v n="$CURL_HEADS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }' ;;
    blob-h1 | blob-h2)
      local url="http://$plain/v2/bench/serve/blobs/$BIG" h1=(--h1)
      if [ "$2" = blob-h2 ]; then url="https://$tls/v2/bench/serve/blobs/$BIG" h1=(); fi
      read -r v u r < <(h2load_run "${h1[@]+"${h1[@]}"}" -n "$BLOBS" -c 4 "$url")
      awk -v n="$BLOBS" -v size="$BIG_SIZE" -v s="$(seconds "$v" "$u")" 'BEGIN { printf "%.1f", n * size / s / 1e6 }' ;;
  esac
}

TESTS=(head-h2 head-h1 get-h1 blob-h1 blob-h2)
RAW=$OUT/raw.csv
echo "server,test,rep,value" >"$RAW"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "measuring ${TESTS[*]}; $REPS pass(es); $HEADS HEADs, $GETS GETs, $CURL_HEADS curl HEADs, $BLOBS x $((BIG_SIZE >> 20)) MiB blobs per test"
for rep in $(seq "$REPS"); do
  for t in "${TESTS[@]}"; do
    for s in serve registry; do
      v=$(measure "$s" "$t") || exit 1
      echo "$s,$t,$rep,$v" >>"$RAW"
      printf 'bench: %-8s %-8s %s/%s %12s %s\n' "$s" "$t" "$rep" "$REPS" "$v" \
        "$(case $t in blob*) echo MB/s ;; *) echo req/s ;; esac)"
    done
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 5. report --------------------------------------------------------------------------------
"$PY" - "$RAW" "$OUT/results.md" "$QUICK" "$LOAD_BEFORE" "$LOAD_AFTER" "$("$OCCY" --version | head -1)" \
  "$(dpkg-query -W -f '${Version}' docker-registry)" "$(nproc)" <<'EOF'
import csv, statistics, sys, time
raw, out, quick, lb, la, occy, reg, nproc = sys.argv[1:]
vals = {}
for r in csv.DictReader(open(raw)):
    vals.setdefault((r["server"], r["test"]), []).append(float(r["value"]))
med = {k: statistics.median(v) for k, v in vals.items()}
names = {"head-h2": "manifest HEAD, HTTPS + HTTP/2 (h2load)",
         "head-h1": "manifest HEAD, HTTP/1.1 (curl --parallel)",
         "get-h1": "manifest GET, HTTP/1.1 (h2load --h1)",
         "blob-h1": "256 MiB blob, HTTP/1.1 (h2load --h1)",
         "blob-h2": "256 MiB blob, HTTPS + HTTP/2 (h2load)"}
lines = [f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {nproc} CPUs; {occy}; "
         f"docker-registry {reg}; load before {lb}, after {la}"
         + ("; QUICK: one short pass, not quotable" if quick == "1" else ""), "",
         "| test | unit | serve | registry | serve/registry |", "|---|---|---:|---:|---:|"]
for t, name in names.items():
    s, r = med.get(("serve", t)), med.get(("registry", t))
    unit = "MB/s" if t.startswith("blob") else "req/s"
    lines.append(f"| {name} | {unit} | {s:.0f} | {r:.0f} | {s / r:.2f} |")
head = min(med[("serve", "head-h2")] / med[("registry", "head-h2")],
           med[("serve", "head-h1")] / med[("registry", "head-h1")])
blob = min(med[("serve", "blob-h1")] / med[("registry", "blob-h1")],
           med[("serve", "blob-h2")] / med[("registry", "blob-h2")])
lines += ["", "| target | measured (the lower of the two rows) | verdict |", "|---|---:|---|",
          f"| blob throughput >= 1x the registry | {blob:.2f}x | {'met' if blob >= 1 else 'missed'} |",
          f"| manifest HEADs >= 2x the registry | {head:.2f}x | {'met' if head >= 2 else 'missed'} |"]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
say "results in $OUT/results.md (raw: $RAW)"
