// The hostile-input suite: bad files and bad arguments, built here, fed to the `advgrad` command as an
// attacker or an unlucky user would. Every case must end with exactly one `error:` line on stderr, nothing
// on stdout, exit status 1 or 2, no signal, within a time limit and under an address-space cap (so a
// memory blow-up shows up as a failure, not as a slow machine). The cases are those of docs/RELIABILITY.md.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cli_runner.h"
#include "advgrad/data/mnist.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/serialize.h"

using namespace advgrad;
using namespace advgrad::testing;

namespace {

constexpr uint64_t kGiB = uint64_t(1) << 30;

#ifdef ADVGRAD_SANITIZED
constexpr double kSlow = 4;  // the sanitizer build runs several times slower
#else
constexpr double kSlow = 1;
#endif

// Default: 3 GiB of address space (the zoo's largest honest run needs well under 1 GiB) and 60 s.
Limits limits(uint64_t bytes = 3 * kGiB, double seconds = 60) {
  Limits l;
  l.address_space_bytes = bytes;
  l.seconds = seconds * kSlow;
  return l;
}

// The failure contract, plus the words the message must contain (the file, option or cause it names).
void check_error(const Run& r, const std::vector<std::string>& must_contain) {
  INFO("ended by: ", r.describe());
  INFO("stderr: ", r.err);
  INFO("stdout: ", r.out);
  REQUIRE(r.exited);
  CHECK((r.status == 1 || r.status == 2));
  CHECK(r.out.empty());
  const auto lines = lines_of(r.err);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("error: ", 0) == 0);
  for (const std::string& word : must_contain) {
    INFO("the message should contain: ", word);
    CHECK(lines[0].find(word) != std::string::npos);
  }
}

void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

std::string be32(uint32_t v) {
  return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

std::string png_chunk(const std::string& type, const std::string& payload) {
  const std::string body = type + payload;
  const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size())));
  return be32(uint32_t(payload.size())) + body + be32(crc);
}

// A grayscale 8-bit PNG whose header claims width x height; its pixel data are `rows` rows of zeros
// (rows = height gives a valid image, fewer a header with too little data behind it).
std::string gray_png(uint32_t width, uint32_t height, uint32_t rows) {
  std::string ihdr = be32(width) + be32(height) + std::string{8, 0, 0, 0, 0};  // depth 8, gray, no interlace
  const size_t raw_size = size_t(rows) * (size_t(width) + 1);  // each row: filter byte 0, then pixels
  std::vector<Bytef> raw(raw_size, 0);
  uLongf packed_size = compressBound(uLong(raw_size));
  std::vector<Bytef> packed(packed_size);
  REQUIRE(compress2(packed.data(), &packed_size, raw.data(), uLong(raw_size), 9) == Z_OK);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
         png_chunk("IDAT", std::string(reinterpret_cast<char*>(packed.data()), packed_size)) + png_chunk("IEND", "");
}

// A zlib stream of `total` zero bytes, deflated in pieces (nothing of that size is held).
std::string zlib_zeros(uint64_t total) {
  const size_t piece = size_t(16) << 20;
  std::vector<Bytef> zeros(piece, 0);
  z_stream zs{};
  REQUIRE(deflateInit(&zs, 9) == Z_OK);
  std::string out;
  std::vector<Bytef> buf(size_t(1) << 20);
  for (uint64_t done = 0; done < total;) {
    const size_t n = size_t(std::min<uint64_t>(piece, total - done));
    done += n;
    zs.next_in = zeros.data();
    zs.avail_in = uInt(n);
    const int flush = done == total ? Z_FINISH : Z_NO_FLUSH;
    int ret;
    do {
      zs.next_out = buf.data();
      zs.avail_out = uInt(buf.size());
      ret = deflate(&zs, flush);
      out.append(reinterpret_cast<char*>(buf.data()), buf.size() - zs.avail_out);
    } while (zs.avail_out == 0 || (flush == Z_FINISH && ret != Z_STREAM_END));
  }
  deflateEnd(&zs);
  return out;
}

// gzip members of `member_bytes` zeros, repeated: inflates to members * member_bytes.
std::string gzip_bomb(size_t member_bytes, int members) {
  std::vector<char> zeros(member_bytes, 0);
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string member(deflateBound(&zs, uLong(member_bytes)), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(zeros.data());
  zs.avail_in = uInt(member_bytes);
  zs.next_out = reinterpret_cast<Bytef*>(member.data());
  zs.avail_out = uInt(member.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  member.resize(zs.total_out);
  deflateEnd(&zs);
  std::string out;
  for (int i = 0; i < members; ++i) out += member;
  return out;
}

// Weights of small_cnn as advgrad saves them.
StateDict small_cnn_weights() {
  Generator gen(3);
  return make_model("small_cnn", gen)->state_dict();
}

// A tiny finished epoch of natural training: a real checkpoint directory to corrupt. Made once.
const std::string& checkpoint_run() {
  static TempDir dir("advgrad_hostile_ckpt");
  static const std::string run = [] {
    const std::string out = dir / "run";
    Run r = run_cli({"train", "--model", "small_cnn", "--method", "natural", "--epochs", "3", "--stop-after", "1",
                     "--limit", "256", "--val-size", "64", "--test-limit", "64", "--batch", "64", "--quiet",
                     "--out", out},
                    limits(3 * kGiB, 300));
    INFO("stderr: ", r.err);
    REQUIRE(r.exited);
    REQUIRE(r.status == 0);
    return out;
  }();
  return run;
}

// A copy of the checkpoint run to damage.
std::string copy_of_run(const TempDir& tmp) {
  const std::string copy = tmp / "run";
  fs::copy(checkpoint_run(), copy, fs::copy_options::recursive);
  return copy;
}

bool have_fashion_mnist() {
  if (fs::exists(default_fashion_mnist_dir())) return true;
  MESSAGE("skipped: ", default_fashion_mnist_dir(), " is missing (Debian package dataset-fashion-mnist)");
  return false;
}

}  // namespace

TEST_CASE("image folders: only PNG, JPEG and BMP are decoded, whatever the name says") {
  TempDir tmp("advgrad_hostile_img");
  // Each of these, named .png, reached one of stb_image's other decoders.
  const std::vector<std::pair<std::string, std::string>> disguised = {
      {"pgm16", std::string("P5\n4096 4096\n65535\n") + std::string(64, '\x7f')},  // SIGSEGV in stb 2.27
      {"pgm16-small", std::string("P5\n3 3\n65535\n") + std::string(12, '\x01')},    // 26 bytes: heap over-read
      {"ppm", std::string("P6\n2 2\n255\n") + std::string(12, '\x10')},
      {"gif", std::string("GIF89a\x02\x00\x02\x00\x00\x00\x00", 13) + std::string(20, '\0')},
      {"psd", std::string("8BPS\x00\x01", 6) + std::string(40, '\0')},
      {"hdr", std::string("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 2\n") + std::string(16, '\x01')},
      {"pic", std::string("\x53\x80\xF6\x34", 4) + std::string(100, 'P')},
      {"tga", std::string("\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x02\x00\x18\x00", 18) +
                  std::string(12, '\x20')},
  };
  for (const auto& kind : disguised) {
    const std::string& name = kind.first;
    const std::string dir = tmp / name;
    write_bytes(dir + "/shirts/1.png", kind.second);
    INFO("disguised as .png: ", name);
    check_error(run_cli({"data", dir}, limits()), {"1.png"});
  }
}

TEST_CASE("image folders: absurd sizes are refused from the header, before decoding") {
  TempDir tmp("advgrad_hostile_size");
  // One header claiming 100000 x 100000 pixels.
  write_bytes(tmp / "huge/a/1.png", gray_png(100000, 100000, 1));
  check_error(run_cli({"data", tmp / "huge"}, limits()), {"1.png", "100000"});

  // A 1x1 PNG whose pixel data inflate to 2 GiB (2 MB on disk): stb grew its buffer to fit, 2-3 GiB.
  {
    std::string ihdr = be32(1) + be32(1) + std::string{8, 0, 0, 0, 0};
    write_bytes(tmp / "bomb/a/1.png", std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
                                          png_chunk("IDAT", zlib_zeros(2 * kGiB)) + png_chunk("IEND", ""));
    // Refused for what it is (more data than the header allows), not by running out of memory at the cap.
    check_error(run_cli({"data", tmp / "bomb"}, limits(kGiB + kGiB / 2)), {"1.png", "header"});
  }

  // 24 images of 16384 x 4096 zeros: ~1.5 MB on disk, 1.5 GiB decoded. Refused as a whole, from the
  // headers, under a 1.5 GiB cap (decoding them all took 4.9 GiB and then ran out of memory).
  const std::string big = gray_png(16384, 4096, 4096);
  for (int i = 0; i < 24; ++i) write_bytes(tmp / ("many/a/" + std::to_string(100 + i) + ".png"), big);
  Run r = run_cli({"data", tmp / "many"}, limits(kGiB + kGiB / 2));
  check_error(r, {"many"});
}

TEST_CASE("gzip: a bomb is refused at the cap without overshooting it") {
  TempDir tmp("advgrad_hostile_gz");
  // 32 members of 64 MiB zeros: 2 GiB when inflated, 2 MB on disk; the limit for one file is 1 GiB.
  write_bytes(tmp / "bomb/train-images-idx3-ubyte.gz", gzip_bomb(size_t(64) << 20, 32));
  write_bytes(tmp / "bomb/train-labels-idx1-ubyte.gz", gzip_bomb(1024, 1));
  // 1 GiB of output plus a program's overhead fits in 1.6 GiB; the old growth peaked at 2 GiB.
  Run r = run_cli({"data", tmp / "bomb", "--split", "train"}, limits(kGiB + kGiB * 6 / 10, 120));
  check_error(r, {"train-images-idx3-ubyte.gz", "limit"});
}

TEST_CASE("dataset files: loops, directories and truncation name the file") {
  TempDir tmp("advgrad_hostile_idx");
  const std::string loop = tmp / "loop";
  fs::create_directories(loop);
  fs::create_symlink("train-images-idx3-ubyte", loop + "/train-images-idx3-ubyte");
  check_error(run_cli({"data", loop, "--split", "train"}, limits()), {"train-images-idx3-ubyte"});

  // An IDX image file whose header claims 60000 images of 28x28 but holds 16 bytes of them.
  const std::string idx = tmp / "short";
  write_bytes(idx + "/train-images-idx3-ubyte", std::string("\0\0\x08\x03", 4) + be32(60000) + be32(28) + be32(28) +
                                                    std::string(16, '\0'));
  write_bytes(idx + "/train-labels-idx1-ubyte", std::string("\0\0\x08\x01", 4) + be32(60000) + std::string(8, '\0'));
  check_error(run_cli({"data", idx, "--split", "train"}, limits()), {"train-images-idx3-ubyte"});

  // A regular file where a directory is expected, and a directory where a file is expected.
  write_bytes(tmp / "file", "x");
  check_error(run_cli({"data", tmp / "file"}, limits()), {"file"});
  const std::string dir_as_file = tmp / "dirfile";
  fs::create_directories(dir_as_file + "/train-images-idx3-ubyte");
  write_bytes(dir_as_file + "/train-labels-idx1-ubyte", std::string("\0\0\x08\x01", 4) + be32(1) + std::string(1, '\0'));
  check_error(run_cli({"data", dir_as_file, "--split", "train"}, limits()), {"train-images-idx3-ubyte"});
}

TEST_CASE("--threads and OMP_NUM_THREADS are bounded") {
  TempDir tmp("advgrad_hostile_threads");
  for (const char* n : {"100000", "40000", "257", "-1"}) {
    INFO("--threads ", n);
    for (const std::vector<std::string>& cmd :
         {std::vector<std::string>{"train", "--model", "small_cnn", "--out", tmp / "run"},
          std::vector<std::string>{"eval", "--model", "small_cnn", "--weights", tmp / "w", "--attack", "pgd", "--eps", "0.1"}}) {
      std::vector<std::string> args = cmd;
      args.insert(args.end(), {"--threads", n});
      Run r = run_cli(args, limits());
      check_error(r, {"--threads"});
      CHECK(r.status == 2);
      CHECK(r.err.find("not expected") == std::string::npos);  // refused as a value, not as an unknown option
    }
  }
  Limits l = limits();
  l.env = {{"OMP_NUM_THREADS", "100000"}};
  check_error(run_cli({"data", tmp / "none"}, l), {"OMP_NUM_THREADS"});
}

TEST_CASE("numeric options: every value is checked, with the option named") {
  TempDir tmp("advgrad_hostile_opts");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--batch", "9223372036854775807"}, {"--batch", "0"},     {"--clip-norm", "nan"}, {"--clip-norm", "-1"},
      {"--seed", "-1"},                   {"--beta", "nan"},    {"--beta", "-2"},       {"--lr", "inf"},
      {"--eps", "nan"},                   {"--epochs", "0"},    {"--epochs", "1e99"},   {"--adv-fraction", "1.5"},
      {"--adv-fraction", "nan"},          {"--limit", "-5"},    {"--steps", "0"},       {"--val-size", "-1"},
  };
  for (const auto& opt : bad) {
    INFO(opt.first, " ", opt.second);
    Run r = run_cli({"train", "--model", "small_cnn", "--out", tmp / "run", opt.first, opt.second}, limits());
    check_error(r, {opt.first});
    CHECK(r.status == 2);
  }
  for (const char* eps : {"nan", "-0.1", "inf"}) {
    INFO("eval --eps ", eps);
    Run r = run_cli({"eval", "--model", "small_cnn", "--weights", tmp / "w.safetensors", "--attack", "pgd", "--eps", eps},
                    limits());
    check_error(r, {"--eps"});
  }
}

TEST_CASE("weights: non-finite values, foreign files and huge claims") {
  TempDir tmp("advgrad_hostile_weights");
  // A NaN and an Inf in a conv weight: evaluated, this gave 8% accuracy without a word.
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    StateDict w = small_cnn_weights();
    Tensor conv = w.at("0.weight").clone();
    conv.set({0, 0, 1, 1}, bad);
    w["0.weight"] = conv;
    save_safetensors(tmp / "nonfinite.safetensors", w);
    Run r = run_cli({"eval", "--model", "small_cnn", "--weights", tmp / "nonfinite.safetensors", "--attack", "fgsm",
                     "--eps", "0.1", "--limit", "10"},
                    limits());
    check_error(r, {"0.weight"});
  }
  // For experiments on broken weights, the refusal can be lifted.
  {
    Run r = run_cli({"eval", "--model", "small_cnn", "--weights", tmp / "nonfinite.safetensors", "--attack", "fgsm",
                     "--eps", "0.1", "--limit", "10", "--allow-non-finite"},
                    limits());
    INFO("stderr: ", r.err);
    CHECK(r.exited);
    CHECK(r.status == 0);
  }

  // A valid header that names one extra tensor of 2 GiB (a sparse file: nothing is written for it). It
  // used to be read whole and copied (4.1 GiB, ~40 s) before the unexpected key was refused.
  {
    StateDict w = small_cnn_weights();
    save_safetensors(tmp / "base.safetensors", w);
    SafetensorsFile base = load_safetensors(tmp / "base.safetensors");
    std::string bytes = slurp(tmp / "base.safetensors");
    uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data(), 8);
    std::string header = bytes.substr(8, header_len);
    const std::string data = bytes.substr(8 + header_len);
    // Insert the extra entry right after the opening brace; its data follow all the others'.
    const std::string extra = "\"zz_extra_tensor\":{\"dtype\":\"F32\",\"shape\":[536870912],\"data_offsets\":[" +
                              std::to_string(data.size()) + "," + std::to_string(data.size() + 2 * kGiB) + "]},";
    header.insert(1, extra);
    while ((8 + header.size()) % 8 != 0) header += ' ';
    uint64_t n = header.size();
    std::string out(reinterpret_cast<const char*>(&n), 8);
    out += header + data;
    const std::string path = tmp / "extra.safetensors";
    write_bytes(path, out);
    REQUIRE(::truncate(path.c_str(), off_t(out.size() + 2 * kGiB)) == 0);
    Run r = run_cli({"eval", "--model", "small_cnn", "--weights", path, "--attack", "fgsm", "--eps", "0.1", "--limit",
                     "10"},
                    limits(kGiB + kGiB / 2, 20));
    // The guard is the 1.5 GiB address-space limit (the old read-whole path needs 4.1 GiB and dies of it
    // without naming the key), not the clock: tests make no timing assertions.
    check_error(r, {"zz_extra_tensor"});
  }

  // Not safetensors at all: a PyTorch .pt (zip) file, an empty file, a directory, a FIFO.
  write_bytes(tmp / "model.pt", std::string("PK\x03\x04", 4) + std::string(600, 'x'));
  write_bytes(tmp / "empty.safetensors", "");
  fs::create_directories(tmp / "dir.safetensors");
  REQUIRE(::mkfifo((tmp / "fifo.safetensors").c_str(), 0644) == 0);
  for (const std::string name : {"model.pt", "empty.safetensors", "dir.safetensors", "fifo.safetensors"}) {
    INFO("weights: ", name);
    check_error(run_cli({"eval", "--model", "small_cnn", "--weights", tmp / name, "--attack", "fgsm", "--eps", "0.1",
                         "--limit", "10"},
                        limits()),
                {name});
  }
}

TEST_CASE("checkpoints: damaged files are named, counts are range-checked, non-finite state refused") {
  if (!have_fashion_mnist()) return;
  TempDir tmp("advgrad_hostile_resume");
  auto resume = [](const std::string& dir) { return run_cli({"train", "--resume", dir, "--quiet"}, limits()); };

  {  // epochs_done = 2^32 + 1 narrowed to 1 before the range check, and resumed at epoch 1.
    TempDir t("advgrad_hostile_resume_n");
    const std::string run = copy_of_run(t);
    std::string j = slurp(run + "/checkpoint/trainer.json");
    const size_t at = j.find("\"epochs_done\": 1");
    REQUIRE(at != std::string::npos);
    j.replace(at, std::strlen("\"epochs_done\": 1"), "\"epochs_done\": 4294967297");
    write_bytes(run + "/checkpoint/trainer.json", j);
    check_error(resume(run), {"trainer.json", "epochs_done"});
  }
  {  // trainer.json that is not JSON.
    TempDir t("advgrad_hostile_resume_j");
    const std::string run = copy_of_run(t);
    write_bytes(run + "/checkpoint/trainer.json", "{\"format\": \"advgrad-checkpoint-1\", \"epochs_done\": ");
    check_error(resume(run), {"trainer.json"});
  }
  {  // the model and the optimizer files, truncated: each error names its file.
    for (const char* prefix : {"model-e1", "optimizer-e1"}) {
      TempDir t("advgrad_hostile_resume_f");
      const std::string run = copy_of_run(t);
      const std::string file = run + "/checkpoint/" + prefix + ".safetensors";
      REQUIRE(fs::exists(file));
      fs::resize_file(file, fs::file_size(file) / 2);
      INFO("truncated: ", prefix);
      check_error(resume(run), {prefix});
    }
  }
  {  // a NaN in the optimizer's momentum buffer: it used to train to an all-NaN conv weight, silently.
    TempDir t("advgrad_hostile_resume_nan");
    const std::string run = copy_of_run(t);
    const std::string file = run + "/checkpoint/optimizer-e1.safetensors";
    SafetensorsFile opt = load_safetensors(file);
    bool planted = false;
    for (auto& kv : opt.tensors) {
      if (kv.second.dtype() != DType::F32 || kv.second.numel() == 0) continue;
      Tensor t2 = kv.second.clone();
      std::vector<int64_t> first(size_t(t2.dim()), 0);
      t2.set(first, std::nan(""));
      kv.second = t2;
      planted = true;
      break;
    }
    REQUIRE(planted);
    save_safetensors(file, opt.tensors, opt.metadata);
    check_error(resume(run), {"optimizer-e1"});
  }
  {  // killed before the first epoch finished: config.json only. Say so instead of "no such file".
    TempDir t("advgrad_hostile_resume_early");
    const std::string run = copy_of_run(t);
    for (const auto& e : fs::directory_iterator(run))
      if (e.path().filename() != "config.json") fs::remove_all(e.path());
    check_error(resume(run), {"no epoch"});
  }
}
