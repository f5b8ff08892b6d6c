// make_scheduler's spec strings: each schedule's happy path, the warmup prefix, and each error.
#include "tests/optim/optim_test_util.h"

namespace gs::test {
namespace {

struct Fixture {
  Tensor p = param64({0});
  optim::SGD opt{std::vector<Tensor>{p}, {.lr = 1.0}};
  std::unique_ptr<optim::LRScheduler> make(const std::string& spec, int64_t steps_per_epoch = 10, int64_t epochs = 3) {
    return optim::make_scheduler(spec, opt, steps_per_epoch, epochs);
  }
};

TEST(SchedulerSpec, EachSchedule) {
  Fixture f;
  auto none = f.make("none");
  ASSERT_TRUE(none);
  none->step();
  EXPECT_EQ(none->name(), "none");
  EXPECT_DOUBLE_EQ(f.opt.lr(), 1.0);
  EXPECT_EQ(f.make("")->name(), "none");

  auto step = f.make("step:step_size=30,gamma=0.1");
  EXPECT_EQ(step->name(), "step");
  EXPECT_DOUBLE_EQ(step->lr_at(29, 1), 1);
  EXPECT_NEAR(step->lr_at(30, 1), 0.1, 1e-15);

  auto cosine = f.make("cosine");  // T_max = 10 * 3
  EXPECT_NEAR(cosine->lr_at(15, 1), 0.5, 1e-15);
  EXPECT_NEAR(cosine->lr_at(30, 1), 0, 1e-15);
  EXPECT_NEAR(f.make("cosine:T_max=4,eta_min=0.5")->lr_at(2, 1), 0.75, 1e-15);

  auto onecycle = f.make("onecycle:max_lr=0.1");
  EXPECT_NEAR(f.opt.lr(), 0.1 / 25, 1e-15);
  EXPECT_NEAR(onecycle->lr_at(8, 1), 0.1, 1e-15);  // peak at 0.3*30 - 1
  EXPECT_NEAR(onecycle->lr_at(29, 1), 0.1 / 25 / 1e4, 1e-15);

  auto cyclic = f.make("cyclic:base_lr=1e-3,max_lr=0.1,step_size_up=2000,mode=triangular2");
  EXPECT_NEAR(cyclic->lr_at(2000, 1), 0.1, 1e-15);
  EXPECT_NEAR(cyclic->lr_at(6000, 1), 1e-3 + 0.099 / 2, 1e-15);

  EXPECT_NEAR(f.make("exp:gamma=0.95")->lr_at(2, 1), 0.9025, 1e-15);
  auto multi = f.make("multistep:milestones=30|60,gamma=0.1");
  EXPECT_NEAR(multi->lr_at(59, 1), 0.1, 1e-15);
  EXPECT_NEAR(multi->lr_at(60, 1), 0.01, 1e-15);
  auto restarts = f.make("cosine_restarts:T_0=10");
  EXPECT_EQ(restarts->name(), "cosine_restarts");
  EXPECT_DOUBLE_EQ(restarts->lr_at(10, 1), 1);
}

TEST(SchedulerSpec, WarmupPrefixShortensTheTotalOfTheWrappedSchedule) {
  Fixture f;
  auto s = f.make("warmup=500+cosine", 100, 15);  // total 1500: cosine over the last 1000
  EXPECT_EQ(s->name(), "warmup+cosine");
  EXPECT_NEAR(f.opt.lr(), 0.01, 1e-15);  // start_factor 0.01 at step 0
  EXPECT_NEAR(s->lr_at(250, 1), 0.01 + 0.99 * 0.5, 1e-15);
  EXPECT_DOUBLE_EQ(s->lr_at(500, 1), 1);
  EXPECT_NEAR(s->lr_at(1000, 1), 0.5, 1e-15);
  EXPECT_NEAR(s->lr_at(1500, 1), 0, 1e-15);
  auto only = f.make("warmup=4,start_factor=0.5");
  EXPECT_NEAR(only->lr_at(2, 1), 0.75, 1e-15);
  EXPECT_DOUBLE_EQ(only->lr_at(100, 1), 1);
}

TEST(SchedulerSpec, ErrorsNameTheBadPart) {
  Fixture f;
  EXPECT_THROW_MSG(f.make("linear"), "unknown schedule 'linear'");
  EXPECT_THROW_MSG(f.make("linear"), "known: none, step, multistep, exp, cosine, cosine_restarts, onecycle, cyclic");
  EXPECT_THROW_MSG(f.make("step:step_size=30,gama=0.1"), "unknown key 'gama' for 'step:step_size=30,gama=0.1'");
  EXPECT_THROW_MSG(f.make("step:step_size=30,gama=0.1"), "known: step_size, gamma");
  EXPECT_THROW_MSG(f.make("step:gamma=0.1"), "needs key 'step_size'");
  EXPECT_THROW_MSG(f.make("step:step_size=abc"), "bad value 'abc' for key 'step_size'");
  EXPECT_THROW_MSG(f.make("step:step_size=2.5"), "expected an integer");
  EXPECT_THROW_MSG(f.make("step:step_size"), "'step_size' in 'step:step_size' is not key=value");
  EXPECT_THROW_MSG(f.make("step:step_size=3,step_size=4"), "given twice");
  EXPECT_THROW_MSG(f.make("exp"), "needs key 'gamma'");
  EXPECT_THROW_MSG(f.make("multistep:milestones=30|x"), "bad value 'x' for key 'milestones'");
  EXPECT_THROW_MSG(f.make("cosine", 0, 0), "'cosine' needs T_max");
  EXPECT_THROW_MSG(f.make("onecycle:anneal=square"), "anneal must be cos or linear");
  EXPECT_THROW_MSG(f.make("onecycle:three_phase=yes"), "bad value 'yes' for key 'three_phase'");
  EXPECT_THROW_MSG(f.make("cyclic:base_lr=0.1"), "needs key 'max_lr'");
  EXPECT_THROW_MSG(f.make("cyclic:max_lr=1,mode=sawtooth"), "mode must be");
  EXPECT_THROW_MSG(f.make("cosine_restarts"), "needs key 'T_0'");
  EXPECT_THROW_MSG(f.make("warmup=abc+cosine"), "bad value 'abc' for key 'warmup'");
  EXPECT_THROW_MSG(f.make("warmup=0+cosine"), "expected an integer > 0");
  EXPECT_THROW_MSG(f.make("warmup=5,factor=2+cosine"), "unknown key 'factor'");
  EXPECT_THROW_MSG(f.make("warmup=5+warmup=5+cosine"), "two warmup prefixes");
  EXPECT_THROW_MSG(f.make("none:x=1"), "unknown key 'x'");
}

}  // namespace
}  // namespace gs::test
