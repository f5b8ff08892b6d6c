// Rprop: torch 1.13's documented algorithm. Per element, with s = sign(g * prev):
//   s > 0: step = min(step*eta_plus, step_max);  s < 0: step = max(step*eta_minus, step_min), g = 0
//   p -= sign(g) * step;  prev = g.   Step sizes start at the group's lr; there is no weight decay.
#include <algorithm>
#include <cmath>

#include "autograd/tape.h"
#include "optim/cuda_steps.h"
#include "optim/optimizers.h"

namespace gs::optim {
namespace {

struct RpropStep {
  double eta_minus, eta_plus, step_min, step_max;
};

template <class T>
T sign_of(T x) {
  return static_cast<T>((x > 0) - (x < 0));
}

// p, g, prev, step_size: n elements each.
template <class T>
void rprop_update(T* p, const T* g, T* prev, T* step_size, int64_t n, const RpropStep& s) {
  const T eta_minus = static_cast<T>(s.eta_minus), eta_plus = static_cast<T>(s.eta_plus);
  const T step_min = static_cast<T>(s.step_min), step_max = static_cast<T>(s.step_max);
  parallel_for(n, [&](int64_t i) {
    const T product = g[i] * prev[i];
    const T factor = product > 0 ? eta_plus : product < 0 ? eta_minus : T(1);
    step_size[i] = std::clamp(step_size[i] * factor, step_min, step_max);
    // PyTorch zeroes the gradient where the factor equals eta_minus (so also where eta_minus == 1
    // and the sign product is 0); kept as written so trajectories match.
    const T gi = factor == eta_minus ? T(0) : g[i];
    p[i] = p[i] + T(-1) * sign_of(gi) * step_size[i];
    prev[i] = gi;
  });
}

}  // namespace

Rprop::Rprop(std::vector<Tensor> params, RpropOptions options)
    : Rprop(single_group(std::move(params), options.lr, 0.0), options) {}

Rprop::Rprop(std::vector<ParamGroup> groups, RpropOptions options)
    : Optimizer(std::move(groups),
                {{"eta_minus", options.eta_minus},
                 {"eta_plus", options.eta_plus},
                 {"step_min", options.step_min},
                 {"step_max", options.step_max}},
                {"step", "prev", "step_size"}, "rprop") {
  for (size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    double eta_minus = option(group, "eta_minus"), eta_plus = option(group, "eta_plus");
    GS_CHECK(0 < eta_minus && eta_minus < 1 && 1 < eta_plus,
             "rprop: group %zu needs 0 < eta_minus < 1 < eta_plus (got %g, %g)", g, eta_minus, eta_plus);
    GS_CHECK(group.weight_decay == 0, "rprop: group %zu sets weight_decay %g but rprop has none", g,
             group.weight_decay);
    GS_CHECK(option(group, "step_min") <= option(group, "step_max"), "rprop: group %zu has step_min > step_max", g);
  }
}

void Rprop::step() {
  NoGradGuard no_grad;
  for (auto& [group, index, param, grad] : params_with_grad()) {
    RpropStep s{option(*group, "eta_minus"), option(*group, "eta_plus"), option(*group, "step_min"),
                option(*group, "step_max")};
    increment_step(index);
    Tensor prev = state_tensor(index, "prev", param, 0.0);
    Tensor step_size = state_tensor(index, "step_size", param, group->lr);
    if (cuda_steps::rprop(param, grad, prev, step_size, s.eta_minus, s.eta_plus, s.step_min, s.step_max)) continue;
    GS_DISPATCH_FLOAT(param.dtype(), "rprop", [&] {
      rprop_update<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(), prev.data<scalar_t>(),
                             step_size.data<scalar_t>(), param.numel(), s);
    });
  }
}

}  // namespace gs::optim
