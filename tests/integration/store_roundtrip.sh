#!/usr/bin/env bash
# store_roundtrip.sh - the store as a hub, end to end with the store mirror
# itself wrote (the push and serve tests build their layouts with a helper):
# every lab fixture mirrored (exact bytes by default, every platform of the
# index) into one store, then
#  1. pushed from the store into the empty push registry: for every tag the
#     target's manifest digest equals the source registry's (both read with
#     `skopeo inspect --raw` + sha256sum), and `skopeo copy` from the target
#     to oci: verifies every blob;
#  2. served by `occystrap serve` from the same store: for every tag the
#     digest skopeo reads from serve equals the source's, and skopeo copies
#     the image out of serve (verifying every blob).
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"

printf '{"registries": {"%s": {"insecure": true}, "%s": {"insecure": true}}}\n' \
  "$LAB_PLAIN" "$LAB_PUSH_PLAIN" >lab.json
printf '{"default": [{"type": "insecureAcceptAnything"}]}\n' >policy.json
mapfile -t refs < <(fixture_refs)
for r in "${refs[@]}"; do echo "$LAB_PLAIN/$r"; done >list.txt
STORE="$WORK_DIR/store"
expect_status 0 "$OCCYSTRAP" --config lab.json --progress none -q --platform all mirror list.txt "$STORE"
expect_status 0 "$OCCYSTRAP" -q verify "$STORE"
ok "${#refs[@]} fixtures mirrored with their exact bytes; verify passes"

digest_of() { # DOCKER-REF: the manifest digest skopeo reads
  skopeo --policy policy.json inspect --raw --tls-verify=false "docker://$1" | sha256sum | cut -d' ' -f1
}

PREFIX="roundtrip-$$"
expect_status 0 "$OCCYSTRAP" --config lab.json --progress none -q push "$STORE" "$LAB_PUSH_PLAIN/$PREFIX"
for r in "${refs[@]}"; do
  want=$(digest_of "$LAB_PLAIN/$r")
  got=$(digest_of "$LAB_PUSH_PLAIN/$PREFIX/$r")
  [ "$got" = "$want" ] || fail "pushed $r: digest sha256:$got, the source's sha256:$want"
  skopeo --policy policy.json copy -q --all --src-tls-verify=false "docker://$LAB_PUSH_PLAIN/$PREFIX/$r" \
    "oci:$WORK_DIR/pushed-copy:${r//\//-}" >/dev/null 2>"$WORK_DIR/skopeo.err" ||
    { cat "$WORK_DIR/skopeo.err"; fail "skopeo copy of the pushed $r"; }
done
ok "push from the mirrored store: every tag's digest in the target is the source's; skopeo verifies every blob"

start_serve rt "$STORE"
for r in "${refs[@]}"; do
  want=$(digest_of "$LAB_PLAIN/$r")
  got=$(digest_of "$SERVE_ADDR/$r")
  [ "$got" = "$want" ] || fail "served $r: digest sha256:$got, the source's sha256:$want"
  skopeo --policy policy.json copy -q --all --src-tls-verify=false "docker://$SERVE_ADDR/$r" \
    "oci:$WORK_DIR/served-copy:${r//\//-}" >/dev/null 2>"$WORK_DIR/skopeo.err" ||
    { cat "$WORK_DIR/skopeo.err"; fail "skopeo copy of the served $r"; }
done
stop_serve
ok "serve of the mirrored store: every tag with the source's digest; skopeo verifies every blob"
finish
