// MNIST-family datasets (MNIST, Fashion-MNIST): a directory holding the four IDX files
//   train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
// each raw or with a .gz suffix (the raw file wins when both exist). Images are [N, rows, cols] uint8,
// labels [N] uint8 in 0..9; the Dataset has sample shape [1, rows, cols] and 10 classes.
#pragma once
#include <string>
#include <vector>

#include "advgrad/data/dataset.h"

namespace advgrad {

// Where Debian's dataset-fashion-mnist package installs Fashion-MNIST: the default data directory.
std::string default_fashion_mnist_dir();

// Both datasets share the file format, so the files cannot tell them apart. Auto picks Fashion when any
// component of the directory's path contains "fashion" (case-insensitive), Digits otherwise; pass the
// variant explicitly when the path does not say.
enum class MnistVariant { Auto, Digits, Fashion };
const std::vector<std::string>& mnist_class_names();          // "0".."9"
const std::vector<std::string>& fashion_mnist_class_names();  // "T-shirt/top", "Trouser", ...
MnistVariant detect_mnist_variant(const std::string& dir);    // Digits or Fashion, never Auto

// The existing file for a base name in dir: dir/base, else dir/base.gz, else "" (none). IOError naming the
// path when it cannot be told (a symlink loop, a broken link: see path_kind).
std::string find_idx_file(const std::string& dir, const std::string& base);

// split is "train" or "test" (ValueError otherwise); kind is "mnist" or "fashion-mnist". IOError naming
// the file for a missing file, any IDX problem (see parse_idx), images that are not 3-D, no images, an
// image/label count mismatch, or a label outside 0..9.
Dataset load_mnist_family(const std::string& dir, const std::string& split,
                          MnistVariant variant = MnistVariant::Auto);

}  // namespace advgrad
