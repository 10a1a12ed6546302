# common.sh - sourced by every integration test: the lab's environment, a
# clean work directory, and small assertion helpers that fail loudly.
set -euo pipefail
: "${LAB_DIR:?LAB_DIR must point at a started lab (tests/lab/lab.sh start DIR)}"
: "${OCCYSTRAP:?OCCYSTRAP must name the occystrap binary}"
: "${TESTS_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${WORK_DIR:=$(mktemp -d)}"
# shellcheck disable=SC1091
source "$LAB_DIR/env.sh"
PY=/usr/bin/python3
CHECK_TARBALL="$TESTS_DIR/integration/lib/check_tarball.py"
rm -rf "$WORK_DIR"
mkdir -p "$WORK_DIR"
cd "$WORK_DIR"
CHECKS=0

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

ok() {
  CHECKS=$((CHECKS + 1))
  echo "ok $CHECKS - $*"
}

# expect_status WANT CMD...: run CMD, capture stderr in $WORK_DIR/last.err.
expect_status() {
  local want=$1
  shift
  local rc=0
  "$@" 2>"$WORK_DIR/last.err" || rc=$?
  if [ "$rc" != "$want" ]; then
    cat "$WORK_DIR/last.err" >&2
    fail "exit status $rc, wanted $want: $*"
  fi
}

expect_stderr() {
  grep -q -- "$1" "$WORK_DIR/last.err" || {
    cat "$WORK_DIR/last.err" >&2
    fail "stderr does not mention '$1'"
  }
}

# fixture_keys: every fixture repository in fixtures.json
fixture_keys() {
  $PY -c 'import json,sys; print("\n".join(sorted(json.load(open(sys.argv[1]))["fixtures"])))' "$LAB_FIXTURES"
}

finish() {
  echo "$CHECKS passed, 0 failed"
}
