#!/usr/bin/env bash
# occystrap-vg.sh - stands in for the occystrap binary when the integration
# tests run under valgrind (scripts/valgrind.sh): memcheck with full leak
# checking, one log per process in $OCCY_VG_LOGS, exit status 99 on any
# error or definite/indirect leak. OCCY_VG_BIN is the real binary.
: "${OCCY_VG_BIN:?OCCY_VG_BIN must name the occystrap binary}"
: "${OCCY_VG_LOGS:?OCCY_VG_LOGS must name the log directory}"
exec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30 \
  --suppressions="$(dirname "$0")/occystrap.supp" \
  --log-file="$OCCY_VG_LOGS/occystrap.%p.log" "$OCCY_VG_BIN" "$@"
