#!/usr/bin/env bash
# mirror_power_cut.sh - what a power cut may leave of a mirror, and the run
# after it (store_dirsync.h).
#
# mirror makes the names of an image's files (config, marker, manifest
# blob, manifest file) durable once a batch, just before catalog.json lists
# them, so a power cut can take the name of a file whose image the catalog
# does not list yet. The test makes that state: a mirror killed at its crash
# point after the manifest file is written (SIGKILL: nothing listed), then
# the image's config removed as a lost name would be (its file, its
# marker, its exact-bytes blob). Then:
#   - verify exits 0: the unlisted image and its missing config are notes,
#     not damage (an image the catalog lists and lacks a file stays damage:
#     checked last); verify --repair does not list the incomplete image;
#   - a rerun exits 0, fetches the image again and lists it; verify finds
#     nothing to note; recreate-image gives a tarball check_tarball accepts.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/power-cut-$$-$RANDOM
$PY "$TESTS_DIR/lab/push_many.py" "$LAB_PLAIN" --prefix "$NS" --repos 1 --tags 3 --layers 1 \
  --layer-bytes 20000 --json pushed.json >/dev/null
jq -r '.references[]' pushed.json >list.txt
printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" >config.json
S=$WORK_DIR/store
mirror() { "$OCCYSTRAP" --config config.json --progress none -q mirror "$@"; }
# entries STORE: how many image:tag entries catalog.json lists (0 without one)
entries() { jq '[.[] | length] | add // 0' "$1/catalog.json" 2>/dev/null || echo 0; }

# 1. killed after the first manifest file, before any catalog entry
rc=0
OCCYSTRAP_TEST_CRASH_AT=manifest-written mirror list.txt "$S" 2>crash.err || rc=$?
[ "$rc" = 137 ] || fail "crash point manifest-written: exit status $rc, wanted 137 (SIGKILL)"
mf=$(cd "$S" && ls manifest-*.json 2>/dev/null | head -1)
[ -n "$mf" ] || fail "the killed run left no manifest file"
[ "$(entries "$S")" = 0 ] ||
  fail "the killed run listed something: $(cat "$S/catalog.json")"
cfg=$(jq -r '.[0].Config' "$S/$mf")
hex=${cfg%.json}
[ -f "$S/$cfg" ] || fail "$mf names $cfg, which the killed run did not write"

# 2. the names a power cut may take: the config, its marker, its blob
rm -f "$S/$cfg" "$S/.occystrap/blobs/$hex.json" "$S/oci/blobs/sha256/$hex"
rc=0
"$OCCYSTRAP" verify "$S" >verify1.out 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "verify after the cut: exit $rc, wanted 0: $(head -5 verify1.out)"
grep -q "$mf.*not listed in catalog.json" verify1.out || fail "verify does not note $mf as unlisted: $(cat verify1.out)"
grep -q "$mf.*its config $cfg is missing" verify1.out ||
  fail "verify does not note the missing config: $(cat verify1.out)"
# --repair lists only complete images: this one stays unlisted
"$OCCYSTRAP" verify --repair "$S" >repair.out 2>&1 || fail "verify --repair after the cut: $(head -5 repair.out)"
[ "$(entries "$S")" = 0 ] || fail "verify --repair listed an image without its config: $(cat "$S/catalog.json")"
ok "after a cut that took an unlisted image's config: verify exits 0 and notes both, --repair lists nothing"

# 3. the rerun fetches it again and lists every image
mirror list.txt "$S" 2>rerun.err || fail "rerun: $(tail -3 rerun.err)"
[ "$(entries "$S")" = 3 ] || fail "rerun: catalog.json lists $(jq -c . "$S/catalog.json")"
[ -f "$S/$cfg" ] && [ -f "$S/.occystrap/blobs/$hex.json" ] && [ -f "$S/oci/blobs/sha256/$hex" ] ||
  fail "rerun: the config $cfg, its marker or its blob is still missing"
"$OCCYSTRAP" verify "$S" >verify2.out 2>&1 || fail "verify after the rerun: $(head -5 verify2.out)"
! grep -q "not listed\|missing" verify2.out || fail "verify after the rerun still notes: $(cat verify2.out)"
ref=$(head -1 list.txt)
expect_status 0 "$OCCYSTRAP" recreate-image "$S" "${ref%:*}" "${ref##*:}" "$WORK_DIR/img.tar"
ok "the rerun fetched the lost config again, listed all 3 images, and verify is clean"

# 4. a listed image that lacks its config is damage, as before
rm -f "$S/$cfg" # $mf's config again, listed now
rc=0
"$OCCYSTRAP" verify "$S" >verify3.out 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "verify passes a listed image whose config is gone: $(cat verify3.out)"
ok "a listed image without its config still fails verify (exit $rc)"
finish
