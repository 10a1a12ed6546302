#!/usr/bin/env bash
# push_names.sh - where push puts things and what it sends:
# - PREFIX/<repository> with the source host dropped; Docker Hub names keep
#   library/ (a store image named "busybox"); --keep-host keeps the host as
#   the first component ("docker.io", or host-port for a host:port);
# - an index the store holds whole goes with its digest; an index of which
#   the store holds one platform goes as that platform's manifest under the
#   tag (noted in the report); with two of three platforms it is refused;
# - a blob another image of the store put into another repository of the
#   target in an earlier run is mounted from there (POST ?mount=&from=
#   answered 201 in the registry's log), not uploaded again;
# - a digest entry (TAG sha256:...) goes by digest;
# - several tags of one repository that share blobs with another image: each
#   blob goes into each repository once (one upload, one mount per other
#   repository), never by two requests at once (distribution 2.8 loses a
#   link written twice at once: the manifest PUT then fails DIGEST_INVALID).
source "$(dirname "$0")/lib/common.sh"
LAYOUT="$TESTS_DIR/integration/lib/oci_layout.py"
fx() { jq -r --arg r "$1" ".fixtures[\$r]$2" "$LAB_FIXTURES"; }
digest_in() { # REPO REFERENCE: the digest the push target's reference names (HEAD)
  curl -sfI -H "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json" \
    "http://$LAB_PUSH_PLAIN/v2/$1/manifests/$2" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}
P=pushed/names-$$
ML=$(fx fixtures/multilayer .digest)

# names: a registry image, a Docker Hub one
$PY "$LAYOUT" "$LAB_PLAIN" store/oci fixtures/multilayer:v1 > /dev/null
$PY "$LAYOUT" --name busybox --tag latest "$LAB_PLAIN" store/oci fixtures/multilayer:v1 > /dev/null
expect_status 0 "$OCCYSTRAP" --insecure --progress none push store "$LAB_PUSH_PLAIN/$P/plain"
[ "$(digest_in "$P/plain/fixtures/multilayer" v1)" = "$ML" ] || fail "not at PREFIX/fixtures/multilayer"
[ "$(digest_in "$P/plain/library/busybox" latest)" = "$ML" ] || fail "busybox not at PREFIX/library/busybox"
expect_status 0 "$OCCYSTRAP" --insecure --progress none --keep-host push store "$LAB_PUSH_PLAIN/$P/kept"
[ "$(digest_in "$P/kept/${LAB_PLAIN/:/-}/fixtures/multilayer" v1)" = "$ML" ] || fail "not at PREFIX/${LAB_PLAIN/:/-}/fixtures/multilayer"
[ "$(digest_in "$P/kept/docker.io/library/busybox" latest)" = "$ML" ] || fail "busybox not at PREFIX/docker.io/library/busybox"
ok "PREFIX/fixtures/multilayer and PREFIX/library/busybox; with --keep-host PREFIX/${LAB_PLAIN/:/-}/... and PREFIX/docker.io/library/busybox"

# a digest entry goes by digest
$PY "$LAYOUT" --tag "$ML" "$LAB_PLAIN" bydigest/oci fixtures/multilayer:v1 > /dev/null
expect_status 0 "$OCCYSTRAP" --insecure --progress none push bydigest "$LAB_PUSH_PLAIN/$P/bydigest"
[ "$(digest_in "$P/bydigest/fixtures/multilayer" "$ML")" = "$ML" ] || fail "not pushed by digest"
[ -z "$(digest_in "$P/bydigest/fixtures/multilayer" v1)" ] || fail "a digest entry made a tag"
ok "a digest entry is pushed by digest, no tag"

# indexes: whole, one platform, two of three
MP=$(fx fixtures/multiplatform .digest)
ARM64=$(jq -r '.fixtures["fixtures/multiplatform"].manifests[] | select(.platform.architecture=="arm64") | .digest' "$LAB_FIXTURES")
$PY "$LAYOUT" --platform linux/arm64/v8 "$LAB_PLAIN" one/oci fixtures/multiplatform:v1 > /dev/null
$PY "$LAYOUT" --platform linux/arm64/v8 --platform linux/amd64 "$LAB_PLAIN" two/oci fixtures/multiplatform:v1 > /dev/null
expect_status 0 "$OCCYSTRAP" --insecure --progress none --json-file one.json push one "$LAB_PUSH_PLAIN/$P/one"
[ "$(digest_in "$P/one/fixtures/multiplatform" v1)" = "$ARM64" ] || fail "the tag does not name the arm64 manifest $ARM64"
jq -e --arg d "$ARM64" '.images[0] | .digest == $d and (.note | contains("holds 1 of the 3 platforms"))' one.json >/dev/null ||
  { cat one.json; fail "no note on the partial index"; }
expect_status 1 "$OCCYSTRAP" --insecure --progress none push two "$LAB_PUSH_PLAIN/$P/two"
expect_stderr "the store holds 2 of the 3 manifests of index $MP: an index is pushed only whole"
[ -z "$(digest_in "$P/two/fixtures/multiplatform" v1)" ] || fail "a partial index was tagged"
ok "one platform of an index goes under the tag (noted), two of three are refused, the whole index keeps its digest (push_fixtures.sh)"

# mount across runs: shared-a first, then shared-b mounts the shared layers
$PY "$LAYOUT" "$LAB_PLAIN" shared/oci fixtures/shared-a:v1 fixtures/shared-b:v1 > /dev/null
expect_status 0 "$OCCYSTRAP" --insecure --progress none push shared "$LAB_PUSH_PLAIN/$P/sh" "$LAB_PLAIN/fixtures/shared-a:v1"
n0=$(wc -l < "$LAB_LOG_PUSH_PLAIN")
expect_status 0 "$OCCYSTRAP" --insecure --progress none --json-file b.json push shared "$LAB_PUSH_PLAIN/$P/sh" "$LAB_PLAIN/fixtures/shared-b:v1"
sleep 1
tail -n +$((n0 + 1)) "$LAB_LOG_PUSH_PLAIN" > b.log
mounts=$(grep -c "\"POST /v2/$P/sh/fixtures/shared-b/blobs/uploads/?mount=sha256%3A[0-9a-f]*&from=$P/sh/fixtures/shared-a HTTP/1.1\" 201 " b.log || true)
want=$(jq '.blobs_mounted' <(jq '.images[0]' b.json))
[ "$mounts" -ge 2 ] && [ "$mounts" = "$want" ] || { cat b.log; fail "$mounts mounts answered 201 (report: $want)"; }
[ "$(digest_in "$P/sh/fixtures/shared-b" v1)" = "$(fx fixtures/shared-b .digest)" ] || fail "shared-b not pushed"
ok "a later run mounts the $mounts blobs shared-b shares with shared-a from its repository (201 in the registry's log)"

NS=scratch/push-names-$$
$PY "$TESTS_DIR/integration/lib/mkimage.py" "$LAB_PLAIN" "$NS/base:v1" "$NS-l1:300000" "$NS-l2:200000" > base.txt
for t in 1 2 3; do
  $PY "$TESTS_DIR/integration/lib/mkimage.py" "$LAB_PLAIN" "$NS/multi:$t" "$NS-l1:300000" "$NS-l2:200000" "$NS-own$t:1000" > /dev/null
done
$PY "$LAYOUT" "$LAB_PLAIN" tags/oci "$NS/base:v1" "$NS/multi:1" "$NS/multi:2" "$NS/multi:3" > /dev/null
n0=$(wc -l < "$LAB_LOG_PUSH_PLAIN")
expect_status 0 "$OCCYSTRAP" --insecure --progress none push tags "$LAB_PUSH_PLAIN/$P/tags"
sleep 1
tail -n +$((n0 + 1)) "$LAB_LOG_PUSH_PLAIN" > tags.log
for l in $(sed -n 2,3p base.txt | cut -d' ' -f2); do
  hex=${l#sha256:}
  puts=$(grep -c "\"PUT /v2/$P/tags/$NS/[a-z]*/blobs/uploads/[^ ]*digest=sha256%3A$hex " tags.log || true)
  into_multi=$(grep -c "\"\(PUT\|POST\) /v2/$P/tags/$NS/multi/blobs/uploads/[^ ]*sha256%3A$hex" tags.log || true)
  [ "$puts" -le 1 ] && [ "$into_multi" = 1 ] || { cat tags.log; fail "$l: $puts uploads, $into_multi requests putting it into multi (want 1)"; }
done
for t in 1 2 3; do
  [ -n "$(digest_in "$P/tags/$NS/multi" "$t")" ] || fail "multi:$t not pushed"
done
ok "three tags of one repository sharing two layers with another image: each layer put into each repository by one request"
finish
