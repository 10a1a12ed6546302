#!/usr/bin/env bash
# bomb_guard.sh - the default guard against decompression bombs (issue 18):
# a layer whose tar grows beyond max(1 GiB, 100x its compressed size), or an
# image whose layers' tars grow beyond the same for the image, is refused
# with an error naming the layer and the ratio, and nothing is left behind;
# --max-layer-size and --max-expand-size raise the bounds, 0 removes them.
#
# Images (lib/expand_hostile.py --bomb, pushed under scratch/bomb-*):
#   big   one layer: a 2 GiB file of zeros in ~2 MB of gzip (1000x)
#   two   two layers of 768 MiB of zeros each (~0.8 MB gzip each): each under
#         the 1 GiB floor, together 1.5 GiB, beyond the image's bound
#   small one layer of 96 MiB of zeros (1000x, but under the 1 GiB floor)
# Zero-filled tars are written as holes (io/outfile.c), so the accepted runs
# take almost no disk. Under valgrind (OCCY_VG_BIN set), where 1 GiB of
# inflating and hashing takes minutes, the 2 GiB and 1.5 GiB runs are left
# out and the same rules are checked with explicit bounds on the small image.
source "$(dirname "$0")/lib/common.sh"
HOSTILE="$TESTS_DIR/integration/lib/expand_hostile.py"
GiB=$((1024 * 1024 * 1024))
MiB=$((1024 * 1024))
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > policy.json
push() { # LAYOUT NAME
  skopeo --policy policy.json copy -q --dest-tls-verify=false "oci:$1:v1" \
    "docker://$LAB_PLAIN/scratch/bomb-$2:v1" >/dev/null || fail "push of $2"
}
expect_stderr_fixed() {
  grep -qF -- "$1" "$WORK_DIR/last.err" || {
    cat "$WORK_DIR/last.err" >&2
    fail "stderr does not mention '$1'"
  }
}
no_leftovers() { # TARFILE
  [ ! -e "$1" ] || fail "$1 exists after a refused fetch"
  if ls -a "$(dirname "$1")" | grep -q '\.occy-\|^\.tmp-'; then fail "scratch left beside $1"; fi
}
layer_digest() { # NAME K: the K-th layer's digest of the layout NAME (0-based)
  $PY - "bombs/$1" "$2" <<'EOF'
import json, os, sys
lo, k = sys.argv[1], int(sys.argv[2])
idx = json.load(open(os.path.join(lo, "index.json")))
m = idx["manifests"][0]["digest"].split(":")[1]
man = json.load(open(os.path.join(lo, "blobs", "sha256", m)))
print(man["layers"][k]["digest"])
EOF
}
disk_kib() { du -sk "$1" | cut -f1; }
mirror_cfg() { printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" > mirror.json; }
mirror_cfg

mkdir -p bombs
$PY "$HOSTILE" --bomb bombs $((96 * MiB)) small || fail "building the small bomb"
push bombs/small small
small_layer=$(layer_digest small 0)

if [ -z "${OCCY_VG_BIN:-}" ]; then
  $PY "$HOSTILE" --bomb bombs $((2 * GiB)) big || fail "building the 2 GiB bomb"
  $PY "$HOSTILE" --bomb bombs $((768 * MiB)),$((768 * MiB)) two || fail "building the two-layer bomb"
  [ "$(disk_kib bombs/big)" -lt 8192 ] || fail "the 2 GiB bomb is not small"
  push bombs/big big
  push bombs/two two
  big_layer=$(layer_digest big 0)

  # 1. A 2 GiB zero-filled layer of ~2 MB is refused by default, early: the
  # error names the layer, the bound and the ratio.
  expect_status 1 "$OCCYSTRAP" -q --insecure fetch-to-tarfile "$LAB_PLAIN" scratch/bomb-big v1 big.tar
  expect_stderr_fixed "layer $big_layer: its tar grows beyond 1073741824 bytes (1.00 GiB)"
  expect_stderr_fixed "times its 2.0 MiB compressed"
  expect_stderr_fixed "the default bound, max(1 GiB, 100x)"
  expect_stderr_fixed "--max-layer-size"
  no_leftovers "$WORK_DIR/big.tar"
  ok "a 2 GiB layer of 2 MB gzip is refused by default, naming the layer and the ratio"

  # ... and by mirror: the entry fails, the store gets no layer of it.
  expect_status 1 "$OCCYSTRAP" --config mirror.json --progress none mirror <(echo "$LAB_PLAIN/scratch/bomb-big:v1") store
  expect_stderr_fixed "its tar grows beyond 1073741824 bytes"
  [ ! -e "store/${big_layer#sha256:}" ] || fail "mirror placed the refused layer"
  ok "mirror refuses it too and places nothing of it"

  # 2. --max-layer-size 0 accepts it: a 2 GiB layer.tar that hashes to its
  # diff_id (occystrap checks that), held as holes.
  expect_status 0 "$OCCYSTRAP" -q --insecure --max-layer-size 0 fetch-to-tarfile "$LAB_PLAIN" \
    scratch/bomb-big v1 big.tar
  size=$(tar -tvf big.tar "${big_layer#sha256:}/layer.tar" | awk '{print $3}')
  [ "$size" -gt $((2 * GiB)) ] || fail "the accepted layer.tar is $size bytes"
  [ "$(disk_kib big.tar)" -lt $((64 * 1024)) ] || fail "the zeros took $(disk_kib big.tar) KiB of disk"
  rm -f big.tar
  ok "--max-layer-size 0 accepts the 2 GiB layer (sparse on disk: no bytes for the zeros)"

  # ... and a store that took it that way cannot hand it on unguarded: the
  # bundle of it is refused by import with the same default bound (its
  # digests are right; its size is not sane), and the store is not made.
  expect_status 0 "$OCCYSTRAP" --config mirror.json --progress none --max-layer-size 0 \
    mirror <(echo "$LAB_PLAIN/scratch/bomb-big:v1") bigstore
  expect_status 0 "$OCCYSTRAP" -q bundle bigstore big.bundle
  rm -rf bigstore
  expect_status 1 "$OCCYSTRAP" -q import big.bundle imported
  expect_stderr_fixed "${big_layer#sha256:}"
  expect_stderr_fixed "1073741824"
  expect_stderr_fixed "--max-layer-size raises it"
  [ ! -e "imported/${big_layer#sha256:}" ] || fail "import placed the refused layer"
  ok "import refuses a bundle carrying that layer by the same default bound"
  # ... and accepts it with --max-layer-size 0, as the pulls do
  expect_status 0 "$OCCYSTRAP" -q --max-layer-size 0 import big.bundle imported
  size=$(stat -c %s "imported/${big_layer#sha256:}/layer.tar")
  [ "$size" -gt $((2 * GiB)) ] || fail "the imported layer.tar is $size bytes"
  expect_status 0 "$OCCYSTRAP" verify imported
  rm -rf big.bundle imported
  ok "import --max-layer-size 0 accepts it, and the store verifies"

  # 3. The image's bound: two layers under the floor each, 1.5 GiB together.
  expect_status 1 "$OCCYSTRAP" -q --insecure fetch-to-tarfile "$LAB_PLAIN" scratch/bomb-two v1 two.tar
  expect_stderr_fixed "takes the image's tars beyond 1073741824 bytes (1.00 GiB) in all"
  expect_stderr_fixed "--max-expand-size"
  no_leftovers "$WORK_DIR/two.tar"
  ok "an image whose layers together grow beyond max(1 GiB, 100x) is refused by default"
  expect_status 0 "$OCCYSTRAP" -q --insecure --max-expand-size 0 fetch-to-tarfile "$LAB_PLAIN" \
    scratch/bomb-two v1 two.tar
  rm -f two.tar
  ok "--max-expand-size 0 accepts that image"
fi

# 4. A layer of ratio 1000 under the 1 GiB floor passes by default (the guard
# stops bombs, not well-compressed layers); explicit bounds below it refuse
# it, naming the bound set, and 0 removes them.
expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-tarfile "$LAB_PLAIN" scratch/bomb-small v1 small.tar
rm -f small.tar
ok "96 MiB of zeros in 100 KB passes by default (under the 1 GiB floor)"
expect_status 1 "$OCCYSTRAP" -q --insecure --max-layer-size $((64 * MiB)) fetch-to-tarfile \
  "$LAB_PLAIN" scratch/bomb-small v1 small.tar
expect_stderr_fixed "layer $small_layer: its tar grows beyond 67108864 bytes (64.0 MiB)"
expect_stderr_fixed "the bound set"
no_leftovers "$WORK_DIR/small.tar"
expect_status 1 "$OCCYSTRAP" -q --insecure --max-expand-size $((64 * MiB)) fetch-to-tarfile \
  "$LAB_PLAIN" scratch/bomb-small v1 small.tar
expect_stderr_fixed "takes the image's tars beyond 67108864 bytes (64.0 MiB) in all"
no_leftovers "$WORK_DIR/small.tar"
expect_status 1 "$OCCYSTRAP" --config mirror.json --progress none --max-layer-size $((64 * MiB)) \
  mirror <(echo "$LAB_PLAIN/scratch/bomb-small:v1") store2
expect_stderr_fixed "its tar grows beyond 67108864 bytes"
[ ! -e "store2/${small_layer#sha256:}" ] || fail "mirror placed the refused layer"
expect_status 0 "$OCCYSTRAP" -q --insecure --max-layer-size 0 --max-expand-size 0 fetch-to-tarfile \
  "$LAB_PLAIN" scratch/bomb-small v1 small.tar
rm -f small.tar
ok "explicit bounds refuse it (fetch and mirror, layer and image), 0 removes them"

# 5. The options are checked: a bound must be a number.
expect_status 2 "$OCCYSTRAP" --max-layer-size lots fetch-to-tarfile "$LAB_PLAIN" scratch/bomb-small v1 x.tar
expect_status 2 "$OCCYSTRAP" --max-expand-size -1 fetch-to-tarfile "$LAB_PLAIN" scratch/bomb-small v1 x.tar
ok "a bound that is not a number is a usage error"
finish
