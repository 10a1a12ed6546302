#!/usr/bin/env bash
# expand_differential.sh - layer expansion against independent tar readers
# (issue 17): about 230 generated layers (random trees in ustar, GNU and PAX
# format, GNU tar's own archives with sparse files, hand-made headers at
# the corners where readers part ways), every layer of the lab's fixtures
# and every tar in the expand fuzzer's corpus and regression inputs are
# expanded by occystrap's code (occy_xtar) and by GNU tar, and merged as a
# one-layer image by occystrap and by umoci unpack (Go's archive/tar, as
# containerd); trees must be equal wherever occystrap did not refuse the
# layer, and the cases that must be refused are. See lib/expand_diff.py.
source "$(dirname "$0")/lib/common.sh"
: "${OCCY_XTAR:?OCCY_XTAR must name the occy_xtar test tool (tests/tools/xtar.c)}"
command -v umoci >/dev/null || echo "umoci not installed: GNU tar is the only oracle"
$PY "$TESTS_DIR/integration/lib/expand_diff.py" --xtar "$OCCY_XTAR" --work "$WORK_DIR/diff" \
  --fixtures "$LAB_DIR" --fuzz-corpus "$TESTS_DIR/fuzz/corpus/expand" \
  --fuzz-corpus "$TESTS_DIR/fuzz/regressions" > report.txt 2>&1 || {
  cat report.txt >&2
  fail "expand differs from GNU tar or umoci without refusing (see above)"
}
grep -v '^refused ' report.txt
n=$(tail -n 1 report.txt | awk '{print $1}')
[ "$n" -ge 250 ] || fail "only $n layers were compared"
ok "$(tail -n 1 report.txt)"
rm -rf "$WORK_DIR/diff"
finish
