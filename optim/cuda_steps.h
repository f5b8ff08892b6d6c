// Optimizer steps for parameters on a CUDA device. An optimizer's step() hands each parameter
// to a CudaSteps: for a CUDA parameter it is queued (true), for a cpu one nothing happens
// (false: the optimizer's own loop takes it). run() then updates every queued parameter with
// one fused kernel launch per device (kernels/cuda/optim.cu; more launches only past the
// kernel argument's capacity). Same algorithms as sgd.cpp, adam.cpp, rprop.cpp and rmsprop.cpp
// (torch 1.13's), same precomputed constants, per parameter (lr, step count).
#pragma once
#include <cstdint>
#include <memory>

#include "tensor/tensor.h"

namespace gs::optim {

class CudaSteps {
 public:
  CudaSteps();
  ~CudaSteps();
  CudaSteps(const CudaSteps&) = delete;
  CudaSteps& operator=(const CudaSteps&) = delete;

  bool sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, double lr, double weight_decay,
           double momentum, double dampening, bool nesterov, bool first);
  // vmax undefined without amsgrad; t is the step count after this step's increment.
  bool adam(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const Tensor& vmax, double lr,
            double weight_decay, double beta1, double beta2, double eps, int64_t t, bool decoupled);
  bool rprop(const Tensor& param, const Tensor& grad, const Tensor& prev, const Tensor& step_size, double eta_minus,
             double eta_plus, double step_min, double step_max);
  // grad_avg undefined unless centered, buf undefined unless momentum > 0.
  bool rmsprop(const Tensor& param, const Tensor& grad, const Tensor& square_avg, const Tensor& grad_avg,
               const Tensor& buf, double lr, double weight_decay, double alpha, double eps, double momentum);

  // Launches the queued updates (device by device) and empties the queue.
  void run();

 private:
  struct Queue;
  std::unique_ptr<Queue> queue_;
};

}  // namespace gs::optim
