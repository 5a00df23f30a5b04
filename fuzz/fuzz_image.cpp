// libFuzzer target for image decoding through our wrapper (decode_image: magic bytes, header size checks,
// then stb_image compiled with PNG, JPEG and BMP only, from data/image_decode.cpp). Each input is decoded
// to RGB at its own size and to grayscale resized to 5x7. Any outcome other than pixels of the announced
// size or an IOError is a bug; that includes stb needing more memory than the per-decode budget (which is
// an IOError) and anything libFuzzer's -rss_limit_mb catches (run once with -max_len=3000000 so that it
// can try decompression bombs: a 1x1 PNG with MBs of zero IDAT used to take 2-3 GiB).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "advgrad/core/error.h"
#include "advgrad/data/image_folder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    advgrad::ImageHeader hd = advgrad::probe_image(data, size, "fuzz-input");
    advgrad::DecodedImage rgb = advgrad::decode_image(data, size, "fuzz-input", 3);
    if (rgb.height != hd.height || rgb.width != hd.width || rgb.chw.size() != size_t(3 * rgb.height * rgb.width))
      std::abort();
    advgrad::DecodedImage gray = advgrad::decode_image(data, size, "fuzz-input", 1, 5, 7);
    if (gray.height != 5 || gray.width != 7 || gray.chw.size() != 35) std::abort();
  } catch (const advgrad::IOError&) {
    // The expected answer to malformed input.
  }
  return 0;
}
