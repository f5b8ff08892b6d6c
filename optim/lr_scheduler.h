// Learning-rate schedules with PyTorch semantics: constructing a scheduler sets the optimizer's lr
// for step 0; each step() advances one step and sets the lr of every group. All schedules here have
// a closed form lr_at(step, base_lr) (PyTorch's formulas), so a resumed run only needs last_step
// and the base lrs (state_dict). Steps are optimizer steps (batches) when built by make_scheduler.
//
//   gs::optim::SGD opt(params, {.lr = 0.1});
//   auto sched = gs::optim::make_scheduler("warmup=500+cosine", opt, steps_per_epoch, epochs);
//   for (...) { ...; opt.step(); sched->step(); }
//
// OneCycleLR and CyclicLR also cycle the momentum as PyTorch's do (cycle_momentum): each step sets
// every group's "beta1" (Adam, AdamW; torch's betas[0]) or "momentum" (SGD, RMSprop), inversely to
// the lr. An optimizer with neither (Rprop) is left alone, where torch raises.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace gs::optim {

class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer);  // base lrs: the groups' lrs now
  virtual ~LRScheduler();
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  void step();  // last_step += 1, then sets every group's lr
  int64_t last_step() const { return last_step_; }
  double get_last_lr() const;  // group 0's lr as last set by this scheduler
  const std::vector<double>& last_lrs() const { return last_lrs_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  Optimizer& optimizer() const { return optimizer_; }
  virtual double lr_at(int64_t step, double base_lr) const = 0;
  virtual std::string name() const = 0;
  // The option this schedule cycles ("beta1" or "momentum"; empty: none) and its value at a step.
  virtual const std::string& momentum_key() const { return momentum_key_; }
  virtual double momentum_at(int64_t step) const;
  // Group g's lr at a step: lr_at(step, its base lr), except for schedules with state (plateau).
  virtual double group_lr(size_t g, int64_t step) const { return lr_at(step, base_lrs_.at(g)); }
  // Schedules that follow a metric (plateau) name it here ("val_loss", "val_acc", "train_loss",
  // "train_acc"; empty for the others) and take its value once per epoch in observe().
  virtual std::string metric() const { return ""; }
  virtual void observe(double value);

  // "last_step" (i64 scalar) and "base_lr.<group>" (f64 scalars); loading sets the optimizer's lrs
  // for that step. Errors name the key.
  virtual NamedTensors state_dict() const;
  virtual void load_state_dict(const NamedTensors& state);

 protected:
  void start();  // each concrete constructor calls this last: applies step 0
  void apply();  // sets every group's lr to lr_at(last_step, base), and the cycled momentum
  // For cycle_momentum: the option key the optimizer has ("beta1" first, then "momentum"), or "".
  static std::string cycled_momentum_key(const Optimizer& optimizer);
  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  std::string momentum_key_;  // set by schedules that cycle the momentum

 private:
  int64_t last_step_ = 0;
  std::vector<double> last_lrs_;
};

// base_lr for every step ("none"; make_scheduler's default).
class ConstantLR : public LRScheduler {
 public:
  explicit ConstantLR(Optimizer& optimizer);
  double lr_at(int64_t step, double base_lr) const override { return base_lr; }
  std::string name() const override { return "none"; }
};

// base * gamma^floor(step / step_size)
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t step, double base_lr) const override;
  std::string name() const override { return "step"; }

 private:
  int64_t step_size_;
  double gamma_;
};

// base * gamma^(number of milestones <= step); milestones may repeat, as in PyTorch.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);
  double lr_at(int64_t step, double base_lr) const override;
  std::string name() const override { return "multistep"; }

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

// base * gamma^step
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);
  double lr_at(int64_t step, double base_lr) const override;
  std::string name() const override { return "exp"; }

 private:
  double gamma_;
};

// eta_min + (base - eta_min) * (1 + cos(pi * step / T_max)) / 2 (periodic past T_max, as PyTorch's).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0);
  double lr_at(int64_t step, double base_lr) const override;
  std::string name() const override { return "cosine"; }

 private:
  int64_t T_max_;
  double eta_min_;
};

// SGDR: cosine from base to eta_min over T_i steps, then restart with T_i *= T_mult (T_0 first).
class CosineAnnealingWarmRestarts : public LRScheduler {
 public:
  CosineAnnealingWarmRestarts(Optimizer& optimizer, int64_t T_0, int64_t T_mult = 1, double eta_min = 0);
  double lr_at(int64_t step, double base_lr) const override;
  std::string name() const override { return "cosine_restarts"; }

 private:
  int64_t T_0_, T_mult_;
  double eta_min_;
};

// Linear ramp from start_factor*target (step 0) to target (step warmup_steps), as torch's LinearLR,
// target being after's step-0 lr (the base lr, except for onecycle: max_lr / div_factor; for
// plateau its current lr, which a plateau seen during the ramp lowers);
// from step warmup_steps on, the wrapped schedule counted from the end of warmup:
//   lr(step) = after.lr_at(step - warmup_steps, base), i.e. after's step 0 comes at warmup_steps.
// This is torch's SequentialLR([LinearLR(start_factor, total_iters=W), after], milestones=[W]) when
// after's step-0 lr is the base lr. For onecycle, plateau and a cyclic with a base_lr of its own,
// torch's LinearLR would ramp to the optimizer's lr and then jump; this ramp ends where after starts.
// `after` may be null (constant base lr after warmup). The base lrs are after's base lrs.
class LinearWarmup : public LRScheduler {
 public:
  LinearWarmup(Optimizer& optimizer, int64_t warmup_steps, double start_factor, std::unique_ptr<LRScheduler> after);
  double lr_at(int64_t step, double base_lr) const override;
  std::string name() const override;
  const LRScheduler* after() const { return after_.get(); }
  // after's momentum, held at its step 0 during the ramp (torch's LinearLR leaves it alone).
  const std::string& momentum_key() const override;
  double momentum_at(int64_t step) const override;
  double group_lr(size_t g, int64_t step) const override;
  std::string metric() const override { return after_ ? after_->metric() : ""; }
  void observe(double value) override;       // to after (its lrs then show from the next step)
  NamedTensors state_dict() const override;  // after's own state too, as "after.<key>"
  void load_state_dict(const NamedTensors& state) override;

 private:
  double ramp(int64_t step) const;  // the factor on the target lr at a step of the ramp
  int64_t warmup_steps_;
  double start_factor_;
  std::unique_ptr<LRScheduler> after_;
};

// torch's OneCycleLR. Starts at max_lr/div_factor, rises to max_lr by step
// pct_start*total_steps - 1, anneals to initial/final_div_factor at total_steps - 1; three_phase
// comes back down to the initial lr first. The groups' own lrs are not used. Steps past
// total_steps hold the lr of step total_steps (PyTorch raises there). With cycle_momentum the
// momentum goes the other way: max_momentum, down to base_momentum at the peak lr, back up.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, double pct_start = 0.3,
             const std::string& anneal = "cos", double div_factor = 25, double final_div_factor = 1e4,
             bool three_phase = false, bool cycle_momentum = true, double base_momentum = 0.85,
             double max_momentum = 0.95);
  double lr_at(int64_t step, double base_lr) const override;
  double momentum_at(int64_t step) const override;
  std::string name() const override { return "onecycle"; }

 private:
  struct Phase {
    double end_step, start_lr, end_lr, start_momentum, end_momentum;
  };
  // The phase of `step` and the fraction of it done.
  std::pair<const Phase*, double> phase_at(int64_t step) const;
  double anneal(double start, double end, double pct) const;
  std::vector<Phase> phases_;
  int64_t total_steps_;
  bool cos_;
};

// torch's CyclicLR: triangle waves between base_lr and max_lr; step_size_down < 0 means equal to
// step_size_up. mode: triangular, triangular2 (amplitude halves each cycle), exp_range (amplitude
// * gamma^step). The groups' own lrs are replaced by base_lr. With cycle_momentum the momentum
// runs from max_momentum down to base_momentum at the lr's peak, with the lr's amplitude scaling.
class CyclicLR : public LRScheduler {
 public:
  CyclicLR(Optimizer& optimizer, double base_lr, double max_lr, int64_t step_size_up = 2000,
           int64_t step_size_down = -1, const std::string& mode = "triangular", double gamma = 1.0,
           bool cycle_momentum = true, double base_momentum = 0.8, double max_momentum = 0.9);
  double lr_at(int64_t step, double base_lr) const override;
  double momentum_at(int64_t step) const override;
  std::string name() const override { return "cyclic"; }

 private:
  // scale_factor * scale_fn at a step: the fraction of the amplitude above the base.
  double height_at(int64_t step) const;
  double base_lr_, max_lr_, total_size_, step_ratio_, gamma_, base_momentum_, max_momentum_;
  std::string mode_;
};

// torch's ReduceLROnPlateau: each observe() (once per epoch) compares the metric with the best so
// far (mode min for losses, max for accuracies; threshold rel: better than best*(1 -/+ threshold),
// abs: best -/+ threshold); after more than `patience` epochs without a better one, every group's
// lr becomes max(lr * factor, min_lr) (unchanged when that moves it by eps or less), then
// `cooldown` epochs pass before counting again. step() leaves the lrs alone. The state (best,
// counters, current lrs) is in state_dict.
class ReduceLROnPlateau : public LRScheduler {
 public:
  ReduceLROnPlateau(Optimizer& optimizer, const std::string& metric = "val_loss", double factor = 0.1,
                    int64_t patience = 10, double threshold = 1e-4, const std::string& threshold_mode = "rel",
                    int64_t cooldown = 0, double min_lr = 0, double eps = 1e-8);
  double lr_at(int64_t step, double base_lr) const override { return base_lr; }
  double group_lr(size_t g, int64_t step) const override { return lrs_.at(g); }
  std::string metric() const override { return metric_; }
  void observe(double value) override;
  std::string name() const override { return "plateau"; }
  NamedTensors state_dict() const override;
  void load_state_dict(const NamedTensors& state) override;
  int64_t num_bad_epochs() const { return num_bad_epochs_; }

 private:
  bool better(double value) const;
  std::string metric_, threshold_mode_;
  bool maximize_;
  double factor_, threshold_, min_lr_, eps_;
  int64_t patience_, cooldown_;
  double best_;
  int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0;
  std::vector<double> lrs_;  // every group's current lr
};

// Builds a schedule from a CLI spec, counting optimizer steps (batches):
//   "none" | "" -> ConstantLR (never null)
//   "step:step_size=N[,gamma=0.1]"           "multistep:milestones=A|B|C[,gamma=0.1]"
//   "exp:gamma=G"                            "cosine[:T_max=N,eta_min=0]"  (T_max: total steps)
//   "cosine_restarts:T_0=N[,T_mult=1,eta_min=0]"
//   "onecycle[:max_lr=<opt lr>,total_steps=<total>,pct_start=0.3,anneal=cos|linear,div_factor=25,
//              final_div_factor=1e4,three_phase=0,cycle_momentum=1,base_momentum=0.85,max_momentum=0.95]"
//   "cyclic:max_lr=M[,base_lr=<opt lr>,step_size_up=2000,step_size_down=-1,mode=triangular|triangular2|
//            exp_range,gamma=1,cycle_momentum=1,base_momentum=0.8,max_momentum=0.9]"
//   "plateau[:metric=val_loss|val_acc|train_loss|train_acc,factor=0.1,patience=10,threshold=1e-4,
//             threshold_mode=rel|abs,cooldown=0,min_lr=0,eps=1e-8]"  (the trainer feeds it each epoch)
//   prefix "warmup=N[,start_factor=0.01]+" wraps any of them in LinearWarmup (e.g. "warmup=500+cosine";
//   "warmup=500" alone holds base after the ramp). With warmup, the defaults counted in total steps
//   (cosine T_max, onecycle total_steps) become total - N, so the schedule still ends with training.
// total = steps_per_epoch * epochs. Errors (gs::Error) name the bad key or value and list the known ones.
std::unique_ptr<LRScheduler> make_scheduler(const std::string& spec, Optimizer& optimizer, int64_t steps_per_epoch,
                                            int64_t epochs);

}  // namespace gs::optim
