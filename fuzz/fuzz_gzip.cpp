// libFuzzer target for gunzip on its own. The output cap is 1 MiB so that a bomb is refused quickly and the
// fuzzer cannot run out of memory. Any outcome other than output within the cap or an IOError is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "advgrad/core/error.h"
#include "advgrad/data/gzip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint64_t kCap = uint64_t(1) << 20;
  try {
    std::vector<uint8_t> out = advgrad::gunzip(data, size, "fuzz-input", kCap);
    if (out.size() > kCap) std::abort();
    // Same input, same output (the one-pass and two-pass paths must agree).
    if (advgrad::gunzip(data, size, "fuzz-input", kCap) != out) std::abort();
  } catch (const advgrad::IOError&) {
    // The expected answer to malformed input.
  }
  return 0;
}
