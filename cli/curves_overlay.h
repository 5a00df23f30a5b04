// The training curves of several runs in one SVG, for the run report: training loss per epoch (left
// panel) and validation accuracy per epoch (right panel: clean solid, PGD dashed), one colour per run,
// with a legend naming each run. Written here from the metrics (not a copy of any run's curves.svg).
#pragma once
#include <string>
#include <vector>

#include "advgrad/train/trainer.h"

namespace advgrad::cli {

struct CurveRun {
  std::string label;  // the legend's name for the run (escaped by overlay_curves_svg)
  std::vector<EpochMetrics> history;
};

// The colour run i is drawn in ("#rrggbb"; ten colours, repeated after ten runs).
std::string run_colour(size_t i);

// An <svg> element (no XML declaration: it is meant to sit inside an HTML page).
std::string overlay_curves_svg(const std::vector<CurveRun>& runs);

}  // namespace advgrad::cli
