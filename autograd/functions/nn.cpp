// Neural-network ops: conv2d, max/avg/adaptive-avg pooling, batch norm and dropout, each a
// fused primitive with its backward directly under its forward. Kernels: kernels/cpu/.
#include "autograd/nn_ops.h"
#include "tensor/raw_nn.h"
#include "tensor/raw_ops.h"

namespace gs {

// y = x (*) w + b;  dx += conv_transpose(g, w),  dw += sum_n g (x) x,  db += sum_{n,p,q} g
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params) {
  Tensor out = raw::conv2d(x, weight, bias, params);
  record(OpId::Conv2d, {x, weight, bias}, {out}, {x, weight}, [params](BackwardContext& c) {
    const Tensor &X = c.saved(0), &W = c.saved(1), &G = c.grad_output();
    if (c.needs_grad(0)) c.accumulate(0, raw::conv2d_backward_data(G, W, X.shape(), params));
    if (c.needs_grad(1) || c.needs_grad(2)) {
      raw::Conv2dParamGrads g = raw::conv2d_backward_params(X, G, W.shape(), params, c.needs_grad(1), c.needs_grad(2));
      if (g.weight.defined()) c.accumulate(1, g.weight);
      if (g.bias.defined()) c.accumulate(2, g.bias);
    }
  });
  return out;
}

// y = max over each window;  dx[argmax] += g  (the first maximum of a window takes it all)
Tensor max_pool2d(const Tensor& x, const Pool2dParams& params) {
  raw::MaxPool2dResult r = raw::max_pool2d(x, params);
  Shape x_shape = x.shape();
  record(OpId::MaxPool2d, {x}, {r.out}, {r.argmax}, [params, x_shape](BackwardContext& c) {
    c.accumulate(0, raw::max_pool2d_backward(c.grad_output(), c.saved(0), x_shape, params));
  });
  return r.out;
}

// y = window mean;  dx += g / divisor spread over each window
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params, bool count_include_pad) {
  Tensor out = raw::avg_pool2d(x, params, count_include_pad);
  Shape x_shape = x.shape();
  record(OpId::AvgPool2d, {x}, {out}, {}, [params, x_shape, count_include_pad](BackwardContext& c) {
    c.accumulate(0, raw::avg_pool2d_backward(c.grad_output(), x_shape, params, count_include_pad));
  });
  return out;
}

// y = mean over adaptive windows [floor(i H/P), ceil((i+1) H/P));  dx += g / window size
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  Tensor out = raw::adaptive_avg_pool2d(x, out_h, out_w);
  Shape x_shape = x.shape();
  record(OpId::AdaptiveAvgPool2d, {x}, {out}, {}, [x_shape](BackwardContext& c) {
    c.accumulate(0, raw::adaptive_avg_pool2d_backward(c.grad_output(), x_shape));
  });
  return out;
}

// y = (x - mean) * invstd * gamma + beta, statistics per channel over (N, H, W).
// With batch statistics the mean and variance depend on x:
//   dx += gamma invstd (g - mean(g) - xhat mean(g xhat));  with running statistics dx += gamma invstd g.
//   dgamma += sum(g xhat),  dbeta += sum(g)
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  raw::BatchNormResult r = raw::batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps);
  bool batch_stats = r.used_batch_stats;
  record(OpId::BatchNorm, {x, weight, bias}, {r.out}, {x, weight, r.save_mean, r.save_invstd},
         [batch_stats](BackwardContext& c) {
           raw::BatchNormGrads g =
               raw::batch_norm_backward(c.saved(0), c.grad_output(), c.saved(1), c.saved(2), c.saved(3), batch_stats,
                                        c.needs_grad(0), c.needs_grad(1), c.needs_grad(2));
           if (g.input.defined()) c.accumulate(0, g.input);
           if (g.weight.defined()) c.accumulate(1, g.weight);
           if (g.bias.defined()) c.accumulate(2, g.bias);
         });
  return r.out;
}

// y = x * mask, mask = 0 (probability p) or 1/(1-p);  dx += g * mask.  Identity when not
// training or p = 0 (x itself is returned, nothing is recorded).
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  raw::DropoutResult r = raw::dropout(x, p, training, gen);
  if (!r.mask.defined()) return r.out;
  record(OpId::Dropout, {x}, {r.out}, {r.mask},
         [](BackwardContext& c) { c.accumulate(0, raw::binary(raw::BinaryOp::Mul, c.grad_output(), c.saved(0))); });
  return r.out;
}

}  // namespace gs
