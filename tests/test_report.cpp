// Pictures for people: the bitmap font (data/bitmap_font.h), the labelled adversarial grid; and what the run
// report embeds them with (data/base64.h, data/html_text.h).
#include <doctest/doctest.h>

#include "advgrad/core/error.h"
#include "advgrad/data/base64.h"
#include "advgrad/data/bitmap_font.h"
#include "advgrad/data/html_text.h"

using namespace advgrad;

namespace {

GridImage blank(int64_t height, int64_t width, int64_t channels) {
  GridImage image;
  image.height = height, image.width = width, image.channels = channels;
  image.pixels.assign(static_cast<size_t>(height * width * channels), 0);
  return image;
}

// The pixels of a gray image as rows of '#' (non-zero) and '.', for comparing with a hand-drawn glyph.
std::vector<std::string> ink(const GridImage& image) {
  std::vector<std::string> rows;
  for (int64_t y = 0; y < image.height; ++y) {
    std::string row;
    for (int64_t x = 0; x < image.width; ++x) row += image.pixels[y * image.width + x] ? '#' : '.';
    rows.push_back(row);
  }
  return rows;
}

}  // namespace

TEST_CASE("draw_text: an 'A' at (1, 1) sets exactly the pixels of the hand-drawn glyph") {
  GridImage image = blank(9, 7, 1);
  draw_text(image, 1, 1, "A", {255, 255, 255});
  const std::vector<std::string> expected = {
      ".......",
      "..###..",
      ".#...#.",
      ".#...#.",
      ".#####.",
      ".#...#.",
      ".#...#.",
      ".#...#.",
      ".......",
  };
  CHECK(ink(image) == expected);
}

TEST_CASE("draw_text: scale 2 doubles every pixel; the second character starts 6 columns on; RGB gets the colour") {
  GridImage image = blank(14, 22, 3);
  draw_text(image, 0, 0, "-1", {200, 10, 30}, 2);
  // '-' is row 3 of ink, 5 wide: at scale 2, rows 6..7, columns 0..9.
  auto at = [&](int64_t x, int64_t y, int c) { return image.pixels[(y * image.width + x) * 3 + c]; };
  CHECK(at(0, 6, 0) == 200);
  CHECK(at(0, 6, 1) == 10);
  CHECK(at(9, 7, 2) == 30);
  CHECK(at(10, 6, 0) == 0);  // the space column between glyphs
  CHECK(at(0, 5, 0) == 0);
  // '1' begins at column 12: its top row is "..#.." -> columns 16..17 at scale 2.
  CHECK(at(16, 0, 0) == 200);
  CHECK(at(15, 0, 0) == 0);
  CHECK(text_width("-1", 2) == 22);
  CHECK(text_height(2) == 14);
}

TEST_CASE("draw_text: text beyond every edge is clipped, the buffer is never written outside") {
  // Each placement drawn into a small image must equal the same crop of a large image with the text
  // drawn at the same place relative to the crop: a missing clip would wrap ink into the next row or
  // write past the buffer (AddressSanitizer builds catch the latter).
  const int64_t ox = 100, oy = 50;
  for (int64_t x : {-40, -3, 0, 4, 9, 100}) {
    for (int64_t y : {-20, -4, 0, 3, 50}) {
      GridImage small = blank(6, 10, 3), large = blank(6 + 2 * oy, 10 + 2 * ox, 3);
      draw_text(small, x, y, "W@#|", {255, 128, 1}, 3);
      draw_text(large, x + ox, y + oy, "W@#|", {255, 128, 1}, 3);
      CHECK(small.pixels.size() == 6 * 10 * 3);
      bool same = true;
      for (int64_t yy = 0; yy < 6; ++yy)
        for (int64_t xx = 0; xx < 10; ++xx)
          for (int c = 0; c < 3; ++c)
            same = same && small.pixels[(yy * 10 + xx) * 3 + c] ==
                               large.pixels[((yy + oy) * large.width + xx + ox) * 3 + c];
      CHECK_MESSAGE(same, "x=" << x << " y=" << y);
    }
  }
  // Inside-the-image check of what clipping keeps: an 'I' whose left half lies off the left edge.
  GridImage image = blank(7, 3, 1);
  draw_text(image, -2, 0, "I", {255, 255, 255});
  const std::vector<std::string> expected = {"##.", "#..", "#..", "#..", "#..", "#..", "##."};
  CHECK(ink(image) == expected);
}

TEST_CASE("draw_text: bad scale or a buffer that does not match its size is a ValueError") {
  GridImage image = blank(4, 4, 1);
  CHECK_THROWS_AS(draw_text(image, 0, 0, "x", {1, 1, 1}, 0), ValueError);
  image.pixels.resize(3);
  CHECK_THROWS_AS(draw_text(image, 0, 0, "x", {1, 1, 1}), ValueError);
  // A character outside printable ASCII is drawn as '?'.
  for (int r = 0; r < kGlyphHeight; ++r) CHECK(glyph_row('\x01', r) == glyph_row('?', r));
}

// ---- the labelled adversarial grid (data/labelled_grid.h) ----

#include "advgrad/data/labelled_grid.h"

TEST_CASE("make_labelled_grid: frames say fooled (red), already wrong (gray), still right (green)") {
  // Three columns of 4x4 gray cells, two rows (clean, adversarial), separator 2, as make_grid lays them out.
  LabelledGridInput in;
  in.n = 3;
  in.separator = 2;
  in.grid = blank(4 + 2 + 4, 3 * 4 + 2 * 2, 1);
  std::fill(in.grid.pixels.begin(), in.grid.pixels.end(), 100);
  in.labels = {0, 1, 2};
  in.clean_predictions = {0, 2, 2};        // column 1 already wrong
  in.adversarial_predictions = {1, 2, 2};  // column 0 fooled, column 2 still right
  in.class_names = {"cat", "dog", "frog"};
  const GridImage out = make_labelled_grid(in);
  REQUIRE(out.channels == 3);
  auto rgb = [&](int64_t x, int64_t y) {
    const uint8_t* p = out.pixels.data() + (y * out.width + x) * 3;
    return std::array<uint8_t, 3>{p[0], p[1], p[2]};
  };
  const std::array<uint8_t, 3> red = {220, 30, 30}, gray = {128, 128, 128}, green = {30, 160, 60};
  const std::array<uint8_t, 3> expected[3] = {red, gray, green};
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t left = labelled_column_left(in, i);
    CHECK(rgb(left, 0) == expected[i]);                                        // top-left corner
    CHECK(rgb(left + 1, 5) == expected[i]);                                    // left side, inner frame pixel
    CHECK(rgb(left + 2 * kFrameWidth + 4 - 1, 2 * kFrameWidth + 10 - 1) == expected[i]);  // bottom-right
    CHECK(rgb(left + kFrameWidth, kFrameWidth) == std::array<uint8_t, 3>{100, 100, 100});  // the image inside
  }
  // The columns are wide enough for "y frog" (6 characters: 35 pixels) and text appears below the frames.
  CHECK(out.width >= 3 * 35);
  bool ink_below = false;
  for (int64_t x = 0; x < out.width; ++x)
    for (int64_t y = 2 * kFrameWidth + 10; y < out.height; ++y) ink_below = ink_below || rgb(x, y)[0] == 0;
  CHECK(ink_below);
  CHECK(sample_outcome(3, 3, 3) == SampleOutcome::StillRight);
  CHECK(sample_outcome(3, 4, 3) == SampleOutcome::AlreadyWrong);
  CHECK(sample_outcome(3, 3, 5) == SampleOutcome::Fooled);
  in.labels.pop_back();
  CHECK_THROWS_AS(make_labelled_grid(in), ValueError);
}

TEST_CASE("make_labelled_grid: text_scale draws every font pixel as a square, and columns widen to fit") {
  LabelledGridInput in;
  in.n = 2;
  in.separator = 2;
  in.grid = blank(4, 2 * 4 + 2, 1);
  std::fill(in.grid.pixels.begin(), in.grid.pixels.end(), 100);
  in.labels = {0, 1};
  in.clean_predictions = {0, 1};
  in.adversarial_predictions = {1, 1};
  in.class_names = {"Sandal", "Bag"};
  auto ink = [](const GridImage& g) {  // black pixels: only the text is drawn in black
    int64_t count = 0;
    for (size_t i = 0; i + 2 < g.pixels.size(); i += 3) count += g.pixels[i] == 0 && g.pixels[i + 1] == 0 && g.pixels[i + 2] == 0;
    return count;
  };
  const GridImage one = make_labelled_grid(in);
  in.text_scale = 3;
  const GridImage three = make_labelled_grid(in);
  REQUIRE(ink(one) > 0);
  CHECK(ink(three) == 9 * ink(one));  // nothing clipped, each font pixel a 3x3 square
  // "y Sandal" is 8 characters: 8 * 6 - 1 = 47 font pixels wide, 141 at scale 3, in each of 2 columns.
  CHECK(three.width >= 2 * 141);
  CHECK(three.height >= 4 + 3 * 3 * 7);
  CHECK(text_scale_for(1) == 1);
  CHECK(text_scale_for(2) == 1);
  CHECK(text_scale_for(3) == 2);
  CHECK(text_scale_for(4) == 2);
  in.text_scale = 0;
  CHECK_THROWS_AS(make_labelled_grid(in), ValueError);
}

TEST_CASE("base64_encode: the RFC 4648 test vectors, and bytes with the high bit set") {
  auto encode = [](const std::string& s) { return base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  CHECK(encode("") == "");
  CHECK(encode("f") == "Zg==");
  CHECK(encode("fo") == "Zm8=");
  CHECK(encode("foo") == "Zm9v");
  CHECK(encode("foob") == "Zm9vYg==");
  CHECK(encode("fooba") == "Zm9vYmE=");
  CHECK(encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode(std::vector<uint8_t>{0xFF, 0xFE, 0xFD}) == "//79");  // 111111 111111 111011 111101
  CHECK(base64_encode(std::vector<uint8_t>{0x00, 0x10, 0x83}) == "ABCD");
}

TEST_CASE("html_escape: markup characters become entities; broken UTF-8 and control bytes become U+FFFD") {
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(html_escape("<script>alert('x') & \"y\"</script>") ==
        "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
  CHECK(html_escape("plain text, tab\tand\nnewline") == "plain text, tab\tand\nnewline");
  CHECK(html_escape("&amp;") == "&amp;amp;");  // escaped again: the text is shown as it is
  // Well-formed UTF-8 passes: 2, 3 and 4 bytes (é, €, U+1F600).
  CHECK(html_escape("\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  CHECK(html_escape("a\xFF" "b") == "a" + fffd + "b");                    // never a UTF-8 byte
  CHECK(html_escape("\xC3") == fffd);                                     // truncated at the end
  CHECK(html_escape("\xC3<") == fffd + "&lt;");                           // truncated before markup
  CHECK(html_escape("\xC0\xAF") == fffd + fffd);                          // overlong '/'
  CHECK(html_escape("\xE0\x80\xAF") == fffd + fffd + fffd);               // overlong, 3 bytes
  CHECK(html_escape("\xED\xA0\x80") == fffd + fffd + fffd);               // a UTF-16 surrogate
  CHECK(html_escape("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd);    // above U+10FFFF
  CHECK(html_escape("\x80x") == fffd + "x");                              // a stray continuation byte
  CHECK(html_escape(std::string("a\0b\x01\x1F\x7F", 6)) == "a" + fffd + "b" + fffd + fffd + fffd);
}
