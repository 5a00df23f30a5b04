#!/usr/bin/env bash
# Builds every libFuzzer target in fuzz/ (fuzz/fuzz_NAME.cpp -> fuzz_NAME, clang + ASan + UBSan) and runs
# each one over its committed corpus (fuzz/corpus/fuzz_NAME/: seeds and the regression-* inputs of every
# crash found so far), then for a fixed number of new inputs. A fixed count, not a time: the same work on
# a fast or a slow machine. New inputs go to a scratch directory, never into the repository.
# Usage: scripts/fuzz.sh [RUNS] [BUILD_DIR]   (RUNS per target, default 20000; build dir default build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20000}
build=${2:-build-fuzz}
scripts/setup.sh --sanitizers
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release -DADVGRAD_FUZZ=ON \
  -DADVGRAD_OPENMP=OFF -DADVGRAD_BUILD_TESTS=OFF -DADVGRAD_BUILD_EXAMPLES=OFF > /dev/null
targets=()
for src in fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  if [[ ! -d $corpus ]] || [[ -z $(ls -A "$corpus") ]]; then
    echo "fuzz: $t has no seed corpus in $corpus" >&2; status=1; continue
  fi
  mkdir -p "$scratch/$t"
  start=$(date +%s)
  # -rss_limit_mb: a parser that allocates from a header's claim must refuse first, not fill memory.
  # -timeout: an input that takes over 10 s is a hang.
  if "$build/fuzz/$t" -runs="$runs" -seed=1 -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
       -artifact_prefix="$scratch/$t-" "$scratch/$t" "$corpus" > "$scratch/$t.log" 2>&1; then
    echo "fuzz: $t ok ($(($(date +%s) - start)) s, corpus $(ls "$corpus" | wc -l) files, $runs new runs)"
  else
    # Keep the whole log and every artifact (crash-, oom-, timeout-, leak-, slow-unit-...) under its own name.
    mkdir -p fuzz-failures
    cp "$scratch/$t.log" "fuzz-failures/$t.log"
    for a in "$scratch/$t"-*; do [[ -e $a ]] && cp "$a" "fuzz-failures/$(basename "$a")"; done
    echo "fuzz: $t FAILED (log and inputs kept in $PWD/fuzz-failures/):" >&2
    grep -v '^#[0-9]' "$scratch/$t.log" | tail -n 40 >&2
    status=1
  fi
done
exit $status
