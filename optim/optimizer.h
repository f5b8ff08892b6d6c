// Optimizer base class: parameter groups, per-parameter state, zero_grad, state_dict, and the
// make_optimizer factory used by the CLI. The update rules live in sgd.cpp, adam.cpp, rprop.cpp,
// rmsprop.cpp (declared in optimizers.h); clipping in clip.h; LR schedules in lr_scheduler.h.
//
//   gs::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
//   for (...) { opt.zero_grad(); gs::backward(loss); opt.step(); }
//
// Optimizers work on CPU tensors (f32 or f64) in place; each step is one flat loop per parameter.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace gs::optim {

// A set of parameters sharing hyperparameters. `options` holds the optimizer-specific ones
// ("momentum", "beta1", "beta2", "eps", ...); keys a group leaves out take the optimizer's
// defaults at construction. `weight_decay` is used as written (0 unless the group sets it) —
// only the single-list constructors take it from the options struct.
struct ParamGroup {
  std::vector<Tensor> params;
  double lr;
  double weight_decay = 0;
  std::map<std::string, double> options;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter whose grad is defined, under NoGradGuard.
  virtual void step() = 0;
  void zero_grad();  // sets grads to undefined (PyTorch's set_to_none)

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  double lr() const;                     // group 0
  void set_lr(double lr);                // every group
  virtual std::string name() const = 0;  // "sgd", "adam", ...
  int64_t num_params() const;            // over all groups; state indices run 0..num_params-1
  std::vector<Tensor> params() const;    // every group's parameters, in state-index order

  // State as named tensors so a checkpoint can hold it and a resumed run continues bit-exactly:
  //   state.<param index>.<key>  per-parameter state with PyTorch's key names (momentum_buffer,
  //                              exp_avg, exp_avg_sq, max_exp_avg_sq, step (i64 scalar), prev,
  //                              step_size, square_avg, grad_avg); the index counts parameters
  //                              over all groups in order, as PyTorch's optimizer state_dict does
  //   group.<g>.num_params       i64 scalar, checked on load
  //   group.<g>.lr, group.<g>.weight_decay, group.<g>.<option>   f64 scalars
  // The tensors are copies. load_state_dict checks everything before changing anything and
  // throws gs::Error naming the key on a mismatch (unknown key, shape, group layout).
  virtual NamedTensors state_dict() const;
  virtual void load_state_dict(const NamedTensors& state);

 protected:
  // `defaults`: every option key this optimizer knows with its default; groups get the missing
  // ones filled in and unknown ones rejected. `state_keys`: the per-parameter state it keeps.
  Optimizer(std::vector<ParamGroup> groups, std::map<std::string, double> defaults, std::vector<std::string> state_keys,
            const std::string& name);

  double option(const ParamGroup& group, const std::string& key) const;
  // Every parameter with a defined grad, with its group, index and a contiguous grad. Checks
  // device, dtype, layout and shape, with errors naming the optimizer and the index.
  struct ParamWithGrad {
    ParamGroup* group;
    int64_t index;
    Tensor param;
    Tensor grad;
  };
  std::vector<ParamWithGrad> params_with_grad();
  // The state tensor `key` of parameter `index`, created (like `param`, filled with `fill`) when
  // missing; `created` tells whether it was.
  Tensor& state_tensor(int64_t index, const std::string& key, const Tensor& param, double fill,
                       bool* created = nullptr);
  bool has_state(int64_t index, const std::string& key) const;
  int64_t increment_step(int64_t index);  // the i64 "step" counter, returns the new value

  std::vector<ParamGroup> groups_;
  std::map<std::string, double> defaults_;
  std::vector<std::string> state_keys_;
  std::vector<std::map<std::string, Tensor>> state_;  // indexed by parameter index

 private:
  void check_param(const Tensor& param, int64_t index, const std::string& name) const;
};

// The group the single-list constructors make.
inline std::vector<ParamGroup> single_group(std::vector<Tensor> params, double lr, double weight_decay) {
  return {ParamGroup{std::move(params), lr, weight_decay, {}}};
}

// Runs fn(i) for i in [0, n), with OpenMP when n is large enough to pay for the threads.
template <class Fn>
void parallel_for(int64_t n, Fn&& fn) {
  constexpr int64_t kParallelGrain = 1 << 15;
#if defined(GS_OPENMP)
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
#endif
  for (int64_t i = 0; i < n; ++i) fn(i);
}

// Factory for the CLI. name in {sgd, adam, adamw, rprop, rmsprop}; hyper keys:
//   all: lr, weight_decay (not rprop)
//   sgd: momentum, dampening, nesterov (0/1)      adam/adamw: beta1, beta2, eps, amsgrad (0/1)
//   rprop: eta_minus, eta_plus, step_min, step_max rmsprop: alpha, eps, momentum, centered (0/1)
// An unknown name or key throws gs::Error listing the known ones.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params,
                                          const std::map<std::string, double>& hyper);
// The same with parameter groups: hyper gives the defaults for options a group leaves out (each
// group's lr and weight_decay are its own).
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups,
                                          const std::map<std::string, double>& hyper);
// The hyperparameter keys make_optimizer accepts for `name` (throws for an unknown name).
std::vector<std::string> optimizer_keys(const std::string& name);

}  // namespace gs::optim
