#!/usr/bin/env bash
# bundle_split.sh - a bundle in parts (issue 15): --split 1M of a store with
# a 6 MB layer gives parts of at most 1 MiB (the layer cut into segments),
# each a tar of its own that tar lists and whose files bundle_tool.py (the
# format read independently) checks alone; --dry-run predicts every part's
# size exactly. Imported in reverse order across two runs the parts
# complete the import (the first run leaves the store proper empty and says
# which parts are missing); a part missing, and a part with one byte
# flipped, leave the store as it was and name the part, and carrying that
# part alone afterwards completes the import. --zstd parts stay within the
# size too.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/bundle_lib.sh"
R=scratch/bundle-split-$$
BIG=$R/big
NAME() { echo "$LAB_PLAIN/$1"; }

$PY "$STORE_IMAGES" "$LAB_PLAIN" imgs.json --layer big=6000000 --layer small=20000 \
  "$BIG:v1=big,small" || fail "could not push the image"
mirror_into A "$BIG:v1" fixtures/zstd:v1
MiB=1048576

mkdir -p parts
expect_status 0 "$OCCYSTRAP" --dry-run --json bundle --split 1M A parts/b.tar >dry.json
expect_status 0 "$OCCYSTRAP" --json-file split.json bundle --split 1M A parts/b.tar
mapfile -t P < <(ls parts/b.tar.* | sort)
N=${#P[@]}
[ "$N" -ge 6 ] || fail "only $N parts for 6 MB in parts of 1 MiB"
[ "$(jq '.parts | length' split.json)" = "$N" ] || fail "the report lists $(jq '.parts | length' split.json) parts, $N were written"
id=""
for i in "${!P[@]}"; do
  p=${P[$i]}
  size=$(stat -c %s "$p")
  [ "$size" -le $MiB ] || fail "$p is $size bytes, over 1 MiB"
  [ "$(jq ".parts[$i].bytes" dry.json)" = "$size" ] || fail "--dry-run said $(jq ".parts[$i].bytes" dry.json) bytes for $p, it has $size"
  tar -tf "$p" >/dev/null || fail "tar cannot list $p"
  $PY "$BUNDLE_TOOL" verify "$p" >/dev/null || fail "$p does not verify alone"
  m=$(tar -xOf "$p" occystrap-bundle.json)
  [ "$(jq .part <<<"$m")" = $((i + 1)) ] && [ "$(jq .parts <<<"$m")" = "$N" ] || fail "$p is not part $((i + 1)) of $N"
  [ -z "$id" ] || [ "$(jq -r .id <<<"$m")" = "$id" ] || fail "$p names another bundle"
  id=$(jq -r .id <<<"$m")
done
segs=$(tar -xOf "${P[0]}" occystrap-bundle.json | jq '[.files[] | select(.blob != null)] | length')
[ "$segs" -ge 5 ] || fail "the 6 MB layer is not cut in segments ($segs)"
ok "--split 1M: $N parts of at most 1 MiB, $segs segments, each part a tar that verifies alone; --dry-run gave every size"

# reverse order, two runs
half=$((N / 2))
late=()
for ((i = N - 1; i >= half; i--)); do late+=("${P[$i]}"); done
early=()
for ((i = half - 1; i >= 0; i--)); do early+=("${P[$i]}"); done
expect_status 1 "$OCCYSTRAP" import "${late[@]}" B
given=$(seq -s ', ' 1 "$half")
expect_stderr "parts not given: $given;"
[ "$(jq '.images | length' <("$OCCYSTRAP" list --json B))" = 0 ] || fail "the first run listed images"
[ ! -e B/oci/index.json ] || fail "the first run wrote index.json"
expect_status 0 "$OCCYSTRAP" --json-file two.json import "${early[@]}" B
jq -e '.complete and .missing == 0' two.json >/dev/null || fail "the second run: $(cat two.json)"
"$OCCYSTRAP" -q verify B >/dev/null 2>verify.err || { cat verify.err; fail "verify B fails"; }
for r in "$BIG:v1" fixtures/zstd:v1; do
  "$OCCYSTRAP" -q recreate-image A "$(NAME "${r%:*}")" "${r##*:}" a.tar
  "$OCCYSTRAP" -q recreate-image B "$(NAME "${r%:*}")" "${r##*:}" b.tar
  cmp a.tar b.tar || fail "recreate-image of $r differs between A and B"
done
ok "parts imported in reverse order over two runs: the first says parts $given are missing and lists nothing, the second completes; recreate-image is A's"

# a part missing, then carried alone (into stores that hold another image)
mirror_into C fixtures/multilayer:v1
store_listing C >c.listing
others=("${P[@]:0:1}" "${P[@]:2}")
expect_status 1 "$OCCYSTRAP" import "${others[@]}" C
expect_stderr "parts not given: 2;"
expect_unchanged C c.listing
expect_status 0 "$OCCYSTRAP" import "${P[1]}" C
"$OCCYSTRAP" -q verify C >/dev/null 2>verify.err || { cat verify.err; fail "verify C fails"; }
ok "part 2 missing: named, the store unchanged; part 2 carried alone then completes the import"

# a part with a flipped byte, then the clean part alone
mirror_into D fixtures/multilayer:v1
store_listing D >d.listing
seg=$(tar -tf "${P[2]}" | awk '/^segments\// && !n++')
$PY "$BUNDLE_TOOL" flip "${P[2]}" "$seg" flipped.part
expect_status 1 "$OCCYSTRAP" import "${P[@]:0:2}" flipped.part "${P[@]:3}" D
expect_stderr "bundle part flipped.part: $seg: its .* bytes hash to sha256:.* (damaged)"
expect_stderr "damaged parts: 3 (flipped.part)"
expect_unchanged D d.listing
expect_status 0 "$OCCYSTRAP" --json-file three.json import "${P[2]}" D
jq -e '.complete and .received == 1' three.json >/dev/null || fail "the clean part 3: $(cat three.json)"
"$OCCYSTRAP" -q verify D >/dev/null 2>verify.err || { cat verify.err; fail "verify D fails"; }
ok "part 3 with a flipped byte: named with its file, the store unchanged; the clean part 3 alone completes the import"

# zstd
mkdir -p zparts
expect_status 0 "$OCCYSTRAP" bundle --zstd --split 1M A zparts/z.tar.zst
for p in zparts/z.tar.zst.*; do
  [ "$(stat -c %s "$p")" -le $MiB ] || fail "$p is over 1 MiB"
  zstd -t -q "$p" || fail "zstd -t refuses $p"
done
expect_status 0 "$OCCYSTRAP" import $(ls zparts/z.tar.zst.* | sort -r) E
"$OCCYSTRAP" -q verify E >/dev/null 2>verify.err || { cat verify.err; fail "verify E fails"; }
ok "--zstd --split 1M: every part within 1 MiB, each a zstd stream; imported in reverse order"
expect_status 2 "$OCCYSTRAP" bundle --split 1000 A tiny.tar
expect_stderr "too small"
expect_status 2 "$OCCYSTRAP" bundle --split 1M A -
ok "--split too small for the manifest, and --split to standard output: usage errors"
finish
