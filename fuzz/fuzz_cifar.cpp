// libFuzzer target for the CIFAR parsers: binary records (CIFAR-10 and CIFAR-100 layouts) and the class
// names file. The first byte picks the parser and its parameters; the rest is the file. Any outcome other
// than a consistent result or an IOError is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "advgrad/core/error.h"
#include "advgrad/data/cifar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  ++data, --size;
  try {
    if (mode & 1) {
      const int64_t n = (mode & 2) ? 100 : 10;
      std::vector<std::string> names = advgrad::parse_class_names(data, size, "fuzz-names", n);
      if (int64_t(names.size()) != n) std::abort();
      for (const std::string& s : names)
        if (s.empty()) std::abort();
    } else {
      const int label_bytes = (mode & 2) ? 2 : 1;
      const int64_t classes = label_bytes == 2 ? 100 : 10;
      std::vector<uint8_t> images;
      std::vector<int64_t> labels;
      advgrad::parse_cifar_records(data, size, "fuzz-records", label_bytes, classes, images, labels);
      if (images.size() != labels.size() * 3072 || labels.empty()) std::abort();
      for (int64_t l : labels)
        if (l < 0 || l >= classes) std::abort();
    }
  } catch (const advgrad::IOError&) {
    // The expected answer to malformed input.
  }
  return 0;
}
