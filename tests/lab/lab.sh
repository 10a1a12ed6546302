#!/usr/bin/env bash
# lab.sh - start/stop the occystrap integration-test lab (see tests/lab/README.md).
#
#   lab.sh start LAB_DIR   start 4 docker-registry instances (plain, tls, token,
#                          basic) over one shared storage dir, the token service,
#                          write LAB_DIR/env.sh and make sure the fixtures exist;
#                          and a second set of 4 (push-plain, push-tls, push-token,
#                          push-basic) over a second, empty storage: push targets
#   lab.sh stop LAB_DIR    stop exactly the processes recorded in LAB_DIR/pids/
#
# Everything listens on 127.0.0.1 only, on ports the kernel picks at start time
# (the servers bind port 0 and we read the real port back from their logs), so
# several labs can run side by side. ctest runs this as the `lab` fixture.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3          # Debian's python, it has python3-cryptography
REGISTRY=${OCCY_LAB_REGISTRY:-/usr/bin/docker-registry}
INSTANCES=(plain tls token basic push-plain push-tls push-token push-basic)
LAB_USER=occy
LAB_PASS=lab-secret
SERVICE=occy-lab
ISSUER=occy-lab-issuer
START_TIMEOUT=${OCCY_LAB_START_TIMEOUT:-30}   # seconds, per process
STOP_TIMEOUT=${OCCY_LAB_STOP_TIMEOUT:-10}     # seconds, for all processes

say() { echo "lab: $*"; }
die() { echo "lab: ERROR: $*" >&2; exit 1; }

usage() { echo "usage: $0 start|stop LAB_DIR" >&2; exit 2; }

# --- process helpers -------------------------------------------------------

# alive PID: true if PID exists and is not a zombie.
alive() {
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# starttime PID: the process's start time (clock ticks since boot, field 22 of
# /proc/PID/stat); with the pid it identifies a process for good.
starttime() {
  sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# record NAME PID: write pids/NAME.pid (the pid) and pids/NAME.start (its start time).
record() {
  echo "$2" >"$LAB/pids/$1.pid"
  starttime "$2" >"$LAB/pids/$1.start" || true
}

# ours NAME PID: true if PID is still the process we started as NAME (guards
# against a pid file that outlived its process and whose pid got reused).
ours() {
  local want
  want=$(cat "$LAB/pids/$1.start" 2>/dev/null) || want=""
  if [ -n "$want" ]; then
    [ "$(starttime "$2")" = "$want" ]
  else
    tr '\0' ' ' <"/proc/$2/cmdline" 2>/dev/null | grep -qF -- "$LAB"
  fi
}

# stop_lab: TERM the recorded pids, wait, KILL the stragglers, verify.
stop_lab() {
  local f pid name failed=0
  local -a pids=() names=()
  [ -d "$LAB/pids" ] || return 0
  for f in "$LAB"/pids/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    pid=$(tr -dc '0-9' <"$f")
    if [ -z "$pid" ] || ! alive "$pid"; then
      rm -f "$f" "$LAB/pids/$name.start"
      continue
    fi
    if ! ours "$name" "$pid"; then
      say "pid $pid in $f is not a process of this lab any more; leaving it alone"
      rm -f "$f" "$LAB/pids/$name.start"
      continue
    fi
    pids+=("$pid")
    names+=("$name")
    kill -TERM "$pid" 2>/dev/null || true
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  local deadline=$((SECONDS + STOP_TIMEOUT)) i any
  while :; do
    any=0
    for pid in "${pids[@]}"; do alive "$pid" && any=1; done
    [ $any = 0 ] && break
    [ $SECONDS -ge $deadline ] && break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if alive "${pids[$i]}"; then
      say "${names[$i]} (pid ${pids[$i]}) ignored SIGTERM, sending SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  sleep 0.2
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    name=${names[$i]}
    local t=0
    while alive "$pid" && [ $t -lt 20 ]; do sleep 0.1; t=$((t + 1)); done
    if alive "$pid"; then
      echo "lab: ERROR: could not stop $name (pid $pid)" >&2
      failed=1
    else
      rm -f "$LAB/pids/$name.pid" "$LAB/pids/$name.start"
      say "stopped $name (pid $pid)"
    fi
  done
  # Dead children of an orphaned daemon are reaped by init; give it a moment so
  # that `ps` right after a stop is clean (not an error if init is slow).
  local t=0
  while [ $t -lt 20 ]; do
    any=0
    for pid in "${pids[@]}"; do [ -e "/proc/$pid" ] && any=1; done
    [ $any = 0 ] && break
    sleep 0.1
    t=$((t + 1))
  done
  return $failed
}

# --- start -----------------------------------------------------------------

gen_tls() {
  local d=$LAB/tls
  rm -rf "$d"
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/ca.key" -out "$d/ca.crt" -days 30 -subj "/CN=occy-lab test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" 2>/dev/null
  cat >"$d/server.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
    -CAcreateserial -out "$d/server.crt" -days 30 -extfile "$d/server.ext" 2>/dev/null
  rm -f "$d/server.csr" "$d/server.ext" "$d/ca.srl"
  chmod 600 "$d/ca.key" "$d/server.key"
}

gen_token_key() {
  local d=$LAB/token
  rm -rf "$d"
  mkdir -p "$d"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/signing.key" 2>/dev/null
  openssl req -x509 -new -key "$d/signing.key" -out "$d/signing.crt" -days 30 \
    -subj "/CN=occy-lab token signer" 2>/dev/null
  chmod 600 "$d/signing.key"
}

# write_config NAME: LAB/conf/NAME.yml (push-KIND: a KIND instance over the push storage)
write_config() {
  local name=$1 f=$LAB/conf/$1.yml kind=${1#push-} storage=$LAB/storage
  [ "$kind" = "$name" ] || storage=$LAB/storage-push
  cat >"$f" <<EOF
# generated by tests/lab/lab.sh for the '$name' instance
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
  fields:
    lab.instance: $name
storage:
  filesystem:
    rootdirectory: "$storage"
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: "$HTTP_SECRET"
  headers:
    X-Content-Type-Options: [nosniff]
EOF
  case $kind in
    tls)
      cat >>"$f" <<EOF
  tls:
    certificate: "$LAB/tls/server.crt"
    key: "$LAB/tls/server.key"
EOF
      ;;
    token)
      cat >>"$f" <<EOF
auth:
  token:
    realm: "$TOKEN_URL"
    service: $SERVICE
    issuer: $ISSUER
    rootcertbundle: "$LAB/token/signing.crt"
EOF
      ;;
    basic)
      cat >>"$f" <<EOF
auth:
  htpasswd:
    realm: occy-lab-basic
    path: "$LAB/htpasswd"
EOF
      ;;
  esac
}

# tail_log NAME: show the end of a process's logs (for error messages).
tail_log() {
  local f
  for f in "$LAB/$1.server.log" "$LAB/$1.log"; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 20 "$f" >&2
  done
}

# wait_port NAME PID: wait for "listening on 127.0.0.1:PORT" in NAME's log,
# print PORT.
wait_port() {
  local name=$1 pid=$2 deadline=$((SECONDS + START_TIMEOUT)) port=""
  while :; do
    port=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$LAB/$name.server.log" 2>/dev/null |
      head -n1 | sed 's/.*://') || true
    [ -n "$port" ] && break
    if ! alive "$pid"; then
      tail_log "$name"
      die "instance '$name' (pid $pid) exited before listening"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail_log "$name"
      die "instance '$name' (pid $pid) did not report its port within ${START_TIMEOUT}s"
    fi
    sleep 0.05
  done
  echo "$port"
}

# wait_v2 NAME PID URL CURLARGS...: wait until URL/v2/ answers 200 or 401.
wait_v2() {
  local name=$1 pid=$2 url=$3 code deadline=$((SECONDS + START_TIMEOUT))
  shift 3
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url/v2/" 2>/dev/null) || true
    case $code in 200 | 401) return 0 ;; esac
    if ! alive "$pid"; then
      tail_log "$name"
      die "instance '$name' (pid $pid) died; $url/v2/ never answered"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail_log "$name"
      die "instance '$name' (pid $pid): $url/v2/ did not answer 200/401 within ${START_TIMEOUT}s (last: '$code')"
    fi
    sleep 0.05
  done
}

on_start_failure() {
  local rc=$?
  if [ $rc != 0 ]; then
    echo "lab: start failed (rc=$rc); stopping what was started" >&2
    stop_lab || true
  fi
}

start_lab() {
  local t0=$SECONDS
  stop_lab || die "a previous lab in $LAB could not be stopped"
  trap on_start_failure EXIT
  rm -rf "$LAB/storage-push" # push targets start empty
  mkdir -p "$LAB/pids" "$LAB/conf" "$LAB/storage" "$LAB/storage-push"
  rm -f "$LAB/env.sh" "$LAB"/*.log "$LAB/token.port"

  HTTP_SECRET=$(openssl rand -hex 24)
  gen_tls
  gen_token_key
  htpasswd -Bbn "$LAB_USER" "$LAB_PASS" >"$LAB/htpasswd" 2>/dev/null

  # Token service first: the token instance's config needs its URL.
  "$PY" "$HERE/tokenserver.py" --key "$LAB/token/signing.key" --port-file "$LAB/token.port" \
    --log "$LAB/tokenserver.log" --service "$SERVICE" --issuer "$ISSUER" \
    --user "$LAB_USER" --password "$LAB_PASS" \
    </dev/null >"$LAB/tokenserver.server.log" 2>&1 &
  local tpid=$!
  record tokenserver "$tpid"
  local deadline=$((SECONDS + START_TIMEOUT))
  while [ ! -s "$LAB/token.port" ]; do
    if ! alive "$tpid"; then tail_log tokenserver; die "tokenserver (pid $tpid) exited at start"; fi
    [ $SECONDS -lt $deadline ] || { tail_log tokenserver; die "tokenserver did not start within ${START_TIMEOUT}s"; }
    sleep 0.05
  done
  local tport
  tport=$(tr -dc '0-9' <"$LAB/token.port")
  TOKEN_URL="http://127.0.0.1:$tport/token"

  local name pid
  declare -A PID PORT
  for name in "${INSTANCES[@]}"; do
    write_config "$name"
    # stdout = the HTTP access log (one line per request), stderr = the server log
    "$REGISTRY" serve "$LAB/conf/$name.yml" </dev/null >"$LAB/$name.log" 2>"$LAB/$name.server.log" &
    pid=$!
    PID[$name]=$pid
    record "$name" "$pid"
  done
  for name in "${INSTANCES[@]}"; do
    PORT[$name]=$(wait_port "$name" "${PID[$name]}")
  done
  wait_v2 plain "${PID[plain]}" "http://127.0.0.1:${PORT[plain]}"
  wait_v2 tls "${PID[tls]}" "https://127.0.0.1:${PORT[tls]}" --cacert "$LAB/tls/ca.crt"
  wait_v2 token "${PID[token]}" "http://127.0.0.1:${PORT[token]}"
  wait_v2 basic "${PID[basic]}" "http://127.0.0.1:${PORT[basic]}"
  wait_v2 push-plain "${PID[push-plain]}" "http://127.0.0.1:${PORT[push-plain]}"
  wait_v2 push-tls "${PID[push-tls]}" "https://127.0.0.1:${PORT[push-tls]}" --cacert "$LAB/tls/ca.crt"
  wait_v2 push-token "${PID[push-token]}" "http://127.0.0.1:${PORT[push-token]}"
  wait_v2 push-basic "${PID[push-basic]}" "http://127.0.0.1:${PORT[push-basic]}"

  local tmp=$LAB/env.sh.tmp
  cat >"$tmp" <<EOF
# generated by tests/lab/lab.sh start on $(date -u +%Y-%m-%dT%H:%M:%SZ); source it.
# All instances serve the same storage (LAB_STORAGE). The basic instance is plain
# HTTP: registry 2.8 accepts htpasswd auth without TLS (LAB_BASIC_SCHEME=http).
export LAB_DIR="$LAB"
export LAB_PLAIN=127.0.0.1:${PORT[plain]}
export LAB_TLS=127.0.0.1:${PORT[tls]}
export LAB_TOKEN=127.0.0.1:${PORT[token]}
export LAB_BASIC=127.0.0.1:${PORT[basic]}
export LAB_BASIC_SCHEME=http
export LAB_TOKEN_SERVICE=$TOKEN_URL
export LAB_TOKEN_SERVICE_NAME=$SERVICE
export LAB_CA="$LAB/tls/ca.crt"
export LAB_USER=$LAB_USER
export LAB_PASS=$LAB_PASS
export LAB_LOG_PLAIN="$LAB/plain.log"
export LAB_LOG_TLS="$LAB/tls.log"
export LAB_LOG_TOKEN="$LAB/token.log"
export LAB_LOG_BASIC="$LAB/basic.log"
export LAB_LOG_TOKEN_SERVICE="$LAB/tokenserver.log"
export LAB_STORAGE="$LAB/storage"
# Push targets: the same four kinds over a second storage, empty at start.
export LAB_PUSH_PLAIN=127.0.0.1:${PORT[push-plain]}
export LAB_PUSH_TLS=127.0.0.1:${PORT[push-tls]}
export LAB_PUSH_TOKEN=127.0.0.1:${PORT[push-token]}
export LAB_PUSH_BASIC=127.0.0.1:${PORT[push-basic]}
export LAB_LOG_PUSH_PLAIN="$LAB/push-plain.log"
export LAB_LOG_PUSH_TLS="$LAB/push-tls.log"
export LAB_LOG_PUSH_TOKEN="$LAB/push-token.log"
export LAB_LOG_PUSH_BASIC="$LAB/push-basic.log"
export LAB_PUSH_STORAGE="$LAB/storage-push"
export LAB_FIXTURES="$LAB/fixtures.json"
EOF
  mv "$tmp" "$LAB/env.sh"
  say "instances up after $((SECONDS - t0))s: plain=${PORT[plain]} tls=${PORT[tls]} token=${PORT[token]} basic=${PORT[basic]} tokenservice=$tport; push targets: plain=${PORT[push-plain]} tls=${PORT[push-tls]} token=${PORT[push-token]} basic=${PORT[push-basic]}"

  if "$PY" "$HERE/fixtures.py" --check "$LAB"; then
    say "fixtures up to date ($LAB/fixtures.json)"
  else
    say "generating fixtures"
    "$PY" "$HERE/fixtures.py" "$LAB" || die "fixture generation failed"
  fi
  trap - EXIT
  say "lab ready in $((SECONDS - t0))s; source $LAB/env.sh"
}

[ $# -eq 2 ] || usage
case $1 in
  start)
    mkdir -p "$2"
    LAB=$(cd "$2" && pwd -P)
    start_lab
    ;;
  stop)
    if [ ! -d "$2" ]; then say "nothing to stop in $2"; exit 0; fi
    LAB=$(cd "$2" && pwd -P)
    stop_lab || die "some lab processes could not be stopped"
    say "lab in $LAB stopped"
    ;;
  *) usage ;;
esac
