// The data layer: IDX / CIFAR / image-folder loading (good files round-trip, every bad file is an IOError
// naming the file and the problem), the DataLoader's determinism properties, and PNG grid output.
#include <doctest/doctest.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <new>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "advgrad/core/parallel.h"
#include "advgrad/data/data.h"
#include "advgrad/data/gzip.h"

// Every operator new of this executable is counted, so a test can measure the peak of live heap bytes
// during a call (std::vector buffers, which is what the parsers allocate). A 16-byte prefix keeps the size.
namespace {
std::atomic<int64_t> g_live_bytes{0}, g_peak_bytes{0};
// noinline: once inlined into operator delete, GCC takes free() of the prefix for a mismatched delete.
__attribute__((noinline)) void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n + 16);
  if (!p) return nullptr;
  *static_cast<std::size_t*>(p) = n;
  const int64_t live = g_live_bytes.fetch_add(int64_t(n)) + int64_t(n);
  int64_t peak = g_peak_bytes.load();
  while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live)) {
  }
  return static_cast<char*>(p) + 16;
}
__attribute__((noinline)) void counted_free(void* p) {
  if (!p) return;
  char* base = static_cast<char*>(p) - 16;
  g_live_bytes.fetch_sub(int64_t(*reinterpret_cast<std::size_t*>(base)));
  std::free(base);
}
// Peak live heap bytes during f(), above what was live before.
int64_t peak_heap_during(const std::function<void()>& f) {
  const int64_t base = g_live_bytes.load();
  g_peak_bytes.store(base);
  f();
  return g_peak_bytes.load() - base;
}
}  // namespace
void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }

using namespace advgrad;
namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("advgrad_test_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const Bytes& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

void write_text(const std::string& path, const std::string& text) { write_bytes(path, Bytes(text.begin(), text.end())); }

Bytes gzip(const Bytes& raw) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  Bytes out(deflateBound(&zs, uLong(raw.size())));
  zs.next_in = const_cast<Bytef*>(raw.data());
  zs.avail_in = uInt(raw.size());
  zs.next_out = out.data();
  zs.avail_out = uInt(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// An IDX file of unsigned bytes: 00 00 08 ndim, big-endian dims, payload.
Bytes idx_file(const std::vector<uint32_t>& dims, const Bytes& payload, uint8_t type = 0x08) {
  Bytes b{0, 0, type, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(d >> s));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes pattern(size_t n, int mul = 7) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t((i * size_t(mul) + 3) % 256);
  return b;
}

// Writes an MNIST-style directory: n images of h x w and labels i % 10; gz selects the .gz names.
void write_mnist(const std::string& dir, const std::string& prefix, uint32_t n, uint32_t h, uint32_t w, bool gz) {
  Bytes labels(n);
  for (uint32_t i = 0; i < n; ++i) labels[i] = uint8_t(i % 10);
  Bytes images = idx_file({n, h, w}, pattern(size_t(n) * h * w));
  Bytes label_file = idx_file({n}, labels);
  std::string suffix = gz ? ".gz" : "";
  write_bytes(dir + "/" + prefix + "-images-idx3-ubyte" + suffix, gz ? gzip(images) : images);
  write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte" + suffix, gz ? gzip(label_file) : label_file);
}

// The IOError message of f(), or "" when it does not throw one.
std::string io_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const IOError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

#define CHECK_IO_ERROR(expr, file, problem)                                          \
  do {                                                                               \
    std::string msg_ = io_error([&] { (void)(expr); });                              \
    INFO("message: ", msg_);                                                         \
    CHECK_MESSAGE(!msg_.empty(), "no IOError from " #expr);                          \
    CHECK_MESSAGE(contains(msg_, file), "message does not name ", file);             \
    CHECK_MESSAGE(contains(msg_, problem), "message does not say ", problem);        \
  } while (0)

// A PNG of h x w with `comp` channels whose byte k is (k * mul + seed) % 256.
Bytes png_pixels(int h, int w, int comp, int seed) {
  Bytes px(size_t(h * w * comp));
  for (size_t k = 0; k < px.size(); ++k) px[k] = uint8_t((k * 13 + size_t(seed)) % 256);
  return px;
}
void write_png(const std::string& path, int h, int w, int comp, int seed) {
  fs::create_directories(fs::path(path).parent_path());
  Bytes px = png_pixels(h, w, comp, seed);
  REQUIRE(stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp));
}
// HWC -> CHW, the layout Dataset keeps.
Bytes to_chw(const Bytes& hwc, int h, int w, int comp) {
  Bytes chw(hwc.size());
  for (int p = 0; p < h * w; ++p)
    for (int c = 0; c < comp; ++c) chw[size_t(c * h * w + p)] = hwc[size_t(p * comp + c)];
  return chw;
}


// Encoded bytes from stb_image_write (libstb) for the decoder tests.
void append_bytes(void* ctx, void* data, int size) {
  auto* out = static_cast<Bytes*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}
Bytes encode(const char* format, int h, int w, int comp, const Bytes& px) {
  Bytes out;
  const std::string f = format;
  if (f == "png") REQUIRE(stbi_write_png_to_func(append_bytes, &out, w, h, comp, px.data(), w * comp));
  if (f == "bmp") REQUIRE(stbi_write_bmp_to_func(append_bytes, &out, w, h, comp, px.data()));
  if (f == "jpg") REQUIRE(stbi_write_jpg_to_func(append_bytes, &out, w, h, comp, px.data(), 95));
  REQUIRE(!out.empty());
  return out;
}
Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
void put_be32(Bytes& b, size_t at, uint32_t v) {
  for (int k = 0; k < 4; ++k) b[at + size_t(k)] = uint8_t(v >> (24 - 8 * k));
}
// A PNG of signature, IHDR (8-bit RGB, h x w) and IEND, with no pixel data: enough for the header checks.
Bytes png_header_only(uint32_t h, uint32_t w) {
  Bytes b{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 0, 0, 0, 0, 0,
          8, 2, 0, 0, 0};
  put_be32(b, 16, w);
  put_be32(b, 20, h);
  uint32_t crc = uint32_t(crc32(0, b.data() + 12, 17));
  b.resize(b.size() + 4);
  put_be32(b, 29, crc);
  const uint8_t iend[] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  b.insert(b.end(), iend, iend + sizeof iend);
  return b;
}

// A synthetic dataset whose sample i has every byte derived from i, so batches can be traced back.
Dataset synthetic(int64_t n, Shape chw) {
  Dataset d;
  d.kind = "synthetic";
  d.source = "synthetic";
  d.sample_shape = chw;
  d.num_classes = 10;
  for (int i = 0; i < 10; ++i) d.class_names.push_back(std::to_string(i));
  const int64_t numel = shape_numel(chw);
  d.images.resize(size_t(n * numel));
  for (size_t k = 0; k < d.images.size(); ++k) d.images[k] = uint8_t((k * 31 + k / size_t(numel)) % 256);
  for (int64_t i = 0; i < n; ++i) d.labels.push_back(i % 10);
  d.check();
  return d;
}

struct ThreadGuard {
  int saved = num_threads();
  ~ThreadGuard() { set_num_threads(saved); }
};

}  // namespace

// ---------------------------------------------------------------- IDX / MNIST family

TEST_CASE("IDX: raw and gzip MNIST directories round-trip") {
  TempDir dir;
  write_mnist(dir.path.string(), "train", 12, 5, 4, false);
  write_mnist(dir.path.string(), "t10k", 7, 5, 4, true);

  Dataset train = load_mnist_family(dir.path.string(), "train", MnistVariant::Digits);
  CHECK(train.kind == "mnist");
  CHECK(train.size() == 12);
  CHECK(train.sample_shape == Shape{1, 5, 4});
  CHECK(train.images == pattern(12 * 5 * 4));
  CHECK(train.labels[11] == 1);
  CHECK(train.num_classes == 10);
  CHECK(train.class_names == mnist_class_names());

  Dataset test = load_mnist_family(dir.path.string(), "test", MnistVariant::Fashion);
  CHECK(test.kind == "fashion-mnist");
  CHECK(test.size() == 7);
  CHECK(test.images == pattern(7 * 5 * 4));
  CHECK(test.class_names[9] == "Ankle boot");

  Tensor x = train.images_float({3, 0});
  CHECK(x.shape() == Shape{2, 1, 5, 4});
  CHECK(x.dtype() == DType::F32);
  CHECK(x.at({0, 0, 0, 0}) == doctest::Approx(train.image(3)[0] / 255.0));
  CHECK(x.at({1, 0, 4, 3}) == doctest::Approx(train.image(0)[19] / 255.0));
  Tensor y = train.labels_tensor({3, 0});
  CHECK(y.dtype() == DType::I64);
  CHECK(y.to_vector<int64_t>() == std::vector<int64_t>{3, 0});
  CHECK_THROWS_AS(train.images_float({12}), ValueError);
  CHECK_THROWS_AS(train.labels_tensor({-1}), ValueError);
}

TEST_CASE("IDX: the variant follows the directory name unless given") {
  TempDir dir;
  std::string fashion = dir / "My-Fashion-MNIST", digits = dir / "mnist";
  write_mnist(fashion, "train", 2, 3, 3, false);
  write_mnist(digits, "train", 2, 3, 3, false);
  CHECK(load_mnist_family(fashion, "train").kind == "fashion-mnist");
  CHECK(load_mnist_family(digits, "train").kind == "mnist");
  CHECK(load_mnist_family(digits, "train", MnistVariant::Fashion).class_names == fashion_mnist_class_names());
  CHECK(detect_mnist_variant(default_fashion_mnist_dir()) == MnistVariant::Fashion);
}

TEST_CASE("IDX: every malformed file is an IOError naming the file and the problem") {
  TempDir dir;
  struct Case {
    const char* name;
    Bytes bytes;
    const char* problem;
  };
  const Bytes good = idx_file({2, 3, 3}, pattern(18));
  Bytes truncated_gz = gzip(idx_file({50, 10, 10}, pattern(5000)));
  truncated_gz.resize(truncated_gz.size() / 2);
  Bytes garbage_gz{0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xff, 0xee, 0xdd, 0xcc, 0xbb};
  Bytes trailing_gz = gzip(good);
  trailing_gz.insert(trailing_gz.end(), {0x42, 0x43, 0x44});
  std::vector<Case> cases = {
      {"empty.idx", {}, "empty file (0 bytes)"},
      {"short.idx", {0, 0, 8}, "too short"},
      {"magic.idx", {0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 9}, "bad magic 12 34 56 78"},
      {"type.idx", idx_file({2}, {1, 2}, 0x0d), "unsupported IDX element type 0x0d"},
      {"ndim0.idx", {0, 0, 8, 0, 1, 2}, "zero dimensions"},
      {"header.idx", {0, 0, 8, 3, 0, 0, 0, 1}, "truncated header"},
      {"absurd.idx", idx_file({60000, 0xffffffffu, 28}, pattern(64)), "need 7215545055600000 bytes"},
      {"overflow.idx", idx_file({0xffffffffu, 0xffffffffu, 0xffffffffu, 2}, {}), "overflow a 64-bit element count"},
      {"truncated.idx", idx_file({2, 3, 3}, pattern(10)), "need 18 bytes after the header, the file has 10"},
      {"trailing.idx", idx_file({2, 3, 3}, pattern(20)), "2 trailing bytes"},
      {"corrupt.gz", garbage_gz, "corrupt gzip data"},
      {"truncated.gz", truncated_gz, "truncated gzip data"},
      {"trailing.gz", trailing_gz, "corrupt gzip data"},
      {"empty-inside.gz", gzip({}), "0 bytes after gzip"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::string path = dir / c.name;
    write_bytes(path, c.bytes);
    CHECK_IO_ERROR(read_idx(path), path, c.problem);
  }
  CHECK_IO_ERROR(read_idx(dir / "missing.idx"), dir / "missing.idx", "no such file");
  CHECK_IO_ERROR(read_idx(dir.path.string()), dir.path.string(), "is a directory");
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);  // must be refused, not block waiting for a writer
  CHECK_IO_ERROR(read_idx(dir / "fifo"), dir / "fifo", "not a regular file");
  // The good file parses, raw and compressed.
  write_bytes(dir / "good.idx.gz", gzip(good));
  CHECK(read_idx(dir / "good.idx.gz").dims == std::vector<int64_t>{2, 3, 3});
}

TEST_CASE("gunzip: concatenated members, and the output cap is enforced while streaming") {
  Bytes a = pattern(300), b = pattern(200, 5);
  Bytes both = gzip(a), gb = gzip(b);
  both.insert(both.end(), gb.begin(), gb.end());
  Bytes out = gunzip(both.data(), both.size(), "two.gz");
  Bytes expected = a;
  expected.insert(expected.end(), b.begin(), b.end());
  CHECK(out == expected);

  Bytes bomb = gzip(Bytes(1 << 20, 0));  // 1 MiB of zeros in about 1 KB
  CHECK_IO_ERROR(gunzip(bomb.data(), bomb.size(), "bomb.gz", 4096), "bomb.gz", "more than the 4096-byte limit");
  CHECK(gunzip(bomb.data(), bomb.size(), "bomb.gz", 1 << 20).size() == size_t(1) << 20);  // exactly the cap
}

TEST_CASE("gunzip: memory stays within the output plus a constant, whatever the trailer claims") {
  const uint64_t cap = uint64_t(64) << 20;  // 64 MiB
  const int64_t slack = int64_t(1) << 20;   // what may come on top of the output itself
  // A bomb: 128 MiB of zeros in about 128 KB. Refused at the cap without holding its output.
  Bytes bomb = gzip(Bytes(size_t(128) << 20, 0));
  int64_t peak = peak_heap_during(
      [&] { CHECK_IO_ERROR(gunzip(bomb.data(), bomb.size(), "bomb.gz", cap), "bomb.gz", "-byte limit"); });
  CHECK(peak < slack);
  // Just under the cap, one member: one buffer of the output's size (growing by copies would hold 1.5x).
  Bytes raw = pattern(size_t(60) << 20);
  Bytes one = gzip(raw);
  Bytes out;
  peak = peak_heap_during([&] { out = gunzip(one.data(), one.size(), "one.gz", cap); });
  CHECK(out == raw);
  CHECK(peak < int64_t(raw.size()) + slack);
  // Two members: the trailer gives only the last one's size; still one buffer of the total at a time.
  Bytes half(raw.begin(), raw.begin() + std::ptrdiff_t(raw.size() / 2));
  Bytes two = gzip(half), second = gzip(half);
  two.insert(two.end(), second.begin(), second.end());
  out.clear();
  out.shrink_to_fit();
  peak = peak_heap_during([&] { out = gunzip(two.data(), two.size(), "two.gz", cap); });
  CHECK(out.size() == raw.size());
  CHECK(std::equal(half.begin(), half.end(), out.begin() + std::ptrdiff_t(half.size())));
  CHECK(peak < int64_t(raw.size()) + slack);
  out.clear();
  out.shrink_to_fit();
  // A short file whose trailer claims 60 MiB: beyond deflate's ratio, so nothing is allocated for it.
  Bytes liar = gzip(pattern(1000));
  put_be32(liar, liar.size() - 4, 0);
  liar[liar.size() - 2] = 0xC0, liar[liar.size() - 1] = 0x03;  // little-endian 0x03C00000 = 60 MiB
  peak = peak_heap_during(
      [&] { CHECK_IO_ERROR(gunzip(liar.data(), liar.size(), "liar.gz", cap), "liar.gz", "corrupt gzip data"); });
  CHECK(peak < slack);
  // Truncated and trailing-garbage streams keep their messages.
  Bytes cut(one.begin(), one.begin() + 5000);
  CHECK_IO_ERROR(gunzip(cut.data(), cut.size(), "cut.gz", cap), "cut.gz", "truncated gzip data");
  Bytes junk = gzip(pattern(100));
  junk.insert(junk.end(), {'j', 'u', 'n', 'k', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK_IO_ERROR(gunzip(junk.data(), junk.size(), "junk.gz", cap), "junk.gz", "corrupt gzip data");
}

TEST_CASE("IDX: a gzip file is held once after decompression (the elements are moved, not copied)") {
  TempDir dir;
  Bytes payload = pattern(size_t(8) << 20);
  Bytes gz = gzip(idx_file({8, 1024, 1024}, payload));
  write_bytes(dir / "big.idx.gz", gz);
  IdxArray a;
  const int64_t peak = peak_heap_during([&] { a = read_idx(dir / "big.idx.gz"); });
  CHECK(a.data == payload);
  CHECK(peak < int64_t(gz.size() + payload.size()) + (int64_t(1) << 20));
}

TEST_CASE("MNIST family: missing files, count mismatch, labels out of range, wrong rank") {
  TempDir dir;
  const std::string d = dir.path.string();
  CHECK_IO_ERROR(load_mnist_family(dir / "nope", "train"), dir / "nope", "no such directory");
  write_text(dir / "file", "x");
  CHECK_IO_ERROR(load_mnist_family(dir / "file", "train"), dir / "file", "is not a directory");
  CHECK_THROWS_AS(load_mnist_family(d, "validation"), ValueError);

  write_bytes(dir / "train-images-idx3-ubyte", idx_file({3, 2, 2}, pattern(12)));
  CHECK_IO_ERROR(load_mnist_family(d, "train"), dir / "train-labels-idx1-ubyte", "no such file");

  write_bytes(dir / "train-labels-idx1-ubyte", idx_file({4}, {0, 1, 2, 3}));
  CHECK_IO_ERROR(load_mnist_family(d, "train"), dir / "train-labels-idx1-ubyte", "count mismatch");

  write_bytes(dir / "train-labels-idx1-ubyte", idx_file({3}, {0, 10, 2}));
  CHECK_IO_ERROR(load_mnist_family(d, "train"), dir / "train-labels-idx1-ubyte", "label 10 at index 1 is outside");

  write_bytes(dir / "train-labels-idx1-ubyte", idx_file({3, 1}, {0, 1, 2}));
  CHECK_IO_ERROR(load_mnist_family(d, "train"), dir / "train-labels-idx1-ubyte", "expected 1");

  write_bytes(dir / "train-images-idx3-ubyte", idx_file({3, 4}, pattern(12)));
  CHECK_IO_ERROR(load_mnist_family(d, "train"), dir / "train-images-idx3-ubyte", "expected 3");

  write_bytes(dir / "train-images-idx3-ubyte", idx_file({0, 28, 28}, {}));
  CHECK_IO_ERROR(load_mnist_family(d, "train"), dir / "train-images-idx3-ubyte", "no images");

  write_bytes(dir / "train-images-idx3-ubyte", {});
  CHECK_IO_ERROR(load_mnist_family(d, "train"), dir / "train-images-idx3-ubyte", "empty file");
}

// ---------------------------------------------------------------- CIFAR

namespace {
// n records of CIFAR-10 (label_bytes 1) or CIFAR-100 (2: coarse, fine); labels and pixels from `seed`.
Bytes cifar_records(int n, int label_bytes, int seed, int classes) {
  Bytes b;
  for (int i = 0; i < n; ++i) {
    if (label_bytes == 2) b.push_back(uint8_t((seed + i) % 20));
    b.push_back(uint8_t((seed + i) % classes));
    Bytes px = pattern(3072, seed + i);
    b.insert(b.end(), px.begin(), px.end());
  }
  return b;
}
}  // namespace

TEST_CASE("CIFAR-10: five train batches and a test batch round-trip, names from batches.meta.txt") {
  TempDir dir;
  for (int b = 1; b <= 5; ++b) write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(2, 1, b, 10));
  write_bytes(dir / "test_batch.bin", cifar_records(3, 1, 40, 10));
  write_text(dir / "batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");

  Dataset train = load_cifar(dir.path.string(), "train");
  CHECK(train.kind == "cifar10");
  CHECK(train.size() == 10);
  CHECK(train.sample_shape == Shape{3, 32, 32});
  CHECK(train.labels == std::vector<int64_t>{1, 2, 2, 3, 3, 4, 4, 5, 5, 6});  // batch b, record r: b + r
  Bytes px = pattern(3072, 3 + 1);  // batch 3, record 1 is sample 5
  CHECK(std::equal(px.begin(), px.end(), train.image(5)));
  CHECK(train.class_names[9] == "truck");

  Dataset test = load_cifar(dir.path.string(), "test");
  CHECK(test.size() == 3);
  CHECK(test.labels == std::vector<int64_t>{0, 1, 2});
  // The red plane is the first 1024 bytes: pixel (row 0, col 1) of the red channel is byte 1.
  CHECK(test.images_float({0}).at({0, 0, 0, 1}) == doctest::Approx(pattern(3072, 40)[1] / 255.0));
}

TEST_CASE("CIFAR-100: fine labels, numbered class names without fine_label_names.txt") {
  TempDir dir;
  write_bytes(dir / "train.bin", cifar_records(4, 2, 97, 100));
  write_bytes(dir / "test.bin", cifar_records(2, 2, 5, 100));
  Dataset train = load_cifar(dir.path.string(), "train");
  CHECK(train.kind == "cifar100");
  CHECK(train.num_classes == 100);
  CHECK(train.labels == std::vector<int64_t>{97, 98, 99, 0});
  CHECK(train.class_names[42] == "42");
  CHECK(load_cifar(dir.path.string(), "test").size() == 2);
}

TEST_CASE("CIFAR: bad files are IOErrors naming the file and the problem") {
  TempDir dir;
  const std::string d = dir.path.string();
  CHECK_IO_ERROR(load_cifar(d, "train"), d, "no CIFAR files");

  for (int b = 1; b <= 5; ++b) write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(1, 1, b, 10));
  fs::remove(dir / "data_batch_3.bin");
  CHECK_IO_ERROR(load_cifar(d, "train"), dir / "data_batch_3.bin", "no such file");

  Bytes truncated = cifar_records(2, 1, 0, 10);
  truncated.pop_back();
  write_bytes(dir / "data_batch_3.bin", truncated);
  CHECK_IO_ERROR(load_cifar(d, "train"), dir / "data_batch_3.bin", "not a whole number of 3073-byte records");

  Bytes bad_label = cifar_records(2, 1, 0, 10);
  bad_label[3073] = 10;
  write_bytes(dir / "data_batch_3.bin", bad_label);
  CHECK_IO_ERROR(load_cifar(d, "train"), dir / "data_batch_3.bin", "label 10 of record 1 is outside");

  write_bytes(dir / "data_batch_3.bin", cifar_records(1, 1, 0, 10));
  write_bytes(dir / "test_batch.bin", {});
  CHECK_IO_ERROR(load_cifar(d, "test"), dir / "test_batch.bin", "empty file");

  write_text(dir / "batches.meta.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\n");
  CHECK_IO_ERROR(load_cifar(d, "train"), dir / "batches.meta.txt", "9 class names, expected 10");

  TempDir dir100;
  Bytes coarse = cifar_records(1, 2, 0, 100);
  coarse[0] = 25;
  write_bytes(dir100 / "train.bin", coarse);
  CHECK_IO_ERROR(load_cifar(dir100.path.string(), "train"), dir100 / "train.bin", "coarse label 25");
}

TEST_CASE("CIFAR: class names must be valid UTF-8 without control characters (they go to JSON and the terminal)") {
  TempDir dir;
  write_bytes(dir / "test_batch.bin", cifar_records(2, 1, 0, 10));
  auto names_file = [&](const std::string& tenth) {
    std::string text = "a\nb\nc\nd\ne\nf\ng\nh\ni\n" + tenth + "\n";
    write_text(dir / "batches.meta.txt", text);
  };
  names_file("caf\xc3\xa9 \xe6\x97\xa5\xf0\x9f\x90\x88");  // two-, three- and four-byte sequences
  CHECK(load_cifar(dir.path.string(), "test").class_names[9] == "caf\xc3\xa9 \xe6\x97\xa5\xf0\x9f\x90\x88");
  const std::string path = dir / "batches.meta.txt";
  for (const char* bad : {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "x\xe6\x97"}) {
    names_file(bad);
    CHECK_IO_ERROR(load_cifar(dir.path.string(), "test"), path, "class name 10 has invalid UTF-8");
  }
  for (const char* bad : {"\x1b[31mred", "a\tb", "bell\x07", "del\x7f"}) {
    names_file(bad);
    CHECK_IO_ERROR(load_cifar(dir.path.string(), "test"), path, "class name 10 has a control character");
  }
  Bytes nul = text_bytes("a\nb\nc\nd\ne\nf\ng\nh\ni\nj");
  nul.insert(nul.begin() + 2, 0);
  CHECK_IO_ERROR(parse_class_names(nul.data(), nul.size(), "n.txt", 10), "n.txt", "class name 2 has a control character at byte 0");
}

// ---------------------------------------------------------------- image folders

TEST_CASE("image folder: sorted classes and files, RGB pixels exact, other files ignored") {
  TempDir dir;
  write_png(dir / "dog/b.png", 4, 6, 3, 1);
  write_png(dir / "dog/a.PNG", 4, 6, 3, 2);
  write_png(dir / "cat/z.png", 4, 6, 3, 3);
  write_text(dir / "cat/notes.txt", "not an image");
  write_png(dir / ".hidden/x.png", 4, 6, 3, 4);
  write_text(dir / "README", "ignored");

  Dataset d = load_image_folder(dir.path.string());
  CHECK(d.kind == "image-folder");
  CHECK(d.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(d.num_classes == 2);
  CHECK(d.labels == std::vector<int64_t>{0, 1, 1});
  CHECK(d.sample_shape == Shape{3, 4, 6});
  // Order: cat/z (seed 3), dog/a.PNG (seed 2), dog/b (seed 1).
  for (auto [i, seed] : std::vector<std::pair<int, int>>{{0, 3}, {1, 2}, {2, 1}}) {
    Bytes chw = to_chw(png_pixels(4, 6, 3, seed), 4, 6, 3);
    CHECK(std::equal(chw.begin(), chw.end(), d.image(i)));
  }
}

TEST_CASE("image folder: grayscale and resize") {
  TempDir dir;
  write_png(dir / "a/1.png", 5, 7, 1, 9);
  write_png(dir / "b/1.png", 10, 14, 1, 8);
  CHECK_IO_ERROR(load_image_folder(dir.path.string(), {true}), dir / "b/1.png", "set a resize size");

  ImageFolderOptions opt;
  opt.grayscale = true;
  opt.height = 5;
  opt.width = 7;
  Dataset d = load_image_folder(dir.path.string(), opt);
  CHECK(d.sample_shape == Shape{1, 5, 7});
  Bytes same = png_pixels(5, 7, 1, 9);  // already 5x7: not resampled
  CHECK(std::equal(same.begin(), same.end(), d.image(0)));

  opt.height = 3;
  opt.width = 4;
  CHECK(load_image_folder(dir.path.string(), opt).sample_shape == Shape{1, 3, 4});
  // RGB of a gray PNG, and the constant image stays constant through resize.
  TempDir flat;
  fs::create_directories(flat / "c");
  Bytes grey(8 * 8 * 3, 77);
  REQUIRE(stbi_write_png((flat / "c/g.png").c_str(), 8, 8, 3, grey.data(), 8 * 3));
  ImageFolderOptions rgb;
  rgb.height = 3;
  rgb.width = 5;
  Dataset f = load_image_folder(flat.path.string(), rgb);
  CHECK(f.sample_shape == Shape{3, 3, 5});
  CHECK(std::all_of(f.images.begin(), f.images.end(), [](uint8_t v) { return v == 77; }));
  ImageFolderOptions bad;
  bad.height = 3;
  CHECK_THROWS_AS(load_image_folder(flat.path.string(), bad), ValueError);
  bad.width = 100000;
  CHECK_THROWS_AS(load_image_folder(flat.path.string(), bad), ValueError);
  CHECK_THROWS_AS(decode_image(grey.data(), grey.size(), "g", 2), ValueError);
}

TEST_CASE("image folder: bad folders and files are IOErrors naming the path") {
  TempDir dir;
  const std::string d = dir.path.string();
  CHECK_IO_ERROR(load_image_folder(dir / "missing"), dir / "missing", "no such directory");
  CHECK_IO_ERROR(load_image_folder(d), d, "no class subfolders");

  write_png(dir / "a/1.png", 4, 4, 3, 0);
  fs::create_directories(dir / "b");
  write_text(dir / "b/readme.txt", "no images here");
  CHECK_IO_ERROR(load_image_folder(d), dir / "b", "empty class folder");

  write_text(dir / "b/1.png", "this is not a png at all");
  CHECK_IO_ERROR(load_image_folder(d), dir / "b/1.png", "cannot decode image");

  write_bytes(dir / "b/1.png", {});
  CHECK_IO_ERROR(load_image_folder(d), dir / "b/1.png", "empty file");

  // A PNG cut short after its header: stb_image reads the size, then fails to decode.
  std::ifstream in(dir / "a/1.png", std::ios::binary);
  Bytes png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  png.resize(40);
  write_bytes(dir / "b/1.png", png);
  CHECK_IO_ERROR(load_image_folder(d), dir / "b/1.png", "cannot decode image");

  // A header claiming 100000 x 100000 pixels is refused before decoding.
  Bytes huge = png;
  huge.resize(33);
  for (int k : {16, 20}) {  // IHDR width and height, big-endian
    huge[size_t(k)] = 0x00, huge[size_t(k + 1)] = 0x01, huge[size_t(k + 2)] = 0x86, huge[size_t(k + 3)] = 0xa0;
  }
  write_bytes(dir / "b/1.png", huge);
  CHECK_IO_ERROR(load_image_folder(d), dir / "b/1.png", "image size 100000x100000 (HxW) is outside the accepted range");
}

TEST_CASE("image decoding: only PNG, JPEG and BMP pass, recognised by their bytes whatever the name says") {
  TempDir dir;
  // Each of these is decodable by a full stb_image (so was accepted as 1.png before), and the 16-bit PGM
  // made Debian's stb_image 2.27 read past its heap block (SIGSEGV for 4096x4096).
  Bytes tga{0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 24, 0};  // uncompressed 2x2 RGB TGA
  tga.resize(tga.size() + 12, 200);
  Bytes pgm16 = text_bytes("P5\n4096 4096\n65535\n");
  pgm16.resize(pgm16.size() + 64, 7);
  Bytes pgm_small = text_bytes("P5\n2 2\n255\n");
  pgm_small.insert(pgm_small.end(), {1, 2, 3, 4});
  Bytes gif = text_bytes("GIF89a");
  gif.insert(gif.end(), {1, 0, 1, 0, 0, 0, 0, ',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 'D', 1, 0, ';'});
  const std::vector<std::pair<Bytes, std::string>> refused{
      {pgm16, "PNM"}, {pgm_small, "PNM"}, {gif, "GIF"}, {text_bytes("8BPS\x00\x01"), "PSD"},
      {text_bytes("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 2\n"), "HDR"},
      {Bytes{0x53, 0x80, 0xF6, 0x34, 0, 0, 0, 0}, "PIC"}, {tga, "first bytes 00 00 02 00"}};
  for (size_t k = 0; k < refused.size(); ++k) {
    const Bytes& bytes = refused[k].first;
    const std::string looks = refused[k].second;
    CAPTURE(looks);
    const std::string name = dir / ("c" + std::to_string(k) + "/1.png");
    write_bytes(name, bytes);
    CHECK_IO_ERROR(decode_image(bytes.data(), bytes.size(), name, 3), name, looks);
    CHECK_IO_ERROR(decode_image(bytes.data(), bytes.size(), name, 1), name, "only PNG, JPEG and BMP");
    CHECK_IO_ERROR(load_image_folder(dir.path.string()), name, looks);
    fs::remove_all(dir / ("c" + std::to_string(k)));
  }

  // The three accepted formats decode through our own stb_image (PNG and BMP exactly; JPEG is lossy).
  Bytes px = png_pixels(3, 5, 3, 4);
  for (const char* format : {"png", "bmp"}) {
    Bytes file = encode(format, 3, 5, 3, px);
    DecodedImage img = decode_image(file.data(), file.size(), format, 3);
    CHECK(img.height == 3);
    CHECK(img.width == 5);
    CHECK(img.chw == to_chw(px, 3, 5, 3));
  }
  Bytes flat(4 * 6 * 3, 90);
  Bytes jpg = encode("jpg", 4, 6, 3, flat);
  DecodedImage j = decode_image(jpg.data(), jpg.size(), "x.jpg", 1);
  CHECK(j.height == 4);
  CHECK(j.width == 6);
  CHECK(std::all_of(j.chw.begin(), j.chw.end(), [](uint8_t v) { return std::abs(int(v) - 90) <= 2; }));
  CHECK(probe_image(jpg.data(), jpg.size(), "x.jpg").format == ImageFormat::JPEG);

  // Headers claiming sizes beyond the limits are refused naming the file and the size, for every format.
  Bytes huge_png = png_header_only(100000, 100000);
  CHECK_IO_ERROR(decode_image(huge_png.data(), huge_png.size(), "huge.png", 3), "huge.png", "image size 100000x100000");
  Bytes huge_bmp = encode("bmp", 3, 5, 3, px);
  huge_bmp[18] = 0x20, huge_bmp[19] = 0x4e, huge_bmp[20] = 0, huge_bmp[21] = 0;  // width 20000
  CHECK_IO_ERROR(decode_image(huge_bmp.data(), huge_bmp.size(), "huge.bmp", 3), "huge.bmp", "image size 3x20000");
  Bytes huge_jpg = jpg;
  size_t sof = 2;
  while (sof + 1 < huge_jpg.size() && !(huge_jpg[sof] == 0xFF && huge_jpg[sof + 1] == 0xC0)) ++sof;
  REQUIRE(sof + 9 < huge_jpg.size());
  huge_jpg[sof + 5] = 0x4e, huge_jpg[sof + 6] = 0x20;  // height 20000
  CHECK_IO_ERROR(decode_image(huge_jpg.data(), huge_jpg.size(), "huge.jpg", 3), "huge.jpg", "image size 20000x6");
  Bytes zero_side = png_header_only(0, 4);
  CHECK_IO_ERROR(decode_image(zero_side.data(), zero_side.size(), "z.png", 3), "z.png", "image size 0x4");
  // Magic bytes without the size behind them.
  Bytes sig(huge_png.begin(), huge_png.begin() + 8);
  CHECK_IO_ERROR(decode_image(sig.data(), sig.size(), "sig.png", 3), "sig.png", "truncated or corrupt PNG header");
  Bytes soi{0xFF, 0xD8, 0xFF, 0xD9};
  CHECK_IO_ERROR(decode_image(soi.data(), soi.size(), "soi.jpg", 3), "soi.jpg", "truncated or corrupt JPEG header");
}

TEST_CASE("image decoding: files cut short or with chunks beyond the end are refused before stb decodes them") {
  Bytes px = png_pixels(6, 5, 3, 1);
  // Each of these decoded "successfully" before: stb fills what is missing with zeros.
  Bytes bmp = encode("bmp", 6, 5, 3, px);
  Bytes bmp_cut(bmp.begin(), bmp.end() - 20);
  CHECK_IO_ERROR(decode_image(bmp_cut.data(), bmp_cut.size(), "cut.bmp", 3), "cut.bmp", "corrupt BMP file: the header's 6x5");
  // Found by fuzz_image (fuzz/corpus/fuzz_image/regression-bmp-unknown-compression.bmp): stb reads an
  // unknown compression value as uncompressed, so the row check must not be skipped for it.
  Bytes odd = bmp_cut;
  odd[30] = 7;
  CHECK_IO_ERROR(decode_image(odd.data(), odd.size(), "odd.bmp", 3), "odd.bmp", "corrupt BMP file: unsupported compression 7");
  Bytes jpg = encode("jpg", 6, 5, 3, px);
  Bytes jpg_cut(jpg.begin(), jpg.end() - 2);  // without its end-of-image marker
  CHECK_IO_ERROR(decode_image(jpg_cut.data(), jpg_cut.size(), "cut.jpg", 3), "cut.jpg", "no end-of-image marker");
  jpg_cut.resize(jpg.size() / 2);
  CHECK_IO_ERROR(decode_image(jpg_cut.data(), jpg_cut.size(), "half.jpg", 3), "half.jpg", "truncated");
  Bytes png = encode("png", 6, 5, 3, px);
  Bytes png_cut(png.begin(), png.end() - 12);  // without IEND
  CHECK_IO_ERROR(decode_image(png_cut.data(), png_cut.size(), "cut.png", 3), "cut.png", "no IEND chunk");
  // Found by fuzz_image: an IDAT length of 0x889f4000 in a 95-byte file made stb reserve 2 GiB for it.
  Bytes claim = png;
  put_be32(claim, 33, 0x889f4000);  // the chunk after IHDR
  CHECK_IO_ERROR(decode_image(claim.data(), claim.size(), "claim.png", 3), "claim.png", "chunk at byte 33 claims 2292137984 bytes");
  // Found by fuzz_image (its input is fuzz/corpus/fuzz_image/regression-jpeg-dc-symbols-above-15.jpg): a DC
  // Huffman table with symbols above 15 made stb 2.27 read far out of bounds (SIGSEGV).
  Bytes dc = jpg;
  size_t dht = 2;
  while (dht + 1 < dc.size() && !(dc[dht] == 0xFF && dc[dht + 1] == 0xC4 && (dc[dht + 4] >> 4) == 0)) ++dht;
  REQUIRE(dht + 21 < dc.size());
  dc[dht + 4 + 17] = 0xFA;  // the first DC symbol
  CHECK_IO_ERROR(decode_image(dc.data(), dc.size(), "dc.jpg", 3), "dc.jpg", "DC symbol 250 is above 15");
  dc[dht + 4 + 17] = 0;
  dc[dht + 4 + 1] = 3;  // three 1-bit codes
  CHECK_IO_ERROR(decode_image(dc.data(), dc.size(), "kraft.jpg", 3), "kraft.jpg", "overflow the code space");
  // Found by fuzz_image (regression-jpeg-scan-uses-undefined-huffman-table.jpg): a scan naming an AC table
  // no DHT defined made stb 2.27 decode with uncleared memory (index 994 of a 256-entry table).
  Bytes undefined_table = jpg;
  size_t sos = 2;
  while (sos + 1 < undefined_table.size() && !(undefined_table[sos] == 0xFF && undefined_table[sos + 1] == 0xDA)) ++sos;
  REQUIRE(sos + 6 < undefined_table.size());
  undefined_table[sos + 6] = 0x02;  // the first component: DC table 0, AC table 2 (never defined)
  CHECK_IO_ERROR(decode_image(undefined_table.data(), undefined_table.size(), "scan.jpg", 3), "scan.jpg",
                 "uses a Huffman table no DHT segment defined");
  // The intact files still decode, with trailing bytes after the end allowed as before.
  for (Bytes* b : {&bmp, &jpg, &png}) {
    b->insert(b->end(), {1, 2, 3});
    CHECK(decode_image(b->data(), b->size(), "ok", 3).chw.size() == 6 * 5 * 3);
  }
}

// A 1x1 8-bit gray PNG whose IDAT is `copies` repeats of one deflate segment of 1 MiB of zeros: 2048
// copies are ~2 MB of IDAT that inflate to 2 GiB. stb 2.27 accepts surplus pixel data, so before the
// allocation budget this decoded "successfully" after allocating 2-3 GiB.
Bytes png_zero_bomb(int copies) {
  Bytes zeros(size_t(1) << 20, 0), seg(zeros.size());
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  zs.next_in = zeros.data();
  zs.avail_in = uInt(zeros.size());
  zs.next_out = seg.data();
  zs.avail_out = uInt(seg.size());
  // A full flush ends the segment byte-aligned with no history, so copies of it form a valid stream.
  REQUIRE(deflate(&zs, Z_FULL_FLUSH) == Z_OK);
  REQUIRE(zs.avail_in == 0);
  seg.resize(seg.size() - zs.avail_out);
  deflateEnd(&zs);
  Bytes idat{'I', 'D', 'A', 'T', 0x78, 0x01};  // zlib header: deflate, 32 KiB window, no dictionary
  for (int i = 0; i < copies; ++i) idat.insert(idat.end(), seg.begin(), seg.end());
  const uint64_t n = uint64_t(copies) << 20;
  const uint32_t adler = uint32_t(n % 65521) << 16 | 1;  // Adler-32 of n zero bytes
  idat.insert(idat.end(), {0x03, 0x00, uint8_t(adler >> 24), uint8_t(adler >> 16), uint8_t(adler >> 8), uint8_t(adler)});
  Bytes b{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1,
          8, 0, 0, 0, 0, 0, 0, 0, 0};
  put_be32(b, 29, uint32_t(crc32(0, b.data() + 12, 17)));
  const size_t at = b.size();
  b.resize(at + 4);
  put_be32(b, at, uint32_t(idat.size() - 4));
  b.insert(b.end(), idat.begin(), idat.end());
  b.resize(b.size() + 4);
  put_be32(b, b.size() - 4, uint32_t(crc32(0, idat.data(), uInt(idat.size()))));
  const uint8_t iend[] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  b.insert(b.end(), iend, iend + sizeof iend);
  return b;
}

TEST_CASE("image decoding: a PNG whose pixel data inflates far beyond its header's size is refused cheaply") {
  Bytes one = png_zero_bomb(8);  // 8 MiB of zeros for a 2-byte image: over the budget too
  Bytes bomb = png_zero_bomb(2048);
  INFO("bomb file bytes: ", bomb.size());
  CHECK(bomb.size() > 2000000);
  CHECK(bomb.size() < 2200000);
  for (const Bytes* b : {&one, &bomb}) {
    CHECK_IO_ERROR(decode_image(b->data(), b->size(), "bomb.png", 1), "bomb.png",
                   "the decoded data exceeds what its header implies (1x1 px");
    // The budget is 8 x (1 + 32)^2 x 8 + 3 x the file size + 1 MiB: under 8 MiB here (was 2-3 GiB).
    const uint64_t peak = last_decode_peak_bytes();
    INFO("peak decoder bytes: ", peak);
    CHECK(peak > 0);
    CHECK(peak <= 8 * 33 * 33 * 8 + 3 * b->size() + (1u << 20));
  }
  // The same file with only its 2 bytes of real data decodes, and the peak is small.
  Bytes px{0};
  Bytes ok = encode("png", 1, 1, 1, px);
  DecodedImage d = decode_image(ok.data(), ok.size(), "ok.png", 1);
  CHECK(d.chw == Bytes{0});
  CHECK(last_decode_peak_bytes() < 100000);
}

// A JPEG written by hand: 8x8, three components, one baseline scan per component (multi-scan baseline,
// as some encoders write), every block flat with the DC value given (AC all zero, quantisation 1). Scan 1
// (Y) uses Huffman tables 0; tables 1, used by the Cb and Cr scans, are defined by a DHT between scan 1
// and scan 2. `dc1_symbols` are the symbols of DC table 1 (2-bit codes; the data uses the first two).
Bytes multi_scan_jpeg(const std::vector<uint8_t>& dc1_symbols) {
  Bytes j{0xFF, 0xD8};
  auto segment = [&](uint8_t marker, const Bytes& body) {
    j.insert(j.end(), {0xFF, marker, uint8_t((body.size() + 2) >> 8), uint8_t(body.size() + 2)});
    j.insert(j.end(), body.begin(), body.end());
  };
  Bytes dqt(65, 1);
  dqt[0] = 0;  // 8-bit table 0
  segment(0xDB, dqt);
  segment(0xC0, {8, 0, 8, 0, 8, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0});
  // A table: class/id, 16 counts (all codes of length `len`), symbols.
  auto table = [](uint8_t id, int len, const std::vector<uint8_t>& symbols) {
    Bytes t(17, 0);
    t[0] = id;
    t[size_t(len)] = uint8_t(symbols.size());
    t.insert(t.end(), symbols.begin(), symbols.end());
    return t;
  };
  Bytes dht0 = table(0x00, 2, {0, 8, 9});  // DC 0: codes 00 -> 0, 01 -> 8, 10 -> 9 (bit counts)
  Bytes ac0 = table(0x10, 1, {0x00});      // AC 0: code 0 -> end of block
  dht0.insert(dht0.end(), ac0.begin(), ac0.end());
  segment(0xC4, dht0);
  // Entropy-coded data of one flat block: a DC code, the difference's bits, end of block; 1-padded.
  auto block = [](uint32_t code, int code_len, uint32_t value, int bits) {
    uint64_t acc = (uint64_t(code) << bits | value) << 1;  // then the 1-bit EOB code 0
    int n = code_len + bits + 1;
    const int pad = (8 - n % 8) % 8;
    acc = acc << pad | ((uint64_t(1) << pad) - 1);
    n += pad;
    Bytes out;
    for (int k = n - 8; k >= 0; k -= 8) out.push_back(uint8_t(acc >> k));
    return out;
  };
  auto scan = [&](uint8_t comp, uint8_t tables, const Bytes& data) {
    segment(0xDA, {1, comp, tables, 0, 63, 0});
    j.insert(j.end(), data.begin(), data.end());
  };
  scan(1, 0x00, block(0b10, 2, 320, 9));  // Y: DC 320 (9 bits) -> 128 + 320 / 8 = 168
  Bytes dht1 = table(0x01, 2, dc1_symbols);
  Bytes ac1 = table(0x11, 1, {0x00});
  dht1.insert(dht1.end(), ac1.begin(), ac1.end());
  segment(0xC4, dht1);
  scan(2, 0x11, block(0b00, 2, 0, 0));    // Cb: DC 0 -> 128
  scan(3, 0x11, block(0b01, 2, 160, 8));  // Cr: DC 160 (8 bits) -> 128 + 20
  j.insert(j.end(), {0xFF, 0xD9});
  return j;
}

TEST_CASE("image decoding: JPEG Huffman tables are checked in every segment, also between scans") {
  // A valid multi-scan baseline file decodes: Y = 168 and Cr = 148 give (JFIF) R = 168 + 1.402 x 20,
  // G = 168 - 0.714136 x 20, B = 168.
  Bytes good = multi_scan_jpeg({0, 8, 9});
  DecodedImage gray = decode_image(good.data(), good.size(), "good.jpg", 1);
  REQUIRE(gray.chw.size() == 64);
  for (uint8_t v : gray.chw) CHECK(std::abs(int(v) - 168) <= 1);
  DecodedImage rgb = decode_image(good.data(), good.size(), "good.jpg", 3);
  REQUIRE(rgb.chw.size() == 3 * 64);
  for (int p = 0; p < 64; ++p) {
    CHECK(std::abs(int(rgb.chw[size_t(p)]) - 196) <= 1);
    CHECK(std::abs(int(rgb.chw[size_t(64 + p)]) - 154) <= 1);
    CHECK(std::abs(int(rgb.chw[size_t(128 + p)]) - 168) <= 1);
  }
  // The same file with DC table 1 holding a symbol above 15 (unused by the data, so stb 2.27 decoded it
  // without complaint): the check used to stop at the first scan.
  Bytes bad = multi_scan_jpeg({0, 8, 200});
  CHECK_IO_ERROR(decode_image(bad.data(), bad.size(), "late.jpg", 3), "late.jpg", "DC symbol 200 is above 15");
  // A table overflowing its code space after the first scan, too (5 codes of 2 bits).
  Bytes kraft = multi_scan_jpeg({0, 8, 9, 1, 2});
  CHECK_IO_ERROR(decode_image(kraft.data(), kraft.size(), "kraft.jpg", 3), "kraft.jpg", "overflow the code space");
  // Stuffed FF 00 and restart markers in entropy-coded data do not end it; a cut file is still refused.
  Bytes stuffed = good;
  const size_t eoi = stuffed.size() - 2;
  Bytes late{0xFF, 0x00, 0xFF, 0xD0, 0xFF, 0xC4, 0, 20, 0x00, 0, 1};  // then a 20-byte DHT: one DC code...
  late.resize(late.size() + 14, 0);
  late.push_back(200);  // ...for symbol 200
  stuffed.insert(stuffed.begin() + std::ptrdiff_t(eoi), late.begin(), late.end());
  CHECK_IO_ERROR(decode_image(stuffed.data(), stuffed.size(), "junk.jpg", 3), "junk.jpg", "Huffman table at byte");
  Bytes cut(good.begin(), good.end() - 2);
  CHECK_IO_ERROR(decode_image(cut.data(), cut.size(), "cut.jpg", 3), "cut.jpg", "no end-of-image marker");
}

TEST_CASE("image folder: the decoded size of all files is checked from their headers before decoding") {
  TempDir dir;
  // 24 headers of 16384x4096 RGB: 4.5 GiB decoded, refused at the default 1 GiB before any decoding (the
  // files hold no pixel data, so decoding would fail with a different message).
  Bytes big = png_header_only(16384, 4096);
  for (int i = 0; i < 24; ++i) write_bytes(dir / ("c/" + std::to_string(100 + i) + ".png"), big);
  const std::string d = dir.path.string();
  CHECK_IO_ERROR(load_image_folder(d), d, "decode to 4831838208 bytes, more than the 1073741824-byte limit");
  // The budget counts what is kept: resized to 16x16 they fit, and then decoding fails on the first file.
  ImageFolderOptions small;
  small.height = 16;
  small.width = 16;
  CHECK_IO_ERROR(load_image_folder(d, small), dir / "c/100.png", "cannot decode image");
  // The limit is exact: 3 RGB images of 4x4 are 144 bytes.
  TempDir ok;
  for (int i = 0; i < 3; ++i) write_png(ok / ("c/" + std::to_string(i) + ".png"), 4, 4, 3, i);
  ImageFolderOptions limit;
  limit.max_total_bytes = 144;
  CHECK(load_image_folder(ok.path.string(), limit).size() == 3);
  limit.max_total_bytes = 143;
  CHECK_IO_ERROR(load_image_folder(ok.path.string(), limit), ok.path.string(), "decode to 144 bytes, more than the 143");
  limit.grayscale = true;  // 1 channel: 48 bytes
  CHECK(load_image_folder(ok.path.string(), limit).size() == 3);
}

TEST_CASE("image folder: decoding is identical at 1, 2 and 3 threads and reports the first bad file") {
  ThreadGuard guard;
  TempDir dir;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 7; ++i) write_png(dir / ("c" + std::to_string(c) + "/" + std::to_string(i) + ".png"), 6, 5, 3, c * 10 + i);
  set_num_threads(1);
  Dataset one = load_image_folder(dir.path.string());
  for (int t : {2, 3}) {
    set_num_threads(t);
    Dataset other = load_image_folder(dir.path.string());
    CHECK(other.images == one.images);
    CHECK(other.labels == one.labels);
  }
  write_text(dir / "c1/3.png", "bad");
  write_text(dir / "c2/0.png", "bad too");
  for (int t : {1, 3}) {
    set_num_threads(t);
    CHECK_IO_ERROR(load_image_folder(dir.path.string()), dir / "c1/3.png", "cannot decode");
  }
}

// ---------------------------------------------------------------- detection

TEST_CASE("load_dataset detects MNIST, CIFAR (also in its archive folder) and image folders") {
  TempDir dir;
  write_mnist(dir / "fashion", "t10k", 3, 4, 4, true);
  CHECK(load_dataset(dir / "fashion", "test").kind == "fashion-mnist");

  write_bytes(dir / "c10/cifar-10-batches-bin/test_batch.bin", cifar_records(2, 1, 0, 10));
  CHECK(detect_dataset(dir / "c10", "test").dir == dir / "c10/cifar-10-batches-bin");
  CHECK(load_dataset(dir / "c10", "test").kind == "cifar10");
  write_bytes(dir / "c100/test.bin", cifar_records(2, 2, 0, 100));
  CHECK(load_dataset(dir / "c100", "test").kind == "cifar100");

  write_png(dir / "split/train/x/1.png", 3, 3, 3, 0);
  write_png(dir / "split/train/y/1.png", 3, 3, 3, 1);
  write_png(dir / "split/test/x/1.png", 3, 3, 3, 2);
  CHECK(load_dataset(dir / "split", "train").size() == 2);
  CHECK(load_dataset(dir / "split", "test").size() == 1);
  write_png(dir / "flat/x/1.png", 3, 3, 3, 0);
  CHECK(detect_dataset(dir / "flat", "test").kind == "image-folder");
  ImageFolderOptions gray;
  gray.grayscale = true;
  CHECK(load_dataset(dir / "flat", "train", gray).sample_shape == Shape{1, 3, 3});

  fs::create_directories(dir / "junk/sub");
  write_text(dir / "junk/sub/a.txt", "?");
  CHECK_IO_ERROR(load_dataset(dir / "junk", "train"), dir / "junk", "not a recognised dataset");
  CHECK_IO_ERROR(load_dataset(dir / "absent", "train"), dir / "absent", "no such directory");
  CHECK_THROWS_AS(load_dataset(dir / "flat", "val"), ValueError);
}

TEST_CASE("load_dataset: symlink loops and broken links are reported naming the file and the cause") {
  TempDir dir;
  auto link = [](const std::string& target, const std::string& at) {
    fs::create_directories(fs::path(at).parent_path());
    fs::create_symlink(target, at);
  };
  // A link to itself: stat fails with ELOOP, which used to read as "no such file" and then "not recognised".
  link("train-images-idx3-ubyte", dir / "loop/train-images-idx3-ubyte");
  CHECK_IO_ERROR(load_dataset(dir / "loop", "train"), dir / "loop/train-images-idx3-ubyte",
                 "Too many levels of symbolic links");
  CHECK_IO_ERROR(find_idx_file(dir / "loop", "train-images-idx3-ubyte"), dir / "loop/train-images-idx3-ubyte",
                 "Too many levels of symbolic links");
  link("nowhere.bin", dir / "broken/test_batch.bin");
  CHECK_IO_ERROR(load_dataset(dir / "broken", "test"), dir / "broken/test_batch.bin", "broken symbolic link");
  // A names file that is a loop is an error, not a silent fall-back to numbered class names.
  write_bytes(dir / "names/test_batch.bin", cifar_records(2, 1, 0, 10));
  link("batches.meta.txt", dir / "names/batches.meta.txt");
  CHECK_IO_ERROR(load_dataset(dir / "names", "test"), dir / "names/batches.meta.txt",
                 "Too many levels of symbolic links");
  // Image folders: a class folder that is a loop is reported, not left out (which would drop a class).
  write_png(dir / "img/a/1.png", 3, 3, 3, 0);
  link("b", dir / "img/b");
  CHECK_IO_ERROR(load_dataset(dir / "img", "train"), dir / "img/b", "Too many levels of symbolic links");
  CHECK_IO_ERROR(load_image_folder(dir / "img"), dir / "img/b", "Too many levels of symbolic links");
  fs::remove(dir / "img/b");
  link("2.png", dir / "img/a/2.png");
  CHECK_IO_ERROR(load_image_folder(dir / "img"), dir / "img/a/2.png", "Too many levels of symbolic links");
  // Links that resolve are followed as before.
  fs::remove(dir / "img/a/2.png");
  link("1.png", dir / "img/a/2.png");
  link("a", dir / "img/c");
  CHECK(load_dataset(dir / "img", "train").size() == 4);
}

// ---------------------------------------------------------------- DataLoader

TEST_CASE("DataLoader: every sample exactly once per epoch; drop_last; batch contents") {
  Dataset d = synthetic(103, {1, 4, 4});
  for (bool shuffle : {false, true}) {
    CAPTURE(shuffle);
    LoaderOptions o;
    o.batch_size = 10;
    o.shuffle = shuffle;
    o.seed = 5;
    DataLoader loader(d, o);
    CHECK(loader.num_batches() == 11);
    std::multiset<int64_t> seen;
    for (int64_t b = 0; b < loader.num_batches(); ++b) {
      Batch batch = loader.batch(2, b);
      CHECK(batch.x.shape() == Shape{int64_t(batch.indices.size()), 1, 4, 4});
      CHECK(bitwise_equal(batch.x, d.images_float(batch.indices)));
      CHECK(bitwise_equal(batch.y, d.labels_tensor(batch.indices)));
      seen.insert(batch.indices.begin(), batch.indices.end());
    }
    CHECK(loader.batch(2, 10).indices.size() == 3);
    CHECK(seen.size() == 103);
    CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 103);
    o.drop_last = true;
    DataLoader dropping(d, o);
    CHECK(dropping.num_batches() == 10);
    CHECK_THROWS_AS(dropping.batch(0, 10), ValueError);
  }
  LoaderOptions o;
  o.batch_size = 10;
  CHECK(DataLoader(d, o).epoch_order(0) == DataLoader(d, o).epoch_order(7));  // no shuffle: dataset order
  CHECK(DataLoader(d, o).epoch_order(0)[42] == 42);
}

TEST_CASE("DataLoader: batch counts are exact for any positive batch size, bad arguments are ValueErrors") {
  Dataset d = synthetic(10, {1, 2, 2});
  // {batch size, batches, batches with drop_last} for 10 samples.
  const std::vector<std::array<int64_t, 3>> cases{{1, 10, 10}, {3, 4, 3}, {5, 2, 2}, {10, 1, 1}, {11, 1, 0},
                                                   {INT64_MAX / 2, 1, 0}, {INT64_MAX - 1, 1, 0}, {INT64_MAX, 1, 0}};
  for (const auto& c : cases) {
    const int64_t batch = c[0];
    CAPTURE(batch);
    LoaderOptions o;
    o.batch_size = batch;
    DataLoader loader(d, o);
    CHECK(loader.num_batches() == c[1]);
    Batch last = loader.batch(0, loader.num_batches() - 1);
    CHECK(int64_t(last.indices.size()) == 10 - (c[1] - 1) * std::min<int64_t>(batch, 10));
    o.drop_last = true;
    CHECK(DataLoader(d, o).num_batches() == c[2]);
  }
  LoaderOptions o;
  o.batch_size = INT64_MAX;
  o.shuffle = true;
  DataLoader loader(d, o);
  CHECK(loader.batch(3, 0).indices.size() == 10);
  CHECK_THROWS_AS(loader.batch(0, 1), ValueError);
  CHECK_THROWS_AS(loader.batch(-1, 0), ValueError);
  CHECK_THROWS_AS(loader.batch(int64_t(1) << 62 | 1, 0), ValueError);  // would share epoch 1's Philox stream
  CHECK(loader.batch(int64_t(1) << 62, 0).indices.size() == 10);
  for (int64_t bad : {int64_t(0), int64_t(-1), INT64_MIN}) {
    o.batch_size = bad;
    CHECK_THROWS_WITH_AS(DataLoader(d, o), doctest::Contains("batch_size must be >= 1"), ValueError);
  }
}

TEST_CASE("DataLoader: the epoch order depends only on seed and epoch") {
  Dataset d = synthetic(500, {1, 2, 2});
  LoaderOptions o;
  o.shuffle = true;
  o.seed = 11;
  DataLoader a(d, o), b(d, o);
  std::vector<int64_t> a3 = a.epoch_order(3);
  b.epoch_order(1);  // other epochs asked before: no hidden state
  CHECK(b.epoch_order(3) == a3);
  CHECK(a.epoch_order(4) != a3);
  CHECK(a.epoch_order(3) == a3);
  std::vector<int64_t> identity(500);
  for (int64_t i = 0; i < 500; ++i) identity[size_t(i)] = i;
  CHECK(a3 != identity);
  o.seed = 12;
  CHECK(DataLoader(d, o).epoch_order(3) != a3);
  // A different batch size visits the same order.
  o.seed = 11;
  o.batch_size = 7;
  CHECK(DataLoader(d, o).batch(3, 2).indices == std::vector<int64_t>(a3.begin() + 14, a3.begin() + 21));
  CHECK_THROWS_AS(a.batch(-1, 0), ValueError);
}

TEST_CASE("DataLoader: limit and subset") {
  Dataset d = synthetic(50, {1, 2, 2});
  LoaderOptions o;
  o.batch_size = 4;
  o.limit = 10;
  DataLoader first(d, o);
  CHECK(first.size() == 10);
  CHECK(first.num_batches() == 3);
  o.shuffle = true;
  std::vector<int64_t> order = DataLoader(d, o).epoch_order(0);
  CHECK(std::set<int64_t>(order.begin(), order.end()) == std::set<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  o.shuffle = false;
  o.limit = 2;
  o.subset = {40, 3, 17};
  CHECK(DataLoader(d, o).epoch_order(0) == std::vector<int64_t>{40, 3});
  o.subset = {50};
  CHECK_THROWS_AS(DataLoader(d, o), ValueError);
  o.subset.clear();
  o.batch_size = 0;
  CHECK_THROWS_AS(DataLoader(d, o), ValueError);
  o.batch_size = 1;
  o.augment.crop_padding = 3;
  CHECK_THROWS_AS(DataLoader(d, o), ValueError);  // larger than the 2x2 images
  Dataset broken = d;
  broken.labels[0] = 10;
  CHECK_THROWS_AS(DataLoader(broken, LoaderOptions{}), ValueError);
}

TEST_CASE("DataLoader: augmentation is deterministic, changes images, and is crop/flip of the original") {
  Dataset d = synthetic(64, {2, 6, 5});
  LoaderOptions o;
  o.batch_size = 16;
  o.shuffle = true;
  o.seed = 3;
  o.augment.crop_padding = 2;
  o.augment.hflip = true;
  DataLoader loader(d, o);
  Batch b = loader.batch(1, 2);
  CHECK(bitwise_equal(b.x, DataLoader(d, o).batch(1, 2).x));
  CHECK(!bitwise_equal(b.x, d.images_float(b.indices)));
  CHECK(!bitwise_equal(b.x, loader.batch(2, 0).x));

  // Each row equals the padded-crop-then-flip of its source image, from the documented formula.
  const float* x = b.x.data<float>();
  int flips = 0, shifts = 0;
  for (size_t r = 0; r < b.indices.size(); ++r) {
    AugmentParams p = draw_augment(o.augment, o.seed, 1, b.indices[r]);
    flips += p.flip;
    shifts += (p.dy != 2 || p.dx != 2);
    const uint8_t* src = d.image(b.indices[r]);
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t y = 0; y < 6; ++y)
        for (int64_t xx = 0; xx < 5; ++xx) {
          int64_t sy = y + p.dy - 2, sx = (p.flip ? 4 - xx : xx) + p.dx - 2;
          float want = (sy >= 0 && sy < 6 && sx >= 0 && sx < 5) ? src[(c * 6 + sy) * 5 + sx] / 255.0f : 0.0f;
          REQUIRE(x[((int64_t(r) * 2 + c) * 6 + y) * 5 + xx] == want);
        }
  }
  CHECK(flips > 0);
  CHECK(flips < 16);
  CHECK(shifts > 0);
  // The same sample gets the same augmentation in an epoch whatever batch it lands in.
  o.batch_size = 64;
  Batch whole = DataLoader(d, o).batch(1, 0);
  auto pos = std::find(whole.indices.begin(), whole.indices.end(), b.indices[0]) - whole.indices.begin();
  CHECK(std::equal(x, x + 60, whole.x.data<float>() + pos * 60));
}

TEST_CASE("DataLoader: batches are bit-identical at 1, 2 and 3 threads") {
  ThreadGuard guard;
  Dataset d = synthetic(300, {3, 32, 32});
  for (bool augment : {false, true}) {
    LoaderOptions o;
    o.batch_size = 100;
    o.shuffle = true;
    o.seed = 99;
    o.augment.crop_padding = augment ? 4 : 0;
    o.augment.hflip = augment;
    set_num_threads(1);
    std::vector<Batch> ref;
    for (int64_t b = 0; b < 3; ++b) ref.push_back(DataLoader(d, o).batch(5, b));
    for (int t : {2, 3}) {
      set_num_threads(t);
      DataLoader loader(d, o);
      for (int64_t b = 0; b < 3; ++b) {
        Batch got = loader.batch(5, b);
        CHECK(bitwise_equal(got.x, ref[size_t(b)].x));
        CHECK(got.indices == ref[size_t(b)].indices);
      }
    }
  }
}

// ---------------------------------------------------------------- PNG grid

TEST_CASE("write_png_grid: layout, separator, upscaling, read back with stb_image") {
  TempDir dir;
  // 5 RGB images of 4x6 whose pixel (n, c, y, x) is known.
  std::vector<float> v(5 * 3 * 4 * 6);
  for (size_t k = 0; k < v.size(); ++k) v[k] = float(k % 17) / 16.0f;
  Tensor images = from_vector(v, {5, 3, 4, 6});
  GridOptions o;
  o.cols = 3;
  o.separator = 2;
  o.scale = 2;
  const std::string path = dir / "grid.png";
  write_png_grid(path, images, o);
  for (const auto& e : fs::directory_iterator(dir.path)) CHECK(e.path().filename() == "grid.png");  // no temporary left

  int w = 0, h = 0, comp = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> px(stbi_load(path.c_str(), &w, &h, &comp, 0), stbi_image_free);
  REQUIRE(px);
  CHECK(w == 3 * 12 + 2 * 2);
  CHECK(h == 2 * 8 + 1 * 2);
  CHECK(comp == 3);
  // Image 4 sits at row 1, col 1: top-left (8 + 2, 12 + 2). Its pixel (y=1, x=2), green, upscaled by 2.
  auto at = [&](int y, int x, int c) { return int(px.get()[(y * w + x) * 3 + c]); };
  const float g = v[((4 * 3 + 1) * 4 + 1) * 6 + 2];
  const int expected = int(std::lround(g * 255.0f));
  CHECK(at(10 + 2, 14 + 4, 1) == expected);
  CHECK(at(10 + 3, 14 + 5, 1) == expected);
  CHECK(at(0, 12, 0) == 255);   // vertical separator
  CHECK(at(17, 39, 2) == 255);  // the unused sixth cell
  // Out-of-range values are clamped.
  Tensor gray = full({1, 1, 2, 2}, 2.0);
  gray.set({0, 0, 0, 0}, -1.0);
  write_png_grid(dir / "gray.png", gray, {});
  std::unique_ptr<unsigned char, void (*)(void*)> gp(stbi_load((dir / "gray.png").c_str(), &w, &h, &comp, 0),
                                                     stbi_image_free);
  REQUIRE(gp);
  CHECK(comp == 1);
  CHECK(w == 2);
  CHECK(int(gp.get()[0]) == 0);
  CHECK(int(gp.get()[1]) == 255);
}

TEST_CASE("write_png_grid: bad tensors and unwritable paths") {
  TempDir dir;
  CHECK_THROWS_AS(make_grid(zeros({2, 2, 4, 4})), ShapeError);
  CHECK_THROWS_AS(make_grid(zeros({4, 4})), ShapeError);
  CHECK_THROWS_AS(make_grid(zeros({1, 1, 4, 4}, DType::I64)), TypeError);
  GridOptions big;
  big.scale = 64;
  CHECK_THROWS_AS(make_grid(zeros({1000, 3, 32, 32}), big), ValueError);
  CHECK(make_grid(zeros({3, 5, 7})).width == 7);  // a single [C,H,W] image
  const std::string path = dir / "no/such/dir/grid.png";
  CHECK_IO_ERROR(write_png_grid(path, zeros({1, 1, 2, 2})), path, "cannot write");
}

// ---------------------------------------------------------------- the real Fashion-MNIST

TEST_CASE("Fashion-MNIST from /usr/share/datasets: 60000/10000 samples, 28x28, 6000 per class") {
  const std::string dir = default_fashion_mnist_dir();
  if (!fs::exists(dir)) {
    MESSAGE("skipped: ", dir, " is missing (Debian package dataset-fashion-mnist)");
    return;
  }
  Dataset train = load_dataset(dir, "train");
  CHECK(train.kind == "fashion-mnist");
  CHECK(train.size() == 60000);
  CHECK(train.sample_shape == Shape{1, 28, 28});
  std::map<int64_t, int> counts;
  for (int64_t y : train.labels) counts[y]++;
  CHECK(counts.size() == 10);
  for (auto [label, n] : counts) {
    CHECK(label >= 0);
    CHECK(label <= 9);
    CHECK(n == 6000);
  }
  Dataset test = load_mnist_family(dir, "test");
  CHECK(test.size() == 10000);
  CHECK(test.sample_shape == Shape{1, 28, 28});
  CHECK(test.class_names[0] == "T-shirt/top");
}
