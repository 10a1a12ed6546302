#!/usr/bin/env bash
# run.sh - the occystrap benchmark, one command (bench/README.md explains it).
#
#   bash bench/run.sh [--reps N] [--quick] [--scale] [--only images|mirror|expand]
#
# 1. builds occystrap (Release) in build-bench/, or reuses that build
# 2. starts its own loopback lab registry in bench/out/lab (stopped again at exit)
# 3. builds the corpus once (bench/corpus.py, cached in bench/out/corpus) and pushes it to
#    the lab, unless the lab's storage (kept in bench/out/lab/storage) already serves it
# 4. one warm-up pass, then N passes (default 3); each pass runs, for every image, our
#    fetch-to-tarfile, skopeo's copy to docker-archive, and the floor commands on the
#    image's blob files in the registry's storage (igzip of the largest layer alone, igzip and
#    SHA-256 of every layer, SHA-256 of the layers' tars, dd conv=fsync of as many bytes as
#    our command wrote), each under /usr/bin/time; then the mirror row (mirror against skopeo
#    sync, and the same floor over the list's distinct layers) and the expand row
# 5. bench/report.py prints the table (medians) and writes bench/out/results.{csv,md}
#    and bench/out/ratios.png
#
# --quick: 1 pass and no warm-up pass (to check the harness, not to quote numbers).
# --scale: then also the scale row (bench/scale.sh: mirror of 1,000 and 10,000 tags) on the
# same lab; about 5 more minutes the first time (pushing 10,000 images), 3 later.
# --only ROW: measure one part only: the per-image rows, the mirror row or the expand row
# (the report shows the others as not measured).
# Environment: OCCYSTRAP=/path/to/occystrap benches that binary instead of building one;
# OCCY_BENCH_BUILD=DIR builds in DIR instead of build-bench/; OCCY_BENCH_TIMEOUT=S kills a
# run after S seconds (default 60; an image+tool that timed out is not run again).
# Every byte it writes is under bench/out/ (and the build dir). Targets are reported, never
# asserted: the exit status is 0 unless the harness itself fails.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
PY=/usr/bin/python3
REPS=3
QUICK=0
SCALE=0
ONLY=
RUN_TIMEOUT=${OCCY_BENCH_TIMEOUT:-60}
IMAGES=(realistic big many shared-1)
TOOLS=(occystrap skopeo limit-pipe stream igzip sha-gz sha-tar dd)

usage() {
  echo "usage: bash bench/run.sh [--reps N] [--quick] [--scale] [--only images|mirror|expand]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) [ $# -ge 2 ] || usage; REPS=$2; shift 2 ;;
    --reps=*) REPS=${1#--reps=}; shift ;;
    --quick) QUICK=1; REPS=1; shift ;;
    --scale) SCALE=1; shift ;;
    --only) [ $# -ge 2 ] || usage; ONLY=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
  esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || usage
case "$ONLY" in ""|images|mirror|expand) ;; *) usage ;; esac
wanted() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

say() { echo "bench: $*"; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

T_START=$(date +%s)
mkdir -p "$OUT"

# --- tools and disk -------------------------------------------------------------------
for t in skopeo umoci igzip openssl gnuplot gzip cmake timeout /usr/bin/time "$PY"; do
  command -v "$t" >/dev/null || die "$t is missing; run: bash scripts/setup.sh"
done
avail_kb=$(df -Pk "$OUT" | awk 'NR==2 {print $4}')
need_gb=4
[ -s "$OUT/corpus/corpus.json" ] || need_gb=7
if [ "$avail_kb" -lt $((need_gb * 1024 * 1024)) ]; then
  die "only $((avail_kb / 1024)) MB free under $OUT; the bench needs about $need_gb GB"
fi

# --- 1. build -----------------------------------------------------------------------------
if [ -n "${OCCYSTRAP:-}" ]; then
  OCCY=$OCCYSTRAP
  [ -x "$OCCY" ] || die "OCCYSTRAP=$OCCY is not an executable"
  say "benching $OCCY (OCCYSTRAP)"
else
  BUILD=${OCCY_BENCH_BUILD:-$ROOT/build-bench}
  OCCY=$BUILD/occystrap
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    say "configuring a Release build in $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/build.log" 2>&1 \
      || { tail -n 30 "$OUT/build.log" >&2; die "cmake configure failed ($OUT/build.log)"; }
  fi
  bt=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
  [ "$bt" = Release ] || say "WARNING: $BUILD is a '$bt' build, not Release"
  say "building occystrap in $BUILD"
  cmake --build "$BUILD" -j"$(nproc)" --target occystrap >>"$OUT/build.log" 2>&1 \
    || { tail -n 30 "$OUT/build.log" >&2; die "build failed ($OUT/build.log)"; }
fi

# --- 2. lab ---------------------------------------------------------------------------------
LAB=$OUT/lab
TMP=$OUT/tmp
LOGS=$OUT/logs
lab_started=0
cleanup() {
  rm -rf "$TMP"
  if [ "$lab_started" = 1 ]; then
    bash "$ROOT/tests/lab/lab.sh" stop "$LAB" >>"$OUT/lab.log" 2>&1 \
      || echo "bench: WARNING: stopping the lab failed, see $OUT/lab.log" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting the lab in $LAB"
lab_started=1
bash "$ROOT/tests/lab/lab.sh" start "$LAB" >"$OUT/lab.log" 2>&1 \
  || { tail -n 20 "$OUT/lab.log" >&2; die "lab start failed ($OUT/lab.log)"; }
# shellcheck disable=SC1091
source "$LAB/env.sh"

# --- 3. corpus --------------------------------------------------------------------------------
t0=$(date +%s)
"$PY" "$HERE/corpus.py" build "$OUT/corpus"
"$PY" "$HERE/corpus.py" push "$OUT/corpus" "$LAB_PLAIN"
say "corpus ready in $(($(date +%s) - t0))s"

POLICY=$OUT/corpus/policy.json   # written by corpus.py push: insecureAcceptAnything
IMAGES_JSON=$OUT/corpus/images.json

TARS_DIR=$OUT/corpus/tars # each distinct layer's tar, for the floor's SHA-256 of the tar

# image_field NAMES FIELD: repo, tag, gz_bytes, tar_bytes or nlayers of the first image of
# NAMES (comma-separated), or, over the distinct layers of all of them: files (their blobs in
# the registry's storage, one per line), largest (the largest blob), tars ("TAR SIZE BLOB" a
# line, TAR under TARS_DIR)
image_field() {
  "$PY" - "$IMAGES_JSON" "$1" "$2" "$LAB_STORAGE" "$TARS_DIR" <<'EOF'
import json, sys
images = json.load(open(sys.argv[1]))
names, f, storage, tars = sys.argv[2].split(","), sys.argv[3], sys.argv[4], sys.argv[5]
im = images[names[0]]
seen = {}
for n in names:
    for l in images[n]["layers"]:
        seen.setdefault(l["digest"], l)
def blob(d):
    h = d.split(":", 1)[1]
    return f"{storage}/docker/registry/v2/blobs/sha256/{h[:2]}/{h}/data"
if f == "nlayers":
    print(len(im["layers"]))
elif f == "files":
    for d in seen:
        print(blob(d))
elif f == "largest":
    print(blob(max(seen.values(), key=lambda l: l["size"])["digest"]))
elif f == "tars":
    for d, l in seen.items():
        print(f"{tars}/{d.split(':', 1)[1]}.tar {l['tar_size']} {blob(d)}")
else:
    print(im[f])
EOF
}

# ensure_tars NAMES: the distinct layers' tars of the images NAMES in TARS_DIR, made once
# with igzip and kept with the corpus (a file of the wrong size is made again)
ensure_tars() {
  local path size blob
  mkdir -p "$TARS_DIR"
  while read -r path size blob; do
    if [ "$(stat -c %s "$path" 2>/dev/null || echo -1)" != "$size" ]; then
      { igzip -dc "$blob" >"$path.tmp" && mv -f "$path.tmp" "$path"; } \
        || die "cannot unpack $blob into $path"
    fi
  done < <(image_field "$1" tars)
}

# the mirror row: the three sharing tags plus big and many in one run
MIRROR_SET=(shared-1 shared-2 shared-3 big many)
MIRROR_NAMES=$(IFS=,; echo "${MIRROR_SET[*]}")
declare -A REPO TAG FILES LARGEST TARS WRITTEN
for im in "${IMAGES[@]}" "${MIRROR_SET[@]}"; do
  REPO[$im]=$(image_field "$im" repo)
  TAG[$im]=$(image_field "$im" tag)
done
for im in "${IMAGES[@]}" mirror; do
  names=$im
  [ "$im" != mirror ] || names=$MIRROR_NAMES
  FILES[$im]=$(image_field "$names" files)
  LARGEST[$im]=$(image_field "$names" largest)
  TARS[$im]=$(image_field "$names" tars | cut -d' ' -f1)
  while IFS= read -r f; do
    [ -f "$f" ] || die "blob file $f of $im is not in the lab storage"
  done <<<"${FILES[$im]}"
done
t0=$(date +%s)
ensure_tars "$(IFS=,; echo "${IMAGES[*]}"),$MIRROR_NAMES"
say "layer tars ready in $TARS_DIR ($(($(date +%s) - t0))s)"

# --- 4. measure -----------------------------------------------------------------------------------
RAW=$OUT/raw.partial.csv     # renamed to raw.csv when every pass is done
rm -rf "$LOGS" "$TMP"
mkdir -p "$LOGS" "$TMP"
echo "image,tool,rep,rc,wall_s,user_s,sys_s,maxrss_kb,bytes" >"$RAW"

# TIMED CMD...: run CMD under /usr/bin/time (into $tf) and timeout; time's figures include
# the command's children (wait4 rusage), so a pipeline in `bash -c` is measured whole.
TIMED() {
  sync # earlier runs' dirty pages are flushed now, not charged to this command
  /usr/bin/time -f '%e %U %S %M' -o "$tf" timeout -k 5 "$RUN_TIMEOUT" "$@"
}

# The mirror row's list, skopeo sync's YAML and our config.
: >"$TMP/mirror.list"
{
  echo "$LAB_PLAIN:"
  echo "  tls-verify: false"
  echo "  images:"
} >"$TMP/sync.yaml"
declare -A SYNC_TAGS
for im in "${MIRROR_SET[@]}"; do
  echo "$LAB_PLAIN/${REPO[$im]}:${TAG[$im]}" >>"$TMP/mirror.list"
  SYNC_TAGS[${REPO[$im]}]="${SYNC_TAGS[${REPO[$im]}]:+${SYNC_TAGS[${REPO[$im]}]}, }\"${TAG[$im]}\""
done
for repo in "${!SYNC_TAGS[@]}"; do
  echo "    $repo: [${SYNC_TAGS[$repo]}]" >>"$TMP/sync.yaml"
done
printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" >"$TMP/mirror.json"

declare -A TIMED_OUT
# run_one ROW TOOL REP: one timed run (REP 0 is the warm-up, not recorded). ROW is an image
# (occystrap: fetch-to-tarfile; skopeo: copy to docker-archive) or mirror (occystrap mirror
# into a fresh store; skopeo sync --dest dir). The floor tools work on the row's distinct
# layer blobs; dd writes as many bytes as occystrap's run of the row just wrote (its tarball,
# or everything in its store).
run_one() {
  local im=$1 tool=$2 rep=$3 rc=0 tf=$TMP/time.txt log=$LOGS/$1.$2.$3.log bytes=
  local -a files tars
  if [ -n "${TIMED_OUT[$im.$tool]:-}" ]; then
    [ "$rep" = 0 ] || echo "$im,$tool,$rep,124,,,,," >>"$RAW"
    return 0
  fi
  mapfile -t files <<<"${FILES[$im]}"
  mapfile -t tars <<<"${TARS[$im]}"
  rm -rf "$TMP/work" "$tf"
  mkdir -p "$TMP/work/skopeo-tmp"
  case "$im.$tool" in
    mirror.occystrap)
      TIMED "$OCCY" --config "$TMP/mirror.json" --progress none mirror "$TMP/mirror.list" \
        "$TMP/work/store" >"$log" 2>&1 || rc=$?
      [ $rc != 0 ] || [ -s "$TMP/work/store/oci/index.json" ] || { echo "no oci/index.json" >>"$log"; rc=99; }
      [ $rc != 0 ] || bytes=$(du -sb "$TMP/work/store" | cut -f1) ;;
    mirror.occystrap-no-exact)
      TIMED "$OCCY" --config "$TMP/mirror.json" --progress none mirror --no-exact \
        "$TMP/mirror.list" "$TMP/work/store" >"$log" 2>&1 || rc=$?
      [ $rc != 0 ] || [ ! -e "$TMP/work/store/oci" ] || { echo "oci/ written" >>"$log"; rc=99; }
      [ $rc != 0 ] || bytes=$(du -sb "$TMP/work/store" | cut -f1) ;;
    mirror.skopeo)
      TIMED skopeo --tmpdir "$TMP/work/skopeo-tmp" --policy "$POLICY" sync --src yaml \
        --dest dir "$TMP/sync.yaml" "$TMP/work/sync" >"$log" 2>&1 || rc=$? ;;
    *.occystrap)
      TIMED "$OCCY" --insecure -q fetch-to-tarfile "$LAB_PLAIN" "${REPO[$im]}" "${TAG[$im]}" \
        "$TMP/work/ours.tar" >"$log" 2>&1 || rc=$?
      [ $rc != 0 ] || [ -s "$TMP/work/ours.tar" ] || { echo "no output tar" >>"$log"; rc=99; }
      [ $rc != 0 ] || bytes=$(stat -c %s "$TMP/work/ours.tar") ;;
    *.skopeo)
      TIMED skopeo --tmpdir "$TMP/work/skopeo-tmp" --policy "$POLICY" \
        copy -q --src-tls-verify=false --src-no-creds \
        "docker://$LAB_PLAIN/${REPO[$im]}:${TAG[$im]}" \
        "docker-archive:$TMP/work/skopeo.tar:${REPO[$im]}:${TAG[$im]}" >"$log" 2>&1 || rc=$?
      [ $rc != 0 ] || [ -s "$TMP/work/skopeo.tar" ] || { echo "no output tar" >>"$log"; rc=99; } ;;
    *.limit-pipe)
      TIMED bash -c 'set -o pipefail; igzip -dc "$@" | openssl dgst -sha256' _ "${files[@]}" \
        >"$log" 2>&1 || rc=$? ;;
    *.stream)
      TIMED igzip -dc "${LARGEST[$im]}" >/dev/null 2>"$log" || rc=$? ;;
    *.igzip)
      TIMED igzip -dc "${files[@]}" >/dev/null 2>"$log" || rc=$? ;;
    *.sha-gz)
      TIMED openssl dgst -sha256 "${files[@]}" >"$log" 2>&1 || rc=$? ;;
    *.sha-tar)
      TIMED openssl dgst -sha256 "${tars[@]}" >"$log" 2>&1 || rc=$? ;;
    *.dd)
      bytes=${WRITTEN[$im]:-}
      if [ -z "$bytes" ]; then
        echo "no size: occystrap's run of $im failed in this pass" >"$log"
        rc=97
      else
        TIMED dd if=/dev/zero of="$TMP/work/dd.bin" bs=1M count="$bytes" iflag=count_bytes \
          conv=fsync status=none >"$log" 2>&1 || rc=$?
      fi ;;
  esac
  rm -rf "$TMP/work"
  if [ "$tool" = occystrap ]; then
    WRITTEN[$im]=$bytes
  fi
  # time writes "Command exited with non-zero status N" first when rc != 0
  local wall user sys rss
  read -r wall user sys rss < <(tail -n 1 "$tf" 2>/dev/null || echo "")
  if [ $rc != 0 ] || [ -z "${rss:-}" ]; then
    [ $rc != 0 ] || rc=98
    if [ $rc = 124 ] || [ $rc = 137 ]; then
      rc=124
      TIMED_OUT[$im.$tool]=1
      echo "timed out after ${RUN_TIMEOUT}s; not run again in this bench" >>"$log"
    fi
    printf 'bench: %-9s %-10s %-6s FAILED (exit %s), log %s:\n' "$im" "$tool" \
      "${rep/#0/warm}" "$rc" "$log" >&2
    tail -n 5 "$log" | sed 's/^/    /' >&2
    wall=${wall:-} user=${user:-} sys=${sys:-} rss=${rss:-}
  else
    rm -f "$log"
  fi
  if [ "$rep" != 0 ]; then
    echo "$im,$tool,$rep,$rc,${wall:-},${user:-},${sys:-},${rss:-},${bytes:-}" >>"$RAW"
  fi
  if [ $rc = 0 ]; then
    awk -v im="$im" -v tool="$tool" -v rep="$([ "$rep" = 0 ] && echo warm || echo "$rep/$REPS")" \
      -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" 'BEGIN {
        printf "bench: %-9s %-10s %-5s %7.2f s wall %7.2f s cpu %7.1f MB peak RSS\n",
               im, tool, rep, w, u + s, m / 1024 }'
  fi
}

# machine and versions, for the report
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc=$(nproc)"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "disk=$(df -PT "$OUT" | awk 'NR==2 {print $2 " on " $1}')"
  echo "occystrap=$("$OCCY" --version 2>&1 | head -n 1)"
  echo "skopeo=$(skopeo --version 2>&1 | head -n 1)"
  echo "igzip=$(igzip --version 2>&1 | head -n 1)"
  echo "openssl=$(openssl version 2>&1 | head -n 1)"
  echo "reps=$REPS"
  echo "warmup=$((1 - QUICK))"
  echo "push_format=v2s2"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/meta.partial.txt"

first=0              # pass 0 is the warm-up
if [ "$QUICK" = 1 ]; then first=1; fi
say "measuring: ${IMAGES[*]} x ${TOOLS[*]}, mirror; $([ "$QUICK" = 1 ] || echo "1 warm-up pass + ")$REPS pass(es)"
t0=$(date +%s)
for rep in $(seq "$first" "$REPS"); do
  wanted images || break
  for im in "${IMAGES[@]}"; do
    for tool in "${TOOLS[@]}"; do
      run_one "$im" "$tool" "$rep"
    done
  done
done
# --- 4b. mirror row: occystrap mirror into a fresh store (with the exact bytes, the default,
# and with --no-exact: what keeping them costs) against skopeo sync into dir (which keeps the
# compressed blobs only), and the floor of the list's distinct layers ------------------------
for rep in $(seq "$first" "$REPS"); do
  wanted mirror || break
  for tool in occystrap occystrap-no-exact skopeo stream igzip sha-gz sha-tar dd; do
    run_one mirror "$tool" "$rep"
  done
done

# record_run ROW TOOL REP RC TIMEFILE LOG: print one timed run of the expand row and add it
# to the raw CSV (REP 0, the warm-up, is printed only).
record_run() {
  local row=$1 tool=$2 rep=$3 rc=$4 tf=$5 log=$6
  local wall user sys rss
  read -r wall user sys rss < <(tail -n 1 "$tf" 2>/dev/null || echo "")
  if [ $rc != 0 ] || [ -z "${rss:-}" ]; then
    printf 'bench: %-9s %-10s %-6s FAILED (exit %s), log %s\n' "$row" "$tool" "$rep" "$rc" "$log" >&2
    tail -n 5 "$log" | sed 's/^/    /' >&2
  else
    rm -f "$log"
    awk -v row="$row" -v tool="$tool" -v rep="$rep" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" 'BEGIN {
      printf "bench: %-9s %-10s %-5s %7.2f s wall %7.2f s cpu %7.1f MB peak RSS\n",
             row, tool, rep, w, u + s, m / 1024 }'
  fi
  if [ "$rep" != 0 ]; then
    echo "$row,$tool,$rep,$rc,${wall:-},${user:-},${sys:-},${rss:-}," >>"$RAW"
  fi
}

# --- 4c. expand row: the realistic image's merged root filesystem, from a store ---------------
# occystrap expand (no network) against umoci unpack of the same image as an OCI layout.
if wanted expand; then
  EXP=$TMP/expand
  rm -rf "$EXP"
  mkdir -p "$EXP"
  exp_repo=$(image_field realistic repo)
  exp_tag=$(image_field realistic tag)
  "$OCCY" --insecure -q fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$exp_repo" "$exp_tag" \
    "$EXP/store" >"$LOGS/expand.prepare.log" 2>&1 || die "expand: store preparation failed"
  skopeo --tmpdir "$TMP" --policy "$POLICY" copy -q --src-tls-verify=false \
    "docker://$LAB_PLAIN/$exp_repo:$exp_tag" "oci:$EXP/layout:$exp_tag" >>"$LOGS/expand.prepare.log" 2>&1 \
    || die "expand: OCI layout for umoci failed"
  # Each run writes a fresh directory and the trees are deleted only after the
  # last run: on this machine's ext4 (mounted with discard) creating files right
  # after deleting a large tree costs seconds of system time, whoever creates them.
  run_expand() { # TOOL REP
    local tool=$1 rep=$2 rc=0 tf=$TMP/time.txt log=$LOGS/expand.$1.$2.log out=$EXP/out-$1-$2
    rm -f "$tf"
    case "$tool" in
      occystrap)
        TIMED "$OCCY" -q expand "$EXP/store" "$exp_repo" "$exp_tag" "$out" >"$log" 2>&1 || rc=$? ;;
      umoci)
        TIMED umoci unpack --image "$EXP/layout:$exp_tag" "$out" >"$log" 2>&1 || rc=$? ;;
    esac
    record_run expand "$tool" "$rep" "$rc" "$tf" "$log"
  }
  for rep in $(seq "$first" "$REPS"); do
    run_expand occystrap "$rep"
    run_expand umoci "$rep"
  done
  rm -rf "$EXP"
fi

{
  echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "measure_seconds=$(($(date +%s) - t0))"
  echo "total_seconds=$(($(date +%s) - T_START))"
} >>"$OUT/meta.partial.txt"
say "measured in $(($(date +%s) - t0))s"
mv -f "$RAW" "$OUT/raw.csv"
mv -f "$OUT/meta.partial.txt" "$OUT/meta.txt"

# --- 5. report ------------------------------------------------------------------------------------
"$PY" "$HERE/report.py" "$OUT"
if [ "$SCALE" = 1 ]; then
  LAB_DIR=$LAB OCCYSTRAP=$OCCY bash "$HERE/scale.sh" || say "WARNING: the scale row failed"
fi
say "done in $(($(date +%s) - T_START))s: $OUT/results.csv, $OUT/results.md, $OUT/ratios.png"
