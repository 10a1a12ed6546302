#!/usr/bin/env bash
# mirror_tags.sh - whole repositories in LIST, through a proxy that pages
# tag lists at 100 (tests/lab/tagpager.py; the lab's registry does not page):
#  - REPO:* over 250 tags: three pages asked for, all 250 mirrored, verify;
#    with the config's tags_page_size 50: five pages (n=50 sent);
#  - REPO:/REGEX/ selects exactly the tags Python's re.fullmatch selects;
#  - the config's semver range, exclude and latest: 3 select the expected
#    tags (--dry-run prints them and fetches nothing);
#  - a repository whose tag list cannot be read fails like an entry, and the
#    other entries complete.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/tags-$$-$RANDOM

# 250 tags t000..t249 in one repository, and a repository of version tags
$PY "$TESTS_DIR/lab/push_many.py" "$LAB_PLAIN" --prefix "$NS/many" --tags 250 --tag-format 't%03d'
VERSIONS="1.0.0,1.1.0,1.2.0,1.2.5,1.3.0-rc.1,1.3.0,1.10.0,2.0.0,2.1.0,latest,v1.4,1.2.0-alpine,edge"
$PY "$TESTS_DIR/lab/push_many.py" "$LAB_PLAIN" --prefix "$NS/versions" --tag-names "$VERSIONS"

PAGER_LOG=$WORK_DIR/pager.log
$PY "$TESTS_DIR/lab/tagpager.py" --upstream "$LAB_PLAIN" --page-size 100 \
  --port-file "$WORK_DIR/pager.port" --log "$PAGER_LOG" &
PROXY_PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK_DIR/pager.port" ] && break; sleep 0.05; done
[ -s "$WORK_DIR/pager.port" ] || fail "tagpager did not start"
P=127.0.0.1:$(cat "$WORK_DIR/pager.port")
printf '{"registries": {"%s": {"insecure": true}}}\n' "$P" > config.json
mirror() { "$OCCYSTRAP" --config config.json --progress plain "$@"; }
# tags_of REPORT: the tags of the entries in a JSON report, sorted
tags_of() { jq -r '.entries[].reference' "$1" | sed 's/.*://' | sort; }

# --- REPO:* over 250 tags, pages of 100
echo "$P/$NS/many:*" > all.txt
: > "$PAGER_LOG"
expect_status 0 mirror --json-file all.json mirror all.txt store
pages=$(grep -c "GET /v2/$NS/many/tags/list" "$PAGER_LOG" || true)
[ "$pages" = 3 ] || { cat "$PAGER_LOG" | grep tags; fail "asked for $pages pages of tags, wanted 3"; }
grep -q "tags/list?n=100&last=t099 " "$PAGER_LOG" || fail "the second page was not asked for as the Link said"
[ "$(jq .totals.fetched all.json)" = 250 ] || fail "mirrored $(jq .totals.fetched all.json) of 250"
[ "$(jq --arg r "$P/$NS/many" '.[$r] | length' store/catalog.json)" = 250 ] || fail "the catalog lacks tags"
seq -f 't%03g' 0 249 > want-all.txt
diff <(tags_of all.json) want-all.txt >/dev/null || fail "the tags mirrored are not t000..t249"
expect_status 0 "$OCCYSTRAP" -q verify store
ok "REPO:* over 250 tags in pages of 100: 3 pages, all 250 mirrored, verify passes"

printf '{"registries": {"%s": {"insecure": true, "tags_page_size": 50}}}\n' "$P" > config50.json
: > "$PAGER_LOG"
expect_status 0 "$OCCYSTRAP" --config config50.json --progress none --dry-run --json-file all50.json \
  mirror all.txt store
pages=$(grep -c "GET /v2/$NS/many/tags/list?n=50" "$PAGER_LOG" || true)
[ "$pages" = 5 ] || fail "with tags_page_size 50: $pages pages, wanted 5"
[ "$(jq .totals.up_to_date all50.json)" = 250 ] || fail "the dry run did not see 250 tags up to date"
ok "tags_page_size 50: n=50 sent, 5 pages"

# --- REPO:/REGEX/: the same tags as an anchored match in Python
RE='t1[0-4][05]|t2.*9'
echo "$P/$NS/many:/$RE/" > re.txt
expect_status 0 mirror --dry-run --json-file re.json mirror re.txt store2
$PY -c 'import re, sys
for t in sys.stdin.read().split():
    if re.fullmatch(sys.argv[1], t): print(t)' "$RE" < want-all.txt | sort > want-re.txt
[ -s want-re.txt ] || fail "the regex oracle selected nothing"
diff <(tags_of re.json) want-re.txt || fail "the regex selected other tags than re.fullmatch"
grep -q "$(wc -l < want-re.txt) of 250 tags selected" "$WORK_DIR/last.err" || fail "no 'N of 250 tags selected' line"
[ "$(jq .totals.would_fetch re.json)" = "$(wc -l < want-re.txt)" ] || fail "dry run: not every selected tag would be fetched"
[ ! -e store2/catalog.json ] || fail "the dry run wrote a catalog"
ok "REPO:/$RE/ selects exactly the $(wc -l < want-re.txt) tags re.fullmatch selects (dry run)"

# --- semver range, exclude, latest (config per repository)
cat > semver.json <<JSON
{"registries": {"$P": {"insecure": true}},
 "repositories": {"$P/$NS/versions": {"semver": ">=1.2 <2"}}}
JSON
echo "$P/$NS/versions:*" > versions.txt
expect_status 0 "$OCCYSTRAP" --config semver.json --progress none --json-file semver.out.json \
  mirror versions.txt store3
printf '%s\n' 1.10.0 1.2.0 1.2.5 1.3.0 v1.4 | sort > want-semver.txt
diff <(tags_of semver.out.json) want-semver.txt || fail "semver >=1.2 <2 selected other tags"
[ "$(jq .totals.fetched semver.out.json)" = 5 ] || fail "semver: not 5 images fetched"
ok "semver \">=1.2 <2\": 1.2.0 1.2.5 1.3.0 1.10.0 v1.4 (no prerelease, no 2.x)"

cat > latest.json <<JSON
{"registries": {"$P": {"insecure": true}},
 "repositories": {"$P/$NS/versions": {"exclude": [".*-.*"], "latest": 3}}}
JSON
echo "$P/$NS/versions:/[0-9].*/" > latest.txt
expect_status 0 "$OCCYSTRAP" --config latest.json --progress none --dry-run --json-file latest.out.json \
  mirror latest.txt store4
printf '%s\n' 1.10.0 2.0.0 2.1.0 | sort > want-latest.txt
diff <(tags_of latest.out.json) want-latest.txt || fail "latest: 3 kept other tags"
ok "latest: 3 (exclude prereleases) keeps 1.10.0 2.0.0 2.1.0"

# --- a repository whose tags cannot be listed fails like an entry
printf '%s\n' "$P/$NS/missing:*" "$P/$NS/versions:latest" > bad.txt
expect_status 1 mirror --json-file bad.json mirror bad.txt store5
expect_stderr "FAILED  $P/$NS/missing:\* (line 1)"
expect_stderr "not found"
[ "$(jq .totals.failed bad.json)" = 1 ] || fail "the missing repository is not one failed entry"
[ "$(jq .totals.fetched bad.json)" = 1 ] || fail "the other entry did not complete"
ok "a repository that does not exist: one FAILED entry, the others complete"
finish
