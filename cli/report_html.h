// The run report as one self-contained HTML page: inline CSS, the curves as inline SVG, each
// adversarial.png as a base64 data: URI, and one small inline script; nothing is fetched from anywhere.
// Every string taken from a run's files (and the directory names) is HTML-escaped.
#pragma once
#include <string>
#include <vector>

#include "advgrad/cli/run_report.h"

namespace advgrad::cli {

// The page: a comparison of the runs' final evaluations, their curves overlaid, and per run its final
// evaluation table (cells marked data-field="clean_acc" | "fgsm_acc" | "pgd20_acc" | "test_samples" inside
// <table data-run="K">, K counting from 1), the adversarial grid (or "no adversarial.png"), the per-epoch
// table, the configuration and the remaining summary fields. Once the page has loaded, the script sets
// <body data-images-loaded="LOADED/TOTAL"> (images with a decoded width > 0), so a headless browser's DOM
// says whether the images showed.
std::string report_html(const std::vector<RunRecord>& runs, const std::string& version);

// A fraction as a percentage with two decimals: 0.825 -> "82.50%" (how the report shows accuracies).
std::string percent_text(double fraction);

}  // namespace advgrad::cli
