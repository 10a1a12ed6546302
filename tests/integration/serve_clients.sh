#!/usr/bin/env bash
# serve_clients.sh - real clients pull every lab fixture from `occystrap
# serve` and get the registry's digests: skopeo (copy to dir:, which keeps
# the manifest's bytes, and to oci:, both verifying every blob; --all for the
# index), also all at once, and Debian's distribution server configured as
# a pull-through cache (proxy.remoteurl) in front of serve, pulled through
# with skopeo.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"

STORE="$WORK_DIR/store"
build_store "$STORE"
start_serve clients "$STORE"
ok "serve started on $SERVE_URL"

sha_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

n=0
for ref in $(fixture_refs); do
  repo=${ref%:*}
  digest=$(fixture_field "$repo" digest)
  format=$(fixture_field "$repo" format)
  all=()
  [ "$format" = index ] && all=(--all)
  d="$WORK_DIR/dir-$n"
  expect_status 0 skopeo copy -q "${all[@]+"${all[@]}"}" --src-tls-verify=false \
    "docker://$SERVE_ADDR/$ref" "dir:$d"
  [ "$(sha_of "$d/manifest.json")" = "$digest" ] || fail "skopeo dir: $ref has $(sha_of "$d/manifest.json"), wanted $digest"
  o="$WORK_DIR/oci-$n"
  expect_status 0 skopeo copy -q "${all[@]+"${all[@]}"}" --src-tls-verify=false \
    "docker://$SERVE_ADDR/$ref" "oci:$o:x"
  if [ "$format" != v2s2 ]; then # OCI stays as it is (skopeo 1.9 converts schema 2)
    got=$(jq -r '.manifests[0].digest' "$o/index.json")
    [ "$got" = "$digest" ] || fail "skopeo oci: $ref has $got, wanted $digest"
  fi
  n=$((n + 1))
done
ok "skopeo copied all $n fixtures from serve (dir: and oci:, blobs verified) with the registry's digests"

# Many clients at once: every fixture copied by its own skopeo, all together.
pids=()
n=0
for ref in $(fixture_refs); do
  all=()
  [ "$(fixture_field "${ref%:*}" format)" = index ] && all=(--all)
  skopeo copy -q "${all[@]+"${all[@]}"}" --src-tls-verify=false "docker://$SERVE_ADDR/$ref" \
    "dir:$WORK_DIR/par-$n" 2>"$WORK_DIR/par-$n.err" &
  pids+=($!)
  n=$((n + 1))
done
n=0
for ref in $(fixture_refs); do
  wait "${pids[$n]}" || fail "parallel skopeo copy of $ref failed: $(cat "$WORK_DIR/par-$n.err")"
  [ "$(sha_of "$WORK_DIR/par-$n/manifest.json")" = "$(fixture_field "${ref%:*}" digest)" ] ||
    fail "parallel copy of $ref: wrong digest"
  n=$((n + 1))
done
ok "$n skopeo copies at once, each with its fixture's digest"

# The distribution server as a pull-through cache in front of serve.
PT="$WORK_DIR/pullthrough"
mkdir -p "$PT/storage"
cat >"$PT/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: "$PT/storage"
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
proxy:
  remoteurl: $SERVE_URL
EOF
/usr/bin/docker-registry serve "$PT/config.yml" >"$PT/access.log" 2>"$PT/server.log" &
PT_PID=$!
EXTRA_CLEANUP+=("kill $PT_PID 2>/dev/null; wait $PT_PID 2>/dev/null")
PT_ADDR=""
for i in $(seq 200); do
  PT_ADDR=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$PT/server.log" 2>/dev/null | head -1 | sed 's/listening on //') || true
  [ -n "$PT_ADDR" ] && break
  sleep 0.05
done
[ -n "$PT_ADDR" ] || fail "the pull-through registry did not start: $(cat "$PT/server.log")"
n=0
for ref in $(fixture_refs); do
  repo=${ref%:*}
  digest=$(fixture_field "$repo" digest)
  format=$(fixture_field "$repo" format)
  all=()
  [ "$format" = index ] && all=(--all)
  d="$WORK_DIR/pt-$n"
  expect_status 0 skopeo copy -q "${all[@]+"${all[@]}"}" --src-tls-verify=false \
    "docker://$PT_ADDR/$ref" "dir:$d"
  [ "$(sha_of "$d/manifest.json")" = "$digest" ] || fail "pull-through: $ref has $(sha_of "$d/manifest.json"), wanted $digest"
  n=$((n + 1))
done
grep -q '"GET /v2/fixtures/multilayer/blobs/sha256:' "$SERVE_OUT" || fail "the pull-through cache did not fetch blobs from serve"
ok "the distribution server as a pull-through cache of serve: all $n fixtures with the registry's digests"
kill "$PT_PID"
wait "$PT_PID" 2>/dev/null || true

stop_serve
ok "serve stopped on SIGTERM (exit 0)"
finish
