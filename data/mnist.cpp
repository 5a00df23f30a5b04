#include "advgrad/data/mnist.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "advgrad/core/error.h"
#include "advgrad/data/file_io.h"
#include "advgrad/data/idx.h"

namespace fs = std::filesystem;

namespace advgrad {

std::string default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

const std::vector<std::string>& mnist_class_names() {
  static const std::vector<std::string> names{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  return names;
}

const std::vector<std::string>& fashion_mnist_class_names() {
  // Label order from the Fashion-MNIST README (Zalando Research).
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

MnistVariant detect_mnist_variant(const std::string& dir) {
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(dir), ec);  // on failure: the path as given
  std::string path = (ec ? fs::path(dir) : abs).lexically_normal().string();
  std::transform(path.begin(), path.end(), path.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return path.find("fashion") != std::string::npos ? MnistVariant::Fashion : MnistVariant::Digits;
}

std::string find_idx_file(const std::string& dir, const std::string& base) {
  for (const std::string& name : {base, base + ".gz"}) {
    fs::path p = fs::path(dir) / name;
    if (path_kind(p.string()) != PathKind::Missing) return p.string();  // a symlink loop is an IOError here
  }
  return "";
}

namespace {
std::string require_idx_file(const std::string& dir, const std::string& base) {
  std::string path = find_idx_file(dir, base);
  if (path.empty())
    throw IOError((fs::path(dir) / base).string() + ": no such file (nor " + base + ".gz) in the MNIST directory");
  return path;
}
}  // namespace

Dataset load_mnist_family(const std::string& dir, const std::string& split, MnistVariant variant) {
  if (split != "train" && split != "test")
    throw ValueError("load_mnist_family: split must be \"train\" or \"test\", got \"" + split + "\"");
  require_directory(dir);
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_path = require_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = require_idx_file(dir, prefix + "-labels-idx1-ubyte");

  IdxArray images = read_idx(images_path);
  if (images.dims.size() != 3)
    throw IOError(images_path + ": image file has " + std::to_string(images.dims.size()) +
                  " dims, expected 3 [count, rows, cols]");
  if (images.dims[0] == 0) throw IOError(images_path + ": contains no images");
  if (images.dims[1] == 0 || images.dims[2] == 0) throw IOError(images_path + ": images have a zero-sized side");
  IdxArray labels = read_idx(labels_path);
  if (labels.dims.size() != 1)
    throw IOError(labels_path + ": label file has " + std::to_string(labels.dims.size()) + " dims, expected 1 [count]");
  if (labels.dims[0] != images.dims[0])
    throw IOError(labels_path + ": " + std::to_string(labels.dims[0]) + " labels but " + images_path + " has " +
                  std::to_string(images.dims[0]) + " images (count mismatch)");

  if (variant == MnistVariant::Auto) variant = detect_mnist_variant(dir);
  Dataset d;
  d.kind = variant == MnistVariant::Fashion ? "fashion-mnist" : "mnist";
  d.source = dir;
  d.sample_shape = {1, images.dims[1], images.dims[2]};
  d.num_classes = 10;
  d.class_names = variant == MnistVariant::Fashion ? fashion_mnist_class_names() : mnist_class_names();
  d.labels.resize(labels.data.size());
  for (size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= d.num_classes)
      throw IOError(labels_path + ": label " + std::to_string(labels.data[i]) + " at index " + std::to_string(i) +
                    " is outside the class range 0..9");
    d.labels[i] = labels.data[i];
  }
  d.images = std::move(images.data);  // [N, rows, cols] is already [N, 1, rows, cols] in CHW order
  d.check();
  return d;
}

}  // namespace advgrad
