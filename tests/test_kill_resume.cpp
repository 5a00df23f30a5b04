// kill -9 at random moments during training, then `--resume`, again and again: the run must end on the same
// parameters (param_sha256) as one that was never interrupted. Kills land in every phase (data loading,
// mid-epoch, while checkpoint temporaries exist, during the final evaluation); stale temporaries of a dead
// writer must be gone after a resume.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdint>

#include "cli_runner.h"
#include "data/mnist.h"

using namespace advgrad::testing;
using nlohmann::json;

namespace {

#ifdef ADVGRAD_SANITIZED
constexpr double kSlow = 5;
#else
constexpr double kSlow = 1;
#endif

// Small enough for seconds, long enough (4 epochs, PGD) for kills to land in different places. The
// straight run uses one thread, the interrupted one starts with two: the hash is thread-count independent.
std::vector<std::string> train_args(const std::string& out, const char* threads) {
  return {"train", "--model", "small_cnn", "--method", "pgd", "--steps", "2", "--epochs", "4", "--limit", "512",
          "--val-size", "64", "--test-limit", "50", "--batch", "64", "--threads", threads, "--seed", "5", "--quiet",
          "--out", out};
}

Limits patient() {
  Limits l;
  l.seconds = 600 * kSlow;
  return l;
}

std::string param_hash(const std::string& run) {
  const json j = json::parse(slurp(run + "/summary.json"));
  return j.at("param_sha256").get<std::string>();
}

// A temporary of a writer that died long ago (a pid above the kernel's pid_max: never alive).
const char* const kStaleTemporary = "model-e1.safetensors.tmp.4194999.0";

// The temporaries a writer leaves when killed between creating and renaming them (but for the planted one
// when `include_planted` is false).
std::vector<std::string> temporaries(const std::string& dir, bool include_planted = true) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find(".tmp.") != std::string::npos && (include_planted || name != kStaleTemporary)) out.push_back(name);
  }
  return out;
}

}  // namespace

TEST_CASE("kill -9 at random moments, resume each time: same final parameters as an uninterrupted run") {
  if (!fs::exists(advgrad::default_fashion_mnist_dir())) {
    MESSAGE("skipped: ", advgrad::default_fashion_mnist_dir(), " is missing (Debian package dataset-fashion-mnist)");
    return;
  }
  TempDir tmp("advgrad_kill");
  const std::string straight = tmp / "straight";
  Run once = run_cli(train_args(straight, "1"), patient());
  INFO("uninterrupted run: ", once.describe(), " ", once.err);
  REQUIRE(once.exited);
  REQUIRE(once.status == 0);
  const std::string expected = param_hash(straight);
  const double full_run = once.seconds;
  MESSAGE("uninterrupted run: ", full_run, " s");

  // Three kinds of kill, in turn, from a fixed pseudo-random sequence (the test is repeatable): within the
  // first 0.2 s (start-up, data loading); at a random time within half a run's length; and the moment a
  // checkpoint temporary exists (a write in progress), plus 0-20 ms.
  const std::string killed = tmp / "killed";
  uint64_t state = 12345;
  auto uniform = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return double(state >> 11) / double(uint64_t(1) << 53);
  };
  int kills = 0, resumes = 0, mid_write = 0;
  bool finished = false;
  bool planted = false;
  for (int round = 0; round < 80 && !finished; ++round) {
    const bool started = fs::exists(killed + "/checkpoint/trainer.json");
    if (started && !planted) {
      std::ofstream(killed + "/checkpoint/" + kStaleTemporary) << "partial";
      planted = true;
    }
    // Before the first epoch's checkpoint there is nothing to resume: the run is started again.
    std::vector<std::string> args = started ? std::vector<std::string>{"train", "--resume", killed, "--quiet"}
                                            : train_args(killed, "2");
    if (!started) fs::remove_all(killed);
    resumes += started;
    TempDir logs("advgrad_kill_logs");
    // After 24 rounds one runs to the end: the loop must finish.
    const bool kill_it = round < 24;
    const int kind = round % 3;
    double limit = patient().seconds;
    std::function<bool()> kill_now;
    if (kill_it && kind == 0) limit = 0.2 * uniform();
    if (kill_it && kind == 1) limit = full_run * (0.05 + 0.45 * uniform());
    std::chrono::steady_clock::time_point seen{};
    if (kill_it && kind == 2) {
      const double extra = 0.02 * uniform();
      kill_now = [&, extra] {
        const auto now = std::chrono::steady_clock::now();
        if (seen == std::chrono::steady_clock::time_point{}) {
          if (!temporaries(killed + "/checkpoint", /*include_planted=*/false).empty()) seen = now;
          return false;
        }
        return std::chrono::duration<double>(now - seen).count() >= extra;
      };
    }
    Child c = spawn_cli(args, patient(), logs);
    Run r = wait_cli(c, limit, kill_now);
    if (r.timed_out) {
      REQUIRE_MESSAGE(kill_it, "round ", round, " did not finish within ", patient().seconds, " s");
      ++kills;
      mid_write += kind == 2;
      continue;
    }
    INFO("round ", round, ": ", r.describe(), " ", r.err);
    REQUIRE(r.exited);
    REQUIRE(r.status == 0);
    finished = true;
  }
  REQUIRE(finished);
  MESSAGE(kills, " kills (", mid_write, " while a checkpoint was being written), ", resumes, " resumes");
  // The loop really interrupted the run, resumed it, and caught writes in progress.
  CHECK(kills >= 8);
  CHECK(resumes >= 4);
  CHECK(mid_write >= 2);
  CHECK(param_hash(killed) == expected);
  const json summary = json::parse(slurp(killed + "/summary.json"));
  CHECK(summary.at("epochs_done") == 4);
  CHECK(summary.at("finished") == true);
  // The planted temporary and any left by the kills are gone (each resume removes stale ones).
  if (planted) {
    CHECK(temporaries(killed).empty());
    CHECK(temporaries(killed + "/checkpoint").empty());
  }
}
