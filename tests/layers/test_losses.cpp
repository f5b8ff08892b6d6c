// Losses: values against the textbook formulas, numerical stability of bce_with_logits at large
// logits, its gradient at exactly zero logits, soft Dice edge cases, the module wrappers.
#include "tests/layers/layers_test_helpers.h"

#include <cmath>

namespace gs::nn {
namespace {

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

TEST(Losses, BceWithLogitsMatchesTheTextbookFormula) {
  std::vector<double> x = {-3, -0.5, 0, 0.7, 2.5, 1}, t = {0, 1, 0.5, 1, 0, 0.3};
  Tensor logits = from_vector(x, {2, 3}, {DType::F64}), target = from_vector(t, {2, 3}, {DType::F64});
  Tensor per = bce_with_logits(logits, target, Reduction::None);
  EXPECT_EQ(shape_str(per.shape()), shape_str({2, 3}));
  auto v = per.to_vector<double>();
  double total = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double expected = -(t[i] * std::log(sigmoid(x[i])) + (1 - t[i]) * std::log(1 - sigmoid(x[i])));
    EXPECT_NEAR(v[i], expected, 1e-12) << i;
    total += expected;
  }
  EXPECT_NEAR(bce_with_logits(logits, target, Reduction::Sum).item(), total, 1e-12);
  EXPECT_NEAR(bce_with_logits(logits, target).item(), total / 6, 1e-12);
}

TEST(Losses, BceWithLogitsIsStableAtLargeLogits) {
  Tensor logits = from_vector<float>({100, 100, -100, -100, 1000}, {5});
  Tensor target = from_vector<float>({1, 0, 0, 1, 1}, {5});
  auto v = bce_with_logits(logits, target, Reduction::None).to_vector<float>();
  EXPECT_FLOAT_EQ(v[0], 0);
  EXPECT_FLOAT_EQ(v[1], 100);
  EXPECT_FLOAT_EQ(v[2], 0);
  EXPECT_FLOAT_EQ(v[3], 100);
  EXPECT_FLOAT_EQ(v[4], 0);
  Tensor x = from_vector<float>({80, -80}, {2}).set_requires_grad(true);
  backward(bce_with_logits(x, from_vector<float>({0, 1}, {2}), Reduction::Sum));
  auto g = x.grad().to_vector<float>();
  EXPECT_FLOAT_EQ(g[0], 1);   // sigmoid(80) - 0
  EXPECT_FLOAT_EQ(g[1], -1);  // sigmoid(-80) - 1
}

TEST(Losses, BceWithLogitsGradientAtZeroIsSigmoidMinusTarget) {
  // Zero logits are common (a zero-initialised head): the gradient must be 0.5 - t there.
  Tensor x = zeros({3}).set_requires_grad(true);
  backward(bce_with_logits(x, from_vector<float>({0, 1, 0.25}, {3}), Reduction::Sum));
  auto g = x.grad().to_vector<float>();
  EXPECT_FLOAT_EQ(g[0], 0.5f);
  EXPECT_FLOAT_EQ(g[1], -0.5f);
  EXPECT_FLOAT_EQ(g[2], 0.25f);
}

TEST(Losses, SoftDice) {
  // Probabilities equal to a one-hot target: dice 1, loss 0; disjoint: loss 1 (eps 0).
  Tensor onehot = from_vector<float>({1, 0, 0, 1, 0, 1, 1, 0}, {1, 2, 2, 2});
  EXPECT_NEAR(soft_dice_loss(onehot, onehot, 0.0, false).item(), 0, 1e-7);
  Tensor flipped = 1.0 - onehot;
  EXPECT_NEAR(soft_dice_loss(flipped, onehot, 0.0, false).item(), 1, 1e-7);
  // A hand-computed case: class 0 p = [0.5, 0.5], t = [1, 0] -> (2*0.5 + 1)/(1 + 1 + 1) = 2/3;
  // class 1 p = [0.5, 0.5], t = [0, 1] -> 2/3 too. Loss 1 - 2/3.
  Tensor p = full({1, 2, 1, 2}, 0.5), t = from_vector<float>({1, 0, 0, 1}, {1, 2, 1, 2});
  EXPECT_NEAR(soft_dice_loss(p, t, 1.0, false).item(), 1.0 / 3, 1e-6);
  // From logits: equal logits give p = 0.5 for both classes, the same case.
  EXPECT_NEAR(soft_dice_loss(zeros({1, 2, 1, 2}), t, 1.0, true).item(), 1.0 / 3, 1e-6);
  EXPECT_THROW_MSG(soft_dice_loss(p, zeros({1, 2, 2, 1})), "soft_dice_loss: input [1,2,1,2] and target [1,2,2,1]");
}

TEST(Losses, Modules) {
  Tensor logits = randn({4, 3}), labels = from_vector<int64_t>({0, 2, 1, 1}, {4});
  CrossEntropyLoss ce(0.2);
  test::expect_close(ce(logits, labels), cross_entropy(logits, labels, {.label_smoothing = 0.2}), 1e-7);
  MSELoss mse;
  EXPECT_NEAR(mse(from_vector<float>({1, 2}, {2}), from_vector<float>({0, 0}, {2})).item(), 2.5, 1e-6);
  BCEWithLogitsLoss bce(Reduction::None);
  EXPECT_EQ(shape_str(bce(logits, zeros({4, 3})).shape()), shape_str({4, 3}));
  DiceLoss dice(0.0, false);
  Tensor onehot = from_vector<float>({1, 0, 0, 1}, {1, 2, 1, 2});
  EXPECT_NEAR(dice(onehot, onehot).item(), 0, 1e-7);
  EXPECT_THROW_MSG(ce(logits), "CrossEntropyLoss: a loss takes (input, target)");
  EXPECT_THROW_MSG(bce(logits, zeros({4, 3}, {DType::F64})), "same floating dtype");
  EXPECT_THROW_MSG(CrossEntropyLoss(1.5), "label_smoothing must be in [0, 1]");
}

TEST(Losses, CrossEntropyLossWithClassWeights) {
  Tensor logits = randn({4, 3}), labels = from_vector<int64_t>({0, 2, 1, 1}, {4});
  Tensor w = from_vector<float>({0.5, 2, 1}, {3});
  CrossEntropyLoss ce(0.1, Reduction::Mean, -100, w);
  test::expect_close(ce(logits, labels), cross_entropy(logits, labels, {.label_smoothing = 0.1, .weight = w}), 1e-7);
  // The weight is a buffer, as in PyTorch: in the state_dict under "weight", and it moves with to().
  auto sd = ce.state_dict();
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].first, "weight");
  ce.to(DType::F64);
  EXPECT_EQ(ce.options().weight.dtype(), DType::F64);
  Tensor logits64 = raw::to_dtype(logits, DType::F64);
  EXPECT_NEAR(ce(logits64, labels).item(),
              cross_entropy(logits64, labels, {.label_smoothing = 0.1, .weight = raw::to_dtype(w, DType::F64)}).item(),
              1e-12);
  EXPECT_TRUE(CrossEntropyLoss().state_dict().empty());
  EXPECT_THROW_MSG(CrossEntropyLoss(0, Reduction::Mean, -100, zeros({3, 1})),
                   "CrossEntropyLoss: weight must be 1-d (one per class), got [3,1]");
  EXPECT_THROW_MSG(ce(logits64, from_vector<int64_t>({0, 1}, {2})), "cross_entropy: target [2] must be [4]");
}

}  // namespace
}  // namespace gs::nn
