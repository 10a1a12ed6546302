#!/usr/bin/env bash
# fetch_corrupt_storage.sh - a blob altered in the registry's own storage (one
# byte flipped, size unchanged): fetch-to-tarfile exits non-zero, the error
# names the blob's digest and shows the hash the bytes really have, and no
# TARFILE (nor any scratch file) is left. The same for mirror: the entry
# fails and the store still verifies.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/corrupt-storage-$$
$PY "$TESTS_DIR/integration/lib/mkimage.py" "$LAB_PLAIN" "$NS/victim:v1" "$NS-a:500000" "$NS-b:2000" > img.txt
victim=$(sed -n 2p img.txt | cut -d' ' -f2)
hex=${victim#sha256:}
data="$LAB_STORAGE/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
[ -f "$data" ] || fail "blob $victim not found in the registry storage"
$PY - "$data" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(250000)
    b = f.read(1)
    f.seek(250000)
    f.write(bytes([b[0] ^ 0x01]))
PY
expect_status 1 "$OCCYSTRAP" --insecure fetch-to-tarfile "$LAB_PLAIN" "$NS/victim" v1 out.tar
expect_stderr "$victim"
expect_stderr "mismatch"
expect_stderr "$NS/victim:v1"
[ ! -e out.tar ] || fail "a TARFILE was left after the digest mismatch"
if ls -a | grep -q '\.occy-'; then fail "scratch left behind"; fi
ok "altered blob in registry storage: exit 1, error names $victim, no TARFILE"

printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" > config.json
echo "$LAB_PLAIN/$NS/victim:v1" > list.txt
expect_status 1 "$OCCYSTRAP" --config config.json --progress plain mirror list.txt store
expect_stderr "$victim"
[ ! -e "store/$hex" ] || fail "the altered layer reached the store"
expect_status 0 "$OCCYSTRAP" verify store
ok "mirror: the entry fails naming the blob, nothing unverified in the store"
finish
