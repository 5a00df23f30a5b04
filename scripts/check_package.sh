#!/usr/bin/env bash
# The package, checked as a user meets it (docs/PACKAGING.md): advgrad is installed into a temporary prefix,
# then
#   1. every installed header compiles with nothing but that prefix on the include path;
#   2. the program in README.md's library section (between the package-test markers) is compiled with
#      `pkg-config --cflags --libs advgrad` and run;
#   3. examples/consumer is built with find_package(advgrad) against the prefix and run, and must not
#      inherit advgrad's own warning, -march or sanitizer flags;
#   4. examples/consumer is built again with add_subdirectory(advgrad source) and run; advgrad then builds
#      its libraries only (no command, tests, examples or benchmarks).
# Usage: scripts/check_package.sh [BUILD_DIR]   (default build; reused when configured, e.g. by make test)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${1:-build}
jobs=$(nproc)
fail() { echo "check_package: error: $*" >&2; exit 1; }

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null
fi
cmake --build "$build" -j "$jobs" --target advgrad_cli  # every library, and the command

work=$(mktemp -d "${TMPDIR:-/tmp}/advgrad_package.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > /dev/null
[[ -x $prefix/bin/advgrad ]] || fail "cmake --install did not install bin/advgrad"
"$prefix/bin/advgrad" --version > /dev/null
[[ -f $prefix/include/advgrad/advgrad.h && -f $prefix/include/advgrad/core/tensor.h ]] ||
  fail "headers are not under include/advgrad/ in the source layout"
if grep -rq -e "$src" -e "$(cd "$build" && pwd)" "$prefix/lib"*/cmake "$prefix/lib"*/pkgconfig; then
  fail "the installed CMake package or advgrad.pc names the source or build tree"
fi
pc_dir=$(dirname "$(find "$prefix" -name advgrad.pc | head -1)")
export PKG_CONFIG_PATH=$pc_dir
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
echo "== package: installed into a temporary prefix ($(du -sh "$prefix" | cut -f1))"

# 1. All installed headers in one translation unit, against the prefix only (Eigen and the other build
# dependencies are not on the include path: a public header must not need them).
(cd "$prefix/include" && find advgrad -name '*.h' | sort | sed 's/.*/#include <&>/') > "$work/all_headers.cpp"
# shellcheck disable=SC2046  # pkg-config's output is a list of flags
"$cxx" -std=c++17 -fsyntax-only $(pkg-config --cflags advgrad) "$work/all_headers.cpp" ||
  fail "an installed header does not compile against the installed tree alone"
echo "== package: $(wc -l < "$work/all_headers.cpp") installed headers compile on their own"

# 2. README.md's library section, compiled as a user would with pkg-config, and run.
sed -n '/<!-- package-test:readme-begin -->/,/<!-- package-test:readme-end -->/p' README.md |
  sed '1,2d;$d' | sed '$d' > "$work/readme.cpp"
[[ -s $work/readme.cpp ]] || fail "README.md has no program between the package-test:readme markers"
# shellcheck disable=SC2046
"$cxx" -std=c++17 -O2 "$work/readme.cpp" -o "$work/readme" $(pkg-config --cflags --libs advgrad) ||
  fail "the program in README.md's library section does not compile"
"$work/readme" > "$work/readme.out" || { cat "$work/readme.out"; fail "the README program failed"; }
echo "== package: README program built with pkg-config and ran: $(tail -1 "$work/readme.out")"

# 3. examples/consumer through find_package.
cmake -S examples/consumer -B "$work/consumer-installed" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON > /dev/null
cmake --build "$work/consumer-installed" -j "$jobs" > /dev/null
if grep -E -e '-march=|-Wall|-Wextra|-fsanitize' "$work/consumer-installed/compile_commands.json"; then
  fail "advgrad::advgrad passes advgrad's own build flags on to its users"
fi
"$work/consumer-installed/consumer" || fail "examples/consumer (find_package) failed"
echo "== package: examples/consumer built with find_package and ran"

# 4. examples/consumer through add_subdirectory. This compiles advgrad's libraries once more, so it is done
# without optimisation (-O0 compiles several times faster; the check is the wiring, not the speed).
cmake -S examples/consumer -B "$work/consumer-subdir" -DADVGRAD_SOURCE_DIR="$src" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 > /dev/null
cmake --build "$work/consumer-subdir" -j "$jobs" > /dev/null
[[ ! -e $work/consumer-subdir/advgrad/advgrad && ! -d $work/consumer-subdir/advgrad/tests ]] ||
  fail "add_subdirectory(advgrad) built more than the libraries"
"$work/consumer-subdir/consumer" || fail "examples/consumer (add_subdirectory) failed"
echo "== package: examples/consumer built with add_subdirectory and ran"
