#include "advgrad/core/team_size.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#if defined(__linux__)
#include <time.h>
#include <unistd.h>
#define ADVGRAD_TEAM_ADAPTATION 1
#endif

namespace advgrad {

TeamState next_team_state(const TeamState& state, const TeamSample& sample, int requested) {
  TeamState s = state;
  int cap = s.cap > 0 ? std::min(s.cap, requested) : requested;
  s.since_change += sample.wall_seconds;
  const double share = sample.wall_seconds > 0 ? sample.thread_cpu / sample.wall_seconds : 1.0;
  s.low_intervals = share < kBusyShare ? s.low_intervals + 1 : 0;
  if (s.low_intervals >= kLowIntervalsToShrink && cap > 1) {
    // Kept off the CPU: one thread fewer. A grow undone this quickly was a mistake: wait longer next time.
    if (s.last_was_grow && s.since_change < 1.0) s.grow_backoff = std::min(16.0, 2 * s.grow_backoff);
    cap -= 1;
    s.since_change = 0, s.last_was_grow = false, s.low_intervals = 0;
  } else if (cap < requested && s.since_change >= (sample.idle_cpus >= kIdleToGrow ? std::min(1.0, s.grow_backoff)
                                                                                    : s.grow_backoff)) {
    // Try one thread more: soon when a core sits idle, otherwise after the backoff (the competitor may be
    // a low-priority job that the scheduler makes room for; idle time cannot show that).
    cap += 1;
    s.since_change = 0, s.last_was_grow = true;
  } else if (s.last_was_grow && s.since_change >= 5.0) {
    s.grow_backoff = 1;  // the last grow held
  }
  s.cap = cap;
  return s;
}

namespace {

std::atomic<int> g_enabled{-1};  // -1: not read from the environment yet
std::atomic<int> g_cap{0};       // 0: no limit yet

#ifdef ADVGRAD_TEAM_ADAPTATION
std::atomic<int64_t> g_next_check_ns{0};
constexpr int64_t kIntervalNs = 100'000'000;  // one measurement per 100 ms
constexpr int64_t kGapNs = 1'000'000'000;     // a longer gap between regions starts a new measurement

int64_t ns_of(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// Idle + iowait ticks of all CPUs (the first line of /proc/stat), or -1.
int64_t idle_ticks() {
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return -1;
  unsigned long long user, nice, sys, idle, iowait;
  const int got = std::fscanf(f, "cpu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait);
  std::fclose(f);
  return got == 5 ? int64_t(idle + iowait) : -1;
}

struct Measurement {
  std::mutex mutex;
  TeamState state;
  std::thread::id owner;  // the thread whose CPU time the interval measures
  int64_t wall_ns = 0, cpu_ns = 0, idle = -1;
};
Measurement g_measurement;

void measure(int requested, int64_t now) {
  std::unique_lock<std::mutex> lock(g_measurement.mutex, std::try_to_lock);
  if (!lock.owns_lock()) return;  // another thread is measuring
  Measurement& m = g_measurement;
  const int64_t cpu = ns_of(CLOCK_THREAD_CPUTIME_ID), idle = idle_ticks();
  const bool same_run = m.owner == std::this_thread::get_id() && m.wall_ns > 0 && now - m.wall_ns < kGapNs;
  if (same_run) {
    static const double ticks_per_second = double(sysconf(_SC_CLK_TCK));
    TeamSample s;
    s.wall_seconds = double(now - m.wall_ns) * 1e-9;
    s.thread_cpu = double(cpu - m.cpu_ns) * 1e-9;
    s.idle_cpus = idle >= 0 && m.idle >= 0 && ticks_per_second > 0
                      ? double(idle - m.idle) / ticks_per_second / s.wall_seconds : -1;
    m.state = next_team_state(m.state, s, requested);
    g_cap.store(m.state.cap, std::memory_order_relaxed);
  }
  m.owner = std::this_thread::get_id();
  m.wall_ns = now, m.cpu_ns = cpu, m.idle = idle;
  g_next_check_ns.store(now + kIntervalNs, std::memory_order_relaxed);
}
#endif

}  // namespace

bool thread_adaptation() {
  int e = g_enabled.load(std::memory_order_relaxed);
  if (e < 0) {
    const char* env = std::getenv("ADVGRAD_ADAPTIVE_THREADS");
    e = (env && std::strcmp(env, "0") == 0) ? 0 : 1;
    g_enabled.store(e, std::memory_order_relaxed);
  }
  return e == 1;
}

void set_thread_adaptation(bool enabled) {
#ifdef ADVGRAD_TEAM_ADAPTATION
  std::lock_guard<std::mutex> lock(g_measurement.mutex);  // a measurement in flight must not bring back its cap
  g_measurement.state = TeamState{};
  g_measurement.owner = std::thread::id();
  g_measurement.wall_ns = 0;
  g_next_check_ns.store(0, std::memory_order_relaxed);
#endif
  g_enabled.store(enabled ? 1 : 0, std::memory_order_relaxed);
  g_cap.store(0, std::memory_order_relaxed);
}

int adaptive_team_size(int requested) {
  if (requested <= 1 || !thread_adaptation()) return requested;
#ifdef ADVGRAD_TEAM_ADAPTATION
  const int64_t now = ns_of(CLOCK_MONOTONIC_COARSE);
  if (now >= g_next_check_ns.load(std::memory_order_relaxed)) measure(requested, now);
#endif
  const int cap = g_cap.load(std::memory_order_relaxed);
  return cap > 0 ? std::min(cap, requested) : requested;
}

}  // namespace advgrad
