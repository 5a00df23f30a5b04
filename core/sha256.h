// SHA-256 (FIPS 180-4), for fingerprints of parameters: two runs that claim to be identical must produce
// the same digest of every parameter byte.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace advgrad {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::string hex_digest();  // finishes the hash; the object must not be updated afterwards

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(const void* data, size_t size);

}  // namespace advgrad
