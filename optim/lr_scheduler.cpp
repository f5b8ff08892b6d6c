// The LR schedules: the base class (stepping, state) and each schedule's closed form, written as
// torch 1.13's lr_scheduler.py computes it. The spec parser is in scheduler_spec.cpp.
#include "optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace gs::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
  for (const auto& group : optimizer.param_groups()) base_lrs_.push_back(group.lr);
}

LRScheduler::~LRScheduler() = default;

void LRScheduler::start() {
  last_step_ = 0;
  apply();
}

void LRScheduler::step() {
  ++last_step_;
  apply();
}

void LRScheduler::apply() {
  auto& groups = optimizer_.param_groups();
  GS_CHECK(groups.size() == base_lrs_.size(), "%s scheduler: the optimizer has %zu groups but the scheduler knows %zu",
           name().c_str(), groups.size(), base_lrs_.size());
  last_lrs_.resize(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    last_lrs_[g] = group_lr(g, last_step_);
    groups[g].lr = last_lrs_[g];
  }
  const std::string& key = momentum_key();
  if (!key.empty()) {
    const double m = momentum_at(last_step_);
    for (auto& group : groups) group.options[key] = m;
  }
}

double LRScheduler::momentum_at(int64_t) const { return NAN; }

void LRScheduler::observe(double) {}

std::string LRScheduler::cycled_momentum_key(const Optimizer& optimizer) {
  const auto& groups = optimizer.param_groups();
  if (groups.empty()) return "";
  for (const char* key : {"beta1", "momentum"}) {
    if (groups[0].options.count(key)) return key;
  }
  return "";
}

double LRScheduler::get_last_lr() const { return last_lrs_.at(0); }

NamedTensors LRScheduler::state_dict() const {
  NamedTensors out;
  Tensor step = empty({}, {DType::I64});
  *step.data<int64_t>() = last_step_;
  out.emplace_back("last_step", step);
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    Tensor lr = empty({}, {DType::F64});
    *lr.data<double>() = base_lrs_[g];
    out.emplace_back("base_lr." + std::to_string(g), lr);
  }
  return out;
}

void LRScheduler::load_state_dict(const NamedTensors& state) {
  const std::string op = name() + " scheduler load_state_dict";
  int64_t step = -1;
  std::vector<double> base = base_lrs_;
  std::vector<bool> seen(base.size(), false);
  for (const auto& [key, value] : state) {
    GS_CHECK(value.defined() && value.numel() == 1, "%s: '%s' must be a one-element tensor", op.c_str(), key.c_str());
    if (key == "last_step") {
      double v = value.item();
      GS_CHECK(v >= 0 && v == std::floor(v), "%s: 'last_step' is not a step count: %g", op.c_str(), v);
      step = static_cast<int64_t>(v);
    } else if (key.rfind("base_lr.", 0) == 0) {
      const std::string index = key.substr(8);
      size_t g = base.size();
      if (!index.empty() && index.find_first_not_of("0123456789") == std::string::npos && index.size() < 9)
        g = static_cast<size_t>(std::stoul(index));
      GS_CHECK(g < base.size(), "%s: '%s' does not name one of the optimizer's %zu groups", op.c_str(), key.c_str(),
               base.size());
      base[g] = value.item();
      seen[g] = true;
    } else {
      GS_CHECK(false, "%s: unexpected key '%s' (expected last_step, base_lr.<group>)", op.c_str(), key.c_str());
    }
  }
  GS_CHECK(step >= 0, "%s: missing 'last_step'", op.c_str());
  for (size_t g = 0; g < seen.size(); ++g) GS_CHECK(seen[g], "%s: missing 'base_lr.%zu'", op.c_str(), g);
  base_lrs_ = base;
  last_step_ = step;
  apply();
}

// ---- the schedules ----

ConstantLR::ConstantLR(Optimizer& optimizer) : LRScheduler(optimizer) { start(); }

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  GS_CHECK(step_size > 0, "StepLR: step_size must be > 0, got %lld", static_cast<long long>(step_size));
  start();
}
double StepLR::lr_at(int64_t step, double base_lr) const {
  return base_lr * std::pow(gamma_, static_cast<double>(step / step_size_));
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  start();
}
double MultiStepLR::lr_at(int64_t step, double base_lr) const {
  auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
  return base_lr * std::pow(gamma_, static_cast<double>(passed));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) { start(); }
double ExponentialLR::lr_at(int64_t step, double base_lr) const {
  return base_lr * std::pow(gamma_, static_cast<double>(step));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer), T_max_(T_max), eta_min_(eta_min) {
  GS_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be > 0, got %lld", static_cast<long long>(T_max));
  start();
}
double CosineAnnealingLR::lr_at(int64_t step, double base_lr) const {
  const double pi = std::numbers::pi;
  return eta_min_ + (base_lr - eta_min_) * (1 + std::cos(pi * static_cast<double>(step) / T_max_)) / 2;
}

CosineAnnealingWarmRestarts::CosineAnnealingWarmRestarts(Optimizer& optimizer, int64_t T_0, int64_t T_mult,
                                                         double eta_min)
    : LRScheduler(optimizer), T_0_(T_0), T_mult_(T_mult), eta_min_(eta_min) {
  GS_CHECK(T_0 > 0, "CosineAnnealingWarmRestarts: T_0 must be > 0, got %lld", static_cast<long long>(T_0));
  GS_CHECK(T_mult >= 1, "CosineAnnealingWarmRestarts: T_mult must be >= 1, got %lld", static_cast<long long>(T_mult));
  start();
}
double CosineAnnealingWarmRestarts::lr_at(int64_t step, double base_lr) const {
  // Position in the current cycle, with integer arithmetic (PyTorch's step() walks the cycles the
  // same way; its log-based closed form for explicit epochs can misplace cycle boundaries).
  int64_t t_cur = step, t_i = T_0_;
  if (T_mult_ == 1) {
    t_cur = step % T_0_;
  } else {
    while (t_cur >= t_i) {
      t_cur -= t_i;
      t_i *= T_mult_;
    }
  }
  const double pi = std::numbers::pi;
  return eta_min_ + (base_lr - eta_min_) * (1 + std::cos(pi * static_cast<double>(t_cur) / t_i)) / 2;
}

LinearWarmup::LinearWarmup(Optimizer& optimizer, int64_t warmup_steps, double start_factor,
                           std::unique_ptr<LRScheduler> after)
    : LRScheduler(optimizer), warmup_steps_(warmup_steps), start_factor_(start_factor), after_(std::move(after)) {
  GS_CHECK(warmup_steps > 0, "LinearWarmup: warmup_steps must be > 0, got %lld", static_cast<long long>(warmup_steps));
  GS_CHECK(start_factor > 0 && start_factor <= 1, "LinearWarmup: start_factor must be in (0, 1], got %g", start_factor);
  if (after_) {
    GS_CHECK(&after_->optimizer() == &optimizer, "LinearWarmup: the wrapped scheduler drives another optimizer");
    base_lrs_ = after_->base_lrs();  // `after` has already set the lrs to its own step 0
  }
  start();
}
double LinearWarmup::group_lr(size_t g, int64_t step) const {
  if (!after_) return lr_at(step, base_lrs_.at(g));
  if (step < warmup_steps_) return after_->group_lr(g, 0) * ramp(step);
  return after_->group_lr(g, step - warmup_steps_);
}
void LinearWarmup::observe(double value) {
  if (!after_) return;
  after_->observe(value);
  apply();  // after set the groups' lrs to its own: during the ramp they are the ramp's
}
NamedTensors LinearWarmup::state_dict() const {
  NamedTensors out = LRScheduler::state_dict();
  if (after_) {
    for (auto& [key, value] : after_->state_dict()) out.emplace_back("after." + key, value);
  }
  return out;
}
void LinearWarmup::load_state_dict(const NamedTensors& state) {
  NamedTensors own, inner;
  for (const auto& [key, value] : state) (key.rfind("after.", 0) == 0 ? inner : own).emplace_back(key, value);
  if (after_ && !inner.empty()) {
    for (auto& [key, value] : inner) key = key.substr(6);
    after_->load_state_dict(inner);
  }
  LRScheduler::load_state_dict(own);
}
double LinearWarmup::lr_at(int64_t step, double base_lr) const {
  // The ramp ends at after's step-0 lr: its base lr, or onecycle's max_lr / div_factor (torch's
  // SequentialLR starts LinearLR from the lr the next schedule set when it was built).
  if (step < warmup_steps_) return (after_ ? after_->lr_at(0, base_lr) : base_lr) * ramp(step);
  return after_ ? after_->lr_at(step - warmup_steps_, base_lr) : base_lr;
}
double LinearWarmup::ramp(int64_t step) const {
  return start_factor_ + (1.0 - start_factor_) * static_cast<double>(step) / static_cast<double>(warmup_steps_);
}
std::string LinearWarmup::name() const { return "warmup+" + (after_ ? after_->name() : std::string("none")); }
const std::string& LinearWarmup::momentum_key() const { return after_ ? after_->momentum_key() : momentum_key_; }
double LinearWarmup::momentum_at(int64_t step) const {
  return after_ ? after_->momentum_at(std::max<int64_t>(0, step - warmup_steps_)) : NAN;
}

OneCycleLR::OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, double pct_start,
                       const std::string& anneal, double div_factor, double final_div_factor, bool three_phase,
                       bool cycle_momentum, double base_momentum, double max_momentum)
    : LRScheduler(optimizer), total_steps_(total_steps) {
  GS_CHECK(total_steps > 0, "OneCycleLR: total_steps must be > 0, got %lld", static_cast<long long>(total_steps));
  GS_CHECK(pct_start >= 0 && pct_start <= 1, "OneCycleLR: pct_start must be in [0, 1], got %g", pct_start);
  GS_CHECK(anneal == "cos" || anneal == "linear", "OneCycleLR: anneal must be cos or linear, got '%s'", anneal.c_str());
  GS_CHECK(max_lr > 0 && div_factor > 0 && final_div_factor > 0,
           "OneCycleLR: max_lr, div_factor and final_div_factor must be > 0 (got %g, %g, %g)", max_lr, div_factor,
           final_div_factor);
  GS_CHECK(!cycle_momentum || (base_momentum >= 0 && base_momentum <= max_momentum && max_momentum < 1),
           "OneCycleLR: need 0 <= base_momentum <= max_momentum < 1 (got %g, %g)", base_momentum, max_momentum);
  cos_ = anneal == "cos";
  const double initial_lr = max_lr / div_factor, min_lr = initial_lr / final_div_factor;
  const double total = static_cast<double>(total_steps);
  const double lo = base_momentum, hi = max_momentum;
  if (three_phase) {
    phases_ = {{pct_start * total - 1, initial_lr, max_lr, hi, lo},
               {2 * pct_start * total - 2, max_lr, initial_lr, lo, hi},
               {total - 1, initial_lr, min_lr, hi, hi}};
  } else {
    phases_ = {{pct_start * total - 1, initial_lr, max_lr, hi, lo}, {total - 1, max_lr, min_lr, lo, hi}};
  }
  if (cycle_momentum) momentum_key_ = cycled_momentum_key(optimizer);
  start();
}
std::pair<const OneCycleLR::Phase*, double> OneCycleLR::phase_at(int64_t step) const {
  const double s = static_cast<double>(std::min(step, total_steps_));
  double start_step = 0;
  for (size_t i = 0; i < phases_.size(); ++i) {
    const Phase& phase = phases_[i];
    if (s <= phase.end_step || i + 1 == phases_.size()) {
      // A phase of no length (pct_start 1, or pct_start * total_steps 1) is at its end, not 0/0.
      const double length = phase.end_step - start_step;
      return {&phase, length > 0 ? (s - start_step) / length : 1.0};
    }
    start_step = phase.end_step;
  }
  return {&phases_.back(), 1.0};
}
double OneCycleLR::anneal(double start, double end, double pct) const {
  if (cos_) return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
  return (end - start) * pct + start;
}
double OneCycleLR::lr_at(int64_t step, double) const {
  auto [phase, pct] = phase_at(step);
  return anneal(phase->start_lr, phase->end_lr, pct);
}
double OneCycleLR::momentum_at(int64_t step) const {
  auto [phase, pct] = phase_at(step);
  return anneal(phase->start_momentum, phase->end_momentum, pct);
}

CyclicLR::CyclicLR(Optimizer& optimizer, double base_lr, double max_lr, int64_t step_size_up, int64_t step_size_down,
                   const std::string& mode, double gamma, bool cycle_momentum, double base_momentum,
                   double max_momentum)
    : LRScheduler(optimizer),
      base_lr_(base_lr),
      max_lr_(max_lr),
      gamma_(gamma),
      base_momentum_(base_momentum),
      max_momentum_(max_momentum),
      mode_(mode) {
  GS_CHECK(mode == "triangular" || mode == "triangular2" || mode == "exp_range",
           "CyclicLR: mode must be triangular, triangular2 or exp_range, got '%s'", mode.c_str());
  GS_CHECK(step_size_up > 0, "CyclicLR: step_size_up must be > 0, got %lld", static_cast<long long>(step_size_up));
  const double up = static_cast<double>(step_size_up);
  const double down = step_size_down < 0 ? up : static_cast<double>(step_size_down);
  total_size_ = up + down;
  step_ratio_ = up / total_size_;
  GS_CHECK(!cycle_momentum || (base_momentum >= 0 && base_momentum <= max_momentum && max_momentum < 1),
           "CyclicLR: need 0 <= base_momentum <= max_momentum < 1 (got %g, %g)", base_momentum, max_momentum);
  for (double& b : base_lrs_) b = base_lr;  // PyTorch overwrites the groups' lrs with base_lr
  if (cycle_momentum) momentum_key_ = cycled_momentum_key(optimizer);
  start();
}
double CyclicLR::height_at(int64_t step) const {
  const double s = static_cast<double>(step);
  const double cycle = std::floor(1 + s / total_size_);
  const double x = 1. + s / total_size_ - cycle;
  const double scale_factor = x <= step_ratio_ ? x / step_ratio_ : (x - 1) / (step_ratio_ - 1);
  if (mode_ == "triangular") return scale_factor * 1.;
  if (mode_ == "triangular2") return scale_factor * (1 / std::pow(2., cycle - 1));
  return scale_factor * std::pow(gamma_, s);
}
double CyclicLR::lr_at(int64_t step, double) const { return base_lr_ + (max_lr_ - base_lr_) * height_at(step); }
double CyclicLR::momentum_at(int64_t step) const {
  return max_momentum_ - (max_momentum_ - base_momentum_) * height_at(step);
}

// ---- ReduceLROnPlateau: torch 1.13's, fed once per epoch ----

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, const std::string& metric, double factor, int64_t patience,
                                     double threshold, const std::string& threshold_mode, int64_t cooldown,
                                     double min_lr, double eps)
    : LRScheduler(optimizer),
      metric_(metric),
      threshold_mode_(threshold_mode),
      maximize_(metric == "val_acc" || metric == "train_acc"),
      factor_(factor),
      threshold_(threshold),
      min_lr_(min_lr),
      eps_(eps),
      patience_(patience),
      cooldown_(cooldown) {
  GS_CHECK(metric == "val_loss" || metric == "val_acc" || metric == "train_loss" || metric == "train_acc",
           "ReduceLROnPlateau: metric must be val_loss, val_acc, train_loss or train_acc, got '%s'", metric.c_str());
  GS_CHECK(factor > 0 && factor < 1, "ReduceLROnPlateau: factor must be in (0, 1), got %g", factor);
  GS_CHECK(patience >= 0 && cooldown >= 0, "ReduceLROnPlateau: patience and cooldown must be >= 0 (got %lld, %lld)",
           static_cast<long long>(patience), static_cast<long long>(cooldown));
  GS_CHECK(threshold_mode == "rel" || threshold_mode == "abs",
           "ReduceLROnPlateau: threshold_mode must be rel or abs, got '%s'", threshold_mode.c_str());
  GS_CHECK(threshold >= 0 && min_lr >= 0 && eps >= 0, "ReduceLROnPlateau: threshold, min_lr and eps must be >= 0");
  best_ = maximize_ ? -INFINITY : INFINITY;
  lrs_ = base_lrs_;
  start();
}

bool ReduceLROnPlateau::better(double value) const {
  if (threshold_mode_ == "rel") return maximize_ ? value > best_ * (1 + threshold_) : value < best_ * (1 - threshold_);
  return maximize_ ? value > best_ + threshold_ : value < best_ - threshold_;
}

void ReduceLROnPlateau::observe(double value) {
  // A NaN metric is never better, so it counts as a bad epoch (torch: the same comparisons).
  if (better(value)) {
    best_ = value;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;
  }
  if (num_bad_epochs_ > patience_) {
    for (double& lr : lrs_) {
      const double reduced = std::max(lr * factor_, min_lr_);
      if (lr - reduced > eps_) lr = reduced;
    }
    cooldown_counter_ = cooldown_;
    num_bad_epochs_ = 0;
    apply();
  }
}

NamedTensors ReduceLROnPlateau::state_dict() const {
  NamedTensors out = LRScheduler::state_dict();
  auto scalar = [&](const std::string& key, double v) {
    Tensor t = empty({}, {DType::F64});
    *t.data<double>() = v;
    out.emplace_back(key, t);
  };
  scalar("plateau.best", best_);
  scalar("plateau.num_bad_epochs", static_cast<double>(num_bad_epochs_));
  scalar("plateau.cooldown_counter", static_cast<double>(cooldown_counter_));
  for (size_t g = 0; g < lrs_.size(); ++g) scalar("plateau.lr." + std::to_string(g), lrs_[g]);
  return out;
}

void ReduceLROnPlateau::load_state_dict(const NamedTensors& state) {
  const std::string op = "plateau scheduler load_state_dict";
  NamedTensors base;
  double best = NAN, bad = -1, cooldown = -1;
  std::vector<double> lrs(lrs_.size(), NAN);
  for (const auto& [key, value] : state) {
    if (key.rfind("plateau.", 0) != 0) {
      base.emplace_back(key, value);
      continue;
    }
    GS_CHECK(value.defined() && value.numel() == 1, "%s: '%s' must be a one-element tensor", op.c_str(), key.c_str());
    const double v = value.item();
    if (key == "plateau.best") {
      best = v;
    } else if (key == "plateau.num_bad_epochs") {
      bad = v;
    } else if (key == "plateau.cooldown_counter") {
      cooldown = v;
    } else {
      size_t g = lrs.size();
      const std::string index = key.rfind("plateau.lr.", 0) == 0 ? key.substr(11) : "";
      if (!index.empty() && index.find_first_not_of("0123456789") == std::string::npos && index.size() < 9)
        g = static_cast<size_t>(std::stoul(index));
      GS_CHECK(g < lrs.size(), "%s: unexpected key '%s'", op.c_str(), key.c_str());
      lrs[g] = v;
    }
  }
  GS_CHECK(bad >= 0 && cooldown >= 0, "%s: missing plateau.num_bad_epochs or plateau.cooldown_counter", op.c_str());
  for (size_t g = 0; g < lrs.size(); ++g)
    GS_CHECK(std::isfinite(lrs[g]) && lrs[g] >= 0, "%s: missing or bad 'plateau.lr.%zu'", op.c_str(), g);
  best_ = best;  // +-inf before the first epoch
  num_bad_epochs_ = static_cast<int64_t>(bad);
  cooldown_counter_ = static_cast<int64_t>(cooldown);
  lrs_ = lrs;
  LRScheduler::load_state_dict(base);  // applies the lrs
}

}  // namespace gs::optim
