// CUDA optimizer steps (cuda_steps.h): checks, host-side constants, one fused kernel launch.
#include "optim/cuda_steps.h"

#if GS_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace gs::optim::cuda_steps {

namespace {
// Throws unless every defined tensor is f32 on the parameter's device.
bool on_cuda(const char* op, const Tensor& param, std::initializer_list<const Tensor*> others) {
  if (!param.device().is_cuda()) return false;
  common_device(op, others);
  for (const Tensor* t : others) {
    if (t->defined()) {
      GS_CHECK(t->dtype() == DType::F32, "%s: CUDA optimizer steps take f32 tensors, got %s", op,
               t->describe().c_str());
      GS_CHECK(t->is_contiguous(), "%s: CUDA optimizer steps need contiguous buffers, got %s", op,
               t->describe().c_str());
    }
  }
#if !GS_CUDA
  GS_CHECK(false, "%s: parameter on %s but this build has no CUDA backend", op, param.device().str().c_str());
#endif
  return true;
}
template <class T> T* ptr(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
}  // namespace

bool sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, double lr, double weight_decay, double momentum,
         double dampening, bool nesterov, bool first) {
  if (!on_cuda("sgd", param, {&param, &grad, &buf})) return false;
#if GS_CUDA
  const kernels::cuda::SgdConsts s =
      kernels::cuda::make_sgd_consts(lr, weight_decay, momentum, dampening, buf.defined(), nesterov, first);
  kernels::cuda::sgd_step(s, param.data<float>(), grad.data<float>(), ptr<float>(buf), param.numel());
#endif
  return true;
}

bool adam(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const Tensor& vmax, double lr,
          double weight_decay, double beta1, double beta2, double eps, int64_t t, bool decoupled) {
  if (!on_cuda(decoupled ? "adamw" : "adam", param, {&param, &grad, &m, &v, &vmax})) return false;
#if GS_CUDA
  const kernels::cuda::AdamConsts s =
      kernels::cuda::make_adam_consts(lr, weight_decay, beta1, beta2, eps, t, decoupled, vmax.defined());
  kernels::cuda::adam_step(s, param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
                           ptr<float>(vmax), param.numel());
#endif
  return true;
}

bool rprop(const Tensor& param, const Tensor& grad, const Tensor& prev, const Tensor& step_size, double eta_minus,
           double eta_plus, double step_min, double step_max) {
  if (!on_cuda("rprop", param, {&param, &grad, &prev, &step_size})) return false;
#if GS_CUDA
  kernels::cuda::RpropConsts s{static_cast<float>(eta_minus), static_cast<float>(eta_plus),
                               static_cast<float>(step_min), static_cast<float>(step_max)};
  kernels::cuda::rprop_step(s, param.data<float>(), grad.data<float>(), prev.data<float>(), step_size.data<float>(),
                            param.numel());
#endif
  return true;
}

bool rmsprop(const Tensor& param, const Tensor& grad, const Tensor& square_avg, const Tensor& grad_avg,
             const Tensor& buf, double lr, double weight_decay, double alpha, double eps, double momentum) {
  if (!on_cuda("rmsprop", param, {&param, &grad, &square_avg, &grad_avg, &buf})) return false;
#if GS_CUDA
  const kernels::cuda::RmspropConsts s{static_cast<float>(-lr),   static_cast<float>(weight_decay),
                                       static_cast<float>(alpha), static_cast<float>(1 - alpha),
                                       static_cast<float>(eps),   static_cast<float>(momentum)};
  kernels::cuda::rmsprop_step(s, param.data<float>(), grad.data<float>(), square_avg.data<float>(),
                              ptr<float>(grad_avg), ptr<float>(buf), param.numel());
#endif
  return true;
}

}  // namespace gs::optim::cuda_steps
