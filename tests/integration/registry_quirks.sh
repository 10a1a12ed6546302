#!/usr/bin/env bash
# registry_quirks.sh - what public registries and proxies do that the lab's
# registry does not (issue 17, items 1-4), emulated by the fault proxy and a
# second token service:
#  1. blob GETs redirected to a CDN on another host (127.0.0.2) under signed
#     URLs that have expired: the registry is asked for a fresh redirect, a
#     bounded number of times; the error names the CDN and its message; no
#     Authorization ever reaches the CDN (token registry behind the front);
#  2. tokens that live 2 s: fetched and used, renewed when a resume comes
#     after they expired;
#  3. HEAD of a manifest answered 405 or 404 while GET works: mirror falls
#     back to GET (once per registry for 405), "not found" only when GET
#     says so;
#  4. Docker Hub's pull limit: budget gone -> those entries fail at once
#     with a rate-limit message and the other registry's entries complete;
#     20 left for 10 images -> no request waits; 429 + Retry-After -> waits
#     at most --rate-limit-wait, then fails saying so.
source "$(dirname "$0")/lib/common.sh"

key=fixtures/multilayer
check() { $PY "$CHECK_TARBALL" "$1" "$LAB_FIXTURES" "$key" >/dev/null || fail "tarball check of $1"; }
mirror_cfg() { # FILE HOST...: a config marking the hosts insecure
  local f=$1 h first=1
  shift
  { printf '{"registries": {'
    for h in "$@"; do [ $first = 1 ] || printf ','; first=0; printf '"%s": {"insecure": true}' "$h"; done
    printf '}}\n'; } > "$f"
}

# ---- 1. CDN redirects with signed, expiring URLs --------------------------
PROXY_ARGS=(--cdn-origin "$LAB_PLAIN")
start_proxy cdn1 'blobs/|redirect=-10|2' 'blobs/|redirect|1000'
expect_status 0 "$OCCYSTRAP" -v --insecure fetch-to-tarfile "$PROXY" "$key" v1 cdn1.tar
check cdn1.tar
[ "$(grep -c '^CDN GET .* expired=yes status=403' "$PROXY_LOG")" = 2 ] || { cat "$PROXY_LOG"; fail "the CDN did not refuse two expired URLs"; }
[ "$(grep -c 'for a fresh redirect' last.err)" = 2 ] || { cat last.err; fail "no fresh redirect was asked for"; }
grep -q '^CDN GET .* expired=no status=origin' "$PROXY_LOG" || fail "no blob came from the CDN"
ok "expired signed CDN URLs (twice): fresh redirects asked for, image verified"

start_proxy cdn2 'blobs/|redirect=-10|1000'
expect_status 1 "$OCCYSTRAP" --insecure fetch-to-tarfile "$PROXY" "$key" v1 cdn2.tar
expect_stderr "redirected to $PROXY_CDN"
expect_stderr "HTTP 403 (AccessDenied: Request has expired)"
n=$(grep -c '^CDN GET .* expired=yes' "$PROXY_LOG")
[ "$n" = 4 ] || { cat "$PROXY_LOG"; fail "the CDN was asked $n times, wanted 4 (1 + 3 fresh redirects)"; }
[ ! -e cdn2.tar ] || fail "TARFILE left after the CDN refused"
ok "always-expired CDN URLs: fails after 3 fresh redirects, error names $PROXY_CDN and its message"

PROXY_UPSTREAM=$LAB_TOKEN
start_proxy cdn3 'blobs/|redirect|1000'
expect_status 0 "$OCCYSTRAP" --insecure fetch-to-tarfile "$PROXY" "$key" v1 cdn3.tar
check cdn3.tar
grep -q '^CDN GET' "$PROXY_LOG" || fail "token registry: nothing went to the CDN"
! grep -q '^CDN .*authorization=yes' "$PROXY_LOG" || fail "an Authorization header reached the CDN"
ok "token registry behind a redirecting front: blobs from the CDN, no Authorization sent there"
PROXY_UPSTREAM=
PROXY_ARGS=()

# ---- 2. short-lived tokens ------------------------------------------------
TS_LOG=$WORK_DIR/ts.log
$PY "$TESTS_DIR/lab/tokenserver.py" --key "$LAB_DIR/token/signing.key" --port-file "$WORK_DIR/ts.port" \
  --log "$TS_LOG" --lifetime 2 &
PROXY_PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK_DIR/ts.port" ] && break; sleep 0.05; done
[ -s "$WORK_DIR/ts.port" ] || fail "second token service did not start"
big=$($PY -c 'import json,sys;l=json.load(open(sys.argv[1]))["fixtures"]["fixtures/multilayer"]["layers"];print(max(l,key=lambda x:x["size"])["digest"])' "$LAB_FIXTURES")
PROXY_UPSTREAM=$LAB_TOKEN
PROXY_ARGS=(--rewrite-realm "http://127.0.0.1:$(cat "$WORK_DIR/ts.port")/token")
# the largest layer trickles for 3 s and breaks: its resume needs a new token
start_proxy short "blobs/$big|slow=100000,slowchunk=16384,cut=300000|1"
expect_status 0 "$OCCYSTRAP" -v --insecure fetch-to-tarfile "$PROXY" "$key" v1 short.tar
check short.tar
grep -q 'expires_in=2' "$TS_LOG" || fail "the token service did not issue 2 s tokens"
n=$(grep -c 'token: GET' last.err)
[ "$n" -ge 2 ] || { cat last.err; fail "$n token(s) fetched; the resume after 3 s needs a second"; }
grep -q "blobs/$big range=bytes=300000- " "$PROXY_LOG" || fail "no resume after the cut"
ok "2 s tokens: used at once, renewed for the resume after they expired ($n fetched)"
PROXY_UPSTREAM=
PROXY_ARGS=()

# ---- 3. registries that refuse HEAD of manifests --------------------------
start_proxy head405 '/manifests/|status=405|1000|method=HEAD'
printf '%s/fixtures/multilayer:v1\n%s/fixtures/links:v1\n%s/fixtures/whiteouts:v1\n%s/fixtures/no-such-repo:v1\n' \
  "$PROXY" "$PROXY" "$PROXY" "$PROXY" > list405
mirror_cfg cfg405.json "$PROXY"
expect_status 1 "$OCCYSTRAP" --per-registry 1 --config cfg405.json mirror list405 store405
for r in multilayer links whiteouts; do expect_stderr "ok      $PROXY/fixtures/$r:v1: sha256:"; done
expect_stderr "fixtures/no-such-repo:v1 (line 4): .*not found"
[ "$(grep -c '^HEAD ' "$PROXY_LOG")" = 1 ] || { cat "$PROXY_LOG"; fail "HEAD was asked again after a 405"; }
head -n 3 list405 > list405-found
expect_status 0 "$OCCYSTRAP" --config cfg405.json mirror list405-found store405
[ "$(grep -c 'up to date' last.err)" = 3 ] || { cat last.err; fail "rerun over GET is not incremental"; }
ok "HEAD answered 405: GET instead (HEAD asked once per run), missing tag still 'not found', rerun up to date"

start_proxy head404 '/manifests/|status=404|1000|method=HEAD'
printf '%s/fixtures/multilayer:v1\n%s/fixtures/links:v1\n' "$PROXY" "$PROXY" > list404
mirror_cfg cfg404.json "$PROXY"
expect_status 0 "$OCCYSTRAP" --config cfg404.json mirror list404 store404
! grep -q 'not found' last.err || { cat last.err; fail "a HEAD 404 was reported as not found"; }
ok "HEAD answered 404 while GET works: both images mirrored, nothing called 'not found'"

# ---- 4. Docker Hub's pull limit ----------------------------------------------
PROXY_ARGS=(--ratelimit 0)
start_proxy rl0
{ for r in multilayer links whiteouts; do echo "$PROXY/fixtures/$r:v1"; done
  for r in multilayer links zstd shared-a; do echo "$LAB_PLAIN/fixtures/$r:v1"; done; } > list-rl0
mirror_cfg cfg-rl0.json "$PROXY" "$LAB_PLAIN"
t0=$SECONDS
rc=0
timeout 150 "$OCCYSTRAP" --config cfg-rl0.json --json-file rl0.json mirror list-rl0 store-rl0 2>last.err || rc=$?
[ "$rc" = 1 ] || { cat last.err; fail "exit $rc with the limit spent, wanted 1 (124: still waiting after 150 s)"; }
[ $((SECONDS - t0)) -lt 120 ] || fail "the limited entries took $((SECONDS - t0)) s to fail"
for r in multilayer links zstd shared-a; do expect_stderr "ok      $LAB_PLAIN/fixtures/$r:v1"; done
[ "$(grep -c "FAILED  $PROXY/.*rate limit reached at $PROXY: 0 of 100 left in its 21600 s window, resets in up to 6 h 00 min" last.err)" = 3 ] ||
  { cat last.err; fail "the limited entries do not fail with a rate-limit message"; }
ok "pull limit spent: 3 entries fail at once ($((SECONDS - t0)) s) saying so, the 4 of the other registry complete, exit 1"

PROXY_ARGS=(--ratelimit 20)
start_proxy rl20
ten="multilayer multilayer-oci whiteouts links zstd duplayer shared-a shared-b shared-c multimember"
for r in $ten; do echo "$PROXY/fixtures/$r:v1"; done > list-rl20
mirror_cfg cfg-rl20.json "$PROXY"
rc=0
timeout 120 "$OCCYSTRAP" -v --rate-limit-wait 5 --config cfg-rl20.json mirror list-rl20 store-rl20 2>last.err || rc=$?
[ "$rc" = 0 ] || { grep -v '^occystrap: \[' last.err; fail "exit $rc with 20 pulls left for 10 images"; }
[ "$(grep -c '^ok ' last.err)" = 10 ] || fail "not all 10 images were mirrored"
! grep -q 'waits for its rate limit\|rate limit reached' last.err || { grep 'rate limit' last.err; fail "a request waited for the limit"; }
used=$(grep -c '^ratelimit GET' "$PROXY_LOG")
[ "$used" -le 20 ] && ! grep -q 'ratelimit refused' "$PROXY_LOG" || fail "$used pulls counted or a 429 was met"
ok "20 pulls left, 10 images: all mirrored, no request waited, $used pulls used (blobs and HEADs not counted)"

PROXY_ARGS=(--ratelimit 0 --ratelimit-retry-after 2 --ratelimit-quiet-head)
start_proxy rl429
printf '%s/fixtures/multilayer:v1\n%s/fixtures/links:v1\n' "$PROXY" "$PROXY" > list-429
mirror_cfg cfg-429.json "$PROXY"
t0=$SECONDS
expect_status 1 "$OCCYSTRAP" --rate-limit-wait 5 --config cfg-429.json mirror list-429 store-429
[ $((SECONDS - t0)) -le 12 ] || fail "waited $((SECONDS - t0)) s with a 5 s bound"
[ "$(grep -c 'none came back within the 5 s a request waits' last.err)" = 2 ] || { cat last.err; fail "no bounded-wait message"; }
expect_stderr "TOOMANYREQUESTS"
n=$(grep -c 'ratelimit refused' "$PROXY_LOG")
[ "$n" -ge 3 ] || fail "only $n 429s: the Retry-After was not waited for and tried again"
ok "429 TOOMANYREQUESTS with Retry-After 2: tried again after each wait, failed after the 5 s bound ($n 429s)"
PROXY_ARGS=()
finish
