#!/usr/bin/env bash
# bundle.sh - the bundle benchmark: what crosses an air gap and how fast it goes in.
#
#   bash bench/bundle.sh [--reps N] [--quick] [--campaign] [--split SIZE]
#
# 1. builds occystrap (Release) in build-bench/, or uses $OCCYSTRAP
# 2. starts its own lab in bench/out/bundle-lab, builds the corpus once (bench/corpus.py,
#    shared with run.sh) and pushes it; bench/moving:v1 is made to name realistic's image
#    (bench/retag.py: every blob mounted, nothing copied)
# 3. store A (bench/out/bundle-A) mirrors realistic, big, shared-1..3 and moving:v1
# 4. one warm-up pass, then N passes (default 3) of:
#      bundle-full   occystrap bundle A full.tar           (every blob of A, hashed on the way)
#      tar-c         tar -cf of the whole store A          (what users carry today, a)
#      skopeo-dir    skopeo sync --src yaml --dest dir     (what users carry today, b)
#      import        occystrap import full.tar B, B empty  (every byte verified, layers inflated
#                    and checked against their diff_ids, both forms written, synced)
#      igzip-null    igzip -dc of the same compressed layer blobs to /dev/null
#      igzip-file    igzip -dc of them to a file beside B  (the writes of one form)
# 5. one tag moves: moving:v1 now names realistic plus one 10 kB layer (retag.py), A
#    mirrors again, then N passes of
#      bundle-delta  occystrap bundle --since full.tar A delta.tar
#      skopeo-after  skopeo sync of the list again         (everything again)
#    and delta.tar is imported into a copy of B (verified, and the moved tag checked)
# 6. --campaign: the bundle of big (one ~1 GiB layer) cut with --split SIZE (default 256M)
#    is imported in reverse order over two runs (the first must stop and name the missing
#    parts, the second completes); verify, and recreate-image compared with A's
# Medians, sizes, the ratios import/igzip-null and import/igzip-file (target: import <=
# 1.3x igzip -dc) and the delta's size beside its new blobs are printed and written to
# bench/out/bundle.md and bench/out/bundle.csv. Targets are reported, never asserted.
# --quick: 1 pass, no warm-up (checks the harness; numbers not quotable).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
PY=/usr/bin/python3
REPS=3
QUICK=0
CAMPAIGN=0
SPLIT=256M
IMAGES=(realistic big shared-1 shared-2 shared-3)

usage() {
  echo "usage: bash bench/bundle.sh [--reps N] [--quick] [--campaign] [--split SIZE]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) [ $# -ge 2 ] || usage; REPS=$2; shift 2 ;;
    --quick) QUICK=1; REPS=1; shift ;;
    --campaign) CAMPAIGN=1; shift ;;
    --split) [ $# -ge 2 ] || usage; SPLIT=$2; shift 2 ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
  esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || usage
say() { echo "bench-bundle: $*"; }
die() { echo "bench-bundle: ERROR: $*" >&2; exit 1; }
mkdir -p "$OUT"
for t in skopeo igzip jq cmake /usr/bin/time "$PY"; do
  command -v "$t" >/dev/null || die "$t is missing; run: bash scripts/setup.sh"
done

# --- 1. build -------------------------------------------------------------------------------
if [ -n "${OCCYSTRAP:-}" ]; then
  OCCY=$OCCYSTRAP
else
  BUILD=${OCCY_BENCH_BUILD:-$ROOT/build-bench}
  OCCY=$BUILD/occystrap
  [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/bundle-build.log" 2>&1 ||
    die "cmake configure failed ($OUT/bundle-build.log)"
  cmake --build "$BUILD" -j"$(nproc)" --target occystrap >>"$OUT/bundle-build.log" 2>&1 || die "build failed ($OUT/bundle-build.log)"
fi
[ -x "$OCCY" ] || die "$OCCY is not an executable"

# --- 2. lab and corpus ------------------------------------------------------------------------
LAB=$OUT/bundle-lab
W=$OUT/bundle-work
A=$OUT/bundle-A
lab_started=0
cleanup() {
  rm -rf "$W"
  [ "$lab_started" = 0 ] || bash "$ROOT/tests/lab/lab.sh" stop "$LAB" >>"$OUT/bundle-lab.log" 2>&1 ||
    echo "bench-bundle: WARNING: stopping the lab failed, see $OUT/bundle-lab.log" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say "starting the lab in $LAB"
: >"$OUT/bundle-lab.log"
lab_started=1
bash "$ROOT/tests/lab/lab.sh" start "$LAB" >>"$OUT/bundle-lab.log" 2>&1 || die "lab start failed ($OUT/bundle-lab.log)"
# shellcheck disable=SC1091
source "$LAB/env.sh"
"$PY" "$HERE/corpus.py" build "$OUT/corpus"
"$PY" "$HERE/corpus.py" push "$OUT/corpus" "$LAB_PLAIN"
POLICY=$OUT/corpus/policy.json
field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]])' "$OUT/corpus/images.json" "$1" "$2"; }
REAL="$(field realistic repo):$(field realistic tag)"
"$PY" "$HERE/retag.py" "$LAB_PLAIN" "$REAL" bench/moving:v1 >/dev/null || die "retag failed"

# --- 3. store A -------------------------------------------------------------------------------
rm -rf "$W" "$A"
mkdir -p "$W"
declare -A SYNC
for im in "${IMAGES[@]}"; do
  repo=$(field "$im" repo)
  tag=$(field "$im" tag)
  echo "$LAB_PLAIN/$repo:$tag" >>"$W/list.txt"
  SYNC[$repo]="${SYNC[$repo]:+${SYNC[$repo]}, }\"$tag\""
done
echo "$LAB_PLAIN/bench/moving:v1" >>"$W/list.txt"
SYNC[bench/moving]='"v1"'
{
  echo "$LAB_PLAIN:"
  echo "  tls-verify: false"
  echo "  images:"
  for repo in "${!SYNC[@]}"; do echo "    $repo: [${SYNC[$repo]}]"; done
} >"$W/sync.yaml"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" >"$W/mirror.json"
mirror() { "$OCCY" -q --progress none --config "$W/mirror.json" mirror "$W/list.txt" "$A" >>"$OUT/bundle-mirror.log" 2>&1 || die "mirror into $A failed ($OUT/bundle-mirror.log)"; }
mirror
say "store A: $(du -sb "$A" | cut -f1) bytes in $A"

# --- 4 and 5. measure -----------------------------------------------------------------------------
RAW=$OUT/bundle-raw.csv
echo "tool,rep,rc,wall_s,user_s,sys_s,maxrss_kb,bytes" >"$RAW"
layer_blobs() { # the gzip layer blobs a bundle carries, as paths in A
  tar -xOf "$W/full.tar" occystrap-bundle.json |
    jq -r '.files[] | select(.mediaType != null and (.mediaType | test("gzip"))) | (.blob // .digest)' |
    sed "s|^sha256:|$A/oci/blobs/sha256/|" | sort -u
}
run_one() { # TOOL REP
  local tool=$1 rep=$2 rc=0 tf=$W/time.txt log=$OUT/bundle-$1-$2.log bytes=0
  sync
  case $tool in
    bundle-full)
      rm -f "$W/full.tar"
      /usr/bin/time -f '%e %U %S %M' -o "$tf" "$OCCY" -q bundle "$A" "$W/full.tar" >"$log" 2>&1 || rc=$?
      bytes=$(stat -c %s "$W/full.tar" 2>/dev/null || echo 0) ;;
    tar-c)
      rm -f "$W/store.tar"
      /usr/bin/time -f '%e %U %S %M' -o "$tf" tar -cf "$W/store.tar" -C "$A" . >"$log" 2>&1 || rc=$?
      bytes=$(stat -c %s "$W/store.tar" 2>/dev/null || echo 0)
      rm -f "$W/store.tar" ;;
    skopeo-dir|skopeo-after)
      rm -rf "$W/skopeo-dir" "$W/skopeo-tmp"
      mkdir -p "$W/skopeo-tmp"
      /usr/bin/time -f '%e %U %S %M' -o "$tf" skopeo --tmpdir "$W/skopeo-tmp" --policy "$POLICY" \
        sync --src yaml --dest dir "$W/sync.yaml" "$W/skopeo-dir" >"$log" 2>&1 || rc=$?
      bytes=$(du -sb "$W/skopeo-dir" | cut -f1)
      rm -rf "$W/skopeo-dir" ;;
    import)
      rm -rf "$W/B"
      sync
      /usr/bin/time -f '%e %U %S %M' -o "$tf" "$OCCY" -q import "$W/full.tar" "$W/B" >"$log" 2>&1 || rc=$?
      bytes=$(stat -c %s "$W/full.tar") ;;
    igzip-null)
      layer_blobs >"$W/blobs.txt"
      cat $(cat "$W/blobs.txt") >/dev/null # the same warm cache the import had
      /usr/bin/time -f '%e %U %S %M' -o "$tf" bash -c 'while read -r b; do igzip -dc <"$b" >/dev/null || exit 1; done <"$1"' _ "$W/blobs.txt" >"$log" 2>&1 || rc=$?
      bytes=$(cat $(cat "$W/blobs.txt") | wc -c) ;;
    igzip-file)
      /usr/bin/time -f '%e %U %S %M' -o "$tf" bash -c 'while read -r b; do igzip -dc <"$b" >"$2" || exit 1; done <"$1"; sync' _ "$W/blobs.txt" "$W/igzip.out" >"$log" 2>&1 || rc=$?
      rm -f "$W/igzip.out"
      bytes=$(cat $(cat "$W/blobs.txt") | wc -c) ;;
    bundle-delta)
      rm -f "$W/delta.tar"
      /usr/bin/time -f '%e %U %S %M' -o "$tf" "$OCCY" -q bundle --since "$W/full.tar" "$A" "$W/delta.tar" >"$log" 2>&1 || rc=$?
      bytes=$(stat -c %s "$W/delta.tar" 2>/dev/null || echo 0) ;;
  esac
  local wall user sys rss
  read -r wall user sys rss < <(tail -n 1 "$tf")
  if [ "$rc" != 0 ]; then
    say "$tool pass $rep FAILED (exit $rc), log $log"
    tail -n 5 "$log" >&2
  else
    rm -f "$log"
    awk -v t="$tool" -v r="$([ "$rep" = 0 ] && echo warm || echo "$rep/$REPS")" -v w="$wall" \
      -v u="$user" -v s="$sys" -v m="$rss" -v b="$bytes" 'BEGIN {
        printf "bench-bundle: %-13s %-5s %7.2f s wall %7.2f s cpu %7.1f MB peak RSS %9.1f MB\n", t, r, w, u + s, m / 1024, b / 1e6 }'
  fi
  [ "$rep" = 0 ] || echo "$tool,$rep,$rc,$wall,$user,$sys,$rss,$bytes" >>"$RAW"
}
first=0
[ "$QUICK" = 0 ] || first=1
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$first" "$REPS"); do
  for tool in bundle-full tar-c skopeo-dir import igzip-null igzip-file; do run_one "$tool" "$rep"; done
done
new=$("$PY" "$HERE/retag.py" "$LAB_PLAIN" "$REAL" bench/moving:v1 --add-layer 10000) || die "retag --add-layer failed"
mirror
for rep in $(seq "$first" "$REPS"); do
  for tool in bundle-delta skopeo-after; do run_one "$tool" "$rep"; done
done
new_bytes=$(tar -xOf "$W/delta.tar" occystrap-bundle.json | jq '[.files[].size] | add')
cp -a "$W/B" "$W/B2"
"$OCCY" -q import "$W/delta.tar" "$W/B2" || die "the delta bundle did not import"
"$OCCY" -q verify "$W/B2" >/dev/null || die "verify of the store the delta went into failed"
jq -e --arg d "$new" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] | endswith("bench/moving:v1")) | .digest == $d' \
  "$W/B2/oci/index.json" >/dev/null || die "the delta did not move bench/moving:v1 to $new"
say "the delta bundle moved bench/moving:v1 to $new in a copy of B, verified"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 6. the 1 GiB campaign --------------------------------------------------------------------------
campaign=""
if [ "$CAMPAIGN" = 1 ]; then
  BIGREF="$LAB_PLAIN/$(field big repo)"
  rm -rf "$W/parts" "$W/C"
  mkdir -p "$W/parts"
  t0=$(date +%s.%N)
  "$OCCY" -q bundle --split "$SPLIT" "$A" "$W/parts/big.tar" "$BIGREF:$(field big tag)" || die "bundle --split $SPLIT failed"
  t1=$(date +%s.%N)
  mapfile -t parts < <(ls "$W/parts"/big.tar.* | sort -r)
  n=${#parts[@]}
  half=$((n / 2))
  rc=0
  "$OCCY" -q import "${parts[@]:0:$half}" "$W/C" 2>"$W/first.err" || rc=$?
  t2=$(date +%s.%N)
  [ "$rc" = 1 ] && grep -q "parts not given" "$W/first.err" || die "the first run did not stop naming the missing parts"
  "$OCCY" -q import "${parts[@]:$half}" "$W/C" || die "the second run did not complete the import"
  t3=$(date +%s.%N)
  "$OCCY" -q verify "$W/C" >/dev/null || die "verify of the campaign's store failed"
  "$OCCY" -q recreate-image "$A" "$BIGREF" "$(field big tag)" "$W/a.tar"
  "$OCCY" -q recreate-image "$W/C" "$BIGREF" "$(field big tag)" "$W/c.tar"
  cmp -s "$W/a.tar" "$W/c.tar" || die "recreate-image of big differs between A and the campaign's store"
  rm -f "$W/a.tar" "$W/c.tar"
  campaign=$(awk -v n="$n" -v s="$SPLIT" -v b="$(du -cb "$W"/parts/big.tar.* | tail -1 | cut -f1)" \
    -v a="$t0" -v bb="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
    printf "big (1 GiB layer) in %d parts of at most %s (%.1f MB): bundle %.2f s; import of the last %d parts in reverse order %.2f s (stopped, naming the others), of the rest %.2f s (complete); verify passes, recreate-image is A'"'"'s", n, s, b / 1e6, bb - a, int(n / 2), c - bb, d - c }')
  say "$campaign"
fi

# --- 7. report ---------------------------------------------------------------------------------------
"$PY" - "$RAW" "$OUT" "$load_before" "$load_after" "$("$OCCY" --version | head -n1)" "$(skopeo --version)" \
  "${IMAGES[*]} moving" "$new_bytes" "$campaign" <<'EOF'
import csv, statistics, sys
raw, out, lb, la, occy_v, skopeo_v, images, new_bytes, campaign = sys.argv[1:]
rows = [r for r in csv.DictReader(open(raw)) if r["rc"] == "0"]
med = {}
for r in rows:
    med.setdefault(r["tool"], []).append(r)
m = {t: {k: statistics.median(float(x[k]) for x in rs) for k in ("wall_s", "user_s", "sys_s", "maxrss_kb", "bytes")}
     for t, rs in med.items()}
lines = ["# bundle bench", "",
         f"- images: {images}",
         f"- versions: {occy_v}; {skopeo_v}",
         f"- load average before {lb}, after {la}; medians of {len(med.get('bundle-full', []))} passes",
         "", "| what | wall s | cpu s | peak RSS MB | MB carried |", "|---|---:|---:|---:|---:|"]
for t in ("bundle-full", "tar-c", "skopeo-dir", "import", "igzip-null", "igzip-file", "bundle-delta", "skopeo-after"):
    if t in m:
        x = m[t]
        lines.append(f"| {t} | {x['wall_s']:.2f} | {x['user_s'] + x['sys_s']:.2f} | {x['maxrss_kb'] / 1024:.1f} | "
                     f"{x['bytes'] / 1e6:.1f} |")
lines += ["", "| target | measured | verdict |", "|---|---:|---|"]
if "import" in m and "igzip-null" in m:
    r = m["import"]["wall_s"] / m["igzip-null"]["wall_s"]
    lines.append(f"| import <= 1.3x igzip -dc (to /dev/null) | {r:.2f} | {'met' if r <= 1.3 else 'missed'} |")
if "import" in m and "igzip-file" in m:
    r = m["import"]["wall_s"] / m["igzip-file"]["wall_s"]
    lines.append(f"| import / igzip -dc to a file | {r:.2f} | {'met' if r <= 1.3 else 'missed'} |")
if "bundle-delta" in m:
    over = m["bundle-delta"]["bytes"] - float(new_bytes)
    lines.append(f"| delta bundle within a few KB of its new blobs ({int(float(new_bytes))} bytes) | +{int(over)} bytes | "
                 f"{'met' if over <= 64 * 1024 else 'missed'} |")
if "bundle-delta" in m and "skopeo-after" in m:
    lines.append(f"| delta bundle / skopeo sync --dest dir after the move | "
                 f"{m['bundle-delta']['bytes'] / m['skopeo-after']['bytes']:.5f} | - |")
if campaign:
    lines += ["", "campaign: " + campaign]
text = "\n".join(lines) + "\n"
print(text)
open(out + "/bundle.md", "w").write(text)
with open(out + "/bundle.csv", "w") as f:
    f.write("tool,wall_s,cpu_s,maxrss_kb,bytes\n")
    for t, x in m.items():
        f.write(f"{t},{x['wall_s']},{x['user_s'] + x['sys_s']},{x['maxrss_kb']},{x['bytes']}\n")
EOF
say "done: $OUT/bundle.md, $OUT/bundle.csv, every run in $RAW"
