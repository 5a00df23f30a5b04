// Base64 (RFC 4648, standard alphabet, '=' padding): how the run report embeds its PNGs as data: URIs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace advgrad {

// Four characters per three bytes, the last group padded with '='; "" for no bytes.
std::string base64_encode(const uint8_t* data, size_t size);
inline std::string base64_encode(const std::vector<uint8_t>& bytes) { return base64_encode(bytes.data(), bytes.size()); }

}  // namespace advgrad
