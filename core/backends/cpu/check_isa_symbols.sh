#!/bin/sh
# Usage: check_isa_symbols.sh ISA OBJECT... [-- ISA OBJECT...]
# Fails if an object file of the ISA copy of the cpu backend defines a weak (inline, template, vague-
# linkage) symbol whose name does not mention that copy (cpu_ISA or Eigen_ISA): the linker keeps one
# definition of such a name for the whole program, so an AVX-512 build of, say, std::fill<float*> could be
# what the baseline path ends up calling (SIGILL on an older CPU). A name that mentions the copy cannot
# collide with another copy's. DW.ref.__gxx_personality_v0 (a pointer to the C++ runtime's exception
# personality routine, no code) is the one name every copy may share.
set -u
status=0
isa=""
for arg in "$@"; do
  if [ "$arg" = "--" ]; then isa=""; continue; fi
  if [ -z "$isa" ]; then isa="$arg"; continue; fi
  shared=$(nm -C --defined-only "$arg" | awk '$2 ~ /^[WVui]$/' | grep -v -e "cpu_$isa" -e "Eigen_$isa" -e " DW.ref.__gxx_personality_v0$")
  if [ -n "$shared" ]; then
    echo "error: $arg ($isa copy) defines weak symbols shared with other copies:"
    echo "$shared"
    status=1
  fi
done
exit $status
