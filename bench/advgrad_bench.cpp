// advgrad-bench: the 12 performance workloads (bench/REFERENCE.md), one JSON line each, in the schema of
// the PyTorch peer (bench/peer/torch_bench.py, the same workloads) so both can be compared side by side:
//   {"impl": "advgrad-<version>", "threads": T, "model": ..., "workload": ..., "batch": B,
//    "sec_per_batch": s, "samples_per_s": r}
// Each workload runs once to warm up, then --iters times; the mean time is reported.
//
//   advgrad-bench [--threads T] [--iters N] [--batch B] [--only WORKLOAD|MODEL|MODEL/WORKLOAD] [--cpu-time]
// --cpu-time reports process CPU time instead of wall-clock time: for A/B comparisons of single-thread runs on
// a machine shared with other jobs (descheduled time is not counted). The published figures use wall time.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "advgrad/advgrad.h"
#include "advgrad/attacks/attack.h"
#include "advgrad/nn/models.h"
#include "advgrad/nn/optim.h"
#ifdef ADVGRAD_BENCH_SMALL_CNN_ONNX
#include "advgrad/onnx/load_onnx.h"
#endif

using namespace advgrad;

namespace {

struct Options {
  int threads = 2, iters = 5;
  int64_t batch = 128;
  std::string only;
  bool cpu_time = false;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "advgrad-bench: %s\nusage: advgrad-bench [--threads T] [--iters N] [--batch B] "
                       "[--only WORKLOAD|MODEL|MODEL/WORKLOAD] [--cpu-time]\n", msg);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    auto number = [&](long lo) {
      std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < lo) usage(("bad value for " + a + ": " + v).c_str());
      return n;
    };
    if (a == "--threads") o.threads = int(number(1));
    else if (a == "--iters") o.iters = int(number(1));
    else if (a == "--batch") o.batch = number(1);
    else if (a == "--only") o.only = value();
    else if (a == "--cpu-time") o.cpu_time = true;
    else if (a == "-h" || a == "--help") usage("the benchmark workloads as JSON lines (bench/REFERENCE.md)");
    else usage(("unknown argument " + a).c_str());
  }
  return o;
}

bool selected(const Options& o, const std::string& model, const std::string& workload) {
  return o.only.empty() || o.only == workload || o.only == model || o.only == model + "/" + workload;
}

double now(bool cpu_time) {
  if (cpu_time) return double(std::clock()) / CLOCKS_PER_SEC;
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double seconds_per_call(const std::function<void()>& fn, int iters, bool cpu_time) {
  fn();  // warm-up: first-touch allocations, block cache, lazily created optimizer state
  const double t0 = now(cpu_time);
  for (int i = 0; i < iters; ++i) fn();
  return (now(cpu_time) - t0) / iters;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    set_num_threads(o.threads);  // ValueError for a count out of range
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  const int64_t B = o.batch;
  Generator data_gen(0);
  const Tensor x = rand({B, 1, 28, 28}, data_gen);
  const Tensor y = randint(0, 10, {B}, data_gen);

  AttackOptions pgd10;
  pgd10.eps = 0.1, pgd10.step_size = 0.01, pgd10.steps = 10, pgd10.random_start = true;
  pgd10.skip_misclassified = false;
  AttackOptions pgd7 = pgd10;
  pgd7.step_size = 0.025, pgd7.steps = 7;
  auto attack10 = make_attack("pgd", pgd10), attack7 = make_attack("pgd", pgd7);

  // small_cnn_onnx: the zoo's small_cnn as PyTorch exports it to ONNX (tests/data/golden/onnx/small_cnn.onnx),
  // imported and given the zoo model's initial weights by name: the same kernels, run through OnnxModel's
  // graph interpreter, so its rate against small_cnn is the cost of importing (docs/PERFORMANCE.md).
  std::vector<const char*> models = {"small_cnn", "madry_cnn", "lstm"};
#ifdef ADVGRAD_BENCH_SMALL_CNN_ONNX
  models.push_back("small_cnn_onnx");
#endif
  for (const char* name : models) {
    bool any = false;
    for (const char* w : {"infer", "train_step", "pgd10_attack", "pgd7_at_step"}) any = any || selected(o, name, w);
    if (!any) continue;
    Generator init_gen(1);
    std::shared_ptr<Module> model;
#ifdef ADVGRAD_BENCH_SMALL_CNN_ONNX
    if (std::string(name) == "small_cnn_onnx") {
      model = load_onnx(ADVGRAD_BENCH_SMALL_CNN_ONNX);
      model->load_state_dict(make_model("small_cnn", init_gen)->state_dict());
    }
#endif
    if (!model) model = make_model(name, init_gen);
    SGD opt(model->parameters(), 0.01, 0.9);
    auto train_step = [&](const Tensor& xb) {
      model->train();
      opt.zero_grad();
      backward(cross_entropy(model->forward(xb), y));
      opt.step();
    };
    uint64_t stream = 0;  // a fresh random start per attack call, as the peer's torch.rand_like
    const std::pair<const char*, std::function<void()>> workloads[] = {
        {"infer", [&] { NoGradGuard ng; model->eval(); model->forward(x); }},
        {"train_step", [&] { train_step(x); }},
        {"pgd10_attack", [&] { attack10->perturb(*model, x, y, stream++); }},
        {"pgd7_at_step", [&] { train_step(attack7->perturb(*model, x, y, stream++)); }},
    };
    for (const auto& [workload, fn] : workloads) {
      if (!selected(o, name, workload)) continue;
      const double s = seconds_per_call(fn, o.iters, o.cpu_time);
      std::printf("{\"impl\": \"advgrad-%s\", \"threads\": %d, \"model\": \"%s\", \"workload\": \"%s\", "
                  "\"batch\": %lld, \"sec_per_batch\": %.5f, \"samples_per_s\": %.1f}\n",
                  ADVGRAD_VERSION, o.threads, name, workload, static_cast<long long>(B), s, double(B) / s);
      std::fflush(stdout);
    }
  }
  return 0;
}
