// How this copy of advgrad was built, as run files record it (config.json). The facts come from CMake
// (compile definitions of build_info.cpp, set in the top-level CMakeLists.txt), never typed by hand.
#pragma once
#include <string>

namespace advgrad {

struct BuildInfo {
  std::string version;     // the project version: "0.1.0"
  std::string compiler;    // CMake's compiler id and version: "GNU 12.2.0"
  std::string build_type;  // "Release", "Debug", ...; "" when the build named none
  bool native = false;     // -march=native (ADVGRAD_NATIVE=ON); false: portable, run-time ISA dispatch
  bool openmp = false;     // parallel kernels (ADVGRAD_OPENMP=ON)
};

const BuildInfo& build_info();

}  // namespace advgrad
