// Where a device keeps its bytes: one Allocator per Device (after tinygrad's Allocator: alloc, free,
// copyin, copyout). Storage asks its device's allocator for a block and gives it back; every move of bytes
// between the host and a tensor goes through copy_in / copy_out, so a device whose memory the host cannot
// address (a GPU) plugs in by adding an Allocator and a Backend, and nothing above core/ changes.
//
// Blocks are opaque: only the allocator that made a block and its device's backend (through
// core/device_memory.h) may interpret one. Byte offsets say where inside a block a copy starts.
#pragma once
#include <cstddef>

#include "advgrad/core/device.h"

namespace advgrad {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual const char* name() const = 0;
  // A block of at least nbytes, aligned to 64 bytes; nullptr for 0 bytes. std::bad_alloc when out of memory.
  virtual void* allocate(size_t nbytes) = 0;
  // Gives back a block from allocate(nbytes) (nullptr is ignored).
  virtual void free(void* block, size_t nbytes) = 0;
  // Host -> device: nbytes from host memory into block at byte `offset`.
  virtual void copy_in(void* block, size_t offset, const void* host, size_t nbytes) = 0;
  // Device -> host: nbytes from block at byte `offset` into host memory.
  virtual void copy_out(const void* block, size_t offset, void* host, size_t nbytes) = 0;
  // Device -> same device: nbytes between two blocks of this allocator (they may be the same block, but
  // the ranges must not overlap).
  virtual void copy(const void* src, size_t src_offset, void* dst, size_t dst_offset, size_t nbytes) = 0;
};

// The allocator of `device` (one instance each, alive for the whole program).
Allocator& allocator_for(Device device);

}  // namespace advgrad
