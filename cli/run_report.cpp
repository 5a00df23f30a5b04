#include "advgrad/cli/run_report.h"
#include "advgrad/cli/common.h"

#include <CLI/CLI.hpp>
#include <sstream>

#include "advgrad/core/error.h"
#include "advgrad/data/file_io.h"
#include "advgrad/data/image_folder.h"
#include "advgrad/train/config.h"
#include "advgrad/train/json_fields.h"
#include "advgrad/train/run_files.h"

namespace advgrad::cli {

namespace {

namespace jf = json_fields;

// Caps far above what a run writes (config and summary: a few hundred bytes; metrics: ~400 bytes an
// epoch, plus ~10 a step for runs of at most 3 epochs
// (step_losses); the grid of 8 samples: tens of KB), low enough that a hostile file cannot exhaust memory.
constexpr uint64_t kMaxJsonBytes = uint64_t(16) << 20;
constexpr uint64_t kMaxMetricsBytes = uint64_t(16) << 20;  // parsed line by line into JSON trees several times larger
constexpr uint64_t kMaxPngBytes = uint64_t(64) << 20;

// The text of `path` parsed as one JSON object; IOError naming the path for anything else.
nlohmann::ordered_json read_json_object(const std::string& path) {
  const std::string text = read_text(path, kMaxJsonBytes);
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();  // "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    const size_t tag_end = what.find("] ");
    if (tag_end != std::string::npos) what = what.substr(tag_end + 2);
    throw IOError(path + ": not valid JSON (" + printable_text(what) + ")");
  }
  if (!j.is_object()) throw IOError(path + ": not a JSON object (" + printable_text(jf::shown(j)) + ")");
  return j;
}

std::vector<EpochMetrics> read_metrics(const std::string& path) {
  std::istringstream lines(read_text(path, kMaxMetricsBytes));
  std::vector<EpochMetrics> history;
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    history.push_back(metrics_from_json(line, path + " line " + std::to_string(number)));
    if (history.back().epoch != int(history.size()))
      throw IOError(path + " line " + std::to_string(number) + ": epoch " + std::to_string(history.back().epoch) +
                    " where epoch " + std::to_string(history.size()) + " was expected");
  }
  if (history.empty()) throw IOError(path + ": no epoch recorded");
  return history;
}

void read_summary_fields(RunRecord& run, const std::string& path) {
  const nlohmann::json j = run.summary;  // json_fields reads the unordered flavour
  run.model = jf::get_string(j, "model", path);
  run.method = jf::get_string(j, "method", path);
  run.eps = jf::get_number(j, "eps", 0, kAnyPositive, path);
  run.clean_acc = jf::get_number(j, "clean_acc", 0, 1, path);
  run.fgsm_acc = jf::get_number(j, "fgsm_acc", 0, 1, path);
  run.pgd_acc = jf::get_number(j, "pgd20_acc", 0, 1, path);
  run.pgd_steps = jf::get_int(j, "pgd_steps", 0, TrainLimits::max_steps, path);
  run.test_samples = jf::get_int(j, "test_samples", 0, TrainLimits::max_samples, path);
}

void read_png(RunRecord& run, const std::string& path) {
  if (path_kind(path) == PathKind::Missing) return;
  std::vector<uint8_t> bytes = read_file_bytes(path, kMaxPngBytes);
  const ImageHeader header = probe_image(bytes.data(), bytes.size(), path);
  if (header.format != ImageFormat::PNG) throw IOError(path + ": not a PNG image (it is a JPEG or BMP file)");
  // Decoded once, only to know that a browser can show it (truncated data, a bad checksum, a bomb).
  const DecodedImage image = decode_image(bytes.data(), bytes.size(), path, 3);
  run.png_width = image.width, run.png_height = image.height;
  run.png = std::move(bytes);
}

}  // namespace

RunRecord read_run_dir(const std::string& dir) {
  RunRecord run;
  run.dir = run.label = dir;
  try {
    require_directory(dir);
    const std::string config_path = dir + "/" + kConfigFile;
    run.config = read_json_object(config_path);
    TrainConfig::from_json(run.config.dump(), config_path);  // types and ranges, as a resume checks them
    run.history = read_metrics(dir + "/" + kMetricsFile);
    const std::string summary_path = dir + "/" + kSummaryFile;
    if (path_kind(summary_path) == PathKind::Missing) {  // stopped early or still training: no final evaluation
      const nlohmann::json c = run.config;
      run.model = jf::get_string(c, "model", config_path);
      run.method = jf::get_string(c, "method", config_path);
      run.eps = jf::get_number(c, "eps", 0, kAnyPositive, config_path);
    } else {
      run.summary = read_json_object(summary_path);
      read_summary_fields(run, summary_path);
      run.finished = true;
    }
    read_png(run, dir + "/" + kAdversarialFile);
  } catch (const Error& e) {
    throw CLI::ValidationError(e.what());  // a bad RUN_DIR argument: exit status 2, the message names the file
  }
  return run;
}

}  // namespace advgrad::cli
