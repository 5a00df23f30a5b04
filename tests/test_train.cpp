// Trainers: reproducibility (threads, resume), the NaN guard, run outputs, and that training learns.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "advgrad/core/parallel.h"
#include "advgrad/data/mnist.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/optim.h"
#include "advgrad/nn/serialize.h"
#include "advgrad/train/run_files.h"
#include "advgrad/train/trainer.h"

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

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// The message of the IOError `f` throws ("" and a failed check when it throws none or another type).
template <class F>
std::string io_error_of(F&& f) {
  try {
    f();
  } catch (const IOError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("expected an IOError, got: " << e.what());
    return "";
  }
  FAIL_CHECK("expected an IOError, nothing was thrown");
  return "";
}

// A real checkpoint of a fresh small_cnn and SGD (after one step, so momentum buffers exist), made without
// any dataset: epoch 1 of 2 done.
std::string make_checkpoint(const std::string& name) {
  const std::string dir = temp_dir(name);
  Generator gen(3);
  auto model = make_model("small_cnn", gen);
  SGD opt(model->parameters(), 0.1, 0.9);
  for (auto& p : model->parameters()) p.set_grad(ones_like(p));
  opt.step();
  Checkpoint ck;
  ck.config = small_run("pgd");
  ck.epochs_done = 1, ck.method = "pgd", ck.best_val_pgd = 0.25, ck.co_best_pgd = -1, ck.best_epoch = 1;
  EpochMetrics m;
  m.epoch = 1, m.method = "pgd", m.train_loss = 2.0, m.val_pgd_acc = 0.25, m.lr = 0.01, m.eps = 0.1;
  ck.history = {m};
  const StateDict best = model->state_dict();
  save_checkpoint(dir, ck, *model, opt, &best);
  return dir;
}

// trainer.json of a checkpoint with one top-level field replaced by `value` (JSON text).
void patch_trainer_json(const std::string& dir, const std::string& field, const std::string& value) {
  auto j = nlohmann::json::parse(read_text(dir + "/trainer.json"));
  j[field] = nlohmann::json::parse(value);
  write_text(dir + "/trainer.json", j.dump(2));
}

// Rewrites the safetensors file at `path` with one more F32 tensor `name` of `count` elements after the
// others; its bytes are not written but made a hole by truncate(), so the file claims `count` * 4 bytes
// of data on disk without using them.
void add_sparse_entry(const std::string& path, const std::string& name, uint64_t count) {
  const std::string bytes = read_text(path);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | uint8_t(bytes[size_t(i)]);
  auto header = nlohmann::json::parse(bytes.substr(8, header_len));
  const std::string data = bytes.substr(8 + header_len);
  header[name] = {{"dtype", "F32"}, {"shape", {count}}, {"data_offsets", {data.size(), data.size() + 4 * count}}};
  const std::string text = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char(uint64_t(text.size()) >> (8 * i) & 0xff);
  write_text(path, out + text + data);
  fs::resize_file(path, 8 + text.size() + data.size() + 4 * count);
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
  // config.json records the data directory the run used: here the default one, which c left unnamed.
  TrainConfig again = TrainConfig::from_json(read_text(c.out + "/config.json"), "config.json");
  TrainConfig used = c;
  used.data = default_fashion_mnist_dir();
  CHECK(again.to_json() == used.to_json());
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

TEST_CASE("validate: every number finite and in range, named by its config.json field") {
  struct Case {
    const char* field;
    void (*set)(TrainConfig&);
  };
  const Case cases[] = {
      {"clip_norm", [](TrainConfig& c) { c.clip_norm = std::nan(""); }},  // NaN used to switch clipping off
      {"clip_norm", [](TrainConfig& c) { c.clip_norm = -1; }},
      {"trades_beta", [](TrainConfig& c) { c.trades_beta = std::nan(""); }},
      {"seed", [](TrainConfig& c) { c.seed = uint64_t(-1); }},  // what "--seed -1" used to become
      {"batch", [](TrainConfig& c) { c.batch = INT64_MAX; }},    // overflowed DataLoader::num_batches
      {"lr", [](TrainConfig& c) { c.lr = HUGE_VAL; }},
      {"momentum", [](TrainConfig& c) { c.momentum = 1; }},
      {"weight_decay", [](TrainConfig& c) { c.weight_decay = -1e-4; }},
      {"threads", [](TrainConfig& c) { c.threads = 100000; }},
      {"steps", [](TrainConfig& c) { c.steps = 1 << 30; }},
      {"epochs", [](TrainConfig& c) { c.epochs = 1 << 30; }},
      {"eps_ramp_epochs", [](TrainConfig& c) { c.eps_ramp_epochs = -1; }},
      {"stop_after_epochs", [](TrainConfig& c) { c.stop_after_epochs = -1; }},
      {"adv_fraction", [](TrainConfig& c) { c.adv_fraction = std::nan(""); }},
      {"model", [](TrainConfig& c) { c.model = "no_such_model"; }},
  };
  for (const Case& k : cases) {
    TrainConfig c;
    k.set(c);
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains(k.field), ValueError);
  }
  TrainConfig ok;
  ok.seed = uint64_t(INT64_MAX), ok.clip_norm = 0, ok.threads = kMaxThreads, ok.batch = TrainLimits::max_batch;
  CHECK_NOTHROW(ok.validate());
}

TEST_CASE("config.json: integers are range-checked before narrowing; bad values name the file and field") {
  const std::string good = TrainConfig{}.to_json();
  auto with = [&](const std::string& field, const std::string& value) {
    auto j = nlohmann::json::parse(good);
    j[field] = nlohmann::json::parse(value);
    return j.dump();
  };
  CHECK_NOTHROW(TrainConfig::from_json(good, "run/config.json"));
  const std::pair<const char*, const char*> bad[] = {
      {"epochs", "4294967297"},          // 2^32 + 1 used to be read as 1
      {"steps", "2.5"},                  // used to become 2
      {"batch", "1e3"},                  // a float where an integer belongs
      {"seed", "-1"},                    // used to wrap to 2^64 - 1
      {"seed", "18446744073709551615"},  // > 2^63 - 1
      {"limit", "-5"},
      {"eps", "\"0.1\""},
      {"clip_norm", "-1"},
      {"threads", "100000"},
      {"val_size", "null"},
      {"co_detect", "1"},
  };
  for (const auto& [field, value] : bad) {
    const std::string f = field, v = value;  // named copies: doctest's INFO cannot capture bindings in C++17
    INFO(f, " = ", v);
    const std::string msg = io_error_of([&] { TrainConfig::from_json(with(f, v), "run/config.json"); });
    CHECK(msg.find("run/config.json") != std::string::npos);
    CHECK(msg.find(f) != std::string::npos);
  }
  auto missing = nlohmann::json::parse(good);
  missing.erase("epochs");
  CHECK(io_error_of([&] { TrainConfig::from_json(missing.dump(), "c.json"); }).find("'epochs'") != std::string::npos);
  CHECK_THROWS_AS(TrainConfig::from_json("{\"model\": 3}", "x.json"), IOError);
  CHECK_THROWS_AS(TrainConfig::from_json("{\"epochs\": 1e400}", "x.json"), IOError);  // not JSON
}

TEST_CASE("metrics lines: out-of-range, non-integer and NaN-ish values name the file and field") {
  EpochMetrics m;
  m.epoch = 3, m.method = "pgd", m.train_loss = 0.5, m.val_pgd_acc = 0.4, m.lr = 0.01, m.eps = 0.1;
  const std::string line = metrics_json(m);
  const EpochMetrics back = metrics_from_json(line, "metrics.jsonl");
  CHECK(back.epoch == 3);
  CHECK(back.train_loss == 0.5);
  const std::pair<const char*, const char*> bad[] = {
      {"epoch", "4294967299"}, {"epoch", "0"},          {"epoch", "1.5"},        {"val_pgd_acc", "2"},
      {"train_loss", "null"},  {"train_loss", "-1"},    {"lr", "\"fast\""},      {"method", "\"magic\""},
      {"seconds", "-3"},       {"train_clean_acc", "true"},
  };
  for (const auto& [field, value] : bad) {
    const std::string f = field, v = value;
    INFO(f, " = ", v);
    auto j = nlohmann::json::parse(line);
    j[f] = nlohmann::json::parse(v);
    const std::string msg = io_error_of([&] { metrics_from_json(j.dump(), "run/metrics.jsonl"); });
    CHECK(msg.find("run/metrics.jsonl") != std::string::npos);
    CHECK(msg.find(f) != std::string::npos);
  }
}

TEST_CASE("trainer.json: epochs_done and the other fields are checked, naming the file") {
  {
    const std::string dir = make_checkpoint("ck_good");
    Checkpoint ck = load_checkpoint(dir, nullptr, nullptr);
    CHECK(ck.epochs_done == 1);
    CHECK(ck.best_epoch == 1);
    fs::remove_all(dir);
  }
  const std::pair<const char*, const char*> bad[] = {
      {"epochs_done", "4294967297"},  // 2^32 + 1 used to resume at epoch 1
      {"epochs_done", "-1"},
      {"epochs_done", "3"},  // more than the config's 2 epochs
      {"epochs_done", "1.0"},
      {"best_val_pgd", "7"},
      {"co_best_pgd", "\"high\""},
      {"method", "\"magic\""},
      {"model_file", "\"../../etc/passwd\""},  // tensor files must sit in the checkpoint directory
      {"optimizer_file", "\"/tmp/x.safetensors\""},
      {"history", "[]"},  // one entry per finished epoch
      {"best_epoch", "2"},
      {"config", "{\"epochs\": 2}"},
  };
  for (const auto& [field, value] : bad) {
    const std::string f = field, v = value;
    INFO(f, " = ", v);
    const std::string dir = make_checkpoint("ck_bad");
    patch_trainer_json(dir, f, v);
    Generator gen(0);
    auto model = make_model("small_cnn", gen);
    SGD opt(model->parameters(), 0.1, 0.9);
    const std::string msg = io_error_of([&] { load_checkpoint(dir, model.get(), &opt); });
    CHECK(msg.find(dir + "/trainer.json") != std::string::npos);
    CHECK(msg.find(f == "config" ? "missing field" : f) != std::string::npos);
    fs::remove_all(dir);
  }
}

TEST_CASE("checkpoint: a bad model, optimizer or best-weights file is an IOError naming that file") {
  Generator gen(1);
  const StateDict lstm = make_model("lstm", gen)->state_dict();
  for (const std::string file : {"model-e1.safetensors", "optimizer-e1.safetensors", "best-e1.safetensors"}) {
    INFO(file);
    const std::string dir = make_checkpoint("ck_files");
    save_safetensors(dir + "/" + file, lstm);  // a valid file with the wrong tensors
    auto model = make_model("small_cnn", gen);
    SGD opt(model->parameters(), 0.1, 0.9);
    StateDict best;
    const std::string msg = io_error_of([&] { load_checkpoint(dir, model.get(), &opt, &best); });
    CHECK(msg.find(dir + "/" + file) != std::string::npos);
    fs::remove_all(dir);
  }
  const std::string dir = make_checkpoint("ck_truncated");
  write_text(dir + "/model-e1.safetensors", "\x10\0\0\0");
  auto model = make_model("small_cnn", gen);
  CHECK(io_error_of([&] { load_checkpoint(dir, model.get(), nullptr); }).find("model-e1.safetensors") != std::string::npos);
  write_text(dir + "/trainer.json", "{\"format\": ");
  CHECK(io_error_of([&] { load_checkpoint(dir, nullptr, nullptr); }).find(dir + "/trainer.json") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("checkpoint: an optimizer or best-weights file naming an extra 3.9 GiB tensor is refused from its header") {
  // They used to be read whole by load_safetensors (up to 4 GiB) before the extra entry was noticed.
  const uint64_t count = (uint64_t(39) << 30) / 40;  // 3.9 GiB of F32
  for (const std::string file : {"optimizer-e1.safetensors", "best-e1.safetensors"}) {
    for (const std::string key : {"extra", "0.momentum_buffer_2"}) {
      INFO(file, " ", key);
      const std::string dir = make_checkpoint("ck_sparse");
      add_sparse_entry(dir + "/" + file, key, count);
      REQUIRE(fs::file_size(dir + "/" + file) > count * 4);
      Generator gen(1);
      auto model = make_model("small_cnn", gen);
      SGD opt(model->parameters(), 0.1, 0.9);
      StateDict best;
      const auto start = std::chrono::steady_clock::now();
      const std::string msg = io_error_of([&] { load_checkpoint(dir, model.get(), &opt, &best); });
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      INFO(msg);
      CHECK(msg.find(dir + "/" + file) != std::string::npos);
      CHECK(msg.find("'" + key + "'") != std::string::npos);
      CHECK(seconds < 1.0);
      CHECK(best.empty());
      fs::remove_all(dir);
    }
  }
  // The unchanged checkpoint still loads, best weights included.
  const std::string dir = make_checkpoint("ck_sparse_ok");
  Generator gen(1);
  auto model = make_model("small_cnn", gen);
  SGD opt(model->parameters(), 0.1, 0.9);
  StateDict best;
  load_checkpoint(dir, model.get(), &opt, &best);
  CHECK(opt.state().size() == model->parameters().size() + 1);
  CHECK(best.size() == model->state_dict().size());
  fs::remove_all(dir);
}

TEST_CASE("catastrophic overfitting: the note says the best weights were restored only when they were") {
  Generator gen(4);
  auto model = make_model("small_cnn", gen);
  const StateDict before = model->state_dict();
  std::vector<std::vector<double>> original;
  for (const auto& kv : before) original.push_back(kv.second.to_vector<double>());
  // No best weights (resumed from a checkpoint that kept none): nothing may change, and the note says so.
  const std::string none = restore_best_weights(*model, StateDict{});
  INFO(none);
  CHECK(none.find("could not be restored") != std::string::npos);
  CHECK(none.find("restored the best weights") == std::string::npos);
  size_t i = 0;
  for (const auto& kv : model->state_dict()) CHECK(kv.second.to_vector<double>() == original[i++]);
  // With best weights (another initialisation): they are loaded.
  Generator other(9);
  const StateDict best = make_model("small_cnn", other)->state_dict();
  CHECK(restore_best_weights(*model, best) == "restored the best weights");
  for (const auto& kv : model->state_dict()) {
    const std::string k = kv.first;
    INFO(k);
    CHECK(kv.second.to_vector<double>() == best.at(k).to_vector<double>());
  }
}

TEST_CASE("resume: a run killed before its first checkpoint says so instead of 'no such file'") {
  const std::string dir = temp_dir("no_epoch");
  fs::create_directories(dir);
  write_text(dir + "/config.json", small_run("pgd").to_json());
  TrainConfig resume;
  resume.quiet = true;
  const std::string msg = io_error_of([&] { Trainer(resume).run(dir); });
  CHECK(msg.find("no epoch finished") != std::string::npos);
  CHECK(msg.find("start the run again") != std::string::npos);
  CHECK(io_error_of([&] { Trainer(resume).run(dir + "/nowhere"); }).find("no such run directory") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("the guard also checks parameters after each optimizer step") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST not installed; skipped");
    return;
  }
  // A finite gradient times an LR beyond float's range: the weights become Inf in the first step, which
  // the gradient check alone would only notice one step later (and blame on the gradient).
  TrainConfig c = small_run("natural");
  c.lr = 1e300, c.schedule = "constant", c.momentum = 0;
  try {
    Trainer(c).run();
    FAIL("expected TrainingDiverged");
  } catch (const TrainingDiverged& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("epoch 1, step 1:") != std::string::npos);
    CHECK(m.find("after the optimizer step") != std::string::npos);
    CHECK(m.find("parameter '") != std::string::npos);
  }
}

TEST_CASE("resume: stale temporaries are removed, a live process's are kept; the best weights come back") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST not installed; skipped");
    return;
  }
  TrainConfig part = small_run("natural");
  part.out = temp_dir("temporaries");
  part.stop_after_epochs = 1;
  Trainer(part).run();
  // A pid that no longer runs: a child that has exited and been reaped.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = std::to_string(child), live = std::to_string(::getppid());
  const std::vector<std::string> stale = {part.out + "/metrics.jsonl.tmp." + dead + ".0",
                                          part.out + "/checkpoint/model-e2.safetensors.tmp." + dead + ".7",
                                          part.out + "/checkpoint/trainer.json.tmp." + std::to_string(::getpid()) + ".3"};
  const std::string in_flight = part.out + "/checkpoint/trainer.json.tmp." + live + ".1";
  const std::string not_ours = part.out + "/notes.tmp.x.1";
  for (const auto& f : stale) write_text(f, "partial");
  write_text(in_flight, "partial");
  write_text(not_ours, "kept");
  // No later epoch may replace the best weights, so the resumed trainer must hold epoch 1's.
  patch_trainer_json(part.out + "/checkpoint", "best_val_pgd", "1.0");
  const StateDict best1 = load_safetensors(part.out + "/best.safetensors").tensors;

  TrainConfig resume;
  resume.quiet = true;
  Trainer t(resume);
  TrainSummary s = t.run(part.out);
  CHECK(s.finished);
  for (const auto& f : stale) CHECK_MESSAGE(!fs::exists(f), f);
  CHECK(fs::exists(in_flight));
  CHECK(fs::exists(not_ours));
  REQUIRE(t.best_weights().size() == best1.size());
  for (const auto& [key, tensor] : best1) {
    const std::string k = key;
    INFO(k);
    REQUIRE(t.best_weights().count(k) == 1);
    CHECK(t.best_weights().at(k).to_vector<double>() == tensor.to_vector<double>());
  }
  fs::remove_all(part.out);
}

TEST_CASE("make_training's objects in a Trainer run exactly as Trainer(TrainConfig)") {
  if (!have_fashion_mnist()) {
    MESSAGE("Fashion-MNIST not installed; skipped");
    return;
  }
  const TrainConfig c = small_run("trades");
  const TrainSummary from_config = Trainer(c).run();
  Trainer from_objects(make_training(c));
  const TrainSummary s = from_objects.run();
  CHECK(s.param_sha256 == from_config.param_sha256);
  CHECK(s.pgd_acc == from_config.pgd_acc);
  // make_training's parts carry their recipe, so config.json and checkpoints record it whole (steps,
  // beta, lr, ...), not only what TrainerOptions know.
  TrainConfig used = c;
  used.data = default_fashion_mnist_dir();  // recorded as the directory found
  CHECK(from_objects.config().to_json() == used.to_json());
  TrainingParts by_hand = make_training(c);
  by_hand.recipe.reset();  // parts assembled by hand: the files record the options' part only
  Trainer hand_made(std::move(by_hand));
  CHECK(hand_made.config().model.empty());  // it does not know a zoo name
  CHECK(hand_made.config().eps == c.eps);
  TrainConfig no_model = c;
  no_model.model = "";
  CHECK_THROWS_WITH_AS(make_training(no_model), doctest::Contains("'model'"), ValueError);
}

// ---------------------------------------------------------------- progress, run names, curves (#16)

TEST_CASE("run_eta_seconds: the rest of the epoch, then the remaining epochs of this invocation") {
  // No epoch finished yet: 10 s for a quarter of the epoch promises 30 s more and 40 s per later epoch.
  CHECK(run_eta_seconds(10, 0.25, 0, 0, 2) == doctest::Approx(30 + 2 * 40));
  // After finished epochs of 50 s (5 s of them validation): the rest of this one's steps at its own
  // rate, its validation, then 3 epochs of 50 s.
  CHECK(run_eta_seconds(10, 0.5, 50, 5, 3) == doctest::Approx(10 + 5 + 3 * 50));
  // The last step of the last epoch: nothing left to train.
  CHECK(run_eta_seconds(20, 1.0, 0, 0, 0) == doctest::Approx(0));
  CHECK(run_eta_seconds(20, 1.0, 50, 5, -1) == doctest::Approx(5));  // never a negative epoch count
}

TEST_CASE("eps_text: short decimals as they are, multiples of 1/255 as fractions") {
  CHECK(eps_text(0.1) == "0.1");
  CHECK(eps_text(0.5) == "0.5");
  CHECK(eps_text(0.2) == "0.2");  // 51/255, but it has a short decimal form
  CHECK(eps_text(0.0314) == "0.0314");
  CHECK(eps_text(8.0 / 255) == "8/255");
  CHECK(eps_text(2.0 / 255) == "2/255");
  CHECK(eps_text(0) == "0");
  CHECK(eps_text(0.123456789) == "0.123457");  // neither short nor a multiple of 1/255: %g
}

TEST_CASE("run directories without --out: <model>-<method>-<local time>, then -2, -3 when taken") {
  const char* tz = std::getenv("TZ");
  const std::string saved = tz ? tz : "";
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  const std::time_t t = std::time_t(365) * 86400 + 3600 + 60 + 1;  // 1971-01-01 01:01:01 UTC
  CHECK(default_run_name("small_cnn", "pgd", t) == "small_cnn-pgd-19710101-010101");
  CHECK(default_run_name("models/my net.onnx", "trades", t) == "my_net-trades-19710101-010101");
  if (tz) ::setenv("TZ", saved.c_str(), 1);
  else ::unsetenv("TZ");
  ::tzset();

  const std::string parent = temp_dir("run_names") + "/runs";  // created by the first call
  CHECK(create_new_run_directory(parent, "x") == parent + "/x");
  CHECK(create_new_run_directory(parent, "x") == parent + "/x-2");
  write_text(parent + "/x-3", "a file, not a run directory");
  CHECK(create_new_run_directory(parent, "x") == parent + "/x-4");
  CHECK(fs::is_directory(parent + "/x-4"));
  CHECK(fs::is_regular_file(parent + "/x-3"));  // left alone
  fs::remove_all(fs::path(parent).parent_path());
}

TEST_CASE("metrics lines: step_losses round-trip, and bad ones name the field") {
  EpochMetrics m;
  m.epoch = 1, m.method = "pgd", m.train_loss = 1.5, m.step_losses = {2.25f, 1.0f, 0.5f};
  const EpochMetrics back = metrics_from_json(metrics_json(m), "metrics.jsonl");
  CHECK(back.step_losses == m.step_losses);
  EpochMetrics none = m;
  none.step_losses.clear();
  CHECK(metrics_json(none).find("step_losses") == std::string::npos);  // older readers see what they knew
  auto with = [&](const std::string& value) {
    auto j = nlohmann::json::parse(metrics_json(m));
    j["step_losses"] = nlohmann::json::parse(value);
    return j.dump();
  };
  for (const char* bad : {"\"x\"", "[1, -1]", "[1, \"2\"]", "[1e300]", "{}"}) {
    INFO(bad);
    CHECK(io_error_of([&] { metrics_from_json(with(bad), "m.jsonl"); }).find("'step_losses'") != std::string::npos);
  }
}

TEST_CASE("curves.svg: axis names, and the per-step loss for runs of at most 3 epochs") {
  auto epoch = [](int e, std::vector<float> steps) {
    EpochMetrics m;
    m.epoch = e, m.method = "pgd", m.train_loss = 1.0, m.val_clean_acc = 0.5, m.val_pgd_acc = 0.25;
    m.step_losses = std::move(steps);
    return m;
  };
  const std::string one = curves_svg({epoch(1, {3.0f, 2.0f, 1.5f})}, "small_cnn pgd eps 0.1");
  for (const char* text : {">epoch</text>", ">loss</text>", ">accuracy</text>", ">small_cnn pgd eps 0.1</text>"}) {
    INFO(text);
    CHECK(one.find(text) != std::string::npos);
  }
  const size_t at = one.find("class=\"step-loss\"");
  REQUIRE(at != std::string::npos);
  const size_t from = one.find("points=\"", at) + 8;
  const std::string points = one.substr(from, one.find('"', from) - from);
  CHECK(std::count(points.begin(), points.end(), ',') == 3);
  // The loss axis reaches the highest step loss (3), not only the epoch mean (1): its top label says 3.
  CHECK(one.find("text-anchor=\"end\">3.00</text>") != std::string::npos);
  std::vector<EpochMetrics> four;
  for (int e = 1; e <= 4; ++e) four.push_back(epoch(e, {1.0f, 1.0f}));
  CHECK(curves_svg(four, "t").find("step-loss") == std::string::npos);
  CHECK(curves_svg({epoch(1, {})}, "t").find("step-loss") == std::string::npos);  // metrics from before
  CHECK(curves_svg({epoch(1, {1.0f})}, "a <b> & c").find(">a &lt;b&gt; &amp; c<") != std::string::npos);
}
