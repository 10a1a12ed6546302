#!/usr/bin/env bash
# push_errors.sh - what push refuses and how one image's failure leaves the
# others alone: an image stored without its exact bytes (a 0.2.0-layout
# store), a blob missing from STORE/oci, an image the store does not have,
# a push without the right to push (token instance, anonymous), a bad
# target or a directory that is no store (exit 2), and SIGTERM while a
# blob goes up (exit 143, the image reported stopped). Exit 1 whenever an
# image failed; the others are pushed with their digests.
source "$(dirname "$0")/lib/common.sh"
LAYOUT="$TESTS_DIR/integration/lib/oci_layout.py"
fx() { jq -r --arg r "$1" ".fixtures[\$r]$2" "$LAB_FIXTURES"; }
digest_in() { # REGISTRY REPO TAG: the digest the target's tag names (HEAD)
  curl -sfI -H "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json" \
    "http://$1/v2/$2/manifests/$3" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}

# 1. a store without exact bytes: fetch-to-extracted --use-unique-names keeps
#    0.2.0's layout only
expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" fixtures/multilayer v1 legacy
expect_status 1 "$OCCYSTRAP" --insecure --progress none push legacy "$LAB_PUSH_PLAIN/pushed/err-$$"
expect_stderr "FAILED  fixtures/multilayer:v1 -> $LAB_PUSH_PLAIN/pushed/err-$$/fixtures/multilayer:v1: fixtures/multilayer:v1 has no exact bytes in legacy (it was stored without them: mirror it again)"
ok "an image stored without its exact bytes fails with 'no exact bytes ... mirror it again', exit 1"

# 2. one image's failure leaves the others alone
$PY "$LAYOUT" "$LAB_PLAIN" store/oci fixtures/multilayer:v1 fixtures/zstd:v1 fixtures/multiplatform:v1 > /dev/null
zlayer=$(fx fixtures/zstd '.layers[0].digest')
rm "store/oci/blobs/sha256/${zlayer#sha256:}"
expect_status 1 "$OCCYSTRAP" --insecure --progress none --json-file rep.json push store "$LAB_PUSH_PLAIN/pushed/err-$$" \
  "$LAB_PLAIN/fixtures/zstd:v1" "$LAB_PLAIN/fixtures/multilayer" "$LAB_PLAIN/fixtures/nothing:v1" "$LAB_PLAIN/fixtures/multiplatform:v1"
expect_stderr "FAILED  $LAB_PLAIN/fixtures/zstd:v1 -> .*blob $zlayer is not in store/oci: the store lacks its exact bytes (mirror it again)"
expect_stderr "FAILED  $LAB_PLAIN/fixtures/nothing:v1 -> .*$LAB_PLAIN/fixtures/nothing:v1 is not in store"
jq -e '[.images[] | {(.name + ":" + .tag): .status}] | add == {"'"$LAB_PLAIN"'/fixtures/zstd:v1": "failed", "'"$LAB_PLAIN"'/fixtures/multilayer:v1": "pushed", "'"$LAB_PLAIN"'/fixtures/nothing:v1": "failed", "'"$LAB_PLAIN"'/fixtures/multiplatform:v1": "pushed"}' rep.json >/dev/null ||
  { cat rep.json; fail "report statuses"; }
[ "$(digest_in "$LAB_PUSH_PLAIN" "pushed/err-$$/fixtures/multilayer" v1)" = "$(fx fixtures/multilayer .digest)" ] || fail "multilayer not pushed"
[ "$(digest_in "$LAB_PUSH_PLAIN" "pushed/err-$$/fixtures/multiplatform" v1)" = "$(fx fixtures/multiplatform .digest)" ] || fail "multiplatform not pushed"
[ -z "$(digest_in "$LAB_PUSH_PLAIN" "pushed/err-$$/fixtures/zstd" v1)" ] || fail "zstd's tag exists in the target"
ok "a missing blob and an unknown image fail, each with its cause; the other two images are pushed; exit 1"

# 3. no right to push: the token instance without credentials
expect_status 1 "$OCCYSTRAP" --insecure --progress none push store "$LAB_PUSH_TOKEN/pushed/anon-$$" "$LAB_PLAIN/fixtures/multilayer:v1"
expect_stderr "authentication refused by $LAB_PUSH_TOKEN for pushed/anon-$$/fixtures/multilayer (HTTP 401)"
ok "an anonymous push to the token instance fails with the registry's 401"

# 4. usage: a bad target, a directory that is no store, a missing one
expect_status 2 "$OCCYSTRAP" --insecure push store "$LAB_PUSH_PLAIN/Upper/Case"
expect_stderr "target '$LAB_PUSH_PLAIN/Upper/Case'"
mkdir empty
expect_status 2 "$OCCYSTRAP" --insecure push empty "$LAB_PUSH_PLAIN/pushed/err-$$"
expect_stderr "empty is not a store with images"
expect_status 2 "$OCCYSTRAP" --insecure push nowhere "$LAB_PUSH_PLAIN/pushed/err-$$"
expect_stderr "nowhere: no such directory"
expect_status 2 "$OCCYSTRAP" --insecure push store
expect_status 2 "$OCCYSTRAP" --insecure --chunk-size 10 push store "$LAB_PUSH_PLAIN/x"
ok "a bad target, a directory that is no store, a missing one and bad options exit 2"

# 5. SIGTERM while a blob goes up (the proxy reads uploads at 1 MB/s)
NS=scratch/push-err-$$
$PY "$TESTS_DIR/integration/lib/mkimage.py" "$LAB_PLAIN" "$NS/big:v1" "$NS-big:6000000" > /dev/null
$PY "$LAYOUT" "$LAB_PLAIN" slow/oci "$NS/big:v1" > /dev/null
PROXY_UPSTREAM=$LAB_PUSH_PLAIN start_proxy slow "blobs/uploads/|slowup=1000000|100|method=PUT"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" > config.json
"$OCCYSTRAP" --config config.json --progress plain push slow "$PROXY/pushed/term-$$" > term.out 2> term.err &
pid=$!
for _ in $(seq 100); do grep -q "^PUT .*slowup" "$PROXY_LOG" 2>/dev/null && break; sleep 0.05; done
sleep 0.5
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 143 ] || { cat term.err; fail "exit $rc after SIGTERM, not 143"; }
grep -q "stopped $LAB_PLAIN/$NS/big:v1: interrupted by SIGTERM before it was pushed" term.err || { cat term.err; fail "no 'stopped' line"; }
grep -q "error: interrupted by SIGTERM: 1 of 1 images stopped" term.err || { cat term.err; fail "no summary line"; }
ok "SIGTERM during an upload: the image is reported stopped, exit 143"
finish
