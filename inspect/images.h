// Pictures of data and predictions as PNG-ready Canvases (inspect/canvas.h): image grids with
// captions and labelled rows, histogram bar charts and confusion-matrix heatmaps. Used by
// `gradscope inspect` (cli/inspect_command.cpp); Inspector::log_images (TensorBoard) is in images.cpp too.
//
//   std::vector<std::vector<GridTile>> rows = {{{0, {"Shirt"}}, {5, {"Coat"}}}};
//   image_grid(images, rows, {.zoom = 3, .title = "worst"}).save_png("worst.png");
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "inspect/canvas.h"
#include "tensor/tensor.h"

namespace gs::inspect {

struct GridTile {
  int64_t image = 0;                 // index into the images tensor
  std::vector<std::string> caption;  // lines under the tile, cut to the tile's width
  bool framed = false;               // a coloured frame (e.g. red: wrong, green: right)
  Rgb frame_color = kRed;
};

struct GridOptions {
  int zoom = 2;                         // canvas pixels per image pixel
  std::string title;                    // drawn above the grid
  std::vector<std::string> row_labels;  // one per row, drawn left of it (empty: none)
};

// Tiles in rows (rows may differ in length). images: f32 (N, C, H, W), every tile drawn with the same
// [min, max] of the finite values of the images it shows, so brightness differences stay visible.
Canvas image_grid(const Tensor& images, const std::vector<std::vector<GridTile>>& rows, const GridOptions& options);
// `tiles` in rows of `columns`.
std::vector<std::vector<GridTile>> in_rows(const std::vector<GridTile>& tiles, int columns);

// A bar chart of counts[i] over [edges[i], edges[i+1]); axis ends labelled with their values.
Canvas histogram_chart(const std::string& title, const std::vector<double>& edges, const std::vector<int64_t>& counts);

// A K x K count matrix (row-major; rows: true class, columns: predicted) as a heatmap shaded by the
// row-normalised value, each cell showing its count; rows labelled "i name", columns by index.
Canvas confusion_heatmap(const std::string& title, const std::vector<int64_t>& matrix,
                         const std::vector<std::string>& names);

// "%.3g" without a trailing exponent padding, for axis labels.
std::string short_number(double v);

}  // namespace gs::inspect
