// Trainers: reproducibility (threads, resume), the NaN guard, run outputs, and that training learns.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/parallel.h"
#include "data/mnist.h"
#include "train/run_files.h"
#include "train/trainer.h"

using namespace advgrad;
namespace fs = std::filesystem;

namespace {

bool have_fashion_mnist() { return fs::exists(default_fashion_mnist_dir() + "/train-images-idx3-ubyte.gz"); }

TrainConfig small_run(const std::string& method) {
  TrainConfig c;
  c.model = "small_cnn", c.method = method, c.eps = 0.1, c.steps = 2;
  c.epochs = 2, c.batch = 64, c.limit = 384, c.val_size = 128, c.test_limit = 128;
  c.lr = 0.05, c.val_pgd_steps = 2, c.final_pgd_steps = 2, c.seed = 5, c.quiet = true;
  return c;
}

std::string temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("advgrad_test_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d.string();
}

}  // namespace

TEST_CASE("a run is bit-identical at 1 and 2 threads") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST not installed; skipped");
    return;
  }
  int saved = num_threads();
  std::string hashes[2];
  for (int t : {1, 2}) {
    TrainConfig c = small_run("pgd");
    c.threads = t;
    hashes[t - 1] = Trainer(c).run().param_sha256;
  }
  set_num_threads(saved);
  CHECK(hashes[0].size() == 64);
  CHECK(hashes[0] == hashes[1]);
}

TEST_CASE("a run stopped after epoch 1 and resumed ends with the same parameters as an uninterrupted run") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST not installed; skipped");
    return;
  }
  for (const std::string method : {"fgsm-rs", "trades", "free"}) {
    TrainConfig whole = small_run(method);
    whole.out = temp_dir("whole_" + method);
    TrainSummary a = Trainer(whole).run();

    TrainConfig part = small_run(method);
    part.out = temp_dir("part_" + method);
    part.stop_after_epochs = 1;
    TrainSummary first = Trainer(part).run();
    CHECK_FALSE(first.finished);
    CHECK(first.epochs_done == 1);
    TrainConfig resume;  // only watch/output settings are taken from here
    resume.quiet = true;
    TrainSummary b = Trainer(resume).run(part.out);
    CHECK(b.finished);
    CHECK_MESSAGE(a.param_sha256 == b.param_sha256, method);
    CHECK(a.pgd_acc == b.pgd_acc);
    fs::remove_all(whole.out);
    fs::remove_all(part.out);
  }
}

TEST_CASE("run outputs: config, metrics per epoch, curves, picture, weights, summary") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST not installed; skipped");
    return;
  }
  TrainConfig c = small_run("pgd");
  c.out = temp_dir("outputs");
  TrainSummary s = Trainer(c).run();
  for (const char* f : {"config.json", "metrics.jsonl", "curves.svg", "adversarial.png", "model.safetensors",
                        "summary.json", "best.safetensors", "checkpoint/trainer.json"})
    CHECK_MESSAGE(fs::exists(c.out + "/" + f), f);
  auto summary = nlohmann::json::parse(read_text(c.out + "/summary.json"));
  for (const char* k : {"clean_acc", "fgsm_acc", "pgd20_acc", "seconds", "param_sha256", "threads", "seed"})
    CHECK_MESSAGE(summary.contains(k), k);
  CHECK(summary["param_sha256"] == s.param_sha256);
  CHECK(summary["clean_acc"].get<double>() >= summary["pgd20_acc"].get<double>());
  std::ifstream metrics(c.out + "/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) {
    EpochMetrics m = metrics_from_json(line, "metrics.jsonl");
    CHECK(m.epoch == ++lines);
  }
  CHECK(lines == 2);
  CHECK(read_text(c.out + "/curves.svg").find("<svg") == 0);
  TrainConfig again = TrainConfig::from_json(read_text(c.out + "/config.json"), "config.json");
  CHECK(again.to_json() == c.to_json());
  fs::remove_all(c.out);
}

TEST_CASE("the NaN/Inf guard stops with the epoch, the step and the parameter") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST not installed; skipped");
    return;
  }
  TrainConfig c = small_run("natural");
  c.lr = 1e30, c.schedule = "constant", c.momentum = 0;
  try {
    Trainer(c).run();
    FAIL("expected TrainingDiverged");
  } catch (const TrainingDiverged& e) {
    std::string m = e.what();
    CHECK(m.find("epoch 1") != std::string::npos);
    CHECK(m.find("step ") != std::string::npos);
    CHECK(m.find("weight") != std::string::npos);
  }
}

TEST_CASE("configs are validated") {
  TrainConfig c;
  c.method = "magic";
  CHECK_THROWS_AS(c.validate(), ValueError);
  c = TrainConfig{};
  c.eps = 2;
  CHECK_THROWS_AS(c.validate(), ValueError);
  c = TrainConfig{};
  c.val_size = 0;  // an empty validation set would score every epoch 0 and keep epoch 1 as "best"
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("val_size"), ValueError);
  CHECK_THROWS_AS(TrainConfig::from_json("{\"model\": 3}", "x.json"), IOError);
  CHECK_THROWS_AS(TrainConfig::from_json("not json", "x.json"), IOError);
}
