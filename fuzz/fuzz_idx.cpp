// libFuzzer target for the IDX parser (raw and gzip). Any outcome other than a parsed array whose size
// matches its dims, or an IOError, is a bug: a crash, a sanitizer report, or another exception type
// (which libFuzzer reports as a crash).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "advgrad/core/error.h"
#include "advgrad/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    advgrad::IdxArray a = advgrad::parse_idx(data, size, "fuzz-input");
    uint64_t count = 1;
    for (int64_t d : a.dims) count *= uint64_t(d);
    if (a.dims.empty() || count != a.data.size()) std::abort();
  } catch (const advgrad::IOError&) {
    // The expected answer to malformed input.
  }
  return 0;
}
