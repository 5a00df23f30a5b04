// The subcommand registry of the `advgrad` command.
//
// A subcommand is one file, cli/cmd_NAME.cpp, that defines
//
//     void advgrad::cli::register_NAME(CLI::App& app);
//
// which adds the subcommand NAME to `app` (app.add_subcommand), declares its options, and sets a callback
// that runs it. The callback reports failure by throwing (advgrad::Error, std::exception): main() turns
// every exception into one `error: ...` line on stderr and a non-zero exit status, so commands never print
// errors or call exit() themselves.
//
// main.cpp holds the list of commands (ADVGRAD_CLI_COMMANDS); cli/CMakeLists.txt compiles every
// cmd_*.cpp. Adding a command is therefore the new file plus its NAME in that list.
#pragma once
#include <CLI/CLI.hpp>

namespace advgrad::cli {

// Declares register_NAME for each NAME of a command list (used by main.cpp).
#define ADVGRAD_CLI_DECLARE_COMMAND(NAME) void register_##NAME(CLI::App& app);

}  // namespace advgrad::cli
