// train()/eval() switch every module of the tree, and the layers that care behave accordingly.
#include "tests/layers/layers_test_helpers.h"

namespace gs::nn {
namespace {

TEST(TrainEval, SwitchesRecursively) {
  auto net = make_model("resnet8", 3, 10, 32);
  for (auto& [n, m] : net->named_modules()) EXPECT_TRUE(m->is_training()) << n;
  net->eval();
  for (auto& [n, m] : net->named_modules()) EXPECT_FALSE(m->is_training()) << n;
  // A grandchild ("4.downsample.1") follows too.
  EXPECT_FALSE(net->child("4.downsample.1")->is_training());
  net->train();
  for (auto& [n, m] : net->named_modules()) EXPECT_TRUE(m->is_training()) << n;
  net->child("3")->train(false);
  EXPECT_FALSE(net->child("3.bn1")->is_training());
  EXPECT_TRUE(net->child("4.bn1")->is_training());
}

TEST(TrainEval, EvalOutputIsDeterministicTrainIsNot) {
  auto net = std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<Linear>(8, 8), std::make_shared<BatchNorm1d>(8), std::make_shared<Dropout>(0.5)});
  Tensor x = randn({16, 8});
  net->eval();
  test::expect_close((*net)(x), (*net)(x), 0);
  net->train();
  auto a = (*net)(x).to_vector<float>(), b = (*net)(x).to_vector<float>();
  EXPECT_NE(a, b);  // dropout masks differ
}

}  // namespace
}  // namespace gs::nn
