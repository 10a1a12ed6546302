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

# start_proxy NAME RULE...: a fault proxy (tests/lab/faultproxy.py) in front
# of the plain instance (or of PROXY_UPSTREAM, with the extra options in the
# array PROXY_ARGS); sets PROXY (host:port), PROXY_LOG and, when PROXY_ARGS
# has --cdn-origin, PROXY_CDN (the CDN's host:port). Stopped by pid when the
# test exits.
PROXY_PIDS=()
stop_proxies() {
  local p
  for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PROXY_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_proxies EXIT
start_proxy() {
  local name=$1
  shift
  local args=() r
  for r in "$@"; do args+=(--rule "$r"); done
  PROXY_LOG="$WORK_DIR/proxy-$name.log"
  rm -f "$WORK_DIR/proxy-$name.port"
  rm -f "$WORK_DIR/proxy-$name.port.cdn"
  $PY "$TESTS_DIR/lab/faultproxy.py" --upstream "${PROXY_UPSTREAM:-$LAB_PLAIN}" \
    --port-file "$WORK_DIR/proxy-$name.port" --log "$PROXY_LOG" \
    "${PROXY_ARGS[@]+"${PROXY_ARGS[@]}"}" "${args[@]+"${args[@]}"}" &
  PROXY_PIDS+=($!)
  local i
  for i in $(seq 100); do
    [ -s "$WORK_DIR/proxy-$name.port" ] && break
    sleep 0.05
  done
  [ -s "$WORK_DIR/proxy-$name.port" ] || fail "fault proxy $name did not start"
  PROXY="127.0.0.1:$(cat "$WORK_DIR/proxy-$name.port")"
  PROXY_CDN=
  if [ -s "$WORK_DIR/proxy-$name.port.cdn" ]; then
    PROXY_CDN="127.0.0.2:$(cat "$WORK_DIR/proxy-$name.port.cdn")"
  fi
}
