# shellcheck shell=bash
# store_lib.sh - helpers for the store tests (sourced after common.sh).
#
# Every store test pushes its own images under scratch/store-<test>-<nonce>/
# with fresh random layers (store_images.py), so the blob digests it counts
# in the registry's access log belong to it alone, whatever other tests run
# beside it against the same lab.

STORE_IMAGES="$TESTS_DIR/integration/lib/store_images.py"
# shellcheck disable=SC2034 # used by the scripts that source this
NS="scratch/$(basename "$0" .sh | tr _ -)-$$-$RANDOM"

# push_images JSON ARGS...: store_images.py against the plain instance.
push_images() {
  local out=$1
  shift
  $PY "$STORE_IMAGES" "$LAB_PLAIN" "$out" "$@" || fail "pushing test images failed"
}

# layer_digest JSON REPO NAME: the blob digest of layer NAME of REPO.
layer_digest() {
  $PY -c 'import json,sys
fx = json.load(open(sys.argv[1]))["fixtures"][sys.argv[2]]
print([l["digest"] for l in fx["layers"] if l["name"] == sys.argv[3]][0])' "$1" "$2" "$3"
}

config_digest() {
  $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["fixtures"][sys.argv[2]]["config"]["digest"])' "$1" "$2"
}

# count_gets DIGEST [LOG]: blob GETs of DIGEST in an access log (the
# registry writes a line just after the response: wait a moment first).
count_gets() {
  local log=${2:-$LAB_LOG_PLAIN}
  sleep 0.3
  grep -c "\"GET /v2/[^ ]*/blobs/$1 " "$log" || true
}

# snapshot DIR: every path under DIR with its type, size and SHA-256 (for
# "the store is unchanged" checks).
snapshot() {
  (cd "$1" && find . -printf '%y %s %p\n' | sort -k3 | while read -r type size path; do
    if [ "$type" = f ]; then
      echo "$type $size $path $(sha256sum "$path" | cut -d' ' -f1)"
    else
      echo "$type - $path"
    fi
  done)
}

# tmp_is_empty STORE: no scratch left behind.
tmp_is_empty() {
  [ -z "$(ls -A "$1/.tmp" 2>/dev/null)" ]
}

# catalog_entries STORE: "image:tag=file" lines of catalog.json, sorted.
catalog_entries() {
  $PY -c 'import json,sys
c = json.load(open(sys.argv[1] + "/catalog.json"))
for i in sorted(c):
    for t in sorted(c[i]):
        print("%s:%s=%s" % (i, t, c[i][t]))' "$1"
}

# same_members A.tar B.tar: both tarballs hold the same members in the same
# order with the same bytes.
same_members() {
  $PY - "$1" "$2" <<'EOF'
import sys, tarfile
def members(path):
    with tarfile.open(path) as tf:
        return [(m.name, m.type, tf.extractfile(m).read() if m.isfile() else b"") for m in tf]
a, b = members(sys.argv[1]), members(sys.argv[2])
if [m[:2] for m in a] != [m[:2] for m in b]:
    sys.exit("members differ: %s vs %s" % ([m[0] for m in a], [m[0] for m in b]))
for x, y in zip(a, b):
    if x[2] != y[2]:
        sys.exit("member %s differs" % x[0])
EOF
}
