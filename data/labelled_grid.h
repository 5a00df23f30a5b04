// The adversarial grid for people: one column per sample (clean, adversarial, perturbation rows as
// make_grid lays them out), framed by what happened to it, with the class names written below.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "advgrad/data/image_write.h"

namespace advgrad {

// What the attack did to one sample, and the frame colour that says so.
enum class SampleOutcome { StillRight, Fooled, AlreadyWrong };
SampleOutcome sample_outcome(int64_t label, int64_t clean_prediction, int64_t adversarial_prediction);
std::array<uint8_t, 3> outcome_colour(SampleOutcome outcome);  // green, red, gray

constexpr int64_t kFrameWidth = 2;  // pixels of the coloured frame around each column

struct LabelledGridInput {
  GridImage grid;                             // make_grid's image with cols = n (rows: clean, adversarial, ...)
  int64_t separator = 2;                      // the GridOptions::separator it was made with
  int64_t n = 0;                              // samples (columns)
  std::vector<int64_t> labels, clean_predictions, adversarial_predictions;  // n each
  std::vector<std::string> class_names;       // indexed by class; a missing name prints the number
  int64_t text_scale = 1;                     // each font pixel as a text_scale square (1..16)
};

// The text scale that suits images upscaled `image_scale` times: about half of it (1 up to scale 2), so
// names stay readable next to large images without widening the columns much.
int64_t text_scale_for(int64_t image_scale);

// An RGB image: the grid with each column moved into a cell wide enough for its text, a frame
// of kFrameWidth pixels in outcome_colour around the column, and three text lines below it:
// "y <label>", "c <clean prediction>", "a <adversarial prediction>". ValueError for mismatched sizes.
GridImage make_labelled_grid(const LabelledGridInput& input);

// The column's left edge of the frame in make_labelled_grid's image (for tests and callers that annotate).
int64_t labelled_column_left(const LabelledGridInput& input, int64_t column);

}  // namespace advgrad
