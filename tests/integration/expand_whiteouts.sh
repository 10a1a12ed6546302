#!/usr/bin/env bash
# expand_whiteouts.sh - fixtures/whiteouts through fetch-to-extracted
# --expand and the expand command: the merged tree's full listing (path,
# type, mode, owner, size, SHA-256, link target, hard-link group) equals
# tests/data/expand/whiteouts.listing exactly, with both strategies, from
# the registry and from a store; each layer is also expanded as it is, its
# whiteout files visible.
source "$(dirname "$0")/lib/common.sh"
LISTING="$TESTS_DIR/integration/lib/expand_listing.py"
EXPECTED="$TESTS_DIR/data/expand/whiteouts.listing"
same_as_expected() { # DIR WHAT
  $PY "$LISTING" "$1" > got.lst
  diff -u "$EXPECTED" got.lst >&2 || fail "$2: the merged tree differs from $EXPECTED"
}

expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-extracted --expand "$LAB_PLAIN" fixtures/whiteouts v1 out
same_as_expected out/manifest "fetch-to-extracted --expand"
ok "merged tree equals the expected listing exactly"

# The fixture's own description agrees (present, absent, types).
$PY - "$LAB_FIXTURES" out/manifest <<'PYEOF' || fail "fixture expectations"
import json, os, stat, sys
exp = json.load(open(sys.argv[1]))["fixtures"]["fixtures/whiteouts"]["expect"]
root = sys.argv[2]
for p in exp["present"]:
    assert os.path.lexists(os.path.join(root, p)), f"{p} missing"
for p in exp["absent"]:
    assert not os.path.lexists(os.path.join(root, p)), f"{p} present"
kinds = {"dir": stat.S_ISDIR, "file": stat.S_ISREG}
for p, k in exp["types"].items():
    assert kinds[k](os.lstat(os.path.join(root, p)).st_mode), f"{p} is not a {k}"
PYEOF
ok "the fixture's expect section holds"

# Each layer as it is: whiteout files kept, visible.
hexes=$($PY -c 'import json,sys;print(" ".join(l["digest"][7:] for l in json.load(open(sys.argv[1]))["fixtures"]["fixtures/whiteouts"]["layers"]))' "$LAB_FIXTURES")
set -- $hexes
[ -f "out/$1/layer/deldir/sub/y" ] || fail "layer 1 as-is lacks deldir/sub/y"
for f in a/.wh.file1.txt .wh.deldir opq/.wh..wh..opq opq/new1 opq/new2 .wh.neverexisted .wh.gone f2d/child.txt; do
  [ -f "out/$2/layer/$f" ] || fail "layer 2 as-is lacks $f"
done
[ -f "out/$3/layer/deldir/fresh.txt" ] && [ -f "out/$3/layer/d2f" ] || fail "layer 3 as-is"
[ -f "out/$1/layer.tar" ] || fail "the layer tar went missing"
ok "each layer expanded as it is, whiteout files visible"

expect_status 0 "$OCCYSTRAP" -q --insecure --expand-strategy oldest-first fetch-to-extracted --expand \
  "$LAB_PLAIN" fixtures/whiteouts v1 out-oldest
same_as_expected out-oldest/manifest "oldest-first"
ok "oldest-first gives the same tree"

# A second run replaces the merged tree and keeps the layer trees.
touch out/manifest/stale
expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-extracted --expand "$LAB_PLAIN" fixtures/whiteouts v1 out
same_as_expected out/manifest "rerun"
ok "a rerun replaces the merged tree"

# Unique names: the merged tree is manifest-<image>-<tag>/; expand reads the store.
expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-extracted --use-unique-names --expand \
  "$LAB_PLAIN" fixtures/whiteouts v1 store
same_as_expected store/manifest-fixtures_whiteouts-v1 "--use-unique-names"
ok "--use-unique-names: merged tree in manifest-fixtures_whiteouts-v1/"
for s in write-once oldest-first; do
  expect_status 0 "$OCCYSTRAP" -q --expand-strategy "$s" expand store fixtures/whiteouts v1 "root-$s"
  same_as_expected "root-$s" "expand ($s)"
done
ok "expand STORE IMAGE TAG DIR: the same tree, both strategies, no network"

expect_status 2 "$OCCYSTRAP" -q expand store fixtures/whiteouts v1 root-write-once
expect_stderr "not empty"
ok "expand refuses a non-empty DIR"
expect_status 1 "$OCCYSTRAP" -q expand store fixtures/whiteouts no-such-tag root-x
expect_stderr "not in the store"
[ ! -e root-x ] || fail "a failed expand left DIR"
ok "expand of an image the store lacks: clear error"
expect_status 2 "$OCCYSTRAP" -q expand store fixtures/whiteouts
ok "expand with missing arguments is a usage error"
finish
