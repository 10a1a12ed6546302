#!/usr/bin/env bash
# store_crash.sh - a fetch into a store killed with SIGKILL at several
# moments: in the middle of a layer transfer (slowed down by the fault
# proxy), at increasing delays, and at the store's own crash points (layer
# renamed in but no marker yet, manifest file written but catalog not yet
# updated, new catalog written to its temporary but not renamed). Each time
# the image already in the store is intact, verify passes on what is there,
# catalog.json parses, and a rerun completes the store and clears the dead
# run's scratch.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/store_lib.sh"

IMAGES="$WORK_DIR/images.json"
push_images "$IMAGES" --layer base=300000 --layer big=2000000 --layer own-b=100000 \
  "$NS/a:v1=base,big" "$NS/b:v1=base,own-b"
big=$(layer_digest "$IMAGES" "$NS/a" big)
BASE="$WORK_DIR/base-store"
expect_status 0 "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$NS/b" v1 "$BASE"
b_entry="$NS/b:v1=manifest-${NS//\//_}_b-v1.json"
a_entry="$NS/a:v1=manifest-${NS//\//_}_a-v1.json"
b_files=$(cd "$BASE" && find . -path ./.tmp -prune -o -path ./.occystrap -prune -o -type f -print | sort | xargs sha256sum)

# after_crash STORE WHAT: the old image intact, verify passes, catalog parses
after_crash() {
  local store=$1 what=$2
  local now
  now=$(cd "$store" && echo "$b_files" | awk '{print $2}' | xargs sha256sum 2>/dev/null | grep -v catalog.json)
  [ "$now" = "$(echo "$b_files" | grep -v catalog.json)" ] || fail "$what: the image already in the store changed"
  expect_status 0 "$OCCYSTRAP" verify "$store"
  catalog_entries "$store" >/dev/null || fail "$what: catalog.json does not parse"
}

# rerun STORE WHAT: a plain rerun completes the store
rerun() {
  local store=$1 what=$2
  expect_status 0 "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$NS/a" v1 "$store"
  [ "$(catalog_entries "$store")" = "$(printf '%s\n%s' "$a_entry" "$b_entry" | sort)" ] ||
    { catalog_entries "$store"; fail "$what: catalog after the rerun"; }
  tmp_is_empty "$store" || { ls -la "$store/.tmp"; fail "$what: the dead run's scratch is still there"; }
  expect_status 0 "$OCCYSTRAP" verify "$store"
  expect_status 0 "$OCCYSTRAP" recreate-image "$store" "$NS/a" v1 "$WORK_DIR/a.tar"
  $PY "$CHECK_TARBALL" "$WORK_DIR/a.tar" "$IMAGES" "$NS/a" >/dev/null || fail "$what: recreated a rejected"
}

fresh() { rm -rf "$1" && cp -a "$BASE" "$1"; }

# 1. In the middle of the big layer (200 kB/s through the proxy).
start_proxy slow "blobs/$big|slow=200000|1000"
S="$WORK_DIR/mid-layer"
fresh "$S"
"$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$PROXY" "$NS/a" v1 "$S" 2>"$WORK_DIR/mid.err" &
pid=$!
for _ in $(seq 200); do
  [ -n "$(find "$S/.tmp" -type f -size +100k 2>/dev/null)" ] && break
  sleep 0.05
done
[ -n "$(find "$S/.tmp" -type f -size +100k)" ] || { kill -9 "$pid"; fail "no partial layer appeared in $S/.tmp"; }
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ ! -e "$S/${big#sha256:}" ] || fail "the half-fetched layer is in the store"
after_crash "$S" "mid-layer"
ok "SIGKILL in the middle of a layer: old image intact, verify passes"
rerun "$S" "mid-layer"
ok "rerun after the mid-layer kill completes the store and clears .tmp"

# 2. At increasing delays: whatever moment the kill hits, the store verifies.
S="$WORK_DIR/delays"
fresh "$S"
for delay in 0.05 0.2 0.6 1.2 2; do
  "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$PROXY" "$NS/a" v1 "$S" 2>/dev/null &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  after_crash "$S" "kill after $delay s"
done
rerun "$S" "delays"
ok "SIGKILL after 0.05, 0.2, 0.6, 1.2 and 2 s: verify passes each time, a rerun completes"

# 3. The store's own crash points.
for point in layer-placed manifest-written catalog-write; do
  S="$WORK_DIR/crash-$point"
  fresh "$S"
  rc=0
  OCCYSTRAP_TEST_CRASH_AT=$point "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names \
    "$LAB_PLAIN" "$NS/a" v1 "$S" 2>/dev/null || rc=$?
  [ "$rc" = 137 ] || fail "crash point $point: exit status $rc, wanted 137 (SIGKILL)"
  [ -n "$(ls -A "$S/.tmp")" ] || fail "crash point $point: the dead run left no scratch (was it reached?)"
  after_crash "$S" "crash at $point"
  [ "$(catalog_entries "$S")" = "$b_entry" ] || { catalog_entries "$S"; fail "crash at $point: catalog changed"; }
  case $point in
  catalog-write) [ -e "$S/manifest-${NS//\//_}_a-v1.json" ] || fail "manifest file missing at $point" ;;
  layer-placed) [ ! -e "$S/manifest-${NS//\//_}_a-v1.json" ] || fail "manifest file written before $point" ;;
  esac
  rerun "$S" "crash at $point"
  ok "SIGKILL at $point: old catalog kept, verify passes, a rerun completes"
done
finish
