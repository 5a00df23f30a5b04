#!/usr/bin/env bash
# The sanitizer build: clang with AddressSanitizer + UndefinedBehaviorSanitizer (UB is fatal), every test
# suite run through CTest. Usage: scripts/sanitize.sh [BUILD_DIR]   (default build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --sanitizers
build=${1:-build-asan}
# -O1: ASan's recommended trade-off (readable reports, tests still fast enough); asserts stay on.
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
  -DADVGRAD_SANITIZE=address,undefined > /dev/null
cmake --build "$build" -j "$(nproc)"
# Leaks are errors too; halt_on_error makes the first report fail the suite.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# test_attacks_fashion is left out: three epochs of training over all of Fashion-MNIST take over 15 minutes
# under ASan, and they run the same kernels and loops that test_train and test_attacks check on small data.
cd "$build" && ctest --output-on-failure -j "$(nproc)" -E '^test_attacks_fashion$'
