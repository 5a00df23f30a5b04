#include "advgrad/data/load_dataset.h"

#include <filesystem>

#include "advgrad/core/error.h"
#include "advgrad/data/cifar.h"
#include "advgrad/data/file_io.h"
#include "advgrad/data/mnist.h"

namespace fs = std::filesystem;

namespace advgrad {
namespace {

// Filesystem errors (a symlink loop, a broken link) are IOErrors naming the path, never "not recognised".
bool exists_in(const fs::path& dir, const std::string& name) {
  return path_kind((dir / name).string()) != PathKind::Missing;
}

bool has_idx_files(const fs::path& dir) {
  for (const char* base : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"})
    if (!find_idx_file(dir.string(), base).empty()) return true;
  return false;
}

bool has_cifar_files(const fs::path& dir) {
  for (const char* name : {"data_batch_1.bin", "test_batch.bin", "train.bin", "test.bin"})
    if (exists_in(dir, name)) return true;
  return false;
}

// True when some non-hidden subfolder of dir holds at least one image file (a quick look, not a load).
bool looks_like_image_folder(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || path_kind(it->path().string()) != PathKind::Directory) continue;
    std::error_code ec2;
    fs::directory_iterator f(it->path(), ec2);
    for (; !ec2 && f != end; f.increment(ec2))
      if (is_image_file_name(f->path().filename().string()) && path_kind(f->path().string()) != PathKind::Directory)
        return true;
    if (ec2) throw IOError(it->path().string() + ": cannot list directory: " + ec2.message());
  }
  if (ec) throw IOError(dir.string() + ": cannot list directory: " + ec.message());
  return false;
}

}  // namespace

DatasetLocation detect_dataset(const std::string& path, const std::string& split) {
  if (split != "train" && split != "test")
    throw ValueError("load_dataset: split must be \"train\" or \"test\", got \"" + split + "\"");
  require_directory(path);
  const fs::path dir(path);
  if (has_idx_files(dir)) return {"mnist-family", path};
  if (has_cifar_files(dir)) return {"cifar", path};
  for (const char* sub : {"cifar-10-batches-bin", "cifar-100-binary"})
    if (has_cifar_files(dir / sub)) return {"cifar", (dir / sub).string()};
  if (path_kind((dir / split).string()) == PathKind::Directory && looks_like_image_folder(dir / split))
    return {"image-folder", (dir / split).string()};
  if (looks_like_image_folder(dir)) return {"image-folder", path};
  throw IOError(path + ": not a recognised dataset (no MNIST IDX files, no CIFAR .bin files, no class "
                       "subfolders with .png/.jpg/.jpeg/.bmp images)");
}

Dataset load_dataset(const std::string& path, const std::string& split, const ImageFolderOptions& image_options) {
  DatasetLocation at = detect_dataset(path, split);
  if (at.kind == "mnist-family") return load_mnist_family(at.dir, split);
  if (at.kind == "cifar") return load_cifar(at.dir, split);
  return load_image_folder(at.dir, image_options);
}

}  // namespace advgrad
