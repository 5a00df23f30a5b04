#include "advgrad/core/generator.h"

#include <cmath>

namespace advgrad {

std::array<uint32_t, 4> Generator::philox(uint64_t seed, uint64_t stream, uint64_t counter) {
  // Philox4x32 with 10 rounds; constants from Salmon et al., "Parallel random numbers: as easy as 1, 2, 3".
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = uint32_t(stream), c3 = uint32_t(stream >> 32);
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(M0) * c0, p1 = uint64_t(M1) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n1 = uint32_t(p1);
    uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1, n3 = uint32_t(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += W0, k1 += W1;
  }
  return {c0, c1, c2, c3};
}

float Generator::uniform_float(uint64_t seed, uint64_t stream, uint64_t index) {
  return float(philox(seed, stream, index)[0] >> 8) * (1.0f / 16777216.0f);
}

double Generator::uniform_double(uint64_t seed, uint64_t stream, uint64_t index) {
  auto b = philox(seed, stream, index);
  uint64_t bits = (uint64_t(b[0]) << 21) ^ (uint64_t(b[1]) >> 11);  // 53 bits
  return double(bits & ((uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

double Generator::normal(uint64_t seed, uint64_t stream, uint64_t index) {
  auto b = philox(seed, stream, index);
  // u1 in (0,1] so that log(u1) is finite; u2 in [0,1).
  double u1 = (double((uint64_t(b[0]) << 20) ^ b[1]) + 1.0) / 4503599627370497.0;  // ~52 bits
  double u2 = double((uint64_t(b[2]) << 20) ^ b[3]) / 4503599627370496.0;
  u1 = std::min(u1, 1.0);
  u2 = u2 - std::floor(u2);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

uint64_t Generator::below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t range) {
  auto b = philox(seed, stream, index);
  uint64_t r = (uint64_t(b[0]) << 32) | b[1];
  return uint64_t((static_cast<unsigned __int128>(r) * range) >> 64);  // multiply-shift: no modulo bias worth noting
}

}  // namespace advgrad
