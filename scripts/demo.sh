#!/usr/bin/env bash
# demo.sh - the main job on the embedded default: installs and builds,
# starts the loopback lab registry seeded with sample images, mirrors every
# image of configs/sample-images.txt into a store (demo-output/store), runs
# it again (a no-op: one HEAD per tag), writes one image back out as a
# docker-load tarball, verifies the store, then stops the lab. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target occystrap
OUT=${OUT:-$ROOT/demo-output}
LAB=$ROOT/build/demo-lab
mkdir -p "$OUT"
bash tests/lab/lab.sh start "$LAB" >/dev/null
trap 'bash tests/lab/lab.sh stop "$LAB" >/dev/null' EXIT
# shellcheck disable=SC1091
source "$LAB/env.sh"
grep -v '^[[:space:]]*\(#\|$\)' configs/sample-images.txt | sed "s|^|$LAB_PLAIN/|" > "$OUT/list.txt"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$LAB_PLAIN" > "$OUT/config.json"
O=./build/occystrap
status=0
echo "== mirror (first run)"
$O --config "$OUT/config.json" --json-file "$OUT/report.json" mirror "$OUT/list.txt" "$OUT/store" || status=1
echo "== mirror again (nothing changed: one HEAD per tag)"
$O --config "$OUT/config.json" mirror "$OUT/list.txt" "$OUT/store" || status=1
echo "== what the store holds"
$O list "$OUT/store" || status=1
$O verify "$OUT/store" || status=1
image="$LAB_PLAIN/fixtures/multilayer"
$O recreate-image "$OUT/store" "$image" v1 "$OUT/multilayer.tar" || status=1
echo
echo "Result: the store is $OUT/store (report: $OUT/report.json);"
echo "        a docker-load tarball of one image: $OUT/multilayer.tar"
exit $status
