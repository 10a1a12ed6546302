#!/usr/bin/env bash
# push_fixtures.sh - every fixture (single- and multi-platform, Docker
# schema 2 and OCI, gzip and zstd) from a store's exact bytes (STORE/oci/,
# copied byte for byte from the lab by oci_layout.py) into the lab's empty
# push targets: plain, token (credentials), Basic and TLS. For each target
# and fixture the target's manifest bytes hash to the source's digest
# (skopeo inspect --raw | sha256sum on both sides, and fixtures.json), and
# skopeo copy docker://TARGET... oci: checks every blob's digest. A second
# push of the same store costs one HEAD of each tag and nothing else
# (registry access log).
source "$(dirname "$0")/lib/common.sh"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > policy.json
mkdir certs && cp "$LAB_CA" certs/ca.crt
LAYOUT="$TESTS_DIR/integration/lib/oci_layout.py"
keys=$(fixture_keys)
refs=()
for k in $keys; do refs+=("$k:v1"); done
$PY "$LAYOUT" "$LAB_PLAIN" store/oci "${refs[@]}" > layout.txt || fail "oci_layout.py"
n=$(wc -l < layout.txt)
[ "$n" = "$(echo "$keys" | wc -l)" ] || fail "layout holds $n images"
ok "a store with the exact bytes of the $n fixtures"

skopeo_src=(--tls-verify=false)

# check_target NAME REGISTRY PREFIX SKOPEO_ARGS...: every fixture's digest in
# the target is the source's, and skopeo copies it out with every blob verified.
check_target() {
  local name=$1 reg=$2 prefix=$3 k want src dst
  shift 3
  for k in $keys; do
    want=$(jq -r --arg k "$k" '.fixtures[$k].digest' "$LAB_FIXTURES")
    src=sha256:$(skopeo --policy policy.json inspect --raw "${skopeo_src[@]}" "docker://$LAB_PLAIN/$k:v1" | sha256sum | cut -d' ' -f1)
    dst=sha256:$(skopeo --policy policy.json inspect --raw "$@" "docker://$reg/$prefix/$k:v1" | sha256sum | cut -d' ' -f1)
    [ "$src" = "$want" ] || fail "$k: the source's manifest hashes to $src, fixtures.json says $want"
    [ "$dst" = "$want" ] || fail "$name: $reg/$prefix/$k:v1 hashes to $dst, the source's digest is $want"
    # skopeo's source options are the inspect ones with --src- in front
    local copy_args=() a
    for a in "$@"; do
      case $a in --*) copy_args+=("--src-${a#--}") ;; *) copy_args+=("$a") ;; esac
    done
    skopeo --policy policy.json copy -q --all "${copy_args[@]}" "docker://$reg/$prefix/$k:v1" \
      "oci:copy-$name-${k//\//_}:v1" >/dev/null 2>skopeo.err || { cat skopeo.err >&2; fail "$name: skopeo copy of $reg/$prefix/$k:v1"; }
  done
  ok "$name: every fixture's manifest in $reg/$prefix hashes to the source's digest; skopeo copied each with every blob verified"
}

# push NAME REGISTRY PREFIX OCCYSTRAP_OPTIONS...: push the whole store; every image pushed.
push() {
  local name=$1 reg=$2 prefix=$3
  shift 3
  expect_status 0 "$OCCYSTRAP" "$@" --progress none --json-file "report-$name.json" push store "$reg/$prefix"
  local pushed
  pushed=$(jq -r '.totals.pushed' "report-$name.json")
  [ "$pushed" = "$n" ] || { cat "report-$name.json"; fail "$name: $pushed of $n images pushed"; }
  jq -e --arg p "$reg/$prefix/" '[.images[] | select(.status == "pushed" and (.target | startswith($p)) and .digest != null)] | length == '"$n" "report-$name.json" >/dev/null ||
    fail "$name: the report does not name each image's target and digest"
  ok "$name: push of $n images to $reg/$prefix, exit 0, report complete"
}

push plain "$LAB_PUSH_PLAIN" "pushed/fx-$$" --insecure
check_target plain "$LAB_PUSH_PLAIN" "pushed/fx-$$" --tls-verify=false
# the blobs went up once: the report's bytes are what the layout holds, shared ones once
up=$(jq '.totals.bytes_uploaded + .totals.bytes_mounted' report-plain.json)
[ "$up" -gt 0 ] || fail "nothing uploaded"
mounted=$(jq '.totals.bytes_mounted' report-plain.json)
[ "$mounted" -gt 0 ] || fail "the layers shared by shared-a, -b and -c were not mounted from one repository into the others"
ok "shared blobs uploaded once and mounted into the other repositories ($mounted bytes mounted)"

push token "$LAB_PUSH_TOKEN" "pushed/tok-$$" --insecure --username "$LAB_USER" --password "$LAB_PASS"
check_target token "$LAB_PUSH_TOKEN" "pushed/tok-$$" --tls-verify=false --creds "$LAB_USER:$LAB_PASS"
grep -q "granted=\[repository:pushed/tok-$$/fixtures/multilayer:pull,push" "$LAB_LOG_TOKEN_SERVICE" ||
  fail "no token asked for with push scope"
ok "token: tokens with the scope repository:NAME:pull,push"

push basic "$LAB_PUSH_BASIC" "pushed/basic-$$" --insecure --username "$LAB_USER" --password "$LAB_PASS"
check_target basic "$LAB_PUSH_BASIC" "pushed/basic-$$" --tls-verify=false --creds "$LAB_USER:$LAB_PASS"

push tls "$LAB_PUSH_TLS" "pushed/tls-$$" --ca-cert "$LAB_CA"
check_target tls "$LAB_PUSH_TLS" "pushed/tls-$$" --cert-dir certs
grep -q "PUT /v2/pushed/tls-$$/fixtures/zstd/manifests/v1 HTTP/2.0\" 201" "$LAB_LOG_PUSH_TLS" ||
  fail "the TLS push did not go over HTTP/2"
ok "tls: pushed over HTTP/2"

# A second push of the same store: one HEAD per tag, nothing else.
sleep 0.5
n0=$(wc -l < "$LAB_LOG_PUSH_PLAIN")
expect_status 0 "$OCCYSTRAP" --insecure --progress none --json-file again.json push store "$LAB_PUSH_PLAIN/pushed/fx-$$"
[ "$(jq -r '.totals.up_to_date' again.json)" = "$n" ] || { cat again.json; fail "second push: not all up to date"; }
sleep 1
# other tests may use the push targets meanwhile: only this prefix's lines
tail -n +$((n0 + 1)) "$LAB_LOG_PUSH_PLAIN" | grep -F " /v2/pushed/fx-$$/" > again.log || true
heads=$(grep -c "\"HEAD /v2/pushed/fx-$$/[^ ]*/manifests/v1 " again.log || true)
others=$(grep -vc "\"HEAD /v2/pushed/fx-$$/[^ ]*/manifests/v1 " again.log || true)
[ "$heads" = "$n" ] && [ "$others" = 0 ] || { cat again.log; fail "second push: $heads manifest HEADs and $others other requests"; }
ok "second push: $n manifest HEADs and no other request"
finish
