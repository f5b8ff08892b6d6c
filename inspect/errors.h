// What a classifier gets wrong, from its predictions: the confusion matrix, per-class precision and
// recall, the most-confused class pairs and the worst mispredictions (highest loss). Predictions
// themselves come from train/predict.h; pictures from inspect/images.h; the command is `inspect errors`.
//
//   auto cm = confusion_matrix(labels, predicted, 10);          // row-major [true][predicted]
//   for (auto& p : most_confused_pairs(cm, 10, 5)) ...          // e.g. Shirt <-> T-shirt/top
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gs::inspect {

// counts[t * K + p]: examples of true class t predicted as p. Labels/predictions outside 0..K-1 are errors.
std::vector<int64_t> confusion_matrix(const std::vector<int64_t>& labels, const std::vector<int64_t>& predicted,
                                      int64_t num_classes);

struct ClassScore {
  int64_t support = 0;               // examples of the class
  double precision = 0, recall = 0;  // 0 when undefined (nothing predicted / no examples)
};
std::vector<ClassScore> class_scores(const std::vector<int64_t>& confusion, int64_t num_classes);

// An unordered pair of classes and how often each is mistaken for the other.
struct ConfusedPair {
  int64_t a = 0, b = 0;  // a < b
  int64_t a_as_b = 0;    // true a, predicted b
  int64_t b_as_a = 0;    // true b, predicted a
  int64_t total() const { return a_as_b + b_as_a; }
  double rate = 0;  // total / (examples of a + examples of b)
};
// Pairs with at least one confusion, most confusions first (ties: lower class indices first), at most `top`.
std::vector<ConfusedPair> most_confused_pairs(const std::vector<int64_t>& confusion, int64_t num_classes, int top);

// Indices of wrongly predicted examples, highest loss first (ties: lower index first), at most `top`.
std::vector<int64_t> worst_mispredictions(const std::vector<int64_t>& labels, const std::vector<int64_t>& predicted,
                                          const std::vector<double>& losses, int top);

// The matrix as a fixed-width table with class names, for the console.
std::string confusion_table(const std::vector<int64_t>& confusion, const std::vector<std::string>& names);

}  // namespace gs::inspect
