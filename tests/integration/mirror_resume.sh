#!/usr/bin/env bash
# mirror_resume.sh - a mirror run killed (SIGKILL) half-way through a large
# layer leaves the bytes it had in STORE/.occystrap/partial; the rerun
# replays them, asks the registry for the rest with Range, and verifies.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/mirror-resume-$$
$PY "$TESTS_DIR/integration/lib/mkimage.py" "$LAB_PLAIN" "$NS/big:v1" "$NS-big:24000000" "$NS-small:1000" > img.txt
big=$(sed -n 2p img.txt | cut -d' ' -f2)
size=$(sed -n 2p img.txt | cut -d' ' -f3)
hex=${big#sha256:}
# 4 MB/s on the big layer: about 6 s for the whole of it
start_proxy slow "blobs/$big|slow=4000000|1"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" > config.json
echo "$PROXY/$NS/big:v1" > list.txt

"$OCCYSTRAP" --config config.json --progress none mirror list.txt store > run1.log 2>&1 &
pid=$!
partial=store/.occystrap/partial/$hex
for _ in $(seq 200); do
  [ -f "$partial" ] && [ "$(stat -c %s "$partial")" -ge 8000000 ] && break
  sleep 0.05
done
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
have=$(stat -c %s "$partial" 2>/dev/null || echo 0)
[ "$have" -ge 8000000 ] && [ "$have" -lt "$size" ] || fail "partial file holds $have of $size bytes"
ok "killed at $have of $size bytes of the big layer; the partial file is kept"

expect_status 0 "$OCCYSTRAP" -v --config config.json --progress none mirror list.txt store
grep -q "continuing from byte $have" last.err || { cat last.err; fail "the rerun did not continue the partial file"; }
grep -q "GET /v2/$NS/big/blobs/$big range=bytes=$have-" "$PROXY_LOG" ||
  { cat "$PROXY_LOG"; fail "no Range request from byte $have"; }
[ ! -e "$partial" ] || fail "the partial file outlived the verified layer"
expect_status 0 "$OCCYSTRAP" verify store
ok "rerun asked for bytes $have- with Range, the layer verified, the partial file is gone"
finish
