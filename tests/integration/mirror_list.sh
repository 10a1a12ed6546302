#!/usr/bin/env bash
# mirror_list.sh - `mirror` of a list spanning the plain, TLS and token
# registries: every good entry lands in the store and verifies, two bad
# entries (missing tag, missing repository) and a malformed line are
# reported with their causes (exit 1), and a rerun with nothing changed
# costs exactly one HEAD per tag entry and no GET at all.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/mirror-list-$$

# Our own copies of the fixtures, so the access logs count only this test.
names=()
for key in $(fixture_keys); do
  case $key in private/*) continue ;; esac
  name=${key#fixtures/}
  skopeo copy -q --all --src-tls-verify=false --dest-tls-verify=false \
    "docker://$LAB_PLAIN/$key:v1" "docker://$LAB_PLAIN/$NS/$name:v1"
  names+=("$name")
done
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
  "docker://$LAB_PLAIN/private/secret:v1" "docker://$LAB_PLAIN/private/$NS/secret:v1"

cat > config.json <<JSON
{"registries": {
  "$LAB_PLAIN": {"insecure": true},
  "$LAB_TOKEN": {"insecure": true, "username": "$LAB_USER", "password": "$LAB_PASS"},
  "$LAB_TLS": {"ca_cert": "$LAB_CA"}
}}
JSON
{
  echo "# every fixture through three registries"
  for n in "${names[@]}"; do
    echo "$LAB_PLAIN/$NS/$n:v1"
    echo "$LAB_TLS/$NS/$n:v1"
    echo "$LAB_TOKEN/$NS/$n:v1   # token auth"
  done
  echo "$LAB_TOKEN/private/$NS/secret:v1"
  echo
  echo "$LAB_PLAIN/$NS/multilayer:no-such-tag"
  echo "$LAB_PLAIN/$NS/no-such-repo:v1"
  echo "$LAB_PLAIN/$NS/Not_Valid:v1"
} > list.txt
entries=$(grep -cv '^#\|^$' list.txt)

expect_status 1 "$OCCYSTRAP" --config config.json --json-file report.json --progress plain mirror list.txt store
$PY - report.json "$entries" <<'PY' || fail "report check"
import json, sys
r = json.load(open(sys.argv[1]))
entries = int(sys.argv[2])
t = r["totals"]
assert t["entries"] == entries, t
assert t["failed"] == 3, t
assert t["fetched"] == entries - 3, t
bad = {e["line"]: e for e in r["entries"] if e["status"] == "failed"}
kinds = sorted((e["reference"].rsplit("/", 1)[1], e["error_kind"]) for e in bad.values())
assert kinds == [("Not_Valid:v1", "malformed input"), ("multilayer:no-such-tag", "not found"),
                 ("no-such-repo:v1", "not found")], kinds
for e in bad.values():
    assert e["error"], e
for e in r["entries"]:
    if e["status"] != "failed":
        assert e["digest"].startswith("sha256:") and e["platforms"], e
PY
ok "first run: $((entries - 3)) entries mirrored, 3 failures reported with their causes (exit 1)"

# every good entry is in the catalog, and the store verifies
$PY - store/catalog.json "$LAB_PLAIN" "$LAB_TLS" "$LAB_TOKEN" "$NS" "${names[@]}" <<'PY' || fail "catalog check"
import json, sys
cat = json.load(open(sys.argv[1]))
regs, ns, names = sys.argv[2:5], sys.argv[5], sys.argv[6:]
for reg in regs:
    for n in names:
        assert cat["%s/%s/%s" % (reg, ns, n)]["v1"], (reg, n)
assert cat["%s/private/%s/secret" % (regs[2], ns)]["v1"]
PY
expect_status 0 "$OCCYSTRAP" verify store
ok "catalog lists every good entry; verify passes"

# each image comes back out of the store as a tarball skopeo accepts
expect_status 0 "$OCCYSTRAP" recreate-image store "$LAB_TLS/$NS/multilayer" v1 out.tar
$PY "$CHECK_TARBALL" out.tar "$LAB_FIXTURES" fixtures/multilayer "" "$LAB_TLS/$NS/multilayer:v1" >/dev/null ||
  fail "recreated tarball"
ok "recreate-image of a mirrored image passes the tarball oracle"

# rerun with nothing changed: one HEAD per tag entry, no GET but for the two
# missing tags, whose HEAD 404 is confirmed by a GET (a proxy may answer HEAD
# with 404 where GET works: DESIGN 4.1)
for log in "$LAB_LOG_PLAIN" "$LAB_LOG_TLS" "$LAB_LOG_TOKEN"; do wc -l < "$log"; done > before.txt
start=$(date +%s%N)
expect_status 1 "$OCCYSTRAP" --config config.json --progress none mirror list.txt store
end=$(date +%s%N)
i=0
heads=0
for log in "$LAB_LOG_PLAIN" "$LAB_LOG_TLS" "$LAB_LOG_TOKEN"; do
  i=$((i + 1))
  from=$(sed -n "${i}p" before.txt)
  tail -n +"$((from + 1))" "$log" | grep -F "/$NS/" > "new-$i.log" || true
  if grep '"GET ' "new-$i.log" | grep -v '/no-such-' >/dev/null; then
    cat "new-$i.log" >&2
    fail "the rerun sent a GET to $log"
  fi
  # the bearer registry answers the first request of a run with its 401
  # challenge (one per registry, the rest wait for it): not a tag's HEAD
  unauth=$(grep -c '"HEAD [^"]*" 401 ' "new-$i.log" || true)
  [ "$unauth" -le 1 ] || fail "$unauth HEADs answered 401 by $log, at most one wanted"
  heads=$((heads + $(grep '"HEAD ' "new-$i.log" | grep -vc '" 401 ' || true)))
done
# the two failing tag entries are asked again too (one HEAD each)
want=$((entries - 1))
[ "$heads" = "$want" ] || fail "the rerun sent $heads HEADs, wanted one per tag entry ($want)"
gets=$(cat new-*.log | grep -c '"GET .*/no-such-.*" 404 ' || true)
[ "$gets" = 2 ] || fail "the two missing tags were confirmed with $gets GETs, wanted 2"
ok "rerun: $heads HEAD requests (one per tag entry), no GET but the 2 that confirm a 404, $(( (end - start) / 1000000 )) ms for $entries entries"
finish
