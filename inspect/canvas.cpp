// Canvas drawing and the two bitmap fonts (inspect/canvas.h).
#include "inspect/canvas.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>

#include "io/safetensors.h"
#include "io/tensorboard.h"
#include "tensor/error.h"

namespace gs::inspect {

namespace {

// 5x7 glyphs, one string per row, '#' = ink.
using Glyph = std::array<const char*, 7>;
const std::map<char, Glyph>& font() {
  static const std::map<char, Glyph> glyphs{
      {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
      {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
      {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
      {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
      {'D', {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."}},
      {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
      {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
      {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
      {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
      {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
      {'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
      {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
      {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
      {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
      {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
      {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
      {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
      {'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
      {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
      {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
      {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
      {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
      {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
      {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
      {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
      {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
      {'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
      {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
      {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
      {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
      {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
      {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
      {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
      {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
      {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
      {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
      {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
      {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
      {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
      {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
      {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
      {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
      {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
      {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
      {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
      {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
      {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
      {'[', {".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."}},
      {']', {".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."}},
      {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
      {'#', {".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."}},
      {'>', {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."}},
      {'<', {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."}},
      {'*', {".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."}},
      {'!', {"..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."}},
      {'\'', {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."}},
      {'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
  };
  return glyphs;
}

// 3x5 bitmaps of 0-9, one row per 3 bits (MSB = left).
constexpr uint8_t kDigits[10][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7},
                                    {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1},
                                    {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};

}  // namespace

Canvas::Canvas(int height, int width, Rgb background) : height_(height), width_(width) {
  GS_CHECK(height > 0 && width > 0 && int64_t(height) * width <= (int64_t(1) << 28), "Canvas: bad size %dx%d", height,
           width);
  rgb_.resize(size_t(height) * width * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3)
    rgb_[i] = background.r, rgb_[i + 1] = background.g, rgb_[i + 2] = background.b;
}

void Canvas::set(int y, int x, Rgb c) {
  if (y < 0 || x < 0 || y >= height_ || x >= width_) return;
  uint8_t* p = &rgb_[(size_t(y) * width_ + x) * 3];
  p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

Rgb Canvas::get(int y, int x) const {
  if (y < 0 || x < 0 || y >= height_ || x >= width_) return {};
  const uint8_t* p = &rgb_[(size_t(y) * width_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void Canvas::fill_rect(int y, int x, int h, int w, Rgb c) {
  for (int i = std::max(0, y); i < std::min(height_, y + h); ++i)
    for (int j = std::max(0, x); j < std::min(width_, x + w); ++j) set(i, j, c);
}

void Canvas::frame(int y, int x, int h, int w, Rgb c, int thickness) {
  fill_rect(y, x, thickness, w, c);
  fill_rect(y + h - thickness, x, thickness, w, c);
  fill_rect(y, x, h, thickness, c);
  fill_rect(y, x + w - thickness, h, thickness, c);
}

void Canvas::hline(int y, int x0, int x1, Rgb c) { fill_rect(y, std::min(x0, x1), 1, std::abs(x1 - x0) + 1, c); }
void Canvas::vline(int x, int y0, int y1, Rgb c) { fill_rect(std::min(y0, y1), x, std::abs(y1 - y0) + 1, 1, c); }

int Canvas::text(int y, int x, const std::string& s, Rgb c, int scale) {
  const auto& glyphs = font();
  for (char raw : s) {
    auto it = glyphs.find(char(std::toupper(static_cast<unsigned char>(raw))));
    const Glyph& g = it != glyphs.end() ? it->second : glyphs.at('?');
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col)
        if (g[row][col] == '#') fill_rect(y + row * scale, x + col * scale, scale, scale, c);
    x += 6 * scale;
  }
  return x;
}

int Canvas::small_number(int y, int x, int64_t value, Rgb c) {
  for (char ch : std::to_string(std::max<int64_t>(value, 0))) {
    const uint8_t* glyph = kDigits[ch - '0'];
    for (int row = 0; row < 5; ++row)
      for (int col = 0; col < 3; ++col)
        if (glyph[row] & (4 >> col)) set(y + row, x + col, c);
    x += 4;
  }
  return x;
}

void Canvas::image(int y, int x, const float* chw, int64_t C, int64_t H, int64_t W, double lo, double hi, int zoom) {
  const double scale = hi > lo ? 255.0 / (hi - lo) : 0.0;
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t w = 0; w < W; ++w) {
      uint8_t v[3];
      bool finite = true;
      for (int c = 0; c < 3; ++c) {
        double p = chw[(C == 3 ? c : 0) * H * W + h * W + w];
        finite = finite && std::isfinite(p);
        v[c] = std::isfinite(p) ? uint8_t(std::lround(std::clamp((p - lo) * scale, 0.0, 255.0))) : 0;
      }
      Rgb color = finite ? Rgb{v[0], v[1], v[2]} : Rgb{255, 0, 255};
      fill_rect(y + int(h) * zoom, x + int(w) * zoom, zoom, zoom, color);
    }
  }
}

std::string Canvas::png() const { return io::encode_png(rgb_, height_, width_, 3); }

void Canvas::save_png(const std::string& path) const { io::write_file_atomic(path, png()); }

}  // namespace gs::inspect
