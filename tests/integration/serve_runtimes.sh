#!/usr/bin/env bash
# serve_runtimes.sh - container runtimes pull every lab fixture from
# `occystrap serve` and record the registry's digests: podman (as root,
# private --root/--runroot, vfs storage, a registries.conf of its own that
# marks serve insecure) and containerd (Debian's, started here with its own
# root, state, socket and config; `ctr image pull --plain-http`, unpacked
# with the native snapshotter). Then the air-gap set-up of the README: each
# runtime asks for an image of a registry that cannot be reached
# (127.0.0.1:1) and is pointed at serve as its mirror (podman's
# registries.conf [[registry.mirror]], containerd's hosts.toml; with
# --keep-host, hosts.toml's override_path), and gets it from serve. Both
# are stopped, and their directories removed, whatever happens. Needs root.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"
[ "$(id -u)" = 0 ] || fail "needs root (podman and containerd)"

STORE="$WORK_DIR/store"
build_store "$STORE"
start_serve runtimes "$STORE"
ok "serve started on $SERVE_URL"

# podman: everything in a directory of its own (short: podman refuses a
# runroot path longer than 50 characters)
P=$(mktemp -d /tmp/occy-podman-XXXXXX)
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
# serve as the mirror of a registry that cannot be reached
cat >"$P/registries.conf" <<EOF
unqualified-search-registries = []
[[registry]]
location = "127.0.0.1:1"
insecure = true
[[registry.mirror]]
location = "$SERVE_ADDR"
insecure = true
EOF
MP=$(fixture_field fixtures/multiplatform digest)
expect_status 0 podman_ pull -q 127.0.0.1:1/fixtures/multiplatform:v1 >/dev/null
got=$(podman_ image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' 127.0.0.1:1/fixtures/multiplatform:v1)
grep -qx "127.0.0.1:1/fixtures/multiplatform@$MP" <<<"$got" || fail "podman through the mirror: $got"
ok "podman with serve as [[registry.mirror]] of an unreachable registry: the index's digest"
podman_ system reset --force >/dev/null 2>&1 || true
rm -rf "$P"

# containerd: its own root, state, socket; nothing but the content store
# and the native snapshotter.
C=$(mktemp -d /tmp/occy-ctd-XXXXXX) # short: unix socket paths are limited
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
# hosts.toml: serve as the mirror of a registry that cannot be reached
mkdir -p "$C/hosts/127.0.0.1:1"
cat >"$C/hosts/127.0.0.1:1/hosts.toml" <<EOF
server = "http://127.0.0.1:1"
[host."http://$SERVE_ADDR"]
  capabilities = ["pull", "resolve"]
EOF
ML=$(fixture_field fixtures/multilayer digest)
expect_status 0 ctr -a "$C/containerd.sock" image pull --hosts-dir "$C/hosts" --snapshotter native \
  127.0.0.1:1/fixtures/multilayer:v1 >/dev/null
got=$(ctr -a "$C/containerd.sock" image ls | awk '$1 == "127.0.0.1:1/fixtures/multilayer:v1" {print $3}')
[ "$got" = "$ML" ] || fail "ctr through hosts.toml: '$got'"
ok "containerd with serve as the hosts.toml mirror of an unreachable registry: the registry's digest"
stop_serve

# --keep-host: the repository names keep their registry, and hosts.toml's
# override_path sends a registry's requests to its part of serve
start_serve keephost "$STORE" --keep-host
[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/v2/$LAB_PLAIN/fixtures/zstd/manifests/v1")" = 200 ] ||
  fail "--keep-host does not serve $LAB_PLAIN/fixtures/zstd"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/v2/fixtures/zstd/manifests/v1")" = 404 ] ||
  fail "--keep-host still serves fixtures/zstd"
cat >"$C/hosts/127.0.0.1:1/hosts.toml" <<EOF
server = "http://127.0.0.1:1"
[host."http://$SERVE_ADDR/v2/$LAB_PLAIN"]
  capabilities = ["pull", "resolve"]
  override_path = true
EOF
expect_status 0 ctr -a "$C/containerd.sock" image pull --hosts-dir "$C/hosts" --snapshotter native \
  127.0.0.1:1/fixtures/zstd:v1 >/dev/null
got=$(ctr -a "$C/containerd.sock" image ls | awk '$1 == "127.0.0.1:1/fixtures/zstd:v1" {print $3}')
[ "$got" = "$(fixture_field fixtures/zstd digest)" ] || fail "ctr through override_path: '$got'"
grep -q " /v2/$LAB_PLAIN/fixtures/zstd/manifests/v1?ns=127.0.0.1%3A1 HTTP/1.1\" 200 .*containerd" "$SERVE_OUT" ||
  fail "serve did not see containerd's keep-host request"
ok "--keep-host: $LAB_PLAIN/fixtures/zstd served under its registry's name, pulled by containerd through override_path"
stop_serve
kill "$CTD_PID"
wait "$CTD_PID" 2>/dev/null || true
rm -rf "$C"
ok "serve stopped on SIGTERM (exit 0)"
finish
