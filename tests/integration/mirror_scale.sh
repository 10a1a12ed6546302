#!/usr/bin/env bash
# mirror_scale.sh - a list of 1,000 tags (20 repositories, one shared layer,
# a config of its own each), pushed with the registry API:
#  1. the first run fetches every image and writes catalog.json at most
#     (run seconds + 2) times (the report's catalog_writes, and the distinct
#     inodes catalog.json had while the run went, sampled from outside);
#  2. the rerun costs one HEAD per tag and nothing else, and rewrites no
#     catalog;
#  3. a first run killed (SIGKILL) at three random moments: verify passes
#     after each kill, and the run that follows lists every image.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/scale-$$-$RANDOM
N=1000
printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" > config.json
mirror() { "$OCCYSTRAP" --config config.json --progress none -q "$@"; }
now() { date +%s.%N; }
listed() { [ -e "$1/catalog.json" ] && jq '[.[] | length] | add // 0' "$1/catalog.json" || echo 0; }
calc() { awk "BEGIN { print $1 }"; }

$PY "$TESTS_DIR/lab/push_many.py" "$LAB_PLAIN" --prefix "$NS" --repos 20 --tags "$N" \
  --list list.txt
[ "$(wc -l < list.txt)" = "$N" ] || fail "push_many wrote $(wc -l < list.txt) references"
ok "$N tags pushed in 20 repositories"

# --- 1. first run: catalog writes in batches
mkdir -p store
(
  last=""
  while [ ! -e sampler.stop ]; do
    ino=$(stat -c %i store/catalog.json 2>/dev/null || true)
    if [ -n "$ino" ] && [ "$ino" != "$last" ]; then
      echo "$ino" >> inodes.txt
      last=$ino
    fi
    sleep 0.005
  done
) &
sampler=$!
t0=$(now)
expect_status 0 mirror --json-file first.json mirror list.txt store
t1=$(now)
touch sampler.stop
wait "$sampler"
secs=$(calc "$t1 - $t0")
writes=$(jq .totals.catalog_writes first.json)
fetched=$(jq .totals.fetched first.json)
seen=$(sort -u inodes.txt | wc -l)
[ "$fetched" = "$N" ] || fail "first run fetched $fetched of $N"
[ "$(listed store)" = "$N" ] || fail "the catalog lists $(listed store) images, wanted $N"
limit=$(calc "$secs + 2")
# seen from outside first (a lower bound of the renames), then the run's own count
[ "$(calc "$seen <= $limit")" = 1 ] ||
  fail "catalog.json had at least $seen different inodes in a run of $secs s (at most $limit)"
[ "$(calc "$writes <= $limit")" = 1 ] ||
  fail "catalog.json was written $writes times in a run of $secs s (at most $limit)"
[ "$seen" -le "$writes" ] || fail "catalog.json had $seen inodes but the report says $writes writes"
[ "$writes" -ge 1 ] || fail "no catalog write reported"
expect_status 0 "$OCCYSTRAP" -q verify store
ok "first run of $N images in ${secs}s: catalog.json renamed $writes times (<= $limit; $seen inodes seen from outside); verify passes"

# --- 2. the rerun: one HEAD per tag, no GET, no catalog write
before=$(wc -l < "$LAB_LOG_PLAIN")
ino=$(stat -c %i store/catalog.json)
expect_status 0 mirror --json-file rerun.json mirror list.txt store
tail -n +"$((before + 1))" "$LAB_LOG_PLAIN" | grep -F "/$NS/" > rerun.log || true
heads=$(grep -c '"HEAD ' rerun.log || true)
others=$(grep -vc '"HEAD ' rerun.log || true)
[ "$heads" = "$N" ] || fail "the rerun sent $heads HEADs, wanted $N"
[ "$others" = 0 ] || { grep -v '"HEAD ' rerun.log | head -5; fail "the rerun sent $others other requests"; }
[ "$(jq .totals.up_to_date rerun.json)" = "$N" ] || fail "not every entry was up to date"
[ "$(jq .totals.catalog_writes rerun.json)" = 0 ] || fail "the rerun wrote catalog.json"
[ "$(stat -c %i store/catalog.json)" = "$ino" ] || fail "the rerun replaced catalog.json"
ok "no-op rerun: $heads HEADs and nothing else, catalog.json untouched"

# --- 3. a first run killed at random moments
kills=3
for k in $(seq 1 $kills); do
  # each run continues what the killed ones did: kill it at a random point
  # of its share of a first run's time
  frac=$(((RANDOM % 70) + 30))
  delay=$(calc "$secs * $frac / 100 / $kills")
  "$OCCYSTRAP" --config config.json --progress none -q mirror list.txt killed 2>kill-$k.err &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  expect_status 0 "$OCCYSTRAP" -q verify killed
  ok "kill $k after ${delay}s: verify passes ($(listed killed) of $N listed)"
done
expect_status 0 mirror --json-file after.json mirror list.txt killed
[ "$(listed killed)" = "$N" ] || fail "after the kills the rerun lists $(listed killed) of $N"
[ "$(jq '.totals.fetched + .totals.up_to_date' after.json)" = "$N" ] || fail "the rerun did not complete every entry"
expect_status 0 "$OCCYSTRAP" -q verify killed
[ "$(find killed/.tmp -mindepth 1 | wc -l)" = 0 ] || fail "scratch left in killed/.tmp"
ok "after $kills kills the rerun lists all $N images and verify passes"
finish
