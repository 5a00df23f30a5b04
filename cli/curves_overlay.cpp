#include "advgrad/cli/curves_overlay.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "advgrad/data/html_text.h"

namespace advgrad::cli {

namespace {

// Coordinates with one decimal: enough for a screen, and the same text on every machine.
std::string c(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string g3(double v) {  // tick labels: three significant digits
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// One panel's frame: where it is and how a (epoch, value) point maps into it.
struct Panel {
  double left, top, width, height;
  int max_epoch;
  double y_max;
  double x(double epoch) const {
    return max_epoch > 1 ? left + width * (epoch - 1) / (max_epoch - 1) : left + width / 2;
  }
  double y(double value) const { return top + height * (1 - value / y_max); }
};

// Frame, grid, ticks and axis names of a panel; `tick_text` labels the value axis.
template <class TickText>
void draw_axes(std::ostringstream& o, const Panel& p, const std::string& title, const std::string& y_name,
               TickText tick_text) {
  o << "<text x=\"" << c(p.left + p.width / 2) << "\" y=\"" << c(p.top - 10)
    << "\" text-anchor=\"middle\" font-size=\"14\">" << title << "</text>\n";
  o << "<rect x=\"" << c(p.left) << "\" y=\"" << c(p.top) << "\" width=\"" << c(p.width) << "\" height=\""
    << c(p.height) << "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double value = p.y_max * k / 4.0, y = p.y(value);
    o << "<line x1=\"" << c(p.left) << "\" x2=\"" << c(p.left + p.width) << "\" y1=\"" << c(y) << "\" y2=\"" << c(y)
      << "\" stroke=\"#eee\"/>\n";
    o << "<text x=\"" << c(p.left - 6) << "\" y=\"" << c(y + 4) << "\" text-anchor=\"end\">" << tick_text(value)
      << "</text>\n";
  }
  const int step = std::max(1, (p.max_epoch + 9) / 10);  // at most ~10 epoch ticks
  for (int e = 1; e <= p.max_epoch; e += step)
    o << "<text x=\"" << c(p.x(e)) << "\" y=\"" << c(p.top + p.height + 16) << "\" text-anchor=\"middle\">" << e
      << "</text>\n";
  o << "<text x=\"" << c(p.left + p.width / 2) << "\" y=\"" << c(p.top + p.height + 34)
    << "\" text-anchor=\"middle\">epoch</text>\n";
  o << "<text transform=\"translate(" << c(p.left - 44) << " " << c(p.top + p.height / 2)
    << ") rotate(-90)\" text-anchor=\"middle\">" << y_name << "</text>\n";
}

// A run's line through its epochs (a dot per epoch, so a one-epoch run still shows).
template <class Value>
void draw_series(std::ostringstream& o, const Panel& p, const std::vector<EpochMetrics>& h, const std::string& colour,
                 bool dashed, Value value) {
  o << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\""
    << (dashed ? " stroke-dasharray=\"6 4\"" : "") << " points=\"";
  for (const auto& m : h) o << c(p.x(m.epoch)) << "," << c(p.y(value(m))) << " ";
  o << "\"/>\n";
  for (const auto& m : h)
    o << "<circle cx=\"" << c(p.x(m.epoch)) << "\" cy=\"" << c(p.y(value(m))) << "\" r=\"3\" fill=\""
      << (dashed ? "white" : colour) << "\" stroke=\"" << colour << "\"/>\n";
}

}  // namespace

std::string run_colour(size_t i) {
  static const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kColours[i % 10];
}

std::string overlay_curves_svg(const std::vector<CurveRun>& runs) {
  int max_epoch = 1;
  double max_loss = 0;
  for (const auto& r : runs)
    for (const auto& m : r.history) max_epoch = std::max(max_epoch, m.epoch), max_loss = std::max(max_loss, m.train_loss);
  const double y_loss = max_loss > 0 ? max_loss * 1.05 : 1;  // a little headroom above the highest point
  const double W = 960, panel_w = 360, panel_h = 240, top = 40;
  const double legend_top = top + panel_h + 60, H = legend_top + 20 * double(runs.size() + 1) + 10;
  const Panel loss{80, top, panel_w, panel_h, max_epoch, y_loss};
  const Panel acc{80 + panel_w + 120, top, panel_w, panel_h, max_epoch, 1};
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"training curves\" width=\"" << c(W)
    << "\" height=\"" << c(H) << "\" viewBox=\"0 0 " << c(W) << " " << c(H)
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  draw_axes(o, loss, "training loss", "loss", g3);
  draw_axes(o, acc, "validation accuracy (solid: clean, dashed: PGD)", "accuracy (%)",
            [](double v) { return g3(100 * v); });
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string colour = run_colour(i);
    const auto& h = runs[i].history;
    draw_series(o, loss, h, colour, false, [](const EpochMetrics& m) { return m.train_loss; });
    draw_series(o, acc, h, colour, false, [](const EpochMetrics& m) { return m.val_clean_acc; });
    draw_series(o, acc, h, colour, true, [](const EpochMetrics& m) { return m.val_pgd_acc; });
  }
  // The legend: one line per run in its colour, then the line styles.
  for (size_t i = 0; i < runs.size(); ++i) {
    const double y = legend_top + 20 * double(i);
    o << "<line x1=\"80\" x2=\"110\" y1=\"" << c(y) << "\" y2=\"" << c(y) << "\" stroke=\"" << run_colour(i)
      << "\" stroke-width=\"3\"/><text x=\"118\" y=\"" << c(y + 4) << "\">" << html_escape(runs[i].label)
      << "</text>\n";
  }
  const double y = legend_top + 20 * double(runs.size());
  o << "<line x1=\"80\" x2=\"110\" y1=\"" << c(y) << "\" y2=\"" << c(y)
    << "\" stroke=\"#444\" stroke-width=\"2\"/><text x=\"118\" y=\"" << c(y + 4)
    << "\">clean validation accuracy (and loss)</text>\n";
  o << "<line x1=\"400\" x2=\"430\" y1=\"" << c(y) << "\" y2=\"" << c(y)
    << "\" stroke=\"#444\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/><text x=\"438\" y=\"" << c(y + 4)
    << "\">PGD validation accuracy</text>\n";
  o << "</svg>\n";
  return o.str();
}

}  // namespace advgrad::cli
