// Differentiable neural-network ops: convolution, pooling, batch norm, dropout. Each is a
// fused primitive with a hand-written backward next to its forward (autograd/functions/nn.cpp);
// kernels live in kernels/cpu/{conv2d,pool,batchnorm}.cpp with a `_ref` and tuned variants.
// Layouts follow PyTorch: x (N,C,H,W), conv weight (K, C/groups, R, S).
#pragma once
#include "autograd/ops.h"

namespace gs {

class Generator;

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};
// x (N,C,H,W), weight (K, C/groups, R, S), bias (K) or undefined -> (N, K, P, Q)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params = {});

struct Pool2dParams {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;  // PyTorch's default stride = kernel size
  int64_t pad_h = 0, pad_w = 0;
};
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
