// Runs the `advgrad` command (ADVGRAD_CLI, from CMake) as a child process without a shell: arguments are
// passed as they are, the child gets an address-space cap and a wall-clock limit, and the result says how
// it ended (exit status, signal, or killed at the time limit) together with what it printed.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace advgrad::testing {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag = "advgrad_test") {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() / (tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

struct Limits {
  uint64_t address_space_bytes = 0;  // RLIMIT_AS of the child; 0: none
  double seconds = 120;              // wall clock before SIGKILL
  std::vector<std::pair<std::string, std::string>> env;  // extra environment variables
};

// AddressSanitizer reserves terabytes of address space up front, so an address-space cap cannot be used in
// the sanitizer build; there the memory checks are left to ASan's own allocator limits.
#ifdef ADVGRAD_SANITIZED
constexpr bool kCanCapAddressSpace = false;
#else
constexpr bool kCanCapAddressSpace = true;
#endif

struct Child {
  pid_t pid = -1;
  std::string out_path, err_path;
};

// Starts `advgrad args...` with stdout and stderr going to files in `dir`. Everything the child needs is
// built before fork(): between fork and exec only async-signal-safe calls are made (the parent may have
// OpenMP threads, whose locks a child must not touch).
inline Child spawn_cli(const std::vector<std::string>& args, const Limits& limits, const TempDir& dir) {
  static std::atomic<int> counter{0};
  const int k = counter++;
  Child c;
  c.out_path = dir / ("stdout." + std::to_string(k));
  c.err_path = dir / ("stderr." + std::to_string(k));
  // ADVGRAD_TEST_CLI runs the same cases against another build (e.g. an older commit's, to see them fail).
  const char* other = std::getenv("ADVGRAD_TEST_CLI");
  std::vector<std::string> argv_s{other && *other ? other : ADVGRAD_CLI};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment: ours, with the extra variables replacing any of the same name.
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    bool replaced = false;
    for (const auto& kv : limits.env) replaced = replaced || entry.rfind(kv.first + "=", 0) == 0;
    if (!replaced) env_s.push_back(entry);
  }
  for (const auto& kv : limits.env) env_s.push_back(kv.first + "=" + kv.second);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  c.pid = ::fork();
  if (c.pid == 0) {
    // A test that dies (or is killed) takes its children with it instead of leaving them running.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(125);
    int out = ::open(c.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(c.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) ::_exit(126);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (limits.address_space_bytes > 0 && kCanCapAddressSpace) {
      struct rlimit rl;
      rl.rlim_cur = rl.rlim_max = rlim_t(limits.address_space_bytes);
      ::setrlimit(RLIMIT_AS, &rl);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return c;
}

struct Run {
  bool exited = false;     // exited by itself (status valid)
  int status = -1;         // exit status
  int signal = 0;          // the signal that ended it, if any
  bool timed_out = false;  // killed by us at the time limit
  double seconds = 0;
  std::string out, err;
  std::string describe() const {
    if (timed_out) return "killed after the time limit (" + std::to_string(seconds) + " s)";
    if (signal) return std::string("killed by signal ") + std::to_string(signal) + " (" + strsignal(signal) + ")";
    return "exit status " + std::to_string(status);
  }
};

// Waits for the child, killing it with SIGKILL when `seconds` pass or, polled every few milliseconds,
// when kill_now() says so (both count as timed_out).
inline Run wait_cli(const Child& c, double seconds, const std::function<bool()>& kill_now = nullptr) {
  Run r;
  const auto start = std::chrono::steady_clock::now();
  int raw = 0;
  for (;;) {
    const pid_t done = ::waitpid(c.pid, &raw, WNOHANG);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (done == c.pid) break;
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) return r;  // not our child (fork failed): exited stays false
    if (r.seconds > seconds || (kill_now && kill_now())) {
      ::kill(c.pid, SIGKILL);
      while (::waitpid(c.pid, &raw, 0) < 0 && errno == EINTR) {
      }
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!r.timed_out && WIFEXITED(raw)) r.exited = true, r.status = WEXITSTATUS(raw);
  if (!r.timed_out && WIFSIGNALED(raw)) r.signal = WTERMSIG(raw);
  r.out = slurp(c.out_path);
  r.err = slurp(c.err_path);
  return r;
}

inline Run run_cli(const std::vector<std::string>& args, const Limits& limits = {}) {
  TempDir dir("advgrad_cli_run");
  return wait_cli(spawn_cli(args, limits, dir), limits.seconds);
}

}  // namespace advgrad::testing
