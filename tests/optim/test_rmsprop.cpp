// RMSprop checked by hand: plain, centered, momentum and weight decay.
#include <cmath>

#include "tests/optim/optim_test_util.h"

namespace gs::test {
namespace {

TEST(RMSprop, PlainStep) {
  Tensor p = param64({1});
  optim::RMSprop opt({p}, {.lr = 0.01});
  set_grad64(p, {2});
  opt.step();  // sq = 0.01*4 = 0.04; p -= 0.01*2/(0.2 + 1e-8)
  expect_values(p, {1 - 0.01 * 2 / (0.2 + 1e-8)}, 1e-15);
}

TEST(RMSprop, CenteredSubtractsTheSquaredMean) {
  Tensor p = param64({1});
  optim::RMSprop opt({p}, {.lr = 0.01, .centered = true});
  set_grad64(p, {2});
  opt.step();  // sq = 0.04, ga = 0.02: avg = sqrt(0.04 - 0.0004)
  expect_values(p, {1 - 0.01 * 2 / (std::sqrt(0.0396) + 1e-8)}, 1e-15);
}

TEST(RMSprop, MomentumAccumulatesTheScaledGradient) {
  Tensor p = param64({1});
  optim::RMSprop opt({p}, {.lr = 0.01, .momentum = 0.9});
  set_grad64(p, {2});
  opt.step();  // buf = 2/0.2 = 10; p = 0.9
  set_grad64(p, {2});
  opt.step();  // sq = 0.99*0.04 + 0.04 = 0.0796; buf = 9 + 2/sqrt(0.0796)
  const double buf2 = 0.9 * (2 / (0.2 + 1e-8)) + 2 / (std::sqrt(0.0796) + 1e-8);
  expect_values(p, {1 - 0.01 * (2 / (0.2 + 1e-8)) - 0.01 * buf2}, 1e-14);
  EXPECT_NEAR(p.item(), 0.739112, 1e-6);
}

TEST(RMSprop, WeightDecay) {
  Tensor p = param64({1});
  optim::RMSprop opt({p}, {.lr = 0.01, .weight_decay = 1});
  set_grad64(p, {1});
  opt.step();  // g' = 1 + 1 = 2: the same as PlainStep
  expect_values(p, {1 - 0.01 * 2 / (0.2 + 1e-8)}, 1e-15);
}

}  // namespace
}  // namespace gs::test
