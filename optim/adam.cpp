// Adam and AdamW: torch 1.13's documented algorithms (foreach=false, maximize=false).
//   t += 1;  Adam: g += wd*p  |  AdamW: p *= 1 - lr*wd
//   m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g²;  amsgrad: vmax = max(vmax, v)
//   p -= lr/(1-beta1^t) * m / (sqrt(v or vmax)/sqrt(1-beta2^t) + eps)
#include <cmath>

#include "autograd/tape.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/simd.h"
#include "optim/cuda_steps.h"
#include "optim/optimizers.h"

namespace gs::optim {
namespace {

struct AdamStep {
  double lr, wd, beta1, beta2, eps;
  int64_t t;
  bool decoupled;
};

// p, g, m (exp_avg), v (exp_avg_sq): n elements; vmax (max_exp_avg_sq) null without amsgrad.
// One flat pass per parameter in 64-byte vectors (kernels/cpu/simd.h, whose sqrt is one
// instruction: a plain std::sqrt loop stays scalar because of errno), the flags folded into
// constants; OpenMP chunks only for big parameters.
template <class T>
void adam_update(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamStep& s) {
  using V = kernels::simd::Vec<T>;
  constexpr int64_t L = kernels::simd::lanes<T>();
  const double bias_correction1 = 1 - std::pow(s.beta1, static_cast<double>(s.t));
  const double bias_correction2 = 1 - std::pow(s.beta2, static_cast<double>(s.t));
  const T neg_step_size = static_cast<T>(-(s.lr / bias_correction1));
  const T bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  const T beta1 = static_cast<T>(s.beta1), beta2 = static_cast<T>(s.beta2);
  const T one_minus_beta1 = static_cast<T>(1 - s.beta1), one_minus_beta2 = static_cast<T>(1 - s.beta2);
  const T eps = static_cast<T>(s.eps);
  // decoupled (AdamW): p *= 1 - lr wd; L2 (Adam): g += wd p. Either is a no-op at wd = 0.
  const T decay = static_cast<T>(s.decoupled ? 1 - s.lr * s.wd : 1);
  const T wd = static_cast<T>(s.decoupled ? 0 : s.wd);
  auto scalar = [&](int64_t i) {
    const T pi = p[i] * decay, gi = g[i] + wd * pi;
    m[i] = m[i] * beta1 + one_minus_beta1 * gi;
    v[i] = v[i] * beta2 + one_minus_beta2 * gi * gi;
    T second = v[i];
    if (vmax) second = vmax[i] = std::max(vmax[i], v[i]);
    p[i] = pi + neg_step_size * m[i] / (std::sqrt(second) / bias_correction2_sqrt + eps);
  };
  const int64_t vectors = n / L;
  kernels::parallel_for(vectors, (int64_t(1) << 15) / L, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const int64_t i = j * L;
      namespace sd = kernels::simd;
      const V pi = sd::load(p + i) * decay, gi = sd::load(g + i) + pi * wd;
      const V mi = sd::load(m + i) * beta1 + gi * one_minus_beta1;
      const V vi = sd::load(v + i) * beta2 + gi * gi * one_minus_beta2;
      sd::store(m + i, mi);
      sd::store(v + i, vi);
      V second = vi;
      if (vmax) {
        const V old = sd::load(vmax + i);
        second = old > vi ? old : vi;
        sd::store(vmax + i, second);
      }
      sd::store(p + i, pi + mi * neg_step_size / (sd::sqrt(second) / bias_correction2_sqrt + eps));
    }
  });
  for (int64_t i = vectors * L; i < n; ++i) scalar(i);
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
  for (auto& [group, index, param, grad] : params_with_grad()) {
    AdamStep s{group->lr, group->weight_decay, option(*group, "beta1"), option(*group, "beta2"), option(*group, "eps"),
               0,         decoupled_};
    s.t = increment_step(index);
    Tensor m = state_tensor(index, "exp_avg", param, 0.0);
    Tensor v = state_tensor(index, "exp_avg_sq", param, 0.0);
    Tensor vmax;
    if (option(*group, "amsgrad") != 0) vmax = state_tensor(index, "max_exp_avg_sq", param, 0.0);
    if (cuda_steps::adam(param, grad, m, v, vmax, s.lr, s.wd, s.beta1, s.beta2, s.eps, s.t, s.decoupled)) continue;
    GS_DISPATCH_FLOAT(param.dtype(), name().c_str(), [&] {
      adam_update<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(), m.data<scalar_t>(), v.data<scalar_t>(),
                            vmax.defined() ? vmax.data<scalar_t>() : nullptr, param.numel(), s);
    });
  }
}

}  // namespace gs::optim
