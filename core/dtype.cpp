#include "advgrad/core/dtype.h"

#include "advgrad/core/error.h"

namespace advgrad {

void throw_not_floating(const char* op) {
  throw TypeError(std::string(op) + ": needs a floating-point tensor (float32 or float64), got int64");
}

}  // namespace advgrad
