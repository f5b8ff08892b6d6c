// Adam and AdamW single steps checked by hand: bias correction, L2 vs decoupled weight decay,
// amsgrad keeping the largest second moment.
#include <cmath>

#include "tests/optim/optim_test_util.h"

namespace gs::test {
namespace {

TEST(Adam, FirstStepMovesByLrTimesSign) {
  Tensor p = param64({1, 1});
  optim::Adam opt({p}, {.lr = 0.1});
  set_grad64(p, {2, -0.5});
  opt.step();
  // m = 0.1 g, v = 0.001 g²; m/(1-0.9) = g, sqrt(v/(1-0.999)) = |g|: p -= 0.1 * g/(|g| + 1e-8)
  expect_values(p, {1 - 0.1 * 2 / (2 + 1e-8), 1 + 0.1 * 0.5 / (0.5 + 1e-8)}, 1e-15);
}

TEST(Adam, SecondStepWithBiasCorrection) {
  Tensor p = param64({1});
  optim::Adam opt({p}, {.lr = 0.1});
  set_grad64(p, {2});
  opt.step();
  set_grad64(p, {-1});
  opt.step();
  // m = 0.9*0.2 - 0.1 = 0.08; v = 0.999*0.004 + 0.001 = 0.004996; bc1 = 0.19; bc2 = 0.001999
  const double first = 1 - 0.1 * 2 / (2 + 1e-8);
  const double expected = first - (0.1 / 0.19) * 0.08 / (std::sqrt(0.004996) / std::sqrt(0.001999) + 1e-8);
  expect_values(p, {expected}, 1e-14);
  EXPECT_NEAR(expected, 0.87337, 1e-5);  // the same, as a number
}

TEST(Adam, L2WeightDecayActsThroughTheGradient) {
  Tensor p = param64({1});
  optim::Adam opt({p}, {.lr = 0.1, .weight_decay = 0.5});
  set_grad64(p, {0});
  opt.step();  // g' = 0 + 0.5*1 = 0.5: a full Adam step of size lr
  expect_values(p, {1 - 0.1 * 0.5 / (0.5 + 1e-8)}, 1e-15);
}

TEST(AdamW, DecoupledWeightDecayScalesTheParameter) {
  Tensor p = param64({1});
  optim::AdamW opt({p}, {.lr = 0.1, .weight_decay = 0.5});
  set_grad64(p, {2});
  opt.step();  // p = 1*(1 - 0.1*0.5) = 0.95, then the Adam step of size 0.1
  expect_values(p, {0.95 - 0.1 * 2 / (2 + 1e-8)}, 1e-15);
  EXPECT_EQ(opt.name(), "adamw");
  optim::AdamW defaults({param64({1})});
  EXPECT_DOUBLE_EQ(defaults.param_groups()[0].weight_decay, 1e-2);
}

TEST(Adam, AmsgradUsesTheLargestSecondMoment) {
  Tensor a = param64({1}), b = param64({1});
  optim::Adam plain({a}, {.lr = 0.1});
  optim::Adam ams({b}, {.lr = 0.1, .amsgrad = true});
  for (double g : {2.0, 0.01}) {
    set_grad64(a, {g});
    set_grad64(b, {g});
    plain.step();
    ams.step();
  }
  // Step 2: v = 0.999*0.004 + 0.001*1e-4 = 0.0039961 < vmax = 0.004; m = 0.18 + 0.001 = 0.181
  const double first = 1 - 0.1 * 2 / (2 + 1e-8);
  const double bc2_sqrt = std::sqrt(1 - 0.999 * 0.999);
  expect_values(b, {first - (0.1 / 0.19) * 0.181 / (std::sqrt(0.004) / bc2_sqrt + 1e-8)}, 1e-14);
  expect_values(a, {first - (0.1 / 0.19) * 0.181 / (std::sqrt(0.0039961) / bc2_sqrt + 1e-8)}, 1e-14);
}

TEST(Adam, RejectsBadBetas) {
  EXPECT_THROW_MSG(optim::Adam({param64({1})}, {.beta1 = 1.0}), "invalid beta1");
  EXPECT_THROW_MSG(optim::Adam({param64({1})}, {.beta2 = -0.1}), "invalid beta2");
  EXPECT_THROW_MSG(optim::Adam({param64({1})}, {.eps = -1}), "invalid eps");
}

}  // namespace
}  // namespace gs::test
