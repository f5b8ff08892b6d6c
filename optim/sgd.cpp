// SGD with momentum, dampening, Nesterov and L2 weight decay: torch 1.13's documented algorithm
//   g += wd*p;  v = g (first step) or momentum*v + (1-dampening)*g;  g = nesterov ? g + momentum*v : v;
//   p -= lr*g
#include <cmath>

#include "autograd/tape.h"
#include "optim/cuda_steps.h"
#include "optim/flat_loop.h"
#include "optim/optimizers.h"

namespace gs::optim {
namespace {

namespace sd = kernels::simd;

// One parameter's update: p, g, buf (null without momentum) hold n elements. `first`: buf holds
// nothing yet (it becomes the gradient).
template <class T>
struct SgdItem {
  T* p;
  const T* g;
  T* buf;
  int64_t n;
  T lr, wd, momentum, keep;  // keep = 1 - dampening
  bool nesterov, first;
};

template <class T>
void sgd_range(const SgdItem<T>& w, int64_t begin, int64_t end) {
  const T neg_lr = -w.lr;
  vector_loop<T>(
      begin, end,
      [&](int64_t i) {
        sd::Vec<T> d = sd::load(w.g + i);
        if (w.wd != 0) d = d + sd::load(w.p + i) * w.wd;
        if (w.buf) {
          const sd::Vec<T> b = w.first ? d : sd::load(w.buf + i) * w.momentum + d * w.keep;
          sd::store(w.buf + i, b);
          d = w.nesterov ? d + b * w.momentum : b;
        }
        sd::store(w.p + i, sd::load(w.p + i) + d * neg_lr);
      },
      [&](int64_t i) {
        T d = w.g[i];
        if (w.wd != 0) d = d + w.p[i] * w.wd;
        if (w.buf) {
          w.buf[i] = w.first ? d : w.buf[i] * w.momentum + d * w.keep;
          d = w.nesterov ? d + w.buf[i] * w.momentum : w.buf[i];
        }
        w.p[i] = w.p[i] + d * neg_lr;
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
  ItemsByType<SgdItem> items;
  CudaSteps cuda;
  for (auto& [group, index, param, grad] : params_with_grad()) {
    const double momentum = option(*group, "momentum"), dampening = option(*group, "dampening");
    const bool nesterov = option(*group, "nesterov") != 0;
    Tensor buf;
    bool first = false;
    if (momentum != 0) buf = state_tensor(index, "momentum_buffer", param, 0.0, &first);
    if (cuda.sgd(param, grad, buf, group->lr, group->weight_decay, momentum, dampening, nesterov, first))
      continue;
    GS_DISPATCH_FLOAT(param.dtype(), "sgd", [&] {
      SgdItem<scalar_t> item{param.data<scalar_t>(), grad.data<scalar_t>(),
                             buf.defined() ? buf.data<scalar_t>() : nullptr, param.numel(),
                             scalar_t(group->lr), scalar_t(group->weight_decay), scalar_t(momentum),
                             scalar_t(1 - dampening), nesterov, first};
      items.add(item);
    });
  }
  items.run(sgd_range<float>, sgd_range<double>);
  cuda.run();
}

}  // namespace gs::optim
