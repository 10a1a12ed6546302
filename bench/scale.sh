#!/usr/bin/env bash
# scale.sh - the bench's scale row: occystrap mirror over lists of 1,000 and 10,000 tags
# (bench/README.md, "Scale").
#
#   bash bench/scale.sh [--reps N] [--reruns R] [--sizes "1000 10000"]
#   bash bench/run.sh --scale     (runs this after the main bench, on the same lab)
#
# 1. builds occystrap (Release) in build-bench/ like run.sh, or takes $OCCYSTRAP
# 2. starts the bench's lab in bench/out/lab, unless $LAB_DIR names a running one
# 3. pushes 10,000 images to it with the registry API (tests/lab/push_many.py): 20
#    repositories bench/scale/r000..r019, tags t00000..t09999 round robin, each image one
#    shared 4 KiB layer and a config of its own; kept in the lab's storage, so a rerun
#    pushes nothing (a stamp file in the storage records what was pushed). The list of
#    1,000 is the first 1,000 of those.
# 4. for each size: occystrap mirror into a fresh store (first run), the same again (the
#    no-op rerun), and `curl --parallel --parallel-max C -I` of the same manifests with the
#    same Accept header (the limit: C = the per-registry cap, 8), these two alternated R
#    times (default 3); after all reps, for 1,000,
#    `skopeo sync` into dir: (the peer, first run only: it has no incremental mode for dir:).
#    Nothing is deleted between timed runs: a used store is moved aside and all are
#    removed at the end. On ext4 without a journal, files created within a minute of
#    many deletions are slow to allocate (the kernel skips each recently freed inode
#    in turn): 1.3 s more system time in a 1,000-tag run that followed the deletion of
#    40,000 files. skopeo, which deletes its temporaries as it goes,
#    runs after the occystrap runs for that reason.
# 5. prints a table (wall, CPU, peak RSS; medians of N reps) and the ratios
#    t(10,000)/t(1,000) and rerun/curl, and writes bench/out/scale.csv and scale.md.
# Nothing is asserted: the exit status is 0 unless the harness fails. OCCY_BENCH_SETTLE
# (seconds, default 65) is the wait before the first timed run, for the same reason.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
PY=/usr/bin/python3
REPS=1
RERUNS=3
SIZES="1000 10000"
CONC=8
PREFIX=bench/scale
TOTAL=10000
RUN_TIMEOUT=${OCCY_BENCH_TIMEOUT:-900}
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=$2; shift 2 ;;
    --reruns) RERUNS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bash bench/scale.sh [--reps N] [--reruns R] [--sizes \"1000 10000\"]" >&2; exit 2 ;;
  esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] && [[ "$RERUNS" =~ ^[1-9][0-9]*$ ]] ||
  { echo "scale: --reps and --reruns want a number" >&2; exit 2; }
for n in $SIZES; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] && [ "$n" -le "$TOTAL" ] || { echo "scale: sizes are 1..$TOTAL" >&2; exit 2; }
done
say() { echo "scale: $*"; }
die() { echo "scale: ERROR: $*" >&2; exit 1; }
for t in curl skopeo jq cmake timeout /usr/bin/time "$PY"; do
  command -v "$t" >/dev/null || die "$t is missing; run: bash scripts/setup.sh"
done
mkdir -p "$OUT"

# --- build
if [ -n "${OCCYSTRAP:-}" ]; then
  OCCY=$OCCYSTRAP
else
  BUILD=${OCCY_BENCH_BUILD:-$ROOT/build-bench}
  OCCY=$BUILD/occystrap
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/scale-build.log" 2>&1 ||
      die "cmake configure failed ($OUT/scale-build.log)"
  fi
  cmake --build "$BUILD" -j"$(nproc)" --target occystrap >>"$OUT/scale-build.log" 2>&1 ||
    die "build failed ($OUT/scale-build.log)"
fi
[ -x "$OCCY" ] || die "$OCCY is not an executable"

# --- lab
TMP=$OUT/scale-tmp
lab_started=0
cleanup() {
  rm -rf "$TMP"
  if [ "$lab_started" = 1 ]; then
    bash "$ROOT/tests/lab/lab.sh" stop "$LAB" >>"$OUT/scale-lab.log" 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -n "${LAB_DIR:-}" ] && [ -s "$LAB_DIR/env.sh" ]; then
  LAB=$LAB_DIR
  say "using the running lab in $LAB"
else
  LAB=$OUT/lab
  say "starting the lab in $LAB"
  lab_started=1
  bash "$ROOT/tests/lab/lab.sh" start "$LAB" >"$OUT/scale-lab.log" 2>&1 ||
    die "lab start failed ($OUT/scale-lab.log)"
fi
# shellcheck disable=SC1091
source "$LAB/env.sh"
rm -rf "$TMP"
mkdir -p "$TMP"

# --- the images (pushed once; the stamp names the generator and the count)
STAMP=$LAB_STORAGE/occy-bench-scale.txt
WANT_STAMP="push_many $PREFIX repos=20 tags=$TOTAL layers=1 bytes=4096 seed=12"
REFS=$OUT/scale-refs.txt
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT_STAMP" ] || [ ! -s "$REFS" ] ||
  [ "$(curl -s "http://$LAB_PLAIN/v2/$PREFIX/r019/tags/list" | jq '.tags | length')" != $((TOTAL / 20)) ]; then
  say "pushing $TOTAL images with the registry API (about a minute)"
  t0=$(date +%s)
  "$PY" "$ROOT/tests/lab/push_many.py" "$LAB_PLAIN" --prefix "$PREFIX" --repos 20 --tags "$TOTAL" \
    --layer-bytes 4096 --seed 12 --list "$REFS"
  echo "$WANT_STAMP" >"$STAMP"
  say "pushed in $(($(date +%s) - t0)) s"
else
  say "the lab already serves the $TOTAL images"
  # the list names the registry it was pushed to; a restarted lab listens elsewhere
  sed -i -E "s#^[^/]+/#$LAB_PLAIN/#" "$REFS"
fi
printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" >"$TMP/config.json"
ACCEPT="application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
POLICY=$TMP/policy.json
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$POLICY"

RAW=$OUT/scale-raw.csv
echo "size,tool,run,rep,rc,wall_s,user_s,sys_s,maxrss_kb" >"$RAW"
# timed SIZE TOOL RUN REP CMD...: one run under /usr/bin/time, a line into $RAW
timed() {
  local size=$1 tool=$2 run=$3 rep=$4 rc=0 tf=$TMP/time.txt
  shift 4
  sync
  /usr/bin/time -f '%e %U %S %M' -o "$tf" timeout -k 5 "$RUN_TIMEOUT" "$@" \
    >"$TMP/last.log" 2>&1 || rc=$?
  local wall user sys rss
  read -r wall user sys rss < <(tail -n 1 "$tf")
  echo "$size,$tool,$run,$rep,$rc,$wall,$user,$sys,$rss" >>"$RAW"
  if [ "$rc" != 0 ]; then
    echo "scale: $tool $run of $size FAILED (exit $rc):" >&2
    tail -n 5 "$TMP/last.log" | sed 's/^/    /' >&2
  else
    awk -v s="$size" -v t="$tool" -v r="$run" -v w="$wall" -v u="$user" -v y="$sys" -v m="$rss" \
      'BEGIN { printf "scale: %6d %-9s %-6s %8.2f s wall %7.2f s cpu %7.1f MB peak RSS\n", s, t, r, w, u + y, m / 1024 }'
  fi
}

# set_aside DIR: move DIR (when there) into $TMP/aside, removed at the end
set_aside() {
  [ -e "$1" ] || return 0
  mkdir -p "$TMP/aside"
  mv "$1" "$(mktemp -u "$TMP/aside/$(basename "$1").XXXXXX")"
}

# whatever deleted files before the bench (a test run, a previous bench) is a
# minute past before the first timed run (see the top)
SETTLE=${OCCY_BENCH_SETTLE:-65}
say "settling for $SETTLE s (OCCY_BENCH_SETTLE) after the deletions before the bench"
sync
sleep "$SETTLE"
echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ) nproc=$(nproc) load_before=$(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT/scale-meta.txt"
for rep in $(seq 1 "$REPS"); do
  for n in $SIZES; do
    head -n "$n" "$REFS" >"$TMP/list-$n.txt"
    sed -E "s#^([^/]+)/(.*):([^:]+)\$#url = \"http://\\1/v2/\\2/manifests/\\3\"#" "$TMP/list-$n.txt" \
      >"$TMP/curl-$n.cfg"
    set_aside "$TMP/store"
    timed "$n" occystrap first "$rep" "$OCCY" --config "$TMP/config.json" --progress none -q \
      --json-file "$TMP/first-$n.json" mirror "$TMP/list-$n.txt" "$TMP/store"
    # the rerun and the limit, alternated RERUNS times (medians): on a shared machine one
    # run of either says little
    for r in $(seq 1 "$RERUNS"); do
      timed "$n" occystrap rerun "$rep.$r" "$OCCY" --config "$TMP/config.json" --progress none \
        -q mirror "$TMP/list-$n.txt" "$TMP/store"
      timed "$n" curl heads "$rep.$r" curl -sS --parallel --parallel-max "$CONC" -I \
        -H "Accept: $ACCEPT" -K "$TMP/curl-$n.cfg" -o /dev/null
    done
    set_aside "$TMP/store"
  done
done
# the peer, after every occystrap run (see the top)
for rep in $(seq 1 "$REPS"); do
  for n in $SIZES; do
    if [ "$n" -le 1000 ]; then
      "$PY" - "$TMP/list-$n.txt" "$LAB_PLAIN" >"$TMP/sync-$n.yaml" <<'PYEOF'
import sys
reg = sys.argv[2]
repos = {}
for line in open(sys.argv[1]):
    name, _, tag = line.strip()[len(reg) + 1:].rpartition(":")
    repos.setdefault(name, []).append(tag)
print("%s:\n  tls-verify: false\n  images:" % reg)
for name, tags in repos.items():
    print("    %s: [%s]" % (name, ", ".join('"%s"' % t for t in tags)))
PYEOF
      set_aside "$TMP/sync" && mkdir -p "$TMP/skopeo-tmp"
      timed "$n" skopeo first "$rep" skopeo --tmpdir "$TMP/skopeo-tmp" --policy "$POLICY" sync \
        --src yaml --dest dir "$TMP/sync-$n.yaml" "$TMP/sync"
      set_aside "$TMP/sync"
      set_aside "$TMP/skopeo-tmp"
    fi
  done
done
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/scale-meta.txt"
rm -rf "$TMP/aside"

# --- report: medians, ratios
"$PY" - "$RAW" "$OUT/scale.csv" "$OUT/scale.md" "$OUT/scale-meta.txt" <<'PYEOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
med = {}
for key in sorted({(int(r["size"]), r["tool"], r["run"]) for r in rows}):
    ok = [r for r in rows if (int(r["size"]), r["tool"], r["run"]) == key and r["rc"] == "0"]
    if not ok:
        med[key] = None
        continue
    f = lambda k: statistics.median(float(r[k]) for r in ok)
    med[key] = {"wall": f("wall_s"), "cpu": f("user_s") + f("sys_s"), "rss": f("maxrss_kb") / 1024,
                "reps": len(ok)}
sizes = sorted({k[0] for k in med})
lines = ["| tags | tool | run | wall s | cpu s | peak RSS MB | per tag ms |", "|---:|---|---|---:|---:|---:|---:|"]
out = csv.writer(open(sys.argv[2], "w"))
out.writerow(["tags", "tool", "run", "wall_s", "cpu_s", "peak_rss_mb", "reps"])
for key, m in sorted(med.items(), key=lambda kv: (kv[0][0], ["occystrap", "curl", "skopeo"].index(kv[0][1]), kv[0][2])):
    if m is None:
        lines.append("| %d | %s | %s | failed | | | |" % key)
        continue
    out.writerow([key[0], key[1], key[2], "%.2f" % m["wall"], "%.2f" % m["cpu"], "%.1f" % m["rss"], m["reps"]])
    lines.append("| %d | %s | %s | %.2f | %.2f | %.1f | %.3f |" % (key[0], key[1], key[2], m["wall"], m["cpu"], m["rss"], 1000 * m["wall"] / key[0]))
lines.append("")
lines.append("| ratio | value | target |")
lines.append("|---|---:|---|")
def get(n, tool, run):
    m = med.get((n, tool, run))
    return m["wall"] if m else None
if len(sizes) >= 2:
    a, b = sizes[0], sizes[-1]
    for run in ("first", "rerun"):
        x, y = get(a, "occystrap", run), get(b, "occystrap", run)
        if x and y:
            lines.append("| t(%d)/t(%d), %s run | %.2f | <= %.1f |" % (b, a, run, y / x, 1.1 * b / a))
for n in sizes:
    x, y = get(n, "occystrap", "rerun"), get(n, "curl", "heads")
    if x and y:
        lines.append("| rerun / curl --parallel HEAD, %d tags | %.2f | <= 1.5 |" % (n, x / y))
    x, y = get(n, "occystrap", "first"), get(n, "skopeo", "first")
    if x and y:
        lines.append("| first run / skopeo sync, %d tags | %.2f | |" % (n, x / y))
    m = med.get((n, "occystrap", "first"))
    if m:
        lines.append("| peak RSS, first run, %d tags | %.1f MB | < 100 MB |" % (n, m["rss"]))
meta = open(sys.argv[4]).read().split()
text = "\n".join(["Scale row (" + " ".join(meta) + ")", ""] + lines) + "\n"
open(sys.argv[3], "w").write(text)
print(text)
PYEOF
say "wrote $OUT/scale.csv, $OUT/scale.md ($OUT/scale-raw.csv: every run)"
