#!/usr/bin/env bash
# serve_hostile.sh - hostile requests against `occystrap serve`, run under
# strace: paths with "..", encoded "%2e%2e" and "%2f", NUL and backslashes,
# digests that are not hex, an over-long name and URL, huge headers and
# Range values, garbage and non-HTTP bytes, bodies for writes; a store
# whose blobs are symlinks to a file planted beside it. Each request is
# answered with an error (or the connection closed), the planted file's
# bytes are never sent, and strace shows that no file outside the store is
# opened or looked at once serving began. Then 1,000 idle connections: with
# room for them, a request still gets through, serve's memory stays
# bounded and every one is closed after --idle-timeout; with
# --max-connections 200 the rest are closed at once.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"
HOSTILE="$TESTS_DIR/integration/lib/serve_hostile.py"
ulimit -n 4096 2>/dev/null || true

STORE="$WORK_DIR/store"
build_store "$STORE" fixtures/multilayer:v1
ML_LAYER=$(jq -r '.fixtures["fixtures/multilayer"].layers[0].digest' "$LAB_FIXTURES")
ML_SIZE=$(jq -r '.fixtures["fixtures/multilayer"].layers[0].size' "$LAB_FIXTURES")
SECRET="$WORK_DIR/secret.txt" # beside the store
echo "TOP SECRET $RANDOM$RANDOM" >"$SECRET"
SECRET_LAYER=$($PY "$SERVE_STORE_PY" symlink "$STORE" hostile/layer:v1 "$SECRET" layer)
SECRET_MANIFEST=$($PY "$SERVE_STORE_PY" symlink "$STORE" hostile/manifest:v1 "$WORK_DIR/secret-manifest.json" manifest)

# serve under strace: every file system call, from the first to the last
TRACE="$WORK_DIR/trace"
SERVE_ERR="$WORK_DIR/serve.err"
SERVE_OUT="$WORK_DIR/serve.out"
STRACE_OK=1
if [ -n "${OCCY_VG_BIN:-}" ]; then
  STRACE_OK=0 # valgrind opens files of its own while the program runs
  "$OCCYSTRAP" serve --listen 127.0.0.1:0 --idle-timeout 2 "$STORE" >"$SERVE_OUT" 2>"$SERVE_ERR" &
  SERVE_PID=$!
else
  # LeakSanitizer cannot run under ptrace (the other serve tests check leaks)
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -e trace=%file \
    -o "$TRACE" "$OCCYSTRAP" serve --listen 127.0.0.1:0 --idle-timeout 2 "$STORE" \
    >"$SERVE_OUT" 2>"$SERVE_ERR" &
  STRACE_PID=$!
  SERVE_PID="" # the traced process: the pid of the trace's first line (its execve)
  for i in $(seq 100); do
    SERVE_PID=$(head -1 "$TRACE" 2>/dev/null | awk '/execve/ {print $1}') || true
    [ -n "$SERVE_PID" ] && break
    sleep 0.05
  done
  [ -n "$SERVE_PID" ] || fail "serve did not start under strace"
  EXTRA_CLEANUP+=("kill -TERM $SERVE_PID 2>/dev/null; wait $STRACE_PID 2>/dev/null")
fi
SERVE_PIDS+=("$SERVE_PID")
for i in $(seq 200); do
  grep -q '^occystrap: serving ' "$SERVE_ERR" && break
  sleep 0.05
done
SERVE_ADDR=$(sed -n 's|^occystrap: serving .* on http://\(.*\)/$|\1|p' "$SERVE_ERR")
[ -n "$SERVE_ADDR" ] || fail "serve did not start: $(cat "$SERVE_ERR")"
SERVE_URL="http://$SERVE_ADDR"
STARTED_AT=0
[ $STRACE_OK = 1 ] && STARTED_AT=$(wc -l <"$TRACE")
grep -q "hostile/manifest:v1 (sha256:${SECRET_MANIFEST#sha256:}) is not served" "$SERVE_ERR" ||
  fail "the symlinked manifest was not refused: $(cat "$SERVE_ERR")"
ok "serve started (under strace: $STRACE_OK); the manifest that is a symlink out of the store is refused with a warning"
RSS0=$(rss_kb "$SERVE_PID")

$PY "$HOSTILE" raw "$SERVE_ADDR" >"$WORK_DIR/raw.out"
cat "$WORK_DIR/raw.out"
while read -r name status; do
  case "$status" in
  closed) ;;
  "HTTP/1.1 "[45]*) ;;
  *) fail "hostile request $name: $status" ;;
  esac
done <"$WORK_DIR/raw.out"
grep -q "^dotdot-in-name HTTP/1.1 400" "$WORK_DIR/raw.out" || fail "a name with .. was not NAME_INVALID"
grep -q "^nonhex-digest HTTP/1.1 400" "$WORK_DIR/raw.out" || fail "a non-hex digest was not 400"
grep -q "^long-name HTTP/1.1 400" "$WORK_DIR/raw.out" || fail "a 300-character name was not 400"
ok "$(wc -l <"$WORK_DIR/raw.out") hostile requests, each answered 4xx or closed"

c() { curl -s --path-as-is -o "$WORK_DIR/body" -w '%{http_code}' "$@"; }
for p in "/v2/../secret.txt" "/v2/%2e%2e/secret.txt" "/v2/hostile/layer/blobs/$SECRET_LAYER" \
  "/v2/hostile/layer/blobs/$SECRET_LAYER/../../../../secret.txt" \
  "/v2/hostile/manifest/manifests/v1" "/v2/hostile/manifest/manifests/$SECRET_MANIFEST" \
  "/v2/hostile/manifest/blobs/$SECRET_MANIFEST" "/v2/fixtures/multilayer/blobs/$SECRET_LAYER"; do
  for m in -XGET -I; do
    s=$(c "$m" "$SERVE_URL$p")
    case "$s" in 4*) ;; *) fail "$m $p: $s" ;; esac
    ! grep -q "TOP SECRET" "$WORK_DIR/body" || fail "$m $p sent the planted file"
  done
done
[ "$(c "$SERVE_URL/v2/hostile/layer/blobs/$SECRET_LAYER")" = 404 ] || fail "the symlinked layer was not 404"
ok "the planted file: not through .., %2e%2e, nor a blob or manifest that is a symlink to it (404)"

for r in "bytes=0-18446744073709551616" "bytes=0-99999999999999999999999999999" \
  "bytes=-99999999999999999999999999999" "bytes=18446744073709551615-" \
  "bytes=99999999999999999999999999999-" "bytes=$((ML_SIZE))-$((ML_SIZE + 10))" \
  "bytes=-0" "bytes=0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0" "bytes=$(printf '1%.0s' $(seq 3000))-"; do
  s=$(c -H "Range: $r" "$SERVE_URL/v2/fixtures/multilayer/blobs/$ML_LAYER")
  size=$(wc -c <"$WORK_DIR/body")
  case "$s" in
  206 | 200) [ "$size" -le "$ML_SIZE" ] || fail "Range $r: $size bytes" ;;
  416) ;;
  *) fail "Range ${r:0:60}: status $s" ;;
  esac
done
[ "$(c -H "Range: bytes=99999999999999999999999999999-" "$SERVE_URL/v2/fixtures/multilayer/blobs/$ML_LAYER")" = 416 ] ||
  fail "a first byte beyond 64 bits was not 416"
ok "huge Range values: 206 (never more than the blob), or 416"

[ "$(c "$SERVE_URL/v2/fixtures/multilayer/manifests/v1")" = 200 ] || fail "serve no longer answers"
RSS1=$(rss_kb "$SERVE_PID")
ok "serve still answers; RSS ${RSS0} kB at start, ${RSS1} kB after the hostile requests"

# nothing outside the store: every path in a file call once serving began
if [ $STRACE_OK = 1 ]; then
  tail -n +"$((STARTED_AT + 1))" "$TRACE" >"$WORK_DIR/trace.serving"
  ! grep -q "secret" "$WORK_DIR/trace.serving" || {
    grep "secret" "$WORK_DIR/trace.serving" >&2
    fail "serve looked at the planted file"
  }
  grep -o '"/[^"]*"' "$WORK_DIR/trace.serving" | tr -d '"' | sort -u >"$WORK_DIR/paths"
  outside=$(grep -v "^$STORE/" "$WORK_DIR/paths" | grep -vx -e /etc/localtime || true)
  [ -z "$outside" ] || fail "serve looked outside the store: $outside"
  n=$(wc -l <"$WORK_DIR/paths")
  ok "strace: the $n paths serve looked at while serving are all in the store (the symlinks were opened with O_NOFOLLOW and refused)"
fi

# 1,000 idle connections: a request gets through, memory stays bounded,
# and each is closed after --idle-timeout 2
rm -f "$WORK_DIR/ready"
$PY "$HOSTILE" idle "$SERVE_ADDR" 1000 "$WORK_DIR/ready" 15 >"$WORK_DIR/idle.out" &
IDLE_PID=$!
for i in $(seq 200); do
  [ -s "$WORK_DIR/ready" ] && break
  sleep 0.05
done
[ "$(cat "$WORK_DIR/ready")" = 1000 ] || fail "only $(cat "$WORK_DIR/ready") idle connections were made"
[ "$(c "$SERVE_URL/v2/fixtures/multilayer/manifests/v1")" = 200 ] || fail "no answer beside 1000 idle connections"
RSS2=$(rss_kb "$SERVE_PID")
wait "$IDLE_PID"
cat "$WORK_DIR/idle.out"
grep -q "^closed 1000 of 1000 after" "$WORK_DIR/idle.out" || fail "not every idle connection was closed"
secs=$(sed -n 's/.* after \([0-9.]*\) s/\1/p' "$WORK_DIR/idle.out")
$PY -c "import sys; sys.exit(0 if float('$secs') < 10 else 1)" || fail "idle connections closed after $secs s"
growth=$((RSS2 - RSS0))
limit=$((48 * 1024))
[ "$growth" -lt "$limit" ] || fail "RSS grew by $growth kB with 1000 idle connections"
ok "1000 idle connections: a request still answered, RSS $RSS2 kB (+$growth kB), all closed by serve after the idle timeout ($secs s)"

if [ $STRACE_OK = 1 ]; then
  kill -TERM "$SERVE_PID"
  rc=0
  wait "$STRACE_PID" || rc=$? # strace exits with the status of serve
  [ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM: $(tail -5 "$SERVE_ERR")"
else
  stop_serve "$SERVE_PID"
fi
SERVE_PIDS=()

# --max-connections 200: the others are closed at once
start_serve limited "$STORE" --max-connections 200
rm -f "$WORK_DIR/ready"
$PY "$HOSTILE" idle "$SERVE_ADDR" 1000 "$WORK_DIR/ready" 3 >"$WORK_DIR/idle2.out"
cat "$WORK_DIR/idle2.out"
closed=$(sed -n 's/^closed \([0-9]*\) of.*/\1/p' "$WORK_DIR/idle2.out")
[ "$closed" -ge 800 ] || fail "with --max-connections 200, $closed of 1000 were closed"
grep -q "connections open (the limit): closing new ones" "$SERVE_ERR" || fail "no warning about the limit"
[ "$(c "$SERVE_URL/v2/fixtures/multilayer/manifests/v1")" = 200 ] || fail "no answer once the idle clients left"
ok "--max-connections 200: $closed of 1000 closed at once (and said so); served again once they left"
stop_serve
finish
