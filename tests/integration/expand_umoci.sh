#!/usr/bin/env bash
# expand_umoci.sh - for every fixture, our merged root filesystem
# (fetch-to-extracted --expand, both strategies) equals `umoci unpack`'s
# rootfs of the same image (skopeo copy to an OCI layout, then umoci),
# compared by full listings. umoci 0.4.7 cannot read zstd layers: for
# those the oracle is GNU tar extracting the layers in order.
source "$(dirname "$0")/lib/common.sh"
LISTING="$TESTS_DIR/integration/lib/expand_listing.py"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > policy.json
[ "$(id -u)" = 0 ] || { echo "umoci unpack needs root here; skipping"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }

for key in $(fixture_keys); do
  case $key in private/*) continue ;; esac
  name=${key//\//_}
  zstd=$($PY -c 'import json,sys;f=json.load(open(sys.argv[1]))["fixtures"][sys.argv[2]];print(any("zstd" in l["media_type"] for m in f.get("manifests",[f]) for l in m["layers"]))' "$LAB_FIXTURES" "$key")
  if [ "$zstd" = True ]; then
    expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-extracted --use-unique-names "$LAB_PLAIN" "$key" v1 "st-$name"
    mkdir "oracle-$name"
    for l in $($PY -c 'import json,sys;print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "st-$name/manifest-${name}-v1.json"); do
      tar -xpf "st-$name/$l" -C "oracle-$name"
    done
    oracle="oracle-$name"
  else
    skopeo --policy policy.json copy -q --src-tls-verify=false "docker://$LAB_PLAIN/$key:v1" "oci:oci-$name:v1" >/dev/null ||
      fail "$key: skopeo copy"
    umoci unpack --image "oci-$name:v1" "bundle-$name" >/dev/null 2>umoci.err || { cat umoci.err >&2; fail "$key: umoci unpack"; }
    oracle="bundle-$name/rootfs"
  fi
  $PY "$LISTING" "$oracle" > "want-$name.lst"
  for s in write-once oldest-first; do
    rm -rf "out-$name"
    expect_status 0 "$OCCYSTRAP" -q --insecure --expand-strategy "$s" fetch-to-extracted --expand "$LAB_PLAIN" "$key" v1 "out-$name"
    $PY "$LISTING" "out-$name/manifest" > "got-$name.lst"
    diff -u "want-$name.lst" "got-$name.lst" >&2 || fail "$key ($s): our tree differs from $oracle"
  done
  ok "$key: equals $( [ "$zstd" = True ] && echo "GNU tar's layers" || echo "umoci unpack") ($(wc -l < "want-$name.lst") paths, both strategies)"
  rm -rf "out-$name" "bundle-$name" "oci-$name" "oracle-$name" "st-$name"
done
finish
