// inspect/canvas and inspect/images: PNG bytes decode (stb_image) to the canvas pixels, the 5x7 font
// inks only inside each glyph's cell, images map [lo, hi] to 0..255, grids and charts have the sizes
// and colours their layout implies.
#include <gtest/gtest.h>

#include <stb/stb_image.h>

#include <cmath>
#include <memory>

#include "inspect/canvas.h"
#include "inspect/images.h"
#include "tensor/error.h"

using namespace gs;
using namespace gs::inspect;

namespace {
bool same(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
int count_ink(const Canvas& c, int y0, int x0, int h, int w, Rgb ink) {
  int n = 0;
  for (int y = y0; y < y0 + h; ++y)
    for (int x = x0; x < x0 + w; ++x) n += same(c.get(y, x), ink);
  return n;
}
}  // namespace

TEST(Canvas, PngDecodesToTheSamePixels) {
  Canvas c(13, 21, Rgb{10, 20, 30});
  c.fill_rect(2, 3, 4, 5, kRed);
  c.text(5, 1, "Ab9%", kGreen);
  std::string png = c.png();
  int w = 0, h = 0, channels = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()), int(png.size()), &w, &h, &channels, 3),
      stbi_image_free);
  ASSERT_TRUE(pixels);
  ASSERT_EQ(w, 21);
  ASSERT_EQ(h, 13);
  EXPECT_EQ(std::vector<uint8_t>(pixels.get(), pixels.get() + 13 * 21 * 3), c.rgb());
}

TEST(Canvas, GlyphsInkInsideTheirCellsAndDiffer) {
  Canvas c(20, 100, kWhite);
  int end = c.text(3, 2, "HI-?", kBlack, 2);
  EXPECT_EQ(end, 2 + 4 * 12);
  EXPECT_EQ(Canvas::text_width("HI-?", 2), 48);
  // Nothing outside the text's box: 7 rows x 2 tall, 6 columns x 2 wide per character (last column blank).
  EXPECT_EQ(count_ink(c, 0, 0, 20, 100, kBlack), count_ink(c, 3, 2, 14, 48, kBlack));
  // 'H' has 7 + 7 + 3 ink pixels at scale 1 (two uprights and the bar's middle): 17 * 4 at scale 2.
  EXPECT_EQ(count_ink(c, 3, 2, 14, 12, kBlack), 17 * 4);
  // Lower case is drawn upper case; an unknown character as '?'.
  Canvas a(8, 12), b(8, 12), q(8, 12), unknown(8, 12);
  a.text(0, 0, "h", kBlack), b.text(0, 0, "H", kBlack), q.text(0, 0, "?", kBlack), unknown.text(0, 0, "~", kBlack);
  EXPECT_EQ(a.rgb(), b.rgb());
  EXPECT_EQ(q.rgb(), unknown.rgb());
  EXPECT_NE(a.rgb(), q.rgb());
  // Every digit and letter has its own glyph.
  std::vector<std::vector<uint8_t>> seen;
  for (char ch : std::string("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
    Canvas g(8, 6);
    g.text(0, 0, std::string(1, ch), kBlack);
    for (const auto& other : seen) EXPECT_NE(g.rgb(), other) << ch;
    seen.push_back(g.rgb());
  }
}

TEST(Canvas, ImageMapsRangeAndZooms) {
  const float px[4] = {-1.0f, 0.0f, 1.0f, NAN};  // (1, 2, 2)
  Canvas c(4, 4);
  c.image(0, 0, px, 1, 2, 2, -1.0, 1.0, 2);
  EXPECT_TRUE(same(c.get(0, 0), Rgb{0, 0, 0}));
  EXPECT_TRUE(same(c.get(1, 1), Rgb{0, 0, 0}));  // zoom 2: a 2x2 block
  EXPECT_TRUE(same(c.get(0, 2), Rgb{128, 128, 128}));
  EXPECT_TRUE(same(c.get(2, 0), Rgb{255, 255, 255}));
  EXPECT_TRUE(same(c.get(3, 3), Rgb{255, 0, 255}));  // non-finite: magenta
}

TEST(Images, GridLayoutCaptionsAndErrors) {
  std::vector<float> v(3 * 4 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  Tensor images = from_vector(v, {3, 1, 4, 4});
  std::vector<std::vector<GridTile>> rows = {{{0, {"A"}}, {1, {"B"}, true, kRed}}, {{2, {}}}};
  Canvas g = image_grid(images, rows, {.zoom = 3, .title = "", .row_labels = {"ROW0", "ROW1"}});
  // Tiles: 4*3 + 2*4 pad = 20 wide; 12 + 8 + one caption line (9) = 29 tall; labels column 4 chars + 8.
  EXPECT_EQ(g.height(), 2 * 29);
  EXPECT_EQ(g.width(), (24 + 8) + 2 * 20);
  EXPECT_EQ(in_rows(std::vector<GridTile>(7), 3).size(), 3u);
  // The darkest pixel of image 0 is black, the brightest of image 2 white (one range for the grid).
  EXPECT_TRUE(same(g.get(4, 32 + 4), kBlack));
  EXPECT_TRUE(same(g.get(29 + 4 + 11, 32 + 4 + 11), kWhite));
  EXPECT_GT(count_ink(g, 0, 0, g.height(), g.width(), kRed), 0);  // the frame and caption of tile 1
  EXPECT_THROW(image_grid(images, {{{5, {}}}}, {}), Error);
  EXPECT_THROW(image_grid(images, rows, {.zoom = 1, .title = "", .row_labels = {"only one"}}), Error);
}

TEST(Images, HistogramBarsFollowCounts) {
  Canvas h = histogram_chart("T", {0, 1, 2, 3}, {5, 0, 10});
  // Bars 480/3 = 160 pixels apart (159 wide); the tallest 160 high, the others in proportion, 0 for 0.
  EXPECT_EQ(count_ink(h, 0, 0, h.height(), h.width(), kBlue), (80 + 0 + 160) * 159);
  EXPECT_THROW(histogram_chart("T", {0, 1}, {1, 2}), Error);
  Canvas heat = confusion_heatmap("C", {5, 1, 0, 9}, {"a", "b"});
  EXPECT_GT(heat.width(), 60);
  EXPECT_THROW(confusion_heatmap("C", {1, 2, 3}, {"a", "b"}), Error);
}
