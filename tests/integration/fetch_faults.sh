#!/usr/bin/env bash
# fetch_faults.sh - fetch-to-tarfile through a fault-injecting proxy: a
# connection cut half-way through a blob is resumed with Range; 503 then 429
# with Retry-After are retried; a corrupted byte is caught and the blob
# fetched again; persistent corruption and a stalled transfer end in clear
# errors with no TARFILE.
source "$(dirname "$0")/lib/common.sh"

key=fixtures/multilayer
big=$($PY -c 'import json,sys;l=json.load(open(sys.argv[1]))["fixtures"]["fixtures/multilayer"]["layers"];b=max(l,key=lambda x:x["size"]);print(b["digest"], b["size"])' "$LAB_FIXTURES")
big_digest=${big% *}
big_size=${big#* }
half=$((big_size / 2))

check() { $PY "$CHECK_TARBALL" "$1" "$LAB_FIXTURES" "$key" >/dev/null || fail "tarball check of $1"; }

# 1. cut half-way through the largest blob: resumed from the bytes received
start_proxy cut "blobs/$big_digest|cut=$half|1"
expect_status 0 "$OCCYSTRAP" -v --insecure fetch-to-tarfile "$PROXY" "$key" v1 cut.tar
check cut.tar
grep -q "GET /v2/$key/blobs/$big_digest range=bytes=$half-" "$PROXY_LOG" ||
  { cat "$PROXY_LOG"; fail "no Range request from byte $half after the cut"; }
ok "connection cut at byte $half of $big_size: resumed with Range and verified"

# 2. the server ignores Range after the cut and answers 200: start over cleanly
start_proxy full200 "blobs/$big_digest|cut=$half|1" "blobs/$big_digest|full200|1"
expect_status 0 "$OCCYSTRAP" --insecure fetch-to-tarfile "$PROXY" "$key" v1 full200.tar
check full200.tar
grep -q "range=bytes=$half- action=full200" "$PROXY_LOG" || { cat "$PROXY_LOG"; fail "full200 rule not hit"; }
ok "200 answer to a Range request: blob started over and verified"

# 3. 503, then 429 with Retry-After: 1
start_proxy busy "blobs/|status=503|1" "blobs/|status=429,retry-after=1|1"
expect_status 0 "$OCCYSTRAP" -v --insecure fetch-to-tarfile "$PROXY" "$key" v1 busy.tar
check busy.tar
grep -q 'action=status=503' "$PROXY_LOG" && grep -q 'action=status=429,retry-after=1' "$PROXY_LOG" ||
  fail "503 and 429 were not both injected"
grep -q 'retry .* in 1000 ms' last.err || { cat last.err; fail "Retry-After: 1 was not honoured"; }
ok "503 then 429 Retry-After: 1: retried and verified"

# 4. one corrupted byte: the digest check catches it, the blob is fetched again
start_proxy corrupt1 "blobs/$big_digest|corrupt=1000|1"
expect_status 0 "$OCCYSTRAP" -v --insecure fetch-to-tarfile "$PROXY" "$key" v1 corrupt1.tar
check corrupt1.tar
grep -q "fetching it again" last.err || fail "corruption was not reported and retried"
ok "one corrupted byte: detected, fetched again, verified"

# 5. corruption every time: a clear error naming the blob, no TARFILE
start_proxy corrupt "blobs/$big_digest|corrupt=1000|100"
expect_status 1 "$OCCYSTRAP" --insecure fetch-to-tarfile "$PROXY" "$key" v1 corrupt.tar
expect_stderr "$big_digest"
expect_stderr "mismatch"
[ ! -e corrupt.tar ] || fail "TARFILE left after a digest mismatch"
ok "persistent corruption: error names $big_digest, no TARFILE"

# 6. a stalled transfer is aborted and retried
start_proxy stall "blobs/$big_digest|stall=4|1"
expect_status 0 "$OCCYSTRAP" -v --insecure --stall-timeout 1 fetch-to-tarfile "$PROXY" "$key" v1 stall.tar
check stall.tar
grep -q 'retry .*blobs/'"$big_digest" last.err || { cat last.err; fail "stall was not retried"; }
ok "stalled transfer: aborted after 1 s, retried, verified"

# 7. the registry keeps failing: error after the retries, no TARFILE
start_proxy down "blobs/|status=503|1000"
expect_status 1 "$OCCYSTRAP" --insecure --retries 3 fetch-to-tarfile "$PROXY" "$key" v1 down.tar
expect_stderr "gave up after 3 attempts"
expect_stderr "503"
[ ! -e down.tar ] || fail "TARFILE left after retries ran out"
ok "persistent 503: clear error after 3 attempts, no TARFILE"
finish
