// Inference-time fusion of Conv2d -> BatchNorm2d [-> ReLU]: in eval mode the batch norm is an
// affine map per channel, so it folds into the convolution's weight and bias, and the ReLU is
// applied to the conv output in place: three layers for the cost of one convolution.
// Sequential::forward uses it under no_grad when every layer involved is in eval mode and has
// no forward hook (a hook must see each layer's own output).
#pragma once
#include "layers/batchnorm.h"
#include "layers/conv.h"

namespace gs::nn {

struct FoldedConv {
  Tensor weight, bias;  // (K, C/groups, R, S), (K)
};
// weight' = weight * s, bias' = (bias - running_mean) * s + beta, s = gamma / sqrt(running_var + eps)
FoldedConv fold_batch_norm(const Conv2d& conv, const BatchNormBase& bn);

// Whether conv -> bn can run fused now: bn uses running statistics (eval, tracked), grad mode
// is off, neither has forward hooks, channel counts and dtypes agree.
bool can_fuse_conv_bn(const Conv2d& conv, const BatchNormBase& bn);
// relu(bn(conv(x))) (or bn(conv(x)) without relu) by one folded convolution.
Tensor fused_conv_bn(const Conv2d& conv, const BatchNormBase& bn, bool relu, const Tensor& x);

}  // namespace gs::nn
