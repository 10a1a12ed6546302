#!/usr/bin/env bash
# store_legacy.sh - a merged directory laid out exactly as occystrap 0.2.0
# writes it (made here by hand from fetch-to-tarfile output: configs
# re-serialised by json.dumps(indent=4, sort_keys=True), manifest-*.json
# with "ImageName" and 0.2.0's RepoTags, catalog.json, no keys or markers of
# ours, no trailing newlines) is read by recreate-image, export, list and
# verify without being changed; tarballs have <hex>/layer.tar members (not
# 0.2.0's <hex>/layer.tar/layer.tar) that match their diff_ids and skopeo
# accepts them; unknown images and tags give errors listing what the store
# holds; and a new fetch into the old store works.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/store_lib.sh"

IMAGES="$WORK_DIR/images.json"
push_images "$IMAGES" --layer base=400000 --layer own-a=30000 --layer own-b=40000 --layer own-c=50000 \
  "$NS/a:v1=base,own-a" "$NS/b:latest=base,own-b" "$NS/c:v1=base,own-c"
expect_status 0 "$OCCYSTRAP" --insecure fetch-to-tarfile "$LAB_PLAIN" "$NS/a" v1 a.tar
expect_status 0 "$OCCYSTRAP" --insecure fetch-to-tarfile "$LAB_PLAIN" "$NS/b" latest b.tar

OLD="$WORK_DIR/legacy"
$PY - "$OLD" "$NS/a" v1 a.tar "$NS/b" latest b.tar <<'EOF' || fail "building the 0.2.0 store failed"
# What occystrap 0.2.0's DirWriter(unique_names=True) leaves behind.
import json, os, sys, tarfile
out = sys.argv[1]
os.makedirs(out)
catalog = {}
args = sys.argv[2:]
for i in range(0, len(args), 3):
    image, tag, tarball = args[i:i + 3]
    with tarfile.open(tarball) as tf:
        m = json.load(tf.extractfile("manifest.json"))[0]
        config = json.load(tf.extractfile(m["Config"]))
        with open(os.path.join(out, m["Config"]), "wb") as f:
            f.write(json.dumps(config, indent=4, sort_keys=True).encode("ascii"))
        for layer in m["Layers"]:
            os.makedirs(os.path.join(out, os.path.dirname(layer)), exist_ok=True)
            with open(os.path.join(out, layer), "wb") as f:
                f.write(tf.extractfile(layer).read())
    manifest = [{"Config": m["Config"], "Layers": m["Layers"],
                 "RepoTags": ["%s:%s" % (image.split("/")[-1], tag)], "ImageName": image}]
    name = "manifest-%s-%s.json" % (image.replace("/", "_"), tag.replace("/", "_"))
    with open(os.path.join(out, name), "wb") as f:
        f.write(json.dumps(manifest, indent=4, sort_keys=True).encode("ascii"))
    catalog.setdefault(image, {})[tag] = name
with open(os.path.join(out, "catalog.json"), "w") as f:
    f.write(json.dumps(catalog, indent=4, sort_keys=True))
EOF
before=$(snapshot "$OLD")

# check_legacy_tarball TARBALL IMAGE REPO_TAG: skopeo reads it; members are
# proper; each layer matches its diff_id; the config is the store's copy.
check_legacy_tarball() {
  local tarball=$1 image=$2 repo_tag=$3
  skopeo copy -q "docker-archive:$WORK_DIR/$tarball:$repo_tag" "oci:$WORK_DIR/oci-$tarball" ||
    fail "skopeo refused $tarball"
  $PY - "$tarball" "$IMAGES" "$image" "$repo_tag" "$OLD" <<'EOF' || fail "$tarball is wrong"
import hashlib, json, sys, tarfile
tarball, fixtures, image, repo_tag, store = sys.argv[1:]
fx = json.load(open(fixtures))["fixtures"][image]
with tarfile.open(tarball) as tf:
    names = tf.getnames()
    assert not any(n.endswith("layer.tar/layer.tar") for n in names), names
    m = json.load(tf.extractfile("manifest.json"))
    entry = [e for e in m if repo_tag in e["RepoTags"]][0]
    want = [l["digest"].split(":")[1] + "/layer.tar" for l in fx["layers"]]
    assert entry["Layers"] == want, (entry["Layers"], want)
    for l, name in zip(fx["layers"], want):
        got = "sha256:" + hashlib.sha256(tf.extractfile(name).read()).hexdigest()
        assert got == l["diff_id"], (name, got, l["diff_id"])
    assert tf.extractfile(entry["Config"]).read() == open(store + "/" + entry["Config"], "rb").read()
EOF
}

expect_status 0 "$OCCYSTRAP" recreate-image "$OLD" "$NS/a" v1 ra.tar
check_legacy_tarball ra.tar "$NS/a" "a:v1"
expect_status 0 "$OCCYSTRAP" recreate-image "$OLD" "$NS/b" latest rb.tar
check_legacy_tarball rb.tar "$NS/b" "b:latest"
[ "$(snapshot "$OLD")" = "$before" ] || fail "recreate-image changed the 0.2.0 store"
ok "recreate-image reads a 0.2.0 store (re-serialised configs, no markers) without changing it"

expect_status 0 "$OCCYSTRAP" export "$OLD" ab.tar "$NS/a:v1" "$NS/b:latest"
check_legacy_tarball ab.tar "$NS/a" "a:v1"
check_legacy_tarball ab.tar "$NS/b" "b:latest"
ok "export of both images of the 0.2.0 store: skopeo reads each"

expect_status 0 "$OCCYSTRAP" verify "$OLD" >verify.txt
grep -q "re-serialised copy (occystrap 0.2.0)" verify.txt || { cat verify.txt; fail "verify does not note 0.2.0's configs"; }
"$OCCYSTRAP" list "$OLD" >list.txt || fail "list failed"
grep -q "2 images, 3 distinct layers" list.txt || { cat list.txt; fail "list of the 0.2.0 store"; }
[ "$(snapshot "$OLD")" = "$before" ] || fail "verify or list changed the 0.2.0 store"
ok "verify (layers re-hashed, configs noted) and list read the 0.2.0 store without changing it"

expect_status 1 "$OCCYSTRAP" recreate-image "$OLD" "$NS/a" v2 x.tar
expect_stderr "has no tag \"v2\" of $NS/a; its tags: v1"
expect_status 1 "$OCCYSTRAP" recreate-image "$OLD" "$NS/zzz" v1 x.tar
expect_stderr "it holds: $NS/a, $NS/b"
expect_status 2 "$OCCYSTRAP" recreate-image "$OLD" "$NS/a" v1
[ ! -e x.tar ] || fail "a TARFILE was written for an unknown image"
ok "unknown tag or image: clear errors listing what the store holds, no TARFILE"

# A fetch into the old store adds an image; its layers come with markers.
expect_status 0 "$OCCYSTRAP" --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$NS/c" v1 "$OLD"
expect_status 0 "$OCCYSTRAP" recreate-image "$OLD" "$NS/c" v1 rc.tar
$PY "$CHECK_TARBALL" rc.tar "$IMAGES" "$NS/c" "" "$LAB_PLAIN/$NS/c:v1" >/dev/null || fail "c from the old store rejected"
expect_status 0 "$OCCYSTRAP" recreate-image "$OLD" "$NS/a" v1 ra2.tar
cmp -s ra.tar ra2.tar || fail "a changed after a fetch into the old store"
expect_status 0 "$OCCYSTRAP" verify "$OLD"
ok "fetch-to-extracted into the 0.2.0 store adds an image; the old ones are unchanged"
finish
