// The `advgrad` command, run as a subprocess (its path comes from CMake as ADVGRAD_CLI): exit statuses,
// the one-line `error: ...` contract, `data` on Fashion-MNIST, `eval` JSON and `attack` PNG output.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <stb/stb_image.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "advgrad/data/mnist.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/serialize.h"

using namespace advgrad;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() / ("advgrad_test_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

struct Run {
  int status = -1;  // exit status
  std::string out, err;
};

// Runs `ENV advgrad ARGS` through the shell (both are shell text; ENV sets environment variables for the
// command), capturing stdout and stderr.
Run run_cli_env(const std::string& env, const std::string& args) {
  TempDir tmp;
  const std::string cmd = env + " '" + ADVGRAD_CLI + "' " + args + " >'" + (tmp / "out") + "' 2>'" + (tmp / "err") + "'";
  const int raw = std::system(cmd.c_str());
  Run r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_text(tmp / "out");
  r.err = read_text(tmp / "err");
  return r;
}

// Runs `advgrad ARGS` through the shell (ARGS is shell text), capturing stdout and stderr.
Run run_cli(const std::string& args) { return run_cli_env("", args); }

// The failure contract: a non-zero status, nothing on stdout, exactly one stderr line "error: ...".
void check_one_error_line(const Run& r, const std::string& must_contain) {
  INFO("stderr: ", r.err);
  CHECK(r.status != 0);
  CHECK(r.out.empty());
  const auto lines = lines_of(r.err);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("error: ", 0) == 0);
  CHECK(lines[0].find(must_contain) != std::string::npos);
}

bool have_fashion_mnist() {
  if (fs::exists(default_fashion_mnist_dir())) return true;
  MESSAGE("skipped: ", default_fashion_mnist_dir(), " is missing (Debian package dataset-fashion-mnist)");
  return false;
}

// Freshly initialised weights of a zoo model, saved as advgrad (and PyTorch) save them.
std::string save_weights(const TempDir& dir, const std::string& model, const std::string& file) {
  Generator gen(7);
  save_safetensors(dir / file, make_model(model, gen)->state_dict());
  return dir / file;
}

}  // namespace

TEST_CASE("--help and --version exit 0 and print to stdout") {
  Run help = run_cli("--help");
  CHECK(help.status == 0);
  CHECK(help.err.empty());
  for (const char* cmd : {"data", "eval", "attack"}) CHECK(help.out.find(cmd) != std::string::npos);

  Run version = run_cli("--version");
  CHECK(version.status == 0);
  CHECK(version.out == std::string("advgrad ") + ADVGRAD_VERSION + "\n");

  for (const char* cmd : {"data", "eval", "attack"}) {
    Run sub = run_cli(std::string(cmd) + " --help");
    CHECK(sub.status == 0);
    CHECK(sub.out.find(std::string("advgrad ") + cmd) != std::string::npos);
  }
}

TEST_CASE("eval and attack --help list the attack and model tables") {
  for (const char* cmd : {"eval", "attack"}) {
    INFO(cmd);
    Run help = run_cli(std::string(cmd) + " --help");
    REQUIRE(help.status == 0);
    const auto lines = lines_of(help.out);
    auto has_line = [&](const std::string& start, const std::string& part) {
      return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
        return l.rfind(start, 0) == 0 && l.find(part) != std::string::npos;
      });
    };
    CHECK(has_line("Attacks:", ""));
    CHECK(has_line("  pgd       Linf", "Madry et al. 2018"));
    CHECK(has_line("  pgd-l2    L2", "2.5 eps / steps"));
    CHECK(has_line("  fgsm-rs   Linf", "1.25 eps"));
    CHECK(has_line("  square    Linf", "Andriushchenko"));
    CHECK(has_line("  autoattack Linf", "alias ensemble") == (std::string(cmd) == "eval"));
    CHECK(has_line("  autoattack-fast", "3 target classes") == (std::string(cmd) == "eval"));
    CHECK(has_line("Models:", ""));
    CHECK(has_line("  small_cnn     [1,28,28] -> 10", "Linear(1568->100)"));
    CHECK(has_line("  cifar_resnet  [3,32,32] -> 10", "BasicBlocks"));
  }
  check_one_error_line(run_cli("attack --model vgg --weights w.safetensors --attack pgd --eps 0.1 --out x.png"),
                       "unknown model 'vgg' (known: small_cnn, madry_cnn, lstm, cifar_resnet)");
}

TEST_CASE("command-line mistakes are one error line and status 2") {
  Run none = run_cli("");
  check_one_error_line(none, "subcommand");
  CHECK(none.status == 2);
  check_one_error_line(run_cli("frobnicate"), "unknown command 'frobnicate'");
  check_one_error_line(run_cli("data --bogus"), "--bogus");
  check_one_error_line(run_cli("eval --model small_cnn"), "required");
  Run eps = run_cli("eval --model small_cnn --weights w.safetensors --attack pgd --eps -1");
  check_one_error_line(eps, "--eps");
  CHECK(eps.status == 2);
}

TEST_CASE("attack names and eps: case-insensitive names, presets, fractions, large eps refused, status 2") {
  // Every mistake below is found before any file is read, so the weights need not exist.
  const std::string eval = "eval --model small_cnn --weights no.safetensors ";
  Run unknown = run_cli(eval + "--attack nope --eps 0.1");
  check_one_error_line(unknown, "unknown attack 'nope'");
  CHECK(unknown.status == 2);
  CHECK(unknown.err.find("autoattack-fast") != std::string::npos);  // the presets are listed as known
  Run listed = run_cli(eval + "--attack pgd,PGD --eps 0.1");
  check_one_error_line(listed, "'pgd' is listed twice");  // PGD is pgd
  CHECK(listed.status == 2);
  Run mixed = run_cli(eval + "--attack pgd,AutoAttack --eps 0.1");
  check_one_error_line(mixed, "cannot be combined");
  CHECK(mixed.status == 2);
  Run tuned = run_cli(eval + "--attack autoattack-fast --steps 5 --eps 0.1");
  check_one_error_line(tuned, "--steps");
  CHECK(tuned.status == 2);
  Run one = run_cli("attack --model small_cnn --weights no.safetensors --attack autoattack --eps 0.1 --out x.png");
  check_one_error_line(one, "not a preset");
  CHECK(one.status == 2);

  // eps 8 is 8/255 given in the wrong units: refused with the hint, for single attacks and presets.
  Run large = run_cli(eval + "--attack pgd --eps 8");
  check_one_error_line(large, "eps is in [0,1] pixel units: did you mean 8/255?");
  CHECK(large.status == 2);
  Run large_preset = run_cli(eval + "--attack ensemble --eps 0.6");
  check_one_error_line(large_preset, "--allow-large-eps");
  CHECK(large_preset.status == 2);
  Run bad_fraction = run_cli(eval + "--attack pgd --eps 8/0");
  check_one_error_line(bad_fraction, "--eps");
  CHECK(bad_fraction.status == 2);
  check_one_error_line(run_cli(eval + "--attack pgd --eps 8/x"), "fraction");
  // With --allow-large-eps, or an L2 attack, a large eps passes the check and fails later, on the file.
  Run allowed = run_cli(eval + "--attack pgd --eps 0.6 --allow-large-eps");
  check_one_error_line(allowed, "no.safetensors");
  CHECK(allowed.status == 1);
  check_one_error_line(run_cli(eval + "--attack pgd-l2 --eps 2"), "no.safetensors");
  check_one_error_line(run_cli(eval + "--attack PGD --eps 8/255"), "no.safetensors");

  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string w = save_weights(dir, "small_cnn", "w.safetensors");
  // 8/255 is the same eps as its decimal, and PGD the same attack as pgd.
  const std::string tail = " --eps 8/255 --steps 3 --limit 20 --no-sanity-checks --json";
  Run fraction = run_cli("eval --model small_cnn --weights '" + w + "' --attack PGD" + tail);
  INFO("stderr: ", fraction.err);
  REQUIRE(fraction.status == 0);
  const json f = json::parse(fraction.out);
  CHECK(f["eps"].get<double>() == doctest::Approx(8.0 / 255.0).epsilon(1e-12));
  REQUIRE(f["attacks"].size() == 1);
  CHECK(f["attacks"][0]["name"] == "pgd");
  CHECK(f["attacks"][0]["max_perturbation"].get<double>() <= 8.0 / 255.0 + 1e-7);

  // Each attack's real budget: FGSM takes no steps, Square spends queries, PGD steps; all restarts.
  Run budgets = run_cli("eval --model small_cnn --weights '" + w +
                        "' --attack fgsm,pgd,square --eps 0.1 --steps 3 --queries 7 --restarts 2 --limit 10 --json");
  INFO("stderr: ", budgets.err);
  REQUIRE(budgets.status == 0);
  const json b = json::parse(budgets.out);
  REQUIRE(b["attacks"].size() == 3);
  const json &fgsm = b["attacks"][0], &pgd = b["attacks"][1], &square = b["attacks"][2];
  CHECK_FALSE(fgsm.contains("steps"));
  CHECK_FALSE(fgsm.contains("queries"));
  CHECK(pgd["steps"] == 3);
  CHECK_FALSE(pgd.contains("queries"));
  CHECK_FALSE(square.contains("steps"));
  CHECK(square["queries"] == 7);
  for (const auto& a : b["attacks"]) CHECK(a["restarts"] == 2);

  // The presets by their AutoAttack names: the standard set of four, the fast one APGD-CE and APGD-T.
  const std::string preset = " --eps 0.1 --effort 0.02 --limit 6 --json";
  Run standard = run_cli("eval --model small_cnn --weights '" + w + "' --attack AutoAttack" + preset);
  Run fast = run_cli("eval --model small_cnn --weights '" + w + "' --attack autoattack-fast" + preset);
  INFO("stderr: ", standard.err, fast.err);
  REQUIRE(standard.status == 0);
  REQUIRE(fast.status == 0);
  const json st = json::parse(standard.out), fa = json::parse(fast.out);
  CHECK(st["mode"] == "ensemble");
  REQUIRE(st["attacks"].size() == 4);
  REQUIRE(fa["attacks"].size() == 2);
  CHECK(st["attacks"][0]["name"] == "apgd-ce");
  CHECK(st["attacks"][2]["name"] == "fab-t");
  CHECK(fa["attacks"][1]["name"] == "apgd-t");
  CHECK(st["attacks"][0]["steps"] == 2);   // 100 x 0.02
  CHECK(fa["attacks"][0]["steps"] == 2);
  CHECK(st["attacks"][3]["queries"] == 100);  // 5000 x 0.02
}

TEST_CASE("eval: progress per attack on stderr (a line per 10% when piped), silent with --quiet") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string w = save_weights(dir, "small_cnn", "w.safetensors");
  // One sample per batch: every attacked sample is a progress report, at most one line per 10% of them.
  const std::string run = "eval --model small_cnn --weights '" + w + "' --attack fgsm,pgd --eps 0.1 --steps 2 --limit 60 --batch 1";
  Run r = run_cli(run);
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  int fgsm_lines = 0, pgd_lines = 0;
  for (const std::string& line : lines_of(r.err)) {
    fgsm_lines += line.find("fgsm (1/2)") != std::string::npos;
    pgd_lines += line.find("pgd (2/2)") != std::string::npos;
    CHECK(line.find("%  0/") == std::string::npos);  // no line before the first sample (it said "ETA 0 s")
  }
  // Clean-correct samples only are attacked, so a stage may count fewer than 20; at least its last line shows.
  CHECK(fgsm_lines >= 1);
  CHECK(pgd_lines >= 1);
  CHECK(fgsm_lines <= 10);
  CHECK(r.err.find("robust ") != std::string::npos);
  CHECK(r.err.find("samples/s") != std::string::npos);
  CHECK(r.out.find("robust accuracy") != std::string::npos);  // results on stdout, none of the progress
  CHECK(r.out.find("samples/s") == std::string::npos);

  Run quiet = run_cli(run + " --quiet");
  REQUIRE(quiet.status == 0);
  CHECK(quiet.err.empty());
  CHECK(quiet.out.find("robust accuracy") != std::string::npos);
}

TEST_CASE("eval: the gradient-masking checks are opt-in, and the table says so either way") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string w = save_weights(dir, "small_cnn", "w.safetensors");
  const std::string run = "eval --quiet --model small_cnn --weights '" + w + "' --attack fgsm --eps 0.1 --limit 12";
  Run off = run_cli(run);
  REQUIRE(off.status == 0);
  CHECK(off.out.find("gradient-masking checks: not run (--sanity-checks)") != std::string::npos);
  Run on = run_cli(run + " --sanity-checks");
  INFO("stdout: ", on.out);
  REQUIRE(on.status == 0);
  CHECK(on.out.find("5 runs on 12 samples") != std::string::npos);
  Run both = run_cli(run + " --sanity-checks --no-sanity-checks");  // contradictory: a bad command line
  CHECK(both.status == 2);
  CHECK(both.err.find("--no-sanity-checks") != std::string::npos);
  Run targeted = run_cli(run + " --sanity-checks --targeted --json");
  REQUIRE(targeted.status == 0);
  CHECK(json::parse(targeted.out)["sanity_checks"] == "not run (they compare untargeted L-inf attacks only)");
}

TEST_CASE("weights: a PyTorch pickle is named as such, with the converter to use; the converter works") {
  TempDir dir;
  // torch.save's two formats by their first bytes: a zip archive, and a protocol-2 pickle.
  const std::pair<std::string, std::string> files[] = {{"zip.pt", std::string("PK\x03\x04", 4) + std::string(600, 'x')},
                                                       {"legacy.pt", std::string("\x80\x02", 2) + std::string(600, 'x')}};
  for (const auto& [name, bytes] : files) {
    std::ofstream(dir / name, std::ios::binary) << bytes;
    Run r = run_cli("eval --model small_cnn --weights '" + (dir / name) + "' --attack pgd --eps 0.1 --limit 2");
    check_one_error_line(r, name + ": this is a PyTorch pickle (");
    CHECK(r.err.find("not safetensors: convert it with scripts/pt_to_safetensors.py") != std::string::npos);
  }
  // The converter, on a small_cnn saved by PyTorch from the repository's mirror of the zoo.
  if (std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
    MESSAGE("skipped the converter: /usr/bin/python3 has no torch (Debian package python3-torch)");
    return;
  }
  const std::string src = std::string(ADVGRAD_TEST_DATA) + "/../..";  // the repository (tests/data/../..)
  const std::string save = "/usr/bin/python3 -c \"import sys, torch; sys.path.insert(0, '" + src +
                           "/bench/peer'); import torch_zoo; torch.manual_seed(0); "
                           "torch.save(torch_zoo.make_model('small_cnn').state_dict(), '" + (dir / "m.pt") + "')\"";
  REQUIRE(std::system(save.c_str()) == 0);
  const std::string convert = "/usr/bin/python3 '" + src + "/scripts/pt_to_safetensors.py' '" + (dir / "m.pt") + "' '" +
                              (dir / "m.safetensors") + "' >/dev/null";
  REQUIRE(std::system(convert.c_str()) == 0);
  Run inspect = run_cli("inspect --json '" + (dir / "m.safetensors") + "'");
  INFO("stderr: ", inspect.err);
  REQUIRE(inspect.status == 0);
  if (!have_fashion_mnist()) return;
  Run r = run_cli("eval --quiet --model small_cnn --weights '" + (dir / "m.safetensors") + "' --attack fgsm --eps 0.1 --limit 4");
  INFO("stderr: ", r.err);
  CHECK(r.status == 0);  // loaded strictly: every name and shape of the zoo model
}

TEST_CASE("data: Fashion-MNIST as JSON and as a table") {
  if (!have_fashion_mnist()) return;
  Run r = run_cli("data '" + default_fashion_mnist_dir() + "' --json");
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  const json j = json::parse(r.out);
  CHECK(j["kind"] == "fashion-mnist");
  CHECK(j["sample_shape"] == json::array({1, 28, 28}));
  CHECK(j["num_classes"] == 10);
  REQUIRE(j["class_names"].size() == 10);
  CHECK(j["class_names"][0] == "T-shirt/top");
  CHECK(j["class_names"][9] == "Ankle boot");
  CHECK(j["splits"]["train"]["size"] == 60000);
  CHECK(j["splits"]["test"]["size"] == 10000);
  for (int c = 0; c < 10; ++c) {
    CHECK(j["splits"]["train"]["histogram"][c] == 6000);
    CHECK(j["splits"]["test"]["histogram"][c] == 1000);
  }

  Run test_only = run_cli("data --split test --json");  // the default directory
  REQUIRE(test_only.status == 0);
  const json t = json::parse(test_only.out);
  CHECK(t["splits"].size() == 1);
  CHECK(t["splits"]["test"]["size"] == 10000);

  Run table = run_cli("data");
  REQUIRE(table.status == 0);
  CHECK(table.out.find("fashion-mnist") != std::string::npos);
  CHECK(table.out.find("Ankle boot") != std::string::npos);
  CHECK(table.out.find("60000") != std::string::npos);
}

TEST_CASE("data: a missing or unrecognised directory is one error line") {
  TempDir dir;
  check_one_error_line(run_cli("data '" + (dir / "missing") + "'"), "missing");
  check_one_error_line(run_cli("data '" + dir.path.string() + "' --json"), "not a recognised dataset");
}

TEST_CASE("eval: bad models and weights files are one error line each") {
  TempDir dir;
  const std::string small = save_weights(dir, "small_cnn", "small.safetensors");
  const std::string madry = save_weights(dir, "madry_cnn", "madry.safetensors");
  const std::string lstm = save_weights(dir, "lstm", "lstm.safetensors");
  {
    // A header length that fits, then a JSON header cut off in the middle.
    const std::string header = "{\"0.weight\": {\"dtype\": \"F32\", \"shape\": [16";
    std::string bytes(8, '\0');
    bytes[0] = char(header.size());
    bytes += header + std::string(64, '\0');
    std::ofstream(dir / "corrupt.safetensors", std::ios::binary) << bytes;
  }
  const std::string tail = " --attack pgd --eps 0.1 --limit 5";
  check_one_error_line(run_cli("eval --model small_cnn --weights '" + (dir / "none.safetensors") + "'" + tail),
                       "none.safetensors");
  check_one_error_line(run_cli("eval --model no_such_net --weights '" + small + "'" + tail), "unknown model 'no_such_net'");
  check_one_error_line(run_cli("eval --model small_cnn --weights '" + (dir / "corrupt.safetensors") + "'" + tail),
                       "corrupt.safetensors");
  {
    Run r = run_cli("eval --model small_cnn --weights '" + madry + "'" + tail);
    check_one_error_line(r, "shape");  // same keys
    // The file is named once (the message used to repeat it after "load_safetensors_into: ").
    const size_t first = r.err.find(madry);
    CHECK(first != std::string::npos);
    CHECK(r.err.find(madry, first + 1) == std::string::npos);
  }
  check_one_error_line(run_cli("eval --model small_cnn --weights '" + lstm + "'" + tail), "not weights of model 'small_cnn'");
  check_one_error_line(run_cli("eval --model small_cnn --weights '" + small + "' --attack pgd,nope --eps 0.1"),
                       "unknown attack 'nope'");
  check_one_error_line(run_cli("eval --model small_cnn --weights '" + small + "' --attack ensemble --steps 5 --eps 0.1"),
                       "--steps");
}

TEST_CASE("eval: PGD on a small_cnn, as JSON") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string w = save_weights(dir, "small_cnn", "w.safetensors");
  Run r = run_cli("eval --model small_cnn --weights '" + w + "' --attack pgd --eps 0.1 --steps 5 --limit 50 --json");
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j["n"] == 50);
  const double clean = j["clean_acc"], robust = j["robust_acc"];
  CHECK(clean >= 0.0);
  CHECK(clean <= 1.0);
  CHECK(robust >= 0.0);
  CHECK(robust <= clean);
  CHECK(j["seconds"].get<double>() >= 0.0);
  CHECK(j["warnings"].is_array());
  REQUIRE(j["attacks"].size() == 1);
  CHECK(j["attacks"][0]["name"] == "pgd");
  CHECK(j["attacks"][0]["acc"].get<double>() == doctest::Approx(robust));
  CHECK(j["attacks"][0]["forward_evals"].get<int64_t>() > 0);
  CHECK(j["attacks"][0]["max_perturbation"].get<double>() <= 0.1 + 1e-9);

  // A list (independent mode, worst case), targeted at the next class.
  Run list = run_cli("eval --model small_cnn --weights '" + w +
                     "' --attack fgsm,pgd --eps 0.1 --steps 3 --limit 20 --targeted --threads 1 --json");
  INFO("stderr: ", list.err);
  REQUIRE(list.status == 0);
  const json l = json::parse(list.out);
  REQUIRE(l["attacks"].size() == 2);
  CHECK(l["targeted"] == true);
  for (const auto& a : l["attacks"]) {
    CHECK(a.contains("target_success"));
    CHECK(l["robust_acc"].get<double>() <= a["acc"].get<double>());
  }

  // The ensemble preset (AutoAttack's standard set) at a tiny budget: four attacks, cumulative accuracies.
  Run ens = run_cli("eval --model small_cnn --weights '" + w + "' --attack ensemble --effort 0.02 --eps 0.1 --limit 10 --json");
  INFO("stderr: ", ens.err);
  REQUIRE(ens.status == 0);
  const json e = json::parse(ens.out);
  CHECK(e["mode"] == "ensemble");
  REQUIRE(e["attacks"].size() == 4);
  CHECK(e["attacks"][2]["name"] == "fab-t");
  CHECK(e["attacks"][3]["acc"].get<double>() == doctest::Approx(e["robust_acc"].get<double>()));

  Run table = run_cli("eval --model small_cnn --weights '" + w + "' --attack fgsm --eps 0.05 --limit 10 --no-sanity-checks");
  REQUIRE(table.status == 0);
  CHECK(table.out.find("robust accuracy") != std::string::npos);
}

TEST_CASE("attack: writes a PNG of three rows and prints the predictions") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string w = save_weights(dir, "small_cnn", "w.safetensors");
  const std::string png = dir / "grid.png";
  Run r = run_cli("attack --model small_cnn --weights '" + w + "' --attack pgd --eps 0.1 --steps 3 --limit 4 --scale 2 --out '" +
                  png + "'");
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  int width = 0, height = 0, channels = 0;
  REQUIRE(stbi_info(png.c_str(), &width, &height, &channels) == 1);
  // 4 columns and 3 rows of 28x28 images at scale 2, labelled: RGB, wider (coloured frames) and taller
  // (three text lines below) than the bare 4 x 3 grid; the size printed is the file's.
  CHECK(width > 4 * 56 + 3 * 2);
  CHECK(height > 3 * 56 + 2 * 2);
  CHECK(channels == 3);
  CHECK(r.out.find(std::to_string(width) + "x" + std::to_string(height) + " px") != std::string::npos);
  CHECK(r.out.find("Ankle boot") != std::string::npos);  // test sample 0 is an ankle boot
  CHECK(r.out.find(png) != std::string::npos);

  check_one_error_line(run_cli("attack --model small_cnn --weights '" + w + "' --attack ensemble --eps 0.1 --out '" + png + "'"),
                       "ensemble");
  check_one_error_line(run_cli("attack --model small_cnn --weights '" + w + "' --attack pgd --eps 0.1 --out '" +
                               (dir / "no/such/dir/x.png") + "'"),
                       "x.png");
}

TEST_CASE("every numeric option is checked: a bad value is one error line naming it, status 2") {
  TempDir dir;
  // Nothing exists at these paths: a value that slipped past the checks fails later with status 1 and a
  // message about the path, which the checks below catch, instead of training or attacking for real.
  const std::string train = "train --data '" + (dir / "no_data") + "' ";
  const std::string eval = "eval --model small_cnn --weights '" + (dir / "no.safetensors") + "' --attack pgd --eps 0.1 ";
  const std::string attack = "attack --model small_cnn --weights '" + (dir / "no.safetensors") + "' --attack pgd --eps 0.1 --out '" +
                             (dir / "x.png") + "' ";
  const std::string demo = "demo --quiet --data '" + (dir / "no_data") + "' --out '" + (dir / "demo") + "' ";
  struct Case {
    std::string prefix, option, value;
  };
  const std::vector<Case> cases = {
      {train, "--batch", "9223372036854775807"},  // overflowed DataLoader::num_batches: 0 steps, loss 0
      {train, "--batch", "0"},
      {train, "--clip-norm", "nan"},  // used to switch clipping off silently
      {train, "--clip-norm", "-1"},
      {train, "--seed", "-1"},  // used to wrap to 2^64 - 1
      {train, "--seed", "18446744073709551616"},
      {train, "--beta", "nan"},  // used to fail only after loading the data
      {train, "--beta", "-1"},
      {train, "--lr", "nan"},
      {train, "--lr", "0"},
      {train, "--eps", "inf"},
      {train, "--eps", "1.5"},
      {train, "--steps", "0"},
      {train, "--steps", "1e3"},
      {train, "--epochs", "4294967297"},
      {train, "--limit", "-1"},
      {train, "--val-size", "0"},
      {train, "--test-limit", "0x10"},
      {train, "--adv-fraction", "1.5"},
      {train, "--adv-fraction", "nan"},
      {train, "--eps-ramp", "-1"},
      {train, "--stop-after", "-1"},
      {train, "--threads", "100000"},  // SIGSEGV inside libgomp
      {train, "--threads", "40000"},   // "libgomp: Thread creation failed", no error line
      {train, "--threads", "-1"},
      {train, "--method", "magic"},
      {train, "--schedule", "sometimes"},
      {train, "--optimizer", "lbfgs"},
      {train, "--model", "no_such_net"},
      {eval, "--eps", "nan"},
      {eval, "--eps", "-0.1"},
      {eval, "--steps", "0"},
      {eval, "--steps", "2.5"},
      {eval, "--step-size", "-1"},
      {eval, "--step-size", "inf"},
      {eval, "--restarts", "0"},
      {eval, "--queries", "0"},
      {eval, "--effort", "0"},
      {eval, "--effort", "nan"},
      {eval, "--seed", "-1"},
      {eval, "--threads", "100000"},
      {eval, "--batch", "0"},
      {eval, "--batch", "9223372036854775807"},
      {eval, "--limit", "-1"},
      {attack, "--scale", "0"},
      {attack, "--threads", "32768"},
      {attack, "--limit", "-3"},
      {attack, "--eps", "nan"},
      {demo, "--threads", "100000"},
      {demo, "--epochs", "0"},
      {demo, "--method", "magic"},
      // CLI11 reads a leading zero as octal: these passed the checks as 8, 64, 8, 8 and 0.
      {train, "--seed", "010"},
      {train, "--limit", "0100"},
      {eval, "--steps", "010"},
      {eval, "--restarts", "010"},
      {demo, "--epochs", "00"},
      // Hex floats (0x1p-4 = 0.0625) and blanks are not decimal numbers.
      {train, "--eps", "0x1p-4"},
      {train, "--lr", "0x1p-3"},
      {eval, "--eps", " 0.1"},
  };
  for (const Case& c : cases) {
    INFO(c.prefix, c.option, " ", c.value);
    Run r = run_cli(c.prefix + c.option + " '" + c.value + "'");
    check_one_error_line(r, c.option);
    CHECK(r.status == 2);
  }
  // In-range values pass the checks (and then fail on the missing files, status 1).
  const std::vector<Case> fine = {
      {train, "--seed", "9223372036854775807"}, {train, "--clip-norm", "0"}, {train, "--threads", "0"},
      {train, "--threads", "256"},              {train, "--batch", "1048576"}, {eval, "--eps", "0"},
      {eval, "--seed", "0"},                    {demo, "--threads", "1"},
      {eval, "--seed", "-0"},                   {eval, "--eps", "1e-1"},     {eval, "--eps", ".05"},
      {train, "--lr", "+0.5"},
  };
  for (const Case& c : fine) {
    INFO(c.prefix, c.option, " ", c.value);
    Run r = run_cli(c.prefix + c.option + " '" + c.value + "'");
    check_one_error_line(r, "no");
    CHECK(r.status == 1);
  }
}

TEST_CASE("OMP_NUM_THREADS is checked at start, before OpenMP can crash on it") {
  TempDir dir;
  const std::string w = save_weights(dir, "small_cnn", "w.safetensors");
  // Real weights and data, so that without the check the run reaches a parallel region.
  const std::string eval = "eval --model small_cnn --weights '" + w + "' --attack fgsm --eps 0.1 --limit 4 --no-sanity-checks";
  for (const char* value : {"100000", "40000", "4,100000"}) {
    const std::string v = value;
    INFO("OMP_NUM_THREADS=", v);
    Run r = run_cli_env("OMP_NUM_THREADS='" + v + "'", eval);
    check_one_error_line(r, "OMP_NUM_THREADS");
    CHECK(r.status == 2);
  }
  if (!have_fashion_mnist()) return;
  Run ok = run_cli_env("OMP_NUM_THREADS=2", eval + " --json");
  INFO("stderr: ", ok.err);
  CHECK(ok.status == 0);
}

TEST_CASE("train --resume: a run directory without a finished epoch is one clear error line") {
  TempDir dir;
  std::ofstream(dir / "config.json") << "{}";
  Run r = run_cli("train --resume '" + dir.path.string() + "'");
  check_one_error_line(r, "no epoch finished");
  CHECK(r.err.find("start the run again") != std::string::npos);
}

// ---------------------------------------------------------------- ONNX models (#14)
// The fixtures are PyTorch's exports (tests/golden/make_onnx_fixtures.py). The expected ops, names and
// shapes below are those of the PyTorch definitions in that script.

#ifdef ADVGRAD_HAVE_ONNX
namespace {

std::string onnx_fixture(const std::string& name) { return std::string(ADVGRAD_TEST_DATA) + "/golden/onnx/" + name; }

bool has_line_with(const std::string& text, const std::vector<std::string>& parts) {
  for (const std::string& line : lines_of(text)) {
    bool all = true;
    for (const std::string& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) return true;
  }
  return false;
}

// A CIFAR-10 directory of 3x32x32 samples (2 per batch), for a shape that no MNIST model takes.
std::string write_tiny_cifar(const TempDir& dir) {
  const fs::path root = fs::path(dir / "cifar");
  fs::create_directories(root);
  std::string records;
  for (int i = 0; i < 2; ++i) {
    records.push_back(char(i));
    records += std::string(3072, char(100 + i));
  }
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                           "data_batch_5.bin", "test_batch.bin"})
    std::ofstream(root / name, std::ios::binary) << records;
  return root.string();
}

}  // namespace

TEST_CASE("inspect: an ONNX file's input, output, ops and parameters, read without running it") {
  Run r = run_cli("inspect '" + onnx_fixture("small_cnn.onnx") + "'");
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  INFO("stdout: ", r.out);
  CHECK(has_line_with(r.out, {"opset 13"}));
  CHECK(has_line_with(r.out, {"input", "input", "float32", "[N,1,28,28]"}));
  CHECK(has_line_with(r.out, {"output", "logits", "float32", "[N,10]"}));
  // Conv ReLU MaxPool Conv ReLU MaxPool Flatten Linear ReLU Linear, as torch.onnx.export writes them.
  CHECK(has_line_with(r.out, {"10 nodes", "Conv 2", "Flatten 1", "Gemm 2", "MaxPool 2", "Relu 3"}));
  CHECK(has_line_with(r.out, {"parameters", "8"}));
  CHECK(has_line_with(r.out, {"0.weight", "float32", "[16,1,5,5]"}));
  CHECK(has_line_with(r.out, {"7.weight", "[100,1568]"}));
  CHECK(has_line_with(r.out, {"9.bias", "[10]"}));
  CHECK(has_line_with(r.out, {"supported", "yes"}));

  // BatchNormalization's running statistics are buffers, not parameters.
  Run bn = run_cli("inspect --json '" + onnx_fixture("residual_cnn.onnx") + "'");
  INFO("stderr: ", bn.err);
  REQUIRE(bn.status == 0);
  const json j = json::parse(bn.out);
  CHECK(j["supported"] == true);
  CHECK(j["op_counts"]["BatchNormalization"] == 4);
  CHECK(j["op_counts"]["GlobalAveragePool"] == 1);
  CHECK(j["inputs"][0]["dim_names"][0] == "N");
  int buffers = 0;
  for (const auto& t : j["initializers"])
    if (t["role"] == "buffer") {
      ++buffers;
      const std::string name = t["name"];
      CHECK(name.find("running_") != std::string::npos);
    }
  CHECK(buffers == 8);  // mean and var of 4 BatchNorms
}

TEST_CASE("inspect: an op advgrad does not run is listed as unsupported, naming the node") {
  Run r = run_cli("inspect '" + onnx_fixture("unsupported_erf.onnx") + "'");
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  INFO("stdout: ", r.out);
  CHECK(has_line_with(r.out, {"supported", "no", "1 node"}));
  CHECK(has_line_with(r.out, {"node '", "op Erf", "opset 13"}));
  CHECK(has_line_with(r.out, {"Erf 1"}));
  // Loading it for eval is one error line naming the node and op.
  check_one_error_line(run_cli("eval --model '" + onnx_fixture("unsupported_erf.onnx") + "' --attack pgd --eps 0.1 --limit 2"),
                       "op Erf");
}

TEST_CASE("inspect: a safetensors file's tensors, dtypes, shapes and metadata; other files are refused") {
  Run r = run_cli("inspect '" + onnx_fixture("residual_cnn.safetensors") + "'");
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  INFO("stdout: ", r.out);
  CHECK(has_line_with(r.out, {"safetensors"}));
  CHECK(has_line_with(r.out, {"grad.input", "float32", "[8,1,28,28]"}));
  CHECK(has_line_with(r.out, {"label", "int64", "[8]"}));
  CHECK(has_line_with(r.out, {"case", "residual_cnn"}));
  CHECK(has_line_with(r.out, {"input_shape", "N,1,28,28"}));

  TempDir dir;
  std::ofstream(dir / "notes.txt") << "hello";
  Run other = run_cli("inspect '" + (dir / "notes.txt") + "'");
  check_one_error_line(other, "neither a .onnx nor a .safetensors");
  CHECK(other.status == 2);
  check_one_error_line(run_cli("inspect '" + (dir / "missing.onnx") + "'"), "missing.onnx");
}

TEST_CASE("eval: an ONNX model exported by PyTorch, weights from the file, under PGD") {
  if (!have_fashion_mnist()) return;
  Run r = run_cli("eval --model '" + onnx_fixture("residual_cnn.onnx") +
                  "' --attack pgd --eps 0.1 --steps 3 --limit 20 --json");
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j["n"] == 20);
  CHECK(j["weights"] == "");
  CHECK(j["robust_acc"].get<double>() <= j["clean_acc"].get<double>());
  REQUIRE(j["attacks"].size() == 1);
  CHECK(j["attacks"][0]["name"] == "pgd");
  CHECK(j["attacks"][0]["forward_evals"].get<int64_t>() > 0);
  CHECK(j["attacks"][0]["max_perturbation"].get<double>() <= 0.1 + 1e-9);

  // A sequence model's [N,28,28] input takes the dataset's [1,28,28] images.
  Run seq = run_cli("eval --model '" + onnx_fixture("bilstm.onnx") + "' --attack fgsm --eps 0.1 --limit 8");
  INFO("stderr: ", seq.err);
  if (seq.err.find("(op LSTM, opset 17): unsupported op") != std::string::npos) {
    MESSAGE("skipped the [N,28,28] case: this build's loader has no LSTM yet (onnx/recurrent.h, slice H1)");
    return;
  }
  REQUIRE(seq.status == 0);
  CHECK(seq.out.find("robust accuracy") != std::string::npos);
  CHECK(seq.out.find("weights in the file") != std::string::npos);
}

TEST_CASE("eval and attack: --weights replaces an ONNX model's weights by name, strictly") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  // PyTorch's Sequential small_cnn has the zoo's state_dict names (0.*, 3.*, 7.*, 9.*).
  const std::string w = save_weights(dir, "small_cnn", "w.safetensors");
  const std::string onnx = onnx_fixture("small_cnn.onnx");
  const std::string tail = " --attack pgd --eps 0.1 --steps 3 --no-random-start --limit 6 --scale 1 --out '" + (dir / "g.png") + "'";
  Run zoo = run_cli("attack --model small_cnn --weights '" + w + "'" + tail);
  Run replaced = run_cli("attack --model '" + onnx + "' --weights '" + w + "'" + tail);
  Run own = run_cli("attack --model '" + onnx + "'" + tail);
  INFO("stderr: ", zoo.err, replaced.err, own.err);
  REQUIRE(zoo.status == 0);
  REQUIRE(replaced.status == 0);
  REQUIRE(own.status == 0);
  // The prediction table (label, clean, adversarial, max |d| per sample) is the zoo model's.
  auto table = [](const std::string& out) {
    const auto lines = lines_of(out);
    return std::vector<std::string>(lines.begin() + 2, lines.begin() + 9);  // header and 6 samples
  };
  CHECK(table(replaced.out) == table(zoo.out));
  CHECK(table(own.out) != table(zoo.out));  // the file's own weights are others

  // Strict: the weights of another model are refused, naming the file.
  const std::string lstm = save_weights(dir, "lstm", "lstm.safetensors");
  check_one_error_line(run_cli("eval --model '" + onnx + "' --weights '" + lstm + "' --attack pgd --eps 0.1 --limit 2"),
                       "lstm.safetensors: not weights of model");
  // A zoo model still needs its weights.
  Run none = run_cli("eval --model small_cnn --attack pgd --eps 0.1 --limit 2");
  check_one_error_line(none, "--weights");
  CHECK(none.status == 2);
}

TEST_CASE("eval: a dataset whose samples the ONNX model does not take is one error line saying what differs") {
  TempDir dir;
  const std::string cifar = write_tiny_cifar(dir);
  Run r = run_cli("eval --model '" + onnx_fixture("small_cnn.onnx") + "' --data '" + cifar + "' --attack pgd --eps 0.1");
  check_one_error_line(r, "has [3,32,32] samples, but model '");
  CHECK(r.status == 2);
  CHECK(r.err.find("input 'input' [N,1,28,28]") != std::string::npos);
  CHECK(r.err.find("dim 0 is 3 here, 1 in the model") != std::string::npos);
  CHECK(r.err.find("dim 1 is 32 here, 28 in the model") != std::string::npos);
}

TEST_CASE("train --method natural: best.safetensors is the best clean validation epoch, and the table says so") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string run = dir / "run";
  // At eps 0.5 PGD fools every validation sample in every epoch, so choosing by PGD accuracy would keep
  // epoch 1 while the clean accuracy still rises.
  Run t = run_cli("train --model small_cnn --method natural --eps 0.5 --epochs 3 --batch 32 --limit 256 --val-size 64 "
                  "--test-limit 16 --lr 0.05 --threads 1 --out '" + run + "'");
  INFO("stdout: ", t.out, "\nstderr: ", t.err);
  REQUIRE(t.status == 0);
  CHECK(t.out.find("best (val clean)") != std::string::npos);
  CHECK(t.out.find("on the first 16 test samples") != std::string::npos);
  // The epoch marked best is the first with the highest clean validation accuracy (not the PGD one).
  double best_clean = -1;
  int expected = 0, marked = 0;
  for (const std::string& line : lines_of(read_text(run + "/metrics.jsonl"))) {
    const json m = json::parse(line);
    if (m["val_clean_acc"].get<double>() > best_clean) best_clean = m["val_clean_acc"], expected = m["epoch"];
    if (!m.value("best_from", std::string()).empty()) marked = m["epoch"];
  }
  CHECK(marked == expected);
  CHECK(expected > 1);  // the clean accuracy rose after epoch 1, so the two rules differ here
}

TEST_CASE("train: fine-tunes an ONNX model from the file's weights (TRADES), writing state_dict names") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string onnx = onnx_fixture("small_cnn.onnx");
  const std::string run = dir / "run";
  // A learning rate so small that the weights stay the file's to float precision: the run must start there.
  Run t = run_cli("train --model '" + onnx + "' --method trades --eps 0.1 --steps 1 --epochs 1 --batch 32 --limit 64 "
                  "--val-size 32 --test-limit 32 --lr 1e-30 --schedule constant --optimizer adam --threads 1 --out '" + run + "'");
  INFO("stderr: ", t.err);
  REQUIRE(t.status == 0);
  CHECK(json::parse(read_text(run + "/config.json"))["model"] == onnx);
  // The run's weights carry the file's (state_dict) names, so they load back strictly into the ONNX model,
  // which then predicts as with the file's own weights.
  const std::string tail = " --attack fgsm --eps 0.05 --limit 6 --scale 1 --out '" + (dir / "g.png") + "'";
  Run trained = run_cli("attack --model '" + onnx + "' --weights '" + run + "/model.safetensors'" + tail);
  Run file = run_cli("attack --model '" + onnx + "'" + tail);
  INFO("stderr: ", trained.err, file.err);
  REQUIRE(trained.status == 0);
  REQUIRE(file.status == 0);
  const auto trained_lines = lines_of(trained.out), file_lines = lines_of(file.out);
  REQUIRE(trained_lines.size() > 8);
  REQUIRE(file_lines.size() > 8);
  for (size_t i = 2; i < 9; ++i) CHECK(trained_lines[i] == file_lines[i]);

  // A wrong-shape dataset is refused before training, saying what differs.
  Run shape = run_cli("train --model '" + onnx + "' --data '" + write_tiny_cifar(dir) + "' --val-size 2 --epochs 1 --out '" + (dir / "r2") + "'");
  check_one_error_line(shape, "dim 0 is 3 here, 1 in the model");
}

TEST_CASE("train --resume: an ONNX run reloads its file and ends bit-identical to an uninterrupted run") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string recipe = "train --model '" + onnx_fixture("residual_cnn.onnx") +
                             "' --method natural --epochs 2 --batch 32 --limit 128 --val-size 64 --test-limit 32 --threads 1";
  auto sha_of = [](const Run& r) {
    const size_t at = r.out.find("parameters sha256 ");
    return at == std::string::npos ? std::string() : r.out.substr(at + 18, 64);
  };
  Run whole = run_cli(recipe + " --out '" + (dir / "whole") + "'");
  Run first = run_cli(recipe + " --stop-after 1 --out '" + (dir / "split") + "'");
  Run rest = run_cli("train --resume '" + (dir / "split") + "' --threads 1");
  INFO("stderr: ", whole.err, first.err, rest.err);
  REQUIRE(whole.status == 0);
  REQUIRE(first.status == 0);
  REQUIRE(rest.status == 0);
  CHECK(sha_of(whole).size() == 64);
  CHECK(sha_of(first) != sha_of(whole));
  CHECK(sha_of(rest) == sha_of(whole));
}

TEST_CASE("help texts say that --model takes a FILE.onnx") {
  for (const char* command : {"eval", "attack", "train"}) {
    Run r = run_cli(std::string(command) + " --help");
    REQUIRE(r.status == 0);
    CHECK(r.out.find("FILE.onnx") != std::string::npos);
  }
  Run r = run_cli("--help");
  CHECK(r.out.find("inspect") != std::string::npos);
}
#endif  // ADVGRAD_HAVE_ONNX

// ---------------------------------------------------------------- outputs people reuse (#16): eval
// --per-sample / --save-adv / --adv-from, attack --indices / --random, --mean/--std, advgrad models

namespace {

// A small_cnn trained naturally for two epochs on 4096 Fashion-MNIST images (a few seconds), so that most
// samples are classified correctly and the attacks have something to fool. Trained once per test run.
std::string trained_small_cnn() {
  static TempDir dir;
  static std::string weights;
  if (weights.empty()) {
    Run t = run_cli("train --model small_cnn --method natural --epochs 2 --batch 32 --limit 4096 --val-size 64 "
                    "--test-limit 16 --lr 0.05 --quiet --out '" + (dir / "run") + "'");
    INFO("stderr: ", t.err);
    REQUIRE(t.status == 0);
    weights = dir / "run/model.safetensors";
  }
  return weights;
}

// A CSV file as a header and rows of fields (the per-sample files hold numbers only: no quoting).
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  size_t column(const std::string& name) const {
    const auto it = std::find(header.begin(), header.end(), name);
    REQUIRE_MESSAGE(it != header.end(), "no column ", name);
    return size_t(it - header.begin());
  }
  double number(size_t row, const std::string& name) const { return std::stod(rows[row][column(name)]); }
};

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string f; std::getline(in, f, ',');) fields.push_back(f);
  return fields;
}

Csv read_csv(const std::string& path) {
  Csv csv;
  const auto lines = lines_of(read_text(path));
  REQUIRE(!lines.empty());
  csv.header = split_commas(lines[0]);
  for (size_t i = 1; i < lines.size(); ++i) {
    csv.rows.push_back(split_commas(lines[i]));
    REQUIRE(csv.rows.back().size() == csv.header.size());
  }
  return csv;
}

// The sample rows of `advgrad attack`'s table: the lines after the header whose first field is a number.
std::vector<std::string> attack_table_rows(const std::string& out) {
  std::vector<std::string> rows;
  const auto lines = lines_of(out);
  for (size_t i = 3; i < lines.size(); ++i) {
    std::stringstream in(lines[i]);
    long long index = -1;
    if (!(in >> index)) break;
    rows.push_back(lines[i]);
  }
  return rows;
}

long long first_number(const std::string& line) { return std::stoll(line); }

}  // namespace

TEST_CASE("eval --per-sample: a row per sample whose flags give the printed accuracies, norms within eps") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string w = trained_small_cnn();
  const std::string eval = "eval --quiet --model small_cnn --weights '" + w + "' --limit 20 --json ";
  {
    // One attack, CSV.
    Run r = run_cli(eval + "--attack pgd --eps 0.05 --steps 5 --per-sample '" + (dir / "pgd.csv") + "'");
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    const json j = json::parse(r.out);
    const Csv csv = read_csv(dir / "pgd.csv");
    CHECK(csv.header == std::vector<std::string>{"index", "label", "clean_prediction", "pgd_attacked", "pgd_fooled",
                                                  "pgd_prediction", "pgd_norm"});
    REQUIRE(csv.rows.size() == 20);
    int clean = 0, robust = 0, fooled = 0;
    for (size_t i = 0; i < csv.rows.size(); ++i) {
      CAPTURE(i);
      CHECK(csv.number(i, "index") == double(i));  // the first 20 of the test set
      const bool right = csv.number(i, "clean_prediction") == csv.number(i, "label");
      const bool f = csv.number(i, "pgd_fooled") == 1;
      clean += right;
      robust += right && !f;
      fooled += f;
      CHECK(csv.number(i, "pgd_attacked") == double(right));  // clean-correct samples only are attacked
      CHECK(csv.number(i, "pgd_norm") <= 0.05 + 1e-6);
      if (f) CHECK(csv.number(i, "pgd_prediction") != csv.number(i, "label"));
      if (!f && right) CHECK(csv.number(i, "pgd_prediction") == csv.number(i, "label"));
      if (!right) CHECK(csv.number(i, "pgd_norm") == 0);
    }
    CHECK(clean == doctest::Approx(j["clean_acc"].get<double>() * 20));
    CHECK(robust == doctest::Approx(j["robust_acc"].get<double>() * 20));
    CHECK(robust == doctest::Approx(j["attacks"][0]["acc"].get<double>() * 20));
    CHECK(clean >= 12);   // a trained model (about 70% here): the flags are about many samples
    CHECK(fooled >= 1);   // and PGD fools some of them
  }
  {
    // Two attacks of different norms, JSON lines: each attack's own flags give its accuracy, the worst
    // case over both the robust accuracy; each norm is the attack's own.
    Run r = run_cli(eval + "--attack fgsm,pgd-l2 --eps 0.3 --steps 3 --per-sample '" + (dir / "two.jsonl") + "'");
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    const json j = json::parse(r.out);
    const auto lines = lines_of(read_text(dir / "two.jsonl"));
    REQUIRE(lines.size() == 20);
    int fgsm_ok = 0, l2_ok = 0, both_ok = 0;
    double largest_linf_as_l2 = 0;
    for (const std::string& line : lines) {
      const json s = json::parse(line);
      const bool right = s["clean_prediction"] == s["label"];
      const json &fg = s["attacks"]["fgsm"], &l2 = s["attacks"]["pgd-l2"];
      fgsm_ok += right && !fg["fooled"].get<bool>();
      l2_ok += right && !l2["fooled"].get<bool>();
      both_ok += right && !fg["fooled"].get<bool>() && !l2["fooled"].get<bool>();
      CHECK(fg["norm"].get<double>() <= 0.3 + 1e-6);
      CHECK(l2["norm"].get<double>() <= 0.3 + 1e-6);
      largest_linf_as_l2 = std::max(largest_linf_as_l2, fg["norm"].get<double>());
    }
    CHECK(fgsm_ok == doctest::Approx(j["attacks"][0]["acc"].get<double>() * 20));
    CHECK(l2_ok == doctest::Approx(j["attacks"][1]["acc"].get<double>() * 20));
    CHECK(both_ok == doctest::Approx(j["robust_acc"].get<double>() * 20));
    CHECK(largest_linf_as_l2 > 0.29);  // FGSM's L-inf norm is eps (its L2 norm would be far larger)
  }
  {
    // A preset: cumulative stages. A sample fooled by APGD-CE is not attacked by APGD-T and stays fooled
    // there; the last stage's flags give the robust accuracy.
    Run r = run_cli(eval + "--attack autoattack-fast --eps 0.05 --effort 0.03 --per-sample '" + (dir / "aa.csv") + "'");
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    const json j = json::parse(r.out);
    const Csv csv = read_csv(dir / "aa.csv");
    REQUIRE(csv.rows.size() == 20);
    int robust = 0, stage_one = 0;
    for (size_t i = 0; i < csv.rows.size(); ++i) {
      CAPTURE(i);
      const bool right = csv.number(i, "clean_prediction") == csv.number(i, "label");
      if (csv.number(i, "apgd-ce_fooled") == 1) {
        ++stage_one;
        CHECK(csv.number(i, "apgd-t_attacked") == 0);
        CHECK(csv.number(i, "apgd-t_fooled") == 1);
        CHECK(csv.number(i, "apgd-t_prediction") == csv.number(i, "apgd-ce_prediction"));
        CHECK(csv.number(i, "apgd-t_norm") == csv.number(i, "apgd-ce_norm"));
      }
      robust += right && csv.number(i, "apgd-t_fooled") == 0;
    }
    CHECK(stage_one >= 1);
    CHECK(stage_one == doctest::Approx((j["clean_acc"].get<double>() - j["attacks"][0]["acc"].get<double>()) * 20));
    CHECK(robust == doctest::Approx(j["robust_acc"].get<double>() * 20));
  }
  // The format is the extension's: anything else is a bad command line, before any work.
  Run bad = run_cli(eval + "--attack pgd --eps 0.05 --per-sample '" + (dir / "out.txt") + "'");
  check_one_error_line(bad, "--per-sample");
  CHECK(bad.status == 2);
  CHECK(bad.err.find(".csv or .jsonl") != std::string::npos);
}

TEST_CASE("eval --save-adv / --adv-from: the saved examples give the robust accuracy back; hostile files exit 2") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string w = trained_small_cnn();
  const std::string adv = dir / "adv.safetensors";
  Run made = run_cli("eval --quiet --model small_cnn --weights '" + w + "' --attack pgd --eps 0.05 --steps 5 --limit 20 "
                     "--json --save-adv '" + adv + "'");
  INFO("stderr: ", made.err);
  REQUIRE(made.status == 0);
  const json m = json::parse(made.out);
  {
    const SafetensorsFile f = load_safetensors(adv);
    REQUIRE(f.tensors.count("x_adv") == 1);
    CHECK(f.tensors.at("x_adv").shape() == Shape{20, 1, 28, 28});
    CHECK(f.tensors.at("labels").shape() == Shape{20});
    std::vector<int64_t> first20(20);
    for (int64_t i = 0; i < 20; ++i) first20[size_t(i)] = i;
    CHECK(f.tensors.at("indices").to_vector<int64_t>() == first20);
    CHECK(f.metadata.at("attack") == "pgd");
  }
  // Model A on the examples crafted against it: their accuracy is the robust accuracy printed for the
  // attack, and the original samples' the clean accuracy.
  Run back = run_cli("eval --model small_cnn --weights '" + w + "' --adv-from '" + adv + "' --json");
  INFO("stderr: ", back.err);
  REQUIRE(back.status == 0);
  const json b = json::parse(back.out);
  CHECK(b["n"] == 20);
  CHECK(b["adv_acc"].get<double>() == doctest::Approx(m["attacks"][0]["acc"].get<double>()));
  CHECK(b["adv_acc"].get<double>() == doctest::Approx(m["robust_acc"].get<double>()));
  CHECK(b["clean_acc"].get<double>() == doctest::Approx(m["clean_acc"].get<double>()));
  CHECK(b["adv_acc"].get<double>() < b["clean_acc"].get<double>());  // PGD fooled some: not the clean images
  // Transfer to another model (freshly initialised weights): it runs and reports both numbers.
  const std::string other = save_weights(dir, "small_cnn", "other.safetensors");
  Run transfer = run_cli("eval --model small_cnn --weights '" + other + "' --adv-from '" + adv + "'");
  INFO("stderr: ", transfer.err);
  REQUIRE(transfer.status == 0);
  CHECK(transfer.out.find("accuracy on the examples") != std::string::npos);
  CHECK(transfer.out.find("crafted with pgd at eps 0.05 against small_cnn") != std::string::npos);

  // Hostile files: each one error line naming the file, status 2.
  const Tensor x = zeros({2, 1, 28, 28}), labels = from_vector(std::vector<int64_t>{9, 2});
  auto file = [&](const std::string& name, const StateDict& tensors) {
    save_safetensors(dir / name, tensors);
    return dir / name;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {file("no_labels.safetensors", {{"x_adv", x}}), "no tensor 'labels'"},
      {file("extra.safetensors", {{"x_adv", x}, {"labels", labels}, {"weights", x}}), "unexpected tensor 'weights'"},
      {file("float_labels.safetensors", {{"x_adv", x}, {"labels", from_vector(std::vector<float>{9, 2})}}), "not int64 [2]"},
      {file("counts.safetensors", {{"x_adv", x}, {"labels", from_vector(std::vector<int64_t>{9, 2, 1})}}), "not int64 [2]"},
      {file("shape.safetensors", {{"x_adv", zeros({2, 3, 32, 32})}, {"labels", labels}}), "takes [1,28,28]"},
      {file("int_images.safetensors", {{"x_adv", zeros({2, 1, 28, 28}, DType::I64)}, {"labels", labels}}), "not float32"},
      {file("range.safetensors", {{"x_adv", full({2, 1, 28, 28}, 1.5)}, {"labels", labels}}), "outside the [0,1] pixel range"},
      {file("label10.safetensors", {{"x_adv", x}, {"labels", from_vector(std::vector<int64_t>{10, 2})}}), "outside [0, 10)"},
      {file("twice.safetensors", {{"x_adv", x}, {"labels", labels}, {"indices", from_vector(std::vector<int64_t>{4, 4})}}),
       "appears twice"},
      {file("beyond.safetensors", {{"x_adv", x}, {"labels", labels}, {"indices", from_vector(std::vector<int64_t>{0, 10000})}}),
       "beyond the 10000 samples"},
      // Test sample 0 is an ankle boot (9), sample 1 a pullover (2): labels 2, 9 are another dataset's.
      {file("mismatch.safetensors", {{"x_adv", x}, {"labels", from_vector(std::vector<int64_t>{2, 9})},
                                     {"indices", from_vector(std::vector<int64_t>{0, 1})}}),
       "made on another dataset or split"},
  };
  for (const auto& item : cases) {  // plain names: clang cannot capture a structured binding in INFO's lambda
    const std::string& path = item.first;
    const std::string& problem = item.second;
    INFO(path);
    Run r = run_cli("eval --model small_cnn --weights '" + w + "' --adv-from '" + path + "'");
    check_one_error_line(r, path);
    CHECK(r.err.find(problem) != std::string::npos);
    CHECK(r.status == 2);
  }
  {
    std::ofstream(dir / "garbage.safetensors", std::ios::binary) << std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) << "xx";
    Run r = run_cli("eval --model small_cnn --weights '" + w + "' --adv-from '" + (dir / "garbage.safetensors") + "'");
    check_one_error_line(r, dir / "garbage.safetensors");
    CHECK(r.status == 2);
  }
  // The examples as they are, labels in range, no indices: accuracy only (the originals are unknown).
  Run plain = run_cli("eval --model small_cnn --weights '" + w + "' --adv-from '" +
                      file("plain.safetensors", {{"x_adv", x}, {"labels", labels}}) + "' --json");
  INFO("stderr: ", plain.err);
  REQUIRE(plain.status == 0);
  CHECK(json::parse(plain.out)["clean_acc"].is_null());
  // --adv-from replaces the attack: giving both is a bad command line.
  Run both = run_cli("eval --model small_cnn --weights '" + w + "' --adv-from '" + adv + "' --attack pgd --eps 0.1");
  check_one_error_line(both, "--adv-from");
  CHECK(both.status == 2);
  // So are the attack's own options, which would be ignored.
  Run steps = run_cli("eval --model small_cnn --weights '" + w + "' --adv-from '" + adv + "' --steps 40");
  check_one_error_line(steps, "--adv-from");
  CHECK(steps.status == 2);
  // The file's indices are rows of the test split it was made on: the train split is refused, named.
  Run split = run_cli("eval --model small_cnn --weights '" + w + "' --adv-from '" + adv + "' --split train");
  check_one_error_line(split, "made on the test split, not train");
  CHECK(split.status == 2);
}

TEST_CASE("attack --indices / --random: which test samples are attacked and pictured; bad choices exit 2") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string w = trained_small_cnn();
  const std::string attack = "attack --model small_cnn --weights '" + w + "' --attack fgsm --eps 0.1 --scale 1 --out '" +
                             (dir / "g.png") + "' ";
  Run chosen = run_cli(attack + "--indices 3,17,42");
  INFO("stderr: ", chosen.err);
  REQUIRE(chosen.status == 0);
  int width = 0, height = 0, channels = 0;
  unsigned char* png = stbi_load((dir / "g.png").c_str(), &width, &height, &channels, 3);
  REQUIRE(png != nullptr);
  stbi_image_free(png);
  Run first = run_cli(attack + "--limit 43");
  INFO("stderr: ", first.err);
  REQUIRE(first.status == 0);
  const auto rows = attack_table_rows(chosen.out), all = attack_table_rows(first.out);
  REQUIRE(rows.size() == 3);
  REQUIRE(all.size() == 43);
  // Each chosen sample's line (index, label, predictions, max |d|, note) is that sample's in the first 43.
  CHECK(rows[0] == all[3]);
  CHECK(rows[1] == all[17]);
  CHECK(rows[2] == all[42]);
  CHECK(chosen.out.find("/3 clean") != std::string::npos);
  int width43 = 0, height43 = 0;  // the picture of the 43-sample run
  png = stbi_load((dir / "g.png").c_str(), &width43, &height43, &channels, 3);
  REQUIRE(png != nullptr);
  stbi_image_free(png);
  CHECK(width * 5 < width43);  // 3 columns, not 43 (a column's width follows its class names)

  // --random N with --seed: N distinct samples in increasing order, the same for the same seed.
  auto indices_of = [](const Run& r) {
    std::vector<long long> v;
    for (const std::string& line : attack_table_rows(r.out)) v.push_back(first_number(line));
    return v;
  };
  Run r1 = run_cli(attack + "--random 6 --seed 5"), r2 = run_cli(attack + "--random 6 --seed 5"),
      r3 = run_cli(attack + "--random 6 --seed 6");
  INFO("stderr: ", r1.err);
  REQUIRE(r1.status == 0);
  REQUIRE(r3.status == 0);
  const auto a = indices_of(r1), c = indices_of(r3);
  REQUIRE(a.size() == 6);
  CHECK(std::is_sorted(a.begin(), a.end()));
  CHECK(std::adjacent_find(a.begin(), a.end()) == a.end());
  CHECK(a.front() >= 0);
  CHECK(a.back() < 10000);
  CHECK(a != std::vector<long long>{0, 1, 2, 3, 4, 5});
  CHECK(indices_of(r2) == a);
  CHECK(c != a);

  // Bad choices: one error line naming the option, status 2.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--indices 3,x", "'x' is not a sample index"},
      {"--indices=-1", "'-1' is not a sample index"},
      {"--indices 3,17,3", "index 3 is listed twice"},
      {"--indices 3,", "comma-separated list"},
      {"--indices 10000", "beyond the 10000 samples"},
      {"--random 0", "--random"},
      {"--random 10001", "10001 samples asked for"},
      {"--indices 3 --random 2", "excludes"},
      {"--indices 3 --limit 4", "excludes"},
  };
  for (const auto& item : bad) {  // plain names: clang cannot capture a structured binding in INFO's lambda
    const std::string& options = item.first;
    const std::string& message = item.second;
    INFO(options);
    Run r = run_cli(attack + options);
    check_one_error_line(r, message);
    CHECK(r.status == 2);
  }
}

TEST_CASE("--mean/--std: a model with normalisation folded into its weights predicts as the unfolded one wrapped") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  // The lstm's first layer is linear in the input, W x + b, so (x - m) / s folds into it by hand:
  // W' = W / s, b' = b - (m / s) * (row sums of W).
  const double m = 0.5, s = 0.1;
  Generator gen(7);
  const StateDict original = make_model("lstm", gen)->state_dict();
  StateDict folded;
  for (const auto& [name, t] : original) folded[name] = t.clone();
  {
    const Tensor& W = original.at("lstm.weight_ih_l0");  // [512, 28]
    const std::vector<float> wv = W.to_vector<float>(), bv = original.at("lstm.bias_ih_l0").to_vector<float>();
    const int64_t rows = W.size(0), cols = W.size(1);
    std::vector<float> w2(wv.size()), b2(bv.size());
    for (int64_t r = 0; r < rows; ++r) {
      double row_sum = 0;
      for (int64_t c = 0; c < cols; ++c) {
        row_sum += wv[size_t(r * cols + c)];
        w2[size_t(r * cols + c)] = float(wv[size_t(r * cols + c)] / s);
      }
      b2[size_t(r)] = float(bv[size_t(r)] - m / s * row_sum);
    }
    folded["lstm.weight_ih_l0"] = from_vector(w2, W.shape());
    folded["lstm.bias_ih_l0"] = from_vector(b2, {rows});
  }
  save_safetensors(dir / "original.safetensors", original);
  save_safetensors(dir / "folded.safetensors", folded);
  auto clean_predictions = [&](const std::string& weights, const std::string& options) {
    const std::string file = dir / "p.csv";
    Run r = run_cli("eval --quiet --model lstm --weights '" + weights + "' --attack fgsm --eps 0.01 --limit 40 "
                    "--per-sample '" + file + "' " + options);
    INFO("stderr: ", r.err);
    REQUIRE(r.status == 0);
    const Csv csv = read_csv(file);
    std::vector<std::string> p;
    for (size_t i = 0; i < csv.rows.size(); ++i) p.push_back(csv.rows[i][csv.column("clean_prediction")]);
    return p;
  };
  const auto wrapped = clean_predictions(dir / "original.safetensors", "--mean 0.5 --std 0.1");
  const auto by_hand = clean_predictions(dir / "folded.safetensors", "");
  const auto unwrapped = clean_predictions(dir / "original.safetensors", "");
  REQUIRE(wrapped.size() == 40);
  CHECK(wrapped == by_hand);
  CHECK(unwrapped != by_hand);  // the normalisation matters for this fixture
  CHECK(std::set<std::string>(wrapped.begin(), wrapped.end()).size() >= 2);  // not one class for everything

  // The attack command takes them too; counts other than 1 or the channel count are bad command lines.
  const std::string w = save_weights(dir, "small_cnn", "w.safetensors");
  Run ok = run_cli("attack --model small_cnn --weights '" + w + "' --attack fgsm --eps 0.1 --limit 2 --scale 1 --mean 0.2860 "
                   "--std 0.3530 --out '" + (dir / "g.png") + "'");
  INFO("stderr: ", ok.err);
  CHECK(ok.status == 0);
  const std::string eval = "eval --model small_cnn --weights '" + w + "' --attack fgsm --eps 0.1 --limit 2 ";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--mean 0.1,0.2 --std 0.3", "--mean: 2 values for model 'small_cnn', which takes [1,28,28]: give 1"},
      {"--mean 0.1 --std 0.3,0.3,0.3", "--std: 3 values"},
      {"--mean 0.1", "--std"},
      {"--mean 0.1 --std 0", "--std"},
      {"--mean 0.1 --std x", "--std"},
      {"--mean 0.1, --std 0.2", "comma-separated list"},
  };
  for (const auto& item : bad) {  // plain names: clang cannot capture a structured binding in INFO's lambda
    const std::string& options = item.first;
    const std::string& message = item.second;
    INFO(options);
    Run r = run_cli(eval + options);
    check_one_error_line(r, message);
    CHECK(r.status == 2);
  }
}

TEST_CASE("models: the zoo with input shapes, parameter counts of the built models, their PyTorch definitions") {
  Run r = run_cli("models --json");
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  REQUIRE(j.size() == model_zoo().size());
  std::map<std::string, json> by_name;
  for (const auto& e : j) by_name[e["name"]] = e;
  // Counted by hand from the layers (weights + biases).
  const int64_t small_cnn = (16 * 1 * 5 * 5 + 16) + (32 * 16 * 5 * 5 + 32) + (1568 * 100 + 100) + (100 * 10 + 10);
  const int64_t lstm = 4 * 128 * 28 + 4 * 128 * 128 + 2 * 4 * 128 + (128 * 10 + 10);
  CHECK(by_name.at("small_cnn")["parameters"] == small_cnn);
  CHECK(by_name.at("lstm")["parameters"] == lstm);
  CHECK(by_name.at("cifar_resnet")["input_shape"] == json::array({3, 32, 32}));
  CHECK(by_name.at("small_cnn")["classes"] == 10);
  // Every model names its PyTorch definition, and the file in the repository has it.
  const std::string zoo = read_text(std::string(ADVGRAD_TEST_DATA) + "/../../bench/peer/torch_zoo.py");
  REQUIRE(!zoo.empty());
  for (const auto& e : j) {
    INFO(e.dump());
    REQUIRE(e["pytorch_file"] == "bench/peer/torch_zoo.py");
    const std::string def = e["pytorch_definition"];
    const std::string declared = def.rfind("class ", 0) == 0 ? def.substr(0, def.find_first_of(" (", 6)) + "("
                                                             : "def " + def.substr(0, def.find('(') + 1);
    CHECK(zoo.find(declared) != std::string::npos);
  }
  Run table = run_cli("models");
  REQUIRE(table.status == 0);
  CHECK(table.out.find("bench/peer/torch_zoo.py") != std::string::npos);
  bool found = false;
  for (const std::string& line : lines_of(table.out))
    found = found || (line.rfind("small_cnn ", 0) == 0 && line.find("[1,28,28]") != std::string::npos &&
                      line.find(std::to_string(small_cnn)) != std::string::npos);
  CHECK(found);
  Run help = run_cli("--help");
  CHECK(help.out.find("models") != std::string::npos);
}

TEST_CASE("weights: a safetensors file whose header is 640 bytes long (it starts 0x80 0x02) is not taken for a pickle") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  Generator gen(7);
  const StateDict weights = make_model("small_cnn", gen)->state_dict();
  // Metadata padded until the little-endian header length starts with the bytes of a protocol-2 pickle.
  const std::string path = dir / "w.safetensors";
  bool made = false;
  for (size_t pad = 0; pad < 1024 && !made; ++pad) {
    save_safetensors(path, weights, {{"pad", std::string(pad, 'x')}});
    const std::string head = read_text(path).substr(0, 2);
    made = head == std::string("\x80\x02", 2);
  }
  REQUIRE(made);
  Run r = run_cli("eval --quiet --model small_cnn --weights '" + path + "' --attack fgsm --eps 0.1 --limit 2");
  INFO("stderr: ", r.err);
  CHECK(r.status == 0);
}

// ---------------------------------------------------------------- train: progress, outputs, run files (#16)

namespace {

// A small, quick training recipe (one thread, 64 samples, 16 test samples); append --epochs etc.
std::string tiny_train(const std::string& method = "pgd", int batch = 16, int test_limit = 16) {
  return "train --model small_cnn --method " + method + " --steps 1 --batch " + std::to_string(batch) +
         " --limit 64 --val-size 32 --test-limit " + std::to_string(test_limit) + " --threads 1";
}

// A Fashion-MNIST directory whose training split is Debian's (linked) and whose test split has
// `test_samples` images of our own, so that "the full test set" is cheap to evaluate.
std::string tiny_test_split_dir(const TempDir& dir, uint32_t test_samples) {
  const fs::path root = fs::path(dir / "fashion_tiny");
  fs::create_directories(root);
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"})
    fs::create_symlink(fs::path(default_fashion_mnist_dir()) / name, root / name);
  auto be32 = [](uint32_t v) {
    return std::string{char(v >> 24), char(v >> 16 & 0xff), char(v >> 8 & 0xff), char(v & 0xff)};
  };
  std::string images = std::string("\0\0\x08\x03", 4) + be32(test_samples) + be32(28) + be32(28);
  std::string labels = std::string("\0\0\x08\x01", 4) + be32(test_samples);
  for (uint32_t i = 0; i < test_samples; ++i) {
    images += std::string(28 * 28, char(10 * i));
    labels += char(i % 10);
  }
  std::ofstream(root / "t10k-images-idx3-ubyte", std::ios::binary) << images;
  std::ofstream(root / "t10k-labels-idx1-ubyte", std::ios::binary) << labels;
  return root.string();
}

}  // namespace

TEST_CASE("train: progress on stderr (epoch k/N, running loss and accuracy, run ETA, the test evaluation), "
          "a line per 10% when piped, silent with --quiet") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  // 64 samples in batches of 8: 8 steps per epoch, so every step reaches a new 10% (8 lines an epoch).
  // 100 test samples: enough that some are right on clean input (only those are attacked and reported).
  const std::string run = tiny_train("pgd", 8, 100) + " --epochs 2 --out '" + (dir / "run") + "'";
  Run r = run_cli(run);
  INFO("stdout: ", r.out, "\nstderr: ", r.err);
  REQUIRE(r.status == 0);
  const auto lines = lines_of(r.err);
  REQUIRE(!lines.empty());
  int epoch1 = 0, epoch2 = 0, test_fgsm = 0, test_pgd = 0;
  for (const std::string& line : lines) {
    const bool training = line.find("epoch ") != std::string::npos;
    epoch1 += line.find("epoch 1/2") != std::string::npos;
    epoch2 += line.find("epoch 2/2") != std::string::npos;
    test_fgsm += line.find("test fgsm (1/2)") != std::string::npos;
    test_pgd += line.find("test pgd (2/2)") != std::string::npos;
    if (training) {
      CHECK(line.find("loss ") != std::string::npos);
      CHECK(line.find("adv acc ") != std::string::npos);  // PGD training: the steps' adversarial accuracy
      CHECK(line.find("run ETA ") != std::string::npos);
    }
    CHECK(line.find("%  0/") == std::string::npos);  // no line before the first step or sample
    CHECK(line.find("ETA 0 s") == std::string::npos);
  }
  CHECK(epoch1 == 8);
  CHECK(epoch2 == 8);
  CHECK(test_fgsm >= 1);
  CHECK(test_pgd >= 1);
  CHECK(lines[0].find("epoch 1/2") != std::string::npos);
  // Results on stdout: the epoch table and the summary, none of the progress.
  CHECK(r.out.find("epoch  1") != std::string::npos);
  CHECK(r.out.find("PGD-20") != std::string::npos);
  CHECK(r.out.find("samples/s") == std::string::npos);

  Run quiet = run_cli(tiny_train() + " --epochs 1 --quiet --out '" + (dir / "quiet") + "'");
  REQUIRE(quiet.status == 0);
  CHECK(quiet.err.empty());
  CHECK(quiet.out.empty());
}

TEST_CASE("train without --out writes to runs/<model>-<method>-<time>/ and says so; config.json records "
          "the data directory, version and build") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string in_dir = "cd '" + dir.path.string() + "' &&";
  Run r = run_cli_env(in_dir, tiny_train("natural") + " --epochs 1");
  INFO("stdout: ", r.out, "\nstderr: ", r.err);
  REQUIRE(r.status == 0);
  std::vector<std::string> runs;
  for (const auto& e : fs::directory_iterator(dir.path / "runs")) runs.push_back(e.path().filename().string());
  REQUIRE(runs.size() == 1);
  const std::string& name = runs[0];
  // small_cnn-natural-YYYYmmdd-HHMMSS
  const std::string prefix = "small_cnn-natural-";
  REQUIRE(name.size() == prefix.size() + 15);
  CHECK(name.compare(0, prefix.size(), prefix) == 0);
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    INFO(name);
    CHECK((i == prefix.size() + 8 ? name[i] == '-' : name[i] >= '0' && name[i] <= '9'));
  }
  const std::string run_dir = "runs/" + name;
  CHECK(r.out.find("the run goes to " + run_dir) != std::string::npos);
  CHECK(r.out.find("outputs in " + run_dir) != std::string::npos);
  CHECK(fs::exists(dir.path / run_dir / "summary.json"));

  const json config = json::parse(read_text((dir.path / run_dir / "config.json").string()));
  CHECK(config["data"] == default_fashion_mnist_dir());  // the default directory it found, not ""
  Run version = run_cli("--version");  // the command's own version text: "advgrad X.Y.Z"
  REQUIRE(config["advgrad_version"].is_string());
  CHECK("advgrad " + config["advgrad_version"].get<std::string>() + "\n" == version.out);
  const json& build = config["build"];
  REQUIRE(build.is_object());
  CHECK(build["compiler"].is_string());
  CHECK(!build["compiler"].get<std::string>().empty());
  CHECK(build["build_type"].is_string());
  CHECK((build["cpu_build"] == "native" || build["cpu_build"] == "portable"));
  CHECK(build["openmp"].is_boolean());
  const json summary = json::parse(read_text((dir.path / run_dir / "summary.json").string()));
  CHECK(config["cpu_path"].is_string());
  CHECK(config["cpu_path"] == summary["cpu_path"]);

  // --quiet still names the directory it made (the one line on stdout), or the run could not be found.
  fs::remove_all(dir.path / "runs");
  Run quiet = run_cli_env(in_dir, tiny_train("natural") + " --epochs 1 --quiet");
  INFO("quiet stdout: ", quiet.out, "\nquiet stderr: ", quiet.err);
  REQUIRE(quiet.status == 0);
  CHECK(quiet.err.empty());
  CHECK(std::count(quiet.out.begin(), quiet.out.end(), '\n') == 1);
  CHECK(quiet.out.find("the run goes to runs/small_cnn-natural-") != std::string::npos);
}

TEST_CASE("train --data DIR: config.json records it; the summary says 'the full test set' or 'the first N'") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string data = tiny_test_split_dir(dir, 20);
  const std::string base = "train --model small_cnn --method natural --epochs 1 --batch 32 --limit 64 --val-size 32 "
                           "--threads 1 --data '" + data + "'";
  Run all = run_cli(base + " --test-limit 0 --out '" + (dir / "all") + "'");
  INFO("stdout: ", all.out, "\nstderr: ", all.err);
  REQUIRE(all.status == 0);
  CHECK(all.out.find("on the full test set (20 samples)") != std::string::npos);
  CHECK(json::parse(read_text(dir / "all/config.json"))["data"] == data);
  const json summary = json::parse(read_text(dir / "all/summary.json"));
  CHECK(summary["test_samples"] == 20);
  CHECK(summary["test_split_samples"] == 20);
  // A limit equal to the test split's size is the full test set too; a smaller one is not.
  Run equal = run_cli(base + " --test-limit 20 --out '" + (dir / "equal") + "'");
  REQUIRE(equal.status == 0);
  CHECK(equal.out.find("on the full test set (20 samples)") != std::string::npos);
  Run first = run_cli(base + " --test-limit 5 --out '" + (dir / "first") + "'");
  REQUIRE(first.status == 0);
  CHECK(first.out.find("on the first 5 test samples") != std::string::npos);
}

TEST_CASE("train: curves.svg names its axes, prints eps as 0.1 and plots a short run's loss per step") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  const std::string run = dir / "run";
  Run r = run_cli(tiny_train() + " --epochs 1 --eps 0.1 --quiet --out '" + run + "'");  // 4 steps
  INFO("stderr: ", r.err);
  REQUIRE(r.status == 0);
  const std::string svg = read_text(run + "/curves.svg");
  INFO(svg);
  CHECK(svg.find(">epoch</text>") != std::string::npos);
  CHECK(svg.find(">loss</text>") != std::string::npos);
  CHECK(svg.find(">accuracy</text>") != std::string::npos);
  CHECK(svg.find("small_cnn pgd eps 0.1<") != std::string::npos);
  // One point per step, from the step losses metrics.jsonl now records.
  const size_t at = svg.find("class=\"step-loss\"");
  REQUIRE(at != std::string::npos);
  const size_t from = svg.find("points=\"", at) + 8;
  const std::string points = svg.substr(from, svg.find('"', from) - from);
  CHECK(std::count(points.begin(), points.end(), ',') == 4);
  const json m = json::parse(lines_of(read_text(run + "/metrics.jsonl")).at(0));
  REQUIRE(m["step_losses"].is_array());
  CHECK(m["step_losses"].size() == 4);

  // A run of more epochs than curves.svg plots per step keeps no step losses (its checkpoint history,
  // rewritten every epoch, would otherwise grow with every step).
  const std::string longer = dir / "longer";
  Run r4 = run_cli(tiny_train() + " --epochs 4 --eps 0.1 --quiet --out '" + longer + "'");
  INFO("stderr: ", r4.err);
  REQUIRE(r4.status == 0);
  const std::vector<std::string> epochs = lines_of(read_text(longer + "/metrics.jsonl"));
  CHECK(epochs.size() == 4);
  for (const std::string& line : epochs) CHECK(!json::parse(line).contains("step_losses"));
  CHECK(read_text(longer + "/checkpoint/trainer.json").find("step_losses") == std::string::npos);
  CHECK(read_text(longer + "/curves.svg").find("class=\"step-loss\"") == std::string::npos);
}

TEST_CASE("train --eps: fractions such as 8/255, and an eps above 0.5 refused with a hint unless --allow-large-eps") {
  if (!have_fashion_mnist()) return;
  TempDir dir;
  Run frac = run_cli(tiny_train() + " --epochs 1 --eps 8/255 --out '" + (dir / "run") + "'");
  INFO("stdout: ", frac.out, "\nstderr: ", frac.err);
  REQUIRE(frac.status == 0);
  CHECK(json::parse(read_text(dir / "run/config.json"))["eps"].get<double>() == 8.0 / 255);
  CHECK(frac.out.find("eps 8/255:") != std::string::npos);  // the summary's heading
  CHECK(read_text(dir / "run/curves.svg").find("eps 8/255<") != std::string::npos);

  // No data at --data: an eps that slipped past the check fails at once on the path instead of training.
  Run large = run_cli("train --eps 0.6 --data '" + (dir / "no_data") + "' --out '" + (dir / "large") + "'");
  check_one_error_line(large, "--eps");
  CHECK(large.status == 2);
  CHECK(large.err.find("above 0.5") != std::string::npos);
  CHECK(large.err.find("--allow-large-eps") != std::string::npos);
  CHECK(!fs::exists(dir / "large"));
  // With --allow-large-eps the eps passes; this run then stops at its missing --resume directory.
  Run allowed = run_cli("train --eps 0.6 --allow-large-eps --resume '" + (dir / "missing") + "'");
  check_one_error_line(allowed, "no such run directory");
  CHECK(allowed.status == 1);
  Run bad = run_cli("train --eps 8/0");
  check_one_error_line(bad, "--eps");
  CHECK(bad.status == 2);
}
