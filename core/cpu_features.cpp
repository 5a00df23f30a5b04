// CPU path selection: the built paths come from isa.cmake (ADVGRAD_CPU_MULTI_ISA: three x86-64 copies;
// ADVGRAD_CPU_NATIVE: one -march=native copy; neither: one baseline copy), the CPU's abilities from
// __builtin_cpu_supports, asked once.
#include "advgrad/core/cpu_features.h"

// Three copies only where isa.cmake built them, and only on x86-64 (any other target has one copy).
#if defined(ADVGRAD_CPU_MULTI_ISA) && defined(__x86_64__)
#define ADVGRAD_CPU_DISPATCH 1
#endif

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "advgrad/core/error.h"

namespace advgrad {
namespace {

// Every path the CPU must support to run it; the baseline needs nothing beyond x86-64 itself.
bool cpu_has(CpuPath path) {
#if defined(ADVGRAD_CPU_DISPATCH)
  __builtin_cpu_init();
  switch (path) {
    case CpuPath::Avx512:  // what isa.cmake compiles that copy with
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuPath::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuPath::Baseline: return true;
    case CpuPath::Native: return false;
  }
  return false;
#else
  (void)path;
  return true;  // the one built path is the one this binary was compiled to run
#endif
}

std::string joined(const std::vector<CpuPath>& paths) {
  std::string s;
  for (CpuPath p : paths) s += (s.empty() ? "" : ", ") + std::string(cpu_path_name(p));
  return s;
}

std::atomic<int> active{-1};  // the CpuPath in use, -1 until chosen
std::once_flag chosen;

bool built(CpuPath path) {
  for (CpuPath p : cpu_paths_built())
    if (p == path) return true;
  return false;
}

// What each path needs, for the error when it is missing.
const char* needs(CpuPath path) {
  switch (path) {
    case CpuPath::Avx512: return "AVX-512 F/VL/BW/DQ";
    case CpuPath::Avx2: return "AVX2 and FMA";
    default: return "x86-64";
  }
}

void check_runnable(CpuPath path, const std::string& what) {
  if (!built(path))
    throw ValueError(what + ": this binary has no " + cpu_path_name(path) + " path (built: " +
                     joined(cpu_paths_built()) + ")");
  if (!cpu_has(path))
    throw ValueError(what + ": this CPU lacks " + needs(path) + " for the " + cpu_path_name(path) +
                     " path (runnable here: " + joined(cpu_paths_runnable()) + ")");
}

void choose() {
  const char* env = std::getenv("ADVGRAD_CPU_PATH");
  if (env && *env) {
    const std::string what = std::string("ADVGRAD_CPU_PATH=") + env;
    CpuPath path;
    try {
      path = parse_cpu_path(env);
    } catch (const ValueError& e) {
      throw ValueError("ADVGRAD_CPU_PATH: " + std::string(e.what()));
    }
    check_runnable(path, what);
    active = int(path);
  } else {
    active = int(cpu_paths_runnable().front());
  }
}

}  // namespace

const char* cpu_path_name(CpuPath path) {
  switch (path) {
    case CpuPath::Baseline: return "baseline";
    case CpuPath::Avx2: return "avx2";
    case CpuPath::Avx512: return "avx512";
    case CpuPath::Native: return "native";
  }
  return "?";
}

CpuPath parse_cpu_path(const std::string& name) {
  for (CpuPath p : {CpuPath::Baseline, CpuPath::Avx2, CpuPath::Avx512, CpuPath::Native})
    if (name == cpu_path_name(p)) return p;
  throw ValueError("unknown CPU path '" + name + "' (expected one of: " + joined(cpu_paths_built()) + ")");
}

std::vector<CpuPath> cpu_paths_built() {
#if defined(ADVGRAD_CPU_DISPATCH)
  return {CpuPath::Avx512, CpuPath::Avx2, CpuPath::Baseline};
#elif defined(ADVGRAD_CPU_NATIVE)
  return {CpuPath::Native};
#else
  return {CpuPath::Baseline};
#endif
}

bool cpu_path_runnable(CpuPath path) { return built(path) && cpu_has(path); }

std::vector<CpuPath> cpu_paths_runnable() {
  std::vector<CpuPath> out;
  for (CpuPath p : cpu_paths_built())
    if (cpu_has(p)) out.push_back(p);
  return out;
}

CpuPath cpu_path() {
  const int p = active.load(std::memory_order_acquire);
  if (p >= 0) return CpuPath(p);
  std::call_once(chosen, choose);  // an exception leaves it unchosen: the next call reports it again
  return CpuPath(active.load(std::memory_order_acquire));
}

void set_cpu_path(CpuPath path) {
  check_runnable(path, std::string("set_cpu_path(") + cpu_path_name(path) + ")");
  std::call_once(chosen, [] {});  // an explicit choice overrides the environment from here on
  active = int(path);
}

}  // namespace advgrad
