// A small bitmap font for labelling pictures (stb has no text): 5x7 glyphs for printable ASCII, drawn
// into the interleaved 8-bit buffers of image_write.h. The glyph table is this project's own design.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "advgrad/data/image_write.h"

namespace advgrad {

constexpr int kGlyphWidth = 5;    // pixels of a glyph, before scaling
constexpr int kGlyphHeight = 7;
constexpr int kGlyphAdvance = 6;  // glyph width + one column of space between characters

// Row r (0 = top) of the glyph of `c` as 5 bits, bit 4 = leftmost column. Characters outside printable
// ASCII (32..126) are drawn as '?'.
uint8_t glyph_row(char c, int r);

// Width and height in pixels that draw_text uses for `text` at `scale` (one line; no trailing space).
int64_t text_width(const std::string& text, int64_t scale = 1);
int64_t text_height(int64_t scale = 1);

// Draws `text` with its top-left corner at (x, y), each font pixel a scale x scale square of `color`
// (RGB; a gray image gets the rounded mean of the three). Pixels outside the image are skipped, so any
// x, y (also negative) is safe. ValueError for scale outside 1..16 or an image whose buffer does not
// match its size.
void draw_text(GridImage& image, int64_t x, int64_t y, const std::string& text,
               std::array<uint8_t, 3> color, int64_t scale = 1);

// Sets one pixel if it lies inside the image (the primitive draw_text and frames use).
void put_pixel(GridImage& image, int64_t x, int64_t y, std::array<uint8_t, 3> color);

}  // namespace advgrad
