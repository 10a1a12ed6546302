#!/usr/bin/env bash
# mirror_to.sh - mirror LIST --to REGISTRY/PREFIX: registry to registry, no
# store. Every fixture from the lab's plain instance into its empty push
# target: the target's manifest digest for each is the source's (skopeo
# inspect --raw | sha256sum, and fixtures.json) and skopeo copies each out
# with every blob verified; the same into the token target with
# credentials for it alone (--config). A second run costs a HEAD of each
# tag on both sides and nothing more. Through a fault proxy in front of the
# source: a blob GET cut half-way continues with Range; a blob corrupted
# once is never committed (its session is deleted) and is sent again from
# a new GET; a blob corrupted every time fails its entry (exit 1), the
# target has no such blob and no tag, and the other entry is copied.
source "$(dirname "$0")/lib/common.sh"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > policy.json
keys=$(fixture_keys)
n=$(echo "$keys" | wc -l)
for k in $keys; do echo "$LAB_PLAIN/$k:v1"; done > list.txt
cat > config.json <<EOF
{"registries": {"$LAB_PLAIN": {"insecure": true}, "$LAB_PUSH_PLAIN": {"insecure": true},
 "$LAB_PUSH_TOKEN": {"insecure": true, "username": "$LAB_USER", "password": "$LAB_PASS"}}}
EOF

# check REGISTRY PREFIX SKOPEO_ARGS...: digests and skopeo copies
check() {
  local reg=$1 prefix=$2 k want dst a
  shift 2
  local copy_args=()
  for a in "$@"; do
    case $a in --*) copy_args+=("--src-${a#--}") ;; *) copy_args+=("$a") ;; esac
  done
  for k in $keys; do
    want=$(jq -r --arg k "$k" '.fixtures[$k].digest' "$LAB_FIXTURES")
    dst=sha256:$(skopeo --policy policy.json inspect --raw "$@" "docker://$reg/$prefix/$k:v1" | sha256sum | cut -d' ' -f1)
    [ "$dst" = "$want" ] || fail "$reg/$prefix/$k:v1 hashes to $dst, the source's digest is $want"
    skopeo --policy policy.json copy -q --all "${copy_args[@]}" "docker://$reg/$prefix/$k:v1" \
      "oci:copy-${prefix//\//_}-${k//\//_}:v1" >/dev/null 2>skopeo.err || { cat skopeo.err >&2; fail "skopeo copy of $reg/$prefix/$k:v1"; }
  done
}

expect_status 0 "$OCCYSTRAP" --config config.json --progress none --json-file plain.json mirror list.txt --to "$LAB_PUSH_PLAIN/pushed/mto-$$"
[ "$(jq .totals.pushed plain.json)" = "$n" ] || { cat plain.json; fail "not every entry copied"; }
check "$LAB_PUSH_PLAIN" "pushed/mto-$$" --tls-verify=false
ok "mirror --to: the $n fixtures registry to registry, each target digest the source's, skopeo verified every blob"

expect_status 0 "$OCCYSTRAP" --config config.json --progress none mirror list.txt --to "$LAB_PUSH_TOKEN/pushed/mto-$$"
check "$LAB_PUSH_TOKEN" "pushed/mto-$$" --tls-verify=false --creds "$LAB_USER:$LAB_PASS"
ok "the same into the token target, with credentials for it alone"

# the second run reads the source through a proxy: other tests read the
# fixtures meanwhile, the proxy's log has this run's requests alone
start_proxy again
sed "s|^$LAB_PLAIN/|$PROXY/|" list.txt > list-proxy.txt
printf '{"registries": {"%s": {"insecure": true}, "%s": {"insecure": true}}}\n' "$PROXY" "$LAB_PUSH_PLAIN" > config-proxy.json
sleep 0.5
n0=$(wc -l < "$LAB_LOG_PUSH_PLAIN")
expect_status 0 "$OCCYSTRAP" --config config-proxy.json --progress none --json-file again.json mirror list-proxy.txt --to "$LAB_PUSH_PLAIN/pushed/mto-$$"
[ "$(jq .totals.up_to_date again.json)" = "$n" ] || { cat again.json; fail "second run: not all up to date"; }
sleep 1
tail -n +$((n0 + 1)) "$LAB_LOG_PUSH_PLAIN" | grep -F " /v2/pushed/mto-$$/" > again-target.log || true
[ "$(grep -c '"HEAD /v2/[^ ]*/manifests/v1 ' again-target.log)" = "$n" ] && [ "$(wc -l < again-target.log)" = "$n" ] ||
  { cat again-target.log; fail "second run: the target got more than a HEAD per tag"; }
[ "$(grep -c '^HEAD /v2/[^ ]*/manifests/v1 ' "$PROXY_LOG")" = "$n" ] && [ "$(wc -l < "$PROXY_LOG")" = "$n" ] ||
  { cat "$PROXY_LOG"; fail "second run: the source got more than a HEAD per tag"; }
stop_proxies
PROXY_PIDS=()
ok "a second run: one HEAD per tag on each side, nothing else"

# one platform of an index, under the tag; usage errors
ARM64=$(jq -r '.fixtures["fixtures/multiplatform"].manifests[] | select(.platform.architecture=="arm64") | .digest' "$LAB_FIXTURES")
echo "$LAB_PLAIN/fixtures/multiplatform:v1" > mp.txt
expect_status 0 "$OCCYSTRAP" --config config.json --progress none --platform linux/arm64/v8 mirror mp.txt --to "$LAB_PUSH_PLAIN/pushed/mtp-$$"
got=sha256:$(skopeo --policy policy.json inspect --raw --tls-verify=false "docker://$LAB_PUSH_PLAIN/pushed/mtp-$$/fixtures/multiplatform:v1" | sha256sum | cut -d' ' -f1)
[ "$got" = "$ARM64" ] || fail "--platform linux/arm64/v8: the tag names $got, not the arm64 manifest $ARM64"
expect_status 2 "$OCCYSTRAP" --config config.json --platform linux/amd64 --platform linux/arm64 mirror mp.txt --to "$LAB_PUSH_PLAIN/x"
expect_stderr "one --platform at most"
expect_status 2 "$OCCYSTRAP" --config config.json mirror mp.txt store --to "$LAB_PUSH_PLAIN/x"
expect_status 2 "$OCCYSTRAP" --config config.json --keep-host mirror mp.txt store
ok "--platform P copies that platform's manifest under the tag; two platforms, a store with --to, --keep-host without --to: exit 2"

# faults on the source's blob GETs
NS=scratch/mirror-to-$$
$PY "$TESTS_DIR/integration/lib/mkimage.py" "$LAB_PLAIN" "$NS/big:v1" "$NS-big:6000000" > img.txt
big=$(sed -n 2p img.txt | cut -d' ' -f2)
$PY "$TESTS_DIR/integration/lib/mkimage.py" "$LAB_PLAIN" "$NS/other:v1" "$NS-other:3000" > /dev/null
printf '%s\n' "$LAB_PLAIN/$NS/big:v1" "$LAB_PLAIN/$NS/other:v1" > big-other.txt
start_proxy src "blobs/$big|cut=2000000|1|method=GET" "blobs/$big|corrupt=3000000|1|method=GET"
printf '{"registries": {"%s": {"insecure": true}, "%s": {"insecure": true}}}\n' "$PROXY" "$LAB_PUSH_PLAIN" > proxy.json
printf '%s\n' "$PROXY/$NS/big:v1" "$PROXY/$NS/other:v1" > faults.txt
n0=$(wc -l < "$LAB_LOG_PUSH_PLAIN")
expect_status 0 "$OCCYSTRAP" -v --config proxy.json --progress none mirror faults.txt --to "$LAB_PUSH_PLAIN/pushed/mtf-$$"
grep -q "GET /v2/$NS/big/blobs/$big range=bytes=2000000- " "$PROXY_LOG" || { cat "$PROXY_LOG"; fail "the cut GET did not continue with Range"; }
grep -q "digest mismatch: the source's bytes hash to" last.err || { cat last.err; fail "the corrupt bytes were not seen"; }
sleep 1
tail -n +$((n0 + 1)) "$LAB_LOG_PUSH_PLAIN" > faults.log
grep -q "\"DELETE /v2/pushed/mtf-$$/$NS/big/blobs/uploads/[^ ]* HTTP/1.1\" 204 " faults.log || { cat faults.log; fail "the corrupt upload's session was not deleted"; }
[ "$(grep -c "\"PUT /v2/pushed/mtf-$$/$NS/big/blobs/uploads/[^ ]*digest=sha256%3A${big#sha256:} HTTP/1.1\" 201 " faults.log)" = 1 ] ||
  { cat faults.log; fail "want exactly one commit of the big blob"; }
[ "$(skopeo --policy policy.json inspect --raw --tls-verify=false "docker://$LAB_PUSH_PLAIN/pushed/mtf-$$/$NS/big:v1" | sha256sum | cut -d' ' -f1)" = "$(sed -n 1p img.txt | cut -d: -f2)" ] ||
  fail "big's digest in the target"
skopeo --policy policy.json copy -q --src-tls-verify=false "docker://$LAB_PUSH_PLAIN/pushed/mtf-$$/$NS/big:v1" oci:big-copy:v1 >/dev/null || fail "skopeo copy of big"
ok "a GET cut at 2 MB continued with Range; bytes corrupted once were never committed (session deleted), the new GET's were"

# one request at a time (-j 1): a relay's GET rides on its PATCH's slot; had
# it taken a slot of its own while the PATCH waited for one, this would
# never end
timeout 60 "$OCCYSTRAP" -j 1 --config config.json --progress none mirror big-other.txt --to "$LAB_PUSH_PLAIN/pushed/mtj-$$" 2>j1.err ||
  { cat j1.err; fail "mirror --to with -j 1 did not complete (exit $?)"; }
ok "-j 1: a 6 MB blob relayed with one request slot"

stop_proxies
PROXY_PIDS=()
start_proxy bad "blobs/$big|corrupt=3000000|100|method=GET"
printf '{"registries": {"%s": {"insecure": true}, "%s": {"insecure": true}}}\n' "$PROXY" "$LAB_PUSH_PLAIN" > proxy.json
printf '%s\n' "$PROXY/$NS/big:v1" "$PROXY/$NS/other:v1" > faults.txt
expect_status 1 "$OCCYSTRAP" --config proxy.json --progress none --json-file bad.json mirror faults.txt --to "$LAB_PUSH_PLAIN/pushed/mtb-$$"
expect_stderr "FAILED  $PROXY/$NS/big:v1 -> .*digest mismatch: the source's bytes hash to"
[ "$(jq -r '.images[] | select(.name | endswith("/other")) | .status' bad.json)" = pushed ] || { cat bad.json; fail "other was not copied"; }
code=$(curl -s -o /dev/null -w '%{http_code}' -I "http://$LAB_PUSH_PLAIN/v2/pushed/mtb-$$/$NS/big/blobs/$big")
[ "$code" = 404 ] || fail "the corrupt blob is in the target (HEAD $code)"
code=$(curl -s -o /dev/null -w '%{http_code}' -I "http://$LAB_PUSH_PLAIN/v2/pushed/mtb-$$/$NS/big/manifests/v1")
[ "$code" = 404 ] || fail "big's tag is in the target (HEAD $code)"
ok "a source that corrupts the blob every time: that entry fails, nothing of it lands, the other is copied, exit 1"
# a whole repository (REPO:*) is expanded into its tags as in mirror (this
# crashed before: the entry has no tag)
printf '%s\n' "$LAB_PLAIN/fixtures/multilayer:*" > repo.txt
expect_status 0 "$OCCYSTRAP" --insecure --progress none mirror repo.txt --to "$LAB_PUSH_PLAIN/pushed/mtr-$$"
want=$(jq -r '.fixtures["fixtures/multilayer"].digest' "$LAB_FIXTURES")
got=$(curl -s -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$LAB_PUSH_PLAIN/v2/pushed/mtr-$$/fixtures/multilayer/manifests/v1" | tr -d '\r' |
  sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
[ "$got" = "$want" ] || fail "REPO:* copied fixtures/multilayer:v1 as '$got', wanted $want"
ok "REPO:* with --to: every tag of the repository copied, digests unchanged"
finish
