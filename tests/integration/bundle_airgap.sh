#!/usr/bin/env bash
# bundle_airgap.sh - the air-gap flow with bundles (issue 15):
# - store A mirrors three images (one of our own, a multi-platform index, a
#   zstd image); a bundle of all of it is a tar whose manifest and
#   inventory jq reads, that skopeo reads as an oci-archive with the
#   registry's digests, and that imports into an empty store B: verify
#   passes, list matches A, recreate-image of each image is byte-identical
#   from A and B; a second import changes nothing (inodes and mtimes);
# - the tag moves in the registry to an image with one new small layer; A
#   mirrors again; a bundle made --since the first bundle, and one made
#   against B's inventory, hold exactly the new manifest, config and layer
#   (the tar within a few KB of their bytes); B imports one, a copy of B the
#   other, and `occystrap serve` on B answers the moved tag with the
#   registry's digest;
# - --zstd to standard output, imported from standard input; --dry-run says
#   the size the bundle then has, byte for byte.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/bundle_lib.sh"
R=scratch/bundle-$$
APP=$R/app
MP=fixtures/multiplatform
ZS=fixtures/zstd
NAME() { echo "$LAB_PLAIN/$1"; } # the store's name of a lab repository

$PY "$STORE_IMAGES" "$LAB_PLAIN" imgs.json --layer base=2000000 --layer l1=100000 \
  --layer l2=3000 "$APP:v1=base,l1" "$APP:next=base,l1,l2" || fail "could not push the images"
mirror_into A "$APP:v1" "$MP:v1" "$ZS:v1"

# --- a bundle of everything -------------------------------------------------------------
expect_status 0 "$OCCYSTRAP" --dry-run --json bundle A full.tar >dry.json
[ ! -e full.tar ] || fail "--dry-run wrote the bundle"
expect_status 0 "$OCCYSTRAP" --json-file full.json bundle A full.tar
[ "$(jq '.parts[0].bytes' dry.json)" = "$(stat -c %s full.tar)" ] ||
  fail "--dry-run said $(jq '.parts[0].bytes' dry.json) bytes, the bundle has $(stat -c %s full.tar)"
[ "$(tar -tf full.tar | awk 'NR <= 4' | tr '\n' ' ')" = "occystrap-bundle.json inventory.json oci-layout index.json " ] ||
  fail "the bundle does not start with its manifest, inventory, oci-layout and index.json"
tar -xOf full.tar occystrap-bundle.json >manifest.json
jq -e '.version == 1 and .mediaType == "application/vnd.occystrap.bundle.v1+json" and
  (.images | length) == 3 and .parts == 1 and .since == null and (.requires | length) == 0' \
  manifest.json >/dev/null || fail "the bundle manifest is not what it should be"
[ "$(jq '.files | length' manifest.json)" = "$(find A/oci/blobs/sha256 -type f | wc -l)" ] ||
  fail "the bundle does not hold every blob of A"
$PY "$BUNDLE_TOOL" check-id full.tar >/dev/null || fail "the manifest's id is not that of its content"
$PY "$BUNDLE_TOOL" verify full.tar >/dev/null || fail "a file does not hash to its digest"
# skopeo 1.9 reads OCI-typed entries of a layout only (not Docker schema 2 ones)
for r in "$MP:v1" "$ZS:v1"; do
  want=$(registry_digest "${r%:*}" "${r##*:}")
  got=$(skopeo inspect --raw "oci-archive:full.tar:$(NAME "$r")" | sha256sum | cut -d' ' -f1)
  [ "sha256:$got" = "$want" ] || fail "skopeo reads $r from the bundle as sha256:$got, not $want"
done
want=$(registry_digest "$APP" v1)
got=$(tar -xOf full.tar "blobs/sha256/${want#sha256:}" | sha256sum | cut -d' ' -f1)
[ "sha256:$got" = "$want" ] || fail "the bundle's manifest of $APP:v1 is not the registry's"
ok "a bundle of A: manifest, inventory and files as documented (jq, tar, Python), read by skopeo as an oci-archive with the registry's digests; --dry-run gave its size exactly"

# --- into an empty store ------------------------------------------------------------------
expect_status 0 "$OCCYSTRAP" --json-file imp.json import full.tar B
jq -e '.complete and .changed == 3 and .layers_unpacked > 0 and .missing == 0' imp.json >/dev/null ||
  fail "the import report: $(cat imp.json)"
"$OCCYSTRAP" -q verify B >/dev/null 2>verify.err || { cat verify.err; fail "verify B fails"; }
diff <("$OCCYSTRAP" list --json A | jq 'del(.store)') <("$OCCYSTRAP" list --json B | jq 'del(.store)') >&2 ||
  fail "list of B is not list of A"
for r in "$APP:v1" "$MP:v1" "$ZS:v1"; do
  "$OCCYSTRAP" -q recreate-image A "$(NAME "${r%:*}")" "${r##*:}" a.tar
  "$OCCYSTRAP" -q recreate-image B "$(NAME "${r%:*}")" "${r##*:}" b.tar
  cmp a.tar b.tar || fail "recreate-image of $r differs between A and B"
done
expect_status 0 "$OCCYSTRAP" -q expand B "$(NAME "$APP")" v1 rootfs
[ -f "rootfs/l1.bin" ] || fail "expand on B has no l1.bin"
ok "imported into an empty store: verify passes, list is A's, recreate-image byte-identical for all three, expand works"

snapshot() { (cd B && find . -path ./.tmp -prune -o -printf '%p %i %s %T@\n' | sort); }
snapshot >before
expect_status 0 "$OCCYSTRAP" --json import full.tar B >again.json
snapshot >after
diff before after >&2 || fail "a second import of the same bundle changed B"
jq -e '.complete and .changed == 0 and .received == 0' again.json >/dev/null || fail "the second import: $(cat again.json)"
ok "a second import changes nothing (every inode, size and mtime)"

"$OCCYSTRAP" inventory B >invB.json || fail "inventory B failed"
jq -e --argjson n "$(jq '.files | length' manifest.json)" \
  '.version == 1 and (.blobs | length) == $n and (.images | length) == 3' invB.json >/dev/null ||
  fail "B's inventory: $(head -c 400 invB.json)"
ok "B's inventory lists its $(jq '.blobs | length' invB.json) blobs and 3 images"

# --- a tag moves -----------------------------------------------------------------------------
move_tag "$APP" next v1
NEW=$(registry_digest "$APP" v1)
mirror_into A "$APP:v1" "$MP:v1" "$ZS:v1"
want=$(jq -r --arg r "$APP" '.fixtures[$r] | [.digest, .config.digest, .layers[2].digest] | sort | .[]' imgs.json | tr '\n' ' ')
wbytes=$(jq --arg r "$APP" '.fixtures[$r] | .size + .config.size + .layers[2].size' imgs.json)
[ "$(jq -r --arg r "$APP" '.fixtures[$r].digest' imgs.json)" = "$NEW" ] || fail "the tag did not move"
for since in full.tar invB.json; do
  out=delta-${since%%.*}.tar
  expect_status 0 "$OCCYSTRAP" --json-file "$out.json" bundle --since "$since" A "$out"
  got=$(tar -xOf "$out" occystrap-bundle.json | jq -r '.files[].digest' | sort | tr '\n' ' ')
  [ "$got" = "$want" ] || fail "the bundle --since $since holds $got, not the new manifest, config and layer ($want)"
  jq -e --arg r "$(NAME "$APP"):v1" '(.images | map(.ref)) == [$r] and .unchanged == 2' "$out.json" >/dev/null ||
    fail "the bundle --since $since brings $(jq -c '.images' "$out.json")"
  over=$(($(stat -c %s "$out") - wbytes))
  [ "$over" -le 16384 ] || fail "the bundle --since $since is $over bytes over its blobs' $wbytes"
  "$OCCYSTRAP" -q bundle --zstd --since "$since" A "$out.zst"
  echo "bundle --since $since: $(stat -c %s "$out") bytes for $wbytes bytes of blobs ($over of manifest, inventory and tar headers); with --zstd $(stat -c %s "$out.zst")"
done
cp -a B B2
expect_status 0 "$OCCYSTRAP" import delta-full.tar B
expect_status 0 "$OCCYSTRAP" import delta-invB.tar B2
for s in B B2; do
  "$OCCYSTRAP" -q verify "$s" >/dev/null 2>verify.err || { cat verify.err; fail "verify $s fails"; }
done
[ "$(serve_digest B "$APP" v1)" = "$NEW" ] || fail "serve on B does not answer $APP:v1 with $NEW"
jq -e --arg r "$(NAME "$APP"):v1" --arg d "$NEW" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest == $d' \
  B2/oci/index.json >/dev/null || fail "B2's index.json does not name $NEW"
"$OCCYSTRAP" -q recreate-image A "$(NAME "$APP")" v1 a.tar
"$OCCYSTRAP" -q recreate-image B "$(NAME "$APP")" v1 b.tar
cmp a.tar b.tar || fail "recreate-image of the moved tag differs between A and B"
ok "after the tag moved: a bundle --since the first bundle and one against B's inventory hold only the new manifest, config and layer; imported, serve answers the moved tag with the registry's digest $NEW"

# --- zstd, through a pipe ---------------------------------------------------------------------
set -o pipefail
"$OCCYSTRAP" -q bundle --zstd A - 2>zerr | "$OCCYSTRAP" -q import - C 2>>zerr || { cat zerr; fail "bundle --zstd A - | import - C"; }
"$OCCYSTRAP" -q verify C >/dev/null 2>verify.err || { cat verify.err; fail "verify C fails"; }
diff <("$OCCYSTRAP" list --json A | jq 'del(.store)') <("$OCCYSTRAP" list --json C | jq 'del(.store)') >&2 ||
  fail "list of C is not list of A"
"$OCCYSTRAP" -q bundle --zstd A z.tar.zst
zstd -dc z.tar.zst | tar -t >z.list || fail "zstd -dc | tar -t does not read the bundle"
grep -qx occystrap-bundle.json z.list || fail "zstd -dc | tar -t lists no manifest"
expect_status 2 "$OCCYSTRAP" --json bundle A -
expect_stderr "write the report with --json-file"
ok "bundle --zstd to standard output imports from standard input; zstd -dc | tar reads it"
finish
