// The optimizers: SGD, Adam, AdamW, Rprop, RMSprop, each the algorithm documented for torch 1.13's
// torch.optim class of the same name (maximize=false, foreach=false). Options structs give the
// defaults; a ParamGroup's `options` map may override any of them per group by the same name
// (booleans as 0/1). The update rules are in sgd.cpp, adam.cpp, rprop.cpp and rmsprop.cpp.
#pragma once
#include "optim/optimizer.h"

namespace gs::optim {

struct SGDOptions {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};
struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool amsgrad = false;
};
struct AdamWOptions {  // AdamW's default weight decay is 1e-2 (decoupled: p *= 1 - lr * wd)
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
  bool amsgrad = false;
};
struct RpropOptions {  // step sizes start at lr (the group's lr at a parameter's first step)
  double lr = 0.01, eta_minus = 0.5, eta_plus = 1.2, step_min = 1e-6, step_max = 50;
};
struct RMSpropOptions {
  double lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0;
  bool centered = false;
};

// v = momentum*v + (1-dampening)*g (v = g at the first step); nesterov: g + momentum*v.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options = {});
  SGD(std::vector<ParamGroup> groups, SGDOptions options = {});
  void step() override;
  std::string name() const override { return "sgd"; }
};

// Adam with bias correction; weight_decay is L2 added to the gradient; amsgrad keeps the max v.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {});
  Adam(std::vector<ParamGroup> groups, AdamOptions options = {});
  void step() override;
  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }

 protected:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options, bool decoupled);
  bool decoupled_ = false;
};

// Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr*wd before the Adam update.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options = {});
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});
};

// Resilient backprop: per-element step sizes grow by eta_plus while the gradient keeps its sign,
// shrink by eta_minus (and skip that update) when it flips. Has no weight decay.
class Rprop : public Optimizer {
 public:
  Rprop(std::vector<Tensor> params, RpropOptions options = {});
  Rprop(std::vector<ParamGroup> groups, RpropOptions options = {});
  void step() override;
  std::string name() const override { return "rprop"; }
};

// RMSprop: divides by sqrt of a running mean of g² (minus the squared mean of g when centered).
class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
  RMSprop(std::vector<ParamGroup> groups, RMSpropOptions options = {});
  void step() override;
  std::string name() const override { return "rmsprop"; }
};

}  // namespace gs::optim
