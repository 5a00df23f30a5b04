// Which compiled copy of the cpu backend runs ("CPU path"), chosen once per process.
//
// A portable x86-64 build (ADVGRAD_NATIVE=OFF, the default) carries three copies of the cpu backend's
// kernels, compiled for AVX-512 (F/VL/BW/DQ), for AVX2+FMA and for the x86-64 baseline (SSE2); the first
// use picks the fastest one this CPU can run, or the one named by the environment variable
// ADVGRAD_CPU_PATH=avx512|avx2|baseline. A -march=native build has the one path "native"; another
// architecture built without it has the one path "baseline".
//
// Determinism is a promise per binary and path: the same path gives bit-identical results at any thread
// count. Two paths agree bit for bit on every op except the matrix products (GEMM, convolutions) and the
// LSTM cell, where AVX2 and AVX-512 use fused multiply-adds and the baseline a multiply and an add
// (docs/ARCHITECTURE.md, "CPU paths").
#pragma once
#include <string>
#include <vector>

namespace advgrad {

enum class CpuPath { Baseline, Avx2, Avx512, Native };

// "baseline", "avx2", "avx512", "native".
const char* cpu_path_name(CpuPath path);
// The name's path; ValueError naming ADVGRAD_CPU_PATH-style choices for anything else.
CpuPath parse_cpu_path(const std::string& name);
// The paths compiled into this binary, fastest first.
std::vector<CpuPath> cpu_paths_built();
// Built into this binary and runnable on this CPU (checked once with the CPU's feature flags).
bool cpu_path_runnable(CpuPath path);
// cpu_paths_built() that are runnable, fastest first (never empty: the baseline always runs).
std::vector<CpuPath> cpu_paths_runnable();
// The path in use: on first call ADVGRAD_CPU_PATH if set (ValueError if unknown or not runnable here),
// else the fastest runnable path.
CpuPath cpu_path();
// Switches the path for every later cpu op (tests, benchmarks); ValueError if it is not runnable here.
// Not to be called while another thread runs cpu ops.
void set_cpu_path(CpuPath path);

}  // namespace advgrad
