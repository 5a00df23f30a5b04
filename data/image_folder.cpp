#include "advgrad/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>

#include "advgrad/core/error.h"
#include "advgrad/core/parallel.h"
#include "advgrad/data/file_io.h"

namespace fs = std::filesystem;

namespace advgrad {

bool is_image_file_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

namespace {

std::string size_str(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

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

// Both follow symlinks (a linked class folder counts); a loop or broken link is an IOError naming it rather
// than a class or an image silently left out.
bool is_dir(const fs::directory_entry& e) { return path_kind(e.path().string()) == PathKind::Directory; }

bool is_image_entry(const fs::directory_entry& e) {
  return is_image_file_name(e.path().filename().string()) && path_kind(e.path().string()) != PathKind::Directory;
}

}  // namespace

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

  // Exceptions must not leave a parallel region (that terminates the program), so each file keeps its own
  // exception (storing an exception_ptr cannot throw, unlike building a message string) and the first one
  // in file order is thrown afterwards, outside the region (same error at any thread count).
  const int channels = options.grayscale ? 1 : 3;
  const int64_t n = int64_t(files.size());
  std::vector<std::exception_ptr> errors(files.size());
  auto first_error = [&] {
    for (size_t i = 0; i < errors.size(); ++i) {
      if (!errors[i]) continue;
      try {
        std::rethrow_exception(errors[i]);
      } catch (const IOError&) {
        throw;  // already names the file
      } catch (const std::exception& e) {
        throw IOError(files[i] + ": " + e.what());  // e.g. bad_alloc
      } catch (...) {
        throw IOError(files[i] + ": unknown error while loading the image");
      }
    }
  };
  auto for_each_file = [&](const std::function<void(size_t)>& f) {
    parallel_for(n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        try {
          f(size_t(i));
        } catch (...) {
          errors[size_t(i)] = std::current_exception();
        }
      }
    });
    first_error();
  };

  // First the headers of every file: a folder of small files claiming huge sizes is refused before
  // anything is decoded (24 PNGs of 16384x4096 zeros are 4.6 MB on disk and 4.5 GiB decoded).
  std::vector<uint64_t> kept(files.size());
  for_each_file([&](size_t i) {
    std::vector<uint8_t> bytes = read_file_bytes(files[i]);
    ImageHeader hd = probe_image(bytes.data(), bytes.size(), files[i]);
    const int64_t h = options.height > 0 ? options.height : hd.height, w = options.width > 0 ? options.width : hd.width;
    kept[i] = uint64_t(h) * uint64_t(w) * uint64_t(channels);  // each factor is bounded: no overflow
  });
  uint64_t total = 0;
  for (uint64_t k : kept) total += k;  // at most 2^26 px * 3 per file, so no overflow below 2^40 files
  if (total > options.max_total_bytes)
    throw IOError(dir + ": the " + std::to_string(files.size()) + " images decode to " + std::to_string(total) +
                  " bytes, more than the " + std::to_string(options.max_total_bytes) +
                  "-byte limit for an image folder (set a smaller resize size or use fewer images)");

  std::vector<DecodedImage> decoded(files.size());
  for_each_file([&](size_t i) {
    std::vector<uint8_t> bytes = read_file_bytes(files[i]);
    decoded[i] = decode_image(bytes.data(), bytes.size(), files[i], channels, options.height, options.width);
  });

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
