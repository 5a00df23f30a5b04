#include "advgrad/data/cifar.h"

#include <filesystem>

#include "advgrad/core/error.h"
#include "advgrad/data/file_io.h"

namespace fs = std::filesystem;

namespace advgrad {
namespace {

constexpr size_t kPixels = 3 * 32 * 32;
constexpr int64_t kCoarseClasses = 20;  // CIFAR-100 superclasses

// A symlink loop or broken link is an IOError naming the file, not "absent" (see path_kind).
bool exists_in(const std::string& dir, const std::string& name) {
  return path_kind((fs::path(dir) / name).string()) != PathKind::Missing;
}

// The names in dir/file, or "0".."n-1" when the file is absent.
std::vector<std::string> class_names(const std::string& dir, const std::string& file, int64_t n) {
  std::vector<std::string> names;
  if (!exists_in(dir, file)) {
    for (int64_t i = 0; i < n; ++i) names.push_back(std::to_string(i));
    return names;
  }
  const std::string path = (fs::path(dir) / file).string();
  std::vector<uint8_t> bytes = read_file_bytes(path, uint64_t(1) << 20);  // a names file is a few KB
  return parse_class_names(bytes.data(), bytes.size(), path, n);
}

// Length of the UTF-8 sequence starting at s[i] (1..4), or 0 when it is not a valid one (overlong forms,
// surrogates and code points beyond U+10FFFF are invalid).
size_t utf8_length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return k < s.size() ? uint8_t(s[k]) : uint8_t(0); };
  const uint8_t c = b(i);
  auto cont = [&](size_t k) { return (b(k) & 0xC0) == 0x80; };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return b(i + 1) >= lo && b(i + 1) <= hi && cont(i + 2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return b(i + 1) >= lo && b(i + 1) <= hi && cont(i + 2) && cont(i + 3) ? 4 : 0;
  }
  return 0;
}

}  // namespace

std::vector<std::string> parse_class_names(const uint8_t* data, size_t size, const std::string& name, int64_t n) {
  std::vector<std::string> names;
  std::string line;
  auto flush = [&] {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t')) line.pop_back();
    // Names are printed and written to JSON: control characters and invalid UTF-8 are refused here.
    for (size_t i = 0; i < line.size();) {
      const size_t len = utf8_length(line, i);
      if (len == 0 || uint8_t(line[i]) < 0x20 || line[i] == 0x7f)
        throw IOError(name + ": class name " + std::to_string(names.size() + 1) + " has " +
                      (len == 0 ? "invalid UTF-8" : "a control character") + " at byte " + std::to_string(i));
      i += len;
    }
    if (!line.empty()) names.push_back(line);
    line.clear();
  };
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') flush();
    else line += char(data[i]);
  }
  flush();
  if (int64_t(names.size()) != n)
    throw IOError(name + ": " + std::to_string(names.size()) + " class names, expected " + std::to_string(n));
  return names;
}

void parse_cifar_records(const uint8_t* data, size_t size, const std::string& name, int label_bytes,
                         int64_t num_classes, std::vector<uint8_t>& images, std::vector<int64_t>& labels) {
  const size_t record = size_t(label_bytes) + kPixels;
  if (size == 0) throw IOError(name + ": empty file (0 bytes)");
  if (size % record != 0)
    throw IOError(name + ": size " + std::to_string(size) + " is not a whole number of " + std::to_string(record) +
                  "-byte records (truncated or not a CIFAR file)");
  const size_t n = size / record;
  images.reserve(images.size() + n * kPixels);
  labels.reserve(labels.size() + n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* r = data + i * record;
    if (label_bytes == 2 && r[0] >= kCoarseClasses)
      throw IOError(name + ": coarse label " + std::to_string(r[0]) + " of record " + std::to_string(i) +
                    " is outside the class range 0.." + std::to_string(kCoarseClasses - 1));
    const int64_t label = r[label_bytes - 1];
    if (label >= num_classes)
      throw IOError(name + ": label " + std::to_string(label) + " of record " + std::to_string(i) +
                    " is outside the class range 0.." + std::to_string(num_classes - 1));
    labels.push_back(label);
    images.insert(images.end(), r + label_bytes, r + record);
  }
}

Dataset load_cifar(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "test")
    throw ValueError("load_cifar: split must be \"train\" or \"test\", got \"" + split + "\"");
  require_directory(dir);
  const bool cifar10 = exists_in(dir, "data_batch_1.bin") || exists_in(dir, "test_batch.bin");
  const bool cifar100 = exists_in(dir, "train.bin") || exists_in(dir, "test.bin");
  if (!cifar10 && !cifar100)
    throw IOError(dir + ": no CIFAR files (expected data_batch_1..5.bin and test_batch.bin, or train.bin and "
                        "test.bin)");

  Dataset d;
  d.source = dir;
  d.sample_shape = {3, 32, 32};
  std::vector<std::string> files;
  int label_bytes;
  if (cifar10) {
    d.kind = "cifar10";
    d.num_classes = 10;
    label_bytes = 1;
    if (split == "train")
      for (int b = 1; b <= 5; ++b) files.push_back("data_batch_" + std::to_string(b) + ".bin");
    else
      files.push_back("test_batch.bin");
    d.class_names = class_names(dir, "batches.meta.txt", d.num_classes);
  } else {
    d.kind = "cifar100";
    d.num_classes = 100;
    label_bytes = 2;
    files.push_back(split + ".bin");
    d.class_names = class_names(dir, "fine_label_names.txt", d.num_classes);
  }
  for (const std::string& f : files) {
    const std::string path = (fs::path(dir) / f).string();
    std::vector<uint8_t> bytes = read_file_bytes(path);
    parse_cifar_records(bytes.data(), bytes.size(), path, label_bytes, d.num_classes, d.images, d.labels);
  }
  d.check();
  return d;
}

}  // namespace advgrad
