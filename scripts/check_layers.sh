#!/usr/bin/env bash
# check_layers.sh - the include rules of the code's folders, checked on every
# #include "..." line (CI runs it with the lint). A folder may include only
# the folders listed for it; the same order is the static libraries' link
# order in CMakeLists.txt, so a violation would also be a link-order bug.
# Library code never prints or exits, and never owns or runs a loop.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A ALLOWED=(
  [io]="io occystrap"
  [sched]="sched io occystrap"
  [engine/image]="engine/image io occystrap"
  [engine/store]="engine/store engine/image io occystrap"
  [engine/expand]="engine/expand io occystrap"
  [engine/registry]="engine/registry engine/image sched io occystrap"
  [engine/serve]="engine/serve engine/store engine/image io occystrap"
  [engine]="engine sched io occystrap"
  [cli]="cli occystrap"
)

fail=0
for dir in "${!ALLOWED[@]}"; do
  for f in "$dir"/*.[ch]; do
    [ -e "$f" ] || continue
    while IFS= read -r inc; do
      ok=0
      for a in ${ALLOWED[$dir]}; do
        case "$inc" in
        "$a"/*) ok=1 ;;
        esac
      done
      # engine/ may use its subfolders; a subfolder only what it lists.
      if [ "$dir" = engine ] && [ $ok = 0 ]; then
        case "$inc" in engine/*) ok=1 ;; esac
      fi
      if [ $ok = 0 ]; then
        echo "layers: $f includes \"$inc\" ($dir may include: ${ALLOWED[$dir]})"
        fail=1
      fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
done
# A subfolder of engine/ must not reach into engine/'s top-level files.
for dir in engine/image engine/store engine/expand engine/registry engine/serve; do
  if grep -n '#include "engine/[a-z_]*\.h"' "$dir"/*.[ch]; then
    echo "layers: $dir includes engine/'s top-level headers"
    fail=1
  fi
done

# Library code reports through errors and events: no printing, no exit,
# no loop of its own.
lib_dirs=(io sched engine engine/image engine/store engine/expand engine/registry engine/serve)
lib_files=()
for d in "${lib_dirs[@]}"; do lib_files+=("$d"/*.c); done
if grep -nE '\b(printf|fprintf|vfprintf|puts|fputs|fputc|putchar|exit|_exit)\s*\(' "${lib_files[@]}" |
  grep -vE 'snprintf|vsnprintf|asprintf|vasprintf'; then
  echo "layers: library code prints or exits (above)"
  fail=1
fi
if grep -nE '\b(uv_default_loop|uv_loop_init|uv_run)\s*\(' "${lib_files[@]}"; then
  echo "layers: library code owns or runs a loop (above)"
  fail=1
fi
[ $fail = 0 ] && echo "layers: ok"
exit $fail
