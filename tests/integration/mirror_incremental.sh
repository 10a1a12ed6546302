#!/usr/bin/env bash
# mirror_incremental.sh - what a nightly rerun fetches: a tag moved to an
# image that adds one layer costs exactly the new manifest, config and layer;
# twenty images sharing a base layer, scheduled at once, fetch that base
# layer once; a digest entry already in the store costs no request; and a
# second run on a busy store waits (--lock-wait) or says why it cannot.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/mirror-inc-$$
MK="$PY $TESTS_DIR/integration/lib/mkimage.py"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" > config.json
mirror() { "$OCCYSTRAP" --config config.json --progress none "$@"; }
new_lines() { tail -n +"$(($1 + 1))" "$LAB_LOG_PLAIN" | grep -F "/$NS/" || true; }

# --- a tag moves to an image with one more layer
$MK "$LAB_PLAIN" "$NS/moving:v1" "$NS-a:200000" "$NS-b:100000" > v1.txt
echo "$LAB_PLAIN/$NS/moving:v1" > list.txt
expect_status 0 mirror mirror list.txt store
$MK "$LAB_PLAIN" "$NS/moving:v1" "$NS-a:200000" "$NS-b:100000" "$NS-c:50000" > v2.txt
new_layer=$(sed -n 4p v2.txt | cut -d' ' -f2)
manifest2=$(head -1 v2.txt)
before=$(wc -l < "$LAB_LOG_PLAIN")
expect_status 0 mirror mirror list.txt store
new_lines "$before" > moved.log
gets=$(grep -c '"GET ' moved.log || true)
[ "$gets" = 3 ] || { cat moved.log; fail "the moved tag cost $gets GETs, wanted 3 (manifest, config, new layer)"; }
grep -q "GET /v2/$NS/moving/manifests/$manifest2 " moved.log || fail "the new manifest was not fetched by digest"
grep -q "GET /v2/$NS/moving/blobs/$new_layer " moved.log || fail "the new layer was not fetched"
[ "$(grep -c '"HEAD ' moved.log)" = 1 ] || fail "wanted one HEAD"
expect_status 0 "$OCCYSTRAP" verify store
ok "moved tag: only the new manifest, config and layer were fetched ($gets GETs, 1 HEAD)"

# --- a digest entry already in the store costs nothing
echo "$LAB_PLAIN/$NS/moving@$manifest2" > bydigest.txt
expect_status 0 mirror mirror bydigest.txt store
before=$(wc -l < "$LAB_LOG_PLAIN")
expect_status 0 mirror mirror bydigest.txt store
[ -z "$(new_lines "$before")" ] || fail "a digest entry already in the store sent requests"
ok "digest entry in the store: no request at all"

# --- twenty images sharing one base layer, all at once
base="$NS-base:3000000"
: > share.txt
for i in $(seq 1 20); do
  $MK "$LAB_PLAIN" "$NS/share-$i:v1" "$base" "$NS-own-$i:2000" > "share-$i.txt"
  echo "$LAB_PLAIN/$NS/share-$i:v1" >> share.txt
done
base_digest=$(sed -n 2p share-1.txt | cut -d' ' -f2)
before=$(wc -l < "$LAB_LOG_PLAIN")
expect_status 0 mirror -j 64 --per-registry 32 mirror share.txt store2
n=$(new_lines "$before" | grep -c "GET /v2/$NS/share-[0-9]*/blobs/$base_digest " || true)
[ "$n" = 1 ] || fail "the shared base layer was requested $n times, wanted once"
expect_status 0 "$OCCYSTRAP" verify store2
ok "20 images sharing a base layer: the base was requested once"

# --- a second run on a busy store waits or explains (the lock is held the
# way another run holds it: flock on STORE/.occystrap/mirror.lock)
mkdir -p store3/.occystrap
flock -x store3/.occystrap/mirror.lock sleep 3 &
holder=$!
sleep 0.3
expect_status 2 mirror mirror list.txt store3
expect_stderr "another mirror run"
ok "a second run on a busy store exits 2 and says why"
expect_status 0 mirror --lock-wait 30 mirror list.txt store3
wait "$holder"
expect_status 0 "$OCCYSTRAP" verify store3
ok "--lock-wait: the run waited for the lock holder and completed"
finish
