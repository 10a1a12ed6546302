#!/usr/bin/env bash
# serve_rewritten.sh - a store with images in the 0.2.0 layout only (no
# exact bytes: fetch-to-extracted --use-unique-names, STORE/oci removed).
# Without --allow-rewritten they are not served, and serve says how many
# and why. With it, each is served as an OCI manifest of uncompressed
# layers (application/vnd.oci.image.layer.v1.tar, digests = the diff_ids,
# the config as stored), logged once with the rewritten and the original
# digest; skopeo copies it, verifying every blob. An image that also has
# exact bytes is served with the registry's digest, not rewritten.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"

STORE="$WORK_DIR/store"
for repo in fixtures/multilayer fixtures/whiteouts fixtures/zstd; do
  expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$repo" v1 "$STORE"
done
rm -rf "$STORE/oci"
ok "a 0.2.0-layout store of 3 images, no exact bytes"

start_serve strict "$STORE"
grep -q "3 images of $STORE have no exact bytes (0.2.0 layout only) and are not served; --allow-rewritten" "$SERVE_ERR" ||
  fail "no note about the images not served: $(cat "$SERVE_ERR")"
[ "$(curl -s "$SERVE_URL/v2/_catalog" | jq -c .repositories)" = "[]" ] || fail "served without --allow-rewritten"
s=$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/v2/fixtures/multilayer/manifests/v1")
[ "$s" = 404 ] || fail "a 0.2.0-only image answered $s without --allow-rewritten"
stop_serve
ok "without --allow-rewritten: nothing served, and serve says 3 images are not served and why"

start_serve rewritten "$STORE" --allow-rewritten
for repo in fixtures/multilayer fixtures/whiteouts fixtures/zstd; do
  orig=$(fixture_field "$repo" digest)
  line=$(grep "^occystrap: serve: $repo:v1 has no exact bytes" "$SERVE_ERR") ||
    fail "no rewritten line for $repo: $(cat "$SERVE_ERR")"
  new=$(sed -n 's/.*rewritten manifest \(sha256:[0-9a-f]*\) .*/\1/p' <<<"$line")
  grep -q "not the registry's $orig" <<<"$line" || fail "$repo: the line does not name the original digest: $line"
  [ -n "$new" ] && [ "$new" != "$orig" ] || fail "$repo: rewritten digest '$new'"
  d="$WORK_DIR/copy-${repo#fixtures/}"
  expect_status 0 skopeo copy -q --src-tls-verify=false "docker://$SERVE_ADDR/$repo:v1" "dir:$d"
  [ "sha256:$(sha256sum <"$d/manifest.json" | cut -d' ' -f1)" = "$new" ] || fail "$repo: skopeo got another manifest"
  [ "$(jq -r '[.layers[].mediaType] | unique | join(",")' "$d/manifest.json")" = application/vnd.oci.image.layer.v1.tar ] ||
    fail "$repo: layers are not uncompressed tar"
  want=$(jq -c --arg r "$repo" '[.fixtures[$r].layers[].diff_id]' "$LAB_FIXTURES")
  [ "$(jq -c '[.layers[].digest]' "$d/manifest.json")" = "$want" ] || fail "$repo: layer digests are not the diff_ids"
  [ "$(jq -r .config.digest "$d/manifest.json")" = "$(jq -r --arg r "$repo" '.fixtures[$r].config.digest' "$LAB_FIXTURES")" ] ||
    fail "$repo: the config is not the registry's"
done
[ "$(grep -c "has no exact bytes" "$SERVE_ERR")" = 3 ] || fail "rewritten images logged more than once"
stop_serve
ok "--allow-rewritten: 3 images served rewritten (uncompressed layers = diff_ids, the registry's config), logged once each with both digests; skopeo copies them verifying every blob"

# exact bytes for one of them: that one is served as the registry has it
build_store "$STORE" fixtures/multilayer:v1
start_serve mixed "$STORE" --allow-rewritten
got=$(curl -s -D - -o /dev/null "$SERVE_URL/v2/fixtures/multilayer/manifests/v1" | tr -d '\r' |
  sed -n 's/^Docker-Content-Digest: //Ip')
[ "$got" = "$(fixture_field fixtures/multilayer digest)" ] || fail "the image with exact bytes is served as $got"
[ "$(grep -c "has no exact bytes" "$SERVE_ERR")" = 2 ] || fail "wanted 2 rewritten images: $(cat "$SERVE_ERR")"
stop_serve
ok "an image with exact bytes is served with the registry's digest; only the other two are rewritten"
finish
