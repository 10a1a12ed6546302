#!/usr/bin/env bash
# run.sh [SECONDS] [TARGET...] - build the libFuzzer harnesses (clang,
# ASan+UBSan, in build-fuzz/) and run each TARGET for SECONDS (default 30)
# of wall time, one fuzzer process at a time (in-process, a single worker).
# TARGETs: ref manifest auth listfile store config expand (default: all).
#
# Seeds are read from tests/fuzz/corpus/TARGET and never written; new inputs
# go to build-fuzz/corpus/TARGET, crashes, leaks and timeouts to
# build-fuzz/crashes/TARGET-*, each fuzzer's output to build-fuzz/logs/.
# tests/fuzz/regressions/TARGET-* are run first, once each. The expand
# fuzzer writes trees as root would: it runs in a private mount namespace on
# a tmpfs mounted nodev,nosuid when it can (else a private temp dir).
# Exit status: 0 when no fuzzer found anything, 1 otherwise.
#
# Environment: OCCY_FUZZ_BUILD (build dir, default build-fuzz),
# OCCY_FUZZ_ARGS (extra libFuzzer flags, e.g. -seed=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SECS=${1:-30}
shift || true
ALL=(ref manifest auth listfile store config expand)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
for t in "${TARGETS[@]}"; do
  [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "run.sh: no fuzzer '$t' (have: ${ALL[*]})" >&2; exit 2; }
done
case $SECS in '' | *[!0-9]*) echo "run.sh: SECONDS must be a number" >&2; exit 2 ;; esac

BUILD=${OCCY_FUZZ_BUILD:-build-fuzz}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
command -v clang >/dev/null || { echo "run.sh: clang not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }

echo "== fuzz: building ${TARGETS[*]} in $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DOCCY_FUZZ=ON -DOCCY_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]/#/fuzz_}" >/dev/null

mkdir -p "$BUILD/crashes" "$BUILD/logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
read -r -a EXTRA <<<"${OCCY_FUZZ_ARGS:-}"

# run_in_sandbox DIR CMD...: CMD with OCCY_FUZZ_TMPDIR=DIR, DIR a tmpfs of
# its own (nodev,nosuid) in a private mount namespace when we may mount.
run_in_sandbox() {
  local dir=$1
  shift
  if [ "$(id -u)" = 0 ] && unshare --mount --propagation private true 2>/dev/null; then
    unshare --mount --propagation private sh -c \
      'mount -t tmpfs -o nodev,nosuid,mode=0700,size=1g occy-fuzz "$0" && exec "$@"' \
      "$dir" env OCCY_FUZZ_TMPDIR="$dir" "$@"
  else
    OCCY_FUZZ_TMPDIR="$dir" "$@"
  fi
}

# logstat LOG NAME: libFuzzer's final "stat::NAME" value in LOG.
logstat() { grep -Eo "stat::$2: *[0-9]+" "$1" | grep -Eo '[0-9]+$' || true; }

failed=()
for t in "${TARGETS[@]}"; do
  bin=$BUILD/tests/fuzz/fuzz_$t
  work=$BUILD/corpus/$t
  log=$BUILD/logs/$t.log
  mkdir -p "$work"
  args=(-max_total_time="$SECS" -timeout=25 -report_slow_units=1 -print_final_stats=1
        -artifact_prefix="$BUILD/crashes/$t-")
  dict=tests/fuzz/dict/$t.dict
  [ "$t" = listfile ] && dict=tests/fuzz/dict/ref.dict
  [ -f "$dict" ] && args+=(-dict="$dict")
  [ "$t" = expand ] && args+=(-max_len=65536)
  regs=(tests/fuzz/regressions/"$t"-*)
  [ -e "${regs[0]}" ] || regs=()
  tmp=""
  sandbox=()
  if [ "$t" = expand ]; then
    tmp=$(mktemp -d /tmp/occy-fuzz-tmp.XXXXXX)
    sandbox=(run_in_sandbox "$tmp")
  fi
  rc=0
  # the artifacts' prefix is absolute: a crash in expand's worker thread
  # happens in a private working directory
  if [ ${#regs[@]} -gt 0 ]; then
    "${sandbox[@]}" "$bin" "${args[@]}" "${EXTRA[@]}" "${regs[@]}" >"$log.regressions" 2>&1 || rc=$?
  fi
  if [ $rc = 0 ]; then
    "${sandbox[@]}" "$bin" "${args[@]}" "${EXTRA[@]}" "$work" tests/fuzz/corpus/"$t" >"$log" 2>&1 ||
      rc=$?
  else
    cp "$log.regressions" "$log"
  fi
  if [ -n "$tmp" ]; then
    rm -rf "$tmp" 2>/dev/null || true
  fi
  cov=$(grep -Eo '(DONE|INITED) +cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | sed 's/^[A-Z]* *//' || true)
  if [ $rc = 0 ]; then
    printf 'fuzz_%-9s ok     %s runs, %s exec/s, %s, slowest input %s s, peak RSS %s MB\n' "$t" \
      "$(logstat "$log" number_of_executed_units)" "$(logstat "$log" average_exec_per_sec)" \
      "${cov:-?}" "$(logstat "$log" slowest_unit_time_sec)" "$(logstat "$log" peak_rss_mb)"
  else
    failed+=("$t")
    printf 'fuzz_%-9s FAILED (exit %s), log %s\n' "$t" "$rc" "$log"
    grep -E 'ERROR: |SUMMARY: |runtime error|fuzz property failed|Test unit written|ALARM|leak' "$log" |
      head -12 | sed 's/^/    /'
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "== fuzz: FAILED: ${failed[*]} (inputs in $BUILD/crashes/; reproduce with $BUILD/tests/fuzz/fuzz_TARGET FILE)"
  exit 1
fi
echo "== fuzz: ${#TARGETS[@]} fuzzers ran ${SECS}s each, nothing found"
