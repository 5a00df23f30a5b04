// safetensors read and write. Reading is in three steps so that nothing in a hostile file is trusted:
// (1) the 8-byte header length is checked against the file size and a hard limit, (2) the JSON header is
// parsed by a SAX handler that accepts only the format's exact shape and checks every entry (dtype, shape,
// offsets, byte count) and then that the entries tile the data section, (3) only then is tensor data
// read, one tensor at a time straight into its own tensor (never the whole data section at once), and
// for load_safetensors_into only the tensors the destination expects, after names and shapes matched.
#include "advgrad/nn/serialize.h"

#include "advgrad/core/fault.h"
#include "advgrad/core/grad_mode.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace advgrad {
namespace {

// The reference implementation refuses headers above 100 MB too; real headers are a few MB at most.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// No real tensor has this many dims; the cap keeps a hostile "shape": [1,1,1,...] from growing unbounded.
constexpr size_t kMaxRank = 64;
constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

const char* format_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
  }
  return "?";
}

std::optional<DType> parse_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F64") return DType::F64;
  if (s == "I64") return DType::I64;
  return std::nullopt;
}

// Names and dtype strings come from the file: quote them, escape anything unprintable, keep them short.
std::string printable(const std::string& s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 80) {
      out += "...";
      break;
    }
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "'";
}

[[noreturn]] void fail(const std::string& file, const std::string& problem) {
  throw IOError("load_safetensors: " + file + ": " + problem);
}

std::string os_error(int err) { return std::generic_category().message(err); }

// Tensor bytes move between files and tensors in pieces of this size (a multiple of every element width).
constexpr size_t kCopyPiece = size_t(1) << 20;

// safetensors data is little-endian; on a big-endian host every element's bytes are reversed in place.

void swap_bytes_if_big_endian(void* data, int64_t count, size_t width) {
  if (kHostLittleEndian) return;
  auto* b = static_cast<unsigned char*>(data);
  for (int64_t i = 0; i < count; ++i, b += width) std::reverse(b, b + width);
}

uint64_t read_u64_le(const unsigned char* b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

using Entry = SafetensorsTensorInfo;
using Header = SafetensorsHeader;

// Builds the entries straight from parse events, accepting only {name: {dtype, shape, data_offsets}} and
// {"__metadata__": {key: string}}. Working on events rather than a parsed document means a hostile header
// (deep nesting, huge arrays, unexpected types) is refused at its first wrong token instead of costing
// memory first, and duplicate keys are seen (a document keeps only the last one, silently).
class HeaderParser final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit HeaderParser(uint64_t data_size) : data_size_(data_size) {}

  Header header;
  std::string error;  // the first problem found; returning false stops the parser there

  bool null() override { return unexpected("null"); }
  bool boolean(bool) override { return unexpected("a boolean"); }
  bool number_integer(number_integer_t v) override {
    // The parser reports non-negative integers as unsigned, so this is a negative one.
    return v >= 0 ? number_unsigned(number_unsigned_t(v)) : unexpected("negative number " + std::to_string(v));
  }
  bool number_float(number_float_t, const string_t& text) override { return unexpected("number " + printable(text)); }
  bool binary(binary_t&) override { return unexpected("binary data"); }

  bool number_unsigned(number_unsigned_t v) override {
    if (at_ == At::Shape) {
      if (entry_.shape.size() == kMaxRank)
        return stop(tensor() + ": shape has more than " + std::to_string(kMaxRank) + " dimensions");
      if (v > uint64_t(INT64_MAX)) return stop(tensor() + ": shape dimension " + std::to_string(v) + " is too large");
      entry_.shape.push_back(int64_t(v));
      return true;
    }
    if (at_ == At::Offsets) {
      if (offsets_.size() == 2) return stop(tensor() + ": data_offsets has more than two entries");
      offsets_.push_back(v);
      return true;
    }
    return unexpected("number " + std::to_string(v));
  }

  bool string(string_t& s) override {
    if (at_ == At::Entry && field_ == Field::DType) {
      std::optional<DType> t = parse_dtype(s);
      if (!t) return stop(tensor() + ": dtype " + printable(s) + " is not supported (advgrad reads F32, F64 and I64)");
      entry_.dtype = *t;
      return true;
    }
    if (at_ == At::Metadata) {
      header.metadata[meta_key_] = s;
      return true;
    }
    return unexpected("string " + printable(s));
  }

  bool start_object(std::size_t) override {
    if (at_ == At::Start) {
      at_ = At::Root;
    } else if (at_ == At::Root && name_ == "__metadata__") {
      at_ = At::Metadata;
    } else if (at_ == At::Root) {
      at_ = At::Entry;
      entry_ = Entry{};
      offsets_.clear();
      has_dtype_ = has_shape_ = has_offsets_ = false;
    } else {
      return unexpected("an object");
    }
    return true;
  }

  bool key(string_t& k) override {
    if (at_ == At::Root) {
      if (k == "__metadata__" ? has_metadata_ : header.tensors.count(k) > 0)
        return stop("duplicate key " + printable(k) + " in the header (JSON readers disagree on which one wins)");
      if (k == "__metadata__") has_metadata_ = true;
      name_ = k;
    } else if (at_ == At::Entry) {
      bool* seen = k == "dtype"          ? &has_dtype_
                   : k == "shape"        ? &has_shape_
                   : k == "data_offsets" ? &has_offsets_
                                         : nullptr;
      if (!seen) return stop(tensor() + ": unknown field " + printable(k));
      if (*seen) return stop(tensor() + ": duplicate field " + printable(k));
      *seen = true;
      field_ = k == "dtype" ? Field::DType : k == "shape" ? Field::Shape : Field::Offsets;
    } else {  // At::Metadata: the only other place keys occur
      if (header.metadata.count(k)) return stop("duplicate key " + printable(k) + " in __metadata__");
      meta_key_ = k;
    }
    return true;
  }

  bool end_object() override {
    if (at_ == At::Entry) {
      if (!finish_entry()) return false;
      at_ = At::Root;
    } else if (at_ == At::Metadata) {
      at_ = At::Root;
    } else {  // At::Root: the header object is complete
      at_ = At::Done;
    }
    return true;
  }

  bool start_array(std::size_t) override {
    if (at_ == At::Entry && field_ == Field::Shape) {
      at_ = At::Shape;
    } else if (at_ == At::Entry && field_ == Field::Offsets) {
      at_ = At::Offsets;
    } else {
      return unexpected("an array");
    }
    return true;
  }

  bool end_array() override {
    if (at_ == At::Offsets && offsets_.size() != 2)
      return stop(tensor() + ": data_offsets has " + std::to_string(offsets_.size()) + " entries, not two");
    at_ = At::Entry;  // only Shape and Offsets arrays are ever opened
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) override {
    std::string what = e.what();
    if (what.size() > 300) what = what.substr(0, 300) + "...";  // it quotes the offending input
    return stop("header is not valid JSON: " + what);
  }

 private:
  enum class At { Start, Root, Entry, Metadata, Shape, Offsets, Done };
  enum class Field { DType, Shape, Offsets };

  uint64_t data_size_;
  At at_ = At::Start;
  Field field_ = Field::DType;
  std::string name_;      // the current top-level key
  std::string meta_key_;  // the current __metadata__ key
  Entry entry_;
  std::vector<uint64_t> offsets_;
  bool has_dtype_ = false, has_shape_ = false, has_offsets_ = false, has_metadata_ = false;

  std::string tensor() const { return "tensor " + printable(name_); }
  bool stop(std::string message) {
    error = std::move(message);
    return false;
  }

  // A value of the wrong kind: say where it was found and what belonged there.
  bool unexpected(const std::string& found) {
    switch (at_) {
      case At::Root:
        if (name_ == "__metadata__") return stop("__metadata__ is not an object (found " + found + ")");
        return stop(tensor() + ": entry is not an object (found " + found + ")");
      case At::Entry:
        if (field_ == Field::DType) return stop(tensor() + ": dtype is not a string (found " + found + ")");
        return stop(tensor() + ": " + (field_ == Field::Shape ? "shape" : "data_offsets") +
                    " is not an array (found " + found + ")");
      case At::Metadata:
        return stop("__metadata__ value for " + printable(meta_key_) + " is not a string (found " + found + ")");
      case At::Shape:
        return stop(tensor() + ": shape entries must be non-negative integers (found " + found + ")");
      case At::Offsets:
        return stop(tensor() + ": data_offsets entries must be non-negative integers (found " + found + ")");
      default:
        return stop("header is not a JSON object (found " + found + ")");
    }
  }

  // All fields of one entry are known: check them against each other and the data section.
  bool finish_entry() {
    if (!has_dtype_) return stop(tensor() + ": missing dtype");
    if (!has_shape_) return stop(tensor() + ": missing shape");
    if (!has_offsets_) return stop(tensor() + ": missing data_offsets");
    uint64_t begin = offsets_[0], end = offsets_[1];
    std::string range = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (begin > end) return stop(tensor() + ": " + range + " has begin after end");
    if (end > data_size_)
      return stop(tensor() + ": " + range + " ends beyond the data section (" + std::to_string(data_size_) + " bytes)");
    // Every dim (zeros counted as 1) must multiply without overflow: dense strides are such products too.
    int64_t numel = 1, stride_product = 1;
    for (int64_t d : entry_.shape) {
      int64_t f = std::max<int64_t>(d, 1);
      if (stride_product > INT64_MAX / f)
        return stop(tensor() + ": shape " + shape_str(entry_.shape) + " element count overflows");
      stride_product *= f;
      numel *= d;
    }
    // Compared by division first so a huge element count cannot overflow the byte count.
    uint64_t width = dtype_size(entry_.dtype), length = end - begin;
    if (uint64_t(numel) > length / width || uint64_t(numel) * width != length)
      return stop(tensor() + ": shape " + shape_str(entry_.shape) + " of " + format_dtype_name(entry_.dtype) +
                  " holds " + std::to_string(numel) + " elements of " + std::to_string(width) + " bytes but " + range +
                  " span " + std::to_string(length) + " bytes");
    entry_.begin = begin;
    entry_.end = end;
    header.tensors.emplace(name_, entry_);
    return true;
  }
};

// The format requires the tensors to tile the data section exactly: no overlaps (one byte read as two
// tensors) and no holes (bytes that belong to nothing, room for a second file hidden in this one).
void check_layout(const Header& h, uint64_t data_size, const std::string& file) {
  std::vector<std::tuple<uint64_t, uint64_t, const std::string*>> ranges;
  for (const auto& [name, e] : h.tensors)
    if (e.end > e.begin) ranges.emplace_back(e.begin, e.end, &name);  // empty tensors occupy no bytes
  std::sort(ranges.begin(), ranges.end());
  uint64_t covered = 0;  // bytes [0, covered) belong to the tensors seen so far
  const std::string* previous = nullptr;
  for (const auto& [begin, end, name] : ranges) {
    if (begin < covered)
      fail(file, "tensors " + printable(*previous) + " and " + printable(*name) + " overlap (bytes " +
                     std::to_string(begin) + " to " + std::to_string(covered) + " of the data section)");
    if (begin > covered)
      fail(file, "bytes " + std::to_string(covered) + " to " + std::to_string(begin) +
                     " of the data section belong to no tensor");
    covered = end;
    previous = name;
  }
  if (covered < data_size)
    fail(file, "bytes " + std::to_string(covered) + " to " + std::to_string(data_size) +
                   " of the data section belong to no tensor");
}

// The 8-byte length against the bytes actually present, before anything is allocated from it.
void check_header_length(uint64_t header_length, uint64_t file_size, const std::string& file) {
  if (header_length > kMaxHeaderBytes)
    fail(file, "header length " + std::to_string(header_length) + " is over the limit of " +
                   std::to_string(kMaxHeaderBytes) + " bytes");
  if (header_length > file_size - 8)
    fail(file, "header length " + std::to_string(header_length) + " is larger than the " +
                   std::to_string(file_size - 8) + " bytes after the length field");
}

Header parse_header(const char* text, size_t size, uint64_t data_size, const std::string& file) {
  if (size == 0 || text[0] != '{') fail(file, "header is not a JSON object (it must start with '{')");
  // The JSON reader takes a NUL byte as the end of input, so anything after one would go unchecked.
  if (std::memchr(text, '\0', size)) fail(file, "header contains a NUL byte");
  HeaderParser parser(data_size);
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(text, text + size, &parser);
  } catch (const nlohmann::json::exception& e) {  // not expected (errors go to parse_error), but never escape
    parser.error = std::string("header is not valid JSON: ") + e.what();
  }
  if (!ok) fail(file, parser.error.empty() ? "header is not valid JSON" : parser.error);
  check_layout(parser.header, data_size, file);
  return std::move(parser.header);
}

// Closes the descriptor on every path out.
struct FileDescriptor {
  int fd = -1;
  explicit FileDescriptor(int f) : fd(f) {}
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
};

void read_exact(int fd, uint64_t offset, void* dst, size_t n, const std::string& file) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(file, "read failed: " + os_error(errno));
    if (got == 0) fail(file, "file ended early (was it changed while being read?)");
    p += got;
    n -= size_t(got);
    offset += uint64_t(got);
  }
}

// Where the bytes come from: a file read with pread at given offsets (nothing is read that is not
// asked for), or a buffer already in memory (tests, fuzzing). `size` is the whole file's size.
struct Source {
  std::string name;
  uint64_t size = 0;
  int fd = -1;
  const char* memory = nullptr;
  void read(uint64_t offset, void* dst, size_t n) const {
    if (n == 0) return;
    if (memory) std::memcpy(dst, memory + offset, n);
    else read_exact(fd, offset, dst, n, name);
  }
};

// Steps (1) and (2): the length, then the parsed and checked header. Reads 8 + header-length bytes.
Header read_header(const Source& src) {
  if (src.size < 8) fail(src.name, "file is " + std::to_string(src.size) + " bytes, shorter than the 8-byte header length");
  unsigned char length[8];
  src.read(0, length, 8);
  const uint64_t header_length = read_u64_le(length);
  check_header_length(header_length, src.size, src.name);
  std::string text(size_t(header_length), '\0');
  src.read(8, text.data(), text.size());
  const uint64_t data_size = src.size - 8 - header_length;
  Header h = parse_header(text.data(), text.size(), data_size, src.name);
  h.data_offset = 8 + header_length;
  h.data_size = data_size;
  return h;
}

// One checked entry's bytes, read into a fresh dense CPU tensor of its dtype: in pieces through a host
// buffer and Tensor::copy_from_host_, so the tensor could live on any device.
Tensor read_tensor(const Source& src, const Header& h, const Entry& e) {
  Tensor t = Tensor::empty(e.shape, e.dtype, Device::CPU);
  const size_t nbytes = size_t(e.end - e.begin), width = dtype_size(e.dtype);
  std::vector<char> piece(std::min(nbytes, kCopyPiece));
  for (size_t done = 0; done < nbytes;) {
    const size_t n = std::min(nbytes - done, piece.size());
    src.read(h.data_offset + e.begin + done, piece.data(), n);
    swap_bytes_if_big_endian(piece.data(), int64_t(n / width), width);
    t.copy_from_host_(piece.data(), n, done);
    done += n;
  }
  return t;
}

SafetensorsFile read_all(const Source& src, uint64_t max_data_bytes) {
  Header h = read_header(src);
  // The data section's size is the sum of the tensors' sizes (they tile it), so this bounds what is held.
  if (h.data_size > max_data_bytes)
    fail(src.name, "the tensors take " + std::to_string(h.data_size) + " bytes, over the limit of " +
                       std::to_string(max_data_bytes) + " bytes for one file (nothing was read)");
  SafetensorsFile out;
  for (const auto& [name, e] : h.tensors) out.tensors.emplace(name, read_tensor(src, h, e));
  out.metadata = std::move(h.metadata);
  return out;
}

std::string describe_entry(const Entry& e) {
  return std::string(format_dtype_name(e.dtype)) + " " + shape_str(e.shape) + ", " + std::to_string(e.end - e.begin) +
         " bytes";
}

// load_safetensors_into: names and shapes against the destination before any tensor data is read; then
// only the expected tensors, each converted to its destination's dtype/device and checked for NaN/inf;
// then, with nothing wrong, the copies (so a refused file changes nothing).
std::map<std::string, std::string> read_into(const Source& src, const StateDict& dest, bool strict,
                                             bool allow_non_finite) {
  Header h = read_header(src);
  const std::string where = "load_safetensors_into: " + src.name + ": ";
  auto refuse = [&](const std::vector<std::string>& problems, const std::string& note) {
    std::string msg = where + std::to_string(problems.size()) + " problem(s): ";
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw ValueError(msg + note);
  };
  std::vector<std::string> problems;
  for (const auto& [key, t] : dest) {
    if (!t.defined()) throw ValueError(where + "destination " + printable(key) + " is an undefined tensor");
    auto it = h.tensors.find(key);
    if (it == h.tensors.end()) {
      if (strict) problems.push_back("missing key " + printable(key));
    } else if (it->second.shape != t.shape()) {
      problems.push_back(printable(key) + ": shape " + shape_str(it->second.shape) + " in the file, " +
                         shape_str(t.shape()) + " expected");
    }
  }
  if (strict)
    for (const auto& [name, e] : h.tensors)
      if (!dest.count(name)) problems.push_back("unexpected key " + printable(name) + " (" + describe_entry(e) + ")");
  if (!problems.empty()) refuse(problems, " (no tensor data was read)");

  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, its new value in its dtype and device)
  bool non_finite = false;
  for (const auto& [key, t] : dest) {
    auto it = h.tensors.find(key);
    if (it == h.tensors.end()) continue;
    Tensor v = read_tensor(src, h, it->second).to(t.device());
    if (is_floating(t.dtype())) v = v.to(t.dtype());  // checked as it will be held: F64 1e300 into F32 is inf
    const std::string fraction = non_integral_summary(v, t.dtype());
    if (!fraction.empty()) {
      problems.push_back(printable(key) + ": " + fraction + " for its " + dtype_name(t.dtype()) + " destination");
      continue;
    }
    if (!allow_non_finite) {
      const std::string bad = non_finite_summary(v);
      if (!bad.empty()) problems.push_back(printable(key) + ": " + bad), non_finite = true;
    }
    copies.emplace_back(t, std::move(v));
  }
  if (!problems.empty())
    refuse(problems, non_finite ? " (NaN/inf values are refused unless allow_non_finite is set)" : "");
  NoGradGuard no_grad;
  for (auto& [d, v] : copies) d.copy_(v);
  return std::move(h.metadata);
}

// The file at `path`, opened for Source reads; only regular files get past.
struct OpenFile {
  FileDescriptor f;
  Source src;
  explicit OpenFile(const std::string& path) : f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)) {
    // O_NONBLOCK so that opening a FIFO cannot hang; the fstat check then refuses it.
    if (f.fd < 0) fail(path, "cannot open: " + os_error(errno));
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) fail(path, "cannot stat: " + os_error(errno));
    if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
    src.name = path;
    src.size = uint64_t(st.st_size);
    src.fd = f.fd;
  }
};

Source memory_source(const void* data, size_t size, const std::string& name, const char* fn) {
  if (!data && size > 0) throw ValueError(std::string(fn) + ": null data with size " + std::to_string(size));
  Source s;
  s.name = name;
  s.size = size;
  s.memory = static_cast<const char*>(data);
  if (!s.memory) s.memory = "";  // size 0: read_header refuses it before reading
  return s;
}

void write_all(int fd, const void* src, size_t n, const std::string& what) {
  auto* p = static_cast<const char*>(src);
  while (n > 0) {
    ssize_t put = ::write(fd, p, n);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) throw IOError(what + "write failed: " + os_error(errno));
    p += put;
    n -= size_t(put);
  }
}

// The temporary file of an atomic save: removed unless commit() renamed it into place.
class TempFile {
 public:
  TempFile(const std::string& target, const std::string& what) {
    static std::atomic<uint64_t> counter{0};
    for (int attempt = 0; fd_ < 0; ++attempt) {
      path_ = target + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
      // O_EXCL: never write through a file (or symlink) someone else put at that name.
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && (errno != EEXIST || attempt == 100))
        throw IOError(what + "cannot create temporary file " + path_ + ": " + os_error(errno));
    }
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int fd() const { return fd_; }

  void commit(const std::string& target, const std::string& what) {
    if (::fsync(fd_) != 0) throw IOError(what + "fsync failed: " + os_error(errno));
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw IOError(what + "close failed: " + os_error(errno));
    fault_point_before_rename();  // a crash test may end the process here (core/fault.h)
    if (::rename(path_.c_str(), target.c_str()) != 0) throw IOError(what + "rename failed: " + os_error(errno));
    committed_ = true;
    // Make the rename itself durable. Best effort: the new file is complete either way.
    size_t slash = target.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : target.substr(0, slash);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string what = "save_safetensors: " + path + ": ";
  // The header fixes every tensor's byte range: tensors follow each other in name order with no gaps.
  // (nlohmann::json sorts keys, so the JSON text lists the tensors in that same order.)
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw ValueError(what + "'__metadata__' is reserved and cannot name a tensor");
    if (!t.defined()) throw ValueError(what + "tensor " + printable(name) + " is undefined");
    uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.dtype());
    nlohmann::json entry = nlohmann::json::object();
    entry["dtype"] = format_dtype_name(t.dtype());
    entry["shape"] = t.shape();
    entry["data_offsets"] = nlohmann::json::array({offset, offset + nbytes});
    header[name] = std::move(entry);
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    throw ValueError(what + "tensor names and metadata must be valid UTF-8");
  }
  // Spaces pad the header so the data section starts 8-byte aligned (the format allows trailing spaces).
  text.append((8 - text.size() % 8) % 8, ' ');

  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));

  TempFile tmp(path, what);
  write_all(tmp.fd(), length, 8, what);
  write_all(tmp.fd(), text.data(), text.size(), what);
  std::vector<char> piece;
  for (const auto& [name, t] : tensors) {
    // Permuted, sliced or expanded views are written as their row-major elements, copied out in pieces.
    Tensor d = t.dense();
    const size_t nbytes = size_t(d.numel()) * dtype_size(d.dtype()), width = dtype_size(d.dtype());
    piece.resize(std::min(nbytes, kCopyPiece));
    for (size_t done = 0; done < nbytes;) {
      const size_t n = std::min(nbytes - done, piece.size());
      d.copy_to_host(piece.data(), n, done);
      swap_bytes_if_big_endian(piece.data(), int64_t(n / width), width);
      write_all(tmp.fd(), piece.data(), n, what);
      done += n;
    }
  }
  tmp.commit(path, what);
}

SafetensorsFile load_safetensors(const std::string& path, uint64_t max_data_bytes) {
  OpenFile file(path);
  return read_all(file.src, max_data_bytes);
}

SafetensorsFile load_safetensors_from_memory(const void* data, size_t size, const std::string& name_for_errors) {
  return read_all(memory_source(data, size, name_for_errors, "load_safetensors_from_memory"), UINT64_MAX);
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  OpenFile file(path);
  return read_header(file.src);
}

SafetensorsHeader read_safetensors_header_from_memory(const void* data, size_t size, const std::string& name_for_errors) {
  return read_header(memory_source(data, size, name_for_errors, "read_safetensors_header_from_memory"));
}

std::map<std::string, std::string> load_safetensors_into(const std::string& path, const StateDict& destination,
                                                         bool strict, bool allow_non_finite) {
  OpenFile file(path);
  return read_into(file.src, destination, strict, allow_non_finite);
}

std::map<std::string, std::string> load_safetensors_into_from_memory(const void* data, size_t size,
                                                                     const std::string& name_for_errors,
                                                                     const StateDict& destination, bool strict,
                                                                     bool allow_non_finite) {
  return read_into(memory_source(data, size, name_for_errors, "load_safetensors_into_from_memory"), destination, strict,
                   allow_non_finite);
}

}  // namespace advgrad
