#!/usr/bin/env bash
# library_example.sh - examples/mirror_two.c, a program of its own linked
# against liboccystrap.so, mirrors two lab images into a store through the
# public header on its own loop while its own timer ticks: it must see both
# entries finish, its timer must have fired during the run, the engine must
# close, and `occystrap verify` must pass on the store it made (and `list`
# show both images).
source "$(dirname "$0")/lib/common.sh"
: "${OCCY_EXAMPLE:?OCCY_EXAMPLE must name the mirror_two example binary}"

STORE="$WORK_DIR/store"
expect_status 0 "$OCCY_EXAMPLE" "$LAB_PLAIN" "$STORE" fixtures/multilayer:v1 fixtures/shared-a:v1 \
  >"$WORK_DIR/out"
cat "$WORK_DIR/out"
grep -q "^entry $LAB_PLAIN/fixtures/multilayer:v1: done" "$WORK_DIR/out" || fail "first entry not reported done"
grep -q "^entry $LAB_PLAIN/fixtures/shared-a:v1: done" "$WORK_DIR/out" || fail "second entry not reported done"
grep -q "^mirrored 2 of 2 entries (0 failed)$" "$WORK_DIR/out" || fail "the report does not say 2 of 2"
ticks=$(sed -n 's/^timer ticks during the run: \([0-9]*\); engine closed: yes$/\1/p' "$WORK_DIR/out")
[ -n "$ticks" ] && [ "$ticks" -gt 0 ] || fail "the caller's timer did not tick during the run, or the engine did not close"
ok "two images mirrored through the public API; the caller's timer fired $ticks times during the run"

expect_status 0 "$OCCYSTRAP" verify "$STORE"
expect_status 0 "$OCCYSTRAP" list --json "$STORE" >"$WORK_DIR/list.json"
n=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["images"]))' "$WORK_DIR/list.json")
[ "$n" = 2 ] || fail "list shows $n images, wanted 2"
ok "verify passes on the example's store and list shows both images"

# A second run finds both up to date.
expect_status 0 "$OCCY_EXAMPLE" "$LAB_PLAIN" "$STORE" fixtures/multilayer:v1 fixtures/shared-a:v1 \
  >"$WORK_DIR/out2"
grep -q "^mirrored 2 of 2 entries (0 failed)$" "$WORK_DIR/out2" || fail "rerun did not report 2 of 2"
ok "rerun through the API: both entries up to date"
finish
