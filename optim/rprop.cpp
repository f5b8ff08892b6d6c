// Rprop: torch 1.13's documented algorithm. Per element, with s = sign(g * prev):
//   s > 0: step = min(step*eta_plus, step_max);  s < 0: step = max(step*eta_minus, step_min), g = 0
//   p -= sign(g) * step;  prev = g.   Step sizes start at the group's lr; there is no weight decay.
#include <algorithm>
#include <cmath>

#include "autograd/tape.h"
#include "optim/cuda_steps.h"
#include "optim/flat_loop.h"
#include "optim/optimizers.h"

namespace gs::optim {
namespace {

namespace sd = kernels::simd;

// One parameter's update: p, g, prev, step_size hold n elements.
template <class T>
struct RpropItem {
  T* p;
  const T* g;
  T *prev, *step_size;
  int64_t n;
  T eta_minus, eta_plus, step_min, step_max;
};

template <class T>
T sign_of(T x) {
  return static_cast<T>((x > 0) - (x < 0));
}

// Vectors and a scalar tail with the same arithmetic. PyTorch zeroes the gradient where the
// factor equals eta_minus (so also where eta_minus == 1 and the sign product is 0); kept as
// written so trajectories match.
template <class T>
void rprop_range(const RpropItem<T>& w, int64_t begin, int64_t end) {
  using V = sd::Vec<T>;
  const V zero = sd::splat(T(0)), one = sd::splat(T(1));
  vector_loop<T>(
      begin, end,
      [&](int64_t i) {
        const V g = sd::load(w.g + i), product = g * sd::load(w.prev + i);
        const V factor = product > zero ? sd::splat(w.eta_plus) : product < zero ? sd::splat(w.eta_minus) : one;
        V step = sd::load(w.step_size + i) * factor;
        step = step < w.step_min ? sd::splat(w.step_min) : step;  // std::clamp, NaN kept
        step = w.step_max < step ? sd::splat(w.step_max) : step;
        sd::store(w.step_size + i, step);
        const V gi = factor == w.eta_minus ? zero : g;
        const V sign = (gi > zero ? one : zero) - (gi < zero ? one : zero);
        sd::store(w.p + i, sd::load(w.p + i) + T(-1) * sign * step);
        sd::store(w.prev + i, gi);
      },
      [&](int64_t i) {
        const T product = w.g[i] * w.prev[i];
        const T factor = product > 0 ? w.eta_plus : product < 0 ? w.eta_minus : T(1);
        w.step_size[i] = std::clamp(w.step_size[i] * factor, w.step_min, w.step_max);
        const T gi = factor == w.eta_minus ? T(0) : w.g[i];
        w.p[i] = w.p[i] + T(-1) * sign_of(gi) * w.step_size[i];
        w.prev[i] = gi;
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
  ItemsByType<RpropItem> items;
  CudaSteps cuda;
  for (auto& [group, index, param, grad] : params_with_grad()) {
    const double eta_minus = option(*group, "eta_minus"), eta_plus = option(*group, "eta_plus");
    const double step_min = option(*group, "step_min"), step_max = option(*group, "step_max");
    increment_step(index);
    Tensor prev = state_tensor(index, "prev", param, 0.0);
    Tensor step_size = state_tensor(index, "step_size", param, group->lr);
    if (cuda.rprop(param, grad, prev, step_size, eta_minus, eta_plus, step_min, step_max)) continue;
    GS_DISPATCH_FLOAT(param.dtype(), "rprop", [&] {
      items.add(RpropItem<scalar_t>{param.data<scalar_t>(), grad.data<scalar_t>(), prev.data<scalar_t>(),
                                    step_size.data<scalar_t>(), param.numel(), scalar_t(eta_minus),
                                    scalar_t(eta_plus), scalar_t(step_min), scalar_t(step_max)});
    });
  }
  items.run(rprop_range<float>, rprop_range<double>);
  cuda.run();
}

}  // namespace gs::optim
