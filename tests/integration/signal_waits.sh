#!/usr/bin/env bash
# signal_waits.sh - SIGTERM while the run waits on a timer or a waiter, not
# on bytes (issue 17, item 5): in each state the process must exit 143
# within 1 s (10 s under valgrind, whose own exit is slow):
#   retry backoff (503 with Retry-After: 30), the pull-limit wait (429 with
#   Retry-After: 30), the per-registry request rate (requests_per_second
#   0.05: the second request waits 20 s), a token fetch (a token service
#   that answers after 30 s), the mirror lock (--lock-wait 60 while another
#   holder has it), the store lock (gc's exclusive lock held), and a
#   stalled transfer (headers, then nothing for 30 s, --stall-timeout 60).
# Each state is entered for sure before the signal: the -v log, the proxy
# log or the lock message says so.
source "$(dirname "$0")/lib/common.sh"
LIMIT_MS=1000
[ -z "${OCCY_VG_BIN:-}" ] || LIMIT_MS=10000
HOLDERS=()
cleanup() {
  local p
  for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_proxies
}
trap cleanup EXIT

# wait_for FILE PATTERN: until PATTERN appears in FILE (20 s at most)
wait_for() {
  local i
  for i in $(seq 400); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  cat "$1" >&2 || true
  fail "'$2' never appeared in $1"
}

# term_in STATE LOG PATTERN CMD...: start CMD (stderr to LOG), wait for
# PATTERN in LOG (or in $WATCH when set), SIGTERM it, and check it exits
# 143 within LIMIT_MS.
term_in() {
  local state=$1 log=$2 pattern=$3
  shift 3
  "$@" 2>"$log" &
  local pid=$!
  wait_for "${WATCH:-$log}" "$pattern"
  sleep 0.2 # well inside the wait
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "$state: it ended before the signal"; }
  local t0 t1 rc=0
  t0=$(date +%s%N)
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  t1=$(date +%s%N)
  local ms=$(((t1 - t0) / 1000000))
  [ "$rc" = 143 ] || { cat "$log" >&2; fail "$state: exit $rc after SIGTERM, wanted 143"; }
  [ "$ms" -lt "$LIMIT_MS" ] || fail "$state: took $ms ms to stop"
  ok "$state: SIGTERM -> exit 143 in $ms ms"
}

key=fixtures/multilayer
cfg() { printf '{"registries": {"%s": {"insecure": true%s}}}\n' "$1" "${2:+, $2}" > "$3"; }

# retry backoff
start_proxy backoff 'manifests/|status=503,retry-after=30|1000'
term_in "retry backoff (Retry-After: 30)" backoff.err 'retry .* in 30000 ms' \
  "$OCCYSTRAP" -v --insecure fetch-to-tarfile "$PROXY" "$key" v1 backoff.tar
[ ! -e backoff.tar ] || fail "retry backoff: a TARFILE was left"

# pull-limit wait
PROXY_ARGS=(--ratelimit 0 --ratelimit-retry-after 30 --ratelimit-quiet-head)
start_proxy limit
PROXY_ARGS=()
echo "$PROXY/$key:v1" > limit.list
cfg "$PROXY" "" limit.json
term_in "pull-limit wait (429, Retry-After: 30)" limit.err 'waits for its rate limit' \
  "$OCCYSTRAP" -v --config limit.json mirror limit.list store-limit

# the request rate a config asks for
printf '%s/%s:v1\n%s/fixtures/links:v1\n' "$LAB_PLAIN" "$key" "$LAB_PLAIN" > rate.list
cfg "$LAB_PLAIN" '"requests_per_second": 0.05' rate.json
term_in "request-rate wait (0.05 requests/s)" rate.err 'done HEAD' \
  "$OCCYSTRAP" -v --config rate.json mirror rate.list store-rate

# a token service that takes 30 s
$PY "$TESTS_DIR/lab/tokenserver.py" --key "$LAB_DIR/token/signing.key" --port-file "$WORK_DIR/slowts.port" \
  --log "$WORK_DIR/slowts.log" --delay 30 &
PROXY_PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK_DIR/slowts.port" ] && break; sleep 0.05; done
PROXY_UPSTREAM=$LAB_TOKEN
PROXY_ARGS=(--rewrite-realm "http://127.0.0.1:$(cat "$WORK_DIR/slowts.port")/token")
start_proxy slowtoken
PROXY_UPSTREAM=
PROXY_ARGS=()
term_in "token fetch (the service answers after 30 s)" token.err 'token: GET' \
  "$OCCYSTRAP" -v --insecure fetch-to-tarfile "$PROXY" "$key" v1 token.tar

# the mirror lock, held by another run
echo "$LAB_PLAIN/fixtures/links:v1" > lock.list
cfg "$LAB_PLAIN" "" lock.json
expect_status 0 "$OCCYSTRAP" -q --config lock.json mirror lock.list store-lock
hold() { # FILE: hold an exclusive flock on FILE until killed (the pid is the holder)
  (exec 9>"$1" && flock -x 9 && exec sleep 60) </dev/null >/dev/null 2>&1 &
  HOLDERS+=($!)
}
hold store-lock/.occystrap/mirror.lock
sleep 0.2
term_in "mirror lock wait (--lock-wait 60)" lockwait.err 'waiting up to 60 s' \
  "$OCCYSTRAP" --lock-wait 60 --config lock.json mirror lock.list store-lock

# the store lock, held exclusively (as gc does)
hold store-lock/.occystrap/lock
sleep 0.2
: > storelock.err
"$OCCYSTRAP" --config lock.json mirror lock.list store-lock 2>storelock.err &
pid=$!
sleep 0.5
kill -0 "$pid" 2>/dev/null || { cat storelock.err >&2; fail "store lock: it did not wait for the lock"; }
t0=$(date +%s%N)
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" = 143 ] && [ "$ms" -lt "$LIMIT_MS" ] || fail "store lock wait: exit $rc in $ms ms"
ok "store lock wait (gc's exclusive lock held): SIGTERM -> exit 143 in $ms ms"
for p in "${HOLDERS[@]}"; do kill "$p" 2>/dev/null || true; done
HOLDERS=()

# a stalled transfer
start_proxy stall 'blobs/|stall=30|1'
WATCH=$PROXY_LOG term_in "stalled transfer (nothing for 30 s, --stall-timeout 60)" stall.err 'action=stall' \
  "$OCCYSTRAP" --insecure --stall-timeout 60 fetch-to-tarfile "$PROXY" "$key" v1 stall.tar
[ ! -e stall.tar ] || fail "stalled transfer: a TARFILE was left"
finish
