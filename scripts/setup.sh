#!/usr/bin/env bash
# Installs the Debian 12 packages advgrad needs (apt-get only; nothing is downloaded at build time).
# As root, missing packages are installed; otherwise the exact apt-get line is printed and we exit 1.
# Usage: scripts/setup.sh [--peer] [--sanitizers] [--package] [--qemu] [--aarch64] [--browser]
#   --peer        adds PyTorch, python3-onnx + OpenBLAS (golden fixtures and the benchmark peer; never needed to build)
#   --sanitizers  adds clang with its sanitizer/libFuzzer runtimes and OpenMP (scripts/sanitize.sh, fuzz.sh)
#   --package     adds pkg-config (scripts/check_package.sh checks advgrad.pc with it)
#   --qemu        adds qemu-user (run the portable binary as an older CPU: qemu-x86_64 -cpu Haswell|Nehalem)
#   --aarch64     adds the aarch64 cross compiler, qemu-user and the arm64 libraries (scripts/aarch64.sh); this
#                 enables the arm64 architecture in dpkg (multiarch). libonnx-dev:arm64 is not co-installable
#                 with the amd64 one (both ship /usr/lib/libonnx*.so), so the cross build has no ONNX.
#   --browser     adds Debian's chromium, for tests only: the report_browser test opens `advgrad report`'s page in
#                 headless Chromium (skipped without it; `make test` asks for it)
set -euo pipefail

want_arm64=0
packages=(build-essential cmake libeigen3-dev doctest-dev libstb-dev zlib1g-dev libcli11-dev nlohmann-json3-dev
          libonnx-dev libprotobuf-dev dataset-fashion-mnist)
for arg in "$@"; do
  case "$arg" in
    --peer) packages+=(python3-torch python3-numpy python3-onnx libopenblas0-pthread) ;;
    --sanitizers) packages+=(clang libclang-rt-14-dev libomp-dev) ;;
    --package) packages+=(pkgconf) ;;
    --qemu) packages+=(qemu-user) ;;
    --browser) packages+=(chromium) ;;
    --aarch64) packages+=(g++-aarch64-linux-gnu libc6-dev-arm64-cross libgomp1-arm64-cross qemu-user file
                          zlib1g-dev:arm64 libstb-dev:arm64 libstdc++6:arm64 libgomp1:arm64); want_arm64=1 ;;
    *) echo "scripts/setup.sh: unknown option '$arg' (options: --peer, --sanitizers, --package, --qemu, --aarch64, --browser)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "advgrad: missing Debian packages. Install them with:" >&2
  [[ $want_arm64 -eq 1 ]] && echo "  sudo dpkg --add-architecture arm64" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "advgrad: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The :arm64 packages are only visible once dpkg knows the architecture and apt has read its lists.
if [[ $want_arm64 -eq 1 ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
