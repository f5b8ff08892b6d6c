// Image metadata, distributions and z-scores (inspect/data_stats.h).
#include "inspect/data_stats.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tensor/error.h"
#include "tensor/raw_ops.h"

namespace gs::inspect {

ImageMetadata image_metadata(const Tensor& images, const std::vector<int64_t>& heights,
                             const std::vector<int64_t>& widths) {
  GS_CHECK(images.dim() == 4, "image_metadata: expects images [N,C,H,W], got %s", shape_str(images.shape()).c_str());
  Tensor x = raw::contiguous(raw::to_dtype(images, DType::F64));
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3], HW = H * W;
  const bool source_sizes = !heights.empty() || !widths.empty();
  GS_CHECK(!source_sizes || (int64_t(heights.size()) == N && int64_t(widths.size()) == N),
           "image_metadata: %zu heights and %zu widths for %lld images", heights.size(), widths.size(), (long long)N);
  const double* data = x.data<double>();
  ImageMetadata meta;
  meta.values.assign(meta.names.size(), std::vector<double>(size_t(N)));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const double* img = data + n * C * HW;
    double sum = 0, sum_sq = 0;
    for (int64_t p = 0; p < HW; ++p) {
      double lum = 0;
      if (C == 3) {
        lum = 0.299 * img[p] + 0.587 * img[HW + p] + 0.114 * img[2 * HW + p];
      } else {
        for (int64_t c = 0; c < C; ++c) lum += img[c * HW + p];
        lum /= double(C);
      }
      sum += lum;
      sum_sq += lum * lum;
    }
    const double mean = sum / double(HW);
    const double h = source_sizes ? double(heights[size_t(n)]) : double(H);
    const double w = source_sizes ? double(widths[size_t(n)]) : double(W);
    meta.values[0][size_t(n)] = h;
    meta.values[1][size_t(n)] = w;
    meta.values[2][size_t(n)] = w / h;
    meta.values[3][size_t(n)] = mean;
    meta.values[4][size_t(n)] = std::sqrt(std::max(0.0, sum_sq / double(HW) - mean * mean));
  }
  return meta;
}

double quantile(std::vector<double> values, double q) {
  GS_CHECK(!values.empty(), "quantile: no values");
  std::sort(values.begin(), values.end());
  const double pos = std::clamp(q, 0.0, 1.0) * double(values.size() - 1);
  const size_t lo = size_t(std::floor(pos)), hi = std::min(values.size() - 1, lo + 1);
  return values[lo] + (pos - double(lo)) * (values[hi] - values[lo]);
}

Distribution distribution(const std::vector<double>& values, int bins) {
  GS_CHECK(!values.empty(), "distribution: no values");
  GS_CHECK(bins > 0, "distribution: bins must be positive, got %d", bins);
  Distribution d;
  d.count = int64_t(values.size());
  double sum = 0;
  d.min = INFINITY, d.max = -INFINITY;
  for (double v : values) {
    GS_CHECK(std::isfinite(v), "distribution: non-finite value %g", v);
    sum += v;
    d.min = std::min(d.min, v), d.max = std::max(d.max, v);
  }
  d.mean = sum / double(d.count);
  double ss = 0;
  for (double v : values) ss += (v - d.mean) * (v - d.mean);
  d.std = std::sqrt(ss / double(d.count));
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  auto q = [&](double p) {
    const double pos = p * double(sorted.size() - 1);
    const size_t lo = size_t(std::floor(pos)), hi = std::min(sorted.size() - 1, lo + 1);
    return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
  };
  d.p01 = q(0.01), d.p05 = q(0.05), d.p50 = q(0.5), d.p95 = q(0.95), d.p99 = q(0.99);
  double lo = d.min, hi = d.max;
  if (hi <= lo) lo -= 0.5, hi += 0.5;
  d.edges.resize(size_t(bins) + 1);
  for (int i = 0; i <= bins; ++i) d.edges[size_t(i)] = lo + (hi - lo) * double(i) / double(bins);
  d.counts.assign(size_t(bins), 0);
  for (double v : values) {
    int64_t b = int64_t(std::floor((v - lo) / (hi - lo) * double(bins)));
    d.counts[size_t(std::clamp<int64_t>(b, 0, bins - 1))]++;
  }
  return d;
}

std::vector<double> z_scores(const std::vector<double>& values) {
  std::vector<double> z(values.size(), 0.0);
  if (values.empty()) return z;
  double mean = 0;
  for (double v : values) mean += v;
  mean /= double(values.size());
  double ss = 0;
  for (double v : values) ss += (v - mean) * (v - mean);
  const double std = std::sqrt(ss / double(values.size()));
  // A spread this small relative to the values is rounding, not variation.
  if (!(std > 1e-12 * std::max(1.0, std::abs(mean)))) return z;
  for (size_t i = 0; i < values.size(); ++i) z[i] = (values[i] - mean) / std;
  return z;
}

std::vector<MetadataOutlier> metadata_outliers(const ImageMetadata& meta) {
  std::vector<MetadataOutlier> out(size_t(meta.size()));
  for (size_t m = 0; m < meta.values.size(); ++m) {
    std::vector<double> z = z_scores(meta.values[m]);
    for (size_t i = 0; i < z.size(); ++i) {
      if (std::abs(z[i]) > out[i].max_abs_z) out[i] = {std::abs(z[i]), int(m)};
    }
  }
  return out;
}

std::string metadata_csv(const ImageMetadata& meta, const std::vector<int64_t>& labels) {
  GS_CHECK(int64_t(labels.size()) == meta.size(), "metadata_csv: %zu labels for %lld images", labels.size(),
           (long long)meta.size());
  std::ostringstream out;
  out.precision(9);
  out << "index,label";
  for (const auto& name : meta.names) out << ',' << name;
  out << '\n';
  for (int64_t i = 0; i < meta.size(); ++i) {
    out << i << ',' << labels[size_t(i)];
    for (const auto& column : meta.values) out << ',' << column[size_t(i)];
    out << '\n';
  }
  return out.str();
}

std::string metadata_summary_json(const ImageMetadata& meta, const std::vector<int64_t>& labels,
                                  const std::vector<std::string>& class_names, int bins) {
  GS_CHECK(int64_t(labels.size()) == meta.size(), "metadata_summary_json: %zu labels for %lld images", labels.size(),
           (long long)meta.size());
  nlohmann::json j;
  j["images"] = meta.size();
  for (size_t m = 0; m < meta.names.size(); ++m) {
    Distribution d = distribution(meta.values[m], bins);
    j["metrics"][meta.names[m]] = {{"mean", d.mean}, {"std", d.std},
                                   {"min", d.min},   {"max", d.max},
                                   {"p01", d.p01},   {"p05", d.p05},
                                   {"p50", d.p50},   {"p95", d.p95},
                                   {"p99", d.p99},   {"histogram", {{"edges", d.edges}, {"counts", d.counts}}}};
  }
  const size_t K = class_names.size();
  std::vector<int64_t> count(K, 0);
  std::vector<std::vector<double>> sums(meta.names.size(), std::vector<double>(K, 0.0));
  for (size_t i = 0; i < labels.size(); ++i) {
    GS_CHECK(labels[i] >= 0 && size_t(labels[i]) < K, "metadata_summary_json: label %lld outside 0..%zu",
             (long long)labels[i], K - 1);
    count[size_t(labels[i])]++;
    for (size_t m = 0; m < meta.names.size(); ++m) sums[m][size_t(labels[i])] += meta.values[m][i];
  }
  nlohmann::json per_class = nlohmann::json::object();
  for (size_t k = 0; k < K; ++k) {
    nlohmann::json c{{"label", k}, {"count", count[k]}};
    for (size_t m = 0; m < meta.names.size(); ++m)
      c[meta.names[m] + "_mean"] = count[k] ? sums[m][k] / double(count[k]) : 0.0;
    per_class[class_names[k]] = c;
  }
  j["per_class"] = per_class;
  return j.dump(2);
}

}  // namespace gs::inspect
