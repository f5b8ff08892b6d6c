// Centroid and kNN distances, percentile ranks and the combined outlier score (inspect/outliers.h).
#include "inspect/outliers.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tensor/error.h"
#include "tensor/raw_ops.h"

namespace gs::inspect {

namespace {
// Rows of embeddings as f64, contiguous, checked against labels.
Tensor as_rows(const Tensor& embeddings, const std::vector<int64_t>& labels, const char* what) {
  GS_CHECK(embeddings.dim() == 2, "%s: expects embeddings [N,D], got %s", what, shape_str(embeddings.shape()).c_str());
  GS_CHECK(embeddings.shape()[0] == int64_t(labels.size()), "%s: %lld embeddings but %zu labels", what,
           (long long)embeddings.shape()[0], labels.size());
  return raw::contiguous(raw::to_dtype(embeddings, DType::F64));
}

std::vector<std::vector<int64_t>> members_by_label(const std::vector<int64_t>& labels) {
  std::vector<std::vector<int64_t>> members;
  for (size_t i = 0; i < labels.size(); ++i) {
    GS_CHECK(labels[i] >= 0, "outliers: negative label %lld at %zu", (long long)labels[i], i);
    if (size_t(labels[i]) >= members.size()) members.resize(size_t(labels[i]) + 1);
    members[size_t(labels[i])].push_back(int64_t(i));
  }
  return members;
}
}  // namespace

std::vector<double> centroid_distances(const Tensor& embeddings, const std::vector<int64_t>& labels,
                                       int64_t num_classes) {
  Tensor e = as_rows(embeddings, labels, "centroid_distances");
  const int64_t N = e.shape()[0], D = e.shape()[1];
  const double* x = e.data<double>();
  std::vector<double> centroids(size_t(num_classes * D), 0.0);
  std::vector<int64_t> count(size_t(num_classes), 0);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t c = labels[size_t(i)];
    GS_CHECK(c >= 0 && c < num_classes, "centroid_distances: label %lld outside 0..%lld", (long long)c,
             (long long)num_classes - 1);
    count[size_t(c)]++;
    for (int64_t d = 0; d < D; ++d) centroids[size_t(c * D + d)] += x[i * D + d];
  }
  for (int64_t c = 0; c < num_classes; ++c)
    for (int64_t d = 0; d < D; ++d) centroids[size_t(c * D + d)] /= double(std::max<int64_t>(1, count[size_t(c)]));
  std::vector<double> out(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    const double* mu = &centroids[size_t(labels[size_t(i)] * D)];
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += (x[i * D + d] - mu[d]) * (x[i * D + d] - mu[d]);
    out[size_t(i)] = std::sqrt(ss);
  }
  return out;
}

std::vector<double> knn_distances(const Tensor& embeddings, const std::vector<int64_t>& labels, int64_t k) {
  GS_CHECK(k > 0, "knn_distances: k must be positive, got %lld", (long long)k);
  Tensor e = as_rows(embeddings, labels, "knn_distances");
  const int64_t D = e.shape()[1];
  std::vector<double> out(labels.size(), 0.0);
  for (const auto& members : members_by_label(labels)) {
    const int64_t n = int64_t(members.size());
    if (n < 2) continue;
    Tensor rows = raw::index_select(e, 0, from_vector(members, {n}));
    const double* x = rows.data<double>();
    std::vector<double> norms(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t d = 0; d < D; ++d) s += x[i * D + d] * x[i * D + d];
      norms[size_t(i)] = s;
    }
    const int64_t neighbours = std::min(k, n - 1), block = 512;
    for (int64_t r0 = 0; r0 < n; r0 += block) {
      const int64_t b = std::min(block, n - r0);
      // |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, the a.b of a block of rows against all rows as one GEMM.
      Tensor gram = raw::contiguous(raw::mm(raw::narrow(rows, 0, r0, b), rows, false, true));
      const double* g = gram.data<double>();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < b; ++i) {
        std::vector<double> d2;
        d2.reserve(size_t(n - 1));
        for (int64_t j = 0; j < n; ++j) {
          if (j == r0 + i) continue;
          d2.push_back(std::max(0.0, norms[size_t(r0 + i)] + norms[size_t(j)] - 2.0 * g[i * n + j]));
        }
        std::partial_sort(d2.begin(), d2.begin() + neighbours, d2.end());
        double sum = 0;
        for (int64_t j = 0; j < neighbours; ++j) sum += std::sqrt(d2[size_t(j)]);
        out[size_t(members[size_t(r0 + i)])] = sum / double(neighbours);
      }
    }
  }
  return out;
}

std::vector<double> relative_to_class_median(const std::vector<double>& values, const std::vector<int64_t>& labels) {
  GS_CHECK(values.size() == labels.size(), "relative_to_class_median: %zu values, %zu labels", values.size(),
           labels.size());
  std::vector<double> out(values.size(), 0.0);
  for (const auto& members : members_by_label(labels)) {
    if (members.empty()) continue;
    std::vector<double> v;
    for (int64_t i : members) v.push_back(values[size_t(i)]);
    std::vector<double> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    const size_t m = sorted.size();
    const double median = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
    for (int64_t i : members) out[size_t(i)] = median > 0 ? values[size_t(i)] / median : 0.0;
  }
  return out;
}

std::vector<double> percentile_ranks(const std::vector<double>& values) {
  const size_t n = values.size();
  std::vector<double> ranks(n, 0.0);
  if (n < 2) return ranks;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && values[order[j + 1]] == values[order[i]]) ++j;
    const double mean_rank = 0.5 * double(i + j) / double(n - 1);
    for (size_t t = i; t <= j; ++t) ranks[order[t]] = mean_rank;
    i = j + 1;
  }
  return ranks;
}

OutlierScores combine_outlier_scores(std::vector<std::string> criteria, std::vector<std::vector<double>> scores) {
  GS_CHECK(!scores.empty() && criteria.size() == scores.size(), "combine_outlier_scores: %zu names for %zu criteria",
           criteria.size(), scores.size());
  OutlierScores out{std::move(criteria), std::move(scores), {}};
  const size_t n = out.scores[0].size();
  out.combined.assign(n, 0.0);
  for (size_t c = 0; c < out.scores.size(); ++c) {
    GS_CHECK(out.scores[c].size() == n, "combine_outlier_scores: criterion %s has %zu scores, expected %zu",
             out.criteria[c].c_str(), out.scores[c].size(), n);
    std::vector<double> ranks = percentile_ranks(out.scores[c]);
    for (size_t i = 0; i < n; ++i) out.combined[i] += ranks[i] / double(out.scores.size());
  }
  return out;
}

std::vector<int64_t> top_k(const std::vector<double>& scores, int64_t k) {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return scores[size_t(a)] > scores[size_t(b)]; });
  if (k >= 0 && order.size() > size_t(k)) order.resize(size_t(k));
  return order;
}

}  // namespace gs::inspect
