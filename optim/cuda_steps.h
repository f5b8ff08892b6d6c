// Optimizer steps for parameters on a CUDA device: each runs the fused kernel of
// kernels/cuda/optim.cu over the parameter's flat buffer and returns true; for a cpu parameter
// it does nothing and returns false (the optimizer's own loop runs). Same algorithms as
// sgd.cpp, adam.cpp, rprop.cpp and rmsprop.cpp (torch 1.13's), same precomputed constants.
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace gs::optim::cuda_steps {

bool sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, double lr, double weight_decay, double momentum,
         double dampening, bool nesterov, bool first);
// vmax undefined without amsgrad; t is the step count after this step's increment.
bool adam(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const Tensor& vmax, double lr,
          double weight_decay, double beta1, double beta2, double eps, int64_t t, bool decoupled);
bool rprop(const Tensor& param, const Tensor& grad, const Tensor& prev, const Tensor& step_size, double eta_minus,
           double eta_plus, double step_min, double step_max);
// grad_avg undefined unless centered, buf undefined unless momentum > 0.
bool rmsprop(const Tensor& param, const Tensor& grad, const Tensor& square_avg, const Tensor& grad_avg,
             const Tensor& buf, double lr, double weight_decay, double alpha, double eps, double momentum);

}  // namespace gs::optim::cuda_steps
