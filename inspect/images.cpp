// Inspector::log_images: a batch as one grid image for TensorBoard, each tile min-max scaled;
// with labels each tile gets a caption strip (prediction, then label, in a 3x5 digit font),
// green when the prediction is right and red when wrong.
#include <algorithm>
#include <cmath>

#include "autograd/tape.h"
#include "inspect/probes.h"
#include "tensor/raw_ops.h"

namespace gs::inspect {

namespace {

// 3x5 bitmaps of 0-9, one row per 3 bits (MSB = left).
constexpr uint8_t kDigits[10][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7},
                                    {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1},
                                    {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};

struct Canvas {
  int height, width;
  std::vector<uint8_t> rgb;
  Canvas(int h, int w) : height(h), width(w), rgb(size_t(h) * w * 3, 0) {}
  void set(int y, int x, uint8_t r, uint8_t g, uint8_t b) {
    if (y < 0 || x < 0 || y >= height || x >= width) return;
    uint8_t* p = &rgb[(size_t(y) * width + x) * 3];
    p[0] = r, p[1] = g, p[2] = b;
  }
  // Draws a non-negative number at (y, x); returns the x after it.
  int number(int y, int x, int64_t value, uint8_t r, uint8_t g, uint8_t b) {
    std::string digits = std::to_string(std::max<int64_t>(value, 0));
    for (char ch : digits) {
      const uint8_t* glyph = kDigits[ch - '0'];
      for (int row = 0; row < 5; ++row) {
        for (int col = 0; col < 3; ++col) {
          if (glyph[row] & (4 >> col)) set(y + row, x + col, r, g, b);
        }
      }
      x += 4;
    }
    return x;
  }
};

}  // namespace

void Inspector::log_images(const std::string& tag, const Tensor& images, int64_t step,
                           const std::vector<int64_t>& labels, const std::vector<int64_t>& predictions,
                           int max_images) {
  if (!tensorboard_) return;
  GS_CHECK(images.dim() == 4, "log_images: expects [N,C,H,W], got %s", shape_str(images.shape()).c_str());
  Tensor x = raw::contiguous(images);
  const int64_t N = std::min<int64_t>(x.shape()[0], max_images), C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  if (N == 0) return;
  const bool captions = !labels.empty();
  const int pad = 2, caption = captions ? 8 : 0;
  const int cols = int(std::ceil(std::sqrt(double(N)))), rows = int((N + cols - 1) / cols);
  const int tile_h = int(H) + caption + 2 * pad, tile_w = int(W) + 2 * pad;
  Canvas canvas(rows * tile_h, cols * tile_w);
  std::vector<double> values = raw::contiguous(x).to_vector<double>();
  for (int64_t n = 0; n < N; ++n) {
    const double* img = values.data() + n * C * H * W;
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < C * H * W; ++i) {
      if (std::isfinite(img[i])) lo = std::min(lo, img[i]), hi = std::max(hi, img[i]);
    }
    double scale = hi > lo ? 255.0 / (hi - lo) : 0.0;
    int y0 = int(n / cols) * tile_h + pad, x0 = int(n % cols) * tile_w + pad;
    bool right = captions && size_t(n) < predictions.size() && predictions[n] == labels[n];
    if (captions && size_t(n) < predictions.size()) {  // a one-pixel frame: green right, red wrong
      for (int i = -1; i <= int(W); ++i) {
        canvas.set(y0 - 1, x0 + i, right ? 0 : 220, right ? 200 : 0, 0);
        canvas.set(y0 + int(H), x0 + i, right ? 0 : 220, right ? 200 : 0, 0);
      }
      for (int i = 0; i < int(H); ++i) {
        canvas.set(y0 + i, x0 - 1, right ? 0 : 220, right ? 200 : 0, 0);
        canvas.set(y0 + i, x0 + int(W), right ? 0 : 220, right ? 200 : 0, 0);
      }
    }
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t w = 0; w < W; ++w) {
        uint8_t rgb[3];
        for (int c = 0; c < 3; ++c) {
          double v = img[(C == 3 ? c : 0) * H * W + h * W + w];
          rgb[c] = std::isfinite(v) ? uint8_t(std::clamp((v - lo) * scale, 0.0, 255.0)) : 255;
        }
        canvas.set(y0 + int(h), x0 + int(w), rgb[0], rgb[1], rgb[2]);
      }
    }
    if (captions) {
      int y = y0 + int(H) + 2, xc = x0;
      if (size_t(n) < predictions.size()) {
        xc = canvas.number(y, xc, predictions[n], right ? 80 : 255, right ? 255 : 80, 80);
        xc += 2;
      }
      canvas.number(y, xc, labels[n], 200, 200, 200);
    }
  }
  tensorboard_->add_image(tag, canvas.rgb, canvas.height, canvas.width, 3, step);
  tensorboard_->flush();
}

void Inspector::log_predictions(nn::Module& model, const Tensor& images, const Tensor& labels, int64_t step) {
  if (!tensorboard_) return;
  bool was_training = model.is_training();
  std::vector<int64_t> predictions;
  {
    model.eval();
    NoGradGuard no_grad;
    predictions = argmax(model(images), 1).to_vector<int64_t>();
  }
  model.train(was_training);
  log_images("predictions", images, step, labels.to_vector<int64_t>(), predictions);
}

}  // namespace gs::inspect
