#!/usr/bin/env bash
# expand_hostile.sh - untrusted layers against fetch-to-extracted --expand
# and expand: absolute names, ".." escapes, writes through a symlink to /
# (and to a directory outside), hard links to absolute or escaping targets
# or through a symlink, whiteouts named to escape or placed behind a
# symlink, and decompression bombs (2 GiB and 128 MiB of zeros). Each is
# refused with an error naming the entry (or, for whiteouts behind a
# symlink, contained), and nothing appears or disappears outside the target. Images are built by
# lib/expand_hostile.py and pushed under scratch/expand-<case>.
source "$(dirname "$0")/lib/common.sh"
HOSTILE="$TESTS_DIR/integration/lib/expand_hostile.py"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > policy.json
push() { # LAYOUT NAME
  skopeo --policy policy.json copy -q --dest-tls-verify=false "oci:$1:v1" \
    "docker://$LAB_PLAIN/scratch/expand-$2:v1" >/dev/null || fail "push of $2"
}
expect_stderr_fixed() {
  grep -qF -- "$1" "$WORK_DIR/last.err" || {
    cat "$WORK_DIR/last.err" >&2
    fail "stderr does not mention '$1'"
  }
}

OUTSIDE=$WORK_DIR/outside
mkdir -p "$OUTSIDE"
echo "precious" > "$OUTSIDE/victim"
snapshot() { (cd "$OUTSIDE" && find . -printf '%p %y %s %m\n' | sort && cat victim); }
snapshot > outside.before
nothing_escaped() { # CASE
  snapshot > outside.after
  cmp -s outside.before outside.after || { diff outside.before outside.after >&2; fail "$1: $OUTSIDE changed"; }
  local stray
  stray=$(find "$WORK_DIR" -name 'escaped-*' -not -path "$WORK_DIR/out-*" -print)
  [ -z "$stray" ] || fail "$1: $stray appeared outside the target"
  ls / | grep -q '^escaped' && fail "$1: something appeared at /"
  return 0
}

$PY "$HOSTILE" hostile "$OUTSIDE" || fail "building the hostile layers"
cases=$($PY -c 'import json;print(" ".join(sorted(json.load(open("hostile/cases.json")))))')
for c in $cases; do
  push "hostile/$c" "$c"
  entry=$($PY -c 'import json,sys;print(json.load(open("hostile/cases.json"))[sys.argv[1]]["entry"])' "$c")
  how=$($PY -c 'import json,sys;print(json.load(open("hostile/cases.json"))[sys.argv[1]]["expect"])' "$c")
  for strategy in write-once oldest-first; do
    out="$WORK_DIR/out-$c-$strategy"
    if [ "$how" = refuse ]; then
      expect_status 1 "$OCCYSTRAP" -q --insecure --expand-strategy "$strategy" fetch-to-extracted --expand \
        "$LAB_PLAIN" "scratch/expand-$c" v1 "$out"
      expect_stderr_fixed "entry '$entry'"
      [ ! -e "$out/manifest" ] || fail "$c: a merged tree was left behind"
    else
      expect_status 0 "$OCCYSTRAP" -q --insecure --expand-strategy "$strategy" fetch-to-extracted --expand \
        "$LAB_PLAIN" "scratch/expand-$c" v1 "$out"
      [ -L "$out/manifest/link" ] || fail "$c: the symlink is missing"
    fi
    nothing_escaped "$c"
    ok "$c ($strategy): $( [ "$how" = refuse ] && echo refused || echo contained), nothing outside the target touched"
  done
  # the same layers from the store, with the expand command
  if [ "$how" = refuse ] && [ -f "$out/catalog.json" ]; then
    expect_status 1 "$OCCYSTRAP" -q expand "$out" "scratch/expand-$c" v1 "$WORK_DIR/out-$c-cmd"
    expect_stderr_fixed "entry '$entry'"
    [ ! -e "$WORK_DIR/out-$c-cmd" ] || fail "$c: expand left its target behind"
    nothing_escaped "$c"
    ok "$c: refused by expand STORE too"
  fi
done

# The bomb: 2 GiB of zeros in ~2 MB of gzip. The pull's guard refuses it
# (tests/integration/bomb_guard.sh has the guard's own cases): by default,
# with a layer bound, with an image bound; nothing is expanded.
$PY "$HOSTILE" --bomb hostile $((2 * 1024 * 1024 * 1024)) || fail "building the bomb"
du -k hostile/bomb/blobs/sha256 | awk '{ if ($1 > 8192) exit 1 }' || fail "the bomb is not small"
push hostile/bomb bomb
expect_status 1 "$OCCYSTRAP" -q --insecure --max-layer-size 100000000 fetch-to-extracted --expand \
  "$LAB_PLAIN" scratch/expand-bomb v1 out-bomb1
expect_stderr_fixed "100000000"
[ ! -e out-bomb1/manifest ] || fail "bomb: a merged tree was left"
ok "bomb: the layer is bounded by --max-layer-size"
rm -rf out-bomb1
expect_status 1 "$OCCYSTRAP" -q --insecure --max-layer-size 0 --max-expand-size 100000000 \
  fetch-to-extracted --expand "$LAB_PLAIN" scratch/expand-bomb v1 out-bomb2
expect_stderr_fixed "beyond 100000000 bytes"
expect_stderr_fixed "--max-expand-size"
[ ! -e out-bomb2/manifest ] || fail "bomb: a merged tree was left"
ok "bomb: the image is bounded by --max-expand-size before anything is expanded"
rm -rf out-bomb2 hostile/bomb

# Expanding is bounded too: 128 MiB of zeros (under the pull's default
# bound) fetched, then expand STORE with --max-expand-size refuses the entry
# after writing no more than the bound.
$PY "$HOSTILE" --bomb hostile $((128 * 1024 * 1024)) zeros128 || fail "building the small bomb"
push hostile/zeros128 zeros128
expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-extracted "$LAB_PLAIN" scratch/expand-zeros128 v1 \
  out-zeros
expect_status 1 "$OCCYSTRAP" -q --max-expand-size 100000000 expand out-zeros scratch/expand-zeros128 \
  v1 out-zeros-x
expect_stderr_fixed "entry 'zeros'"
expect_stderr_fixed "--max-expand-size"
[ ! -e out-zeros-x ] || fail "bomb: expand left its target behind"
ok "bomb: expand STORE is bounded by --max-expand-size"
rm -rf out-zeros hostile/zeros128
finish
