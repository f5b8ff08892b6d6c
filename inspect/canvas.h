// Canvas: an RGB raster for the pictures gradscope writes (image grids, histograms, heatmaps), with
// a built-in 5x7 bitmap font (upper case, digits, common punctuation; lower case is drawn upper case)
// and the 3x5 digit font of the TensorBoard captions. Grids and charts built on it: inspect/images.h.
//
//   gs::inspect::Canvas c(100, 200);                 // white
//   c.text(4, 4, "Shirt 87%", {0, 0, 0}, 2);          // 2 canvas pixels per font pixel
//   c.save_png("out.png");                            // atomic
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gs::inspect {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};
inline constexpr Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0}, kGray{128, 128, 128}, kRed{220, 30, 30},
    kGreen{20, 160, 40}, kBlue{40, 90, 200};

class Canvas {
 public:
  Canvas(int height, int width, Rgb background = kWhite);
  int height() const { return height_; }
  int width() const { return width_; }
  const std::vector<uint8_t>& rgb() const { return rgb_; }  // row-major, 3 bytes a pixel

  void set(int y, int x, Rgb c);  // outside the canvas: ignored
  Rgb get(int y, int x) const;
  void fill_rect(int y, int x, int h, int w, Rgb c);
  void frame(int y, int x, int h, int w, Rgb c, int thickness = 1);  // a rectangle's border, inside it
  void hline(int y, int x0, int x1, Rgb c);
  void vline(int x, int y0, int y1, Rgb c);

  // Text in the 5x7 font, top-left at (y, x); `scale` canvas pixels per font pixel. Returns the x
  // after the text. Characters the font lacks are drawn as '?'.
  int text(int y, int x, const std::string& s, Rgb c, int scale = 1);
  static int text_width(const std::string& s, int scale = 1) { return int(s.size()) * 6 * scale; }
  static constexpr int kTextHeight = 7;
  // A non-negative number in the 3x5 digit font (4 pixels a digit); returns the x after it.
  int small_number(int y, int x, int64_t value, Rgb c);

  // Draws one image (C, H, W floats; C = 3 is RGB, else the first channel as gray), mapping [lo, hi]
  // to 0..255, each image pixel as a zoom x zoom block; non-finite values are drawn magenta.
  void image(int y, int x, const float* chw, int64_t C, int64_t H, int64_t W, double lo, double hi, int zoom = 1);

  std::string png() const;                       // PNG bytes (io::encode_png)
  void save_png(const std::string& path) const;  // written atomically

 private:
  int height_, width_;
  std::vector<uint8_t> rgb_;
};

}  // namespace gs::inspect
