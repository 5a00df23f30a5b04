// safetensors: round trips, the exact byte layout, one test per kind of corrupt file, and random mutations
// of a valid file (which must load or raise advgrad::Error, nothing else).
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "advgrad/autograd/ops.h"
#include "advgrad/nn/layers.h"
#include "advgrad/nn/serialize.h"

using namespace advgrad;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("advgrad_test_serialize_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((v >> (8 * i)) & 0xff);
  return s;
}

template <class T> std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// A file in the standard layout: length, header exactly as given (no padding), data.
std::string file_bytes(const std::string& header, const std::string& data = "") {
  return u64_le(header.size()) + header + data;
}

const char* kName = "mem.safetensors";

SafetensorsFile load_mem(const std::string& bytes) {
  return load_safetensors_from_memory(bytes.data(), bytes.size(), kName);
}

// The message of the IOError that loading `bytes` raises ("" if it loads or raises something else).
std::string load_error(const std::string& bytes) {
  try {
    load_mem(bytes);
  } catch (const IOError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("not an IOError: " << e.what());
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Loading must fail with an IOError naming the file and mentioning every one of `parts`.
void check_rejected(const std::string& bytes, std::initializer_list<std::string> parts) {
  std::string msg = load_error(bytes);
  INFO("message: " << msg);
  CHECK(contains(msg, kName));
  for (const std::string& p : parts) CHECK_MESSAGE(contains(msg, p), "missing '" << p << "'");
}

// One F32 tensor "a" of shape [2] with the given data_offsets text, over `data_size` bytes of data.
std::string one_tensor(const std::string& entry, size_t data_size = 8) {
  return file_bytes("{\"a\":" + entry + "}", std::string(data_size, '\x01'));
}

// Same device, shape, dtype and bytes. (Empty tensors are compared without bitwise_equal, whose memcmp
// of two null buffers UBSan reports.)
bool same(const Tensor& a, const Tensor& b) {
  if (a.device() != b.device() || a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  return a.numel() == 0 || bitwise_equal(a, b);
}

}  // namespace

TEST_CASE("round trip of every dtype, 0-d, empty and rank-4 tensors, with metadata") {
  TempDir dir;
  Generator gen(7);
  StateDict sd;
  sd["conv.weight"] = randn({2, 1, 3, 3}, gen);
  sd["fc.bias"] = randn({5}, gen, DType::F64);
  sd["labels"] = randint(-3, 10, {7}, gen);
  sd["scalar"] = scalar_tensor(2.5);
  sd["empty"] = zeros({0, 3}, DType::F64);
  sd["rank4"] = randn({2, 3, 1, 4}, gen, DType::F32, Device::Reference);  // saved from the other device
  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"epoch", "3"}, {"note", "caf\xc3\xa9 \"quoted\""}, {"", ""}};
  std::string path = dir.file("model.safetensors");
  save_safetensors(path, sd, meta);

  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata == meta);
  REQUIRE(f.tensors.size() == sd.size());
  for (const auto& entry : sd) {
    const std::string& name = entry.first;  // named, not bound: INFO captures it in a lambda
    const Tensor& t = entry.second;
    INFO(name);
    REQUIRE(f.tensors.count(name));
    const Tensor& got = f.tensors.at(name);
    CHECK(got.device() == Device::CPU);
    CHECK(got.is_contiguous());
    CHECK(same(got, t.to(Device::CPU)));
  }
  CHECK(f.tensors.at("scalar").dim() == 0);
  CHECK(f.tensors.at("empty").shape() == Shape{0, 3});
  CHECK(f.tensors.at("labels").dtype() == DType::I64);

  // No metadata and no tensors are fine too; no temporary files are left behind.
  save_safetensors(dir.file("empty.safetensors"), {});
  SafetensorsFile e = load_safetensors(dir.file("empty.safetensors"));
  CHECK(e.tensors.empty());
  CHECK(e.metadata.empty());
  CHECK(read_bytes(dir.file("empty.safetensors")) == u64_le(8) + "{}      ");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) files += entry.is_regular_file();
  CHECK(files == 2);
}

TEST_CASE("non-contiguous inputs are written as their row-major elements") {
  TempDir dir;
  Tensor base = arange(24, DType::F32).dense();
  Tensor cube = reshape(base, {2, 3, 4});
  StateDict sd;
  sd["permuted"] = permute(cube, {2, 0, 1});
  sd["sliced"] = slice(cube, 2, 1, 4, 2);
  sd["expanded"] = expand(reshape(arange(3, DType::I64), {3, 1}), {3, 4});
  sd["offset"] = slice(cube, 0, 1, 2);  // contiguous, but starts inside its storage
  CHECK_FALSE(sd["permuted"].is_contiguous());
  CHECK_FALSE(sd["expanded"].is_contiguous());
  save_safetensors(dir.file("v.safetensors"), sd);
  SafetensorsFile f = load_safetensors(dir.file("v.safetensors"));
  for (const auto& entry : sd) {
    const std::string& name = entry.first;  // named, not bound: INFO captures it in a lambda
    const Tensor& t = entry.second;
    INFO(name);
    CHECK(same(f.tensors.at(name), t.clone()));
  }
  CHECK(f.tensors.at("permuted").at({3, 1, 2}) == cube.at({1, 2, 3}));
}

TEST_CASE("byte layout of a tiny file matches the format") {
  TempDir dir;
  StateDict sd;
  sd["a"] = from_vector(std::vector<float>{1.0f, -2.0f});
  save_safetensors(dir.file("tiny.safetensors"), sd, {{"k", "v"}});
  // 79 bytes of JSON plus one space of padding: the data starts at 8 + 80, a multiple of 8.
  const std::string json = R"({"__metadata__":{"k":"v"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}})";
  const std::string expected = std::string("\x50\0\0\0\0\0\0\0", 8) + json + " " +
                               std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  CHECK(read_bytes(dir.file("tiny.safetensors")) == expected);

  // Saving again replaces the file as a whole.
  sd["a"] = from_vector(std::vector<float>{3.0f});
  save_safetensors(dir.file("tiny.safetensors"), sd);
  CHECK(load_safetensors(dir.file("tiny.safetensors")).tensors.at("a").to_vector<float>() == std::vector<float>{3.0f});
}

TEST_CASE("files laid out by other writers load") {
  // Python's json.dumps style (spaces, field order dtype/shape/data_offsets), trailing-space padding.
  std::string header = R"({"__metadata__": {"format": "pt"}, )"
                       R"("w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}, )"
                       R"("y": {"dtype": "I64", "shape": [], "data_offsets": [16, 24]}})";
  std::string bytes = file_bytes(header + "   ", raw(std::vector<double>{0.5, -1.25}) + raw(std::vector<int64_t>{-9}));
  SafetensorsFile f = load_mem(bytes);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.tensors.at("w").to_vector<double>() == std::vector<double>{0.5, -1.25});
  CHECK(f.tensors.at("y").dim() == 0);
  CHECK(f.tensors.at("y").item() == -9.0);
  // Empty tensors occupy no bytes, so their offsets may sit anywhere inside the data section.
  SafetensorsFile g = load_mem(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                          R"("e":{"dtype":"F32","shape":[4,0],"data_offsets":[4,4]}})",
                                          raw(std::vector<float>{1, 2})));
  CHECK(g.tensors.at("e").shape() == Shape{4, 0});
}

TEST_CASE("unreadable and truncated files") {
  TempDir dir;
  std::string missing = dir.file("missing.safetensors");
  try {
    load_safetensors(missing);
    FAIL("loaded a missing file");
  } catch (const IOError& e) {
    CHECK(contains(e.what(), missing));
    CHECK(contains(e.what(), "cannot open"));
  }
  CHECK_THROWS_WITH_AS(load_safetensors(dir.path.string()), doctest::Contains("not a regular file"), IOError);

  check_rejected("", {"0 bytes", "shorter than the 8-byte"});
  check_rejected("abcdefg", {"7 bytes", "shorter than the 8-byte"});
  check_rejected(u64_le(100) + "{}", {"header length 100", "larger than"});
  check_rejected(u64_le(uint64_t(1) << 40) + "{}", {"over the limit"});
  check_rejected(u64_le(~uint64_t(0)) + "{}", {"over the limit"});

  // Through a real file the message names its path.
  std::string bad = dir.file("short.safetensors");
  write_bytes(bad, u64_le(9) + "{}");
  CHECK_THROWS_WITH_AS(load_safetensors(bad), doctest::Contains((bad + ": header length 9").c_str()), IOError);
  write_bytes(bad, "{}");
  CHECK_THROWS_WITH_AS(load_safetensors(bad), doctest::Contains("shorter than"), IOError);
}

TEST_CASE("headers that are not a JSON object") {
  check_rejected(file_bytes(R"({"a":)"), {"not valid JSON"});
  check_rejected(file_bytes("[1,2]"), {"not a JSON object"});
  check_rejected(file_bytes(" {}"), {"not a JSON object"});  // the format requires '{' first
  check_rejected(file_bytes(""), {"not a JSON object"});
  check_rejected(file_bytes("{} x"), {"not valid JSON"});
  check_rejected(file_bytes(std::string("{}\0{\"a\":1}", 10)), {"NUL"});
  check_rejected(file_bytes("{\"a\xff\":{}}"), {"not valid JSON"});  // not UTF-8
  CHECK(load_error(file_bytes("{}\n\t ")) == "");  // trailing whitespace is fine
}

TEST_CASE("entries that are not well-formed tensor descriptions") {
  const std::string ok_shape = R"("shape":[2])", ok_dtype = R"("dtype":"F32")", ok_off = R"("data_offsets":[0,8])";
  check_rejected(one_tensor("5"), {"'a'", "not an object"});
  check_rejected(one_tensor("[1]"), {"'a'", "not an object"});
  check_rejected(one_tensor("{" + ok_shape + "," + ok_off + "}"), {"'a'", "missing dtype"});
  check_rejected(one_tensor("{" + ok_dtype + "," + ok_off + "}"), {"'a'", "missing shape"});
  check_rejected(one_tensor("{" + ok_dtype + "," + ok_shape + "}"), {"'a'", "missing data_offsets"});
  check_rejected(one_tensor("{" + ok_dtype + "," + ok_shape + "," + ok_off + R"(,"extra":1})"),
                 {"'a'", "unknown field 'extra'"});
  check_rejected(one_tensor(R"({"dtype":32,)" + ok_shape + "," + ok_off + "}"), {"'a'", "dtype is not a string"});
  check_rejected(one_tensor(R"({"dtype":{"x":1},)" + ok_shape + "," + ok_off + "}"), {"dtype is not a string"});
  check_rejected(one_tensor(R"({"dtype":"F32","shape":2,)" + ok_off + "}"), {"'a'", "shape is not an array"});
  check_rejected(one_tensor("{" + ok_dtype + "," + ok_shape + R"(,"data_offsets":"0-8"})"),
                 {"'a'", "data_offsets is not an array"});
  // A deeply nested value is refused at its first wrong token.
  check_rejected(one_tensor("{" + ok_dtype + R"(,"shape":)" + std::string(100000, '[')), {"shape entries"});
}

TEST_CASE("unsupported dtypes name the file, the tensor and the dtype") {
  for (std::string dt : {"F16", "BF16", "I32", "U8", "BOOL", "I8", "U64", "F8_E4M3", "f32", ""}) {
    INFO(dt);
    std::string bytes =
        file_bytes(R"({"w.q":{"dtype":")" + dt + R"(","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'));
    check_rejected(bytes, {"tensor 'w.q'", "dtype '" + dt + "'", "not supported"});
  }
}

TEST_CASE("shapes: non-negative integers whose element count fits") {
  auto with_shape = [](const std::string& shape, size_t data_size = 8) {
    std::string offsets = "[0," + std::to_string(data_size) + "]";
    return one_tensor(R"({"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}", data_size);
  };
  check_rejected(with_shape("[-2]"), {"'a'", "non-negative integers", "-2"});
  check_rejected(with_shape("[2.0]"), {"'a'", "non-negative integers", "2.0"});
  check_rejected(with_shape("[1e300]"), {"non-negative integers"});
  check_rejected(with_shape(R"(["2"])"), {"non-negative integers"});
  check_rejected(with_shape("[[2]]"), {"non-negative integers"});
  check_rejected(with_shape("[null]"), {"non-negative integers"});
  check_rejected(with_shape("[18446744073709551616]"), {"non-negative integers"});  // above uint64: a float
  check_rejected(with_shape("[9223372036854775808]"), {"'a'", "too large"});
  check_rejected(with_shape("[4294967296,4294967296]"), {"'a'", "element count overflows"});
  check_rejected(with_shape("[0,4611686018427387904,4]", 0), {"element count overflows"});
  std::string rank65 = "[";
  for (int i = 0; i < 64; ++i) rank65 += "1,";
  check_rejected(with_shape(rank65 + "1]", 4), {"more than 64 dimensions"});
}

TEST_CASE("data_offsets: two ordered integers inside the data section, matching the shape") {
  auto with_offsets = [](const std::string& offsets, size_t data_size = 8, const std::string& shape = "[2]") {
    return one_tensor(R"({"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}", data_size);
  };
  check_rejected(with_offsets("[0]"), {"'a'", "1 entries, not two"});
  check_rejected(with_offsets("[]"), {"0 entries, not two"});
  check_rejected(with_offsets("[0,4,8]"), {"more than two"});
  check_rejected(with_offsets("[-1,8]"), {"non-negative integers"});
  check_rejected(with_offsets("[0,8.5]"), {"non-negative integers"});
  check_rejected(with_offsets("[8,0]"), {"'a'", "[8, 0]", "begin after end"});
  check_rejected(with_offsets("[0,16]"), {"'a'", "beyond the data section (8 bytes)"});
  check_rejected(with_offsets("[0,18446744073709551615]"), {"beyond the data section"});
  check_rejected(with_offsets("[0,8]", 8, "[3]"), {"'a'", "holds 3 elements of 4 bytes", "span 8 bytes"});
  check_rejected(with_offsets("[0,4]", 4, "[4611686018427387904]"), {"holds 4611686018427387904 elements"});
}

TEST_CASE("tensors must tile the data section: no overlaps, no holes") {
  auto two = [](const std::string& a, const std::string& b, size_t data_size) {
    return file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + a + R"(},)" +
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":)" + b + "}}",
                      std::string(data_size, '\0'));
  };
  CHECK(load_error(two("[0,8]", "[8,16]", 16)) == "");
  CHECK(load_error(two("[8,16]", "[0,8]", 16)) == "");  // header order need not follow data order
  check_rejected(two("[0,8]", "[4,12]", 12), {"'a' and 'b' overlap"});
  check_rejected(two("[0,8]", "[0,8]", 8), {"overlap"});
  check_rejected(two("[0,8]", "[12,20]", 20), {"bytes 8 to 12", "belong to no tensor"});
  check_rejected(two("[4,12]", "[12,20]", 20), {"bytes 0 to 4", "belong to no tensor"});
  check_rejected(two("[0,8]", "[8,16]", 17), {"bytes 16 to 17", "belong to no tensor"});
}

TEST_CASE("__metadata__ is an object of strings") {
  const std::string t = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  auto with_meta = [&](const std::string& meta) {
    return file_bytes("{\"__metadata__\":" + meta + "," + t + "}", std::string(8, '\0'));
  };
  CHECK(load_mem(with_meta(R"({"x":"1"})")).metadata.at("x") == "1");
  check_rejected(with_meta("5"), {"__metadata__ is not an object"});
  check_rejected(with_meta(R"(["x"])"), {"__metadata__ is not an object"});
  check_rejected(with_meta(R"({"x":1})"), {"__metadata__ value for 'x' is not a string"});
  check_rejected(with_meta(R"({"x":{"y":"z"}})"), {"'x' is not a string"});
  check_rejected(with_meta(R"({"x":null})"), {"'x' is not a string"});
}

TEST_CASE("duplicate keys are refused (a JSON document would silently keep the last)") {
  const std::string t = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data(8, '\0');
  check_rejected(file_bytes("{\"a\":" + t + ",\"a\":" + t + "}", data), {"duplicate key 'a'"});
  check_rejected(file_bytes(R"({"__metadata__":{},"__metadata__":{},"a":)" + t + "}", data),
                 {"duplicate key '__metadata__'"});
  check_rejected(file_bytes(R"({"__metadata__":{"k":"1","k":"2"},"a":)" + t + "}", data),
                 {"duplicate key 'k' in __metadata__"});
  check_rejected(file_bytes(R"({"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})", data),
                 {"'a'", "duplicate field 'dtype'"});
}

TEST_CASE("names from the file are quoted safely in messages") {
  std::string msg = load_error(file_bytes("{\"" + std::string("x\\n\\u0001") + std::string(200, 'y') + "\":5}"));
  CHECK(contains(msg, "'x\\x0a\\x01yyy"));
  CHECK(contains(msg, "...'"));
  CHECK(msg.size() < 300);
}

TEST_CASE("save refuses what it cannot write") {
  TempDir dir;
  StateDict sd;
  sd["ok"] = zeros({2});
  sd["undefined"] = Tensor();
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("a.safetensors"), sd), doctest::Contains("'undefined' is undefined"),
                       ValueError);
  StateDict reserved;
  reserved["__metadata__"] = zeros({1});
  CHECK_THROWS_AS(save_safetensors(dir.file("a.safetensors"), reserved), ValueError);
  StateDict bad_utf8;
  bad_utf8["w\xff"] = zeros({1});
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("a.safetensors"), bad_utf8), doctest::Contains("UTF-8"), ValueError);
  CHECK_THROWS_AS(save_safetensors(dir.file("a.safetensors"), {}, {{"k", "\xc3"}}), ValueError);
  std::string nowhere = dir.file("no/such/dir/a.safetensors");
  CHECK_THROWS_WITH_AS(save_safetensors(nowhere, {}), doctest::Contains(nowhere.c_str()), IOError);
  // Nothing was left behind by the failures.
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("random mutations of a valid file load or raise advgrad::Error, never anything else") {
  TempDir dir;
  Generator gen(3);
  StateDict sd;
  sd["conv.weight"] = randn({2, 1, 2, 2}, gen);
  sd["fc.bias"] = randn({3}, gen, DType::F64);
  sd["labels"] = randint(0, 10, {4}, gen);
  sd["empty"] = zeros({0, 2});
  sd["s"] = scalar_tensor(1.0, DType::F64);
  save_safetensors(dir.file("valid.safetensors"), sd, {{"format", "pt"}});
  const std::string valid = read_bytes(dir.file("valid.safetensors"));
  size_t header_end = 8;
  for (int i = 7; i >= 0; --i) header_end += size_t(uint8_t(valid[size_t(i)])) << (8 * i);
  REQUIRE(header_end < valid.size());

  std::mt19937_64 rng(12345);  // fixed seed: the same mutations on every run
  auto pick = [&](size_t n) { return size_t(rng() % n); };
  int loaded = 0, rejected = 0, other = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string b = valid;
    int mutations = 1 + int(pick(3));
    for (int m = 0; m < mutations; ++m) {
      switch (pick(6)) {
        case 0:  // flip bits of a byte anywhere
          if (!b.empty()) b[pick(b.size())] ^= char(1 + pick(255));
          break;
        case 1:  // change a byte of the header, where most of the structure is
          if (b.size() > 8) b[8 + pick(std::min(b.size(), header_end) - 8)] = char(pick(256));
          break;
        case 2:  // replace a digit by another digit: well-formed JSON with wrong numbers
        {
          std::vector<size_t> digits;
          for (size_t i = 8; i < std::min(b.size(), header_end); ++i)
            if (b[i] >= '0' && b[i] <= '9') digits.push_back(i);
          if (!digits.empty()) b[digits[pick(digits.size())]] = char('0' + pick(10));
          break;
        }
        case 3:  // truncate
          b.resize(pick(b.size() + 1));
          break;
        case 4:  // a header length that is a little off, or anything at all
          if (b.size() >= 8) {
            uint64_t len = header_end - 8;
            uint64_t v = pick(2) ? len + pick(17) - 8 : rng();
            b.replace(0, 8, u64_le(v));
          }
          break;
        default:  // insert or delete a byte inside the header
          if (b.size() > 9) {
            size_t at = 8 + pick(std::min(b.size(), header_end) - 8);
            if (pick(2)) b.insert(b.begin() + long(at), char(pick(256)));
            else b.erase(b.begin() + long(at));
          }
      }
    }
    try {
      SafetensorsFile f = load_mem(b);
      ++loaded;
      for (const auto& [name, t] : f.tensors) CHECK(size_t(t.numel()) * dtype_size(t.dtype()) <= b.size());
    } catch (const Error&) {
      ++rejected;
    } catch (...) {
      ++other;
    }
  }
  CHECK(other == 0);
  CHECK(loaded > 0);
  CHECK(rejected > 0);
  MESSAGE("mutations: " << loaded << " loaded, " << rejected << " rejected");
}

// ------------------------------------------------------------------------------------------------------
// Reading only what is wanted: a valid file that names one extra huge tensor (a sparse file: the 2 GiB
// are claimed, not written). Loading weights from it used to read the whole data section and copy it
// (4.1 GiB RSS, ~40 s) before refusing the unexpected key.

namespace {

// Peak resident set of this process, in bytes (ru_maxrss is in KiB on Linux).
int64_t peak_rss_bytes() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;
}

// w [4,3] = 0..11, b [3] = 100..102, then `extra` (F32 [extra_elems]) claimed to fill the rest of a
// sparse file. Returns the path.
std::string write_with_extra(const TempDir& dir, const std::string& name, const std::string& extra, int64_t extra_elems) {
  std::vector<float> w(12), b = {100.f, 101.f, 102.f};
  for (int i = 0; i < 12; ++i) w[size_t(i)] = float(i);
  const uint64_t extra_bytes = uint64_t(extra_elems) * 4;
  std::string header = "{\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[12,60]},"
                       "\"" + extra + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(extra_elems) +
                       "],\"data_offsets\":[60," + std::to_string(60 + extra_bytes) + "]}}";
  const std::string path = dir.file(name);
  write_bytes(path, file_bytes(header, raw(b) + raw(w)));
  fs::resize_file(path, 8 + header.size() + 60 + extra_bytes);  // the extra tensor's bytes: a hole
  return path;
}

StateDict destination() {
  StateDict d;
  d["w"] = zeros({4, 3});
  d["b"] = zeros({3});
  return d;
}

}  // namespace

TEST_CASE("load_safetensors_into: an unexpected 2 GiB tensor is refused from the header, quickly, in little memory") {
  TempDir dir;
  const std::string path = write_with_extra(dir, "huge.safetensors", "huge", int64_t(1) << 29);  // 2 GiB of F32
  const int64_t rss0 = peak_rss_bytes();
  const auto t0 = std::chrono::steady_clock::now();
  StateDict dest = destination();
  try {
    load_safetensors_into(path, dest);
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find(path) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("unexpected key 'huge' (F32 [536870912], 2147483648 bytes)") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("no tensor data was read") != std::string::npos, msg);
  }
  CHECK(dest.at("w").to_vector<float>() == std::vector<float>(12, 0.f));  // nothing loaded
  // Not strict: the extra tensor is ignored and never read; the wanted ones arrive.
  auto meta = load_safetensors_into(path, dest, /*strict=*/false);
  CHECK(meta.empty());
  CHECK(dest.at("b").to_vector<float>() == std::vector<float>{100.f, 101.f, 102.f});
  CHECK(dest.at("w").to_vector<float>()[11] == 11.f);
  // The header alone: every entry, no data.
  SafetensorsHeader h = read_safetensors_header(path);
  REQUIRE(h.tensors.size() == 3);
  CHECK(h.tensors.at("huge").shape == Shape{int64_t(1) << 29});
  CHECK(h.tensors.at("huge").end - h.tensors.at("huge").begin == uint64_t(1) << 31);
  CHECK(h.data_size == 60 + (uint64_t(1) << 31));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t grown = peak_rss_bytes() - rss0;
  MESSAGE("three reads of a 2 GiB file: " << seconds << " s, peak RSS growth " << grown / 1024 << " KiB");
  CHECK(seconds < 2.0);                       // was ~40 s
  CHECK(grown < int64_t(64) << 20);           // was 4.1 GiB
}

TEST_CASE("load_safetensors_into: every mismatch listed with the file, NaN refused, nothing changed") {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  StateDict file;
  file["w"] = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {4, 3});  // F64 into F32
  file["b"] = from_vector(std::vector<float>{1, 2}, {2});
  file["extra"] = zeros({1});
  save_safetensors(path, file, {{"model", "test"}});
  StateDict dest = destination();
  dest["missing"] = zeros({2});
  CHECK_THROWS_WITH_AS(load_safetensors_into(path, dest),
                       doctest::Contains(std::string(path + ": 3 problem(s): 'b': shape [2] in the file, [3] expected; missing key "
                                                "'missing'; unexpected key 'extra' (F32 [1], 4 bytes)").c_str()),
                       ValueError);
  file["b"] = from_vector(std::vector<float>{1, std::numeric_limits<float>::quiet_NaN(), 3}, {3});
  file.erase("extra");
  save_safetensors(path, file, {{"model", "test"}});
  dest.erase("missing");
  CHECK_THROWS_WITH_AS(load_safetensors_into(path, dest),
                       doctest::Contains(std::string(path + ": 1 problem(s): 'b': 1 non-finite value (the first, NaN, at flat index 1)").c_str()),
                       ValueError);
  CHECK(dest.at("w").to_vector<float>() == std::vector<float>(12, 0.f));  // w was fine but is not loaded either
  auto meta = load_safetensors_into(path, dest, true, /*allow_non_finite=*/true);
  CHECK(meta.at("model") == "test");
  CHECK(dest.at("w").dtype() == DType::F32);
  CHECK(dest.at("w").to_vector<float>()[11] == 12.f);
  CHECK(std::isnan(dest.at("b").to_vector<float>()[1]));
  // Into a Module: its own tensors (the handles it holds) receive the values.
  Generator g(0);
  Linear lin(3, 2, g);
  StateDict lsd;
  lsd["weight"] = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  lsd["bias"] = from_vector(std::vector<float>{7, 8}, {2});
  save_safetensors(dir.file("lin.safetensors"), lsd);
  load_safetensors_into(lin, dir.file("lin.safetensors"));
  CHECK(lin.weight.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(lin.bias.to_vector<float>() == std::vector<float>{7, 8});
}

TEST_CASE("load_safetensors_into: a float tensor for an int64 destination must hold whole numbers int64 can take") {
  TempDir dir;
  const std::string path = dir.file("n.safetensors");
  StateDict dest;
  dest["num_batches_tracked"] = zeros({3}, DType::I64);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  StateDict file;
  file["num_batches_tracked"] = from_vector(std::vector<double>{4, 1e30, nan}, {3});
  save_safetensors(path, file);
  // int64_t(1e30) and int64_t(NaN) are undefined behaviour; the opt-out for non-finite floats does not apply.
  CHECK_THROWS_WITH_AS(load_safetensors_into(path, dest, true, /*allow_non_finite=*/true),
                       doctest::Contains(std::string(path + ": 1 problem(s): 'num_batches_tracked': 2 values that are not a whole "
                                                "number in int64's range (the first, 1e+30, at flat index 1) for its int64 destination").c_str()),
                       ValueError);
  CHECK(dest.at("num_batches_tracked").to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0});
  file["num_batches_tracked"] = from_vector(std::vector<float>{4, 0.5f, -3}, {3});
  save_safetensors(path, file);
  CHECK_THROWS_WITH_AS(load_safetensors_into(path, dest), doctest::Contains("(the first, 0.5, at flat index 1)"), ValueError);
  file["num_batches_tracked"] = from_vector(std::vector<float>{4, 1e6f, -3}, {3});
  save_safetensors(path, file);
  load_safetensors_into(path, dest);
  CHECK(dest.at("num_batches_tracked").dtype() == DType::I64);
  CHECK(dest.at("num_batches_tracked").to_vector<int64_t>() == std::vector<int64_t>{4, 1000000, -3});
}

TEST_CASE("load_safetensors: a data-size limit, checked from the header before anything is allocated") {
  TempDir dir;
  CHECK(kMaxSafetensorsDataBytes == uint64_t(4) << 30);
  // 2 MiB of tensor data against a 1 MiB limit; the same file loads under the default.
  const std::string small = write_with_extra(dir, "2mib.safetensors", "x", int64_t(1) << 19);
  CHECK_THROWS_WITH_AS(load_safetensors(small, uint64_t(1) << 20),
                       doctest::Contains(std::string(small + ": the tensors take 2097212 bytes, over the limit of 1048576 bytes").c_str()),
                       IOError);
  CHECK(load_safetensors(small).tensors.at("x").numel() == int64_t(1) << 19);
  // Just over the default 4 GiB (a sparse file): refused at once, nothing read.
  const std::string big = write_with_extra(dir, "4gib.safetensors", "x", int64_t(1) << 30);
  const int64_t rss0 = peak_rss_bytes();
  CHECK_THROWS_WITH_AS(load_safetensors(big), doctest::Contains(std::string(big + ": the tensors take 4294967356 bytes, over the limit").c_str()),
                       IOError);
  CHECK(peak_rss_bytes() - rss0 < int64_t(64) << 20);
}
