#!/usr/bin/env bash
# test.sh - the whole test suite from a fresh clone: installs the Debian
# packages (scripts/setup.sh), builds the normal (Release, -Werror) and the
# sanitizer (ASan+UBSan) trees, and runs every ctest test (unit and
# integration, against the loopback lab) in both, then runs each libFuzzer
# harness for 30 s (tests/fuzz/run.sh, clang, build-fuzz). Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
JOBS=$(nproc)

run_tree() { # DIR CMAKE_ARGS...
  local dir=$1
  shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
  (cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 900)
}

echo "== lint: clang-format (the checked-in .clang-format), cppcheck, the layers' include rules"
clang-format --dry-run --Werror io/*.[ch] sched/*.[ch] engine/*.[ch] engine/*/*.[ch] cli/*.[ch] \
  include/occystrap/*.h examples/*.c
cppcheck --enable=warning,performance,portability --error-exitcode=1 -q --std=c11 \
  --suppress=missingIncludeSystem -I . -I include io sched engine cli examples
bash scripts/check_layers.sh

echo "== build and test: Release"
run_tree build -DCMAKE_BUILD_TYPE=Release
echo "== build and test: ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_tree build-asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON
echo "== fuzz smoke: each fuzzer 30 s (clang, libFuzzer, ASan+UBSan, build-fuzz)"
bash tests/fuzz/run.sh 30
echo "== valgrind memcheck: every occystrap process of the integration tests (build-vg)"
bash scripts/valgrind.sh
echo "== all tests passed in both builds, the fuzz smoke and memcheck"
