// CUDA optimizer steps (cuda_steps.h): checks, host-side constants, the per-device queues of
// kernels/cuda tensor entries, one fused launch per device.
#include "optim/cuda_steps.h"

#include <map>
#include <vector>

#if GS_CUDA
#include "kernels/cuda/ops.h"
#include "kernels/cuda/runtime.h"
#endif

namespace gs::optim {

namespace {
// Throws unless every defined tensor is f32, contiguous and on the parameter's device.
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
#if GS_CUDA
template <class T> T* ptr(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
#endif
}  // namespace

struct CudaSteps::Queue {
#if GS_CUDA
  struct OnDevice {
    std::vector<kernels::cuda::SgdTensor> sgd;
    std::vector<kernels::cuda::AdamTensor> adam;
    std::vector<kernels::cuda::RpropTensor> rprop;
    std::vector<kernels::cuda::RmspropTensor> rmsprop;
  };
  std::map<int, OnDevice> devices;  // by device index
#endif
  std::vector<Tensor> keep;  // the queued buffers stay alive until run()
  void hold(std::initializer_list<const Tensor*> tensors) {
    for (const Tensor* t : tensors)
      if (t->defined()) keep.push_back(*t);
  }
};

CudaSteps::CudaSteps() : queue_(std::make_unique<Queue>()) {}
CudaSteps::~CudaSteps() = default;

bool CudaSteps::sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, double lr, double weight_decay,
                    double momentum, double dampening, bool nesterov, bool first) {
  if (!on_cuda("sgd", param, {&param, &grad, &buf})) return false;
  queue_->hold({&param, &grad, &buf});
#if GS_CUDA
  queue_->devices[param.device().index].sgd.push_back(
      {kernels::cuda::make_sgd_consts(lr, weight_decay, momentum, dampening, buf.defined(), nesterov, first),
       param.data<float>(), grad.data<float>(), ptr<float>(buf), param.numel()});
#endif
  return true;
}

bool CudaSteps::adam(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const Tensor& vmax,
                     double lr, double weight_decay, double beta1, double beta2, double eps, int64_t t,
                     bool decoupled) {
  if (!on_cuda(decoupled ? "adamw" : "adam", param, {&param, &grad, &m, &v, &vmax})) return false;
  queue_->hold({&param, &grad, &m, &v, &vmax});
#if GS_CUDA
  queue_->devices[param.device().index].adam.push_back(
      {kernels::cuda::make_adam_consts(lr, weight_decay, beta1, beta2, eps, t, decoupled, vmax.defined()),
       param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), ptr<float>(vmax), param.numel()});
#endif
  return true;
}

bool CudaSteps::rprop(const Tensor& param, const Tensor& grad, const Tensor& prev, const Tensor& step_size,
                      double eta_minus, double eta_plus, double step_min, double step_max) {
  if (!on_cuda("rprop", param, {&param, &grad, &prev, &step_size})) return false;
  queue_->hold({&param, &grad, &prev, &step_size});
#if GS_CUDA
  const kernels::cuda::RpropConsts s{static_cast<float>(eta_minus), static_cast<float>(eta_plus),
                                     static_cast<float>(step_min), static_cast<float>(step_max)};
  queue_->devices[param.device().index].rprop.push_back(
      {s, param.data<float>(), grad.data<float>(), prev.data<float>(), step_size.data<float>(), param.numel()});
#endif
  return true;
}

bool CudaSteps::rmsprop(const Tensor& param, const Tensor& grad, const Tensor& square_avg, const Tensor& grad_avg,
                        const Tensor& buf, double lr, double weight_decay, double alpha, double eps,
                        double momentum) {
  if (!on_cuda("rmsprop", param, {&param, &grad, &square_avg, &grad_avg, &buf})) return false;
  queue_->hold({&param, &grad, &square_avg, &grad_avg, &buf});
#if GS_CUDA
  const kernels::cuda::RmspropConsts s{static_cast<float>(-lr),   static_cast<float>(weight_decay),
                                       static_cast<float>(alpha), static_cast<float>(1 - alpha),
                                       static_cast<float>(eps),   static_cast<float>(momentum)};
  queue_->devices[param.device().index].rmsprop.push_back({s, param.data<float>(), grad.data<float>(),
                                                           square_avg.data<float>(), ptr<float>(grad_avg),
                                                           ptr<float>(buf), param.numel()});
#endif
  return true;
}

void CudaSteps::run() {
#if GS_CUDA
  for (auto& [index, d] : queue_->devices) {
    kernels::cuda::set_device(index);  // the kernels go to this device's compute stream
    if (!d.sgd.empty()) kernels::cuda::sgd_steps(d.sgd);
    if (!d.adam.empty()) kernels::cuda::adam_steps(d.adam);
    if (!d.rprop.empty()) kernels::cuda::rprop_steps(d.rprop);
    if (!d.rmsprop.empty()) kernels::cuda::rmsprop_steps(d.rmsprop);
  }
  queue_->devices.clear();
#endif
  queue_->keep.clear();
}

}  // namespace gs::optim
