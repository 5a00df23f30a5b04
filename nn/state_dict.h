// A state dict: tensors by hierarchical name ("0.weight", "lstm.weight_ih_l0"), as PyTorch's state_dict().
// Sorted by name, so iterating it is deterministic.
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"

namespace advgrad {

using StateDict = std::map<std::string, Tensor>;

}  // namespace advgrad
