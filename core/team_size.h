// How many threads a parallel region asks for when other programs compete for the cores. OpenMP teams
// wait for every member at the end of each region: when one of our threads is descheduled to make room
// for another process, its partner spins and then sleeps, and every region takes as long as the scheduler
// keeps the missing thread away (measured: with one busy loop beside a 2-thread run on 2 cores, PGD ran
// at 0.6x of the same run on 1 thread; docs/PERFORMANCE.md "Under load"). So the team shrinks while the
// calling thread is being kept off its core, and tries one thread more after a backoff (at once when a
// core sits idle): a grow that brings contention back is undone and doubles the backoff (up to 16 s).
//
// Results never depend on the team size (parallel_for cuts work by problem shape), so this changes speed
// only. ADVGRAD_ADAPTIVE_THREADS=0 (or set_thread_adaptation(false)) keeps the team at num_threads().
#pragma once
#include <cstdint>

namespace advgrad {

// What one measurement interval saw, from the thread that entered parallel regions in it.
struct TeamSample {
  double wall_seconds = 0;    // the interval's length
  double thread_cpu = 0;      // CPU seconds the calling thread got in it (CLOCK_THREAD_CPUTIME_ID)
  double idle_cpus = 0;       // machine-wide idle time in it / wall_seconds (/proc/stat; < 0: unknown)
};

// The controller's state between intervals (plain data, so that its rule is a pure function to test).
struct TeamState {
  int cap = 0;                // threads allowed now (0: not started, i.e. the requested count)
  double since_change = 0;    // seconds since cap last changed
  double grow_backoff = 1;    // seconds to wait after a shrink before growing again (doubles when a
                              // grow is undone at once, up to 16 s; back to 1 s once a grow holds)
  bool last_was_grow = false;
  int low_intervals = 0;      // consecutive intervals below kBusyShare
};

// Thresholds: below kBusyShare of the wall time on a CPU, the caller is being descheduled (or sleeps
// while it waits for a descheduled team member); kIdleToGrow idle CPUs machine-wide leave room for one
// more thread at once.
constexpr double kBusyShare = 0.8;
constexpr double kIdleToGrow = 0.7;
// Two low intervals in a row shrink the team: one alone is often a start-up or I/O pause, not contention.
constexpr int kLowIntervalsToShrink = 2;

// The next state after an interval, for a requested team of `requested` threads.
TeamState next_team_state(const TeamState& state, const TeamSample& sample, int requested);

// The team size parallel_for uses now, at most `requested`: measures an interval every ~100 ms on the
// calling thread and applies next_team_state. Cheap between measurements (one coarse clock read).
int adaptive_team_size(int requested);

bool thread_adaptation();                 // on unless ADVGRAD_ADAPTIVE_THREADS=0 or turned off
void set_thread_adaptation(bool enabled);

}  // namespace advgrad
