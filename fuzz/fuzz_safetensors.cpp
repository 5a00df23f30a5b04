// libFuzzer target for the safetensors readers: the whole-file reader, the header-only reader and the
// into-destination loader (what weights loading uses). Each either succeeds -- with results consistent
// with the input's size -- or raises advgrad::Error; anything else (a crash, a sanitizer report, another
// exception type, a leak) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "advgrad/core/error.h"
#include "advgrad/nn/serialize.h"

namespace {

using namespace advgrad;

// A destination like a small model's state_dict: names the seed corpus uses, several dtypes.
StateDict fixed_destination() {
  StateDict d;
  d["w"] = zeros({4, 3});
  d["b"] = zeros({3});
  d["d"] = zeros({2}, DType::F64);
  d["n"] = zeros({}, DType::I64);
  return d;
}

// A destination matching the header's names and shapes, so that the loader gets past the name checks
// and reads, converts and checks data. Its dtype alternates (conversion paths); its size is bounded by the
// input, since the header's tensors tile the input's data section.
StateDict destination_from(const SafetensorsHeader& h, uint8_t salt) {
  StateDict d;
  int i = 0;
  for (const auto& kv : h.tensors) {
    const DType dt = (salt + i++) % 3 == 0 ? DType::F64 : kv.second.dtype == DType::I64 ? DType::I64 : DType::F32;
    d[kv.first] = zeros(kv.second.shape, dt);
  }
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t flags = size > 0 ? data[size - 1] : 0;  // picks strict / allow_non_finite from the input
  try {
    SafetensorsFile f = load_safetensors_from_memory(data, size, "fuzz-input");
    size_t total = 0;
    for (const auto& kv : f.tensors) total += size_t(kv.second.numel()) * dtype_size(kv.second.dtype());
    if (total > size) __builtin_trap();  // more tensor bytes than the input holds
  } catch (const Error&) {
    // The expected answer to malformed input.
  }
  SafetensorsHeader h;
  bool header_ok = false;
  try {
    h = read_safetensors_header_from_memory(data, size, "fuzz-input");
    header_ok = true;
    // The checked header: data section inside the input, tensors tiling it exactly.
    if (h.data_offset + h.data_size != size) __builtin_trap();
    uint64_t covered = 0;
    for (const auto& kv : h.tensors) {
      if (kv.second.begin > kv.second.end || kv.second.end > h.data_size) __builtin_trap();
      covered += kv.second.end - kv.second.begin;
    }
    if (covered != h.data_size) __builtin_trap();
  } catch (const Error&) {
  }
  try {
    StateDict dest = fixed_destination();
    load_safetensors_into_from_memory(data, size, "fuzz-input", dest, (flags & 1) != 0, (flags & 2) != 0);
  } catch (const Error&) {
  }
  if (header_ok) {
    try {
      StateDict dest = destination_from(h, flags);
      load_safetensors_into_from_memory(data, size, "fuzz-input", dest, true, (flags & 2) != 0);
    } catch (const Error&) {
    }
  }
  return 0;
}
