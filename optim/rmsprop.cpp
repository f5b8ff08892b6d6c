// RMSprop: torch 1.13's documented algorithm (maximize=false).
//   g += wd*p;  sq = alpha*sq + (1-alpha)*g²;  centered: ga = alpha*ga + (1-alpha)*g, avg = sqrt(sq - ga²)
//   else avg = sqrt(sq);  avg += eps;  momentum > 0: buf = momentum*buf + g/avg, p -= lr*buf
//   else p -= lr*g/avg
#include <cmath>

#include "autograd/tape.h"
#include "optim/cuda_steps.h"
#include "optim/flat_loop.h"
#include "optim/optimizers.h"

namespace gs::optim {
namespace {

namespace sd = kernels::simd;

// One parameter's update: p, g, square_avg hold n elements; grad_avg is null unless centered,
// buf null unless momentum > 0.
template <class T> struct RMSpropItem {
  T* p;
  const T* g;
  T *square_avg, *grad_avg, *buf;
  int64_t n;
  T neg_lr, wd, alpha, one_minus_alpha, eps, momentum;
};

// Vectors and a scalar tail with the same arithmetic.
template <class T> void rmsprop_range(const RMSpropItem<T>& w, int64_t begin, int64_t end) {
  using V = sd::Vec<T>;
  vector_loop<T>(
      begin, end,
      [&](int64_t i) {
        V gi = sd::load(w.g + i);
        if (w.wd != 0) gi = gi + w.wd * sd::load(w.p + i);
        const V sq = sd::load(w.square_avg + i) * w.alpha + w.one_minus_alpha * gi * gi;
        sd::store(w.square_avg + i, sq);
        V avg;
        if (w.grad_avg) {
          const V ga = sd::load(w.grad_avg + i) * w.alpha + w.one_minus_alpha * gi;
          sd::store(w.grad_avg + i, ga);
          avg = sd::sqrt(sq + T(-1) * ga * ga);
        } else {
          avg = sd::sqrt(sq);
        }
        avg = avg + w.eps;
        if (w.buf) {
          const V b = sd::load(w.buf + i) * w.momentum + gi / avg;
          sd::store(w.buf + i, b);
          sd::store(w.p + i, sd::load(w.p + i) + w.neg_lr * b);
        } else {
          sd::store(w.p + i, sd::load(w.p + i) + w.neg_lr * gi / avg);
        }
      },
      [&](int64_t i) {
        T gi = w.g[i];
        if (w.wd != 0) gi = gi + w.wd * w.p[i];
        w.square_avg[i] = w.square_avg[i] * w.alpha + w.one_minus_alpha * gi * gi;
        T avg;
        if (w.grad_avg) {
          w.grad_avg[i] = w.grad_avg[i] * w.alpha + w.one_minus_alpha * gi;
          avg = std::sqrt(w.square_avg[i] + T(-1) * w.grad_avg[i] * w.grad_avg[i]);
        } else {
          avg = std::sqrt(w.square_avg[i]);
        }
        avg = avg + w.eps;
        if (w.buf) {
          w.buf[i] = w.buf[i] * w.momentum + gi / avg;
          w.p[i] = w.p[i] + w.neg_lr * w.buf[i];
        } else {
          w.p[i] = w.p[i] + w.neg_lr * gi / avg;
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
  ItemsByType<RMSpropItem> items;
  CudaSteps cuda;
  for (auto& [group, index, param, grad] : params_with_grad()) {
    const double lr = group->lr, wd = group->weight_decay, alpha = option(*group, "alpha");
    const double eps = option(*group, "eps"), momentum = option(*group, "momentum");
    increment_step(index);
    Tensor square_avg = state_tensor(index, "square_avg", param, 0.0);
    Tensor grad_avg, buf;
    if (option(*group, "centered") != 0) grad_avg = state_tensor(index, "grad_avg", param, 0.0);
    if (momentum > 0) buf = state_tensor(index, "momentum_buffer", param, 0.0);
    if (cuda.rmsprop(param, grad, square_avg, grad_avg, buf, lr, wd, alpha, eps, momentum)) continue;
    GS_DISPATCH_FLOAT(param.dtype(), "rmsprop", [&] {
      items.add(RMSpropItem<scalar_t>{param.data<scalar_t>(), grad.data<scalar_t>(), square_avg.data<scalar_t>(),
                                      grad_avg.defined() ? grad_avg.data<scalar_t>() : nullptr,
                                      buf.defined() ? buf.data<scalar_t>() : nullptr, param.numel(), scalar_t(-lr),
                                      scalar_t(wd), scalar_t(alpha), scalar_t(1 - alpha), scalar_t(eps),
                                      scalar_t(momentum)});
    });
  }
  items.run(rmsprop_range<float>, rmsprop_range<double>);
  cuda.run();
}

}  // namespace gs::optim
