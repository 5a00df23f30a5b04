// CIFAR-10 and CIFAR-100, "binary version" (the files of cifar-10-batches-bin/ and cifar-100-binary/).
//   CIFAR-10:  data_batch_1.bin .. data_batch_5.bin (train), test_batch.bin (test);
//              records of 1 label byte + 3072 pixel bytes; names from batches.meta.txt.
//   CIFAR-100: train.bin, test.bin; records of 2 label bytes (coarse, fine) + 3072 pixel bytes; the fine
//              label (100 classes) is used; names from fine_label_names.txt.
// Pixels are 1024 red, 1024 green, 1024 blue bytes, each 32x32 row-major: already CHW [3, 32, 32].
// Without the names file, classes are named "0", "1", ...
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "advgrad/data/dataset.h"

namespace advgrad {

// Appends the records held in memory to images/labels. label_bytes is 1 (CIFAR-10) or 2 (CIFAR-100: the
// coarse label must be < 20, the fine label is kept); num_classes bounds the kept label. IOError naming
// `name` for an empty input, a size that is not a whole number of records, or a label out of range.
void parse_cifar_records(const uint8_t* data, size_t size, const std::string& name, int label_bytes,
                         int64_t num_classes, std::vector<uint8_t>& images, std::vector<int64_t>& labels);

// The class names file held in memory: one name per non-empty line, trailing spaces, tabs and '\r' dropped.
// IOError naming `name` unless there are exactly n names, all valid UTF-8 without control characters.
std::vector<std::string> parse_class_names(const uint8_t* data, size_t size, const std::string& name, int64_t n);

// dir holds CIFAR-10 files (data_batch_1.bin or test_batch.bin present) or CIFAR-100 files (train.bin or
// test.bin); split is "train" or "test". kind is "cifar10" or "cifar100". IOError naming the directory when
// it holds neither, and the file for a missing batch, a bad record or a names file whose line count is not
// the class count.
Dataset load_cifar(const std::string& dir, const std::string& split);

}  // namespace advgrad
