// Initialisers: bounds and standard deviations (statistically, on ~30k samples), fans,
// generator determinism, and the layers' PyTorch defaults.
#include "tests/layers/layers_test_helpers.h"

#include <cmath>

#include "tensor/random.h"

namespace gs::nn {
namespace {

struct Stats {
  double mean = 0, std = 0, max_abs = 0;
};
Stats stats(const Tensor& t) {
  auto v = t.to_vector<double>();
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= v.size();
  for (double x : v) {
    s.std += (x - s.mean) * (x - s.mean);
    s.max_abs = std::max(s.max_abs, std::abs(x));
  }
  s.std = std::sqrt(s.std / (v.size() - 1));
  return s;
}

// Weight (K=64, C=32, 4x4): fan_in = 512, fan_out = 1024, 32768 samples.
Tensor weight() { return empty({64, 32, 4, 4}); }

TEST(Init, FansAndGains) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(weight());
  EXPECT_EQ(fan_in, 512);
  EXPECT_EQ(fan_out, 1024);
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::Relu), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::LeakyRelu, std::sqrt(5.0)), std::sqrt(1.0 / 3.0));
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::Tanh), 5.0 / 3.0);
  EXPECT_THROW_MSG(kaiming_uniform_(empty({5})), "at least 2 dims");
}

TEST(Init, KaimingUniformDefaultIsOneOverSqrtFanIn) {
  Generator gen(1);
  Tensor w = weight();
  kaiming_uniform_(w, std::sqrt(5.0), FanMode::FanIn, Nonlinearity::LeakyRelu, &gen);
  double bound = 1.0 / std::sqrt(512.0);
  Stats s = stats(w);
  EXPECT_LE(s.max_abs, bound);
  EXPECT_GT(s.max_abs, 0.99 * bound);
  EXPECT_NEAR(s.mean, 0, 0.02 * bound);
  EXPECT_NEAR(s.std, bound / std::sqrt(3.0), 0.02 * bound / std::sqrt(3.0));
}

TEST(Init, KaimingNormalStd) {
  Generator gen(2);
  Tensor w = weight();
  kaiming_normal_(w, 0, FanMode::FanOut, Nonlinearity::Relu, &gen);
  double expected = std::sqrt(2.0 / 1024.0);
  Stats s = stats(w);
  EXPECT_NEAR(s.std, expected, 0.02 * expected);
  EXPECT_NEAR(s.mean, 0, 0.02 * expected);
  EXPECT_GT(s.max_abs, 3.5 * expected);  // a normal, not a bounded uniform
}

TEST(Init, XavierUniformAndNormal) {
  Generator gen(3);
  Tensor w = weight();
  xavier_uniform_(w, 1.0, &gen);
  double bound = std::sqrt(6.0 / (512 + 1024));
  Stats s = stats(w);
  EXPECT_LE(s.max_abs, bound);
  EXPECT_GT(s.max_abs, 0.99 * bound);
  EXPECT_NEAR(s.std, bound / std::sqrt(3.0), 0.02 * bound / std::sqrt(3.0));
  xavier_normal_(w, 2.0, &gen);
  double expected = 2.0 * std::sqrt(2.0 / (512 + 1024));
  EXPECT_NEAR(stats(w).std, expected, 0.02 * expected);
}

TEST(Init, UniformNormalConstant) {
  Generator gen(4);
  Tensor t = empty({20000}, {DType::F64});
  uniform_(t, 2, 4, &gen);
  Stats s = stats(t);
  EXPECT_NEAR(s.mean, 3, 0.02);
  EXPECT_LE(s.max_abs, 4);
  normal_(t, -1, 0.5, &gen);
  s = stats(t);
  EXPECT_NEAR(s.mean, -1, 0.02);
  EXPECT_NEAR(s.std, 0.5, 0.01);
  ones_(t);
  EXPECT_EQ(stats(t).mean, 1);
  zeros_(t);
  EXPECT_EQ(stats(t).max_abs, 0);
  constant_(t, 2.5);
  EXPECT_EQ(stats(t).mean, 2.5);
  EXPECT_THROW_MSG(uniform_(empty({2}, {DType::I64})), "f32 or f64");
}

TEST(Init, GeneratorMakesItReproducible) {
  Generator a(7), b(7);
  Tensor x = empty({10, 10}), y = empty({10, 10});
  xavier_uniform_(x, 1.0, &a);
  xavier_uniform_(y, 1.0, &b);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  manual_seed(11);
  auto m1 = std::make_shared<Linear>(5, 5);
  manual_seed(11);
  auto m2 = std::make_shared<Linear>(5, 5);
  EXPECT_EQ(m1->weight().to_vector<float>(), m2->weight().to_vector<float>());
}

TEST(Init, LayerDefaultsFollowPyTorch) {
  manual_seed(5);
  Linear fc(400, 300);  // bounds 1/sqrt(400) = 0.05 for weight and bias
  EXPECT_LE(stats(fc.weight()).max_abs, 0.05);
  EXPECT_GT(stats(fc.weight()).max_abs, 0.049);
  EXPECT_LE(stats(fc.bias()).max_abs, 0.05);
  EXPECT_GT(stats(fc.bias()).max_abs, 0.045);
  Conv2d conv(8, 16, 3);  // fan_in 72
  double bound = 1.0 / std::sqrt(72.0);
  EXPECT_LE(stats(conv.weight()).max_abs, bound);
  EXPECT_GT(stats(conv.weight()).max_abs, 0.98 * bound);
  EXPECT_LE(stats(conv.bias()).max_abs, bound);
  BatchNorm2d bn(4);
  EXPECT_EQ(bn.weight().to_vector<float>(), std::vector<float>(4, 1));
  EXPECT_EQ(bn.bias().to_vector<float>(), std::vector<float>(4, 0));
  EXPECT_EQ(bn.running_mean().to_vector<float>(), std::vector<float>(4, 0));
  EXPECT_EQ(bn.running_var().to_vector<float>(), std::vector<float>(4, 1));
  EXPECT_EQ(bn.num_batches_tracked().item(), 0);
}

}  // namespace
}  // namespace gs::nn
