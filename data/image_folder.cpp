#include "data/image_folder.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/parallel.h"
#include "data/file_io.h"

namespace fs = std::filesystem;

namespace advgrad {

bool is_image_file_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

namespace {

std::string size_str(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

struct StbFree {
  void operator()(unsigned char* p) const { stbi_image_free(p); }
};

// Sorted names of the non-hidden entries of dir for which keep(entry) holds. Filesystem errors become an
// IOError naming dir.
template <class Keep>
std::vector<std::string> sorted_entries(const std::string& dir, Keep keep) {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && keep(*it)) names.push_back(name);
  }
  if (ec) throw IOError(dir + ": cannot list directory: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

bool is_dir(const fs::directory_entry& e) {
  std::error_code ec;
  return e.is_directory(ec);  // follows symlinks, so a linked class folder counts
}

bool is_image_entry(const fs::directory_entry& e) {
  std::error_code ec;
  return !e.is_directory(ec) && is_image_file_name(e.path().filename().string());
}

// Both 0 (keep) or both positive and within the limits for decoded images.
void check_resize_size(int64_t height, int64_t width, const char* op) {
  if (height < 0 || width < 0 || (height == 0) != (width == 0))
    throw ValueError(std::string(op) + ": resize size " + size_str(height, width) +
                     " must be both positive or both 0 (keep)");
  if (height > kMaxImageSide || width > kMaxImageSide || height * width > kMaxImagePixels)
    throw ValueError(std::string(op) + ": resize size " + size_str(height, width) + " exceeds the limit of " +
                     std::to_string(kMaxImageSide) + " px a side and " + std::to_string(kMaxImagePixels) + " px");
}

}  // namespace

DecodedImage decode_image(const uint8_t* data, size_t size, const std::string& name, int channels,
                          int64_t height, int64_t width) {
  if (channels != 1 && channels != 3)
    throw ValueError("decode_image: channels must be 1 or 3, got " + std::to_string(channels));
  check_resize_size(height, width, "decode_image");
  if (size == 0) throw IOError(name + ": empty file (0 bytes)");
  if (size > size_t(INT32_MAX)) throw IOError(name + ": too large to decode");
  // Dims come from the header first, so an absurd claim is refused before stb allocates for it.
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, int(size), &w, &h, &comp))
    throw IOError(name + ": cannot decode image: " + stbi_failure_reason());
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide || int64_t(w) * h > kMaxImagePixels)
    throw IOError(name + ": image size " + size_str(h, w) + " (HxW) is outside the accepted range (at most " +
                  std::to_string(kMaxImageSide) + " px a side and " + std::to_string(kMaxImagePixels) + " px)");
  std::unique_ptr<unsigned char, StbFree> pixels(stbi_load_from_memory(data, int(size), &w, &h, &comp, channels));
  if (!pixels) throw IOError(name + ": cannot decode image: " + stbi_failure_reason());

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
  }
  // stb gives interleaved HWC; Dataset keeps CHW (the layout of conv2d inputs).
  const int64_t plane = out.height * out.width;
  out.chw.resize(size_t(plane * channels));
  for (int64_t p = 0; p < plane; ++p)
    for (int c = 0; c < channels; ++c) out.chw[size_t(c * plane + p)] = hwc[p * channels + c];
  return out;
}

Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& options) {
  check_resize_size(options.height, options.width, "load_image_folder");
  require_directory(dir);
  const std::vector<std::string> classes = sorted_entries(dir, is_dir);
  if (classes.empty()) throw IOError(dir + ": no class subfolders (expected root/<class>/<image files>)");

  std::vector<std::string> files;
  std::vector<int64_t> labels;
  for (size_t c = 0; c < classes.size(); ++c) {
    const std::string class_dir = (fs::path(dir) / classes[c]).string();
    std::vector<std::string> names = sorted_entries(class_dir, is_image_entry);
    if (names.empty()) throw IOError(class_dir + ": empty class folder (no .png, .jpg, .jpeg or .bmp files)");
    for (const std::string& n : names) {
      files.push_back((fs::path(class_dir) / n).string());
      labels.push_back(int64_t(c));
    }
  }

  // Decode in parallel, one file per chunk. Exceptions must not leave a parallel region, so each file
  // keeps its own error and the first one in file order is thrown afterwards (same error at any thread count).
  const int channels = options.grayscale ? 1 : 3;
  const int64_t n = int64_t(files.size());
  std::vector<DecodedImage> decoded(files.size());
  std::vector<std::string> errors(files.size());
  parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        std::vector<uint8_t> bytes = read_file_bytes(files[size_t(i)]);
        decoded[size_t(i)] = decode_image(bytes.data(), bytes.size(), files[size_t(i)], channels, options.height,
                                          options.width);
      } catch (const IOError& e) {
        errors[size_t(i)] = e.what();  // already names the file
      } catch (const std::exception& e) {
        errors[size_t(i)] = files[size_t(i)] + ": " + e.what();  // e.g. bad_alloc
      }
    }
  });
  for (const std::string& e : errors)
    if (!e.empty()) throw IOError(e);

  Dataset d;
  d.kind = "image-folder";
  d.source = dir;
  d.num_classes = int64_t(classes.size());
  d.class_names = classes;
  d.labels = std::move(labels);
  const DecodedImage& first = decoded[0];
  d.sample_shape = {channels, first.height, first.width};
  d.images.reserve(decoded.size() * first.chw.size());
  for (size_t i = 0; i < decoded.size(); ++i) {
    if (decoded[i].height != first.height || decoded[i].width != first.width)
      throw IOError(files[i] + ": image is " + size_str(decoded[i].height, decoded[i].width) + " (HxW) but " +
                    files[0] + " is " + size_str(first.height, first.width) +
                    "; set a resize size to load images of different sizes");
    d.images.insert(d.images.end(), decoded[i].chw.begin(), decoded[i].chw.end());
    std::vector<uint8_t>().swap(decoded[i].chw);  // release as we go: peak memory stays near one copy
  }
  d.check();
  return d;
}

}  // namespace advgrad
