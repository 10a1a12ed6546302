#!/usr/bin/env bash
# serve_protocol.sh - `occystrap serve` speaks the pull side of the OCI
# distribution API over a store holding every lab fixture as exact bytes
# (built byte for byte from the lab registry, with platform tags and one
# referrer): manifests by tag and digest with the registry's Content-Type,
# Docker-Content-Digest, Content-Length and ETag; blobs whose bytes hash to
# their digest; Range (the exact slice, 206; 416 when unsatisfiable);
# If-None-Match (304); the spec's error codes for what is missing; 405
# UNSUPPORTED for every write; tags/list and _catalog with n, last and Link;
# the referrers API with artifactType filtering; one access-log line per
# request; exit 0 on SIGTERM.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"

STORE="$WORK_DIR/store"
build_store "$STORE" --platform-tags
ML_DIGEST=$(fixture_field fixtures/multilayer digest)
REF_DIGEST=$($PY "$SERVE_STORE_PY" referrer "$STORE" "$LAB_PLAIN" fixtures/multilayer:v1 \
  application/vnd.example.sig)
start_serve api "$STORE"
ok "serve started on $SERVE_URL"

# req METHOD PATH [CURL ARGS...]: status in $STATUS, headers in $H, body in $B
H="$WORK_DIR/headers"
B="$WORK_DIR/body"
req() {
  local method=$1 path=$2
  shift 2
  local m=(-X "$method") out=$B
  : >"$B" # curl leaves the file alone when there is no body
  if [ "$method" = HEAD ]; then # curl -I writes the headers as the body
    m=(-I)
    out=/dev/null
  fi
  STATUS=$(curl -s --path-as-is "${m[@]}" -D "$H" -o "$out" -w '%{http_code}' "$@" "$SERVE_URL$path")
}
header() { # NAME: its value in the last response
  { grep -i "^$1:" "$H" || true; } | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'
}
expect() { # WANT WHAT
  [ "$STATUS" = "$1" ] || {
    cat "$H" "$B" >&2
    fail "$2: status $STATUS, wanted $1"
  }
}
error_code() {
  jq -r '.errors[0].code' "$B"
}

req GET /v2/
expect 200 "/v2/"
[ "$(header Docker-Distribution-API-Version)" = registry/2.0 ] || fail "no API version header"
ok "GET /v2/ is 200 with Docker-Distribution-API-Version: registry/2.0"

n=0
for ref in $(fixture_refs); do
  repo=${ref%:*}
  tag=${ref##*:}
  digest=$(fixture_field "$repo" digest)
  mt=$(fixture_field "$repo" media_type)
  size=$(fixture_field "$repo" size)
  for by in "$tag" "$digest"; do
    req HEAD "/v2/$repo/manifests/$by"
    expect 200 "HEAD $repo manifest $by"
    [ "$(header Content-Type)" = "$mt" ] || fail "$repo: Content-Type $(header Content-Type), wanted $mt"
    [ "$(header Docker-Content-Digest)" = "$digest" ] || fail "$repo: Docker-Content-Digest $(header Docker-Content-Digest)"
    [ "$(header Content-Length)" = "$size" ] || fail "$repo: Content-Length $(header Content-Length), wanted $size"
    [ "$(header ETag)" = "\"$digest\"" ] || fail "$repo: ETag $(header ETag)"
    req GET "/v2/$repo/manifests/$by"
    expect 200 "GET $repo manifest $by"
    [ "sha256:$(sha256sum <"$B" | cut -d' ' -f1)" = "$digest" ] || fail "$repo: manifest bytes do not hash to $digest"
    [ "$(header Content-Type)" = "$mt" ] || fail "$repo: GET Content-Type $(header Content-Type)"
  done
  n=$((n + 1))
done
ok "every fixture's manifest ($n), by tag and by digest, HEAD and GET: the registry's bytes, Content-Type, Docker-Content-Digest, Content-Length and ETag"

LAYERS=$(jq -r '.fixtures["fixtures/multilayer"].layers[] | .digest + " " + (.size|tostring)' "$LAB_FIXTURES")
CONFIG=$(jq -r '.fixtures["fixtures/multilayer"].config.digest' "$LAB_FIXTURES")
while read -r digest size; do
  req HEAD "/v2/fixtures/multilayer/blobs/$digest"
  expect 200 "HEAD blob $digest"
  [ "$(header Content-Length)" = "$size" ] || fail "blob $digest: Content-Length $(header Content-Length), wanted $size"
  [ "$(header Docker-Content-Digest)" = "$digest" ] || fail "blob $digest: no Docker-Content-Digest"
  req GET "/v2/fixtures/multilayer/blobs/$digest"
  expect 200 "GET blob $digest"
  [ "sha256:$(sha256sum <"$B" | cut -d' ' -f1)" = "$digest" ] || fail "blob $digest: bytes do not match"
done <<<"$LAYERS
$CONFIG $(jq -r '.fixtures["fixtures/multilayer"].config.size' "$LAB_FIXTURES")"
ok "multilayer's config and layers: HEAD sizes and GET bytes match their digests"

# Range: the exact slice of the registry's blob
read -r L0 L0SIZE <<<"$(head -1 <<<"$LAYERS")"
curl -s "http://$LAB_PLAIN/v2/fixtures/multilayer/blobs/$L0" -o "$WORK_DIR/full"
slice() { $PY -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(d[int(sys.argv[2]):int(sys.argv[3])])' "$WORK_DIR/full" "$1" "$2"; }
req GET "/v2/fixtures/multilayer/blobs/$L0" -r 100-1099
expect 206 "Range 100-1099"
cmp -s "$B" <(slice 100 1100) || fail "Range 100-1099 is not the slice"
[ "$(header Content-Range)" = "bytes 100-1099/$L0SIZE" ] || fail "Content-Range $(header Content-Range)"
[ "$(header Content-Length)" = 1000 ] || fail "Range Content-Length $(header Content-Length)"
req GET "/v2/fixtures/multilayer/blobs/$L0" -H "Range: bytes=-77"
expect 206 "suffix Range"
cmp -s "$B" <(slice $((L0SIZE - 77)) "$L0SIZE") || fail "Range -77 is not the last 77 bytes"
req GET "/v2/fixtures/multilayer/blobs/$L0" -H "Range: bytes=$((L0SIZE - 10))-"
expect 206 "open Range"
cmp -s "$B" <(slice $((L0SIZE - 10)) "$L0SIZE") || fail "open Range is not the tail"
req GET "/v2/fixtures/multilayer/blobs/$L0" -H "Range: bytes=$L0SIZE-"
expect 416 "Range past the end"
[ "$(header Content-Range)" = "bytes */$L0SIZE" ] || fail "416 Content-Range $(header Content-Range)"
req GET "/v2/fixtures/multilayer/blobs/$L0" -H "Range: bytes=0-0,5-9"
expect 200 "several ranges (ignored)"
cmp -s "$B" "$WORK_DIR/full" || fail "several ranges: the whole blob was not sent"
req GET "/v2/fixtures/multilayer/manifests/v1" -r 0-9
expect 206 "Range of a manifest"
[ "$(wc -c <"$B")" = 10 ] || fail "manifest Range: $(wc -c <"$B") bytes"
ok "Range: exact slices (first-last, suffix, open), 416 with bytes */SIZE past the end, several ranges answered whole"

req GET "/v2/fixtures/multilayer/blobs/$L0" -H "If-None-Match: \"$L0\""
expect 304 "If-None-Match blob"
[ ! -s "$B" ] || fail "304 with a body"
req GET "/v2/fixtures/multilayer/manifests/v1" -H "If-None-Match: \"$ML_DIGEST\""
expect 304 "If-None-Match manifest"
req GET "/v2/fixtures/multilayer/manifests/v1" -H "If-None-Match: \"sha256:0000\""
expect 200 "If-None-Match of another etag"
ok "If-None-Match: 304 for the digest, 200 for another"

req HEAD /v2/fixtures/multilayer/manifests/nope
expect 404 "HEAD missing manifest"
req GET /v2/fixtures/multilayer/manifests/nope
expect 404 "GET missing manifest"
[ "$(error_code)" = MANIFEST_UNKNOWN ] || fail "missing manifest: $(cat "$B")"
req GET "/v2/fixtures/multilayer/manifests/sha256:$(printf '%064d' 0)"
expect 404 "missing manifest digest"
[ "$(error_code)" = MANIFEST_UNKNOWN ] || fail "missing manifest digest: $(cat "$B")"
req GET "/v2/fixtures/multilayer/blobs/sha256:$(printf '%064d' 0)"
expect 404 "missing blob"
[ "$(error_code)" = BLOB_UNKNOWN ] || fail "missing blob: $(cat "$B")"
ZL=$(jq -r '.fixtures["fixtures/zstd"].layers[0].digest' "$LAB_FIXTURES")
req GET "/v2/fixtures/multilayer/blobs/$ZL"
expect 404 "another repository's blob"
[ "$(error_code)" = BLOB_UNKNOWN ] || fail "another repository's blob: $(cat "$B")"
req GET /v2/nosuch/repo/manifests/v1
expect 404 "unknown repository"
[ "$(error_code)" = NAME_UNKNOWN ] || fail "unknown repository: $(cat "$B")"
req GET /v2/fixtures/multilayer/blobs/sha256:nothex
expect 400 "bad digest"
[ "$(error_code)" = DIGEST_INVALID ] || fail "bad digest: $(cat "$B")"
ok "HEAD of a missing manifest is 404; MANIFEST_UNKNOWN, BLOB_UNKNOWN (also for another repository's blob), NAME_UNKNOWN, DIGEST_INVALID"

for m in PUT POST PATCH DELETE; do
  for p in /v2/fixtures/multilayer/manifests/v1 "/v2/fixtures/multilayer/blobs/$L0" \
    /v2/fixtures/multilayer/blobs/uploads/ /v2/x/blobs/uploads/abc; do
    req "$m" "$p" -H 'Content-Type: application/octet-stream' --data-binary 'x'
    expect 405 "$m $p"
    [ "$(error_code)" = UNSUPPORTED ] || fail "$m $p: $(cat "$B")"
    [ "$(header Allow)" = "GET, HEAD" ] || fail "$m $p: Allow $(header Allow)"
  done
done
ok "PUT, POST, PATCH and DELETE: 405 UNSUPPORTED with Allow: GET, HEAD"

req GET /v2/fixtures/multiplatform/tags/list
expect 200 tags
[ "$(jq -c .tags "$B")" = '["v1","v1+linux-amd64","v1+linux-arm-v7","v1+linux-arm64-v8"]' ] || fail "tags: $(cat "$B")"
[ "$(jq -r .name "$B")" = fixtures/multiplatform ] || fail "tags name: $(cat "$B")"
req GET "/v2/fixtures/multiplatform/tags/list?n=2"
[ "$(jq -c .tags "$B")" = '["v1","v1+linux-amd64"]' ] || fail "tags n=2: $(cat "$B")"
link=$(header Link)
[ "$link" = '</v2/fixtures/multiplatform/tags/list?n=2&last=v1%2Blinux-amd64>; rel="next"' ] || fail "Link: $link"
next=$(sed 's/^<\([^>]*\)>.*/\1/' <<<"$link")
req GET "$next"
[ "$(jq -c .tags "$B")" = '["v1+linux-arm-v7","v1+linux-arm64-v8"]' ] || fail "tags page 2: $(cat "$B")"
[ -z "$(header Link)" ] || fail "a Link after the last page"
req GET "/v2/fixtures/multiplatform/tags/list?n=0"
[ "$(jq -c .tags "$B")" = '[]' ] || fail "tags n=0: $(cat "$B")"
req GET "/v2/fixtures/multiplatform/tags/list?n=abc"
expect 400 "tags n=abc"
ok "tags/list: sorted, n and last, Link with last encoded, n=0 and a bad n"

req GET /v2/_catalog
all=$(jq -c .repositories "$B")
want=$(fixture_refs | sed 's/:.*//' | jq -R . | jq -cs 'sort')
[ "$all" = "$want" ] || fail "catalog $all, wanted $want"
pages="[]"
next="/v2/_catalog?n=5"
while [ -n "$next" ]; do
  req GET "$next"
  pages=$(jq -c --argjson p "$pages" '$p + .repositories' "$B")
  next=$(header Link | sed -n 's/^<\([^>]*\)>.*/\1/p')
done
[ "$pages" = "$all" ] || fail "catalog pages $pages"
ok "_catalog lists every repository; pages of 5 followed by Link give the same list"

req GET "/v2/fixtures/multilayer/referrers/$ML_DIGEST"
expect 200 referrers
[ "$(header Content-Type)" = application/vnd.oci.image.index.v1+json ] || fail "referrers type $(header Content-Type)"
[ "$(jq -r '.manifests | length' "$B")" = 1 ] || fail "referrers: $(cat "$B")"
[ "$(jq -r '.manifests[0].digest' "$B")" = "$REF_DIGEST" ] || fail "referrer digest: $(cat "$B")"
[ "$(jq -r '.manifests[0].artifactType' "$B")" = application/vnd.example.sig ] || fail "referrer artifactType: $(cat "$B")"
req GET "/v2/fixtures/multilayer/referrers/$ML_DIGEST?artifactType=application%2Fvnd.example.sig"
[ "$(jq -r '.manifests | length' "$B")" = 1 ] || fail "filtered referrers: $(cat "$B")"
[ "$(header OCI-Filters-Applied)" = artifactType ] || fail "no OCI-Filters-Applied"
req GET "/v2/fixtures/multilayer/referrers/$ML_DIGEST?artifactType=application/other"
[ "$(jq -r '.manifests | length' "$B")" = 0 ] || fail "referrers of another type: $(cat "$B")"
req GET "/v2/fixtures/zstd/referrers/$(fixture_field fixtures/zstd digest)"
expect 200 "no referrers"
[ "$(jq -c . "$B")" = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}' ] || fail "empty referrers: $(cat "$B")"
req GET /v2/fixtures/multilayer/referrers/sha256:xyz
expect 400 "referrers of a bad digest"
req GET "/v2/fixtures/multilayer/manifests/$REF_DIGEST"
expect 200 "the referrer itself"
ok "referrers: the artifact whose subject is multilayer (with artifactType), filtering by artifactType, an empty index when none"

grep -q "\"HEAD /v2/fixtures/multilayer/manifests/nope HTTP/1.1\" 404 " "$SERVE_OUT" || fail "no access-log line for the HEAD"
lines=$(wc -l <"$SERVE_OUT")
[ "$lines" -gt 100 ] || fail "only $lines access-log lines"
ok "an access-log line per request on stdout ($lines)"

stop_serve
grep -q "serve: stopped after" "$SERVE_ERR" || fail "no stop line"
ok "SIGTERM: stopped, exit 0"
finish
