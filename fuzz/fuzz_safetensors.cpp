// libFuzzer target for the safetensors reader. A file either loads (then every tensor's bytes were inside
// the input) or raises advgrad::Error; anything else -- a crash, a sanitizer report, another exception
// type -- is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "nn/serialize.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    advgrad::SafetensorsFile f = advgrad::load_safetensors_from_memory(data, size, "fuzz-input");
    size_t total = 0;
    for (const auto& kv : f.tensors) total += size_t(kv.second.numel()) * advgrad::dtype_size(kv.second.dtype());
    if (total > size) __builtin_trap();  // more tensor bytes than the input holds
  } catch (const advgrad::Error&) {
    // The expected answer to malformed input.
  }
  return 0;
}
