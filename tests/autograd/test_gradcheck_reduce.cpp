// gradcheck (f64) of the reductions, max/min ties splitting the gradient, var's correction, argmax.
#include "tests/autograd/gradcheck_registry.h"

using namespace gs;
using namespace gs::test;
using V = std::vector<Tensor>;

GS_GRADCHECK_TEST(Sum, AllDimsKeepdim) {
  EXPECT_GRADCHECK([](const V& in) { return sum(in[0]); }, {rand64({3, 4}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return sum(in[0], {1}); }, {transposed64({3, 4}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return sum(in[0], {0, 2}, true); }, {rand64({2, 3, 4}, 3)});
  EXPECT_GRADCHECK([](const V& in) { return sum(in[0], {-1}); }, {strided64({3, 5}, 4)});
}

GS_GRADCHECK_TEST(Mean, Dims) {
  EXPECT_GRADCHECK([](const V& in) { return mean(in[0]); }, {transposed64({3, 4}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return mean(in[0], {0}, true); }, {rand64({3, 4}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return mean(in[0], {2, 0}); }, {rand64({2, 3, 4}, 3)});
}

GS_GRADCHECK_TEST(Max, DistinctValues) {
  EXPECT_GRADCHECK([](const V& in) { return max(in[0]); }, {rand64({3, 4}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return max(in[0], {1}); }, {transposed64({3, 4}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return max(in[0], {0}, true); }, {rand64({3, 4, 2}, 3)});
}

GS_GRADCHECK_TEST(Min, DistinctValues) {
  EXPECT_GRADCHECK([](const V& in) { return min(in[0]); }, {strided64({3, 4}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return min(in[0], {-1}, true); }, {rand64({3, 4}, 2)});
}

GS_GRADCHECK_TEST(Var, Correction) {
  for (int64_t correction : {0, 1, 2}) {
    EXPECT_GRADCHECK([correction](const V& in) { return var(in[0], {}, correction); }, {rand64({3, 4}, 1)});
    EXPECT_GRADCHECK([correction](const V& in) { return var(in[0], {1}, correction, true); },
                     {transposed64({3, 5}, 2)});
  }
}

TEST(Reductions, MaxMinTiesSplitEvenly) {
  Tensor x = from_vector<double>({1, 3, 3, 2, 5, 5, 5, 0}, {2, 4}).set_requires_grad(true);
  EXPECT_EQ(grad(max(x), {x})[0].to_vector<double>(), (std::vector<double>{0, 0, 0, 0, 1. / 3, 1. / 3, 1. / 3, 0}));
  EXPECT_EQ(grad(sum(max(x, {1})), {x})[0].to_vector<double>(),
            (std::vector<double>{0, 0.5, 0.5, 0, 1. / 3, 1. / 3, 1. / 3, 0}));
  Tensor y = from_vector<double>({2, 1, 1, 4}, {4}).set_requires_grad(true);
  EXPECT_EQ(grad(min(y), {y})[0].to_vector<double>(), (std::vector<double>{0, 0.5, 0.5, 0}));
}

TEST(Reductions, VarValues) {
  Tensor x = from_vector<double>({1, 2, 3, 4, 10, 20, 30, 40}, {2, 4});
  EXPECT_NEAR(var(x).item(), 216.78571428571428, 1e-9);  // torch.var (unbiased), printed by torch
  EXPECT_NEAR(var(x, {}, 0).item(), 189.6875, 1e-9);
  EXPECT_EQ(var(x, {1}).to_vector<double>(), (std::vector<double>{5. / 3, 500. / 3}));
  EXPECT_EQ(var(x, {0}, 1, true).shape(), (Shape{1, 4}));
  // No degrees of freedom left: inf, or nan for 0/0, as torch.var (torch 1.13 printed [inf, inf, inf, inf]
  // and tensor(nan)); the gradient of the infinite ones is +-inf, as torch's.
  Tensor xg = x.detach().set_requires_grad(true);
  Tensor v = var(xg, {0}, 2);
  for (double e : v.to_vector<double>()) EXPECT_EQ(e, std::numeric_limits<double>::infinity());
  for (double g : grad(sum(v), {xg})[0].to_vector<double>()) EXPECT_TRUE(std::isinf(g)) << g;
  EXPECT_TRUE(std::isnan(var(from_vector<double>({5}, {1})).item()));
  EXPECT_EQ(var(from_vector<double>({1, 2}, {2}), {}, 3).item(), std::numeric_limits<double>::infinity());
}

TEST(Reductions, SumMeanValuesAndShapes) {
  Tensor x = raw::reshape(arange(0, 24, 1, {DType::F64}), {2, 3, 4});
  EXPECT_EQ(sum(x).item(), 276);
  EXPECT_EQ(sum(x, {1}).shape(), (Shape{2, 4}));
  EXPECT_EQ(sum(x, {0, 2}).to_vector<double>(), (std::vector<double>{60, 92, 124}));
  EXPECT_EQ(mean(x, {0, 2}, true).shape(), (Shape{1, 3, 1}));
  EXPECT_EQ(max(x, {2}).to_vector<double>(), (std::vector<double>{3, 7, 11, 15, 19, 23}));
  EXPECT_EQ(min(raw::transpose(x, 0, 2), {2}).to_vector<double>(),
            (std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
}

TEST(Reductions, Argmax) {
  Tensor x = from_vector<float>({1, 9, 3, 7, 2, 8}, {2, 3});
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  Tensor y = raw::reshape(arange(0, 24), {2, 3, 4});
  Tensor a0 = argmax(y, 0);
  EXPECT_EQ(a0.shape(), (Shape{3, 4}));
  for (int64_t v : a0.to_vector<int64_t>()) EXPECT_EQ(v, 1);
  Tensor a1 = argmax(y, 1);
  EXPECT_EQ(a1.shape(), (Shape{2, 4}));
  for (int64_t v : a1.to_vector<int64_t>()) EXPECT_EQ(v, 2);
  EXPECT_EQ(argmax(from_vector<float>({1, 5, 5}, {3}), 0).item(), 1);    // first of ties, as PyTorch
  EXPECT_EQ(argmax(from_vector<float>({1, NAN, 5}, {3}), 0).item(), 1);  // NaN is the max, as PyTorch
}

TEST(Reductions, ZeroDimInputs) {
  // A 0-d tensor accepts dim 0 / -1 and reduces to itself, as in PyTorch.
  Tensor s = rand64({}, 1);
  EXPECT_EQ(sum(s, {0}).item(), s.item());
  EXPECT_EQ(max(s, {-1}, true).dim(), 0);
  EXPECT_EQ(raw::reduce(raw::ReduceOp::Mean, s, {0}, false).item(), s.item());
  EXPECT_EQ(grad(sum(s, {0}), {s})[0].item(), 1.0);
  EXPECT_EQ(grad(mean(s), {s})[0].item(), 1.0);
  EXPECT_THROW_MSG(sum(s, {1}), "sum: dim 1 out of range for a 0-d tensor");
  EXPECT_THROW_MSG(index_select(s, 0, from_vector<int64_t>({0}, {1})), "index_select: the input is 0-d");
}
