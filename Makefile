# Thin wrapper: scripts/setup.sh installs what is missing, CMake builds, CTest runs the suites.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build test demo clean test-noomp bench bench-loaded bench-build sanitize fuzz install package-test static test-aarch64

all: build

setup:
	@scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Chromium is for the report_browser test only: without it (not root, no network) that test is skipped.
test: build
	@scripts/setup.sh --browser || echo "advgrad: no chromium: the report_browser test will be skipped"
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The single-threaded build (no OpenMP) must pass the same tests.
test-noomp:
	$(MAKE) test BUILD=build-noomp CMAKE_FLAGS=-DADVGRAD_OPENMP=OFF

# The aarch64 cross build (g++-aarch64-linux-gnu), its suites run under qemu-user (docs/PLATFORMS.md).
test-aarch64:
	scripts/aarch64.sh build-aarch64

# The whole suite built with clang under AddressSanitizer + UndefinedBehaviorSanitizer (docs/RELIABILITY.md).
sanitize:
	scripts/sanitize.sh build-asan

# Every libFuzzer target over its committed corpus plus FUZZ_RUNS new inputs each.
FUZZ_RUNS ?= 20000
fuzz:
	scripts/fuzz.sh $(FUZZ_RUNS) build-fuzz

# Adversarially trains small_cnn on Fashion-MNIST, evaluates it and writes runs/demo/ (see README).
demo: build
	$(BUILD)/advgrad demo

# advgrad at 1 and 2 threads against the PyTorch peer (bench/peer/torch_bench.py, the same workloads) in one
# run, then the ratio table (bench/compare.py). --peer installs python3-torch and libopenblas0-pthread.
bench: bench-build
	@python3 bench/compare.py --build $(BUILD) --out $(BUILD)/bench/results.jsonl

# The same comparison with LOAD CPU-bound busy loops running beside both sides all along.
LOAD ?= 2
bench-loaded: bench-build
	@python3 bench/compare.py --build $(BUILD) --load $(LOAD) --out $(BUILD)/bench/results-loaded.jsonl

bench-build:
	@scripts/setup.sh --peer
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target advgrad-bench sgemm-bench

# Installs the libraries, headers, CMake package, advgrad.pc and the command under PREFIX (docs/PACKAGING.md).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Installs into a temporary prefix and builds examples/consumer and README's program against it, then
# through add_subdirectory (scripts/check_package.sh). Reuses $(BUILD) when it is configured.
package-test:
	@scripts/setup.sh --package
	scripts/check_package.sh $(BUILD)

# A fully static build-static/advgrad (no ONNX: Debian ships no static libonnx; docs/PACKAGING.md).
static: setup
	@cmake -S . -B build-static -DCMAKE_BUILD_TYPE=Release -DADVGRAD_STATIC=ON -DADVGRAD_BUILD_TESTS=OFF \
	  -DADVGRAD_BUILD_EXAMPLES=OFF -DADVGRAD_BUILD_BENCH=OFF $(CMAKE_FLAGS) > /dev/null
	@cmake --build build-static -j $(JOBS) --target advgrad_cli
	@! ldd build-static/advgrad > /dev/null 2>&1 || { echo "error: build-static/advgrad is not static" >&2; exit 1; }
	@echo "build-static/advgrad: static, $$(stat -c %s build-static/advgrad) bytes"

clean:
	rm -rf $(BUILD) build-noomp build-asan build-fuzz build-static build-aarch64
