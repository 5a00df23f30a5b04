// The team-size controller (core/team_size.h): its rule on hand-made intervals, and that parallel_for's
// results do not depend on it.
#include <doctest/doctest.h>

#include <vector>

#include "advgrad/core/parallel.h"
#include "advgrad/core/team_size.h"

using namespace advgrad;

namespace {
TeamSample interval(double cpu_share, double idle_cpus, double seconds = 0.1) {
  TeamSample s;
  s.wall_seconds = seconds, s.thread_cpu = cpu_share * seconds, s.idle_cpus = idle_cpus;
  return s;
}
}  // namespace

TEST_CASE("a caller kept off its CPU for two intervals in a row loses one thread, down to one") {
  TeamState s;  // not started: the requested 4
  s = next_team_state(s, interval(0.6, 0.0), 4);
  CHECK(s.cap == 4);  // one low interval alone (a start-up or I/O pause) changes nothing
  s = next_team_state(s, interval(0.95, 0.0), 4);
  s = next_team_state(s, interval(0.6, 0.0), 4);
  CHECK(s.cap == 4);
  s = next_team_state(s, interval(0.6, 0.0), 4);
  CHECK(s.cap == 3);
  for (int i = 0; i < 4; ++i) s = next_team_state(s, interval(0.6, 0.0), 4);
  CHECK(s.cap == 1);
  for (int i = 0; i < 4; ++i) s = next_team_state(s, interval(0.5, 0.0), 4);
  CHECK(s.cap == 1);  // never below one
}

TEST_CASE("a busy caller keeps its team") {
  TeamState s;
  for (int i = 0; i < 50; ++i) s = next_team_state(s, interval(0.97, 0.1), 2);
  CHECK(s.cap == 2);
}

TEST_CASE("beside an equal competitor, grows are tried less and less often (backoff up to 16 s)") {
  const double dt = 0.125;
  TeamState s;
  s.cap = 1;
  double tried_at[8];
  int tries = 0;
  double t = 0;
  while (tries < 8 && t < 200) {
    // at one thread the caller has its core (share 1.0, nothing idle); at two it is descheduled
    const bool two = s.cap == 2;
    s = next_team_state(s, interval(two ? 0.6 : 1.0, 0.0, dt), 2);
    t += dt;
    if (!two && s.cap == 2) tried_at[tries++] = t;
  }
  REQUIRE(tries == 8);
  // waits of 1, 2, 4, 8, 16, 16, ... seconds after each undone grow (plus the two intervals it took)
  CHECK(tried_at[0] == 1.0);
  CHECK(tried_at[1] - tried_at[0] == 0.25 + 2.0);
  CHECK(tried_at[2] - tried_at[1] == 0.25 + 4.0);
  CHECK(tried_at[4] - tried_at[3] == 0.25 + 16.0);
  CHECK(tried_at[7] - tried_at[6] == 0.25 + 16.0);
}

TEST_CASE("idle cores grow the team back after the backoff, and a grow undone at once doubles it") {
  const double dt = 0.125;  // exact in binary: 8 intervals are exactly 1 s
  TeamState s;
  s = next_team_state(s, interval(0.6, 0.0, dt), 2);
  s = next_team_state(s, interval(0.6, 0.0, dt), 2);
  REQUIRE(s.cap == 1);
  // an idle core, but the backoff (1 s) has not passed: 7 intervals keep one thread, the 8th grows
  for (int i = 0; i < 7; ++i) s = next_team_state(s, interval(1.0, 1.0, dt), 2);
  CHECK(s.cap == 1);
  s = next_team_state(s, interval(1.0, 1.0, dt), 2);
  CHECK(s.cap == 2);
  CHECK(s.grow_backoff == 1.0);
  // contention right after the grow: back to one, and the next grow (with no idle core) waits 2 s
  s = next_team_state(s, interval(0.6, 0.0, dt), 2);
  s = next_team_state(s, interval(0.6, 0.0, dt), 2);
  CHECK(s.cap == 1);
  CHECK(s.grow_backoff == 2.0);
  for (int i = 0; i < 15; ++i) s = next_team_state(s, interval(1.0, 0.0, dt), 2);
  CHECK(s.cap == 1);
  s = next_team_state(s, interval(1.0, 0.0, dt), 2);
  CHECK(s.cap == 2);
  // a grow that holds for 5 s resets the backoff
  for (int i = 0; i < 39; ++i) s = next_team_state(s, interval(0.95, 0.0, dt), 2);
  CHECK(s.grow_backoff == 2.0);
  s = next_team_state(s, interval(0.95, 0.0, dt), 2);
  CHECK(s.cap == 2);
  CHECK(s.grow_backoff == 1.0);
}

TEST_CASE("the cap follows a smaller request and never exceeds it") {
  TeamState s;
  s.cap = 4;
  s = next_team_state(s, interval(0.95, 2.0), 2);
  CHECK(s.cap == 2);
  s = next_team_state(s, interval(0.95, 2.0), 2);
  CHECK(s.cap == 2);
}

TEST_CASE("without an idle core a grow waits for the backoff; with one it comes after 1 s at most") {
  const double dt = 0.125;
  TeamState s;
  s.cap = 1, s.grow_backoff = 8;
  for (int i = 0; i < 63; ++i) s = next_team_state(s, interval(1.0, -1.0, dt), 2);  // idle unknown
  CHECK(s.cap == 1);
  s = next_team_state(s, interval(1.0, -1.0, dt), 2);
  CHECK(s.cap == 2);  // 8 s
  TeamState q;
  q.cap = 1, q.grow_backoff = 8;
  for (int i = 0; i < 7; ++i) q = next_team_state(q, interval(1.0, 1.0, dt), 2);
  CHECK(q.cap == 1);
  q = next_team_state(q, interval(1.0, 1.0, dt), 2);
  CHECK(q.cap == 2);  // 1 s: a core was idle
}

TEST_CASE("turned off, the team is what was asked for") {
  set_thread_adaptation(false);
  CHECK_FALSE(thread_adaptation());
  CHECK(adaptive_team_size(7) == 7);
  set_thread_adaptation(true);
  CHECK(thread_adaptation());
  CHECK(adaptive_team_size(1) == 1);
  const int t = adaptive_team_size(2);
  CHECK((t == 1 || t == 2));
}
