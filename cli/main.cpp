// advgrad: the command-line front end. Parses the command line with CLI11, runs the chosen subcommand,
// and turns every failure into one `error: ...` line on stderr and a non-zero exit status.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "advgrad/cli/commands.h"
#include "advgrad/cli/common.h"
#include "advgrad/core/cpu_features.h"
#include "advgrad/core/error.h"
#include "advgrad/core/parallel.h"

#ifndef ADVGRAD_VERSION
#error "ADVGRAD_VERSION must be defined (cli/CMakeLists.txt sets it from the project version)"
#endif

// Every subcommand, in the order `advgrad --help` lists them. To add one, write cli/cmd_NAME.cpp defining
// `void advgrad::cli::register_NAME(CLI::App& app)` (see commands.h) and add `X(NAME)` here.
#define ADVGRAD_CLI_COMMANDS(X) \
  X(data)                       \
  X(eval)                       \
  X(attack)                     \
  X(train)                      \
  X(report)                     \
  X(inspect)                    \
  X(models)                     \
  X(export)                     \
  X(demo)

namespace advgrad::cli {
ADVGRAD_CLI_COMMANDS(ADVGRAD_CLI_DECLARE_COMMAND)
}  // namespace advgrad::cli

namespace {

// Exit statuses: 0 success (also --help, --version), 1 a command failed, 2 a bad command line.
constexpr int kFailed = 1;
constexpr int kUsage = 2;

int fail(int status, const std::string& message) {
  std::cerr << "error: " << advgrad::cli::one_line(message) << std::endl;
  return status;
}

std::vector<const CLI::App*> commands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App*) { return true; });
}

bool is_command(const CLI::App& app, const std::string& name) {
  for (const CLI::App* c : commands(app))
    if (c->get_name() == name) return true;
  return false;
}

std::string command_names(const CLI::App& app) {
  std::string s;
  for (const CLI::App* c : commands(app)) s += (s.empty() ? "" : ", ") + c->get_name();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("advgrad " ADVGRAD_VERSION
               ": adversarial robustness of small CNN/RNN models on the CPU (datasets, attacks, evaluation)",
               "advgrad");
  app.set_version_flag("--version", "advgrad " ADVGRAD_VERSION, "Print the version and exit");
  app.require_subcommand(1);
  app.get_formatter()->column_width(34);
  // A repeated option takes its last value (as most command-line tools do); subcommands inherit this.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

#define ADVGRAD_CLI_REGISTER(NAME) advgrad::cli::register_##NAME(app);
  ADVGRAD_CLI_COMMANDS(ADVGRAD_CLI_REGISTER)
#undef ADVGRAD_CLI_REGISTER
  app.footer("Run `advgrad COMMAND --help` for the options of a command.");  // after them: not inherited

  // OpenMP reads OMP_NUM_THREADS itself and dies inside libgomp on absurd values (SIGSEGV at 100000,
  // "Thread creation failed" at 32768+): refuse them before any parallel region can start.
  const std::string threads_env = advgrad::check_omp_num_threads_env();
  if (!threads_env.empty()) return fail(kUsage, threads_env);
  try {  // ADVGRAD_CPU_PATH (core/cpu_features.h): an unknown path, or one this CPU lacks, before any work
    advgrad::cpu_path();
  } catch (const advgrad::Error& e) {
    return fail(kUsage, e.what());
  }
  if (argc > 1 && argv[1][0] != '-' && !is_command(app, argv[1]))
    return fail(kUsage, "unknown command '" + std::string(argv[1]) + "' (commands: " + command_names(app) + ")");
  try {
    app.parse(argc, argv);  // runs the chosen subcommand's callback
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version: printed on stdout
    const auto chosen = app.get_subcommands();
    const std::string help = chosen.empty() ? "advgrad --help" : "advgrad " + chosen.front()->get_name() + " --help";
    return fail(kUsage, std::string(e.what()) + " (see " + help + ")");
  } catch (const advgrad::Error& e) {
    return fail(kFailed, e.what());
  } catch (const std::bad_alloc&) {
    return fail(kFailed, "out of memory");
  } catch (const std::exception& e) {
    return fail(kFailed, e.what());
  } catch (...) {
    return fail(kFailed, "unexpected failure");
  }
  return 0;
}
