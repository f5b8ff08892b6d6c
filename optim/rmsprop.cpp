// RMSprop: torch 1.13's documented algorithm (maximize=false).
//   g += wd*p;  sq = alpha*sq + (1-alpha)*g²;  centered: ga = alpha*ga + (1-alpha)*g, avg = sqrt(sq - ga²)
//   else avg = sqrt(sq);  avg += eps;  momentum > 0: buf = momentum*buf + g/avg, p -= lr*buf
//   else p -= lr*g/avg
#include <cmath>

#include "autograd/tape.h"
#include "optim/optimizers.h"

namespace gs::optim {
namespace {

struct RMSpropStep {
  double lr, wd, alpha, eps, momentum;
};

// p, g, square_avg: n elements; grad_avg null unless centered, buf null unless momentum > 0.
template <class T>
void rmsprop_update(T* p, const T* g, T* square_avg, T* grad_avg, T* buf, int64_t n, const RMSpropStep& s) {
  const T neg_lr = static_cast<T>(-s.lr), wd = static_cast<T>(s.wd), alpha = static_cast<T>(s.alpha);
  const T one_minus_alpha = static_cast<T>(1 - s.alpha), eps = static_cast<T>(s.eps);
  const T momentum = static_cast<T>(s.momentum);
  parallel_for(n, [&](int64_t i) {
    T gi = g[i];
    if (s.wd != 0) gi = gi + wd * p[i];
    square_avg[i] = square_avg[i] * alpha + one_minus_alpha * gi * gi;
    T avg;
    if (grad_avg) {
      grad_avg[i] = grad_avg[i] * alpha + one_minus_alpha * gi;
      avg = std::sqrt(square_avg[i] + T(-1) * grad_avg[i] * grad_avg[i]);
    } else {
      avg = std::sqrt(square_avg[i]);
    }
    avg = avg + eps;
    if (buf) {
      buf[i] = buf[i] * momentum + gi / avg;
      p[i] = p[i] + neg_lr * buf[i];
    } else {
      p[i] = p[i] + neg_lr * gi / avg;
    }
  });
}

}  // namespace

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : RMSprop(single_group(std::move(params), options.lr, options.weight_decay), options) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, RMSpropOptions options)
    : Optimizer(std::move(groups),
                {{"alpha", options.alpha},
                 {"eps", options.eps},
                 {"momentum", options.momentum},
                 {"centered", options.centered ? 1.0 : 0.0}},
                {"step", "square_avg", "momentum_buffer", "grad_avg"}, "rmsprop") {
  for (size_t g = 0; g < groups_.size(); ++g) {
    double alpha = option(groups_[g], "alpha"), eps = option(groups_[g], "eps");
    double momentum = option(groups_[g], "momentum");
    GS_CHECK(alpha >= 0, "rmsprop: group %zu has invalid alpha %g", g, alpha);
    GS_CHECK(eps >= 0, "rmsprop: group %zu has invalid eps %g", g, eps);
    GS_CHECK(momentum >= 0, "rmsprop: group %zu has invalid momentum %g", g, momentum);
  }
}

void RMSprop::step() {
  NoGradGuard no_grad;
  for (auto& [group, index, param, grad] : params_with_grad()) {
    RMSpropStep s{group->lr, group->weight_decay, option(*group, "alpha"), option(*group, "eps"),
                  option(*group, "momentum")};
    increment_step(index);
    Tensor square_avg = state_tensor(index, "square_avg", param, 0.0);
    Tensor grad_avg, buf;
    if (option(*group, "centered") != 0) grad_avg = state_tensor(index, "grad_avg", param, 0.0);
    if (s.momentum > 0) buf = state_tensor(index, "momentum_buffer", param, 0.0);
    GS_DISPATCH_FLOAT(param.dtype(), "rmsprop", [&] {
      rmsprop_update<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(), square_avg.data<scalar_t>(),
                               grad_avg.defined() ? grad_avg.data<scalar_t>() : nullptr,
                               buf.defined() ? buf.data<scalar_t>() : nullptr, param.numel(), s);
    });
  }
}

}  // namespace gs::optim
