#!/usr/bin/env bash
# mirror_shard.sh - one list split over four processes writing one store at
# once (--shard 1/4 .. 4/4), through a fault proxy that slows the two shared
# layers (about 1 s each) so that the processes overlap:
#  - the four reports together hold every entry exactly once, each in the
#    shard an independent implementation of DESIGN's hash (FNV-1a 64 and
#    SplitMix64's finaliser, in Python) puts it in;
#  - verify passes and the catalog lists every image;
#  - every blob, the shared layers included, was GET once in all (the
#    registry's access log): a process waits for a layer another is fetching;
#  - OCCYSTRAP_SHARD=K/N and --shards N with JOB_COMPLETION_INDEX=K-1 pick
#    the same entries as --shard K/N;
#  - a blob lock left by a live process is waited for until that process
#    dies, one left by a dead process is taken over at once.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/shard-$$-$RANDOM
$PY "$TESTS_DIR/lab/push_many.py" "$LAB_PLAIN" --prefix "$NS" --repos 5 --tags 200 --layers 2 \
  --layer-bytes 1000000 --json pushed.json
rules=()
for d in $(jq -r '.layers[]' pushed.json); do rules+=("/blobs/$d|slow=1000000,slowchunk=65536|1000"); done
start_proxy shard "${rules[@]}"
jq -r '.references[]' pushed.json | sed "s#^$LAB_PLAIN/#$PROXY/#" > list.txt
printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" > config.json
mirror() { "$OCCYSTRAP" --config config.json --progress none -q "$@"; }

# --- four shards at once into one store
before=$(wc -l < "$LAB_LOG_PLAIN")
pids=()
for k in 1 2 3 4; do
  mirror --shard "$k/4" --json-file "shard$k.json" mirror list.txt store 2>"shard$k.err" &
  pids+=($!)
done
for k in 1 2 3 4; do
  rc=0
  wait "${pids[$((k - 1))]}" || rc=$?
  [ "$rc" = 0 ] || { cat "shard$k.err"; fail "shard $k/4 exited $rc"; }
done
$PY - list.txt shard1.json shard2.json shard3.json shard4.json <<'PYEOF'
import json, sys
M = (1 << 64) - 1
def shard_of(key, n):
    h = 0xcbf29ce484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001b3) & M
    h ^= h >> 30; h = (h * 0xbf58476d1ce4e5b9) & M
    h ^= h >> 27; h = (h * 0x94d049bb133111eb) & M
    h ^= h >> 31
    return h % n + 1
refs = [l.strip() for l in open(sys.argv[1]) if l.strip()]
seen = {}
for k, path in enumerate(sys.argv[2:], 1):
    rep = json.load(open(path))
    assert rep["totals"]["shard"] == "%d/4" % k, rep["totals"]
    for e in rep["entries"]:
        r = e["reference"]
        assert r not in seen, "%s in shards %d and %d" % (r, seen[r], k)
        seen[r] = k
        assert e["status"] == "fetched", e
        assert shard_of(r, 4) == k, "%s is in shard %d, the hash says %d" % (r, k, shard_of(r, 4))
missing = set(refs) - set(seen)
assert not missing, "not mirrored by any shard: %s" % sorted(missing)[:5]
sizes = [sum(1 for v in seen.values() if v == k) for k in range(1, 5)]
print("shard sizes", sizes)
PYEOF
ok "4 shards: every entry once, in the shard the hash names"
[ "$(jq '[.[] | length] | add' store/catalog.json)" = 200 ] || fail "the catalog does not list 200 images"
expect_status 0 "$OCCYSTRAP" -q verify store
tail -n +"$((before + 1))" "$LAB_LOG_PLAIN" | grep -F "/$NS/" | grep '"GET [^ ]*/blobs/' |
  sed 's#.*/blobs/\([^ ]*\) .*#\1#' | sort | uniq -c | sort -rn > gets.txt
[ "$(awk '$1 != 1' gets.txt | wc -l)" = 0 ] || { head -5 gets.txt; fail "a blob was GET more than once"; }
for d in $(jq -r '.layers[]' pushed.json); do
  grep -q " $d\$" gets.txt || fail "shared layer $d was never fetched"
done
[ "$(wc -l < gets.txt)" = 202 ] || fail "$(wc -l < gets.txt) blobs fetched, wanted 200 configs + 2 layers"
waits=$(jq -s '[.[].totals.blob_waits] | add' shard1.json shard2.json shard3.json shard4.json)
ok "verify passes, 200 listed; each of the 202 blobs GET once in all ($waits waits for another process)"

# --- the other ways to name a shard pick the same entries
expect_status 0 mirror --shard 3/4 --dry-run --json-file a.json mirror list.txt store
OCCYSTRAP_SHARD=3/4 expect_status 0 mirror --dry-run --json-file b.json mirror list.txt store
JOB_COMPLETION_INDEX=2 expect_status 0 mirror --shards 4 --dry-run --json-file c.json mirror list.txt store
refs() { jq -r '.entries[].reference' "$1" | sort; }
[ -n "$(refs a.json)" ] || fail "shard 3/4 is empty"
diff <(refs a.json) <(refs b.json) >/dev/null || fail "OCCYSTRAP_SHARD=3/4 differs from --shard 3/4"
diff <(refs a.json) <(refs c.json) >/dev/null || fail "--shards 4 with JOB_COMPLETION_INDEX=2 differs"
diff <(refs a.json) <(jq -r '.entries[].reference' shard3.json | sort) >/dev/null ||
  fail "the dry run of shard 3/4 differs from the real run"
expect_status 2 mirror --shards 4 mirror list.txt store
expect_stderr "JOB_COMPLETION_INDEX"
expect_status 2 mirror --shard 5/4 mirror list.txt store
ok "OCCYSTRAP_SHARD and --shards + JOB_COMPLETION_INDEX name the same shard; bad ones exit 2"

# --- blob locks left by others: a live owner is waited for, a dead one is not
layer=$(jq -r '.layers[0]' pushed.json)
one=$(head -1 list.txt)
lockfile() { mkdir -p "$1/.occystrap/fetching"; echo "$1/.occystrap/fetching/${layer#sha256:}.lock"; }
owner_line() { echo "$(hostname) $1 $(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f20)"; }
echo "$one" > one.txt
sleep 3 &
sleeper=$!
owner_line "$sleeper" > "$(lockfile live)"
expect_status 0 mirror --json-file live.json mirror one.txt live
[ "$(jq .totals.blob_waits live.json)" -ge 1 ] || fail "the run did not wait for the live owner"
[ ! -e "$(lockfile live)" ] || fail "the blob lock was left behind"
wait "$sleeper" 2>/dev/null || true
expect_status 0 "$OCCYSTRAP" -q verify live
true &
dead=$!
wait "$dead"
echo "$(hostname) $dead 12345" > "$(lockfile dead)"
expect_status 0 mirror --json-file dead.json mirror one.txt dead
[ "$(jq .totals.blob_waits dead.json)" = 0 ] || fail "the run waited for a dead owner"
expect_status 0 "$OCCYSTRAP" -q verify dead
ok "a live owner's blob lock is waited for until it dies; a dead owner's is taken over at once"
finish
