// SGD with momentum, dampening, Nesterov and L2 weight decay: torch 1.13's documented algorithm
//   g += wd*p;  v = g (first step) or momentum*v + (1-dampening)*g;  g = nesterov ? g + momentum*v : v;
//   p -= lr*g
#include <cmath>

#include "autograd/tape.h"
#include "optim/cuda_steps.h"
#include "optim/optimizers.h"

namespace gs::optim {
namespace {

// p, g, buf: n elements each; buf is null without momentum. `first`: buf holds nothing yet.
template <class T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, double lr_d, double wd_d, double momentum_d, double dampening_d,
                bool nesterov, bool first) {
  const T lr = static_cast<T>(lr_d), wd = static_cast<T>(wd_d), momentum = static_cast<T>(momentum_d);
  const T keep = static_cast<T>(1 - dampening_d);
  parallel_for(n, [&](int64_t i) {
    T d = g[i];
    if (wd_d != 0) d = d + wd * p[i];
    if (buf) {
      buf[i] = first ? d : buf[i] * momentum + keep * d;
      d = nesterov ? d + momentum * buf[i] : buf[i];
    }
    p[i] = p[i] + (-lr) * d;
  });
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : SGD(single_group(std::move(params), options.lr, options.weight_decay), options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer(std::move(groups),
                {{"momentum", options.momentum},
                 {"dampening", options.dampening},
                 {"nesterov", options.nesterov ? 1.0 : 0.0}},
                {"momentum_buffer"}, "sgd") {
  for (size_t g = 0; g < groups_.size(); ++g) {
    double momentum = option(groups_[g], "momentum"), dampening = option(groups_[g], "dampening");
    GS_CHECK(momentum >= 0, "sgd: group %zu has invalid momentum %g", g, momentum);
    GS_CHECK(std::isfinite(dampening), "sgd: group %zu has invalid dampening %g", g, dampening);
    GS_CHECK(option(groups_[g], "nesterov") == 0 || (momentum > 0 && dampening == 0),
             "sgd: group %zu: nesterov needs momentum > 0 and dampening = 0 (got momentum %g, dampening %g)", g,
             momentum, dampening);
  }
}

void SGD::step() {
  NoGradGuard no_grad;
  for (auto& [group, index, param, grad] : params_with_grad()) {
    const double momentum = option(*group, "momentum");
    const bool nesterov = option(*group, "nesterov") != 0;
    Tensor buf;
    bool first = false;
    if (momentum != 0) buf = state_tensor(index, "momentum_buffer", param, 0.0, &first);
    if (cuda_steps::sgd(param, grad, buf, group->lr, group->weight_decay, momentum, option(*group, "dampening"),
                        nesterov, first))
      continue;
    GS_DISPATCH_FLOAT(param.dtype(), "sgd", [&] {
      sgd_update<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(),
                           buf.defined() ? buf.data<scalar_t>() : nullptr, param.numel(), group->lr,
                           group->weight_decay, momentum, option(*group, "dampening"), nesterov, first);
    });
  }
}

}  // namespace gs::optim
