#include "advgrad/data/labelled_grid.h"

#include <algorithm>

#include "advgrad/core/error.h"
#include "advgrad/data/bitmap_font.h"

namespace advgrad {
namespace {

const std::array<uint8_t, 3> kTextColour = {0, 0, 0};
constexpr int64_t kMaxNameChars = 12;  // longer class names are cut so columns stay narrow

std::string class_name(const std::vector<std::string>& names, int64_t k) {
  std::string name = (k >= 0 && k < static_cast<int64_t>(names.size()) && !names[k].empty()) ? names[k]
                                                                                               : std::to_string(k);
  if (static_cast<int64_t>(name.size()) > kMaxNameChars) name.resize(kMaxNameChars);
  return name;
}

struct Layout {
  GridImage grid;
  int64_t cell_w = 0, column_w = 0, sep = 0;
  std::vector<std::array<std::string, 3>> lines;
};

Layout layout(const LabelledGridInput& in) {
  const size_t n = static_cast<size_t>(in.n);
  if (in.n < 1 || in.labels.size() != n || in.clean_predictions.size() != n || in.adversarial_predictions.size() != n)
    throw ValueError("make_labelled_grid: n = " + std::to_string(in.n) +
                     " samples need as many labels, clean and adversarial predictions");
  Layout l;
  l.grid = in.grid;
  l.sep = in.separator;
  l.cell_w = (l.grid.width - (in.n - 1) * l.sep) / in.n;
  if (l.cell_w < 1 || l.cell_w * in.n + (in.n - 1) * l.sep != l.grid.width || (l.grid.channels != 1 && l.grid.channels != 3) ||
      l.grid.pixels.size() != static_cast<size_t>(l.grid.width * l.grid.height * l.grid.channels))
    throw ValueError("make_labelled_grid: the grid is not " + std::to_string(in.n) + " columns with separator " +
                     std::to_string(in.separator));
  if (in.text_scale < 1 || in.text_scale > 16)
    throw ValueError("make_labelled_grid: text scale must be in 1..16, got " + std::to_string(in.text_scale));
  int64_t text_w = 0;
  for (size_t i = 0; i < n; ++i) {
    l.lines.push_back({"y " + class_name(in.class_names, in.labels[i]),
                       "c " + class_name(in.class_names, in.clean_predictions[i]),
                       "a " + class_name(in.class_names, in.adversarial_predictions[i])});
    for (const std::string& t : l.lines.back()) text_w = std::max(text_w, text_width(t, in.text_scale));
  }
  l.column_w = std::max(l.cell_w + 2 * kFrameWidth, text_w + 2 * in.text_scale);
  return l;
}

}  // namespace

int64_t text_scale_for(int64_t image_scale) { return std::clamp<int64_t>((image_scale + 1) / 2, 1, 16); }

SampleOutcome sample_outcome(int64_t label, int64_t clean_prediction, int64_t adversarial_prediction) {
  if (clean_prediction != label) return SampleOutcome::AlreadyWrong;
  return adversarial_prediction == label ? SampleOutcome::StillRight : SampleOutcome::Fooled;
}

std::array<uint8_t, 3> outcome_colour(SampleOutcome outcome) {
  switch (outcome) {
    case SampleOutcome::Fooled: return {220, 30, 30};
    case SampleOutcome::AlreadyWrong: return {128, 128, 128};
    case SampleOutcome::StillRight: break;
  }
  return {30, 160, 60};
}

int64_t labelled_column_left(const LabelledGridInput& input, int64_t column) {
  const Layout l = layout(input);
  return column * (l.column_w + l.sep) + (l.column_w - l.cell_w) / 2 - kFrameWidth;
}

GridImage make_labelled_grid(const LabelledGridInput& in) {
  const Layout l = layout(in);
  const int64_t line_h = text_height(in.text_scale) + 2 * in.text_scale;
  GridImage out;
  out.channels = 3;
  out.width = in.n * l.column_w + (in.n - 1) * l.sep;
  out.height = 2 * kFrameWidth + l.grid.height + 2 * in.text_scale + 3 * line_h;
  out.pixels.assign(static_cast<size_t>(out.width * out.height * 3), 255);
  for (int64_t i = 0; i < in.n; ++i) {
    const int64_t column_left = i * (l.column_w + l.sep);
    const int64_t image_left = column_left + (l.column_w - l.cell_w) / 2;
    const int64_t src_left = i * (l.cell_w + l.sep);
    for (int64_t y = 0; y < l.grid.height; ++y)
      for (int64_t x = 0; x < l.cell_w; ++x) {
        const uint8_t* p = l.grid.pixels.data() + (y * l.grid.width + src_left + x) * l.grid.channels;
        std::array<uint8_t, 3> rgb = {p[0], p[0], p[0]};
        if (l.grid.channels == 3) rgb = {p[0], p[1], p[2]};
        put_pixel(out, image_left + x, kFrameWidth + y, rgb);
      }
    // The frame: kFrameWidth pixels just outside the column's images.
    const auto colour = outcome_colour(sample_outcome(in.labels[i], in.clean_predictions[i], in.adversarial_predictions[i]));
    const int64_t x0 = image_left - kFrameWidth, x1 = image_left + l.cell_w + kFrameWidth;  // [x0, x1)
    const int64_t y0 = 0, y1 = l.grid.height + 2 * kFrameWidth;
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t x = x0; x < x1; ++x) {
        const bool inside = x >= image_left && x < image_left + l.cell_w && y >= kFrameWidth && y < kFrameWidth + l.grid.height;
        if (!inside) put_pixel(out, x, y, colour);
      }
    for (int k = 0; k < 3; ++k)
      draw_text(out, column_left + in.text_scale, y1 + 2 * in.text_scale + k * line_h, l.lines[i][k], kTextColour,
                in.text_scale);
  }
  return out;
}

}  // namespace advgrad
