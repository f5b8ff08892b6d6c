// inspect/data_stats, inspect/errors, inspect/outliers against naive recomputations: image metadata,
// quantiles and histograms, z-scores, confusion matrices counted by hand, confused pairs, worst
// mispredictions, centroid and kNN distances by brute force, percentile ranks.
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "inspect/data_stats.h"
#include "inspect/errors.h"
#include "inspect/outliers.h"
#include "io/dataset.h"
#include "tensor/error.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"

using namespace gs;
using namespace gs::inspect;

namespace {
Tensor random_images(int64_t N, int64_t C, int64_t H, int64_t W, uint64_t seed) {
  Generator g(seed);
  std::vector<float> v(size_t(N * C * H * W));
  for (auto& x : v) x = float(g.uniform());
  return from_vector(v, {N, C, H, W});
}
}  // namespace

TEST(DataStats, MetadataMatchesNaiveLuminance) {
  for (int64_t C : {1, 3}) {
    const int64_t N = 5, H = 4, W = 6;
    Tensor images = random_images(N, C, H, W, 11 + C);
    std::vector<float> px = images.to_vector<float>();
    ImageMetadata meta = image_metadata(images);
    ASSERT_EQ(meta.size(), N);
    for (int64_t n = 0; n < N; ++n) {
      std::vector<double> lum;
      for (int64_t p = 0; p < H * W; ++p) {
        auto at = [&](int64_t c) { return double(px[size_t((n * C + c) * H * W + p)]); };
        lum.push_back(C == 3 ? 0.299 * at(0) + 0.587 * at(1) + 0.114 * at(2) : at(0));
      }
      double mean = 0, var = 0;
      for (double l : lum) mean += l / double(lum.size());
      for (double l : lum) var += (l - mean) * (l - mean) / double(lum.size());  // two-pass, population
      EXPECT_EQ(meta.values[0][size_t(n)], H);
      EXPECT_EQ(meta.values[1][size_t(n)], W);
      EXPECT_DOUBLE_EQ(meta.values[2][size_t(n)], 1.5);
      EXPECT_NEAR(meta.values[3][size_t(n)], mean, 1e-12);
      EXPECT_NEAR(meta.values[4][size_t(n)], std::sqrt(var), 1e-9);
    }
  }
}

TEST(DataStats, FolderImagesKeepTheirFileSizes) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("gs_test_folder_sizes_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  auto write_png = [](const fs::path& path, int h, int w) {
    std::vector<uint8_t> px(size_t(h * w));
    for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 7);
    ASSERT_TRUE(stbi_write_png(path.string().c_str(), w, h, 1, px.data(), w));
  };
  write_png(dir / "a" / "x.png", 10, 20);
  write_png(dir / "b" / "p.png", 6, 6);
  write_png(dir / "b" / "q.png", 12, 4);
  io::Dataset d = io::load_image_folder(dir.string(), 8, 8, 1);
  EXPECT_EQ(d.source_heights, (std::vector<int64_t>{10, 6, 12}));
  EXPECT_EQ(d.source_widths, (std::vector<int64_t>{20, 6, 4}));
  ImageMetadata meta = image_metadata(d.images, d.source_heights, d.source_widths);
  EXPECT_EQ(meta.values[0], (std::vector<double>{10, 6, 12}));
  EXPECT_EQ(meta.values[2], (std::vector<double>{2.0, 1.0, 4.0 / 12.0}));
  EXPECT_EQ(image_metadata(d.images).values[0], (std::vector<double>{8, 8, 8}));  // the stored size
  io::Dataset sub = io::subset(d, {2, 0});
  EXPECT_EQ(sub.source_heights, (std::vector<int64_t>{12, 10}));
  EXPECT_EQ(sub.source_widths, (std::vector<int64_t>{4, 20}));
  EXPECT_THROW(image_metadata(d.images, {1}, {1}), Error);
  fs::remove_all(dir);
}

TEST(DataStats, DistributionQuantilesAndHistogram) {
  Distribution d = distribution({5, 1, 4, 2, 3}, 4);
  EXPECT_EQ(d.count, 5);
  EXPECT_DOUBLE_EQ(d.mean, 3);
  EXPECT_NEAR(d.std, std::sqrt(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(d.min, 1);
  EXPECT_DOUBLE_EQ(d.max, 5);
  EXPECT_DOUBLE_EQ(d.p50, 3);
  EXPECT_NEAR(d.p05, 1.2, 1e-12);  // numpy.quantile([1..5], 0.05) (linear)
  EXPECT_NEAR(d.p99, 4.96, 1e-12);
  EXPECT_EQ(d.edges, (std::vector<double>{1, 2, 3, 4, 5}));
  EXPECT_EQ(d.counts, (std::vector<int64_t>{1, 1, 1, 2}));  // the last bin holds the max

  // Random values: every value lands in the bin whose edges hold it.
  Generator g(3);
  std::vector<double> v(1000);
  for (auto& x : v) x = g.normal();
  Distribution r = distribution(v, 17);
  std::vector<int64_t> naive(17, 0);
  for (double x : v) {
    for (size_t b = 0; b < 17; ++b) {
      if (x >= r.edges[b] && (x < r.edges[b + 1] || b == 16)) {
        naive[b]++;
        break;
      }
    }
  }
  EXPECT_EQ(r.counts, naive);
  EXPECT_NEAR(quantile(v, 0.5), r.p50, 1e-12);

  Distribution constant = distribution({2, 2, 2}, 3);
  EXPECT_DOUBLE_EQ(constant.edges.front(), 1.5);
  EXPECT_DOUBLE_EQ(constant.edges.back(), 2.5);
  EXPECT_EQ(constant.counts[1], 3);
  EXPECT_THROW(distribution({1, NAN}), Error);
}

TEST(DataStats, ZScoresAndMetadataOutliers) {
  std::vector<double> v{1, 2, 3, 4, 10};
  std::vector<double> z = z_scores(v);
  double mean = 4, sd = std::sqrt((9 + 4 + 1 + 0 + 36) / 5.0);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(z[i], (v[i] - mean) / sd, 1e-12);
  EXPECT_EQ(z_scores({7, 7, 7}), (std::vector<double>{0, 0, 0}));

  // Flat images (contrast 0 everywhere, so it is skipped) with one far brighter than the rest.
  const int64_t N = 20;
  std::vector<float> px;
  for (int64_t n = 0; n < N; ++n)
    for (int p = 0; p < 9; ++p) px.push_back(n == 13 ? 0.95f : 0.1f + 0.01f * float(n % 5));
  auto out = metadata_outliers(image_metadata(from_vector(px, {N, 1, 3, 3})));
  auto top = std::max_element(out.begin(), out.end(), [](auto& a, auto& b) { return a.max_abs_z < b.max_abs_z; });
  EXPECT_EQ(top - out.begin(), 13);
  EXPECT_EQ(top->metric, 3);  // brightness
  EXPECT_GT(top->max_abs_z, 4.0);
}

TEST(DataStats, CsvAndSummary) {
  Tensor images = random_images(4, 1, 2, 2, 5);
  ImageMetadata meta = image_metadata(images);
  std::string csv = metadata_csv(meta, {0, 1, 1, 0});
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "index,label,height,width,aspect,brightness,contrast");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
  std::string json = metadata_summary_json(meta, {0, 1, 1, 0}, {"a", "b"}, 5);
  EXPECT_NE(json.find("\"brightness\""), std::string::npos);
  EXPECT_NE(json.find("\"per_class\""), std::string::npos);
  EXPECT_THROW(metadata_csv(meta, {0, 1}), Error);
}

TEST(Errors, ConfusionMatrixCountedByHand) {
  std::vector<int64_t> labels{0, 0, 1, 2, 2, 2}, predicted{0, 1, 1, 2, 0, 0};
  auto cm = confusion_matrix(labels, predicted, 3);
  EXPECT_EQ(cm, (std::vector<int64_t>{1, 1, 0,  //
                                      0, 1, 0,  //
                                      2, 0, 1}));
  auto scores = class_scores(cm, 3);
  EXPECT_EQ(scores[0].support, 2);
  EXPECT_NEAR(scores[0].precision, 1.0 / 3, 1e-12);
  EXPECT_NEAR(scores[0].recall, 0.5, 1e-12);
  EXPECT_NEAR(scores[2].recall, 1.0 / 3, 1e-12);
  EXPECT_NEAR(scores[2].precision, 1.0, 1e-12);

  auto pairs = most_confused_pairs(cm, 3, 10);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].a, 0);
  EXPECT_EQ(pairs[0].b, 2);
  EXPECT_EQ(pairs[0].a_as_b, 0);
  EXPECT_EQ(pairs[0].b_as_a, 2);
  EXPECT_NEAR(pairs[0].rate, 2.0 / 5, 1e-12);
  EXPECT_EQ(pairs[1].a, 0);
  EXPECT_EQ(pairs[1].b, 1);
  EXPECT_EQ(most_confused_pairs(cm, 3, 1).size(), 1u);

  EXPECT_THROW(confusion_matrix({0, 3}, {0, 0}, 3), Error);
  EXPECT_THROW(confusion_matrix({0}, {0, 0}, 3), Error);

  // Random predictions against a map-based count.
  Generator g(9);
  std::vector<int64_t> l(500), p(500);
  std::map<std::pair<int64_t, int64_t>, int64_t> naive;
  for (size_t i = 0; i < l.size(); ++i) {
    l[i] = int64_t(g.uniform() * 7), p[i] = g.uniform() < 0.6 ? l[i] : int64_t(g.uniform() * 7);
    naive[{l[i], p[i]}]++;
  }
  auto rcm = confusion_matrix(l, p, 7);
  int64_t total = 0;
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = 0; j < 7; ++j) {
      EXPECT_EQ(rcm[size_t(i * 7 + j)], (naive[{i, j}]));
      total += rcm[size_t(i * 7 + j)];
    }
  EXPECT_EQ(total, 500);
  std::string table = confusion_table(rcm, {"a", "b", "c", "d", "e", "f", "g"});
  EXPECT_NE(table.find("6 g"), std::string::npos);
}

TEST(Errors, WorstMispredictionsByLoss) {
  std::vector<int64_t> labels{0, 1, 2, 0, 1}, predicted{1, 1, 0, 2, 0};
  std::vector<double> losses{0.5, 9.0, 2.0, 2.0, 1.0};
  // Index 1 has the highest loss but is right; 2 and 3 tie (lower index first).
  EXPECT_EQ(worst_mispredictions(labels, predicted, losses, 10), (std::vector<int64_t>{2, 3, 4, 0}));
  EXPECT_EQ(worst_mispredictions(labels, predicted, losses, 2), (std::vector<int64_t>{2, 3}));
}

TEST(Outliers, CentroidAndKnnDistancesMatchBruteForce) {
  const int64_t N = 41, D = 7, k = 3;
  Generator g(21);
  std::vector<double> x(size_t(N * D));
  for (auto& v : x) v = g.normal() * 3;
  std::vector<int64_t> labels(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i)
    labels[size_t(i)] = i == 40 ? 3 : (i < 3 ? 2 : i % 2);  // class 2: 3 members, class 3: 1
  Tensor e = from_vector(x, {N, D}, {DType::F64});
  auto dist = [&](int64_t a, int64_t b) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d)
      s += (x[size_t(a * D + d)] - x[size_t(b * D + d)]) * (x[size_t(a * D + d)] - x[size_t(b * D + d)]);
    return std::sqrt(s);
  };
  std::vector<double> knn = knn_distances(raw::to_dtype(e, DType::F32), labels, k);  // f32 in, computed in f64
  std::vector<double> cen = centroid_distances(e, labels, 4);
  for (int64_t i = 0; i < N; ++i) {
    std::vector<double> same;
    std::vector<double> mu(size_t(D), 0.0);
    int64_t members = 0;
    for (int64_t j = 0; j < N; ++j) {
      if (labels[size_t(j)] != labels[size_t(i)]) continue;
      ++members;
      for (int64_t d = 0; d < D; ++d) mu[size_t(d)] += x[size_t(j * D + d)];
      if (j != i) same.push_back(dist(i, j));
    }
    std::sort(same.begin(), same.end());
    const size_t use = std::min<size_t>(size_t(k), same.size());
    double mean = 0;
    for (size_t t = 0; t < use; ++t) mean += same[t] / double(use);
    EXPECT_NEAR(knn[size_t(i)], use ? mean : 0.0, 1e-5 * (1 + mean)) << i;
    double c = 0;
    for (int64_t d = 0; d < D; ++d) c += std::pow(x[size_t(i * D + d)] - mu[size_t(d)] / double(members), 2);
    EXPECT_NEAR(cen[size_t(i)], std::sqrt(c), 1e-9) << i;
  }
  EXPECT_EQ(knn[40], 0.0);  // alone in its class
  EXPECT_THROW(knn_distances(e, std::vector<int64_t>(3, 0), k), Error);
}

TEST(Outliers, KnnBlocksAgreeBeyondOneGemmBlock) {
  // More rows than one 512-row block: the blocked Gram matrices must give brute-force answers.
  const int64_t N = 700, D = 3;
  Generator g(4);
  std::vector<double> x(size_t(N * D));
  for (auto& v : x) v = g.uniform();
  std::vector<int64_t> labels(size_t(N), 0);
  std::vector<double> knn = knn_distances(from_vector(x, {N, D}, {DType::F64}), labels, 2);
  for (int64_t i : {0, 511, 512, 699}) {
    std::vector<double> d;
    for (int64_t j = 0; j < N; ++j) {
      if (j == i) continue;
      double s = 0;
      for (int64_t c = 0; c < D; ++c) s += std::pow(x[size_t(i * D + c)] - x[size_t(j * D + c)], 2);
      d.push_back(std::sqrt(s));
    }
    std::sort(d.begin(), d.end());
    EXPECT_NEAR(knn[size_t(i)], 0.5 * (d[0] + d[1]), 1e-6) << i;
  }
}

TEST(Outliers, RanksRelativeScoresAndCombination) {
  EXPECT_EQ(percentile_ranks({10, 30, 20, 30, 0}), (std::vector<double>{0.25, 0.875, 0.5, 0.875, 0.0}));
  EXPECT_EQ(relative_to_class_median({1, 2, 3, 10, 20}, {0, 0, 0, 1, 1}),
            (std::vector<double>{0.5, 1.0, 1.5, 10.0 / 15, 20.0 / 15}));
  OutlierScores s = combine_outlier_scores({"a", "b"}, {{1, 2, 3}, {3, 2, 1}});
  EXPECT_EQ(s.combined, (std::vector<double>{0.5, 0.5, 0.5}));
  s = combine_outlier_scores({"a", "b"}, {{1, 2, 3}, {1, 5, 9}});
  EXPECT_EQ(s.combined, (std::vector<double>{0.0, 0.5, 1.0}));
  EXPECT_EQ(top_k({0.1, 0.9, 0.5, 0.9}, 3), (std::vector<int64_t>{1, 3, 2}));
  EXPECT_THROW(combine_outlier_scores({"a"}, {{1}, {2}}), Error);
}
