// A flat, 64-byte aligned byte buffer shared by a tensor and all its views, with the version counter
// that autograd uses to detect in-place changes of saved tensors (views share it, as they share bytes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace advgrad {

class Storage {
 public:
  explicit Storage(size_t nbytes) : nbytes_(nbytes) {
    size_t rounded = (nbytes + 63) / 64 * 64;
    data_ = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    if (rounded && !data_) throw std::bad_alloc();
  }
  ~Storage() { std::free(data_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_;
  size_t nbytes_;
  uint64_t version_ = 0;
};

}  // namespace advgrad
