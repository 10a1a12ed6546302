#!/usr/bin/env bash
# serve_stop.sh - SIGTERM stops `occystrap serve` gracefully: new
# connections are refused, an idle keep-alive connection is closed at once,
# downloads in flight (HTTP/1.1 and HTTP/2, rate-limited to last seconds)
# finish whole, and serve exits 0 once they are done. A client that stops
# reading is cut after --drain-timeout, and serve exits then. A second
# SIGTERM ends it at once (exit 143).
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"
HOSTILE="$TESTS_DIR/integration/lib/serve_hostile.py"

STORE="$WORK_DIR/store"
BIG=$($PY "$SERVE_STORE_PY" synth "$STORE" local/big:v1 40000000)
URLPATH="/v2/local/big/blobs/$BIG"
now() { date +%s.%N; }
elapsed() { $PY -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

start_serve graceful "$STORE" --drain-timeout 20
curl -s --limit-rate 15M -o "$WORK_DIR/h1" "$SERVE_URL$URLPATH" &
H1=$!
curl -s --http2-prior-knowledge --limit-rate 15M -o "$WORK_DIR/h2" "$SERVE_URL$URLPATH" &
H2=$!
rm -f "$WORK_DIR/ready"
$PY "$HOSTILE" idle "$SERVE_ADDR" 1 "$WORK_DIR/ready" 10 >"$WORK_DIR/idle.out" &
IDLE=$!
for i in $(seq 100); do [ -s "$WORK_DIR/ready" ] && break; sleep 0.05; done
# both downloads in flight (bytes arrived) before the signal, however loaded
# the machine is
for i in $(seq 200); do [ -s "$WORK_DIR/h1" ] && [ -s "$WORK_DIR/h2" ] && break; sleep 0.05; done
[ -s "$WORK_DIR/h1" ] && [ -s "$WORK_DIR/h2" ] || fail "the downloads did not start"
sleep 0.5
t0=$(now)
kill -TERM "$SERVE_PID"
sleep 0.3
s=$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/v2/" || true)
[ "$s" = 000 ] || fail "a new connection after SIGTERM was answered $s"
wait "$IDLE"
grep -q "^closed 1 of 1 after" "$WORK_DIR/idle.out" || fail "the idle connection was not closed"
idle_s=$(sed -n 's/.* after \([0-9.]*\) s/\1/p' "$WORK_DIR/idle.out")
wait "$H1" || fail "the HTTP/1.1 download failed after SIGTERM"
wait "$H2" || fail "the HTTP/2 download failed after SIGTERM"
rc=0
wait "$SERVE_PID" || rc=$?
t1=$(now)
[ "$rc" = 0 ] || fail "serve exited $rc"
for f in h1 h2; do
  [ "sha256:$(sha256sum <"$WORK_DIR/$f" | cut -d' ' -f1)" = "$BIG" ] || fail "the $f download is not whole after SIGTERM"
done
took=$(elapsed "$t0" "$t1")
$PY -c "import sys; sys.exit(0 if 1.0 < float('$took') < 15 else 1)" || fail "serve stopped after $took s"
grep -q "serve: stopping: 3 connections open" "$SERVE_ERR" || fail "no stopping line: $(cat "$SERVE_ERR")"
ok "SIGTERM: new connections refused, the idle one closed (its client saw it after $idle_s s), both 40 MB downloads (HTTP/1.1 and HTTP/2) finished whole, exit 0 after $took s"

start_serve drain "$STORE" --drain-timeout 1
rm -f "$WORK_DIR/ready"
$PY "$HOSTILE" stall "$SERVE_ADDR" "$URLPATH" "$WORK_DIR/ready" 30 &
STALL=$!
EXTRA_CLEANUP+=("kill $STALL 2>/dev/null; wait $STALL 2>/dev/null")
for i in $(seq 100); do [ -s "$WORK_DIR/ready" ] && break; sleep 0.05; done
sleep 0.5
t0=$(now)
kill -TERM "$SERVE_PID"
rc=0
wait "$SERVE_PID" || rc=$?
t1=$(now)
[ "$rc" = 0 ] || fail "serve exited $rc after cutting"
took=$(elapsed "$t0" "$t1")
$PY -c "import sys; sys.exit(0 if float('$took') < 5 else 1)" || fail "serve took $took s with --drain-timeout 1"
grep -q "still busy after 1 s: cutting it" "$SERVE_ERR" || fail "no cutting line: $(cat "$SERVE_ERR")"
kill "$STALL" 2>/dev/null || true
ok "a client that never reads is cut after --drain-timeout 1; serve exited 0 after $took s"

start_serve twice "$STORE" --drain-timeout 20
curl -s --limit-rate 5M -o /dev/null "$SERVE_URL$URLPATH" &
SLOW=$!
sleep 0.3
kill -TERM "$SERVE_PID"
sleep 0.3
kill -TERM "$SERVE_PID"
rc=0
wait "$SERVE_PID" || rc=$?
[ "$rc" = 143 ] || fail "a second SIGTERM: exit $rc, wanted 143"
wait "$SLOW" 2>/dev/null || true
ok "a second SIGTERM ends serve at once (143)"
finish
