# Thin wrapper: scripts/setup.sh installs what is missing, CMake builds, CTest runs the suites.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all setup configure build test demo clean test-noomp bench sanitize fuzz test-aarch64

all: build

setup:
	@scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
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

# advgrad at 1 and 2 threads against the PyTorch peer (../shared/peer/torch_ref.py) in one run, then the
# ratio table (bench/compare.py). --peer installs python3-torch and libopenblas0-pthread.
bench:
	@scripts/setup.sh --peer
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target advgrad-bench sgemm-bench
	@python3 bench/compare.py --build $(BUILD) --out $(BUILD)/bench/results.jsonl

clean:
	rm -rf $(BUILD) build-noomp build-asan build-fuzz build-aarch64
