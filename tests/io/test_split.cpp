// split_validation, stratified_subset and subset: class proportions, disjointness, coverage and
// determinism for a seed. Each synthetic image holds its own index, so every example can be traced.
#include <algorithm>
#include <set>

#include "io/dataset.h"
#include "tests/helpers.h"

namespace gs::io {
namespace {

// 100 examples: 50 of class 0, 30 of class 1, 20 of class 2, interleaved; image i is filled with i.
Dataset traced_dataset() {
  Dataset d;
  d.images = empty({100, 1, 2, 2});
  d.labels = empty({100}, {DType::I64});
  for (int64_t i = 0; i < 100; ++i) {
    for (int k = 0; k < 4; ++k) d.images.data<float>()[i * 4 + k] = static_cast<float>(i);
    d.labels.data<int64_t>()[i] = i % 10 < 5 ? 0 : i % 10 < 8 ? 1 : 2;
  }
  d.num_classes = 3;
  d.class_names = {"a", "b", "c"};
  d.description = "traced";
  return d;
}

std::vector<int64_t> traced_indices(const Dataset& d) {
  std::vector<int64_t> out;
  auto px = d.images.to_vector<float>();
  for (int64_t i = 0; i < d.size(); ++i) {
    EXPECT_EQ(px[i * 4], px[i * 4 + 3]) << "rows copied whole";
    out.push_back(static_cast<int64_t>(px[i * 4]));
  }
  return out;
}

TEST(Split, StratifiedDisjointCoveringAndDeterministic) {
  Dataset d = traced_dataset();
  auto [train, val] = split_validation(d, 0.2, 7);
  EXPECT_EQ(val.class_counts(), (std::vector<int64_t>{10, 6, 4}));
  EXPECT_EQ(train.class_counts(), (std::vector<int64_t>{40, 24, 16}));
  auto ti = traced_indices(train), vi = traced_indices(val);
  EXPECT_TRUE(std::is_sorted(ti.begin(), ti.end()));
  EXPECT_TRUE(std::is_sorted(vi.begin(), vi.end()));
  std::set<int64_t> all(ti.begin(), ti.end());
  all.insert(vi.begin(), vi.end());
  EXPECT_EQ(all.size(), 100u) << "disjoint and covering";
  for (int64_t i = 0; i < train.size(); ++i)
    EXPECT_EQ(train.labels.to_vector<int64_t>()[i], d.labels.to_vector<int64_t>()[ti[i]]);
  EXPECT_EQ(train.class_names, d.class_names);
  EXPECT_NE(val.description.find("validation split (20)"), std::string::npos) << val.description;

  EXPECT_EQ(traced_indices(split_validation(d, 0.2, 7).second), vi) << "same seed, same split";
  EXPECT_NE(traced_indices(split_validation(d, 0.2, 8).second), vi) << "another seed, another split";
  EXPECT_EQ(split_validation(d, 0.0, 1).second.size(), 0);
  EXPECT_THROW_MSG(split_validation(d, 1.0, 1), "fraction 1 must be in [0, 1)");
}

TEST(Split, StratifiedSubsetKeepsProportions) {
  Dataset d = traced_dataset();
  Dataset s = stratified_subset(d, 10, 3);
  EXPECT_EQ(s.class_counts(), (std::vector<int64_t>{5, 3, 2}));
  Dataset odd = stratified_subset(d, 7, 3);  // shares 3.5, 2.1, 1.4 -> 3+1, 2, 1
  EXPECT_EQ(odd.size(), 7);
  EXPECT_EQ(odd.class_counts(), (std::vector<int64_t>{4, 2, 1}));
  auto idx = traced_indices(s);
  EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()));
  EXPECT_EQ(traced_indices(stratified_subset(d, 10, 3)), idx);
  EXPECT_NE(traced_indices(stratified_subset(d, 10, 4)), idx);
  EXPECT_EQ(stratified_subset(d, 1000, 3).size(), 100);
  EXPECT_THROW_MSG(stratified_subset(d, 0, 3), "n must be positive");
}

TEST(Split, SubsetPicksRows) {
  Dataset d = traced_dataset();
  Dataset s = subset(d, {9, 0, 9, 42});
  EXPECT_EQ(traced_indices(s), (std::vector<int64_t>{9, 0, 9, 42}));
  EXPECT_EQ(s.labels.to_vector<int64_t>(), (std::vector<int64_t>{2, 0, 2, 0}));
  EXPECT_EQ(s.num_classes, 3);
  EXPECT_THROW_MSG(subset(d, {100}), "index 100 out of range for a dataset of 100");
  Dataset bad = traced_dataset();
  bad.labels.data<int64_t>()[5] = 3;
  EXPECT_THROW_MSG(split_validation(bad, 0.5, 1), "label 3 of example 5");
  bad.num_classes = 0;
  EXPECT_THROW_MSG(stratified_subset(bad, 5, 1), "num_classes 0");
}

}  // namespace
}  // namespace gs::io
