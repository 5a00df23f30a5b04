// Image decoding: the format is recognised by its magic bytes and only PNG, JPEG and BMP reach stb_image,
// which is compiled here from Debian's header with only those decoders. stb_image alone picks a decoder
// from the bytes, whatever the file name says, and Debian's libstb also carries PNM/GIF/PSD/HDR/PIC/TGA
// decoders with known memory bugs (a 16-bit PGM named 1.png over-reads the heap in 2.27): none of them is
// compiled in, and the linked libstb is used only for stb_image_resize and stb_image_write.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "advgrad/core/error.h"
#include "advgrad/data/image_folder.h"

// Every allocation stb_image makes goes through a per-decode budget (set by decode_image from the header's
// size): stb 2.27 grows its zlib output without limit and accepts surplus data, so a 1x1 PNG with 2 MB of
// zero IDAT (deflate reaches 1032:1) made it allocate 2-3 GiB. Over budget, the allocator returns NULL and
// stb fails cleanly ("outofmem"). A 16-byte prefix (malloc's alignment) keeps each block's size.
namespace advgrad {
namespace stb_budget {
struct State {
  uint64_t limit = UINT64_MAX, live = 0, peak = 0;
  bool exceeded = false;
};
thread_local State state;
constexpr size_t kPrefix = 16;
void* malloc_(size_t n) {
  State& s = state;
  if (n > s.limit - std::min(s.live, s.limit)) {
    s.exceeded = true;
    return nullptr;
  }
  void* p = std::malloc(n + kPrefix);
  if (!p) return nullptr;
  *static_cast<size_t*>(p) = n;
  s.live += n;
  s.peak = std::max(s.peak, s.live);
  return static_cast<char*>(p) + kPrefix;
}
void free_(void* p) {
  if (!p) return;
  char* base = static_cast<char*>(p) - kPrefix;
  const size_t n = *reinterpret_cast<size_t*>(base);
  state.live -= std::min<uint64_t>(state.live, n);  // a block from an earlier decode may be freed late
  std::free(base);
}
void* realloc_(void* p, size_t n) {
  if (!p) return malloc_(n);
  State& s = state;
  char* base = static_cast<char*>(p) - kPrefix;
  const size_t old = *reinterpret_cast<size_t*>(base);
  const uint64_t others = s.live - std::min<uint64_t>(s.live, old);
  if (n > s.limit - std::min(others, s.limit)) {
    s.exceeded = true;
    return nullptr;  // stb keeps (and later frees) the old block
  }
  void* q = std::realloc(base, n + kPrefix);
  if (!q) return nullptr;
  *static_cast<size_t*>(q) = n;
  s.live = others + n;
  s.peak = std::max(s.peak, s.live);
  return static_cast<char*>(q) + kPrefix;
}
}  // namespace stb_budget
}  // namespace advgrad
#define STBI_MALLOC(sz) advgrad::stb_budget::malloc_(sz)
#define STBI_REALLOC_SIZED(p, oldsz, newsz) advgrad::stb_budget::realloc_(p, newsz)
#define STBI_FREE(p) advgrad::stb_budget::free_(p)

// STB_IMAGE_STATIC: every stbi_ symbol is local to this file, so nothing clashes with libstb's copy.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
// stb's own dimension check (defence in depth: probe_image refuses larger sides first).
#define STBI_MAX_DIMENSIONS 16384
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#include <stb/stb_image_resize.h>

namespace advgrad {

static_assert(STBI_MAX_DIMENSIONS == kMaxImageSide, "stb's limit must match kMaxImageSide");

namespace {

std::string size_str(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

struct StbFree {
  void operator()(unsigned char* p) const { stbi_image_free(p); }
};

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
  return size >= n && std::equal(data, data + n, reinterpret_cast<const uint8_t*>(magic));
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
uint32_t le32(const uint8_t* p) { return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }

// What refused bytes look like, for the message: the formats stb could decode but we do not accept, else
// the first bytes in hex.
std::string describe_bytes(const uint8_t* data, size_t size) {
  if (size >= 2 && data[0] == 'P' && data[1] >= '1' && data[1] <= '7') return "PNM/PGM/PPM (netpbm) data";
  if (starts_with(data, size, "GIF8", 4)) return "GIF data";
  if (starts_with(data, size, "8BPS", 4)) return "PSD (Photoshop) data";
  if (starts_with(data, size, "#?RADIANCE", 10) || starts_with(data, size, "#?RGBE", 6)) return "HDR (Radiance) data";
  if (starts_with(data, size, "\x53\x80\xF6\x34", 4)) return "PIC (Softimage) data";
  if (starts_with(data, size, "RIFF", 4)) return "RIFF (e.g. WebP) data";
  if (starts_with(data, size, "\x89PNG", 4) || starts_with(data, size, "\xFF\xD8", 2) || starts_with(data, size, "BM", 2))
    return "a truncated PNG, JPEG or BMP header";
  static const char* hex = "0123456789abcdef";
  std::string s = "unrecognised data (first bytes";
  for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) s += std::string(" ") + hex[data[i] >> 4] + hex[data[i] & 15];
  return s + ")";
}

// JPEG: the frame size is in the first SOF segment; markers before it are skipped by their lengths.
bool jpeg_size(const uint8_t* data, size_t size, int64_t& h, int64_t& w) {
  size_t p = 2;
  while (p + 1 < size) {
    if (data[p] != 0xFF) return false;
    uint8_t m = data[p + 1];
    if (m == 0xFF) {  // fill byte
      ++p;
      continue;
    }
    p += 2;
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // markers without a length
    if (m == 0xD8 || m == 0xD9 || m == 0xDA) return false;  // a scan (or end) before any frame header
    if (p + 2 > size) return false;
    const size_t len = size_t(data[p]) << 8 | data[p + 1];
    if (len < 2) return false;
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (len < 7 || p + 7 > size) return false;
      h = int64_t(data[p + 3]) << 8 | data[p + 4];
      w = int64_t(data[p + 5]) << 8 | data[p + 6];
      return true;
    }
    p += len;
  }
  return false;
}

// PNG: every chunk up to IEND must lie within the file. stb_image reserves a chunk's claimed length before
// reading it (a 95-byte file claiming a 2 GiB IDAT made it allocate 2 GiB), and a file cut short must be
// refused, not decoded from whatever data it has. "" when sound, else what is wrong.
std::string png_structure_error(const uint8_t* data, size_t size) {
  size_t p = 8;
  while (p + 12 <= size) {
    const uint64_t len = be32(data + p);
    const std::string type(reinterpret_cast<const char*>(data + p + 4), 4);
    if (len > size - p - 12)
      return "chunk at byte " + std::to_string(p) + " claims " + std::to_string(len) + " bytes, the file has " +
             std::to_string(size - p - 12) + " left (truncated or corrupt)";
    if (type == "IEND") return "";
    p += 12 + size_t(len);
  }
  return "no IEND chunk (truncated file)";
}

// BMP: the pixel rows the header announces must be in the file (stb would read zeros past the end). Only
// uncompressed layouts have a fixed size; stb refuses the RLE ones itself.
std::string bmp_structure_error(const uint8_t* data, size_t size, int64_t height, int64_t width) {
  if (size < 30) return "header truncated";
  const uint32_t info = le32(data + 14), offset = le32(data + 10);
  const uint32_t bpp = info == 12 ? uint32_t(data[24] | data[25] << 8) : uint32_t(data[28] | data[29] << 8);
  const uint32_t compression = info >= 40 && size >= 34 ? le32(data + 30) : 0;
  // stb refuses RLE (1, 2) itself but reads any other unknown value as uncompressed rows, zeros past the
  // end of the file (found by fuzz_image: a 102-byte file decoded as 16260x3931 zeros, 26 s under ASan).
  if (compression == 1 || compression == 2) return "";
  if (compression != 0 && compression != 3) return "unsupported compression " + std::to_string(compression);
  if (bpp == 0 || bpp > 32) return "unsupported bit depth " + std::to_string(bpp);
  const uint64_t row = (uint64_t(bpp) * uint64_t(width) + 31) / 32 * 4;
  const uint64_t need = uint64_t(offset) + row * uint64_t(height);
  if (need > size)
    return "the header's " + size_str(height, width) + " pixels at " + std::to_string(bpp) + " bits need " +
           std::to_string(need) + " bytes, the file has " + std::to_string(size) + " (truncated)";
  return "";
}

// A DHT segment's tables must form valid prefix codes of at most 256 symbols (each one it accepts is marked
// in `defined`), and DC symbols (bit counts of
// a coefficient difference) must be at most 15: Debian's stb_image 2.27 checks neither fully, and a DC table
// with larger symbols made it read far outside its buffers (found by fuzz_image; stb 2.28 adds the check).
std::string jpeg_dht_error(const uint8_t* d, size_t n, bool (&defined)[2][4]) {
  size_t q = 0;
  while (q < n) {
    if (q + 17 > n) return "truncated";
    const int tc = d[q] >> 4, th = d[q] & 15;
    if (tc > 1 || th > 3) return "bad class/id byte";
    uint32_t count = 0, code = 0;
    for (int j = 1; j <= 16; ++j) {
      count += d[q + size_t(j)];
      code += d[q + size_t(j)];
      if (code > (1u << j)) return "code lengths overflow the code space";
      code <<= 1;
    }
    if (count > 256) return "more than 256 symbols";
    if (q + 17 + count > n) return "truncated";
    if (tc == 0)
      for (size_t i = 0; i < count; ++i)
        if (d[q + 17 + i] > 15) return "DC symbol " + std::to_string(d[q + 17 + i]) + " is above 15";
    defined[tc][th] = true;
    q += 17 + count;
  }
  return "";
}

// JPEG: every marker segment up to the end-of-image marker is walked, skipping the entropy-coded data after
// each scan header, and every Huffman table is checked: stb also reads DHT segments between scans
// (progressive and multi-scan baseline files), so checking only those before the first scan let a bad
// table through. In entropy-coded data 0xFF is stuffed as FF 00 and RSTn markers are part of the data;
// any other marker ends it (stb stops there too). The end-of-image marker is required: stb may pad a scan
// cut short with zeros, and its own errors for cut files name whichever decoder it tried last ("bad png
// sig").
std::string jpeg_structure_error(const uint8_t* data, size_t size) {
  size_t p = 2;
  bool scanned = false, progressive = false;
  bool defined[2][4] = {};  // Huffman tables seen so far, [class: 0 DC, 1 AC][id]
  while (p + 1 < size) {
    if (data[p] != 0xFF) return "corrupt marker at byte " + std::to_string(p);
    const uint8_t m = data[p + 1];
    if (m == 0xFF) {  // fill byte
      ++p;
      continue;
    }
    if (m == 0xD9) return scanned ? "" : "no image data before the end-of-image marker";
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      p += 2;
      continue;
    }
    if (p + 3 >= size) break;
    const size_t len = size_t(data[p + 2]) << 8 | data[p + 3];
    if (len < 2) return "marker segment at byte " + std::to_string(p) + " has length " + std::to_string(len);
    if (len > size - p - 2) break;  // runs past the end
    if (m == 0xC4) {
      std::string bad = jpeg_dht_error(data + p + 4, len - 2, defined);
      if (!bad.empty()) return "Huffman table at byte " + std::to_string(p) + ": " + bad;
    }
    if (m == 0xC2) progressive = true;
    if (m == 0xDA) {
      // Every table a scan decodes with must have been defined: stb 2.27 allocates its tables without
      // clearing them and decodes with whatever the memory holds (an index far outside a table; found by
      // fuzz_image). A progressive scan uses only its DC table (first DC pass) or only its AC table.
      const uint8_t* sos = data + p + 4;
      const size_t ns = len >= 3 ? sos[0] : 0;
      if (ns < 1 || ns > 4 || len - 2 < 1 + 2 * ns + 3)
        return "scan header at byte " + std::to_string(p) + " is malformed";
      const int ss = sos[1 + 2 * ns], ah = sos[3 + 2 * ns] >> 4;
      for (size_t i = 0; i < ns; ++i) {
        const int dc = sos[2 + 2 * i] >> 4, ac = sos[2 + 2 * i] & 15;
        const bool needs_dc = progressive ? ss == 0 && ah == 0 : true, needs_ac = progressive ? ss > 0 : true;
        if ((needs_dc && (dc > 3 || !defined[0][dc])) || (needs_ac && (ac > 3 || !defined[1][ac])))
          return "scan at byte " + std::to_string(p) + " uses a Huffman table no DHT segment defined";
      }
    }
    p += 2 + len;
    if (m != 0xDA) continue;
    scanned = true;
    // Entropy-coded data: up to the next marker that is neither a stuffed zero, a restart nor a fill byte.
    while (p + 1 < size) {
      if (data[p] != 0xFF) {
        ++p;
        continue;
      }
      const uint8_t c = data[p + 1];
      if (c == 0x00 || (c >= 0xD0 && c <= 0xD7)) p += 2;
      else if (c == 0xFF) ++p;
      else break;
    }
  }
  return scanned ? "no end-of-image marker (truncated file)" : "no image data (truncated file)";
}

}  // namespace

ImageHeader probe_image(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) throw IOError(name + ": empty file (0 bytes)");
  ImageHeader hd;
  bool sized = false;
  if (starts_with(data, size, "\x89PNG\r\n\x1a\n", 8)) {
    hd.format = ImageFormat::PNG;
    // The first chunk must be IHDR: width and height are big-endian uint32 at bytes 16 and 20.
    if (size >= 24 && starts_with(data + 12, size - 12, "IHDR", 4)) {
      hd.width = be32(data + 16);
      hd.height = be32(data + 20);
      sized = true;
    }
  } else if (starts_with(data, size, "\xFF\xD8\xFF", 3)) {
    hd.format = ImageFormat::JPEG;
    sized = jpeg_size(data, size, hd.height, hd.width);
  } else if (starts_with(data, size, "BM", 2)) {
    hd.format = ImageFormat::BMP;
    // The info header at 14 starts with its own size: 12 for the old OS/2 header (16-bit sides),
    // otherwise signed 32-bit sides (a negative height means top-down rows).
    if (size >= 26) {
      const uint32_t info = le32(data + 14);
      if (info == 12) {
        hd.width = int64_t(data[18] | data[19] << 8);
        hd.height = int64_t(data[20] | data[21] << 8);
      } else {
        hd.width = int32_t(le32(data + 18));
        hd.height = int32_t(le32(data + 22));
        if (hd.height < 0) hd.height = -hd.height;
      }
      sized = true;
    }
  } else {
    throw IOError(name + ": cannot decode image: not a PNG, JPEG or BMP file (the bytes look like " +
                  describe_bytes(data, size) + "); only PNG, JPEG and BMP images are accepted");
  }
  static const char* format_names[] = {"PNG", "JPEG", "BMP"};
  if (!sized)
    throw IOError(name + ": cannot decode image: truncated or corrupt " + format_names[int(hd.format)] +
                  " header (no image size found)");
  if (hd.width <= 0 || hd.height <= 0 || hd.width > kMaxImageSide || hd.height > kMaxImageSide ||
      hd.width * hd.height > kMaxImagePixels)
    throw IOError(name + ": image size " + size_str(hd.height, hd.width) + " (HxW) is outside the accepted range " +
                  "(at most " + std::to_string(kMaxImageSide) + " px a side and " + std::to_string(kMaxImagePixels) +
                  " px)");
  std::string bad = hd.format == ImageFormat::PNG   ? png_structure_error(data, size)
                    : hd.format == ImageFormat::BMP ? bmp_structure_error(data, size, hd.height, hd.width)
                                                    : jpeg_structure_error(data, size);
  if (!bad.empty())
    throw IOError(name + ": cannot decode image: corrupt " + format_names[int(hd.format)] + " file: " + bad);
  return hd;
}

uint64_t last_decode_peak_bytes() { return stb_budget::state.peak; }

void check_resize_size(int64_t height, int64_t width, const char* op) {
  if (height < 0 || width < 0 || (height == 0) != (width == 0))
    throw ValueError(std::string(op) + ": resize size " + size_str(height, width) +
                     " must be both positive or both 0 (keep)");
  if (height > kMaxImageSide || width > kMaxImageSide || height * width > kMaxImagePixels)
    throw ValueError(std::string(op) + ": resize size " + size_str(height, width) + " exceeds the limit of " +
                     std::to_string(kMaxImageSide) + " px a side and " + std::to_string(kMaxImagePixels) + " px");
}

DecodedImage decode_image(const uint8_t* data, size_t size, const std::string& name, int channels,
                          int64_t height, int64_t width) {
  if (channels != 1 && channels != 3)
    throw ValueError("decode_image: channels must be 1 or 3, got " + std::to_string(channels));
  check_resize_size(height, width, "decode_image");
  const ImageHeader hd = probe_image(data, size, name);  // format and size are checked before stb sees the data
  if (size > size_t(INT32_MAX)) throw IOError(name + ": too large to decode");
  // stb's allocation budget for this decode: 8x the widest decoded image the header's size allows (4
  // channels of 16 bits, padded to 32 px for JPEG MCUs, PNG filter bytes and Adam7 passes), as stb holds a
  // few such buffers at once (zlib output doubling, 16-bit and channel conversions, progressive JPEG
  // coefficients), plus 3x the file (PNG IDAT gathered with doubling) and 1 MiB for stb's own structures.
  // The scope outlives `pixels` below, so stb's frees are counted while the budget is set.
  struct BudgetScope {
    explicit BudgetScope(uint64_t limit) { stb_budget::state = {limit, 0, 0, false}; }
    ~BudgetScope() { stb_budget::state.limit = UINT64_MAX; }
  };
  const uint64_t widest = uint64_t(hd.height + 32) * uint64_t(hd.width + 32) * 8;  // < 2^32: no overflow
  const BudgetScope budget(8 * widest + 3 * uint64_t(size) + (uint64_t(1) << 20));
  auto stb_error = [&]() {
    if (stb_budget::state.exceeded)
      return IOError(name + ": cannot decode image: the decoded data exceeds what its header implies (" +
                     size_str(hd.height, hd.width) + " px need at most " + std::to_string(stb_budget::state.limit) +
                     " bytes of decoder memory; corrupt file or decompression bomb)");
    return IOError(name + ": cannot decode image: " + stbi_failure_reason());
  };
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, int(size), &w, &h, &comp)) throw stb_error();
  if (w != hd.width || h != hd.height)
    throw IOError(name + ": cannot decode image: corrupt header (size " + size_str(hd.height, hd.width) +
                  " in the header, " + size_str(h, w) + " found by the decoder)");
  // 8-bit output only (16-bit PNGs are converted by stb), `channels` interleaved components.
  std::unique_ptr<unsigned char, StbFree> pixels(stbi_load_from_memory(data, int(size), &w, &h, &comp, channels));
  if (!pixels) throw stb_error();
  if (w != hd.width || h != hd.height)
    throw IOError(name + ": cannot decode image: decoded size " + size_str(h, w) + " differs from the header's " +
                  size_str(hd.height, hd.width));

  const unsigned char* hwc = pixels.get();
  std::vector<unsigned char> resized;
  DecodedImage out;
  out.height = h;
  out.width = w;
  if (height > 0 && width > 0 && (height != h || width != w)) {
    resized.resize(size_t(height * width * channels));
    if (!stbir_resize_uint8(hwc, w, h, 0, resized.data(), int(width), int(height), 0, channels))
      throw IOError(name + ": cannot resize image from " + size_str(h, w) + " to " + size_str(height, width));
    hwc = resized.data();
    out.height = height;
    out.width = width;
    pixels.reset();  // the full-size pixels are no longer needed
  }
  // stb gives interleaved HWC; Dataset keeps CHW (the layout of conv2d inputs).
  const int64_t plane = out.height * out.width;
  out.chw.resize(size_t(plane * channels));
  for (int64_t p = 0; p < plane; ++p)
    for (int c = 0; c < channels; ++c) out.chw[size_t(c * plane + p)] = hwc[p * channels + c];
  return out;
}

}  // namespace advgrad
