// Optimizer base: groups and their defaults, per-parameter state, state_dict/load_state_dict,
// and make_optimizer. The update rules are in the per-optimizer files.
#include "optim/optimizer.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <set>

#include "optim/optimizers.h"
#include "tensor/raw_ops.h"

namespace gs::optim {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

Tensor f64_scalar(double value) {
  Tensor t = empty({}, {DType::F64});
  *t.data<double>() = value;
  return t;
}
Tensor i64_scalar(int64_t value) {
  Tensor t = empty({}, {DType::I64});
  *t.data<int64_t>() = value;
  return t;
}
double scalar_value(const std::string& op, const std::string& key, const Tensor& t) {
  GS_CHECK(t.defined() && t.numel() == 1, "%s.load_state_dict: '%s' must be a one-element tensor", op.c_str(),
           key.c_str());
  return t.item();
}

// Splits "state.12.exp_avg" into its dot-separated parts.
std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool parse_index(const std::string& text, int64_t* out) {
  if (text.empty() || text.size() > 18) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  *out = std::stoll(text);
  return true;
}

}  // namespace

Optimizer::Optimizer(std::vector<ParamGroup> groups, std::map<std::string, double> defaults,
                     std::vector<std::string> state_keys, const std::string& name)
    : groups_(std::move(groups)), defaults_(std::move(defaults)), state_keys_(std::move(state_keys)) {
  const char* op = name.c_str();
  GS_CHECK(!groups_.empty(), "%s: got no parameter groups", op);
  std::vector<std::string> known;
  for (const auto& [key, value] : defaults_) known.push_back(key);
  std::set<const TensorImpl*> seen;
  int64_t index = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    ParamGroup& group = groups_[g];
    GS_CHECK(std::isfinite(group.lr) && group.lr >= 0, "%s: group %zu has invalid lr %g", op, g, group.lr);
    GS_CHECK(std::isfinite(group.weight_decay) && group.weight_decay >= 0, "%s: group %zu has invalid weight_decay %g",
             op, g, group.weight_decay);
    for (const auto& [key, value] : group.options)
      GS_CHECK(defaults_.count(key), "%s: group %zu has unknown option '%s' (known: %s)", op, g, key.c_str(),
               join(known).c_str());
    for (const auto& [key, value] : defaults_) group.options.emplace(key, value);
    for (const Tensor& p : group.params) {
      check_param(p, index, name);
      GS_CHECK(seen.insert(&p.impl()).second, "%s: parameter %lld appears in more than one place", op,
               static_cast<long long>(index));
      ++index;
    }
  }
  GS_CHECK(index > 0, "%s: got an empty parameter list", op);
  state_.resize(static_cast<size_t>(index));
}

void Optimizer::check_param(const Tensor& p, int64_t index, const std::string& name) const {
  const char* op = name.c_str();
  const long long i = static_cast<long long>(index);
  GS_CHECK(p.defined(), "%s: parameter %lld is undefined", op, i);
  GS_CHECK(is_floating(p.dtype()), "%s: parameter %lld is %s (f32 or f64 only)", op, i, p.describe().c_str());
  // CUDA parameters are stepped by the fused kernels (cuda_steps.h), CPU ones by the flat loops.
  GS_CHECK(p.device().is_cpu() || p.device().is_cuda(), "%s: parameter %lld is %s; optimizers update CPU or CUDA tensors",
           op, i, p.describe().c_str());
  GS_CHECK(p.is_leaf(), "%s: parameter %lld is not a leaf tensor (can't optimize a computed tensor)", op, i);
  GS_CHECK(p.is_contiguous(), "%s: parameter %lld %s is not contiguous", op, i, p.describe().c_str());
}

void Optimizer::zero_grad() {
  for (auto& group : groups_)
    for (auto& p : group.params) p.zero_grad();
}

double Optimizer::lr() const { return groups_.at(0).lr; }

void Optimizer::set_lr(double lr) {
  GS_CHECK(std::isfinite(lr) && lr >= 0, "%s.set_lr: invalid lr %g", name().c_str(), lr);
  for (auto& group : groups_) group.lr = lr;
}

int64_t Optimizer::num_params() const {
  int64_t n = 0;
  for (const auto& group : groups_) n += static_cast<int64_t>(group.params.size());
  return n;
}

std::vector<Tensor> Optimizer::params() const {
  std::vector<Tensor> out;
  for (const auto& group : groups_) out.insert(out.end(), group.params.begin(), group.params.end());
  return out;
}

double Optimizer::option(const ParamGroup& group, const std::string& key) const {
  auto it = group.options.find(key);
  if (it != group.options.end()) return it->second;
  auto def = defaults_.find(key);
  assert(def != defaults_.end());
  return def->second;
}

std::vector<Optimizer::ParamWithGrad> Optimizer::params_with_grad() {
  std::vector<ParamWithGrad> out;
  const std::string op = name();
  int64_t index = 0;
  for (auto& group : groups_) {
    for (const Tensor& p : group.params) {
      Tensor grad = p.grad();
      if (grad.defined()) {
        check_param(p, index, op);
        const long long i = static_cast<long long>(index);
        GS_CHECK(grad.device() == p.device() && grad.dtype() == p.dtype(),
                 "%s: parameter %lld is %s but its grad is %s", op.c_str(), i, p.describe().c_str(),
                 grad.describe().c_str());
        GS_CHECK(grad.shape() == p.shape(), "%s: parameter %lld has shape %s but its grad %s", op.c_str(), i,
                 shape_str(p.shape()).c_str(), shape_str(grad.shape()).c_str());
        out.push_back({&group, index, p, raw::contiguous(grad)});
      }
      ++index;
    }
  }
  return out;
}

Tensor& Optimizer::state_tensor(int64_t index, const std::string& key, const Tensor& param, double fill,
                                bool* created) {
  auto& slot = state_.at(static_cast<size_t>(index));
  auto it = slot.find(key);
  if (created) *created = it == slot.end();
  if (it != slot.end()) return it->second;
  Tensor t = full(param.shape(), fill, {param.dtype(), param.device()});
  return slot.emplace(key, t).first->second;
}

bool Optimizer::has_state(int64_t index, const std::string& key) const {
  return state_.at(static_cast<size_t>(index)).count(key) > 0;
}

int64_t Optimizer::increment_step(int64_t index) {
  auto& slot = state_.at(static_cast<size_t>(index));
  auto it = slot.find("step");
  if (it == slot.end()) it = slot.emplace("step", i64_scalar(0)).first;
  int64_t* step = it->second.data<int64_t>();
  return ++*step;
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  for (size_t i = 0; i < state_.size(); ++i)
    for (const auto& [key, value] : state_[i])
      out.emplace_back("state." + std::to_string(i) + "." + key, raw::clone(value));
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "group." + std::to_string(g) + ".";
    out.emplace_back(prefix + "num_params", i64_scalar(static_cast<int64_t>(groups_[g].params.size())));
    out.emplace_back(prefix + "lr", f64_scalar(groups_[g].lr));
    out.emplace_back(prefix + "weight_decay", f64_scalar(groups_[g].weight_decay));
    for (const auto& [key, value] : groups_[g].options) out.emplace_back(prefix + key, f64_scalar(value));
  }
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  const std::string op = name() + ".load_state_dict";
  const char* o = op.c_str();
  // Parameters by index, to check shapes and cast state to their dtype.
  std::vector<const Tensor*> params;
  for (const auto& group : groups_)
    for (const auto& p : group.params) params.push_back(&p);

  std::vector<std::map<std::string, Tensor>> new_state(params.size());
  std::vector<ParamGroup> new_groups = groups_;
  std::vector<bool> group_seen(groups_.size(), false);
  for (const auto& [key, value] : state) {
    const char* k = key.c_str();
    std::vector<std::string> parts = split_key(key);
    int64_t index = -1;
    if (parts.size() == 3 && parts[0] == "state" && parse_index(parts[1], &index)) {
      GS_CHECK(index < static_cast<int64_t>(params.size()), "%s: '%s' names parameter %lld but the optimizer has %zu",
               o, k, static_cast<long long>(index), params.size());
      const std::string& what = parts[2];
      GS_CHECK(std::find(state_keys_.begin(), state_keys_.end(), what) != state_keys_.end(),
               "%s: '%s' is not %s state (known: %s)", o, k, name().c_str(), join(state_keys_).c_str());
      GS_CHECK(value.defined(), "%s: '%s' is undefined", o, k);
      const Tensor& p = *params[static_cast<size_t>(index)];
      if (what == "step") {
        GS_CHECK(value.numel() == 1, "%s: '%s' must be a scalar, got %s", o, k, shape_str(value.shape()).c_str());
        double step = value.item();
        GS_CHECK(step >= 0 && step == std::floor(step), "%s: '%s' is not a step count: %g", o, k, step);
        new_state[static_cast<size_t>(index)]["step"] = i64_scalar(static_cast<int64_t>(step));
      } else {
        GS_CHECK(value.shape() == p.shape(), "%s: '%s' has shape %s but parameter %lld has %s", o, k,
                 shape_str(value.shape()).c_str(), static_cast<long long>(index), shape_str(p.shape()).c_str());
        GS_CHECK(is_floating(value.dtype()), "%s: '%s' is %s (f32 or f64 expected)", o, k, value.describe().c_str());
        Tensor copy = empty(p.shape(), {p.dtype(), p.device()});  // state lives with its parameter
        raw::copy_(copy, value.device() == p.device() ? value : value.to(p.device()));
        new_state[static_cast<size_t>(index)][what] = copy;
      }
    } else if (parts.size() == 3 && parts[0] == "group" && parse_index(parts[1], &index)) {
      GS_CHECK(index < static_cast<int64_t>(groups_.size()), "%s: '%s' names group %lld but the optimizer has %zu", o,
               k, static_cast<long long>(index), groups_.size());
      ParamGroup& group = new_groups[static_cast<size_t>(index)];
      const std::string& what = parts[2];
      double v = scalar_value(op, key, value);
      if (what == "num_params") {
        GS_CHECK(v == static_cast<double>(group.params.size()), "%s: '%s' is %g but group %lld has %zu parameters", o,
                 k, v, static_cast<long long>(index), group.params.size());
        group_seen[static_cast<size_t>(index)] = true;
      } else if (what == "lr") {
        group.lr = v;
      } else if (what == "weight_decay") {
        group.weight_decay = v;
      } else {
        std::vector<std::string> known = {"num_params", "lr", "weight_decay"};
        for (const auto& [name, d] : defaults_) known.push_back(name);
        GS_CHECK(defaults_.count(what), "%s: '%s' is not a %s group option (known: %s)", o, k, name().c_str(),
                 join(known).c_str());
        group.options[what] = v;
      }
    } else {
      GS_CHECK(false, "%s: unexpected key '%s' (expected state.<index>.<key> or group.<index>.<key>)", o, k);
    }
  }
  for (size_t g = 0; g < groups_.size(); ++g)
    GS_CHECK(group_seen[g], "%s: missing 'group.%zu.num_params' (the state has fewer groups than the optimizer)", o, g);
  // A parameter with state has every key the others of its group have (options such as amsgrad or
  // momentum are per group): a state missing one (exp_avg dropped, step kept) would silently restart
  // that moment at zero.
  std::vector<size_t> group_of;
  for (size_t g = 0; g < groups_.size(); ++g) group_of.insert(group_of.end(), groups_[g].params.size(), g);
  for (size_t i = 0; i < new_state.size(); ++i) {
    for (size_t j = 0; j < new_state.size() && !new_state[i].empty(); ++j) {
      if (group_of[i] != group_of[j]) continue;
      for (const auto& [what, value] : new_state[j]) {
        GS_CHECK(new_state[i].count(what), "%s: 'state.%zu.%s' is missing while parameter %zu has '%s'", o, i,
                 what.c_str(), j, what.c_str());
      }
    }
  }
  // Everything checked: commit.
  for (size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].lr = new_groups[g].lr;
    groups_[g].weight_decay = new_groups[g].weight_decay;
    groups_[g].options = new_groups[g].options;
  }
  state_ = std::move(new_state);
}

// ---- factory ----

namespace {

const std::vector<std::string> kOptimizerNames = {"sgd", "adam", "adamw", "rprop", "rmsprop"};

double take(std::map<std::string, double>& hyper, const char* key, double fallback) {
  auto it = hyper.find(key);
  if (it == hyper.end()) return fallback;
  double v = it->second;
  hyper.erase(it);
  return v;
}

}  // namespace

std::vector<std::string> optimizer_keys(const std::string& name) {
  if (name == "sgd") return {"lr", "momentum", "dampening", "weight_decay", "nesterov"};
  if (name == "adam" || name == "adamw") return {"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"};
  if (name == "rprop") return {"lr", "eta_minus", "eta_plus", "step_min", "step_max"};
  if (name == "rmsprop") return {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"};
  GS_CHECK(false, "make_optimizer: unknown optimizer '%s' (known: %s)", name.c_str(), join(kOptimizerNames).c_str());
  return {};
}

namespace {

// Builds the optimizer `name` from `params` (a flat list or groups: every optimizer has both
// constructors); hyper has been checked against optimizer_keys(name).
template <class Params>
std::unique_ptr<Optimizer> build_optimizer(const std::string& name, Params params, std::map<std::string, double> h) {
  if (name == "sgd") {
    SGDOptions o;
    o.lr = take(h, "lr", o.lr);
    o.momentum = take(h, "momentum", o.momentum);
    o.dampening = take(h, "dampening", o.dampening);
    o.weight_decay = take(h, "weight_decay", o.weight_decay);
    o.nesterov = take(h, "nesterov", o.nesterov) != 0;
    return std::make_unique<SGD>(std::move(params), o);
  }
  if (name == "adam" || name == "adamw") {
    AdamWOptions o;
    if (name == "adam") o.weight_decay = AdamOptions{}.weight_decay;
    o.lr = take(h, "lr", o.lr);
    o.beta1 = take(h, "beta1", o.beta1);
    o.beta2 = take(h, "beta2", o.beta2);
    o.eps = take(h, "eps", o.eps);
    o.weight_decay = take(h, "weight_decay", o.weight_decay);
    o.amsgrad = take(h, "amsgrad", o.amsgrad) != 0;
    if (name == "adamw") return std::make_unique<AdamW>(std::move(params), o);
    return std::make_unique<Adam>(std::move(params),
                                  AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad});
  }
  if (name == "rprop") {
    RpropOptions o;
    o.lr = take(h, "lr", o.lr);
    o.eta_minus = take(h, "eta_minus", o.eta_minus);
    o.eta_plus = take(h, "eta_plus", o.eta_plus);
    o.step_min = take(h, "step_min", o.step_min);
    o.step_max = take(h, "step_max", o.step_max);
    return std::make_unique<Rprop>(std::move(params), o);
  }
  RMSpropOptions o;
  o.lr = take(h, "lr", o.lr);
  o.alpha = take(h, "alpha", o.alpha);
  o.eps = take(h, "eps", o.eps);
  o.weight_decay = take(h, "weight_decay", o.weight_decay);
  o.momentum = take(h, "momentum", o.momentum);
  o.centered = take(h, "centered", o.centered) != 0;
  return std::make_unique<RMSprop>(std::move(params), o);
}

void check_hyper(const std::string& name, const std::map<std::string, double>& hyper) {
  const std::vector<std::string> keys = optimizer_keys(name);  // throws on an unknown name
  for (const auto& [key, value] : hyper)
    GS_CHECK(std::find(keys.begin(), keys.end(), key) != keys.end(),
             "make_optimizer: unknown hyperparameter '%s' for %s (known: %s)", key.c_str(), name.c_str(),
             join(keys).c_str());
}

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params,
                                          const std::map<std::string, double>& hyper) {
  check_hyper(name, hyper);
  return build_optimizer(name, std::move(params), hyper);
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups,
                                          const std::map<std::string, double>& hyper) {
  check_hyper(name, hyper);
  return build_optimizer(name, std::move(groups), hyper);
}

}  // namespace gs::optim
