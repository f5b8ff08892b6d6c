// Module scope paths: tape entries and error messages carry "features.0"-style paths pushed by
// Module::operator(); the root pushes nothing.
#include "tests/layers/layers_test_helpers.h"

#include <map>
#include <set>

#include "tensor/scope.h"

namespace gs::nn {
namespace {

int64_t last_seq() {
  auto entries = tape_entries();
  return entries.empty() ? -1 : entries.back()->seq;
}

// "op@scope" for each entry recorded after `since`.
std::multiset<std::string> entries_since(int64_t since) {
  std::multiset<std::string> out;
  for (auto& e : tape_entries()) {
    if (e->seq > since) out.insert(std::string(op_name(e->op)) + "@" + e->scope);
  }
  return out;
}

std::shared_ptr<Sequential> two_part_net() {
  auto features = std::make_shared<Sequential>(
      std::initializer_list<ModulePtr>{std::make_shared<Conv2d>(1, 2, 3), std::make_shared<ReLU>()});
  auto net = std::make_shared<Sequential>();
  net->push_back("features", features).push_back("flatten", std::make_shared<Flatten>());
  net->push_back("classifier", std::make_shared<Linear>(8, 3));
  return net;
}

TEST(Scope, TapeEntriesCarryModulePaths) {
  auto net = two_part_net();
  int64_t since = last_seq();
  Tensor y = (*net)(randn({1, 1, 4, 4}));
  auto entries = entries_since(since);
  EXPECT_EQ(entries.count("conv2d@features.0"), 1u);
  EXPECT_EQ(entries.count("relu@features.1"), 1u);
  EXPECT_EQ(entries.count("reshape@flatten"), 1u);
  EXPECT_EQ(entries.count("matmul@classifier"), 1u);
  EXPECT_EQ(entries.count("add@classifier"), 1u);
  for (auto& e : entries) EXPECT_NE(e.back(), '@') << e << " has no scope";
  EXPECT_EQ(current_scope_path(), "");  // popped again
}

TEST(Scope, NestedResidualPaths) {
  auto net = make_model("resnet8", 3, 10, 16);
  int64_t since = last_seq();
  Tensor y = (*net)(randn({2, 3, 16, 16}));  // keeps the entries alive
  auto entries = entries_since(since);
  EXPECT_EQ(entries.count("conv2d@0"), 1u);
  EXPECT_EQ(entries.count("batch_norm@3.bn1"), 1u);
  EXPECT_EQ(entries.count("conv2d@4.downsample.0"), 1u);
  EXPECT_EQ(entries.count("batch_norm@5.downsample.1"), 1u);
  EXPECT_EQ(entries.count("relu@3.relu"), 2u);  // the block's one ReLU module runs twice
  EXPECT_EQ(entries.count("add@5"), 1u);        // the residual sum belongs to the block itself
}

TEST(Scope, ErrorsNameTheModulePath) {
  auto net = two_part_net();
  EXPECT_THROW_MSG((*net)(randn({1, 1, 5, 5})), "linear (classifier): input [1,18] has 18 features, weight expects 8");
  EXPECT_THROW_MSG((*net)(randn({1, 2, 4, 4})),
                   "conv2d (features.0): input [1,2,4,4] has 2 channels, weight expects 1");
  EXPECT_EQ(current_scope_path(), "");  // unwound by the exception
}

}  // namespace
}  // namespace gs::nn
