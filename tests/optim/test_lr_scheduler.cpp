// Each LR schedule's first steps checked against hand-computed values (base lr 1), plus what all
// schedules share: construction sets step 0, per-group base lrs, state_dict round trips.
#include <cmath>
#include <numbers>

#include "tests/optim/optim_test_util.h"

namespace gs::test {
namespace {

struct Fixture {
  Tensor p = param64({0});
  optim::SGD opt{std::vector<Tensor>{p}, {.lr = 1.0}};
};

// The lr set on the optimizer at steps 0..n-1 (construction, then n-1 calls of step()).
std::vector<double> lrs(optim::LRScheduler& sched, optim::Optimizer& opt, int n) {
  std::vector<double> out = {opt.lr()};
  for (int i = 1; i < n; ++i) {
    sched.step();
    out.push_back(opt.lr());
  }
  return out;
}

void expect_lrs(const std::vector<double>& actual, const std::vector<double>& expected, double tol = 1e-12) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], tol) << "step " << i;
}

const double kC = std::cos(std::numbers::pi / 4);  // cos 45°

TEST(LRScheduler, StepLR) {
  Fixture f;
  optim::StepLR s(f.opt, 2, 0.5);
  expect_lrs(lrs(s, f.opt, 6), {1, 1, 0.5, 0.5, 0.25, 0.25});
  EXPECT_EQ(s.last_step(), 5);
  EXPECT_DOUBLE_EQ(s.get_last_lr(), 0.25);
}

TEST(LRScheduler, MultiStepLR) {
  Fixture f;
  optim::MultiStepLR s(f.opt, {3, 1}, 0.1);  // unsorted milestones are fine
  expect_lrs(lrs(s, f.opt, 5), {1, 0.1, 0.1, 0.01, 0.01});
}

TEST(LRScheduler, ExponentialLR) {
  Fixture f;
  optim::ExponentialLR s(f.opt, 0.5);
  expect_lrs(lrs(s, f.opt, 4), {1, 0.5, 0.25, 0.125});
}

TEST(LRScheduler, CosineAnnealingLR) {
  Fixture f;
  optim::CosineAnnealingLR s(f.opt, 4, 0.0);
  // (1 + cos(pi t/4))/2, and past T_max it comes back up, as PyTorch's does
  expect_lrs(lrs(s, f.opt, 6), {1, (1 + kC) / 2, 0.5, (1 - kC) / 2, 0, (1 - kC) / 2});
  optim::CosineAnnealingLR with_floor(f.opt, 2, 0.1);
  EXPECT_NEAR(with_floor.lr_at(1, 1.0), 0.1 + 0.9 * 0.5, 1e-15);
}

TEST(LRScheduler, CosineAnnealingWarmRestarts) {
  Fixture f;
  optim::CosineAnnealingWarmRestarts s(f.opt, 2, 2);
  // cycles of 2, 4, 8 steps: t/T = 0/2, 1/2, 0/4, 1/4, 2/4, 3/4, 0/8
  expect_lrs(lrs(s, f.opt, 7), {1, 0.5, 1, (1 + kC) / 2, 0.5, (1 - kC) / 2, 1});
  optim::CosineAnnealingWarmRestarts flat(f.opt, 3);
  EXPECT_DOUBLE_EQ(flat.lr_at(300, 1.0), 1.0);
  EXPECT_NEAR(flat.lr_at(301, 1.0), 0.75, 1e-15);  // (1 + cos(pi/3))/2
}

TEST(LRScheduler, LinearWarmupThenTheWrappedScheduleFromItsStart) {
  Fixture f;
  auto after = std::make_unique<optim::StepLR>(f.opt, 2, 0.5);
  optim::LinearWarmup s(f.opt, 4, 0.2, std::move(after));
  // ramp 0.2 -> 1 over 4 steps, then StepLR counted from step 4
  expect_lrs(lrs(s, f.opt, 9), {0.2, 0.4, 0.6, 0.8, 1, 1, 0.5, 0.5, 0.25});
  EXPECT_EQ(s.name(), "warmup+step");
}

TEST(LRScheduler, OneCycleLinear) {
  Fixture f;
  optim::OneCycleLR s(f.opt, 1.0, 10, 0.3, "linear", 10, 100);
  // initial 0.1, peak 1 at step 0.3*10 - 1 = 2, then down to 0.001 at step 9
  auto got = lrs(s, f.opt, 10);
  expect_lrs({got[0], got[1], got[2], got[3], got[9]}, {0.1, 0.55, 1.0, 1 + (0.001 - 1) / 7, 0.001});
  EXPECT_NEAR(s.lr_at(50, 1.0), s.lr_at(10, 1.0), 0);  // past the end: held
}

TEST(LRScheduler, OneCycleWithAPhaseOfNoLengthStaysFinite) {
  Fixture f;
  // pct_start 1: the warm-up is the whole run and the annealing phase has no length. It gave nan from
  // step total_steps on (0/0), which the trainer steps to after the last batch.
  optim::OneCycleLR all_up(f.opt, 1.0, 10, 1.0, "cos", 10, 100);
  for (int64_t step : {0, 9, 10, 11}) EXPECT_TRUE(std::isfinite(all_up.lr_at(step, 1.0))) << step;
  for (int64_t step : {0, 9, 10, 11}) EXPECT_TRUE(std::isfinite(all_up.momentum_at(step))) << step;
  EXPECT_NEAR(all_up.lr_at(9, 1.0), 1.0, 1e-15);
  EXPECT_NEAR(all_up.lr_at(10, 1.0), 0.001, 1e-15);  // the annealing phase, of no length, is over
  // pct_start * total_steps 1: the warm-up phase ends at step 0, which is its peak.
  // (0.5 * 2 is exact, fused multiply-add or not.)
  optim::OneCycleLR no_up(f.opt, 1.0, 2, 0.5, "cos", 10, 100);
  EXPECT_NEAR(no_up.lr_at(0, 1.0), 1.0, 1e-15);
  EXPECT_NEAR(no_up.lr_at(1, 1.0), 0.001, 1e-15);
  EXPECT_TRUE(std::isfinite(no_up.momentum_at(0)));
}

TEST(LRScheduler, OneCycleCosThreePhase) {
  Fixture f;
  optim::OneCycleLR s(f.opt, 1.0, 10, 0.3, "cos", 10, 100, true);
  // up to 1 at step 2, back to 0.1 at step 4 (2*3 - 2), down to 0.001 at 9
  auto got = lrs(s, f.opt, 10);
  expect_lrs({got[0], got[1], got[2], got[3], got[4], got[9]}, {0.1, 0.55, 1, 0.55, 0.1, 0.001});
}

TEST(LRScheduler, CyclicTriangularAndTriangular2) {
  Fixture f;
  optim::CyclicLR tri(f.opt, 0.1, 1.0, 2);
  expect_lrs(lrs(tri, f.opt, 7), {0.1, 0.55, 1, 0.55, 0.1, 0.55, 1});
  optim::CyclicLR tri2(f.opt, 0.1, 1.0, 2, -1, "triangular2");
  expect_lrs(lrs(tri2, f.opt, 7), {0.1, 0.55, 1, 0.55, 0.1, 0.325, 0.55});  // 2nd cycle: half height
  // up 2, down 1: scale 1/2, 1, then a new cycle; the height shrinks by gamma^step
  optim::CyclicLR exp(f.opt, 0.1, 1.0, 2, 1, "exp_range", 0.5);
  expect_lrs(lrs(exp, f.opt, 4), {0.1, 0.1 + 0.9 * 0.5 * 0.5, 0.1 + 0.9 * 1 * 0.25, 0.1});
}

TEST(LRScheduler, ConstructionSetsStepZeroAndEachGroupKeepsItsBase) {
  Tensor a = param64({0}), b = param64({0});
  optim::SGD opt(std::vector<optim::ParamGroup>{{{a}, 1.0}, {{b}, 0.1}});
  optim::OneCycleLR one(opt, 2.0, 10);
  EXPECT_NEAR(opt.param_groups()[1].lr, 2.0 / 25, 1e-15);  // OneCycle replaces the groups' lrs
  optim::SGD opt2(std::vector<optim::ParamGroup>{{{a}, 1.0}, {{b}, 0.1}});
  optim::ExponentialLR s(opt2, 0.5);
  s.step();
  EXPECT_DOUBLE_EQ(opt2.param_groups()[0].lr, 0.5);
  EXPECT_DOUBLE_EQ(opt2.param_groups()[1].lr, 0.05);
}

TEST(LRScheduler, StateDictRoundTrip) {
  Fixture f;
  optim::CosineAnnealingWarmRestarts s(f.opt, 3, 2, 0.01);
  for (int i = 0; i < 5; ++i) s.step();
  optim::NamedTensors state = s.state_dict();

  Fixture g;
  optim::CosineAnnealingWarmRestarts resumed(g.opt, 3, 2, 0.01);
  resumed.load_state_dict(state);
  EXPECT_EQ(resumed.last_step(), 5);
  EXPECT_EQ(g.opt.lr(), f.opt.lr());
  for (int i = 0; i < 6; ++i) {
    s.step();
    resumed.step();
    EXPECT_EQ(g.opt.lr(), f.opt.lr()) << "step " << 6 + i;
  }
  EXPECT_THROW_MSG(resumed.load_state_dict({}), "missing 'last_step'");
  optim::NamedTensors extra = state;
  extra.emplace_back("base_lr.3", scalar_tensor(1));
  EXPECT_THROW_MSG(resumed.load_state_dict(extra), "'base_lr.3' does not name");
}

TEST(LRScheduler, ConstructorChecks) {
  Fixture f;
  EXPECT_THROW_MSG(optim::StepLR(f.opt, 0), "step_size must be > 0");
  EXPECT_THROW_MSG(optim::CosineAnnealingLR(f.opt, 0), "T_max must be > 0");
  EXPECT_THROW_MSG(optim::OneCycleLR(f.opt, 1, 10, 0.3, "square"), "anneal must be cos or linear");
  EXPECT_THROW_MSG(optim::CyclicLR(f.opt, 0.1, 1, 2, -1, "sawtooth"), "mode must be");
  EXPECT_THROW_MSG(optim::LinearWarmup(f.opt, 0, 0.1, nullptr), "warmup_steps must be > 0");
  EXPECT_THROW_MSG(optim::OneCycleLR(f.opt, 1, 10, 0.3, "cos", 25, 1e4, false, true, 0.95, 0.85),
                   "OneCycleLR: need 0 <= base_momentum <= max_momentum < 1 (got 0.95, 0.85)");
  EXPECT_THROW_MSG(optim::CyclicLR(f.opt, 0.1, 1, 2, -1, "triangular", 1, true, 0.8, 1.0),
                   "CyclicLR: need 0 <= base_momentum <= max_momentum < 1");
}

// Warmup then plateau (torch's SequentialLR cannot hold a ReduceLROnPlateau): the ramp climbs to
// the plateau's current lr, so a reduction during the ramp lowers what it climbs to.
TEST(LRScheduler, WarmupThenPlateau) {
  Fixture f;
  auto s = optim::make_scheduler("warmup=4,start_factor=0.5+plateau:metric=train_loss,patience=0", f.opt, 0, 0);
  EXPECT_EQ(s->metric(), "train_loss");
  EXPECT_DOUBLE_EQ(f.opt.lr(), 0.5);
  s->step();
  s->observe(1.0);  // the first value is a new best
  s->step();
  s->observe(1.0);  // no better: the plateau's lr is now 0.1, the ramp's 0.1 * (0.5 + 0.5 * 2/4)
  EXPECT_DOUBLE_EQ(f.opt.lr(), 0.075);
  s->step(), s->step();
  EXPECT_DOUBLE_EQ(f.opt.lr(), 0.1);  // step 4: the end of the ramp, plateau's lr
  auto state = s->state_dict();
  Fixture g;
  auto t = optim::make_scheduler("warmup=4,start_factor=0.5+plateau:metric=train_loss,patience=0", g.opt, 0, 0);
  t->load_state_dict(state);
  EXPECT_DOUBLE_EQ(g.opt.lr(), 0.1);
  t->observe(1.0);
  EXPECT_DOUBLE_EQ(g.opt.lr(), 0.01);  // its best (1.0) came back too
  EXPECT_THROW_MSG(optim::make_scheduler("plateau:metric=test_acc", f.opt, 0, 0),
                   "ReduceLROnPlateau: metric must be val_loss, val_acc, train_loss or train_acc, got 'test_acc'");
  EXPECT_THROW_MSG(optim::make_scheduler("plateau:factor=1", f.opt, 0, 0), "factor must be in (0, 1), got 1");
}

// The momentum runs against the lr: which option each optimizer has cycled (torch's
// cycle_momentum), and an optimizer with neither left untouched.
TEST(LRScheduler, OneCycleCyclesTheMomentumOfEachOptimizer) {
  Tensor p = param64({0});
  optim::SGD sgd(std::vector<Tensor>{p}, {.lr = 1.0, .momentum = 0.5});
  optim::OneCycleLR s(sgd, 1.0, 10, 0.3, "linear", 10, 100);  // peak lr at step 2
  EXPECT_EQ(s.momentum_key(), "momentum");
  EXPECT_EQ(sgd.param_groups()[0].options.at("momentum"), 0.95);  // step 0: max_momentum
  s.step(), s.step();
  EXPECT_NEAR(sgd.param_groups()[0].options.at("momentum"), 0.85, 1e-12);  // at the peak: base_momentum
  for (int i = 0; i < 7; ++i) s.step();
  EXPECT_NEAR(sgd.param_groups()[0].options.at("momentum"), 0.95, 1e-12);  // step 9: back up

  optim::Adam adam(std::vector<Tensor>{param64({0})}, {.lr = 1.0});
  optim::CyclicLR c(adam, 0.1, 1.0, 2);
  EXPECT_EQ(c.momentum_key(), "beta1");  // torch 2's use_beta1 (1.13 raises for Adam)
  EXPECT_EQ(adam.param_groups()[0].options.at("beta1"), 0.9);
  c.step();
  EXPECT_NEAR(adam.param_groups()[0].options.at("beta1"), 0.85, 1e-12);  // halfway up: (0.9 + 0.8) / 2

  optim::Rprop rprop(std::vector<Tensor>{param64({0})}, {.lr = 1.0});
  const auto before = rprop.param_groups()[0].options;
  optim::OneCycleLR r(rprop, 1.0, 10);
  r.step();
  EXPECT_EQ(r.momentum_key(), "");
  EXPECT_EQ(rprop.param_groups()[0].options, before);

  optim::SGD plain(std::vector<Tensor>{param64({0})}, {.lr = 1.0, .momentum = 0.5});
  optim::OneCycleLR off(plain, 1.0, 10, 0.3, "cos", 25, 1e4, false, /*cycle_momentum=*/false);
  off.step();
  EXPECT_EQ(plain.param_groups()[0].options.at("momentum"), 0.5);
}

}  // namespace
}  // namespace gs::test
