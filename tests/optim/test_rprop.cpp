// Rprop checked by hand: step sizes grow on equal signs, shrink and skip the update on a sign
// flip, stay on a zero product, and are clamped to [step_min, step_max].
#include "tests/optim/optim_test_util.h"

namespace gs::test {
namespace {

TEST(Rprop, StepSizesFollowTheSigns) {
  Tensor p = param64({0, 0, 0});
  optim::Rprop opt({p}, {.lr = 0.1});
  set_grad64(p, {1, -1, 0});
  opt.step();  // prev = 0: factors 1, step sizes 0.1; p -= sign(g)*0.1
  expect_values(p, {-0.1, 0.1, 0});
  set_grad64(p, {2, 1, 3});
  opt.step();  // g*prev = [2, -1, 0]: steps [0.12, 0.05, 0.1]; the flipped one does not move
  expect_values(p, {-0.22, 0.1, -0.1});
  set_grad64(p, {1, 1, 1});
  opt.step();  // prev = [2, 0, 3]: factors [1.2, 1, 1.2]: steps [0.144, 0.05, 0.12]
  expect_values(p, {-0.364, 0.05, -0.22});
}

TEST(Rprop, StepSizesAreClamped) {
  Tensor p = param64({0, 0});
  optim::Rprop opt({p}, {.lr = 0.1, .step_min = 0.08, .step_max = 0.11});
  set_grad64(p, {1, 1});
  opt.step();
  set_grad64(p, {1, -1});
  opt.step();  // 0.1*1.2 = 0.12 -> 0.11; 0.1*0.5 = 0.05 -> 0.08 (and no move)
  expect_values(p, {-0.21, -0.1});
  auto state = opt.state_dict();
  for (const auto& [key, value] : state)
    if (key == "state.0.step_size") expect_values(value, {0.11, 0.08});
}

TEST(Rprop, RejectsWeightDecayAndBadEtas) {
  EXPECT_THROW_MSG(optim::Rprop({param64({1})}, {.eta_minus = 1.5}), "eta_minus");
  std::vector<optim::ParamGroup> groups = {{{param64({1})}, 0.1, 0.01, {}}};
  EXPECT_THROW_MSG(optim::Rprop(groups, {}), "rprop has none");
}

}  // namespace
}  // namespace gs::test
