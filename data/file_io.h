// Whole-file reading with a size cap, and atomic writing. Loaders read a file once and parse the bytes in
// memory, so a parser always knows the real size and a header can be checked against it before anything
// is allocated from it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace advgrad {

// The most a loader holds for one file, before or after decompression: 1 GiB. The largest real file here
// (Fashion-MNIST train images, 47 MB unpacked) is far below it; anything larger is treated as corrupt
// rather than risking an out-of-memory kill.
constexpr uint64_t kMaxDataFileBytes = uint64_t(1) << 30;

// All bytes of a regular file. IOError naming `path` when it is missing, not a regular file, unreadable,
// shrinks while being read, or is larger than max_bytes.
std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes = kMaxDataFileBytes);

// What a path names, following symbolic links.
enum class PathKind { Missing, Directory, Other };
// Missing only when nothing is there (ENOENT, ENOTDIR). Any other failure is an IOError naming the path and
// the cause, so that a symlink loop or an unreadable directory is reported as such instead of looking like
// an absent file: "too many levels of symbolic links", "permission denied", or "broken symbolic link".
PathKind path_kind(const std::string& path);

// IOError "<dir>: no such directory" or "<dir>: is not a directory" unless dir is a directory.
void require_directory(const std::string& dir);

// Writes `size` bytes to a temporary file next to `path`, fsyncs it and renames it over `path`: readers see
// the old file or the whole new one, never half of it. IOError naming `path` on any failure (the temporary
// is removed).
void write_file_atomic(const std::string& path, const void* data, size_t size);

}  // namespace advgrad
