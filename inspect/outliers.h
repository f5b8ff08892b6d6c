// Ranking training images as outliers (`gradscope inspect outliers`): by metadata z-scores
// (inspect/data_stats.h), by distance to their class centroid and to their k nearest same-class
// neighbours in an embedding (the input of the model's last Linear, captured by train/predict.h), and
// by low confidence in their own label. Each criterion gives a score (higher = more unusual); the
// combined score is the mean of the criteria's percentile ranks.
//
//   std::vector<double> d = centroid_distances(embeddings, labels, 10);   // embeddings [N,D]
//   std::vector<double> knn = knn_distances(embeddings, labels, 5);        // mean distance to 5 neighbours
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace gs::inspect {

// Euclidean distance of each row of embeddings (N, D) to the mean of the rows with its label.
std::vector<double> centroid_distances(const Tensor& embeddings, const std::vector<int64_t>& labels,
                                       int64_t num_classes);

// Mean Euclidean distance of each row to its k nearest other rows with the same label (brute force,
// per class, by blocks of Gram matrices in f64). A class with <= k members uses all its other members;
// a class of one gives 0.
std::vector<double> knn_distances(const Tensor& embeddings, const std::vector<int64_t>& labels, int64_t k);

// Each value divided by the median of the values with the same label (0 stays 0; a zero median
// gives 0): distances become comparable across tight and spread-out classes.
std::vector<double> relative_to_class_median(const std::vector<double>& values, const std::vector<int64_t>& labels);

// Percentile rank in [0, 1]: 0 for the smallest value, 1 for the largest; ties share their mean rank.
std::vector<double> percentile_ranks(const std::vector<double>& values);

struct OutlierScores {
  std::vector<std::string> criteria;        // "metadata", "centroid", "knn", "confidence"
  std::vector<std::vector<double>> scores;  // [criterion][image], higher = more unusual
  std::vector<double> combined;             // mean over criteria of the percentile ranks
};
// Combines per-criterion scores (all the same length) as above.
OutlierScores combine_outlier_scores(std::vector<std::string> criteria, std::vector<std::vector<double>> scores);

// Indices of the top-k scores, highest first (ties: lower index first).
std::vector<int64_t> top_k(const std::vector<double>& scores, int64_t k);

}  // namespace gs::inspect
