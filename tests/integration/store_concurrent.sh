#!/usr/bin/env bash
# store_concurrent.sh - several processes fetching overlapping images into
# one store at the same moment (through a slowed-down proxy, so that their
# transfers, layer renames and catalog writes really overlap): every
# process exits 0, catalog.json holds the union, verify passes, no scratch
# is left, and every image recreates into a tarball skopeo accepts.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/store_lib.sh"

IMAGES="$WORK_DIR/images.json"
push_images "$IMAGES" --layer base1=1500000 --layer base2=1000000 \
  --layer own-a=200000 --layer own-b=300000 --layer own-c=250000 \
  "$NS/a:v1=base1,base2,own-a" "$NS/b:v1=base1,own-b,base2" "$NS/c:v1=base2,own-c"
start_proxy slow "blobs/sha256|slow=3000000|1000"

# run_together STORE IMAGE...: one fetch per IMAGE, all started at once.
run_together() {
  local store=$1 pids=() x i=0 rc
  shift
  for x in "$@"; do
    "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$PROXY" "$NS/$x" v1 "$store" \
      >"$WORK_DIR/run-$i.out" 2>"$WORK_DIR/run-$i.err" &
    pids+=($!)
    i=$((i + 1))
  done
  i=0
  for x in "${pids[@]}"; do
    rc=0
    wait "$x" || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK_DIR/run-$i.err" >&2; fail "fetch $i into $store exited $rc"; }
    i=$((i + 1))
  done
}

# check_store STORE IMAGE...: the catalog holds exactly these images, the
# store verifies, no scratch is left, each image recreates.
check_store() {
  local store=$1 x want
  shift
  want=$(for x in "$@"; do echo "$NS/$x:v1=manifest-${NS//\//_}_$x-v1.json"; done | sort -u)
  [ "$(catalog_entries "$store")" = "$want" ] || { catalog_entries "$store"; fail "catalog of $store is not the union"; }
  expect_status 0 "$OCCYSTRAP" verify "$store"
  tmp_is_empty "$store" || fail "scratch left in $store/.tmp"
  for x in "$@"; do
    expect_status 0 "$OCCYSTRAP" recreate-image "$store" "$NS/$x" v1 "$WORK_DIR/$x.tar"
    $PY "$CHECK_TARBALL" "$WORK_DIR/$x.tar" "$IMAGES" "$NS/$x" >/dev/null || fail "recreated $x from $store rejected"
  done
}

t0=$(date +%s%N)
run_together "$WORK_DIR/s1" a b
t1=$(date +%s%N)
check_store "$WORK_DIR/s1" a b
ok "two processes, overlapping images, one store: both exit 0, catalog holds both, verify passes ($(((t1 - t0) / 1000000)) ms)"

run_together "$WORK_DIR/s2" a b c a
check_store "$WORK_DIR/s2" a b c
ok "four processes (one image twice) at once: union in the catalog, verify passes"

# A third wave into a store that already holds everything: nothing to fetch,
# the catalog is rewritten by all of them at once and loses nothing.
run_together "$WORK_DIR/s2" c b a c b a
check_store "$WORK_DIR/s2" a b c
ok "six processes rewriting the catalog of a full store at once: nothing lost"
finish
