#!/usr/bin/env bash
# push.sh - the push benchmark: `occystrap push` of a store's exact bytes into a second
# registry, beside `skopeo sync --dest docker` of the same images registry to registry.
#
#   bash bench/push.sh [--reps N] [--quick]
#
# 1. builds occystrap (Release) in build-bench/, or uses $OCCYSTRAP
# 2. starts its own lab in bench/out/push-lab (its push targets are empty at start),
#    builds the corpus once (bench/corpus.py, shared with run.sh) and pushes it to the lab
# 3. makes a store with the exact bytes of realistic and shared-1..3 (their registry
#    bytes, tests/integration/lib/oci_layout.py) in bench/out/push-store
# 4. one warm-up pass, then N passes (default 3); each pass restarts the lab first, so its
#    push targets are empty and on a new port (skopeo's blob-info cache, which remembers
#    where it put blobs by registry host:port and then mounts them instead of uploading,
#    knows nothing of it), then runs, into the lab's push-plain instance:
#      occystrap      occystrap push STORE TARGET/PREFIX
#      again          the same push once more (everything there: one HEAD per tag)
#      skopeo-sync    skopeo sync --src yaml --dest docker (from the lab's plain instance)
#      mirror-to      occystrap mirror LIST --to TARGET/PREFIX (the same, registry to registry)
#    each under /usr/bin/time; medians, the ratio occystrap/skopeo-sync and the targets
#    (at most 0.5x skopeo sync, peak RSS at most 64 MB) are printed and written to
#    bench/out/push.csv and bench/out/push.md.
# --quick: 1 pass, no warm-up (checks the harness; numbers not quotable).
# Targets are reported, never asserted.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
PY=/usr/bin/python3
REPS=3
QUICK=0
IMAGES=(realistic shared-1 shared-2 shared-3)
TOOLS=(occystrap again skopeo-sync mirror-to)

usage() {
  echo "usage: bash bench/push.sh [--reps N] [--quick]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) [ $# -ge 2 ] || usage; REPS=$2; shift 2 ;;
    --quick) QUICK=1; REPS=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
  esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || usage
say() { echo "bench-push: $*"; }
die() { echo "bench-push: ERROR: $*" >&2; exit 1; }
mkdir -p "$OUT"
for t in skopeo cmake timeout /usr/bin/time "$PY"; do
  command -v "$t" >/dev/null || die "$t is missing; run: bash scripts/setup.sh"
done

# --- 1. build -------------------------------------------------------------------------------
if [ -n "${OCCYSTRAP:-}" ]; then
  OCCY=$OCCYSTRAP
else
  BUILD=${OCCY_BENCH_BUILD:-$ROOT/build-bench}
  OCCY=$BUILD/occystrap
  [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/push-build.log" 2>&1 ||
    die "cmake configure failed ($OUT/push-build.log)"
  cmake --build "$BUILD" -j"$(nproc)" --target occystrap >>"$OUT/push-build.log" 2>&1 || die "build failed ($OUT/push-build.log)"
fi
[ -x "$OCCY" ] || die "$OCCY is not an executable"

# --- 2. lab and corpus ---------------------------------------------------------------------------
LAB=$OUT/push-lab
TMP=$OUT/push-tmp
lab_started=0
cleanup() {
  rm -rf "$TMP"
  [ "$lab_started" = 0 ] || bash "$ROOT/tests/lab/lab.sh" stop "$LAB" >>"$OUT/push-lab.log" 2>&1 ||
    echo "bench-push: WARNING: stopping the lab failed, see $OUT/push-lab.log" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# lab_up: (re)start the lab: empty push targets on new ports
lab_up() {
  lab_started=1
  bash "$ROOT/tests/lab/lab.sh" start "$LAB" >>"$OUT/push-lab.log" 2>&1 || die "lab start failed ($OUT/push-lab.log)"
  # shellcheck disable=SC1091
  source "$LAB/env.sh"
}
say "starting the lab in $LAB"
: >"$OUT/push-lab.log"
lab_up
"$PY" "$HERE/corpus.py" build "$OUT/corpus"
"$PY" "$HERE/corpus.py" push "$OUT/corpus" "$LAB_PLAIN"
POLICY=$OUT/corpus/policy.json
field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]])' "$OUT/corpus/images.json" "$1" "$2"; }

# --- 3. the store and skopeo's list -----------------------------------------------------------
STORE=$OUT/push-store
rm -rf "$STORE" "$TMP"
mkdir -p "$TMP"
refs=()
bytes=0
declare -A SYNC
for im in "${IMAGES[@]}"; do
  repo=$(field "$im" repo)
  tag=$(field "$im" tag)
  refs+=("$repo:$tag")
  echo "127.0.0.1:PLAIN_PORT/$repo:$tag" >>"$TMP/list.in"
  SYNC[$repo]="${SYNC[$repo]:+${SYNC[$repo]}, }\"$tag\""
done
"$PY" "$ROOT/tests/integration/lib/oci_layout.py" "$LAB_PLAIN" "$STORE/oci" "${refs[@]}" >/dev/null ||
  die "the store's layout could not be made"
bytes=$(du -sb "$STORE/oci/blobs" | cut -f1)
{
  echo "127.0.0.1:PLAIN_PORT:"
  echo "  tls-verify: false"
  echo "  images:"
  for repo in "${!SYNC[@]}"; do echo "    $repo: [${SYNC[$repo]}]"; done
} >"$TMP/sync.yaml.in"
say "store: ${IMAGES[*]} ($((bytes / 1000000)) MB of distinct blobs) in $STORE"

# --- 4. measure -------------------------------------------------------------------------------
RAW=$OUT/push-raw.csv
echo "tool,rep,rc,wall_s,user_s,sys_s,maxrss_kb" >"$RAW"
run_one() { # TOOL REP
  local tool=$1 rep=$2 rc=0 tf=$TMP/time.txt log=$OUT/push-$1-$2.log
  sync
  case $tool in
    occystrap)
      /usr/bin/time -f '%e %U %S %M' -o "$tf" "$OCCY" --insecure --progress none \
        push "$STORE" "$LAB_PUSH_PLAIN/bench/occy-$rep" >"$log" 2>&1 || rc=$? ;;
    again)
      /usr/bin/time -f '%e %U %S %M' -o "$tf" "$OCCY" --insecure --progress none \
        push "$STORE" "$LAB_PUSH_PLAIN/bench/occy-$rep" >"$log" 2>&1 || rc=$? ;;
    skopeo-sync)
      mkdir -p "$TMP/skopeo-tmp"
      sed "s/^127.0.0.1:PLAIN_PORT:/$LAB_PLAIN:/" "$TMP/sync.yaml.in" >"$TMP/sync.yaml"
      /usr/bin/time -f '%e %U %S %M' -o "$tf" skopeo --tmpdir "$TMP/skopeo-tmp" --policy "$POLICY" \
        sync --src yaml --dest docker --dest-tls-verify=false "$TMP/sync.yaml" \
        "$LAB_PUSH_PLAIN/bench/skopeo-$rep" >"$log" 2>&1 || rc=$? ;;
    mirror-to)
      sed "s/^127.0.0.1:PLAIN_PORT/$LAB_PLAIN/" "$TMP/list.in" >"$TMP/list.txt"
      printf '{"registries": {"%s": {"insecure": true}, "%s": {"insecure": true}}}\n' "$LAB_PLAIN" \
        "$LAB_PUSH_PLAIN" >"$TMP/mirror-to.json"
      /usr/bin/time -f '%e %U %S %M' -o "$tf" "$OCCY" --config "$TMP/mirror-to.json" --progress none \
        mirror "$TMP/list.txt" --to "$LAB_PUSH_PLAIN/bench/mirror-$rep" >"$log" 2>&1 || rc=$? ;;
  esac
  local wall user sys rss
  read -r wall user sys rss < <(tail -n 1 "$tf")
  if [ "$rc" != 0 ]; then
    say "$tool pass $rep FAILED (exit $rc), log $log"
    tail -n 5 "$log" >&2
  else
    rm -f "$log"
    awk -v t="$tool" -v r="$([ "$rep" = 0 ] && echo warm || echo "$rep/$REPS")" -v w="$wall" \
      -v u="$user" -v s="$sys" -v m="$rss" 'BEGIN {
        printf "bench-push: %-12s %-5s %7.2f s wall %7.2f s cpu %7.1f MB peak RSS\n", t, r, w, u + s, m / 1024 }'
  fi
  [ "$rep" = 0 ] || echo "$tool,$rep,$rc,$wall,$user,$sys,$rss" >>"$RAW"
}
first=0
[ "$QUICK" = 0 ] || first=1
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$first" "$REPS"); do
  [ "$rep" = "$first" ] || lab_up
  for tool in "${TOOLS[@]}"; do run_one "$tool" "$rep"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 5. report ----------------------------------------------------------------------------------
"$PY" - "$RAW" "$OUT" "$bytes" "$load_before" "$load_after" "$("$OCCY" --version | head -n1)" \
  "$(skopeo --version)" "${IMAGES[*]}" <<'EOF'
import csv, statistics, sys
raw, out, nbytes, lb, la, occy_v, skopeo_v, images = sys.argv[1:]
rows = [r for r in csv.DictReader(open(raw)) if r["rc"] == "0"]
med = {}
for tool in ("occystrap", "again", "skopeo-sync", "mirror-to"):
    rs = [r for r in rows if r["tool"] == tool]
    if rs:
        med[tool] = {k: statistics.median(float(r[k]) for r in rs) for k in ("wall_s", "user_s", "sys_s", "maxrss_kb")}
lines = ["# push bench", "",
         f"- images: {images}, {int(nbytes) / 1e6:.1f} MB of distinct blobs",
         f"- versions: {occy_v}; {skopeo_v}",
         f"- load average before {lb}, after {la}; medians of {len([r for r in rows if r['tool'] == 'occystrap'])} passes",
         "", "| tool | wall s | cpu s | MB/s | peak RSS MB | /skopeo-sync |", "|---|---:|---:|---:|---:|---:|"]
sk = med.get("skopeo-sync", {}).get("wall_s")
for tool, m in med.items():
    ratio = f"{m['wall_s'] / sk:.2f}" if sk else "-"
    lines.append(f"| {tool} | {m['wall_s']:.2f} | {m['user_s'] + m['sys_s']:.2f} | "
                 f"{int(nbytes) / 1e6 / m['wall_s']:.0f} | {m['maxrss_kb'] / 1024:.1f} | {ratio} |")
lines += ["", "| target | measured | verdict |", "|---|---:|---|"]
if "occystrap" in med and sk:
    r = med["occystrap"]["wall_s"] / sk
    lines.append(f"| push <= 0.5x skopeo sync --dest docker | {r:.2f} | {'met' if r <= 0.5 else 'missed'} |")
if "mirror-to" in med and sk:
    r = med["mirror-to"]["wall_s"] / sk
    lines.append(f"| mirror --to / skopeo sync --dest docker (no target) | {r:.2f} | - |")
if "occystrap" in med:
    rss = med["occystrap"]["maxrss_kb"] / 1024
    lines.append(f"| peak RSS <= 64 MB | {rss:.1f} MB | {'met' if rss <= 64 else 'missed'} |")
text = "\n".join(lines) + "\n"
print(text)
open(out + "/push.md", "w").write(text)
with open(out + "/push.csv", "w") as f:
    f.write("tool,wall_s,cpu_s,maxrss_kb\n")
    for tool, m in med.items():
        f.write(f"{tool},{m['wall_s']},{m['user_s'] + m['sys_s']},{m['maxrss_kb']}\n")
EOF
say "done: $OUT/push.md, $OUT/push.csv, every run in $RAW"
