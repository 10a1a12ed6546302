#!/usr/bin/env bash
# mirror_exact.sh - the store keeps the registry's exact bytes (issue 13,
# items 1, 2 and 5): an OCI image layout in STORE/oci/, checked against the
# registry and read by real peers.
#  1. Every fixture (single and multi-platform, docker v2s2 and OCI, gzip
#     and zstd) mirrored into one store: each entry of oci/index.json names
#     the digest `skopeo inspect --raw docker://...` + sha256sum gives, with
#     the registry's media type, and its blob holds exactly those bytes;
#     fault_check.py (an independent oracle) finds every blob hashing to its
#     name and everything each entry reaches in place; the configs are one
#     inode with STORE/<hex>.json; verify passes; list says "exact".
#  2. skopeo reads it as it is: `skopeo copy oci:STORE/oci:REF oci:OUT` for
#     every OCI-typed image (skopeo verifies every blob it copies and writes
#     the same manifest); c/image resolves a ref name only when its
#     descriptor has an OCI media type, so a v2s2 image is read through a
#     one-entry layout over the store's blobs (`oci:VIEW`, no ref), copied
#     to dir: whose manifest.json must be the registry's bytes. umoci unpacks
#     the OCI gzip images by ref, and a platform of the multi-platform index
#     mirrored with --platform all (TAG+linux-arm64-v8): its /platform file.
#  3. export --format oci: one archive of every OCI-typed image, read by
#     `skopeo copy oci-archive:OUT:REF`; a one-image archive of a v2s2
#     image, read by skopeo (no ref) and `podman load` (as root, private
#     --root/--runroot, vfs), which keeps the manifest digest.
#  4. A store made with --no-exact, mirrored again: it gains the exact
#     bytes, no layer.tar is rewritten (inodes unchanged), and the registry
#     sees one HEAD and one GET per manifest and one GET per compressed
#     layer, nothing else (no config: the store's verified copy is used); a
#     third run costs one HEAD per tag. A --no-exact run that stores a tag
#     again drops its index.json entry.
#  5. verify --repair drops a damaged compressed blob and the entry that
#     reaches it; the next mirror fetches that blob alone; gc removes the
#     blobs no entry reaches.
source "$(dirname "$0")/lib/common.sh"
FAULT_CHECK="$TESTS_DIR/integration/lib/fault_check.py"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" >lab.json
mirror() { "$OCCYSTRAP" --config lab.json --progress none -q "$@"; }
field() { # KEY FIELD
  jq -r --arg k "$1" ".fixtures[\$k].$2" "$LAB_FIXTURES"
}
entry() { # STORE REF JQ-FIELD: a field of index.json's entry named REF
  jq -r --arg r "$2" ".manifests[] | select(.annotations[\"org.opencontainers.image.ref.name\"] == \$r) | $3" \
    "$1/oci/index.json"
}
mapfile -t KEYS < <(fixture_keys)
: >all.txt
for k in "${KEYS[@]}"; do printf '%s/%s:v1\n' "$LAB_PLAIN" "$k" >>all.txt; done

# ---- 1. every fixture, byte for byte
S=$WORK_DIR/store
mirror mirror all.txt "$S" || fail "mirror of every fixture failed"
n_oci=0
for k in "${KEYS[@]}"; do
  ref="$LAB_PLAIN/$k:v1"
  raw=$(skopeo inspect --raw --tls-verify=false "docker://$ref" | sha256sum | cut -c1-64)
  got=$(entry "$S" "$ref" .digest)
  [ "$got" = "sha256:$raw" ] || fail "$ref: index.json says $got, the registry's manifest hashes to sha256:$raw"
  [ "$(sha256sum <"$S/oci/blobs/sha256/$raw" | cut -c1-64)" = "$raw" ] || fail "$ref: its blob is not the registry's bytes"
  [ "$(entry "$S" "$ref" .mediaType)" = "$(field "$k" media_type)" ] || fail "$ref: media type $(entry "$S" "$ref" .mediaType)"
  [ "$(entry "$S" "$ref" .size)" = "$(field "$k" size)" ] || fail "$ref: size $(entry "$S" "$ref" .size)"
  case $(field "$k" media_type) in *oci*) n_oci=$((n_oci + 1)) ;; esac
done
ok "${#KEYS[@]} fixtures mirrored: each index.json entry names the registry's manifest digest (skopeo inspect --raw | sha256sum), media type and size"
present=()
for k in "${KEYS[@]}"; do present+=(--present "$k"); done
$PY "$FAULT_CHECK" "$S" "$LAB_FIXTURES" "$LAB_PLAIN" --exact --tmp-empty "${present[@]}" >check.out ||
  fail "fault_check: $(cat check.out)"
ok "fault_check: $(cut -c1-60 check.out)... every blob hashes to its name, every entry's blobs in place, configs one inode"
expect_status 0 "$OCCYSTRAP" verify "$S"
expect_stderr "exact bytes: "
n_exact=$("$OCCYSTRAP" list --json "$S" | jq '[.images[] | select(.exact)] | length')
[ "$n_exact" = "${#KEYS[@]}" ] || fail "list says $n_exact images have their exact bytes, not ${#KEYS[@]}"
ok "verify passes ($(grep -o 'exact bytes: [^,]*, [0-9]* index.json entries' last.err)); list --json: every image exact"

# ---- 2. skopeo and umoci read it as it is
view() { # STORE REF DIR: a one-entry layout over the store's blobs
  mkdir -p "$3"
  ln -s "$1/oci/blobs" "$3/blobs"
  cp "$1/oci/oci-layout" "$3/"
  jq --arg r "$2" '{schemaVersion: 2, manifests: [.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r)]}' \
    "$1/oci/index.json" >"$3/index.json"
}
n=0
for k in "${KEYS[@]}"; do
  ref="$LAB_PLAIN/$k:v1"
  n=$((n + 1))
  case $(field "$k" media_type) in
    *oci*)
      skopeo copy -q "oci:$S/oci:$ref" "oci:$WORK_DIR/copy$n:x" 2>skopeo.err || fail "skopeo copy oci:STORE/oci:$ref: $(cat skopeo.err)"
      want=$(field "$k" digest)
      [ "$(field "$k" format)" = index ] && want="$want $(jq -r --arg k "$k" '.fixtures[$k].manifests[] | select(.platform.architecture == "amd64") | .digest' "$LAB_FIXTURES")"
      got=$(jq -r '.manifests[0].digest' "$WORK_DIR/copy$n/index.json")
      grep -qw "$got" <<<"$want" || fail "skopeo copy of $ref wrote $got, not $want"
      ;;
    *)
      view "$S" "$ref" "$WORK_DIR/view$n"
      skopeo copy -q "oci:$WORK_DIR/view$n" "dir:$WORK_DIR/copy$n" 2>skopeo.err || fail "skopeo copy of $ref through a one-entry layout: $(cat skopeo.err)"
      [ "sha256:$(sha256sum <"$WORK_DIR/copy$n/manifest.json" | cut -c1-64)" = "$(field "$k" digest)" ] ||
        fail "skopeo read another manifest for $ref"
      ;;
  esac
done
ok "skopeo copy verified every blob: $n_oci OCI-typed images by ref (oci:STORE/oci:REF), $((${#KEYS[@]} - n_oci)) v2s2 ones through a one-entry layout (c/image resolves only OCI media types by ref)"
S_ALL=$WORK_DIR/store-all
mirror --platform all mirror <(printf '%s/fixtures/multiplatform:v1\n' "$LAB_PLAIN") "$S_ALL" || fail "mirror --platform all failed"
for k in fixtures/multilayer-oci fixtures/links fixtures/multimember; do
  umoci unpack --image "$S/oci:$LAB_PLAIN/$k:v1" "$WORK_DIR/umoci-${k#*/}" >umoci.out 2>&1 || fail "umoci unpack $k: $(tail -2 umoci.out)"
done
ptag="$LAB_PLAIN/fixtures/multiplatform:v1+linux-arm64-v8"
[ "$(entry "$S_ALL" "$ptag" .platform.architecture)" = arm64 ] || fail "no platform entry $ptag"
umoci unpack --image "$S_ALL/oci:$ptag" "$WORK_DIR/umoci-arm64" >umoci.out 2>&1 || fail "umoci unpack $ptag: $(tail -2 umoci.out)"
[ "$(cat "$WORK_DIR/umoci-arm64/rootfs/platform")" = "arm64/v8" ] || fail "umoci's arm64 rootfs has platform $(cat "$WORK_DIR/umoci-arm64/rootfs/platform")"
ok "umoci unpack by ref: multilayer-oci, links, multimember, and $ptag (its /platform says arm64/v8)"

# ---- 3. export --format oci
oci_refs=()
for k in "${KEYS[@]}"; do
  case $(field "$k" media_type) in *oci*) oci_refs+=("$LAB_PLAIN/$k:v1") ;; esac
done
expect_status 0 "$OCCYSTRAP" export --format oci "$S" all-oci.tar "${oci_refs[@]}"
for r in "${oci_refs[@]}"; do
  skopeo inspect "oci-archive:all-oci.tar:$r" >inspect.json 2>skopeo.err || fail "skopeo inspect oci-archive:all-oci.tar:$r: $(cat skopeo.err)"
done
rm -rf "$WORK_DIR/from-archive"
skopeo copy -q "oci-archive:all-oci.tar:$LAB_PLAIN/fixtures/zstd:v1" "oci:$WORK_DIR/from-archive:z" 2>skopeo.err ||
  fail "skopeo copy from the archive: $(cat skopeo.err)"
expect_status 0 "$OCCYSTRAP" export --format oci "$S" one.tar "$LAB_PLAIN/fixtures/multilayer:v1"
skopeo copy -q oci-archive:one.tar "dir:$WORK_DIR/one-dir" 2>skopeo.err || fail "skopeo copy oci-archive:one.tar: $(cat skopeo.err)"
[ "sha256:$(sha256sum <"$WORK_DIR/one-dir/manifest.json" | cut -c1-64)" = "$(field fixtures/multilayer digest)" ] ||
  fail "the v2s2 archive does not hold the registry's manifest"
expect_status 1 "$OCCYSTRAP" export --format oci "$S" none.tar "$LAB_PLAIN/fixtures/nothing:v1"
expect_stderr "has no exact bytes"
[ ! -e none.tar ] || fail "a failed export left its TARFILE"
podman_note="podman load not tried (not root)"
if [ "$(id -u)" = 0 ]; then
  PR=$(mktemp -d /tmp/occy-podman-XXXXXX)
  if podman --root "$PR/root" --runroot "$PR/run" --storage-driver vfs load -i one.tar >podman.out 2>&1; then
    got=$(podman --root "$PR/root" --runroot "$PR/run" --storage-driver vfs images --digests --format '{{.Digest}}' 2>/dev/null | head -1)
    [ "$got" = "$(field fixtures/multilayer digest)" ] || fail "podman loaded $got, not the registry's digest"
    podman_note="podman load: $(tail -1 podman.out), digest kept"
  else
    fail "podman load -i one.tar: $(tail -3 podman.out)"
  fi
  rm -rf "$PR"
fi
ok "export --format oci: ${#oci_refs[@]} OCI images in one archive read by skopeo by ref; a v2s2 image alone read by skopeo; $podman_note; an image without exact bytes: exit 1, no TARFILE"

# The rest goes through a pass-through fault proxy whose log holds this
# test's requests only (the registry's access log has other tests' too).
start_proxy pass
REG=$PROXY
printf '{"registries": {"%s": {"insecure": true}}}\n' "$REG" >proxy.json
pmirror() { "$OCCYSTRAP" --config proxy.json --progress none -q "$@"; }

# ---- 4. a --no-exact store gains the exact bytes
G=$WORK_DIR/gain
sub=(fixtures/multilayer fixtures/multiplatform fixtures/zstd fixtures/shared-a fixtures/shared-b)
: >sub.txt
for k in "${sub[@]}"; do printf '%s/%s:v1\n' "$REG" "$k" >>sub.txt; done
pmirror --no-exact mirror sub.txt "$G" || fail "mirror --no-exact failed"
[ ! -e "$G/oci" ] || fail "--no-exact wrote $G/oci"
find "$G" -name layer.tar -printf '%i %p\n' | sort >inodes.before
before=$(wc -l <"$PROXY_LOG")
pmirror mirror sub.txt "$G" || fail "the mirror that adds the exact bytes failed"
find "$G" -name layer.tar -printf '%i %p\n' | sort >inodes.after
cmp -s inodes.before inodes.after || fail "a layer.tar was rewritten: $(diff inodes.before inodes.after | head -3)"
tail -n +$((before + 1)) "$PROXY_LOG" | grep -o '^[A-Z]* /v2/[^ ]*' >gain.log
# what the registry must have seen: per tag a HEAD and a GET of what it names,
# a GET of the amd64 child of the index, and each distinct compressed layer once
$PY - "$LAB_FIXTURES" gain.log "${sub[@]}" <<'PYEOF'
import collections, json, sys
fx = json.load(open(sys.argv[1]))["fixtures"]
got = collections.Counter(l.split()[0] + " " + l.split()[1] for l in open(sys.argv[2]) if l.strip())
want = collections.Counter()
for k in sys.argv[3:]:
    f = fx[k]
    want["HEAD /v2/%s/manifests/v1" % k] += 1
    want["GET /v2/%s/manifests/%s" % (k, f["digest"])] += 1
    img = f
    if "manifests" in f:
        img = [m for m in f["manifests"] if m["platform"]["architecture"] == "amd64"][0]
        want["GET /v2/%s/manifests/%s" % (k, img["digest"])] += 1
    for l in img["layers"]:
        key = "GET /v2/%s/blobs/%s" % (k, l["digest"])
        if not any(w.endswith(l["digest"]) for w in want):
            want[key] = 1
# a layer shared by two images may be fetched from either repository
def norm(c):
    return collections.Counter({(k.split()[0], k.rsplit("/", 1)[1] if "/blobs/" in k else k): v for k, v in c.items()})
if norm(got) != norm(want):
    print("registry saw:", sorted(got.items()), "\nwanted:", sorted(want.items()))
    sys.exit(1)
print(sum(v for k, v in got.items() if "/blobs/" in k))
PYEOF
[ $? = 0 ] || fail "the gaining run asked the registry for more than manifests and compressed layers"
blobs=$(grep -c '/blobs/' gain.log)
$PY "$FAULT_CHECK" "$G" "$LAB_FIXTURES" "$REG" --exact --tmp-empty $(printf -- '--present %s ' "${sub[@]}") >check.out ||
  fail "fault_check after the gain: $(cat check.out)"
before=$(wc -l <"$PROXY_LOG")
pmirror mirror sub.txt "$G" || fail "third run failed"
reqs=$(tail -n +$((before + 1)) "$PROXY_LOG" | grep -c '^[A-Z]* /v2/' || true)
heads=$(tail -n +$((before + 1)) "$PROXY_LOG" | grep -c '^HEAD /v2/[^ ]*/manifests/v1 ' || true)
[ "$reqs" = "${#sub[@]}" ] && [ "$heads" = "${#sub[@]}" ] || fail "the third run sent $reqs requests ($heads HEADs of tags), wanted ${#sub[@]} HEADs"
ok "--no-exact store gained its exact bytes: layer.tar inodes unchanged, $blobs blob GETs (the compressed layers, once each; no config), one HEAD + GET per manifest; the next run: ${#sub[@]} HEADs"
# a --no-exact run that stores a tag again drops the entry (it would name older bytes)
ref="$REG/fixtures/zstd:v1"
$PY - "$G/manifest-${REG}_fixtures_zstd-v1.json" <<'PYEOF'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d[0]["Occystrap"]["manifest_digest"] = "sha256:" + "0" * 64  # as if the tag had moved
json.dump(d, open(p, "w"), indent=4, sort_keys=True)
PYEOF
printf '%s\n' "$ref" >zstd.txt
pmirror --no-exact mirror zstd.txt "$G" || fail "--no-exact rerun failed"
[ -z "$(entry "$G" "$ref" .digest)" ] || fail "--no-exact stored $ref again but left its index.json entry"
expect_status 0 "$OCCYSTRAP" verify "$G"
ok "a --no-exact run that stores a tag again drops its index.json entry; verify passes"

# ---- 5. repair and gc
R=$WORK_DIR/repair
pmirror mirror <(printf '%s/fixtures/multilayer-oci:v1\n%s/fixtures/links:v1\n' "$REG" "$REG") "$R" || fail "mirror for repair"
layer=$(field fixtures/multilayer-oci 'layers[1].digest')
printf 'X' | dd of="$R/oci/blobs/sha256/${layer#sha256:}" bs=1 seek=100 conv=notrunc status=none
expect_status 1 "$OCCYSTRAP" verify "$R"
expect_status 1 "$OCCYSTRAP" verify --repair "$R"
[ ! -e "$R/oci/blobs/sha256/${layer#sha256:}" ] || fail "repair left the damaged blob"
[ -z "$(entry "$R" "$REG/fixtures/multilayer-oci:v1" .digest)" ] || fail "repair left the entry reaching the damaged blob"
[ -n "$(entry "$R" "$REG/fixtures/links:v1" .digest)" ] || fail "repair dropped an intact entry"
expect_status 0 "$OCCYSTRAP" verify "$R"
before=$(wc -l <"$PROXY_LOG")
pmirror mirror <(printf '%s/fixtures/multilayer-oci:v1\n' "$REG") "$R" || fail "mirror after repair"
got=$(tail -n +$((before + 1)) "$PROXY_LOG" | grep -c '^GET /v2/[^ ]*/blobs/' || true)
[ "$got" = 1 ] && tail -n +$((before + 1)) "$PROXY_LOG" | grep -q "GET /v2/fixtures/multilayer-oci/blobs/$layer " ||
  fail "after repair the mirror asked for $got blobs, wanted the damaged one alone"
$PY "$FAULT_CHECK" "$R" "$LAB_FIXTURES" "$REG" --exact --present fixtures/multilayer-oci --present fixtures/links >check.out ||
  fail "fault_check after repair: $(cat check.out)"
# gc: an entry dropped by hand leaves its blobs unreached; gc removes those only
jq --arg r "$REG/fixtures/links:v1" 'del(.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r))' \
  "$R/oci/index.json" >idx.json && cp idx.json "$R/oci/index.json"
n_links=$((2 + $(field fixtures/links 'layers | length')))
expect_status 0 "$OCCYSTRAP" gc "$R"
grep -q "exact blobs (STORE/oci): $n_links removed" last.err || fail "gc: $(cat last.err)"
expect_status 0 "$OCCYSTRAP" verify "$R"
$PY "$FAULT_CHECK" "$R" "$LAB_FIXTURES" "$REG" --exact --present fixtures/multilayer-oci >check.out ||
  fail "fault_check after gc: $(cat check.out)"
ok "verify --repair removed a damaged compressed blob and the entry reaching it; the next mirror fetched that blob alone; gc removed the $n_links blobs no entry reaches"
finish
