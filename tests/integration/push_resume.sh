#!/usr/bin/env bash
# push_resume.sh - a push whose connection drops half-way through a large
# blob (a fault proxy in front of the push target) completes:
# - the PATCH carrying bytes 8-12 MiB of a 20 MB blob is dropped before it
#   reaches the registry: the upload asks the session's status (GET of its
#   URL, 204 with Range 0-8388607 in the registry's access log) and goes on
#   with a PATCH from byte 8388608 (Content-Range in the proxy's log);
# - the second PATCH is cut after 1 MB has reached the registry: distribution
#   2.8 then holds more than its session state says and refuses the session
#   (a 4xx to the status GET), so the upload starts over with a new POST;
# - a PATCH answered 429 (Retry-After: 1) and a blob HEAD answered 503, with
#   every Location made relative by the proxy: the session's status is asked
#   and the upload goes on, the HEAD is retried;
# all pushes end with the source's digest in the target and skopeo copying
# the image with every blob verified; a second push of the same store sends
# no PATCH, PUT or POST (the registry's access log).
source "$(dirname "$0")/lib/common.sh"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > policy.json
NS=scratch/push-resume-$$
$PY "$TESTS_DIR/integration/lib/mkimage.py" "$LAB_PLAIN" "$NS/big:v1" "$NS-big:20000000" "$NS-small:1000" > img.txt
digest=$(sed -n 1p img.txt)
big=$(sed -n 2p img.txt | cut -d' ' -f2)
$PY "$TESTS_DIR/integration/lib/oci_layout.py" "$LAB_PLAIN" store/oci "$NS/big:v1" > /dev/null
CHUNK=4194304

# check PREFIX: the target names the source's digest, skopeo verifies the blobs
check() {
  local got
  got=sha256:$(skopeo --policy policy.json inspect --raw --tls-verify=false "docker://$LAB_PUSH_PLAIN/$1/$NS/big:v1" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$digest" ] || fail "$1: the target's manifest hashes to $got, not $digest"
  skopeo --policy policy.json copy -q --src-tls-verify=false "docker://$LAB_PUSH_PLAIN/$1/$NS/big:v1" "oci:copy-${1//\//_}:v1" >/dev/null ||
    fail "$1: skopeo copy"
}

# registry_log_since N: the push target's access log after line N (its lines
# are written once the answer went out: wait for them); other tests may use
# the target meanwhile, so every check below looks at its own prefix
registry_log_since() {
  sleep 1
  tail -n +$(($1 + 1)) "$LAB_LOG_PUSH_PLAIN"
}

PROXY_UPSTREAM=$LAB_PUSH_PLAIN start_proxy drop "blobs/uploads/|dropup=3000000|1|method=PATCH,after=2"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" > config.json
n0=$(wc -l < "$LAB_LOG_PUSH_PLAIN")
expect_status 0 "$OCCYSTRAP" -v --config config.json --progress none --chunk-size $CHUNK push store "$PROXY/pushed/drop-$$"
grep -q "dropped the request after 3000000 body bytes" "$PROXY_LOG" || { cat "$PROXY_LOG"; fail "the proxy dropped nothing"; }
grep -q "the registry holds bytes 0-8388607 of the session; resuming from byte 8388608" last.err ||
  { cat last.err; fail "no resume from the registry's offset"; }
# after the drop: the status GET, then a PATCH from the registry's offset
sed -n '/dropped the request/,$p' "$PROXY_LOG" | grep -m2 "^GET \|^PATCH " > after.txt
grep -q "^GET /v2/pushed/drop-$$/$NS/big/blobs/uploads/" <(sed -n 1p after.txt) || { cat "$PROXY_LOG"; fail "no status GET after the drop"; }
grep -q "content-range=8388608-12582911 " <(sed -n 2p after.txt) || { cat "$PROXY_LOG"; fail "the PATCH after the status did not start at byte 8388608"; }
registry_log_since "$n0" > drop.log
grep -q "\"GET /v2/pushed/drop-$$/$NS/big/blobs/uploads/[^ ]* HTTP/1.1\" 204 " drop.log || { cat drop.log; fail "the registry's log has no status GET answered 204"; }
[ "$(grep -c "\"POST /v2/pushed/drop-$$/$NS/big/blobs/uploads/ " drop.log)" = 3 ] || { cat drop.log; fail "a session was started over"; }
check "pushed/drop-$$"
ok "a PATCH dropped at byte 8 MiB of $big: status GET (204, Range 0-8388607), PATCH from byte 8388608, digest $digest in the target"

stop_proxies
PROXY_PIDS=()
PROXY_UPSTREAM=$LAB_PUSH_PLAIN start_proxy cut "blobs/uploads/|cutup=1000000|1|method=PATCH,after=1"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" > config.json
n0=$(wc -l < "$LAB_LOG_PUSH_PLAIN")
expect_status 0 "$OCCYSTRAP" -v --config config.json --progress none --chunk-size $CHUNK push store "$PROXY/pushed/cut-$$"
grep -q "cut the request body after 1000000 bytes" "$PROXY_LOG" || { cat "$PROXY_LOG"; fail "the proxy cut nothing"; }
grep -q "blob $big into pushed/cut-$$/$NS/big: starting the upload over" last.err || { cat last.err; fail "the refused session was not started over"; }
# (the status GET may still see the size before the cut bytes and resume once
# more before the registry refuses the session: a resume then is no failure)
grep -q "uploaded after [0-9]* resume(s) and 1 restart(s)" last.err || { cat last.err; fail "no summary of the restart"; }
registry_log_since "$n0" > cut.log
[ "$(grep -c "\"POST /v2/pushed/cut-$$/$NS/big/blobs/uploads/ " cut.log)" = 4 ] || { cat cut.log; fail "want 3 sessions and one more for the restart"; }
check "pushed/cut-$$"
ok "a PATCH cut after 1 MB reached the registry: the session it refuses is started over, digest $digest in the target"

stop_proxies
PROXY_PIDS=()
PROXY_UPSTREAM=$LAB_PUSH_PLAIN start_proxy busy "blobs/uploads/|status=429,retry-after=1|1|method=PATCH,after=1" \
  "blobs/sha256:|status=503|1|method=HEAD" ".|relloc|100000"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" > config.json
expect_status 0 "$OCCYSTRAP" -v --config config.json --progress none --chunk-size $CHUNK push store "$PROXY/pushed/busy-$$"
grep -q "action=status=429" "$PROXY_LOG" && grep -q "action=status=503" "$PROXY_LOG" && grep -q "action=relloc" "$PROXY_LOG" ||
  { cat "$PROXY_LOG"; fail "the proxy's faults did not fire"; }
# the 429 comes before the body is read: curl sees it, or a connection closed under the body
grep -q "big: PATCH .*\(HTTP 429\|curl error\).*asking the registry what the session holds" last.err ||
  { cat last.err; fail "no status GET after the 429"; }
grep -q "retry http://$PROXY/v2/pushed/busy-$$/$NS/big/blobs/sha256:[0-9a-f]* in" last.err || { cat last.err; fail "the 503 HEAD was not retried"; }
check "pushed/busy-$$"
ok "a PATCH answered 429 and a HEAD answered 503, with relative Locations: the upload goes on, digest $digest in the target"

# the second push of each: HEADs only, no blob sent
n0=$(wc -l < "$LAB_LOG_PUSH_PLAIN")
expect_status 0 "$OCCYSTRAP" --insecure --progress none push store "$LAB_PUSH_PLAIN/pushed/drop-$$"
expect_status 0 "$OCCYSTRAP" --insecure --progress none push store "$LAB_PUSH_PLAIN/pushed/cut-$$"
registry_log_since "$n0" | grep -F -e " /v2/pushed/drop-$$/" -e " /v2/pushed/cut-$$/" > again.log || true
[ "$(grep -c '"HEAD ' again.log)" = 2 ] && ! grep -q '"PATCH \|"PUT \|"POST ' again.log || { cat again.log; fail "the second pushes sent more than a HEAD each"; }
ok "a second push of the same store sends no PATCH, PUT or POST"
finish
