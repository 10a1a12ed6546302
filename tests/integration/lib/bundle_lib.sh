# bundle_lib.sh - sourced by the bundle tests after common.sh: images of
# their own pushed to the lab, a store mirrored from it, a store's file
# listing to compare before and after, and serve started and stopped by pid.
BUNDLE_TOOL="$TESTS_DIR/integration/lib/bundle_tool.py"
STORE_IMAGES="$TESTS_DIR/integration/lib/store_images.py"
echo "{\"registries\": {\"$LAB_PLAIN\": {\"insecure\": true}}}" >"$WORK_DIR/mirror.json"

# mirror_into STORE REF...: the lab's REF (REPO:TAG) into STORE
mirror_into() {
  local store=$1 r
  shift
  : >"$WORK_DIR/mirror.list"
  for r in "$@"; do echo "$LAB_PLAIN/$r" >>"$WORK_DIR/mirror.list"; done
  "$OCCYSTRAP" -q --progress none --config "$WORK_DIR/mirror.json" mirror "$WORK_DIR/mirror.list" \
    "$store" 2>"$WORK_DIR/mirror.err" || {
    cat "$WORK_DIR/mirror.err" >&2
    fail "mirror into $store failed"
  }
}

# store_listing STORE [--with-stage]: every file (SHA-256 and path) and
# directory of STORE, but .tmp (a writer's scratch) and, unless asked,
# .occystrap/import (an incomplete import's verified files)
store_listing() {
  local store=$1 stage=${2:-}
  (
    cd "$store"
    local prune=(-path ./.tmp -prune)
    [ "$stage" = --with-stage ] || prune+=(-o -path ./.occystrap/import -prune)
    find . "${prune[@]}" -o -type f -print0 | sort -z | xargs -0r sha256sum
    find . "${prune[@]}" -o -print | sort
  )
}

# expect_unchanged STORE BEFORE [--with-stage]: the listing is BEFORE's and
# verify passes
expect_unchanged() {
  store_listing "$1" "${3:-}" >"$WORK_DIR/after.listing"
  diff "$2" "$WORK_DIR/after.listing" >&2 || fail "$1 changed"
  "$OCCYSTRAP" -q verify "$1" >/dev/null 2>"$WORK_DIR/verify.err" || {
    cat "$WORK_DIR/verify.err" >&2
    fail "verify $1 fails"
  }
}

# registry_digest REPO TAG: what the lab's tag names now
registry_digest() {
  curl -sfI -H "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json" \
    "http://$LAB_PLAIN/v2/$1/manifests/$2" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}

# move_tag REPO FROM TO: the lab's REPO:TO names what REPO:FROM names
move_tag() {
  local mt=application/vnd.docker.distribution.manifest.v2+json
  curl -sf -H "Accept: $mt" "http://$LAB_PLAIN/v2/$1/manifests/$2" -o "$WORK_DIR/moved.json" ||
    fail "GET $1:$2"
  curl -sf -X PUT -H "Content-Type: $mt" --data-binary "@$WORK_DIR/moved.json" \
    "http://$LAB_PLAIN/v2/$1/manifests/$3" -o /dev/null || fail "PUT $1:$3"
}

SERVE_PIDS=()
bundle_cleanup() {
  local p
  for p in "${SERVE_PIDS[@]+"${SERVE_PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${SERVE_PIDS[@]+"${SERVE_PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
  stop_proxies
}
trap bundle_cleanup EXIT

# serve_digest STORE REPO TAG: what `occystrap serve STORE` answers for
# REPO:TAG (Docker-Content-Digest of a HEAD); serve stopped after
serve_digest() {
  local err="$WORK_DIR/serve.err" line="" i
  : >"$err"
  "$OCCYSTRAP" serve --listen 127.0.0.1:0 "$1" >"$WORK_DIR/serve.out" 2>"$err" &
  local pid=$!
  SERVE_PIDS+=("$pid")
  for i in $(seq 200); do
    line=$(sed -n 's|^occystrap: serving .* on http://\(.*\)/$|\1|p' "$err") || true
    [ -n "$line" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$line" ] || { cat "$err" >&2; fail "serve $1 did not start"; }
  curl -sfI -H "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json" \
    "http://$line/v2/$2/manifests/$3" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
  kill -TERM "$pid"
  wait "$pid" || fail "serve $1 did not stop cleanly"
}
