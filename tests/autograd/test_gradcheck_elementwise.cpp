// gradcheck (f64) of every elementwise op, with broadcasting and non-contiguous inputs.
// Kinks are kept away from (gap), and the value at the kink is checked exactly below.
#include "kernels/registry.h"
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

// A nan reaching relu stays nan and passes its gradient, as torch's relu and threshold_backward:
// a relu must not turn a nan from the layer before into a silent 0 (the NaN-origin check needs it).
TEST(Kinks, ReluPassesNanForwardAndBackward) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const char* variant : {"ref", "omp"}) {
    SCOPED_TRACE(variant);
    const std::string unary = kernels::selected_variant("unary"), binary = kernels::selected_variant("binary");
    kernels::select_variant("unary", variant);
    kernels::select_variant("binary", variant);
    Tensor x = from_vector<double>({1, nan, -1, 0}, {4}).set_requires_grad(true);
    Tensor y = relu(x);
    const std::vector<double> v = y.to_vector<double>();
    EXPECT_EQ(v[0], 1);
    EXPECT_TRUE(std::isnan(v[1]));
    EXPECT_EQ(v[2], 0);
    EXPECT_EQ(v[3], 0);
    const std::vector<double> dx = grad(y, {x}, ones_like(y))[0].to_vector<double>();
    ASSERT_EQ(dx.size(), 4u);
    EXPECT_EQ(dx[0], 1);
    EXPECT_EQ(dx[1], 1);  // the nan passes the gradient
    EXPECT_EQ(dx[2], 0);
    EXPECT_EQ(dx[3], 0);
    kernels::select_variant("unary", unary);
    kernels::select_variant("binary", binary);
  }
}

TEST(Kinks, ClampPassesGradientAtTheBounds) {
  Tensor x = from_vector<double>({-2, -1, 0, 1, 2}, {5}).set_requires_grad(true);
  EXPECT_EQ(grad(sum(clamp(x, -1, 1)), {x})[0].to_vector<double>(), (std::vector<double>{0, 1, 1, 1, 0}));
}

// x^0 is the constant 1: its gradient is 0 at x = 0 too (y x^(y-1) would be 0 * inf), as PyTorch,
// for a tensor and a scalar exponent; where y != 0 the usual formula, 0^-1 included.
TEST(Kinks, PowBaseGradientIsZeroForAZeroExponent) {
  Tensor a = from_vector<double>({0, 0, 2, 0}, {4}).set_requires_grad(true);
  Tensor b = from_vector<double>({0, 2, 0, -1}, {4});
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(grad(sum(pow(a, b)), {a})[0].to_vector<double>(), (std::vector<double>{0, 0, 0, -inf}));
  Tensor x = from_vector<double>({0, 1, -1}, {3}).set_requires_grad(true);
  EXPECT_EQ(grad(sum(pow(x, 0.0)), {x})[0].to_vector<double>(), (std::vector<double>{0, 0, 0}));
  // The double backward at 0^0 stays finite, and elsewhere is the exact one.
  Tensor x2 = from_vector<double>({0, 3, 3}, {3}).set_requires_grad(true);
  Tensor y2 = from_vector<double>({0, 2, 0}, {3}).set_requires_grad(true);
  auto g1 = grad(sum(pow(x2, y2)), {x2}, Tensor(), false, true);
  EXPECT_EQ(g1[0].to_vector<double>(), (std::vector<double>{0, 6, 0}));
  auto g2 = grad(sum(g1[0]), {x2, y2});
  EXPECT_EQ(g2[0].to_vector<double>(), (std::vector<double>{0, 2, 0}));  // y (y-1) x^(y-2)
  const std::vector<double> dy = g2[1].to_vector<double>();              // x^(y-1) (1 + y log x)
  EXPECT_EQ(dy[0], 1);                                                   // at 0^0 the masked exponent: x^0 = 1
  EXPECT_NEAR(dy[1], 3 * (1 + 2 * std::log(3.0)), 1e-12);
  EXPECT_NEAR(dy[2], 1.0 / 3, 1e-15);
}

TEST(Kinks, PowExponentGradientAtNonPositiveBase) {
  // d(a^b)/db = a^b log a, as PyTorch: 0 where a = 0 and b >= 0, nan where a < 0 (no real log; it
  // was 0 here, which hid what torch reports), and at a = 0, b < 0 inf * -inf.
  Tensor a = from_vector<double>({0, 2, -1, 0}, {4}).set_requires_grad(true);
  Tensor b = from_vector<double>({2, 3, 2, -1}, {4}).set_requires_grad(true);
  auto g = grad(sum(pow(a, b)), {a, b});
  EXPECT_EQ(g[0].to_vector<double>()[0], 0);
  EXPECT_EQ(g[0].to_vector<double>()[1], 12);
  EXPECT_EQ(g[0].to_vector<double>()[2], -2);
  const std::vector<double> gb = g[1].to_vector<double>();
  EXPECT_EQ(gb[0], 0);
  EXPECT_NEAR(gb[1], 8 * std::log(2.0), 1e-12);
  EXPECT_TRUE(std::isnan(gb[2])) << gb[2];
  EXPECT_EQ(gb[3], -INFINITY);
}
