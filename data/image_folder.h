// Image folders: root/<class>/<image>, one subfolder per class (the torchvision ImageFolder layout).
// Classes are the subfolder names sorted bytewise (label = position); files are sorted by name within a
// class. Images are .png, .jpg, .jpeg or .bmp (any letter case), decoded by stb_image to RGB (alpha
// dropped) or to grayscale. Hidden entries (names starting with '.') and other files are ignored.
// Whatever the name says, a file is decoded only when its magic bytes say PNG, JPEG or BMP (stb_image is
// compiled with those three decoders only), and only after its header size has been checked.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "advgrad/data/dataset.h"
#include "advgrad/data/file_io.h"

namespace advgrad {

struct ImageFolderOptions {
  bool grayscale = false;  // 1 channel (stb_image's luma) instead of 3 (RGB)
  // Resize every image to height x width (bilinear-like filtering from stb_image_resize). Both 0: keep the
  // size, which must then be the same for every image.
  int64_t height = 0, width = 0;
  // The most the decoded folder may hold, in bytes (channels x height x width summed over the files, after
  // resizing), checked from the file headers before any image is decoded.
  uint64_t max_total_bytes = kMaxDataFileBytes;
};

// Largest image accepted before decoding (from the header): a side above 16384 px or more than 64 Mpx
// is refused instead of allocating for it.
constexpr int64_t kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;

enum class ImageFormat { PNG, JPEG, BMP };
struct ImageHeader {
  ImageFormat format = ImageFormat::PNG;
  int64_t height = 0, width = 0;
};
// The format (from the magic bytes) and the size (from the header) of an encoded image, without decoding it.
// IOError naming `name` for an empty input, another format (the message says what the bytes look like), a
// truncated header, or a size outside the limits above (the message gives the size).
ImageHeader probe_image(const uint8_t* data, size_t size, const std::string& name);

// ValueError naming `op` unless height and width are both 0 (keep the size) or both positive and within
// the limits above.
void check_resize_size(int64_t height, int64_t width, const char* op);

// True for a name with one of the image extensions above.
bool is_image_file_name(const std::string& name);

// One decoded image as CHW uint8 with `channels` (1 or 3) channels, resized when height/width > 0.
struct DecodedImage {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> chw;
};
// Decodes an image held in memory (probe_image first); IOError naming `name` for undecodable data,
// another format or oversized dims,
// ValueError for channels other than 1 or 3 or a bad resize size.
DecodedImage decode_image(const uint8_t* data, size_t size, const std::string& name, int channels,
                          int64_t height = 0, int64_t width = 0);
// The most bytes stb_image held at once during this thread's last decode_image call. Each decode has a
// budget of a few times what the header's size needs plus the file size; beyond it decode_image throws an
// IOError saying the decoded data exceeds what the header implies (e.g. a PNG decompression bomb).
uint64_t last_decode_peak_bytes();

// Loads the folder; files are decoded in parallel (parallel_for), results kept in file order. kind is
// "image-folder". IOError naming the path for: a missing root, no class subfolders, an empty class folder,
// an unreadable or undecodable image, or an image whose size differs from the first image's when no resize
// is set, and for the root when the images would decode to more than options.max_total_bytes (from the
// headers, before decoding). Every file's header is checked before any is decoded, so the error reported
// is the first bad header in file order if there is one (unreadable file, other format, bad size or
// structure), else the size limit, else the first file in file order whose decoding fails. ValueError for a negative, half-given or oversized resize size.
Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& options = {});

}  // namespace advgrad
