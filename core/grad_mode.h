// Whether operations record an autograd graph on this thread. Lives in core because in-place tensor
// methods consult it (modifying a tensor that requires grad is only allowed under NoGradGuard).
#pragma once

namespace advgrad {

class GradMode {
 public:
  static bool is_enabled();
  static void set_enabled(bool on);
};

// RAII: no graph is recorded on this thread while it lives (inference, attack updates, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// RAII: re-enables recording inside a NoGradGuard scope.
class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace advgrad
