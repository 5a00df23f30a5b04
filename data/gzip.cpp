#include "advgrad/data/gzip.h"

#include <zlib.h>

#include <algorithm>

#include "advgrad/core/error.h"

namespace advgrad {

bool is_gzip(const uint8_t* data, size_t size) { return size >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

namespace {

struct Inflater {
  z_stream zs{};
  ~Inflater() { inflateEnd(&zs); }
};

[[noreturn]] void too_large(const std::string& name, uint64_t max_bytes) {
  throw IOError(name + ": decompresses to more than the " + std::to_string(max_bytes) + "-byte limit");
}

// Inflates every member of the input once and returns the number of bytes produced. With dst, output
// goes to dst[0, room) and the pass gives up (returning room) when the output does not fit; without dst,
// output goes to a small scratch buffer and is only counted, up to max_bytes. IOError for corrupt,
// truncated or oversized data.
uint64_t inflate_all(const uint8_t* data, size_t size, const std::string& name, uint8_t* dst, uint64_t room,
                     uint64_t max_bytes) {
  Inflater inf;
  // windowBits 15 + 16: accept only the gzip wrapper (header, CRC-32 and length trailer checked by zlib).
  if (inflateInit2(&inf.zs, 15 + 16) != Z_OK) throw IOError(name + ": cannot initialise zlib");
  // z_stream counts in 32-bit uInt, so input and output are handed over in pieces of at most 1 GiB.
  const size_t kPiece = size_t(1) << 30;
  uint8_t scratch[1 << 16];
  size_t in_pos = 0;
  uint64_t produced = 0;
  for (;;) {
    if (inf.zs.avail_in == 0 && in_pos < size) {
      size_t n = std::min(size - in_pos, kPiece);
      inf.zs.next_in = const_cast<Bytef*>(data + in_pos);  // zlib's API is not const-correct; it never writes
      inf.zs.avail_in = uInt(n);
      in_pos += n;
    }
    uint8_t* out = dst ? dst + produced : scratch;
    const uint64_t space = dst ? room - produced : sizeof scratch;
    if (space == 0) return room;  // dst is full and the stream has not ended
    inf.zs.next_out = out;
    inf.zs.avail_out = uInt(std::min<uint64_t>(space, kPiece));
    int ret = inflate(&inf.zs, Z_NO_FLUSH);
    produced += uint64_t(inf.zs.next_out - out);
    if (produced > max_bytes) too_large(name, max_bytes);

    if (ret == Z_STREAM_END) {
      if (inf.zs.avail_in == 0 && in_pos == size) return produced;
      // More bytes follow the member: another gzip member, or garbage that the next inflate rejects.
      if (inflateReset(&inf.zs) != Z_OK) throw IOError(name + ": cannot reset zlib");
      continue;
    }
    if (ret == Z_BUF_ERROR && inf.zs.avail_in == 0 && in_pos == size)
      throw IOError(name + ": truncated gzip data (the stream ends early)");
    if (ret != Z_OK && ret != Z_BUF_ERROR)
      throw IOError(name + ": corrupt gzip data (" + (inf.zs.msg ? inf.zs.msg : "zlib error " + std::to_string(ret)) +
                    ")");
  }
}

}  // namespace

std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& name, uint64_t max_bytes) {
  // Memory never exceeds the output (at most max_bytes) plus a constant: the output is allocated once, at
  // its final size, never grown by copying.
  const uint64_t limit = std::min<uint64_t>(max_bytes, uint64_t(1) << 62);
  // The usual case, one member: its trailer ends with ISIZE, the length mod 2^32, so one pass into a buffer
  // of that size (plus a byte, to tell "ends here" from "goes on") suffices. It is only a hint: it is used
  // when within the cap and within deflate's largest ratio (about 1032:1), so a short file claiming 1 GiB
  // allocates nothing.
  if (size >= 18) {
    const uint8_t* t = data + size - 4;
    const uint64_t hint = uint64_t(t[0]) | uint64_t(t[1]) << 8 | uint64_t(t[2]) << 16 | uint64_t(t[3]) << 24;
    if (hint <= limit && hint / 1032 <= size) {
      std::vector<uint8_t> out(size_t(hint) + 1);
      const uint64_t produced = inflate_all(data, size, name, out.data(), out.size(), limit);
      if (produced <= hint) {
        out.resize(size_t(produced));
        return out;
      }
    }  // a longer stream (several members, or a wrong hint): that buffer is freed before the next one
  }
  // Size unknown: count the output first (refusing it beyond the cap without holding any of it), then
  // inflate again into a buffer of exactly that size.
  const uint64_t total = inflate_all(data, size, name, nullptr, 0, limit);
  std::vector<uint8_t> out(size_t(total) + 1);
  const uint64_t again = inflate_all(data, size, name, out.data(), out.size(), limit);
  if (again != total) throw IOError(name + ": gzip data decompressed to different sizes twice");
  out.resize(size_t(total));
  return out;
}

}  // namespace advgrad
