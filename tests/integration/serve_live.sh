#!/usr/bin/env bash
# serve_live.sh - a store written while `occystrap serve` serves it. A
# writer that follows the store's rules (every blob by rename once it
# verified, then index.json replaced atomically: serve_store.py, standing in
# for mirror) adds the lab fixtures one by one, a few images of its own with
# 2 MB layers, and moves one tag between images, while a client pulls
# everything serve lists in a loop and checks every pull (each manifest's
# bytes against its digest, every blob it names present and matching). No
# pull may ever see a manifest whose blobs are missing or a blob whose
# bytes do not match; once the writer is done, everything it wrote is
# served. Then the index is broken by hand: serve keeps the last good view
# and says why, once. Last, the same with `occystrap mirror` as the writer.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"
CHECK="$TESTS_DIR/integration/lib/serve_pull_check.py"

STORE="$WORK_DIR/store"
mkdir -p "$STORE"
start_serve live "$STORE"
ok "serve started on an empty store"

STOP="$WORK_DIR/writer-done"
$PY "$CHECK" "$SERVE_URL" "$STOP" >"$WORK_DIR/check.out" 2>&1 &
CHECK_PID=$!
EXTRA_CLEANUP+=("touch '$STOP'; kill $CHECK_PID 2>/dev/null; wait $CHECK_PID 2>/dev/null")

mapfile -t refs < <(fixture_refs)
n=0
for ref in "${refs[@]}"; do
  $PY "$SERVE_STORE_PY" add "$STORE" "$LAB_PLAIN" "$ref" >>"$WORK_DIR/writer.log"
  if [ $((n % 3)) = 0 ]; then
    $PY "$SERVE_STORE_PY" synth "$STORE" "local/synth-$n:v1" 2000000 >>"$WORK_DIR/writer.log"
    # one tag moves from image to image
    $PY "$SERVE_STORE_PY" synth "$STORE" "local/moving:latest" 1000000 >>"$WORK_DIR/writer.log"
  fi
  n=$((n + 1))
  sleep 0.2
done
touch "$STOP"
rc=0
wait "$CHECK_PID" || rc=$?
cat "$WORK_DIR/check.out"
[ "$rc" = 0 ] || fail "the pulling client found problems"
summary=$(tail -1 "$WORK_DIR/check.out")
pulls=$(awk '{print $2}' <<<"$summary")
blobs=$(awk '{print $6}' <<<"$summary")
repos=$(awk '{print $10}' <<<"$summary")
want=$((${#refs[@]} + 5)) # the fixtures, local/synth-{0,3,6,9}, local/moving
[ "$repos" = "$want" ] || fail "the last pass saw $repos repositories, wanted $want"
[ "$pulls" -ge 3 ] || fail "only $pulls passes while the writer ran"
ok "$pulls passes of pulling everything while the writer added ${#refs[@]} fixtures and 8 images of its own: every manifest and all $blobs blobs checked, no problem; the last pass saw all $repos repositories"
$PY "$SERVE_STORE_PY" check "$STORE" || fail "the writer's store does not check"

reloads_before=$(grep -c "holds" "$SERVE_ERR" || true)
cp "$STORE/oci/index.json" "$WORK_DIR/index.good"
printf '{"manifests": [' >"$STORE/oci/index.json.new"
mv "$STORE/oci/index.json.new" "$STORE/oci/index.json"
for i in 1 2 3; do
  s=$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/v2/fixtures/multilayer/manifests/v1")
  [ "$s" = 200 ] || fail "a broken index.json lost the view: $s"
done
[ "$(grep -c "index.json" "$SERVE_ERR")" = 1 ] || fail "the broken index.json was not reported exactly once: $(cat "$SERVE_ERR")"
cp "$WORK_DIR/index.good" "$STORE/oci/index.json.new"
mv "$STORE/oci/index.json.new" "$STORE/oci/index.json"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/v2/local/moving/manifests/latest")" = 200 ] || fail "the repaired index is not served"
ok "a broken index.json: the last good view stays (reported once); the repaired one is served"
stop_serve

# The same with occystrap mirror itself as the writer: every fixture mirrored
# (exact bytes, every platform), one run per fixture, into a store that serve
# serves from empty, while the client pulls in a loop.
MSTORE="$WORK_DIR/mirrored"
mkdir -p "$MSTORE"
start_serve mirrored "$MSTORE"
rm -f "$STOP"
$PY "$CHECK" "$SERVE_URL" "$STOP" >"$WORK_DIR/check2.out" 2>&1 &
CHECK_PID=$!
printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" >"$WORK_DIR/mirror.json"
for ref in "${refs[@]}"; do
  echo "$LAB_PLAIN/$ref" >"$WORK_DIR/one.txt"
  expect_status 0 "$OCCYSTRAP" --config "$WORK_DIR/mirror.json" --progress none -q --platform all \
    mirror "$WORK_DIR/one.txt" "$MSTORE"
done
touch "$STOP"
rc=0
wait "$CHECK_PID" || rc=$?
cat "$WORK_DIR/check2.out"
[ "$rc" = 0 ] || fail "the pulling client found problems while mirror wrote"
summary=$(tail -1 "$WORK_DIR/check2.out")
pulls=$(awk '{print $2}' <<<"$summary")
repos=$(awk '{print $10}' <<<"$summary")
[ "$repos" = "${#refs[@]}" ] || fail "the last pass saw $repos repositories, wanted ${#refs[@]}"
[ "$pulls" -ge 2 ] || fail "only $pulls passes while mirror ran"
expect_status 0 "$OCCYSTRAP" -q verify "$MSTORE"
ok "$pulls passes of pulling everything while occystrap mirror wrote ${#refs[@]} fixtures: no problem; the last pass saw all $repos repositories"
stop_serve
finish
