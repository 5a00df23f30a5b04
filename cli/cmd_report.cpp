// advgrad report RUN_DIR [RUN_DIR ...] [--out report.html]: one self-contained HTML page about training
// runs (cli/run_report.h reads a run directory, cli/report_html.h writes the page).
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "advgrad/cli/commands.h"
#include "advgrad/cli/report_html.h"
#include "advgrad/cli/run_report.h"
#include "advgrad/data/file_io.h"

namespace advgrad::cli {

namespace {

struct ReportArgs {
  std::vector<std::string> run_dirs;
  std::string out = "report.html";
};

// A directory given twice is reported twice; its second section is called "DIR (2)".
void make_labels_unique(std::vector<RunRecord>& runs) {
  std::map<std::string, int> seen;
  for (RunRecord& r : runs) {
    const int n = ++seen[r.dir];
    if (n > 1) r.label = r.dir + " (" + std::to_string(n) + ")";
  }
}

void run(const ReportArgs& args) {
  std::vector<RunRecord> runs;
  for (const std::string& dir : args.run_dirs) runs.push_back(read_run_dir(dir));  // all read before anything is written
  make_labels_unique(runs);
  const std::string html = report_html(runs, ADVGRAD_VERSION);
  write_file_atomic(args.out, html.data(), html.size());
  size_t missing_png = 0;
  for (const RunRecord& r : runs) missing_png += r.png.empty();
  std::cout << "wrote " << args.out << ": " << runs.size() << " run" << (runs.size() == 1 ? "" : "s") << ", "
            << (html.size() + 1023) / 1024 << " KB";
  if (missing_png > 0) std::cout << " (" << missing_png << " without " << kAdversarialFile << ")";
  std::cout << std::endl;
}

}  // namespace

void register_report(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "report", "One self-contained HTML page about training runs: curves, tables, adversarial grids");
  cmd->add_option("RUN_DIR", args->run_dirs,
                  "Run directories written by `advgrad train --out` (config.json, metrics.jsonl, summary.json; "
                  "adversarial.png when there is one)")
      ->required();
  cmd->add_option("--out", args->out, "The HTML file to write")->capture_default_str()->check([](const std::string& s) {
    return s.empty() ? std::string("must name a file") : std::string();
  });
  cmd->footer(
      "The page needs no network: CSS, the curves (SVG) and the images (base64 PNG) are inline. A missing or\n"
      "malformed file of a run directory is one error line naming it (exit status 2); a run without\n"
      "adversarial.png is reported without it.");
  cmd->callback([args] { run(*args); });
}

}  // namespace advgrad::cli
