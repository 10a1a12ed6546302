#!/usr/bin/env bash
# fault_matrix.sh - every network fault of the fault proxy against
# `fetch-to-tarfile` and against `mirror` into a store (issue 8, item 2).
#
# Faults (tests/lab/faultproxy.py): a cut after K body bytes, one corrupted
# byte, a stall (with --stall-timeout 1), 500, 502, 503, 429 without and with
# Retry-After, a 200 answer to a Range request after a cut, a Content-Length
# larger than the body, a slow rate. Columns (where and how often):
#   manifest-first  the first N requests of every manifest path (HEAD and GET)
#   manifest-all    every manifest request
#   blob-first      the first N requests of every blob (config and layers)
#   blob-all        every blob request (the config, fetched first, fails)
#   layer-all       every layer request (the config is served; layers fail)
# Each cell runs once per command (a fresh TARFILE directory, a fresh store)
# with -v --retries 3 --stall-timeout 1, through one fault proxy whose rules
# are replaced between cells.
# Expected: a "first" cell ends with verified content (retrying can succeed);
# an "all" cell ends with a clear error (exit 1; the error names the image,
# the manifest or blob, and the cause), except slow, which always succeeds.
# Always: no TARFILE and nothing else beside it after a failed fetch; after
# every mirror run `verify` passes and fault_check.py finds no unverified
# file in the store (and the failed images are not in catalog.json).
#
# A check that fails because of a product bug known at the time of writing
# is labelled "BUG-n" (see tests/README.md); it is NOT skipped: the test
# fails until the product is fixed. All cells run; the summary lists every
# failed check, and the exit status is 1 if there is any.
source "$(dirname "$0")/lib/common.sh"
FAULT_CHECK="$TESTS_DIR/integration/lib/fault_check.py"
NS=scratch/faults-$$-$RANDOM
T_START=$(date +%s)

IMAGES="$WORK_DIR/images.json"
$PY "$TESTS_DIR/integration/lib/store_images.py" "$LAB_PLAIN" "$IMAGES" \
  --layer base=120000 --layer la=180000 --layer lb=90000 --broken-layer broken=100000 \
  "$NS/a:v1=base,la" "$NS/b:v1=base,lb" "$NS/c:v1=broken,la" "$NS/d:v1=broken,lb" ||
  fail "pushing the test images failed"
read -r CFG_A CFG_B L_BASE L_A L_B L_BROKEN < <($PY -c 'import json,sys
f = json.load(open(sys.argv[1]))["fixtures"]
a, b, c = f[sys.argv[2] + "/a"], f[sys.argv[2] + "/b"], f[sys.argv[2] + "/c"]
print(a["config"]["digest"], b["config"]["digest"], a["layers"][0]["digest"], a["layers"][1]["digest"], b["layers"][1]["digest"], c["layers"][0]["digest"])' "$IMAGES" "$NS")

OPTS=(-v --retries 3 --stall-timeout 1)
# FAULT_ROWS="stall slow" runs only those rows (to work on one fault).
read -r -a FAULTS <<<"${FAULT_ROWS:-cut corrupt stall s500 s502 s503 s429 s429ra full200 badlength slow}"
COLUMNS=(manifest-first manifest-all blob-first blob-all layer-all)

# Known product bugs (labels used in tests/README.md and in the summary).
# known_bug FAULT COLUMN COMMAND -> label, or nothing
known_bug() {
  case "$1/$2/$3" in
  corrupt/manifest-first/*) echo "BUG-1" ;; # a corrupted manifest is not fetched again
  corrupt/blob-first/*) echo "BUG-2" ;;     # a corrupted config is not fetched again
  quiet/*) echo "BUG-3" ;;                # mirror -q prints nothing for a failed entry
  slow/manifest-*/mirror) echo "BUG-4" ;; # a transfer waits for a slow one (Connection: close server)
  esac
}

FAILED=()
CELLS=0
# cell_fail WHAT: a failed assertion of the current cell ($FAULT/$COL/$CMD)
cell_fail() {
  local bug
  bug=$(known_bug "$FAULT" "$COL" "$CMD")
  FAILED+=("$FAULT/$COL/$CMD${bug:+ [$bug]}: $*")
  CELL_OK=0
  echo "not ok - $FAULT/$COL/$CMD${bug:+ [$bug, known product bug]}: $*"
}

# One proxy for the whole matrix; each cell writes its rules and reloads them
# (SIGHUP, see faultproxy.py --rules-file), with a fresh log.
RULES_FILE="$WORK_DIR/rules.txt"
PROXY_LOG="$WORK_DIR/proxy.log"
: >"$RULES_FILE"
$PY "$TESTS_DIR/lab/faultproxy.py" --upstream "$LAB_PLAIN" --port-file "$WORK_DIR/proxy.port" \
  --log "$PROXY_LOG" --rules-file "$RULES_FILE" &
MATRIX_PROXY_PID=$!
PROXY_PIDS+=("$MATRIX_PROXY_PID")
for _ in $(seq 200); do
  [ -s "$WORK_DIR/proxy.port" ] && [ -s "$RULES_FILE.loaded" ] && break
  sleep 0.02
done
[ -s "$WORK_DIR/proxy.port" ] || fail "fault proxy did not start"
PROXY="127.0.0.1:$(cat "$WORK_DIR/proxy.port")"
LOADS=1
# set_rules RULE...: the rules of the next cell, counts at zero, log empty
set_rules() {
  printf '%s\n' "$@" >"$RULES_FILE"
  LOADS=$((LOADS + 1))
  kill -HUP "$MATRIX_PROXY_PID"
  for _ in $(seq 250); do
    [ "$(cat "$RULES_FILE.loaded" 2>/dev/null)" = "$LOADS" ] && break
    sleep 0.01
  done
  [ "$(cat "$RULES_FILE.loaded")" = "$LOADS" ] || fail "fault proxy did not reload its rules"
  : >"$PROXY_LOG"
}

# N of the "first" columns, per fault: small enough that 3 attempts suffice.
# 2 for a cut (a blob is resumed twice) and for 503; a digest or size
# mismatch is fetched again only once (DESIGN.md 4), so 1 there; 1 for the
# rest, to keep the matrix fast (a stall costs --stall-timeout, Retry-After 1 s).
first_n() {
  case $1 in
  cut | s503) echo 2 ;;
  *) echo 1 ;;
  esac
}

# rules FAULT COLUMN: the proxy rules of a cell, one a line
rules() {
  local re
  case $2 in
  manifest-*) rules_for '/manifests/' "$@" ;;
  blob-*) rules_for '/blobs/' "$@" ;;
  layer-all) # '|' separates a rule's fields: one rule per layer
    for re in "/blobs/$L_BASE" "/blobs/$L_A" "/blobs/$L_B"; do rules_for "$re" "$@"; done ;;
  esac
}
rules_for() {
  local re=$1 fault=$2 col=$3 opt count kind=blob action
  [[ $col == manifest-* ]] && kind=manifest
  case $col in
  *-first) count=$(first_n "$fault") opt='|per=path' ;;
  *) count=1000 opt='' ;;
  esac
  case $fault in
  cut) action=cut=200 ;;
  corrupt) action=corrupt=100 ;;
  stall) action=stall=2 ;;
  s500 | s502 | s503 | s429) action=status=${fault#s} ;;
  s429ra) action=status=429,retry-after=1 ;;
  badlength) action=badlength=10 ;;
  # a manifest (736 bytes) takes 1.6 s, longer than --stall-timeout 1, but
  # never idle; the blobs (about 400 kB) take about 0.4 s in all
  slow) if [ $kind = manifest ]; then action=slow=400,slowchunk=128; else action=slow=1000000,slowchunk=16384; fi ;;
  full200)
    if [ "$count" = 1000 ]; then
      echo "$re|cut=200,full200|1000"
    else
      echo "$re|cut=200|1$opt"
      echo "$re|full200|1$opt"
    fi
    return
    ;;
  esac
  echo "$re|$action|$count$opt"
}

expect_ok() { # FAULT COLUMN -> 0 when retrying can succeed
  [ "$1" = slow ] || [[ $2 == *-first ]]
}

# cause FAULT: what the error must say
cause() {
  case $1 in
  cut | full200) echo 'transfer closed|curl error 18' ;;
  corrupt) echo 'digest mismatch' ;;
  stall) echo 'stalled' ;;
  s429ra) echo 'HTTP 429' ;;
  badlength) echo 'transfer closed with 10 bytes remaining|registry sends [0-9]+ bytes' ;;
  s[0-9]*) echo "HTTP ${1#s}" ;;
  esac
}

# what IMAGE(a|b): what the error must name besides the image
what() {
  local cfg=$CFG_A own=$L_A
  [ "$2" = b ] && cfg=$CFG_B own=$L_B
  case $1 in
  manifest-*) echo 'manifest' ;;
  blob-all) echo "$cfg" ;;
  layer-all) echo "$L_BASE|$own" ;;
  esac
}

# injected FAULT COLUMN LOG: the proxy really applied the fault
injected() {
  local fault=$1 col=$2 log=$3 pat
  case $fault/$col in
  full200/blob-first) pat='range=bytes=200- action=full200' ;;        # a layer resumed, answered 200
  full200/layer-all) pat='range=bytes=200- action=cut=200,full200' ;;
  full200/*-first) pat='action=full200' ;; # manifests are never asked for with Range
  full200/*) pat='action=cut=200,full200' ;; # nor configs: there a full200 is a plain cut
  stall/* | slow/* | cut/* | corrupt/* | badlength/*) pat="action=$fault" ;;
  s429ra/*) pat='action=status=429,retry-after=1' ;;
  s*) pat="action=status=${fault#s}" ;;
  esac
  grep -q -- "$pat" "$log"
}

# extra FAULT COLUMN COMMAND ERRLOG SECONDS: fault-specific evidence in the -v log
extra_checks() {
  local fault=$1 col=$2 cmd=$3 err=$4 secs=$5
  case $fault in
  s429ra) grep -q 'retry .* in 1000 ms' "$err" || cell_fail "Retry-After: 1 was not honoured" ;;
  slow)
    if [[ $col == manifest-* ]] && [ "$cmd" = fetch ]; then
      # one transfer at a time, 1.6 s long: slower than --stall-timeout 1 in total
      awk -v s="$secs" 'BEGIN{exit !(s >= 1.2)}' || cell_fail "slow manifest took only ${secs}s (fault not effective?)"
    fi
    # a transfer that is receiving bytes, or waiting for its turn, is not stalled
    ! grep -q 'stalled transfer' "$err" ||
      cell_fail "a transfer was aborted as stalled although the server was sending steadily: $(grep -m1 'stalled transfer' "$err" | cut -c1-200)"
    if [[ $col == manifest-* ]] && [ "$cmd" = mirror ]; then
      # a's manifest trickles for 1.6 s; b's HEAD (no body) must not wait for it
      local waited
      waited=$(awk -v ref="$NS/b/manifests/v1" '
        function t() { match($0, /\[ *[0-9.]+\]/); x = substr($0, RSTART + 1, RLENGTH - 2); gsub(/ /, "", x); return x + 0 }
        index($0, "] HEAD ") && index($0, ref " (attempt 1)") { start = t() }
        start != "" && index($0, "] done HEAD ") && index($0, ref ":") { printf "%.2f", t() - start; exit }' "$err")
      [ -n "$waited" ] || cell_fail "no HEAD of b's manifest in the -v log"
      awk -v w="${waited:-9}" 'BEGIN{exit !(w < 0.8)}' ||
        cell_fail "HEAD of b's manifest took ${waited}s: it waited for a's slow manifest GET (transfers serialized)"
    fi
    ;;
  esac
}

run_fetch() {
  local dir=$1 rc=0
  mkdir -p "$dir/out"
  local t0 t1
  t0=$(date +%s.%N)
  "$OCCYSTRAP" "${OPTS[@]}" --insecure fetch-to-tarfile "$PROXY" "$NS/a" v1 "$dir/out/a.tar" 2>"$dir/err" || rc=$?
  t1=$(date +%s.%N)
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  local left
  left=$(ls -A "$dir/out")
  if expect_ok "$FAULT" "$COL"; then
    [ "$rc" = 0 ] || { cell_fail "exit status $rc, wanted 0: $(grep '^occystrap: error' "$dir/err" | cut -c1-300)"; return; }
    [ "$left" = a.tar ] || cell_fail "beside TARFILE: ${left//$'\n'/ }"
    $PY "$CHECK_TARBALL" "$dir/out/a.tar" "$IMAGES" "$NS/a" >"$dir/check" 2>&1 || cell_fail "tarball: $(cat "$dir/check")"
    extra_checks "$FAULT" "$COL" "$CMD" "$dir/err" "$SECS"
  else
    [ "$rc" = 1 ] || cell_fail "exit status $rc, wanted 1"
    [ -z "$left" ] || cell_fail "left after a failed fetch: ${left//$'\n'/ }"
    local line
    line=$(grep '^occystrap: error' "$dir/err" || true)
    [ "$(printf '%s' "$line" | grep -c .)" = 1 ] || { cell_fail "wanted one error line, got: $line"; return; }
    grep -qF -- "$PROXY/$NS/a:v1" <<<"$line" || cell_fail "error does not name the image: $line"
    grep -qE -- "$(what "$COL" a)" <<<"$line" || cell_fail "error does not name the $(what "$COL" a | cut -c1-20): $line"
    grep -qE -- "$(cause "$FAULT")" <<<"$line" || cell_fail "error does not give the cause /$(cause "$FAULT")/: $line"
    ERRLINE=$line
  fi
}

run_mirror() {
  local dir=$1 rc=0
  printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" >"$dir/config.json"
  printf '%s/%s/a:v1\n%s/%s/b:v1\n' "$PROXY" "$NS" "$PROXY" "$NS" >"$dir/list.txt"
  local t0 t1
  t0=$(date +%s.%N)
  "$OCCYSTRAP" "${OPTS[@]}" --config "$dir/config.json" --progress plain --json-file "$dir/report.json" \
    mirror "$dir/list.txt" "$dir/store" 2>"$dir/err" || rc=$?
  t1=$(date +%s.%N)
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  local vrc=0
  "$OCCYSTRAP" verify "$dir/store" >"$dir/verify" 2>&1 || vrc=$?
  [ "$vrc" = 0 ] || cell_fail "verify exit $vrc after the run: $(tail -3 "$dir/verify")"
  if expect_ok "$FAULT" "$COL"; then
    [ "$rc" = 0 ] || { cell_fail "exit status $rc, wanted 0: $(grep '^FAILED' "$dir/err" | cut -c1-300)"; return; }
    $PY "$FAULT_CHECK" "$dir/store" "$IMAGES" "$PROXY" --present "$NS/a" --present "$NS/b" --tmp-empty --exact \
      >"$dir/check" 2>&1 || cell_fail "store: $(cat "$dir/check")"
    extra_checks "$FAULT" "$COL" "$CMD" "$dir/err" "$SECS"
  else
    [ "$rc" = 1 ] || cell_fail "exit status $rc, wanted 1"
    $PY "$FAULT_CHECK" "$dir/store" "$IMAGES" "$PROXY" --absent "$NS/a" --absent "$NS/b" --tmp-empty \
      >"$dir/check" 2>&1 || cell_fail "store: $(cat "$dir/check")"
    local img line
    for img in a b; do
      line=$(grep "^FAILED  $PROXY/$NS/$img:v1 " "$dir/err" || true)
      [ -n "$line" ] || { cell_fail "no FAILED line for $img"; continue; }
      grep -qE -- "$(what "$COL" $img)" <<<"$line" || cell_fail "error for $img does not name the $(what "$COL" $img | cut -c1-20): $line"
      grep -qE -- "$(cause "$FAULT")" <<<"$line" || cell_fail "error for $img does not give the cause /$(cause "$FAULT")/: $line"
      ERRLINE=$line
    done
    $PY - "$dir/report.json" <<'PY' || cell_fail "report.json: entries not both failed with an error"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["totals"]["failed"] == 2, r["totals"]
assert all(e["status"] == "failed" and e["error"] for e in r["entries"]), r["entries"]
PY
  fi
}

RESULTS="$WORK_DIR/results.txt"
: >"$RESULTS"
for FAULT in "${FAULTS[@]}"; do
  for COL in "${COLUMNS[@]}"; do
    mapfile -t RULES < <(rules "$FAULT" "$COL")
    for CMD in fetch mirror; do
      CELLS=$((CELLS + 1))
      CELL_OK=1
      ERRLINE=
      dir="$WORK_DIR/cells/$FAULT-$COL-$CMD"
      rm -rf "$dir"
      mkdir -p "$dir"
      set_rules "${RULES[@]}"
      "run_$CMD" "$dir"
      cp "$PROXY_LOG" "$dir/proxy.log"
      injected "$FAULT" "$COL" "$dir/proxy.log" || cell_fail "the proxy never applied the fault ($(sort "$dir/proxy.log" | uniq -c | head -5 | tr '\n' ';'))"
      if expect_ok "$FAULT" "$COL"; then want=ok; else want=error; fi
      if [ "$CELL_OK" = 1 ]; then
        ok "$FAULT/$COL/$CMD: $want as expected (${SECS}s)${ERRLINE:+: $(cut -c1-160 <<<"$ERRLINE")}"
        printf '%s\t%s\t%s\t%s\tpass\t%s\n' "$FAULT" "$COL" "$CMD" "$want" "$SECS" >>"$RESULTS"
        rm -rf "$dir/store" "$dir/out"
      else
        printf '%s\t%s\t%s\t%s\tFAIL%s\t%s\n' "$FAULT" "$COL" "$CMD" "$want" \
          "$(b=$(known_bug "$FAULT" "$COL" "$CMD"); echo "${b:+ $b}")" "$SECS" >>"$RESULTS"
      fi
    done
  done
done

# extra_cell NAME RULE: a cell beside the matrix: counted, the proxy's rules
# set, and a fresh $dir holding the mirror's config.json for the proxy
extra_cell() {
  CELLS=$((CELLS + 1))
  CELL_OK=1
  dir="$WORK_DIR/cells/$1"
  mkdir -p "$dir"
  set_rules "$2"
  printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" >"$dir/config.json"
}

# mirror -q ("only errors") must still report a failed entry (BUG-3).
FAULT=quiet COL=blob-all CMD=mirror-q
extra_cell quiet "/blobs/|status=500|1000"
printf '%s/%s/a:v1\n' "$PROXY" "$NS" >"$dir/list.txt"
rc=0
"$OCCYSTRAP" -q --retries 2 --config "$dir/config.json" mirror "$dir/list.txt" "$dir/store" 2>"$dir/err" || rc=$?
[ "$rc" = 1 ] || cell_fail "exit status $rc, wanted 1"
grep -q "$NS/a:v1" "$dir/err" || cell_fail "mirror -q: exit 1 with nothing on stderr (the failed entry is not reported)"
if [ "$CELL_OK" = 1 ]; then ok "mirror -q reports the failed entry"; fi
printf '%s\t%s\t%s\t%s\t%s\t-\n' "500" "blob-all" "mirror -q" "error" "$([ "$CELL_OK" = 1 ] && echo pass || echo 'FAIL BUG-3')" >>"$RESULTS"

# A shared layer that fails for good is asked for once per place, not once per
# image. shared_failure NAME RULE X Y LAYER CAUSE GETS [LOG]: mirror X and Y
# (two repositories of one registry that share LAYER) through the proxy with
# RULE; both must fail with an error naming LAYER and CAUSE (a regex), LAYER
# must have been asked for GETS times in all, the store must verify and hold
# neither image, and the -v log must match LOG if given.
shared_failure() {
  local name=$1 rule=$2 x=$3 y=$4 layer=$5 cause=$6 want=$7 log=${8:-}
  FAULT=shared-$name COL=layer-all CMD=mirror
  extra_cell "shared-$name" "$rule"
  printf '%s/%s/%s:v1\n%s/%s/%s:v1\n' "$PROXY" "$NS" "$x" "$PROXY" "$NS" "$y" >"$dir/list.txt"
  rc=0
  "$OCCYSTRAP" "${OPTS[@]}" --config "$dir/config.json" --progress plain mirror "$dir/list.txt" "$dir/store" \
    2>"$dir/err" || rc=$?
  cp "$PROXY_LOG" "$dir/proxy.log"
  [ "$rc" = 1 ] || cell_fail "exit status $rc, wanted 1"
  local img line gets
  for img in "$x" "$y"; do
    line=$(grep "^FAILED  $PROXY/$NS/$img:v1 " "$dir/err" || true)
    grep -qF -- "$layer" <<<"$line" && grep -qE -- "$cause" <<<"$line" ||
      cell_fail "error for $img does not name the shared layer and /$cause/: ${line:-no FAILED line}"
  done
  gets=$(grep -c "/blobs/$layer range=" "$dir/proxy.log" || true)
  [ "$gets" = "$want" ] || cell_fail "the shared layer was asked for $gets times, wanted $want"
  [ -z "$log" ] || grep -qE -- "$log" "$dir/err" || cell_fail "nothing in the -v log matches /$log/"
  "$OCCYSTRAP" verify "$dir/store" >"$dir/verify" 2>&1 || cell_fail "verify failed after the run: $(tail -3 "$dir/verify")"
  $PY "$FAULT_CHECK" "$dir/store" "$IMAGES" "$PROXY" --absent "$NS/$x" --absent "$NS/$y" --tmp-empty \
    >"$dir/check" 2>&1 || cell_fail "store: $(cat "$dir/check")"
  if [ "$CELL_OK" = 1 ]; then ok "shared layer, $name: asked for $gets times, both images failed naming it"; fi
  printf '%s\t%s\t%s\t%s\t%s\t-\n' "$name on a shared layer" "layer-all" "mirror" "error, $want GETs" \
    "$([ "$CELL_OK" = 1 ] && echo pass || echo FAIL)" >>"$RESULTS"
}
# a and b share base. A 500 is the registry's answer: b, waiting for a, takes
# a's failure (3 GETs in all with --retries 3, 6 on the old code). A 404 is one
# repository's answer: b asks for itself (one GET each; 404 is not retried).
shared_failure 500 "/blobs/$L_BASE|status=500|1000" a b "$L_BASE" 'HTTP 500' 3
shared_failure 404 "/blobs/$L_BASE|status=404|1000" a b "$L_BASE" 'HTTP 404' 2
# c and d share broken, whose bytes verify and do not inflate (a gzip stream
# cut short, its digest that of the cut bytes): broken for everyone, so one
# GET in all (two on the old code), nothing retried. d's manifest trickles in
# for over a second, so d asks for its layers after c's failure is over: the
# failure is remembered for the run, not only handed to waiters.
shared_failure broken "/$NS/d/manifests/sha256:|slow=400,slowchunk=128|1000" c d "$L_BROKEN" 'gzip' 1 \
  "d:v1@sha256:[0-9a-f]*: layer $L_BROKEN failed for another image of this run; not asked for again"

echo "matrix: $CELLS cells in $(($(date +%s) - T_START)) s; results in $RESULTS"
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "${#FAILED[@]} failed check(s):"
  printf '  %s\n' "${FAILED[@]}"
  exit 1
fi
finish
