// gradcheck (f64) of every elementwise op, with broadcasting and non-contiguous inputs.
// Kinks are kept away from (gap), and the value at the kink is checked exactly below.
#include "tests/autograd/gradcheck_registry.h"

using namespace gs;
using namespace gs::test;
using V = std::vector<Tensor>;

GS_GRADCHECK_TEST(Add, BroadcastAndTransposed) {
  EXPECT_GRADCHECK([](const V& in) { return add(in[0], in[1]); }, {rand64({3, 4}, 1), rand64({4}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return in[0] + in[1]; }, {rand64({3, 1}, 3), transposed64({3, 5}, 4)});
  EXPECT_GRADCHECK([](const V& in) { return in[0] + 2.5; }, {strided64({3, 2}, 5)});
}

GS_GRADCHECK_TEST(Sub, BroadcastAndScalar) {
  EXPECT_GRADCHECK([](const V& in) { return sub(in[0], in[1]); }, {rand64({2, 1, 3}, 1), rand64({4, 1}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return 1.0 - in[0]; }, {transposed64({2, 3}, 3)});
}

GS_GRADCHECK_TEST(Mul, Broadcast) {
  EXPECT_GRADCHECK([](const V& in) { return mul(in[0], in[1]); }, {rand64({3, 4}, 1), rand64({3, 1}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return in[0] * in[1]; }, {transposed64({4, 3}, 3), rand64({}, 4)});
}

GS_GRADCHECK_TEST(Div, Broadcast) {
  EXPECT_GRADCHECK([](const V& in) { return div(in[0], in[1]); }, {rand64({3, 4}, 1), rand64({4}, 2, 0.5, 2)});
  EXPECT_GRADCHECK([](const V& in) { return 2.0 / in[0]; }, {strided64({3, 2}, 3, 0.5, 2)});
  EXPECT_GRADCHECK([](const V& in) { return in[0] / in[1]; }, {rand64({2, 3}, 4), transposed64({2, 3}, 5, 0.5, 2)});
}

GS_GRADCHECK_TEST(Neg, Plain) {
  EXPECT_GRADCHECK([](const V& in) { return neg(in[0]); }, {transposed64({2, 3}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return -in[0]; }, {rand64({4}, 2)});
}

GS_GRADCHECK_TEST(Pow, TensorAndScalarExponent) {
  EXPECT_GRADCHECK([](const V& in) { return pow(in[0], in[1]); }, {rand64({3, 4}, 1, 0.5, 2), rand64({4}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return pow(in[0], 2.5); }, {transposed64({3, 2}, 3, 0.5, 2)});
  EXPECT_GRADCHECK([](const V& in) { return pow(in[0], 3.0); }, {rand64({5}, 4)});  // negative bases too
}

GS_GRADCHECK_TEST(Exp, Plain) {
  EXPECT_GRADCHECK([](const V& in) { return exp(in[0]); }, {transposed64({2, 3}, 1)});
}

GS_GRADCHECK_TEST(Log, Positive) {
  EXPECT_GRADCHECK([](const V& in) { return log(in[0]); }, {strided64({3, 2}, 1, 0.2, 3)});
}

GS_GRADCHECK_TEST(Sqrt, Positive) {
  EXPECT_GRADCHECK([](const V& in) { return sqrt(in[0]); }, {transposed64({2, 3}, 1, 0.2, 3)});
}

GS_GRADCHECK_TEST(Abs, AwayFromKink) {
  EXPECT_GRADCHECK([](const V& in) { return abs(in[0]); }, {rand64({3, 4}, 1, -2, 2, 0.05)});
  EXPECT_GRADCHECK([](const V& in) { return abs(in[0]); }, {transposed64({3, 4}, 2, -2, 2, 0.05)});
}

GS_GRADCHECK_TEST(Clamp, AwayFromBounds) {
  // Values in [-2, 2] kept 0.05 away from the bounds -0.5 and 0.7.
  Tensor x = rand64({4, 5}, 1);
  double* p = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (std::abs(p[i] + 0.5) < 0.05) p[i] -= 0.1;
    if (std::abs(p[i] - 0.7) < 0.05) p[i] += 0.1;
  }
  EXPECT_GRADCHECK([](const V& in) { return clamp(in[0], -0.5, 0.7); }, {x});
}

GS_GRADCHECK_TEST(Relu, AwayFromKink) {
  EXPECT_GRADCHECK([](const V& in) { return relu(in[0]); }, {rand64({3, 4}, 1, -2, 2, 0.05)});
  EXPECT_GRADCHECK([](const V& in) { return relu(in[0]); }, {strided64({3, 4}, 2, -2, 2, 0.05)});
}

GS_GRADCHECK_TEST(LeakyRelu, AwayFromKink) {
  EXPECT_GRADCHECK([](const V& in) { return leaky_relu(in[0], 0.1); }, {transposed64({3, 4}, 1, -2, 2, 0.05)});
}

GS_GRADCHECK_TEST(Gelu, Plain) {
  EXPECT_GRADCHECK([](const V& in) { return gelu(in[0]); }, {rand64({3, 4}, 1, -3, 3)});
}

GS_GRADCHECK_TEST(Sigmoid, Plain) {
  EXPECT_GRADCHECK([](const V& in) { return sigmoid(in[0]); }, {transposed64({3, 4}, 1, -4, 4)});
}

GS_GRADCHECK_TEST(Tanh, Plain) {
  EXPECT_GRADCHECK([](const V& in) { return tanh(in[0]); }, {strided64({2, 3}, 1)});
}

GS_GRADCHECK_TEST(Where, BroadcastCondition) {
  Tensor cond = from_vector<int64_t>({1, 0, 0, 1}, {4});
  EXPECT_GRADCHECK([cond](const V& in) { return where(cond, in[0], in[1]); }, {rand64({3, 4}, 1), rand64({3, 1}, 2)});
  Tensor cond2 = from_vector<double>({0, 1, 1}, {3, 1});
  EXPECT_GRADCHECK([cond2](const V& in) { return where(cond2, in[0], in[1]); },
                   {transposed64({3, 2}, 3), rand64({}, 4)});
}

// ---- the kinks, honestly: PyTorch's subgradient choices ----
TEST(Kinks, ReluAbsLeakyAtZero) {
  Tensor x = from_vector<double>({-1, 0, 2}, {3}).set_requires_grad(true);
  EXPECT_EQ(grad(sum(relu(x)), {x})[0].to_vector<double>(), (std::vector<double>{0, 0, 1}));
  EXPECT_EQ(grad(sum(abs(x)), {x})[0].to_vector<double>(), (std::vector<double>{-1, 0, 1}));
  EXPECT_EQ(grad(sum(leaky_relu(x, 0.1)), {x})[0].to_vector<double>(), (std::vector<double>{0.1, 0.1, 1}));
}

TEST(Kinks, ClampPassesGradientAtTheBounds) {
  Tensor x = from_vector<double>({-2, -1, 0, 1, 2}, {5}).set_requires_grad(true);
  EXPECT_EQ(grad(sum(clamp(x, -1, 1)), {x})[0].to_vector<double>(), (std::vector<double>{0, 1, 1, 1, 0}));
}

TEST(Kinks, PowExponentGradientAtNonPositiveBase) {
  // d(a^b)/db = a^b log a is defined as 0 where a <= 0 (PyTorch gives nan at a < 0; we keep it finite).
  Tensor a = from_vector<double>({0, 2}, {2}).set_requires_grad(true);
  Tensor b = from_vector<double>({2, 3}, {2}).set_requires_grad(true);
  auto g = grad(sum(pow(a, b)), {a, b});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{0, 12}));
  EXPECT_NEAR(g[1].to_vector<double>()[1], 8 * std::log(2.0), 1e-12);
  EXPECT_EQ(g[1].to_vector<double>()[0], 0);
}
