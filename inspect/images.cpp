// Image grids, histogram charts and confusion heatmaps (inspect/images.h), and Inspector::log_images:
// a batch as one grid image for TensorBoard, each tile min-max scaled; with labels each tile gets a
// caption strip (prediction, then label, in a 3x5 digit font), green when right and red when wrong.
#include "inspect/images.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "autograd/tape.h"
#include "inspect/probes.h"
#include "tensor/raw_ops.h"

namespace gs::inspect {

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::vector<std::vector<GridTile>> in_rows(const std::vector<GridTile>& tiles, int columns) {
  GS_CHECK(columns > 0, "in_rows: columns must be positive, got %d", columns);
  std::vector<std::vector<GridTile>> rows;
  for (size_t i = 0; i < tiles.size(); i += size_t(columns))
    rows.emplace_back(tiles.begin() + i, tiles.begin() + std::min(tiles.size(), i + size_t(columns)));
  return rows;
}

Canvas image_grid(const Tensor& images, const std::vector<std::vector<GridTile>>& rows, const GridOptions& options) {
  GS_CHECK(images.dim() == 4, "image_grid: expects images [N,C,H,W], got %s", shape_str(images.shape()).c_str());
  GS_CHECK(options.zoom >= 1, "image_grid: zoom must be >= 1, got %d", options.zoom);
  GS_CHECK(options.row_labels.empty() || options.row_labels.size() == rows.size(),
           "image_grid: %zu row labels for %zu rows", options.row_labels.size(), rows.size());
  Tensor x = raw::contiguous(raw::to_dtype(images, DType::F32));
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const float* data = x.data<float>();
  // One value range for every tile shown.
  double lo = INFINITY, hi = -INFINITY;
  size_t columns = 0, caption_lines = 0;
  for (const auto& row : rows) {
    columns = std::max(columns, row.size());
    for (const auto& tile : row) {
      GS_CHECK(tile.image >= 0 && tile.image < N, "image_grid: tile image %lld out of range (%lld images)",
               (long long)tile.image, (long long)N);
      caption_lines = std::max(caption_lines, tile.caption.size());
      const float* img = data + tile.image * C * H * W;
      for (int64_t i = 0; i < C * H * W; ++i)
        if (std::isfinite(img[i])) lo = std::min<double>(lo, img[i]), hi = std::max<double>(hi, img[i]);
    }
  }
  const int pad = 4, line_h = Canvas::kTextHeight + 2;
  const int tile_w = int(W) * options.zoom + 2 * pad,
            tile_h = int(H) * options.zoom + 2 * pad + int(caption_lines) * line_h;
  int label_w = 0;
  for (const auto& label : options.row_labels) label_w = std::max(label_w, Canvas::text_width(label) + 2 * pad);
  const int title_h = options.title.empty() ? 0 : 2 * Canvas::kTextHeight + 2 * pad;
  const int width = std::max<int>(
      {label_w + int(std::max<size_t>(columns, 1)) * tile_w, Canvas::text_width(options.title, 2) + 2 * pad, 16});
  const int height = title_h + int(std::max<size_t>(rows.size(), 1)) * tile_h;
  Canvas canvas(height, width, kWhite);
  if (!options.title.empty()) canvas.text(pad, pad, options.title, kBlack, 2);
  const size_t max_chars = size_t(std::max(1, (tile_w - 2) / 6));
  for (size_t r = 0; r < rows.size(); ++r) {
    const int y0 = title_h + int(r) * tile_h;
    if (!options.row_labels.empty())
      canvas.text(y0 + pad + (int(H) * options.zoom - Canvas::kTextHeight) / 2, pad, options.row_labels[r], kBlack);
    for (size_t k = 0; k < rows[r].size(); ++k) {
      const GridTile& tile = rows[r][k];
      const int x0 = label_w + int(k) * tile_w;
      if (tile.framed)
        canvas.frame(y0 + pad - 2, x0 + pad - 2, int(H) * options.zoom + 4, int(W) * options.zoom + 4, tile.frame_color,
                     2);
      canvas.image(y0 + pad, x0 + pad, data + tile.image * C * H * W, C, H, W, lo, hi, options.zoom);
      for (size_t line = 0; line < tile.caption.size(); ++line) {
        std::string text = tile.caption[line].substr(0, max_chars);
        canvas.text(y0 + pad + int(H) * options.zoom + 3 + int(line) * line_h, x0 + 1, text,
                    tile.framed ? tile.frame_color : kBlack);
      }
    }
  }
  return canvas;
}

Canvas histogram_chart(const std::string& title, const std::vector<double>& edges, const std::vector<int64_t>& counts) {
  GS_CHECK(!counts.empty() && edges.size() == counts.size() + 1, "histogram_chart: %zu edges for %zu counts",
           edges.size(), counts.size());
  const int pad = 8, plot_h = 160, bar_w = std::max(2, 480 / int(counts.size()));
  const int plot_w = bar_w * int(counts.size());
  const int64_t peak = std::max<int64_t>(1, *std::max_element(counts.begin(), counts.end()));
  const std::string peak_text = std::to_string(peak);
  const int axis_x = pad + Canvas::text_width(peak_text) + 4, top = pad + 2 * Canvas::kTextHeight + 2 * pad;
  Canvas canvas(top + plot_h + 3 * Canvas::kTextHeight + 3 * pad,
                std::max(axis_x + plot_w + 2 * pad, Canvas::text_width(title, 2) + 2 * pad), kWhite);
  canvas.text(pad, pad, title, kBlack, 2);
  for (size_t i = 0; i < counts.size(); ++i) {
    int h = int(std::lround(double(plot_h) * double(counts[i]) / double(peak)));
    if (counts[i] > 0) h = std::max(h, 1);  // a non-empty bucket is always visible
    canvas.fill_rect(top + plot_h - h, axis_x + 1 + int(i) * bar_w, h, std::max(1, bar_w - 1), kBlue);
  }
  canvas.vline(axis_x, top, top + plot_h, kBlack);
  canvas.hline(top + plot_h, axis_x, axis_x + plot_w + 1, kBlack);
  canvas.text(top - 3, pad, peak_text, kBlack);
  canvas.text(top + plot_h - Canvas::kTextHeight, pad, "0", kBlack);
  const int label_y = top + plot_h + 4;
  canvas.text(label_y, axis_x, short_number(edges.front()), kBlack);
  std::string last = short_number(edges.back());
  canvas.text(label_y, axis_x + plot_w - Canvas::text_width(last), last, kBlack);
  std::string mid = short_number(0.5 * (edges.front() + edges.back()));
  canvas.text(label_y, axis_x + (plot_w - Canvas::text_width(mid)) / 2, mid, kBlack);
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  canvas.text(label_y + Canvas::kTextHeight + pad, axis_x, "N=" + std::to_string(total), kGray);
  return canvas;
}

Canvas confusion_heatmap(const std::string& title, const std::vector<int64_t>& matrix,
                         const std::vector<std::string>& names) {
  const int K = int(names.size());
  GS_CHECK(K > 0 && matrix.size() == size_t(K) * K, "confusion_heatmap: %zu values for %d classes", matrix.size(), K);
  int64_t biggest = 0;
  for (int64_t v : matrix) biggest = std::max(biggest, v);
  const int cell = std::max(30, Canvas::text_width(std::to_string(biggest)) + 6), pad = 8;
  int label_w = 0;
  for (int i = 0; i < K; ++i) label_w = std::max(label_w, Canvas::text_width(std::to_string(i) + " " + names[i]));
  const int x0 = pad + label_w + pad + 10, y0 = pad + 2 * Canvas::kTextHeight + 3 * pad + Canvas::kTextHeight + 4;
  const int width = std::max(x0 + K * cell + pad, Canvas::text_width(title, 2) + 2 * pad);
  Canvas canvas(y0 + K * cell + 2 * Canvas::kTextHeight + 3 * pad, width, kWhite);
  canvas.text(pad, pad, title, kBlack, 2);
  canvas.text(y0 - 2 * Canvas::kTextHeight - 8, x0, "PREDICTED", kGray);
  canvas.text(y0 + K * cell + pad, pad, "ROWS: TRUE CLASS", kGray);
  for (int i = 0; i < K; ++i) {
    int64_t row_total = 0;
    for (int j = 0; j < K; ++j) row_total += matrix[size_t(i) * K + j];
    canvas.text(y0 + i * cell + (cell - Canvas::kTextHeight) / 2, pad, std::to_string(i) + " " + names[i], kBlack);
    std::string col = std::to_string(i);
    canvas.text(y0 - Canvas::kTextHeight - 4, x0 + i * cell + (cell - Canvas::text_width(col)) / 2, col, kBlack);
    for (int j = 0; j < K; ++j) {
      const int64_t v = matrix[size_t(i) * K + j];
      const double f = row_total > 0 ? double(v) / double(row_total) : 0.0;
      // White to dark blue on the diagonal, white to dark red off it (the errors stand out).
      const double s = std::sqrt(f);  // small error rates stay visible
      Rgb shade = i == j ? Rgb{uint8_t(255 - 215 * s), uint8_t(255 - 165 * s), uint8_t(255 - 55 * s)}
                         : Rgb{uint8_t(255 - 45 * s), uint8_t(255 - 225 * s), uint8_t(255 - 225 * s)};
      canvas.fill_rect(y0 + i * cell, x0 + j * cell, cell, cell, shade);
      canvas.frame(y0 + i * cell, x0 + j * cell, cell + 1, cell + 1, Rgb{200, 200, 200});
      std::string text = std::to_string(v);
      canvas.text(y0 + i * cell + (cell - Canvas::kTextHeight) / 2,
                  x0 + j * cell + (cell - Canvas::text_width(text)) / 2, text, s > 0.6 ? kWhite : kBlack);
    }
  }
  return canvas;
}

void Inspector::log_images(const std::string& tag, const Tensor& images, int64_t step,
                           const std::vector<int64_t>& labels, const std::vector<int64_t>& predictions,
                           int max_images) {
  if (!tensorboard_) return;
  GS_CHECK(images.dim() == 4, "log_images: expects [N,C,H,W], got %s", shape_str(images.shape()).c_str());
  Tensor x = raw::contiguous(raw::to_dtype(images, DType::F32));
  const int64_t N = std::min<int64_t>(x.shape()[0], max_images), C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  if (N == 0) return;
  const bool captions = !labels.empty();
  const int pad = 2, caption = captions ? 8 : 0;
  const int cols = int(std::ceil(std::sqrt(double(N)))), rows = int((N + cols - 1) / cols);
  const int tile_h = int(H) + caption + 2 * pad, tile_w = int(W) + 2 * pad;
  Canvas canvas(rows * tile_h, cols * tile_w, kBlack);
  const float* values = x.data<float>();
  for (int64_t n = 0; n < N; ++n) {
    const float* img = values + n * C * H * W;
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < C * H * W; ++i) {
      if (std::isfinite(img[i])) lo = std::min<double>(lo, img[i]), hi = std::max<double>(hi, img[i]);
    }
    int y0 = int(n / cols) * tile_h + pad, x0 = int(n % cols) * tile_w + pad;
    bool predicted = captions && size_t(n) < predictions.size();
    bool right = predicted && predictions[n] == labels[n];
    if (predicted) canvas.frame(y0 - 1, x0 - 1, int(H) + 2, int(W) + 2, right ? Rgb{0, 200, 0} : Rgb{220, 0, 0});
    canvas.image(y0, x0, img, C, H, W, lo, hi);
    if (captions) {
      int y = y0 + int(H) + 2, xc = x0;
      if (predicted) xc = canvas.small_number(y, xc, predictions[n], right ? Rgb{80, 255, 80} : Rgb{255, 80, 80}) + 2;
      canvas.small_number(y, xc, labels[n], Rgb{200, 200, 200});
    }
  }
  tensorboard_->add_image(tag, canvas.rgb(), canvas.height(), canvas.width(), 3, step);
  tensorboard_->flush();
}

void Inspector::log_predictions(nn::Module& model, const Tensor& images, const Tensor& labels, int64_t step) {
  if (!tensorboard_) return;
  bool was_training = model.is_training();
  std::vector<int64_t> predictions;
  {
    model.eval();
    NoGradGuard no_grad;
    predictions = argmax(model(images.to(model.device())), 1).to_vector<int64_t>();
  }
  model.train(was_training);
  log_images("predictions", images, step, labels.to_vector<int64_t>(), predictions);
}

}  // namespace gs::inspect
