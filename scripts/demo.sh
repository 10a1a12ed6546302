#!/usr/bin/env bash
# demo.sh - the main job on the embedded default: installs and builds, starts
# the loopback lab registry seeded with sample images, fetches every image
# of configs/sample-images.txt into docker-load tarballs (the bulk `mirror`
# command will take this over), then stops the lab. Safe to rerun.
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
status=0
while read -r line; do
  case $line in '' | '#'*) continue ;; esac
  repo=${line%:*}
  tag=${line##*:}
  out="$OUT/${repo//\//_}-$tag.tar"
  ./build/occystrap --insecure fetch-to-tarfile "$LAB_PLAIN" "$repo" "$tag" "$out" || status=1
done < configs/sample-images.txt
echo
echo "Result: docker-load tarballs in $OUT:"
ls -l "$OUT"
exit $status
