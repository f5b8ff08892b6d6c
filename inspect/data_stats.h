// Per-image metadata of a data set (size, aspect ratio, brightness, contrast), their distributions
// and z-scores: the numbers behind `gradscope inspect data` and the metadata ranking of
// `inspect outliers`. Pictures of them: inspect/images.h; the command: cli/inspect_command.cpp.
//
//   ImageMetadata meta = image_metadata(train.images);          // images f32 (N,C,H,W) in [0,1]
//   Distribution d = distribution(meta.values[3], 40);          // brightness: mean, std, quantiles, histogram
//   std::vector<double> z = z_scores(meta.values[3]);
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace gs::inspect {

struct ImageMetadata {
  // height, width (pixels), aspect (width / height), brightness (mean luminance in [0,1]) and
  // contrast (RMS contrast: the standard deviation of the luminance over the image's pixels).
  // Luminance: the channel itself for 1 channel, 0.299 R + 0.587 G + 0.114 B for 3, the channel mean otherwise.
  std::vector<std::string> names{"height", "width", "aspect", "brightness", "contrast"};
  std::vector<std::vector<double>> values;  // [metric][image]
  int64_t size() const { return values.empty() ? 0 : int64_t(values[0].size()); }
};

// Metadata of every image of images (N, C, H, W). In-memory data sets hold images of one size, so
// height/width/aspect come from heights/widths when given (io::Dataset::source_heights/widths: an
// image folder's sizes before resizing), else from the stored size.
ImageMetadata image_metadata(const Tensor& images, const std::vector<int64_t>& heights = {},
                             const std::vector<int64_t>& widths = {});

struct Distribution {
  int64_t count = 0;
  double mean = 0, std = 0, min = 0, max = 0;          // std: population (divides by count)
  double p01 = 0, p05 = 0, p50 = 0, p95 = 0, p99 = 0;  // quantiles, linear interpolation between order statistics
  std::vector<double> edges;                           // bins + 1 edges over [min, max] (a constant: [v-0.5, v+0.5])
  std::vector<int64_t> counts;                         // values in [edges[i], edges[i+1]); the last bin includes max
};
// Non-finite values are an error (they have no place in metadata).
Distribution distribution(const std::vector<double>& values, int bins = 40);
double quantile(std::vector<double> values, double q);  // q in [0, 1]

// (v - mean) / std with the population std; all zeros when std is 0.
std::vector<double> z_scores(const std::vector<double>& values);

// For each image, the largest |z| over the metadata metrics and the metric that gave it.
struct MetadataOutlier {
  double max_abs_z = 0;
  int metric = -1;  // index into ImageMetadata::names; -1 when every metric is constant
};
std::vector<MetadataOutlier> metadata_outliers(const ImageMetadata& meta);

// One line per image: index,label,<metric>... (header first).
std::string metadata_csv(const ImageMetadata& meta, const std::vector<int64_t>& labels);
// {"images": N, "metrics": {name: {mean, std, min, max, p01.., histogram: {edges, counts}}},
//  "per_class": {class name: {count, <metric>_mean...}}} as JSON text.
std::string metadata_summary_json(const ImageMetadata& meta, const std::vector<int64_t>& labels,
                                  const std::vector<std::string>& class_names, int bins = 40);

}  // namespace gs::inspect
