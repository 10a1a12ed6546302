#!/usr/bin/env bash
# store_readonly.sh - a store on a read-only file system and a store on a
# full one (small tmpfs mounts; the tests run as root, so permissions alone
# would not stop a write). A fetch into either fails with a clear error
# naming the store and the cause, and leaves the store exactly as it was
# (every path, size and SHA-256 compared); reading the read-only store
# (recreate-image, export, list, verify) still works, gc fails cleanly.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/store_lib.sh"

MOUNTS=()
cleanup() {
  local m
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  stop_proxies
}
trap cleanup EXIT
mount_tmpfs() { # DIR SIZE
  mkdir -p "$1"
  mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" || fail "cannot mount a tmpfs on $1 (needs root)"
  MOUNTS+=("$1")
}

IMAGES="$WORK_DIR/images.json"
push_images "$IMAGES" --layer small1=20000 --layer small2=30000 --layer big=3000000 \
  "$NS/small:v1=small1,small2" "$NS/other:v1=small1" "$NS/big:v1=small1,big"

# ---- read-only ----
RO="$WORK_DIR/ro"
mount_tmpfs "$RO" 64m
STORE="$RO/store"
expect_status 0 "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$NS/small" v1 "$STORE"
mount -o remount,ro "$RO" || fail "cannot remount $RO read-only"
touch "$STORE/probe" 2>/dev/null && fail "$STORE is still writable"
before=$(snapshot "$STORE")

expect_status 1 "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$NS/other" v1 "$STORE"
expect_stderr "store $STORE"
expect_stderr "Read-only file system"
[ "$(wc -l <"$WORK_DIR/last.err")" = 1 ] || { cat "$WORK_DIR/last.err"; fail "more than one line of error"; }
[ "$(snapshot "$STORE")" = "$before" ] || fail "the failed fetch changed the read-only store"
ok "fetch into a read-only store: one clear error ($(cut -c1-90 "$WORK_DIR/last.err")...), store unchanged"

expect_status 0 "$OCCYSTRAP" recreate-image "$STORE" "$NS/small" v1 small.tar
$PY "$CHECK_TARBALL" small.tar "$IMAGES" "$NS/small" >/dev/null || fail "tarball from the read-only store rejected"
expect_status 0 "$OCCYSTRAP" export "$STORE" both.tar "$NS/small:v1"
expect_status 0 "$OCCYSTRAP" verify "$STORE"
"$OCCYSTRAP" list "$STORE" >/dev/null || fail "list of the read-only store failed"
expect_status 1 "$OCCYSTRAP" gc "$STORE"
expect_stderr "Read-only file system"
expect_status 1 "$OCCYSTRAP" recreate-image "$STORE" "$NS/small" v1 "$STORE/inside.tar"
expect_stderr "Read-only file system"
[ "$(snapshot "$STORE")" = "$before" ] || fail "reading the read-only store changed it"
ok "read-only store: recreate-image, export, verify and list work; gc and a TARFILE inside fail cleanly"

# ---- full disk ----
FULL="$WORK_DIR/full"
mount_tmpfs "$FULL" 1m
STORE="$FULL/store"
expect_status 0 "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$NS/small" v1 "$STORE"
before=$(snapshot "$STORE")
expect_status 1 "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$NS/big" v1 "$STORE"
expect_stderr "No space left on device"
expect_stderr "$(layer_digest "$IMAGES" "$NS/big" big)"
[ "$(wc -l <"$WORK_DIR/last.err")" = 1 ] || { cat "$WORK_DIR/last.err"; fail "more than one line of error"; }
[ "$(snapshot "$STORE")" = "$before" ] || { diff <(echo "$before") <(snapshot "$STORE"); fail "the failed fetch changed the full store"; }
expect_status 0 "$OCCYSTRAP" verify "$STORE"
ok "fetch into a full store: one clear error naming the layer and ENOSPC, store unchanged, verify passes"

# A tarball that does not fit: no partial TARFILE, nothing left beside it.
expect_status 0 "$OCCYSTRAP" recreate-image "$STORE" "$NS/small" v1 "$FULL/small.tar"
dd if=/dev/zero of="$FULL/filler" bs=64k count=100 status=none 2>/dev/null || true
expect_status 1 "$OCCYSTRAP" recreate-image "$STORE" "$NS/small" v1 "$FULL/again.tar"
expect_stderr "No space left on device"
[ ! -e "$FULL/again.tar" ] || fail "a partial TARFILE was left on the full disk"
for f in "$FULL"/.tmp-*; do [ -e "$f" ] && fail "a temporary was left beside TARFILE: $f"; done
[ "$(snapshot "$STORE")" = "$before" ] || fail "recreate-image on a full disk changed the store"
ok "recreate-image onto a full disk: clear error, no partial TARFILE"
finish
