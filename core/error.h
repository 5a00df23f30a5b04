// Typed exceptions. Every error message names the op, file or argument and what is wrong.
#pragma once
#include <stdexcept>
#include <string>

namespace advgrad {

// Base of all advgrad errors; catch this to handle any of them.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Shapes that do not fit together, e.g. "matmul: [128,1568] x [1586,100]: inner dims differ".
struct ShapeError : Error { using Error::Error; };
// A dtype or device the op cannot take.
struct TypeError : Error { using Error::Error; };
// A bad argument value (negative size, axis out of range, ...).
struct ValueError : Error { using Error::Error; };
// Autograd misuse: backward through a modified tensor, grad of a tensor that needs none, ...
struct AutogradError : Error { using Error::Error; };
// A file that is missing, truncated or malformed; the message names the file.
struct IOError : Error { using Error::Error; };

}  // namespace advgrad
