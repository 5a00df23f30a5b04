# Cross build for 64-bit ARM (aarch64) with Debian's g++-aarch64-linux-gnu (docs/PLATFORMS.md).
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake -DADVGRAD_NATIVE=OFF
# Libraries come from Debian's multiarch arm64 packages (zlib1g-dev:arm64, libstb-dev:arm64, installed by
# scripts/setup.sh --aarch64) in /usr/lib/aarch64-linux-gnu; header-only ones (Eigen, doctest, CLI11,
# nlohmann-json) are shared with the host. Tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(ADVGRAD_CROSS_TRIPLE aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${ADVGRAD_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${ADVGRAD_CROSS_TRIPLE}-g++)
# Search lib/aarch64-linux-gnu (never the host's lib/x86_64-linux-gnu) under these roots.
set(CMAKE_LIBRARY_ARCHITECTURE ${ADVGRAD_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH /usr/${ADVGRAD_CROSS_TRIPLE} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)   # programs (protoc, ...) are the host's
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# ctest (and CMake's try_run) start each aarch64 program through qemu-user; no binfmt_misc registration
# is needed. The programs' loader and run-time libraries are Debian's multiarch arm64 ones (libc6:arm64,
# libstdc++6:arm64, libgomp1:arm64 in /lib/aarch64-linux-gnu), found as on a board. Not `-L
# /usr/aarch64-linux-gnu`: that takes the cross package's ld.so while the loader cache still finds the
# multiarch libc.so.6, a different glibc build, and such a mix hangs at the first thread.
find_program(ADVGRAD_QEMU_AARCH64 qemu-aarch64)
if(ADVGRAD_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${ADVGRAD_QEMU_AARCH64})
endif()
