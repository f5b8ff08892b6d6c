// Conv2d + BatchNorm2d (+ ReLU) folded into one convolution for inference.
#include "layers/fused.h"

#include <cmath>

#include "autograd/tape.h"
#include "tensor/raw_nn.h"
#include "tensor/raw_ops.h"

namespace gs::nn {

FoldedConv fold_batch_norm(const Conv2d& conv, const BatchNormBase& bn) {
  const Tensor& w = conv.weight();
  const int64_t K = w.shape()[0], per_channel = w.numel() / K;
  Tensor wc = raw::contiguous(w);
  FoldedConv f{empty(w.shape(), {w.dtype()}), empty({K}, {w.dtype()})};
  Tensor mean = raw::contiguous(bn.running_mean()), var = raw::contiguous(bn.running_var());
  Tensor gamma = bn.weight().defined() ? raw::contiguous(bn.weight()) : Tensor();
  Tensor beta = bn.bias().defined() ? raw::contiguous(bn.bias()) : Tensor();
  Tensor bias = conv.bias().defined() ? raw::contiguous(conv.bias()) : Tensor();
  const double eps = bn.options().eps;
  GS_DISPATCH_FLOAT(w.dtype(), "fused_conv_bn", [&] {
    const scalar_t* src = wc.data<scalar_t>();
    scalar_t* dst = f.weight.data<scalar_t>();
    scalar_t* b = f.bias.data<scalar_t>();
    for (int64_t k = 0; k < K; ++k) {
      const double s = (gamma.defined() ? double(gamma.data<scalar_t>()[k]) : 1.0) /
                       std::sqrt(double(var.data<scalar_t>()[k]) + eps);
      for (int64_t i = 0; i < per_channel; ++i) dst[k * per_channel + i] = scalar_t(src[k * per_channel + i] * s);
      const double conv_bias = bias.defined() ? double(bias.data<scalar_t>()[k]) : 0.0;
      b[k] = scalar_t((conv_bias - double(mean.data<scalar_t>()[k])) * s +
                      (beta.defined() ? double(beta.data<scalar_t>()[k]) : 0.0));
    }
  });
  return f;
}

bool can_fuse_conv_bn(const Conv2d& conv, const BatchNormBase& bn) {
  return !GradMode::is_enabled() && !bn.is_training() && bn.running_mean().defined() && bn.running_var().defined() &&
         !conv.has_forward_hooks() && !bn.has_forward_hooks() && bn.type_name() == "BatchNorm2d" &&
         bn.options().num_features == conv.weight().shape()[0] && bn.running_mean().dtype() == conv.weight().dtype() &&
         conv.weight().device().is_cpu();
}

Tensor fused_conv_bn(const Conv2d& conv, const BatchNormBase& bn, bool relu, const Tensor& x) {
  FoldedConv f = fold_batch_norm(conv, bn);
  Tensor y = raw::conv2d(x, f.weight, f.bias, conv.options().params());
  if (relu) y = raw::unary(raw::UnaryOp::Relu, y);
  return y;
}

}  // namespace gs::nn
