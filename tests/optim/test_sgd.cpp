// SGD single steps checked by hand: plain, momentum, dampening, nesterov, weight decay, f32, and
// a tensor large enough for the OpenMP loop.
#include "tests/optim/optim_test_util.h"

namespace gs::test {
namespace {

TEST(SGD, PlainStep) {
  Tensor p = param64({1, -2});
  optim::SGD opt({p}, {.lr = 0.1});
  set_grad64(p, {0.5, 1});
  opt.step();
  expect_values(p, {0.95, -2.1});  // p - 0.1*g
}

TEST(SGD, MomentumFirstStepCopiesGradThenAccumulates) {
  Tensor p = param64({1, -2});
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9});
  set_grad64(p, {0.5, 1});
  opt.step();  // buf = g = [0.5, 1]
  expect_values(p, {0.95, -2.1});
  set_grad64(p, {1, 0});
  opt.step();  // buf = 0.9*[0.5,1] + [1,0] = [1.45, 0.9]; p -= 0.1*buf
  expect_values(p, {0.805, -2.19});
}

TEST(SGD, Dampening) {
  Tensor p = param64({1, -2});
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  set_grad64(p, {0.5, 1});
  opt.step();  // the first buffer is g itself (no dampening), as in PyTorch
  expect_values(p, {0.95, -2.1});
  set_grad64(p, {1, 0});
  opt.step();  // buf = 0.9*[0.5,1] + 0.5*[1,0] = [0.95, 0.9]
  expect_values(p, {0.855, -2.19});
}

TEST(SGD, Nesterov) {
  Tensor p = param64({1, -2});
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  set_grad64(p, {0.5, 1});
  opt.step();  // buf = g; d = g + 0.9*buf = [0.95, 1.9]
  expect_values(p, {0.905, -2.19});
}

TEST(SGD, WeightDecayAddsToGradient) {
  Tensor p = param64({1, -2});
  optim::SGD opt({p}, {.lr = 0.1, .weight_decay = 0.1});
  set_grad64(p, {0.5, 1});
  opt.step();  // d = g + 0.1*p = [0.6, 0.8]
  expect_values(p, {0.94, -2.08});
}

TEST(SGD, NesterovNeedsMomentumAndNoDampening) {
  Tensor p = param64({1});
  EXPECT_THROW_MSG(optim::SGD({p}, {.lr = 0.1, .nesterov = true}), "nesterov needs momentum > 0");
  EXPECT_THROW_MSG(optim::SGD({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}), "dampening = 0");
  EXPECT_THROW_MSG(optim::SGD({p}, {.lr = 0.1, .momentum = -1}), "invalid momentum");
}

TEST(SGD, Float32) {
  Tensor p = from_vector(std::vector<float>{1.f, -2.f}, {2}).set_requires_grad(true);
  optim::SGD opt({p}, {.lr = 0.5});
  p.set_grad(from_vector(std::vector<float>{1.f, -1.f}, {2}));
  opt.step();
  auto v = p.to_vector<float>();
  EXPECT_FLOAT_EQ(v[0], 0.5f);
  EXPECT_FLOAT_EQ(v[1], -1.5f);
}

TEST(SGD, LargeTensorTakesTheParallelLoop) {
  const int64_t n = 200000;  // above the OpenMP grain
  Tensor p = full({n}, 1.0, {DType::F64}).set_requires_grad(true);
  Tensor g = arange(0, static_cast<double>(n), 1, {DType::F64});
  optim::SGD opt({p}, {.lr = 0.001, .momentum = 0.5});
  p.set_grad(g);
  opt.step();
  opt.step();  // buf = g then 0.5*g + g = 1.5 g; p = 1 - 0.001*g - 0.0015*g
  const double* data = p.data<double>();
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(data[i] - (1 - 0.0025 * static_cast<double>(i))));
  EXPECT_LE(worst, 1e-9);
}

}  // namespace
}  // namespace gs::test
