// One entry point for every dataset format: the kind is detected from what the directory holds.
#pragma once
#include <string>

#include "advgrad/data/dataset.h"
#include "advgrad/data/image_folder.h"

namespace advgrad {

// The format detect_dataset_kind found, and the directory to load it from.
struct DatasetLocation {
  std::string kind;  // "mnist-family", "cifar" or "image-folder"
  std::string dir;
};

// Looks at `path` for split ("train" or "test"), in this order:
//   1. IDX files (train-/t10k-images-idx3-ubyte[.gz]) => "mnist-family"
//   2. CIFAR files (data_batch_1.bin / test_batch.bin / train.bin / test.bin) => "cifar"; also inside a
//      cifar-10-batches-bin/ or cifar-100-binary/ subfolder (as the archives unpack)
//   3. an image folder: path/<split>/<class>/<images> when path/<split> exists, otherwise
//      path/<class>/<images> (then the same images serve both splits)
// IOError naming the path when it is missing, not a directory, or none of the above.
DatasetLocation detect_dataset(const std::string& path, const std::string& split);

// Detects and loads. Image folders use `image_options`; MNIST-family class names follow MnistVariant::Auto
// (see mnist.h). ValueError for a split other than "train" or "test".
Dataset load_dataset(const std::string& path, const std::string& split,
                     const ImageFolderOptions& image_options = {});

}  // namespace advgrad
