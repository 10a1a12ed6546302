# serve_lib.sh - sourced by the serve tests after common.sh: a store with
# the lab's fixtures as exact bytes (serve_store.py), `occystrap serve`
# started on a port the kernel picks and stopped by pid when the test ends,
# and the fixtures' digests.
SERVE_STORE_PY="$TESTS_DIR/integration/lib/serve_store.py"
SERVE_PIDS=()
EXTRA_CLEANUP=()

serve_cleanup() {
  local p c
  for c in "${EXTRA_CLEANUP[@]+"${EXTRA_CLEANUP[@]}"}"; do eval "$c" || true; done
  for p in "${SERVE_PIDS[@]+"${SERVE_PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${SERVE_PIDS[@]+"${SERVE_PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
  stop_proxies
}
trap serve_cleanup EXIT

# fixture_refs: "REPO:TAG" of every lab fixture
fixture_refs() {
  $PY -c 'import json,sys
f = json.load(open(sys.argv[1]))["fixtures"]
print("\n".join(sorted(k + ":" + v["tag"] for k, v in f.items())))' "$LAB_FIXTURES"
}

# fixture_field REPO FIELD: a top-level field of a fixture (digest, media_type, ...)
fixture_field() {
  jq -r --arg r "$1" --arg f "$2" '.fixtures[$r][$f]' "$LAB_FIXTURES"
}

# build_store STORE [--platform-tags] [REPO:TAG...]: exact bytes from the lab
# (every fixture when none is named)
build_store() {
  local store=$1
  shift
  local opts=() refs=() a
  for a in "$@"; do
    case "$a" in --*) opts+=("$a") ;; *) refs+=("$a") ;; esac
  done
  if [ ${#refs[@]} = 0 ]; then mapfile -t refs < <(fixture_refs); fi
  $PY "$SERVE_STORE_PY" add "$store" "$LAB_PLAIN" "${refs[@]}" "${opts[@]+"${opts[@]}"}" \
    >"$WORK_DIR/build_store.log" || fail "could not build the store $store"
}

# start_serve NAME STORE [OPTIONS...]: sets SERVE_ADDR (host:port),
# SERVE_URL, SERVE_PID, SERVE_ERR (stderr) and SERVE_OUT (access log).
start_serve() {
  local name=$1 store=$2
  shift 2
  SERVE_ERR="$WORK_DIR/serve-$name.err"
  SERVE_OUT="$WORK_DIR/serve-$name.out"
  : >"$SERVE_ERR"
  "$OCCYSTRAP" serve --listen 127.0.0.1:0 "$@" "$store" >"$SERVE_OUT" 2>"$SERVE_ERR" &
  SERVE_PID=$!
  SERVE_PIDS+=("$SERVE_PID")
  local i line=""
  for i in $(seq 200); do
    line=$(sed -n 's|^occystrap: serving .* on \(https*\)://\(.*\)/$|\1 \2|p' "$SERVE_ERR") || true
    [ -n "$line" ] && break
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$line" ] || {
    cat "$SERVE_ERR" >&2
    fail "serve $name did not start"
  }
  SERVE_ADDR=${line#* }
  SERVE_URL="${line%% *}://$SERVE_ADDR"
}

# stop_serve [PID]: SIGTERM; it must stop and exit 0
stop_serve() {
  local pid=${1:-$SERVE_PID} rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || fail "serve (pid $pid) exited $rc after SIGTERM"
}

# rss_kb PID
rss_kb() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}
