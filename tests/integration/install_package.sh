#!/usr/bin/env bash
# install_package.sh - the installable shapes of the build: `cmake --install`
# puts the tool, liboccystrap.so, the public headers and occystrap.pc in
# place, and examples/mirror_two.c compiles against them with pkg-config
# alone (and runs: --version-like smoke with no arguments gives its usage);
# `cpack -G DEB` makes a .deb whose Depends name the Debian library packages
# (each installed here), whose file list holds the tool, library, headers
# and .pc, and whose unpacked occystrap runs (--version). The package is
# unpacked with dpkg -x into a scratch root, not installed on this machine.
source "$(dirname "$0")/lib/common.sh"
: "${BUILD_DIR:?BUILD_DIR must name the cmake build tree}"
SRC=$(cd "$TESTS_DIR/.." && pwd)

ROOT="$WORK_DIR/root"
cmake --install "$BUILD_DIR" --prefix "$ROOT/usr" >"$WORK_DIR/install.log"
for f in usr/bin/occystrap usr/include/occystrap/occystrap.h usr/include/occystrap/error.h \
  usr/lib/x86_64-linux-gnu/pkgconfig/occystrap.pc; do
  [ -e "$ROOT/$f" ] || [ -e "$ROOT/${f/x86_64-linux-gnu\//}" ] || fail "cmake --install did not put $f in place"
done
pc=$(find "$ROOT" -name occystrap.pc -print -quit)
lib=$(find "$ROOT" -name 'liboccystrap.so.*' -print -quit)
[ -n "$lib" ] || fail "no liboccystrap.so.* installed"
ok "cmake --install: tool, library, headers and pkg-config file"

libdir=$(dirname "$pc")/..
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix="$ROOT/usr" --cflags occystrap)
libs=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix="$ROOT/usr" --libs occystrap)
# a sanitizer build's library needs the sanitizer runtimes in the program too
san=""
grep -q '^SANITIZE:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" && san="-fsanitize=address,undefined"
# shellcheck disable=SC2086
cc $san -Wall -Wextra -Werror -o "$WORK_DIR/mirror_two" "$SRC/examples/mirror_two.c" $cflags $libs
LD_LIBRARY_PATH=$libdir expect_status 2 "$WORK_DIR/mirror_two"
expect_stderr "usage:"
ok "examples/mirror_two.c builds with pkg-config against the installed library and runs"

(cd "$BUILD_DIR" && cpack -G DEB -B "$WORK_DIR/pkg" >"$WORK_DIR/cpack.log" 2>&1) || { cat "$WORK_DIR/cpack.log"; fail "cpack -G DEB failed"; }
deb=$(find "$WORK_DIR"/pkg -name '*.deb' -print -quit)
[ -n "$deb" ] || fail "cpack made no .deb"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for want in libcurl4 libuv1 libjansson4 libarchive13 libisal2 libzstd1 libssl3; do
  echo "$depends" | grep -q "$want" || fail "Depends lacks $want: $depends"
  dpkg-query -W -f='${Status}' "$want" 2>/dev/null | grep -q "install ok installed" || fail "$want (a Depends) is not installed here"
done
ok "the .deb depends on the Debian library packages: $depends"

dpkg-deb -c "$deb" >"$WORK_DIR/files"
for f in ./usr/bin/occystrap ./usr/include/occystrap/occystrap.h occystrap.pc 'liboccystrap.so'; do
  grep -q -- "$f" "$WORK_DIR/files" || { cat "$WORK_DIR/files"; fail "the .deb lacks $f"; }
done
dpkg-deb -x "$deb" "$WORK_DIR/unpacked"
"$WORK_DIR/unpacked/usr/bin/occystrap" --version >"$WORK_DIR/version"
grep -q "^occystrap " "$WORK_DIR/version" || fail "the packaged occystrap --version printed: $(cat "$WORK_DIR/version")"
ok "the .deb holds the tool, library, headers and .pc; its occystrap --version runs"
finish
