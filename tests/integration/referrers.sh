#!/usr/bin/env bash
# referrers.sh - signatures, SBOMs and attestations travel with their images
# (issue 19), on the lab's signed image (fixtures.json "signed": a cosign
# signature tag, an SBOM referrer listed by the fallback tag on distribution
# 2.8, which has no referrers API, and a signature of the SBOM):
#  1. mirror without --referrers asks for nothing of them (the requests, in a
#     pass-through proxy's log: the registry's log is shared under ctest -j2);
#  2. mirror --referrers stores every artifact with its exact bytes and
#     index.json records them; list shows them, verify passes; a rerun asks
#     one HEAD per tag-schema tag that exists, nothing else;
#  3. push into an empty registry: the target has the signature tag, the
#     fallback indexes and every artifact manifest with the source's digests
#     (skopeo inspect --raw | sha256sum), the SBOM blob verifies, and the
#     signatures verify against the lab key (cosign_check.py, what cosign
#     verify --key checks; and fails with another key); a target that
#     answers OCI-Subject (the fault proxy adds it) gets no fallback tag;
#  4. serve answers /v2/<name>/referrers/<digest> with exactly the stored
#     referrers, filtered by artifactType; mirror --referrers from serve takes
#     them through the referrers API;
#  5. a referrer whose blob is corrupt (fault proxy) fails the image's
#     referrers naming the artifact while the image mirrors; with
#     --referrers=required the entry fails;
#  6. --referrer-type and the config's "referrers" per repository;
#  7. gc drops the referrers of a removed image and their blobs.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"

S() { jq -r ".signed.$1" "$LAB_FIXTURES"; }
REPO=$(S repo)
IMG=$(S digest)
SIG_TAG=$(S signature.tag)
SIG=$(S signature.digest)
FB_TAG=$(S fallback.tag)
FB=$(S fallback.digest)
SBOM=$(S sbom.digest)
SBOM_BLOB=$(S sbom.blob_digest)
SSIG=$(S sbom_signature.digest)
SFB_TAG=$(S sbom_fallback.tag)
SFB=$(S sbom_fallback.digest)
KEY=$(S public_key_file)
[ -n "$IMG" ] && [ "$IMG" != null ] || fail "fixtures.json has no signed image"
printf '{"default": [{"type": "insecureAcceptAnything"}]}\n' >policy.json
O=("$OCCYSTRAP" --insecure --progress none)

# requests the proxy saw since line $1 of its log: "METHOD PATH"
since() { tail -n +$(($1 + 1)) "$PROXY_LOG" | grep -o '^[A-Z]* /v2/[^ ]*' || true; }
# the index.json keys of a store: ref names, or "@DIGEST" for a referrer
keys() { jq -r '.manifests[] | .annotations["org.opencontainers.image.ref.name"] // ("@" + .digest)' "$1/oci/index.json"; }

start_proxy pass
SRC="$PROXY/$REPO"
echo "$SRC:v1" >list.txt

# 1. without --referrers nothing of them is asked for
before=$(wc -l <"$PROXY_LOG")
expect_status 0 "${O[@]}" mirror list.txt plain
since "$before" >plain.log
if grep -E 'referrers|tags/list|sha256-|'"$SBOM|$SSIG|$SIG|$SBOM_BLOB" plain.log; then
  fail "mirror without --referrers asked for referrers or tags"
fi
[ "$(keys plain | wc -l)" = 1 ] || fail "index.json of a mirror without --referrers: $(keys plain)"
ok "without --referrers: $(wc -l <plain.log) requests, none for the referrers API, tags or an artifact"

# 2. mirror --referrers: every artifact in the store
before=$(wc -l <"$PROXY_LOG")
expect_status 0 "${O[@]}" --referrers --json-file report.json mirror list.txt store
since "$before" >first.log
NAME="$SRC"
want=$(printf '%s\n' "$NAME:v1" "$NAME:$SIG_TAG" "$NAME:$FB_TAG" "$NAME:$SFB_TAG" "@$SBOM" "@$SSIG" | sort)
[ "$(keys store | sort)" = "$want" ] || fail "index.json keys: $(keys store | tr '\n' ' ')"
for d in "$SIG" "$FB" "$SBOM" "$SSIG" "$SFB" "$SBOM_BLOB"; do
  [ "$(sha256sum <"store/oci/blobs/sha256/${d#sha256:}" | cut -d' ' -f1)" = "${d#sha256:}" ] ||
    fail "blob $d is not in the store with its bytes"
done
grep -q "GET /v2/$REPO/referrers/$IMG" first.log || fail "the referrers API was not asked"
grep -q "GET /v2/$REPO/tags/list" first.log || fail "the tag list was not read"
[ "$(jq '.entries[0].referrers_fetched' report.json)" = 3 ] || fail "report: $(jq -c '.entries[0]' report.json)"
"$OCCYSTRAP" list --json store >list.json
got=$(jq -r '.images[0].referrers[] | "\(.depth) \(.digest) \(.tag // "-")"' list.json | sort)
wantl=$(printf '%s\n' "1 $SIG $SIG_TAG" "1 $FB $FB_TAG" "1 $SBOM -" "2 $SFB $SFB_TAG" "2 $SSIG -" | sort)
[ "$got" = "$wantl" ] || fail "list --json referrers: $got"
[ "$(jq -r '.images[0].referrers[] | select(.digest == "'"$SBOM"'") | .artifact_type' list.json)" = \
  application/spdx+json ] || fail "the SBOM's artifact type"
"$OCCYSTRAP" list store >list.txt.out
grep -q "referrer application/spdx+json  $SBOM" list.txt.out || { cat list.txt.out; fail "list's table"; }
expect_status 0 "$OCCYSTRAP" verify store
ok "mirror --referrers: the signature tag, the SBOM, its signature and both fallback indexes in STORE/oci with their digests; list shows them by depth; verify passes"

before=$(wc -l <"$PROXY_LOG")
expect_status 0 "${O[@]}" --referrers --json-file rerun.json mirror list.txt store
since "$before" | sort >rerun.log
wantr=$(printf '%s\n' "HEAD /v2/$REPO/manifests/v1" "GET /v2/$REPO/referrers/$IMG" \
  "GET /v2/$REPO/tags/list" "HEAD /v2/$REPO/manifests/$SIG_TAG" \
  "HEAD /v2/$REPO/manifests/$FB_TAG" "HEAD /v2/$REPO/manifests/$SFB_TAG" | sort)
[ "$(cat rerun.log)" = "$wantr" ] || { cat rerun.log; fail "the rerun's requests"; }
[ "$(jq -r '.entries[0] | "\(.status) \(.referrers_fetched) \(.referrers_known)"' rerun.json)" = "up-to-date 0 5" ] ||
  fail "rerun report: $(jq -c '.entries[0]' rerun.json)"
ok "a rerun: the registry's one probe, one tags/list, one HEAD per tag-schema tag that exists; nothing fetched"

# 2b. a bundle carries them: imported into an empty store, index.json is
# the same (every referrer keyed IMAGE@DIGEST), verify passes, list agrees.
expect_status 0 "$OCCYSTRAP" -q bundle store referrers.bundle
expect_status 0 "$OCCYSTRAP" -q import referrers.bundle imported
[ "$(jq -S . imported/oci/index.json)" = "$(jq -S . store/oci/index.json)" ] ||
  fail "the imported index.json differs: $(keys imported | tr '\n' ' ')"
expect_status 0 "$OCCYSTRAP" verify imported
"$OCCYSTRAP" list --json imported >ilist.json
[ "$(jq -S .images ilist.json)" = "$(jq -S .images list.json)" ] || fail "list of the imported store differs"
ok "bundle and import carry the referrers: the same index.json, verify passes, list agrees"

# 3. push into the empty push registry
PREFIX="referrers-$$"
expect_status 0 "$OCCYSTRAP" --insecure --progress none --json-file push.json push store "$LAB_PUSH_PLAIN/$PREFIX"
T="$LAB_PUSH_PLAIN/$PREFIX/$REPO"
raw() { skopeo --policy policy.json inspect --raw --tls-verify=false "docker://$1" | sha256sum | cut -d' ' -f1; }
for pair in "v1 $IMG" "$SIG_TAG $SIG" "$FB_TAG $FB" "$SFB_TAG $SFB"; do
  set -- $pair
  [ "sha256:$(raw "$T:$1")" = "$2" ] || fail "pushed $1: not $2"
  [ "sha256:$(raw "$LAB_PLAIN/$REPO:$1")" = "$2" ] || fail "source $1: not $2"
done
for d in "$SBOM" "$SSIG"; do
  [ "sha256:$(raw "$T@$d")" = "$d" ] || fail "pushed artifact $d"
done
[ "sha256:$(curl -sf "http://$LAB_PUSH_PLAIN/v2/$PREFIX/$REPO/blobs/$SBOM_BLOB" | sha256sum | cut -d' ' -f1)" = "$SBOM_BLOB" ] ||
  fail "the SBOM blob in the target"
$PY "$TESTS_DIR/lab/cosign_check.py" --insecure "$LAB_PUSH_PLAIN" "$PREFIX/$REPO" "$IMG" "$KEY" \
  --referrer "$SBOM" >cosign.out || { cat cosign.out; fail "the signatures in the target do not verify"; }
[ "$(grep -c '^verified' cosign.out)" = 2 ] || fail "cosign_check: $(cat cosign.out)"
$PY -c 'import sys; sys.path.insert(0, sys.argv[1]); import signing
open("other.pub", "w").write(signing.public_pem(signing.lab_key(b"another key")))' "$TESTS_DIR/lab"
if $PY "$TESTS_DIR/lab/cosign_check.py" --insecure "$LAB_PUSH_PLAIN" "$PREFIX/$REPO" "$IMG" other.pub \
  >/dev/null 2>&1; then fail "the signatures verify against another key"; fi
ok "push: the target has v1, the .sig tag, both fallback indexes and both artifacts with the source's digests; the SBOM blob verifies; the signatures verify with the lab key (not with another)"

before=$(wc -l <"$LAB_LOG_PUSH_PLAIN")
expect_status 0 "$OCCYSTRAP" --insecure --progress none --json-file push2.json push store "$LAB_PUSH_PLAIN/$PREFIX"
[ "$(jq '.totals.pushed' push2.json)" = 0 ] || fail "a second push put something: $(jq -c .totals push2.json)"
ok "a second push: every image, referrer and tag up to date"

# a target that keeps referrers itself answers OCI-Subject (distribution 2.8
# does not: the fault proxy adds it): no fallback tag is written there
PROXY_UPSTREAM=$LAB_PUSH_PLAIN start_proxy subject '/manifests/|ocisubject|1000'
expect_status 0 "$OCCYSTRAP" --insecure --progress none --json-file push3.json push store "$PROXY/$PREFIX-api"
tags=$(curl -sf "http://$LAB_PUSH_PLAIN/v2/$PREFIX-api/$REPO/tags/list" | jq -r '.tags | sort | join(" ")')
[ "$tags" = "$SIG_TAG v1" ] || fail "pushed to a target with OCI-Subject: tags $tags"
grep -q "answered OCI-Subject: $IMG" "$PROXY_LOG" || fail "the proxy did not answer OCI-Subject"
jq -r '.images[] | select(.tag == "'"$FB_TAG"'") | .note' push3.json | grep "keeps referrers itself" >/dev/null ||
  fail "push report: $(jq -c '.images' push3.json)"
[ "sha256:$(raw "$LAB_PUSH_PLAIN/$PREFIX-api/$REPO@$SBOM")" = "$SBOM" ] || fail "the SBOM in the OCI-Subject target"
ok "a target that answers OCI-Subject gets the referrers and the .sig tag, and no fallback tag"

# 4. serve: the referrers API from the store
start_serve refs store
SR="signed/app"
refs_of() { curl -sf "$SERVE_URL/v2/$SR/referrers/$1${2:+?artifactType=$2}" | jq -r '[.manifests[].digest] | sort | join(" ")'; }
[ "$(refs_of "$IMG")" = "$SBOM" ] || fail "serve: referrers of the image: $(refs_of "$IMG")"
[ "$(refs_of "$SBOM")" = "$SSIG" ] || fail "serve: referrers of the SBOM: $(refs_of "$SBOM")"
[ "$(refs_of "$IMG" application%2Fspdx%2Bjson)" = "$SBOM" ] || fail "serve: artifactType spdx"
[ "$(refs_of "$IMG" application%2Fvnd.example)" = "" ] || fail "serve: artifactType filter"
curl -si "$SERVE_URL/v2/$SR/referrers/$IMG?artifactType=application%2Fspdx%2Bjson" |
  grep -qi '^OCI-Filters-Applied: artifactType' || fail "serve: no OCI-Filters-Applied"
[ "$(curl -sf "$SERVE_URL/v2/$SR/referrers/$IMG" | jq -r '.manifests[0].artifactType')" = application/spdx+json ] ||
  fail "serve: the listed artifactType"
[ "sha256:$(raw "$SERVE_ADDR/$SR:$SIG_TAG")" = "$SIG" ] || fail "serve: the signature tag"
ok "serve lists exactly the stored referrers per subject, filters by artifactType (OCI-Filters-Applied), serves the tag-schema tags"

echo "$SERVE_ADDR/$SR:v1" >list-serve.txt
expect_status 0 "${O[@]}" --referrers mirror list-serve.txt from-serve
grep -q "GET /v2/$SR/referrers/$IMG" "$SERVE_OUT" || fail "mirror from serve did not use the referrers API"
want=$(printf '%s\n' "$SERVE_ADDR/$SR:v1" "$SERVE_ADDR/$SR:$SIG_TAG" "@$SBOM" "@$SSIG" | sort)
[ "$(keys from-serve | sort)" = "$want" ] || fail "mirrored from serve: $(keys from-serve | tr '\n' ' ')"
ok "mirror --referrers from serve takes the referrers through the API (no fallback tag) and cosign's tag"

# 5. a corrupt referrer blob: the image mirrors, its referrers fail naming the artifact
start_proxy corrupt "/v2/$REPO/blobs/$SBOM_BLOB|corrupt=10|100"
echo "$PROXY/$REPO:v1" >list-c.txt
expect_status 0 "${O[@]}" --referrers --json-file corrupt.json mirror list-c.txt corrupt
expect_stderr "$SBOM"
expect_stderr "digest mismatch"
[ "$(jq -r '.entries[0].status' corrupt.json)" = fetched ] || fail "the image did not mirror"
jq -r '.entries[0].referrers_error' corrupt.json | grep "artifact $SBOM (application/spdx+json)" >/dev/null ||
  fail "report: $(jq -c '.entries[0]' corrupt.json)"
keys corrupt | grep "@$SBOM" >/dev/null && fail "the corrupt SBOM is in index.json"
keys corrupt | grep ":$FB_TAG$" >/dev/null && fail "the fallback index listing the corrupt SBOM is in index.json"
keys corrupt | grep ":v1$" >/dev/null || fail "the image is not in index.json"
expect_status 0 "$OCCYSTRAP" verify corrupt
expect_status 1 "${O[@]}" --referrers=required mirror list-c.txt required
expect_stderr "referrers"
expect_stderr "$SBOM"
ok "a corrupt SBOM blob: the image mirrors and the error names the artifact; with --referrers=required the entry fails"

# 6. --referrer-type, and "referrers" per repository in the config
expect_status 0 "${O[@]}" --referrers --referrer-type application/spdx+json mirror list.txt typed
want=$(printf '%s\n' "$NAME:v1" "$NAME:$FB_TAG" "@$SBOM" | sort)
[ "$(keys typed | sort)" = "$want" ] || fail "--referrer-type: $(keys typed | tr '\n' ' ')"
printf '{"repositories": {"%s": {"referrers": true}}}\n' "$SRC" >cfg.json
expect_status 0 "${O[@]}" --config cfg.json mirror list.txt configured
[ "$(keys configured | wc -l)" = 6 ] || fail "config referrers: $(keys configured | tr '\n' ' ')"
ok "--referrer-type keeps only that type; \"referrers\": true per repository in the config"

# 7. gc: the referrers of a removed image go, with their blobs
jq '.manifests |= map(select(.annotations["org.opencontainers.image.ref.name"] != "'"$NAME:v1"'"))' \
  store/oci/index.json >index.tmp && mv index.tmp store/oci/index.json
"$OCCYSTRAP" verify store >verify.out 2>&1 || true
grep -q "no image $NAME of the store reaches" verify.out || { cat verify.out; fail "verify: no orphan note"; }
expect_status 0 "$OCCYSTRAP" gc store
[ "$(keys store | wc -l)" = 0 ] || fail "gc kept: $(keys store | tr '\n' ' ')"
for d in "$SIG" "$SBOM" "$SSIG" "$SBOM_BLOB"; do
  [ ! -e "store/oci/blobs/sha256/${d#sha256:}" ] || fail "gc kept blob $d"
done
expect_status 0 "$OCCYSTRAP" verify store
expect_status 0 "$OCCYSTRAP" gc typed
[ "$(keys typed | wc -l)" = 3 ] || fail "gc dropped a live referrer"
ok "gc drops the referrers of a removed image and their blobs, keeps those of a kept image"
finish
