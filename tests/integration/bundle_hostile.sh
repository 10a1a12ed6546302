#!/usr/bin/env bash
# bundle_hostile.sh - bundles that must not get in (issue 15). Each is
# imported into a copy of a store B that holds another image, and must give
# exit 1 and an error naming what is wrong, and leave B as it was: its
# verify passes and its listing (every file's SHA-256, every directory) is
# identical. Files that did verify before the damage was met wait in the
# stage, STORE/.occystrap/import/<id>/ (outside the store proper), for a
# clean copy to complete the import; where nothing was read (the refusal
# comes first) the stage is not even made, and the listing with it is
# identical too.
# - tar members with "..", an absolute path, a symlink, a hard link, a
#   member after the last one listed;
# - a blob whose bytes are another's (its manifest entry made to match), a
#   manifest that lists a blob under a name that is not its digest;
# - an oversize inventory and an oversize manifest (over 64 MiB);
# - a bundle cut in half, and one with one byte flipped in a layer; then
#   the clean bundle completes the import, taking what verified from the
#   stage;
# - a bundle made --since another one, into a store that never imported
#   that one (it lacks the blobs the bundle was made against), and into a
#   store that does not exist (which is not created).
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/bundle_lib.sh"
R=scratch/bundle-hostile-$$
APP=$R/app

$PY "$STORE_IMAGES" "$LAB_PLAIN" imgs.json --layer base=1000000 --layer l1=100000 \
  --layer l2=3000 "$APP:v1=base,l1" "$APP:next=base,l1,l2" || fail "could not push the images"
mirror_into A "$APP:v1" fixtures/zstd:v1
"$OCCYSTRAP" -q bundle A full.tar || fail "bundle A"
mirror_into B0 fixtures/multilayer:v1
store_listing B0 >b0.listing
store_listing B0 --with-stage >b0.stage.listing

# try NAME BUNDLE PATTERN [--stage]: import BUNDLE into a fresh copy of B0:
# exit 1, PATTERN on stderr, B unchanged (--stage: outside the stage; the
# stage holds files)
try() {
  local name=$1 bundle=$2 pattern=$3 stage=${4:-}
  rm -rf B
  cp -a B0 B
  expect_status 1 "$OCCYSTRAP" import "$bundle" B
  expect_stderr "$pattern"
  if [ "$stage" = --stage ]; then
    expect_unchanged B b0.listing
    [ -n "$(find B/.occystrap/import -type f -path '*/blobs/*' 2>/dev/null)" ] || fail "$name: nothing verified was kept"
  else
    expect_unchanged B b0.stage.listing --with-stage
  fi
  echo "$name: $(grep 'error:' "$WORK_DIR/last.err" | cut -c1-240)"
}

for kind in dotdot absolute symlink hardlink badname namedigest unlisted oversize-inventory oversize-manifest; do
  $PY "$BUNDLE_TOOL" forge "$kind" full.tar "$kind.tar" || fail "forge $kind"
done
try dotdot dotdot.tar "refused: a path with '..': 'blobs/sha256/../../../evil'"
try absolute absolute.tar "refused: an absolute path '/tmp/occy-evil-"
try symlink symlink.tar "refused: a symlink 'blobs/sha256/.*' -> '/etc/passwd'"
try hardlink hardlink.tar "refused: a hard link 'blobs/sha256/.*' -> 'occystrap-bundle.json'"
ok "a path with '..', an absolute path, a symlink, a hard link: refused naming the member, nothing written"
first=$(tar -tf full.tar | awk '/^blobs\// && !n++')
try badname badname.tar "$first: its .* bytes hash to sha256:.*, not sha256:${first#blobs/sha256/} (damaged)" --stage
try namedigest namedigest.tar "$first: a blob's name must be its digest"
try unlisted unlisted.tar "member 'blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000' after the last file its manifest lists" --stage
ok "a blob whose bytes are not its name, a manifest naming a blob by another digest, a member not listed: refused naming it"
try oversize-inventory oversize-inventory.tar "inventory.json is [0-9]* bytes, more than the 67108864 bytes it may have (oversize)"
try oversize-manifest oversize-manifest.tar "occystrap-bundle.json is [0-9]* bytes, more than the 67108864 bytes it may have (oversize)"
ok "an oversize inventory and an oversize manifest: refused from their size, before they are read"

# cut short; one byte flipped; then the clean bundle completes from the stage
head -c $(($(stat -c %s full.tar) / 2)) full.tar >cut.tar
try truncated cut.tar "truncated" --stage
base=$(jq -r --arg r "$APP" '.fixtures[$r].layers[0].digest' imgs.json)
$PY "$BUNDLE_TOOL" flip full.tar "blobs/sha256/${base#sha256:}" flipped.tar
try flipped flipped.tar "bundle part flipped.tar: blobs/sha256/${base#sha256:}: its .* bytes hash to sha256:.*, not $base (damaged)" --stage
expect_status 0 "$OCCYSTRAP" --json-file again.json import full.tar B
jq -e '.complete and .present > 0 and .received == 1' again.json >/dev/null ||
  fail "the clean bundle did not take the verified files from the stage: $(cat again.json)"
[ ! -e B/.occystrap/import ] || fail "the stage is still there after the import completed"
"$OCCYSTRAP" -q verify B >/dev/null 2>verify.err || { cat verify.err; fail "verify B fails"; }
ok "a bundle cut in half, one with a flipped byte: refused naming the part and the file; the clean copy then completes the import (only the damaged file read again)"

# made against blobs the store does not have
move_tag "$APP" next v1
mirror_into A "$APP:v1" fixtures/zstd:v1
"$OCCYSTRAP" -q bundle --since full.tar A delta.tar || fail "bundle --since"
try against delta.tar "bundle sha256:.* was made against an inventory (sha256:.*, created 20[0-9-]*T[0-9:]*Z, from bundle sha256:.*) that lists 2 blobs (.* bytes) B does not have: sha256:"
expect_status 1 "$OCCYSTRAP" import delta.tar nowhere
[ ! -e nowhere ] || fail "a refused import created its store"
ok "a bundle made against blobs the store lacks: refused naming them and the inventory; a missing store is not created"
finish
