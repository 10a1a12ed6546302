#!/usr/bin/env bash
# store_shared.sh - three images sharing two large layers fetched into one
# store with fetch-to-extracted --use-unique-names: each shared layer is
# requested from the registry exactly once (GETs counted in the access log),
# a rerun requests no layer at all, catalog.json lists the three images,
# list/verify agree; recreate-image of each is accepted by check_tarball.py
# (and skopeo) and has the same members, byte for byte, as fetch-to-tarfile
# of the same image; export writes all three into one tarball with each
# shared layer once, which skopeo reads for every image; verify finds a
# flipped byte; gc frees exactly the blobs of an image dropped from the
# catalog.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/store_lib.sh"

IMAGES="$WORK_DIR/images.json"
push_images "$IMAGES" --layer base1=3000000 --layer base2=2000000 \
  --layer own-a=50000 --layer own-b=60000 --layer own-c=70000 \
  "$NS/a:v1=base1,base2,own-a" "$NS/b:v1=base1,base2,own-b" "$NS/c:v1=base1,base2,own-c"
STORE="$WORK_DIR/store"
base1=$(layer_digest "$IMAGES" "$NS/a" base1)
base2=$(layer_digest "$IMAGES" "$NS/a" base2)

for x in a b c; do
  expect_status 0 "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$NS/$x" v1 "$STORE"
done
for d in "$base1" "$base2"; do
  n=$(count_gets "$d")
  [ "$n" = 1 ] || fail "shared layer $d was requested $n times, wanted 1"
done
for x in a b c; do
  d=$(layer_digest "$IMAGES" "$NS/$x" "own-$x")
  n=$(count_gets "$d")
  [ "$n" = 1 ] || fail "layer own-$x was requested $n times, wanted 1"
done
ok "3 images, 2 shared layers: each shared layer fetched once"

want=$(for x in a b c; do echo "$NS/$x:v1=manifest-${NS//\//_}_$x-v1.json"; done)
[ "$(catalog_entries "$STORE")" = "$want" ] || { catalog_entries "$STORE"; fail "catalog.json does not list the three images"; }
for x in a b c; do
  $PY -c 'import json,sys; m = json.load(open(sys.argv[1])); assert m[0]["ImageName"] == sys.argv[2], m; assert m[0]["Occystrap"]["manifest_digest"] == sys.argv[3], m' \
    "$STORE/manifest-${NS//\//_}_$x-v1.json" "$NS/$x" "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["fixtures"][sys.argv[2]]["digest"])' "$IMAGES" "$NS/$x")" ||
    fail "manifest file of $x lacks ImageName or our keys"
done
tmp_is_empty "$STORE" || fail "scratch left in $STORE/.tmp"
ok "catalog.json lists the three images; manifest files carry ImageName and the manifest digest"

# A rerun fetches no layer: they are all known-good in the store.
before1=$(count_gets "$base1")
expect_status 0 "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$NS/b" v1 "$STORE"
expect_stderr "3 layers were already there"
[ "$(count_gets "$base1")" = "$before1" ] || fail "a rerun fetched a layer again"
ok "rerun of b: no layer requested again"

"$OCCYSTRAP" list "$STORE" >list.txt || fail "list failed"
grep -q "3 images, 5 distinct layers" list.txt || { cat list.txt; fail "list does not show 3 images and 5 layers"; }
"$OCCYSTRAP" list --json "$STORE" >list.json || fail "list --json failed"
$PY -c 'import json,sys; d = json.load(open(sys.argv[1])); assert len(d["images"]) == 3 and d["distinct_layers"] == 5 and d["bytes_without_sharing"] > d["layer_bytes"] > 5000000, d' list.json ||
  fail "list --json is wrong"
expect_status 0 "$OCCYSTRAP" verify "$STORE"
expect_stderr "all good"
ok "list (table and --json) and verify"

for x in a b c; do
  expect_status 0 "$OCCYSTRAP" recreate-image "$STORE" "$NS/$x" v1 "r-$x.tar"
  $PY "$CHECK_TARBALL" "r-$x.tar" "$IMAGES" "$NS/$x" "" "$LAB_PLAIN/$NS/$x:v1" >/dev/null || fail "recreated $x rejected"
  expect_status 0 "$OCCYSTRAP" --insecure fetch-to-tarfile "$LAB_PLAIN" "$NS/$x" v1 "f-$x.tar"
  same_members "r-$x.tar" "f-$x.tar" || fail "recreate-image and fetch-to-tarfile differ for $x"
  cmp -s "r-$x.tar" "f-$x.tar" || fail "recreate-image and fetch-to-tarfile tarballs of $x are not identical files"
done
ok "recreate-image of each: accepted by skopeo, identical to fetch-to-tarfile's tarball"

expect_status 0 "$OCCYSTRAP" export "$STORE" all.tar "$NS/a:v1" "$NS/b:v1" "$NS/c:v1"
for x in a b c; do
  rm -rf "oci-$x"
  skopeo copy -q "docker-archive:$WORK_DIR/all.tar:$LAB_PLAIN/$NS/$x:v1" "oci:$WORK_DIR/oci-$x" ||
    fail "skopeo refused image $x of the multi-image tarball"
done
$PY - all.tar "${base1#sha256:}" "${base2#sha256:}" <<'EOF' || fail "multi-image tarball is wrong"
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as tf:
    names = tf.getnames()
    manifest = json.load(tf.extractfile("manifest.json"))
assert names[-1] == "manifest.json", names
assert len(manifest) == 3, manifest
for hex in sys.argv[2:]:
    assert names.count(hex + "/layer.tar") == 1, (hex, names)
    assert all(hex + "/layer.tar" in m["Layers"] for m in manifest)
assert len([n for n in names if n.endswith("/layer.tar")]) == 5, names
EOF
ok "export of three images: skopeo reads each, each shared layer stored once"

# verify finds a flipped byte and names the file
own_a=$(layer_digest "$IMAGES" "$NS/a" own-a)
victim="$STORE/${own_a#sha256:}/layer.tar"
cp "$victim" victim.bak
printf 'X' | dd of="$victim" bs=1 seek=600 conv=notrunc status=none
expect_status 1 "$OCCYSTRAP" verify "$STORE" >verify.txt
expect_stderr "1 damaged file"
grep -q "DAMAGED ${own_a#sha256:}/layer.tar: hashes to" verify.txt || { cat verify.txt; fail "verify does not name the damaged layer"; }
cp victim.bak "$victim"
expect_status 0 "$OCCYSTRAP" verify "$STORE"
ok "verify reports a damaged layer.tar (exit 1) and passes once it is restored"

# gc: drop c from the catalog (and its manifest file): its own layer and
# config go, the shared layers stay
$PY -c 'import json,sys; p = sys.argv[1] + "/catalog.json"; c = json.load(open(p)); del c[sys.argv[2]]; json.dump(c, open(p, "w"), indent=4, sort_keys=True)' "$STORE" "$NS/c"
rm "$STORE/manifest-${NS//\//_}_c-v1.json"
own_c=$(layer_digest "$IMAGES" "$NS/c" own-c)
cfg_c=$(config_digest "$IMAGES" "$NS/c")
before=$(snapshot "$STORE")
"$OCCYSTRAP" gc --dry-run "$STORE" >gc-dry.txt 2>gc-dry.err || fail "gc --dry-run failed"
[ "$(snapshot "$STORE")" = "$before" ] || fail "gc --dry-run changed the store"
if ! grep -q "would remove ${own_c#sha256:}" gc-dry.txt || ! grep -q "would remove ${cfg_c#sha256:}.json" gc-dry.txt; then
  cat gc-dry.txt
  fail "gc --dry-run does not list c's blobs"
fi
"$OCCYSTRAP" gc "$STORE" >gc.txt 2>gc.err || fail "gc failed"
grep -q "freed .* (1 layers, 1 configs, 2 markers)" gc.err || { cat gc.err; fail "gc did not free c's layer and config"; }
if [ -e "$STORE/${own_c#sha256:}" ] || [ -e "$STORE/${cfg_c#sha256:}.json" ]; then fail "c's blobs are still there"; fi
[ -e "$STORE/${base1#sha256:}/layer.tar" ] || fail "gc removed a shared layer"
expect_status 0 "$OCCYSTRAP" verify "$STORE"
expect_status 0 "$OCCYSTRAP" recreate-image "$STORE" "$NS/b" v1 r-b2.tar
cmp -s r-b2.tar f-b.tar || fail "b changed after gc"
ok "gc frees only the dropped image's layer and config; the rest verifies"
finish
