// Confusion matrices, class scores, confused pairs and worst mispredictions (inspect/errors.h).
#include "inspect/errors.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "tensor/error.h"

namespace gs::inspect {

std::vector<int64_t> confusion_matrix(const std::vector<int64_t>& labels, const std::vector<int64_t>& predicted,
                                      int64_t num_classes) {
  GS_CHECK(labels.size() == predicted.size(), "confusion_matrix: %zu labels but %zu predictions", labels.size(),
           predicted.size());
  GS_CHECK(num_classes > 0, "confusion_matrix: num_classes must be positive, got %lld", (long long)num_classes);
  std::vector<int64_t> counts(size_t(num_classes * num_classes), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    GS_CHECK(labels[i] >= 0 && labels[i] < num_classes && predicted[i] >= 0 && predicted[i] < num_classes,
             "confusion_matrix: example %zu has label %lld / prediction %lld outside 0..%lld", i, (long long)labels[i],
             (long long)predicted[i], (long long)num_classes - 1);
    counts[size_t(labels[i] * num_classes + predicted[i])]++;
  }
  return counts;
}

std::vector<ClassScore> class_scores(const std::vector<int64_t>& confusion, int64_t K) {
  GS_CHECK(confusion.size() == size_t(K * K), "class_scores: %zu values for %lld classes", confusion.size(),
           (long long)K);
  std::vector<ClassScore> scores(static_cast<size_t>(K));
  for (int64_t c = 0; c < K; ++c) {
    int64_t row = 0, column = 0;
    for (int64_t j = 0; j < K; ++j) row += confusion[size_t(c * K + j)], column += confusion[size_t(j * K + c)];
    const double hits = double(confusion[size_t(c * K + c)]);
    scores[size_t(c)] = {row, column ? hits / double(column) : 0.0, row ? hits / double(row) : 0.0};
  }
  return scores;
}

std::vector<ConfusedPair> most_confused_pairs(const std::vector<int64_t>& confusion, int64_t K, int top) {
  GS_CHECK(confusion.size() == size_t(K * K), "most_confused_pairs: %zu values for %lld classes", confusion.size(),
           (long long)K);
  std::vector<int64_t> support(size_t(K), 0);
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j) support[size_t(i)] += confusion[size_t(i * K + j)];
  std::vector<ConfusedPair> pairs;
  for (int64_t a = 0; a < K; ++a) {
    for (int64_t b = a + 1; b < K; ++b) {
      ConfusedPair p{a, b, confusion[size_t(a * K + b)], confusion[size_t(b * K + a)]};
      if (p.total() == 0) continue;
      p.rate = double(p.total()) / double(std::max<int64_t>(1, support[size_t(a)] + support[size_t(b)]));
      pairs.push_back(p);
    }
  }
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const ConfusedPair& x, const ConfusedPair& y) { return x.total() > y.total(); });
  if (top >= 0 && pairs.size() > size_t(top)) pairs.resize(size_t(top));
  return pairs;
}

std::vector<int64_t> worst_mispredictions(const std::vector<int64_t>& labels, const std::vector<int64_t>& predicted,
                                          const std::vector<double>& losses, int top) {
  GS_CHECK(labels.size() == predicted.size() && labels.size() == losses.size(),
           "worst_mispredictions: %zu labels, %zu predictions, %zu losses", labels.size(), predicted.size(),
           losses.size());
  std::vector<int64_t> wrong;
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] != predicted[i]) wrong.push_back(int64_t(i));
  std::stable_sort(wrong.begin(), wrong.end(),
                   [&](int64_t x, int64_t y) { return losses[size_t(x)] > losses[size_t(y)]; });
  if (top >= 0 && wrong.size() > size_t(top)) wrong.resize(size_t(top));
  return wrong;
}

std::string confusion_table(const std::vector<int64_t>& confusion, const std::vector<std::string>& names) {
  const int64_t K = int64_t(names.size());
  GS_CHECK(confusion.size() == size_t(K * K), "confusion_table: %zu values for %lld classes", confusion.size(),
           (long long)K);
  size_t name_w = 4;
  for (const auto& n : names) name_w = std::max(name_w, n.size() + 4);
  int64_t biggest = *std::max_element(confusion.begin(), confusion.end());
  const int cell_w = std::clamp<int>(int(std::to_string(biggest).size()) + 2, 5, 24);
  std::string out = std::string(name_w, ' ') + "predicted ->\n";
  char buf[64];
  out += std::string(name_w, ' ');
  for (int64_t j = 0; j < K; ++j) std::snprintf(buf, sizeof buf, "%*lld", cell_w, (long long)j), out += buf;
  out += "   recall\n";
  auto scores = class_scores(confusion, K);
  for (int64_t i = 0; i < K; ++i) {
    std::string label = std::to_string(i) + " " + names[size_t(i)];
    out += label + std::string(name_w - std::min(name_w, label.size()), ' ');
    for (int64_t j = 0; j < K; ++j)
      std::snprintf(buf, sizeof buf, "%*lld", cell_w, (long long)confusion[size_t(i * K + j)]), out += buf;
    std::snprintf(buf, sizeof buf, "   %5.1f%%\n", 100.0 * scores[size_t(i)].recall);
    out += buf;
  }
  return out;
}

}  // namespace gs::inspect
