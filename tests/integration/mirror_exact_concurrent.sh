#!/usr/bin/env bash
# mirror_exact_concurrent.sh - writers at once into one store never lose an
# entry of its oci/index.json (issue 13: skopeo's own users report lost
# entries when two copies write one OCI layout).
#
# 48 OCI images (push_many.py --oci: two shared layers each, a config of
# their own) in two repositories, served through a fault proxy that holds
# every blob 0.3 s, two requests at a time per process, so the writers
# overlap and each writes index.json in several batches (the shared layers
# are in the store before, so the entries end one by one): two mirrors of different halves of the list at once (the
# shards 1/2 and 2/2 of the whole list, the way several mirrors share one
# store), and beside them two fetch-to-extracted --use-unique-names --exact
# processes of two more images of the lab. Then `skopeo inspect
# oci:STORE/oci:REF` for every image of all four: all present, with the
# digest the registry gives; fault_check.py finds every entry's blobs in
# place and verify passes.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/exact-conc-$$-$RANDOM
$PY "$TESTS_DIR/lab/push_many.py" "$LAB_PLAIN" --prefix "$NS" --repos 2 --tags 48 --layers 2 \
  --layer-bytes 20000 --oci --json pushed.json
start_proxy hold "/blobs/|stall=0.3|100000"
jq -r '.references[]' pushed.json | sed "s#^$LAB_PLAIN/#$PROXY/#" >list.txt
printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" >config.json
S=$WORK_DIR/store
# the shared layers first (one image), so that the entries of the shards end
# one by one as their configs arrive, and each shard writes several batches
head -1 list.txt >first.txt
"$OCCYSTRAP" --config config.json --progress none -q mirror first.txt "$S" || fail "first image"

pids=()
for k in 1 2; do
  "$OCCYSTRAP" --config config.json --progress none -q --per-registry 2 --shard "$k/2" \
    --json-file "shard$k.json" \
    mirror list.txt "$S" 2>"shard$k.err" &
  pids+=($!)
done
for f in multilayer-oci links; do
  "$OCCYSTRAP" --insecure -q fetch-to-extracted --use-unique-names --exact "$PROXY" "fixtures/$f" v1 "$S" \
    2>"fetch-$f.err" &
  pids+=($!)
done
for p in "${pids[@]}"; do
  rc=0
  wait "$p" || rc=$?
  [ "$rc" = 0 ] || { cat shard*.err fetch-*.err; fail "a writer exited $rc"; }
done
writes=$(jq -s '[.[].totals.catalog_writes] | add' shard1.json shard2.json)
[ "$writes" -ge 5 ] || fail "the shards wrote the catalog (and index.json) $writes times in all: too few batches to interleave"
ok "two shards of 48 OCI images and two fetch-to-extracted --exact at once: all exit 0 ($writes batches of the shards)"

# the registry's digest of every image (its manifest's SHA-256, as served)
{ cat list.txt; printf 'fixtures/multilayer-oci:v1\nfixtures/links:v1\n'; } >refs.txt
$PY - "$LAB_PLAIN" "$PROXY" refs.txt >digests.txt <<'PYEOF'
import hashlib, sys, urllib.request
reg, proxy = sys.argv[1], sys.argv[2]
accept = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])
for ref in open(sys.argv[3]).read().split():
    name = ref[len(proxy) + 1:] if ref.startswith(proxy + "/") else ref
    repo, tag = name.rsplit(":", 1)
    req = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (reg, repo, tag),
                                 headers={"Accept": accept})
    print(ref, "sha256:" + hashlib.sha256(urllib.request.urlopen(req).read()).hexdigest())
PYEOF
n=0
while read -r ref want; do
  got=$(skopeo inspect "oci:$S/oci:$ref" 2>skopeo.err | jq -r .Digest) || true
  [ "$got" = "$want" ] || fail "skopeo inspect oci:STORE/oci:$ref: '$got', wanted $want ($(cat skopeo.err))"
  n=$((n + 1))
done <digests.txt
[ "$n" = 50 ] || fail "inspected $n images, not 50"
entries=$(jq '.manifests | length' "$S/oci/index.json")
[ "$entries" = 50 ] || fail "index.json holds $entries entries, not 50"
ok "skopeo inspect oci:STORE/oci:REF finds all 50 images of the four writers with the registry's digests"

# the oracle: every blob hashes to its name and every entry's blobs are in
# place (the images are the registry's, described by their manifests here)
$PY - "$S" <<'PYEOF' || fail "an entry of index.json reaches a blob that is not in place"
import hashlib, json, os, sys
s = sys.argv[1]
b = os.path.join(s, "oci", "blobs", "sha256")
for h in os.listdir(b):
    with open(os.path.join(b, h), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == h, h
for d in json.load(open(os.path.join(s, "oci", "index.json")))["manifests"]:
    m = json.load(open(os.path.join(b, d["digest"].split(":")[1])))
    for x in [m["config"]] + m["layers"]:
        p = os.path.join(b, x["digest"].split(":")[1])
        assert os.path.getsize(p) == x["size"], p
PYEOF
expect_status 0 "$OCCYSTRAP" verify "$S"
ok "every blob hashes to its name, every entry's blobs are in place; verify passes"
finish
