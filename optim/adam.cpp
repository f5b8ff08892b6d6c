// Adam and AdamW: torch 1.13's documented algorithms (foreach=false, maximize=false).
//   t += 1;  Adam: g += wd*p  |  AdamW: p *= 1 - lr*wd
//   m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g²;  amsgrad: vmax = max(vmax, v)
//   p -= lr/(1-beta1^t) * m / (sqrt(v or vmax)/sqrt(1-beta2^t) + eps)
#include <cmath>

#include "autograd/tape.h"
#include "kernels/cpu/simd.h"
#include "optim/cuda_steps.h"
#include "optim/flat_loop.h"
#include "optim/optimizers.h"

namespace gs::optim {
namespace {

namespace sd = kernels::simd;

// One parameter's update: p, g, m (exp_avg), v (exp_avg_sq) hold n elements; vmax
// (max_exp_avg_sq) is null without amsgrad. The step's scalars are folded into constants:
// decoupled (AdamW): p *= decay = 1 - lr wd; L2 (Adam): g += wd p; either is a no-op at wd = 0.
template <class T>
struct AdamItem {
  T *p;
  const T* g;
  T *m, *v, *vmax;
  int64_t n;
  T decay, wd, beta1, beta2, one_minus_beta1, one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps;
};

template <class T>
AdamItem<T> adam_item(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, double lr, double wd, double beta1,
                      double beta2, double eps, int64_t t, bool decoupled) {
  const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(t));
  const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(t));
  return {p, g, m, v, vmax, n,
          static_cast<T>(decoupled ? 1 - lr * wd : 1), static_cast<T>(decoupled ? 0 : wd),
          static_cast<T>(beta1), static_cast<T>(beta2), static_cast<T>(1 - beta1), static_cast<T>(1 - beta2),
          static_cast<T>(-(lr / bias_correction1)), static_cast<T>(std::sqrt(bias_correction2)), static_cast<T>(eps)};
}

// In 64-byte vectors (simd.h's sqrt is one instruction: a plain std::sqrt loop stays scalar
// because of errno), a scalar tail with the same arithmetic.
template <class T>
void adam_range(const AdamItem<T>& w, int64_t begin, int64_t end) {
  vector_loop<T>(
      begin, end,
      [&](int64_t i) {
        const sd::Vec<T> pi = sd::load(w.p + i) * w.decay, gi = sd::load(w.g + i) + pi * w.wd;
        const sd::Vec<T> mi = sd::load(w.m + i) * w.beta1 + gi * w.one_minus_beta1;
        const sd::Vec<T> vi = sd::load(w.v + i) * w.beta2 + gi * gi * w.one_minus_beta2;
        sd::store(w.m + i, mi);
        sd::store(w.v + i, vi);
        sd::Vec<T> second = vi;
        if (w.vmax) {
          const sd::Vec<T> old = sd::load(w.vmax + i);
          second = old > vi ? old : vi;
          sd::store(w.vmax + i, second);
        }
        sd::store(w.p + i, pi + mi * w.neg_step_size / (sd::sqrt(second) / w.bias_correction2_sqrt + w.eps));
      },
      [&](int64_t i) {
        const T pi = w.p[i] * w.decay, gi = w.g[i] + w.wd * pi;
        w.m[i] = w.m[i] * w.beta1 + w.one_minus_beta1 * gi;
        w.v[i] = w.v[i] * w.beta2 + w.one_minus_beta2 * gi * gi;
        T second = w.v[i];
        if (w.vmax) second = w.vmax[i] = std::max(w.vmax[i], w.v[i]);
        w.p[i] = pi + w.neg_step_size * w.m[i] / (std::sqrt(second) / w.bias_correction2_sqrt + w.eps);
      });
}

std::map<std::string, double> adam_defaults(double beta1, double beta2, double eps, bool amsgrad) {
  return {{"beta1", beta1}, {"beta2", beta2}, {"eps", eps}, {"amsgrad", amsgrad ? 1.0 : 0.0}};
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam(single_group(std::move(params), options.lr, options.weight_decay), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options, bool decoupled)
    : Optimizer(std::move(groups), adam_defaults(options.beta1, options.beta2, options.eps, options.amsgrad),
                {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, decoupled ? "adamw" : "adam"),
      decoupled_(decoupled) {
  const char* op = decoupled ? "adamw" : "adam";
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (const char* key : {"beta1", "beta2"}) {
      double beta = option(groups_[g], key);
      GS_CHECK(beta >= 0 && beta < 1, "%s: group %zu has invalid %s %g (must be in [0, 1))", op, g, key, beta);
    }
    double eps = option(groups_[g], "eps");
    GS_CHECK(eps >= 0, "%s: group %zu has invalid eps %g", op, g, eps);
  }
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(single_group(std::move(params), options.lr, options.weight_decay), options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions o)
    : Adam(std::move(groups), AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad}, true) {}

void Adam::step() {
  NoGradGuard no_grad;
  ItemsByType<AdamItem> items;
  CudaSteps cuda;
  for (auto& [group, index, param, grad] : params_with_grad()) {
    const double lr = group->lr, wd = group->weight_decay, beta1 = option(*group, "beta1");
    const double beta2 = option(*group, "beta2"), eps = option(*group, "eps");
    const int64_t t = increment_step(index);
    Tensor m = state_tensor(index, "exp_avg", param, 0.0);
    Tensor v = state_tensor(index, "exp_avg_sq", param, 0.0);
    Tensor vmax;
    if (option(*group, "amsgrad") != 0) vmax = state_tensor(index, "max_exp_avg_sq", param, 0.0);
    if (cuda.adam(param, grad, m, v, vmax, lr, wd, beta1, beta2, eps, t, decoupled_)) continue;
    GS_DISPATCH_FLOAT(param.dtype(), name().c_str(), [&] {
      items.add(adam_item<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(), m.data<scalar_t>(),
                                    v.data<scalar_t>(), vmax.defined() ? vmax.data<scalar_t>() : nullptr,
                                    param.numel(), lr, wd, beta1, beta2, eps, t, decoupled_));
    });
  }
  items.run(adam_range<float>, adam_range<double>);
  cuda.run();
}

}  // namespace gs::optim
