// kill -9 at random moments during training, then `--resume`, again and again: the run must end on the same
// parameters (param_sha256) as one that was never interrupted. Kills land in every phase (data loading,
// mid-epoch, while checkpoint temporaries exist, during the final evaluation); stale temporaries of a dead
// writer must be gone after a resume.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdint>

#include "cli_runner.h"
#include "advgrad/data/mnist.h"

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

  // Three kinds of kill, in turn: SIGKILL from here within the first 0.2 s (start-up, data loading); from
  // here at a random time within 0.3 of a run's length; and by the process itself at its k-th atomic write
  // (ADVGRAD_TEST_KILL_AT_WRITE, core/fault.h), after the temporary is complete and before the rename --
  // the moment a kill leaves a temporary behind, hit deterministically. Delays and k come from a fixed
  // sequence; where the timed kills land still depends on the machine's speed.
  const std::string killed = tmp / "killed";
  uint64_t state = 12345;
  auto uniform = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return double(state >> 11) / double(uint64_t(1) << 53);
  };
  int kills[3] = {0, 0, 0}, resumes = 0;
  bool finished = false;
  bool planted = false;
  for (int round = 0; round < 40 && !finished; ++round) {
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
    // After 18 rounds one runs to the end: the loop must finish.
    const bool kill_it = round < 18;
    const int kind = round % 3;
    Limits l = patient();
    double limit = l.seconds;
    if (kill_it && kind == 0) limit = 0.2 * uniform();
    if (kill_it && kind == 1) limit = full_run * (0.05 + 0.25 * uniform());
    // A fresh run writes config.json, best.safetensors, then per epoch model, optimizer state, best weights
    // (when better), trainer.json, metrics.jsonl, curves.svg, and at the end model.safetensors,
    // adversarial.png, summary.json. The first kill at a write is at write 7 (metrics.jsonl, just after
    // epoch 1's trainer.json; a resume with an epoch left also makes 8 writes or more): from then on there is
    // always a checkpoint and every round is a resume. A resume makes at least 3 writes, so k in 1..3
    // always fires.
    if (kill_it && kind == 2) {
      const int k = kills[2] == 0 ? 7 : 1 + int(3 * uniform());
      l.env = {{"ADVGRAD_TEST_KILL_AT_WRITE", std::to_string(k)}};
    }
    Run r = wait_cli(spawn_cli(args, l, logs), limit);
    if (r.timed_out) {
      REQUIRE_MESSAGE(kill_it, "round ", round, " did not finish within ", l.seconds, " s");
      ++kills[kind];
      continue;
    }
    if (kill_it && kind == 2 && r.signal == SIGKILL) {
      // It died at the write, so that write's temporary must be there for the next resume to clean up.
      const size_t left = temporaries(killed, false).size() + temporaries(killed + "/checkpoint", false).size();
      CHECK(left >= 1);
      ++kills[kind];
      continue;
    }
    INFO("round ", round, ": ", r.describe(), " ", r.err);
    REQUIRE(r.exited);
    REQUIRE(r.status == 0);
    finished = true;
  }
  REQUIRE(finished);
  MESSAGE(kills[0], " kills at start-up, ", kills[1], " at a random time, ", kills[2], " at a write; ", resumes,
          " resumes");
  // Rounds 0-5 always kill (start-up; 0.3 of a run on a fresh run; write 7; start-up; 0.3 of a run with 3
  // epochs left; a write), so every kind happened twice and rounds 3-5 and the last one resumed.
  CHECK(kills[0] >= 2);
  CHECK(kills[1] >= 2);
  CHECK(kills[2] >= 2);
  CHECK(resumes >= 4);
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
