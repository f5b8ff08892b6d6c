// Differentiable neural-network ops: convolution, pooling, batch norm, dropout. Each is a
// fused primitive with a hand-written backward next to its forward (autograd/functions/nn.cpp);
// kernels live in kernels/cpu/{conv2d,pool,batchnorm}.cpp with a `_ref` and tuned variants.
// Layouts follow PyTorch: x (N,C,H,W), conv weight (K, C/groups, R, S).
#pragma once
#include "autograd/ops.h"
// Conv2dParams {stride, padding, dilation, groups} and Pool2dParams {kernel, stride, padding}
// are defined in tensor/raw_nn.h, next to the no-grad front-ends that share them.
#include "tensor/raw_nn.h"

namespace gs {

class Generator;

// x (N,C,H,W), weight (K, C/groups, R, S), bias (K) or undefined -> (N, K, P, Q)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params = {});

Tensor max_pool2d(const Tensor& x, const Pool2dParams& params);
// count_include_pad as torch.nn.AvgPool2d (default true)
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params, bool count_include_pad = true);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// Batch norm over dim 1 of x (N,C) or (N,C,H,W). In training it normalises with the batch
// statistics and updates running_mean/running_var in place (unbiased variance, as PyTorch);
// in eval it uses the running statistics. weight/bias (C) may be undefined (affine=false).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// Inverted dropout: zeroes with probability p and scales the rest by 1/(1-p) when training.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace gs
