#!/usr/bin/env bash
# serve_runtimes.sh - container runtimes pull every lab fixture from
# `occystrap serve` and record the registry's digests: podman (as root,
# private --root/--runroot, vfs storage, a registries.conf of its own that
# marks serve insecure) and containerd (Debian's, started here with its own
# root, state, socket and config; `ctr image pull --plain-http`, unpacked
# with the native snapshotter). Both are stopped, and their directories
# removed, whatever happens. Needs root.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"
[ "$(id -u)" = 0 ] || fail "needs root (podman and containerd)"

STORE="$WORK_DIR/store"
build_store "$STORE"
start_serve runtimes "$STORE"
ok "serve started on $SERVE_URL"

# podman: everything under WORK_DIR/podman
P="$WORK_DIR/podman"
mkdir -p "$P"
cat >"$P/registries.conf" <<EOF
unqualified-search-registries = []
[[registry]]
location = "$SERVE_ADDR"
insecure = true
EOF
podman_() {
  CONTAINERS_REGISTRIES_CONF="$P/registries.conf" podman --root "$P/root" --runroot "$P/run" \
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend none "$@"
}
EXTRA_CLEANUP+=("podman_ system reset --force >/dev/null 2>&1; rm -rf '$P'")
n=0
for ref in $(fixture_refs); do
  repo=${ref%:*}
  digest=$(fixture_field "$repo" digest)
  expect_status 0 podman_ pull -q "$SERVE_ADDR/$ref" >/dev/null
  # images with one config share an image ID: look for this name's digest
  got=$(podman_ image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$SERVE_ADDR/$ref")
  grep -qx "$SERVE_ADDR/$repo@$digest" <<<"$got" || fail "podman: $ref has digests $got, wanted $digest"
  n=$((n + 1))
done
ok "podman pulled all $n fixtures from serve with the registry's digests"
podman_ system reset --force >/dev/null 2>&1 || true
rm -rf "$P"

# containerd: its own root, state, socket; nothing but the content store
# and the native snapshotter.
C="$WORK_DIR/containerd"
mkdir -p "$C"
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
containerd --config "$C/config.toml" >"$C/log" 2>&1 &
CTD_PID=$!
EXTRA_CLEANUP+=("kill $CTD_PID 2>/dev/null; wait $CTD_PID 2>/dev/null; rm -rf '$C'")
for i in $(seq 100); do
  [ -S "$C/containerd.sock" ] && ctr -a "$C/containerd.sock" version >/dev/null 2>&1 && break
  sleep 0.1
done
ctr -a "$C/containerd.sock" version >/dev/null 2>&1 || fail "containerd did not start: $(tail -5 "$C/log")"
n=0
for ref in $(fixture_refs); do
  repo=${ref%:*}
  digest=$(fixture_field "$repo" digest)
  expect_status 0 ctr -a "$C/containerd.sock" image pull --plain-http --snapshotter native \
    "$SERVE_ADDR/$ref" >/dev/null
  got=$(ctr -a "$C/containerd.sock" image ls | awk -v r="$SERVE_ADDR/$ref" '$1 == r {print $3}')
  [ "$got" = "$digest" ] || fail "ctr: $ref has '$got', wanted $digest"
  n=$((n + 1))
done
ok "containerd (ctr image pull --plain-http) pulled all $n fixtures from serve with the registry's digests"
kill "$CTD_PID"
wait "$CTD_PID" 2>/dev/null || true
rm -rf "$C"

stop_serve
ok "serve stopped on SIGTERM (exit 0)"
finish
