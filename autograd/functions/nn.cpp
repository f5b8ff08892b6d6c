// Neural-network ops: conv2d, max/avg/adaptive-avg pooling, batch norm and dropout, each a
// fused primitive with its backward directly under its forward. Kernels: kernels/cpu/.
#include "autograd/checkpoint.h"
#include "autograd/nn_ops.h"
#include "tensor/random.h"
#include "tensor/raw_nn.h"
#include "tensor/raw_ops.h"

namespace gs {

namespace {
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& g, const Shape& w_shape, const Conv2dParams& params);

// dx = conv_transpose(g, w), bilinear in (g, w). Recorded for a double backward:
// d<dx, u>/dg = conv2d(u, w),  d<dx, u>/dw = conv2d_weight_grad(u, g).
Tensor conv2d_data_grad(const Tensor& g, const Tensor& w, const Shape& x_shape, const Conv2dParams& params) {
  Tensor dx = raw::conv2d_backward_data(g, w, x_shape, params);
  Shape w_shape = w.shape();
  record_derivative(OpId::Conv2d, {g, w}, {dx}, {g, w}, [params, w_shape](BackwardContext& c) {
    const Tensor& u = c.grad_output();
    if (c.needs_grad(0)) c.accumulate(0, conv2d(u, c.saved(1), Tensor(), params));
    if (c.needs_grad(1)) c.accumulate(1, conv2d_weight_grad(u, c.saved(0), w_shape, params));
  });
  return dx;
}

// dw = sum_n g (x) x, bilinear in (x, g):  d<dw, v>/dx = conv2d_data_grad(g, v),  d<dw, v>/dg = conv2d(x, v).
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& g, const Shape& w_shape, const Conv2dParams& params) {
  Tensor dw = raw::conv2d_backward_params(x, g, w_shape, params, true, false).weight;
  Shape x_shape = x.shape();
  record_derivative(OpId::Conv2d, {x, g}, {dw}, {x, g}, [params, x_shape](BackwardContext& c) {
    const Tensor& v = c.grad_output();
    if (c.needs_grad(0)) c.accumulate(0, conv2d_data_grad(c.saved(1), v, x_shape, params));
    if (c.needs_grad(1)) c.accumulate(1, conv2d(c.saved(0), v, Tensor(), params));
  });
  return dw;
}
}  // namespace

// y = x (*) w + b;  dx += conv_transpose(g, w),  dw += sum_n g (x) x,  db += sum_{n,p,q} g
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params) {
  Tensor out = raw::conv2d(x, weight, bias, params);
  record(OpId::Conv2d, {x, weight, bias}, {out}, {x, weight}, [params](BackwardContext& c) {
    const Tensor &X = c.saved(0), &W = c.saved(1), &G = c.grad_output();
    if (c.needs_grad(0)) c.accumulate(0, conv2d_data_grad(G, W, X.shape(), params));
    if (c.create_graph()) {
      if (c.needs_grad(1)) c.accumulate(1, conv2d_weight_grad(X, G, W.shape(), params));
      if (c.needs_grad(2)) c.accumulate(2, sum(G, {0, 2, 3}));
    } else if (c.needs_grad(1) || c.needs_grad(2)) {
      // One pass for both.
      raw::Conv2dParamGrads g = raw::conv2d_backward_params(X, G, W.shape(), params, c.needs_grad(1), c.needs_grad(2));
      if (g.weight.defined()) c.accumulate(1, g.weight);
      if (g.bias.defined()) c.accumulate(2, g.bias);
    }
  });
  return out;
}

// y = max over each window;  dx[argmax] += g  (the first maximum of a window takes it all).
// Linear in g (argmax held), with the adjoint u -> u[argmax], a gather.
Tensor max_pool2d(const Tensor& x, const Pool2dParams& params) {
  raw::MaxPool2dResult r = raw::max_pool2d(x, params);
  Shape x_shape = x.shape();
  record(OpId::MaxPool2d, {x}, {r.out}, {r.argmax}, [params, x_shape](BackwardContext& c) {
    const Tensor &g = c.grad_output(), &argmax = c.saved(0);
    Tensor dx = raw::max_pool2d_backward(g, argmax, x_shape, params);
    record_derivative(OpId::MaxPool2d, {g}, {dx}, {argmax}, [x_shape](BackwardContext& c2) {
      const Tensor& idx = c2.saved(0);
      const int64_t N = x_shape[0], C = x_shape[1];
      Tensor planes = reshape(c2.grad_output(), {N, C, x_shape[2] * x_shape[3]});
      Tensor picked = gather(planes, 2, raw::reshape(idx, {N, C, idx.size(2) * idx.size(3)}));
      c2.accumulate(0, reshape(picked, idx.shape()));
    });
    c.accumulate(0, dx);
  });
  return r.out;
}

// y = window mean;  dx += g / divisor spread over each window (linear; the adjoint is the pool)
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params, bool count_include_pad) {
  Tensor out = raw::avg_pool2d(x, params, count_include_pad);
  Shape x_shape = x.shape();
  record(OpId::AvgPool2d, {x}, {out}, {}, [params, x_shape, count_include_pad](BackwardContext& c) {
    const Tensor& g = c.grad_output();
    Tensor dx = raw::avg_pool2d_backward(g, x_shape, params, count_include_pad);
    record_derivative(OpId::AvgPool2d, {g}, {dx}, {}, [params, count_include_pad](BackwardContext& c2) {
      c2.accumulate(0, avg_pool2d(c2.grad_output(), params, count_include_pad));
    });
    c.accumulate(0, dx);
  });
  return out;
}

// y = mean over adaptive windows [floor(i H/P), ceil((i+1) H/P));  dx += g / window size
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  Tensor out = raw::adaptive_avg_pool2d(x, out_h, out_w);
  Shape x_shape = x.shape();
  record(OpId::AdaptiveAvgPool2d, {x}, {out}, {}, [x_shape, out_h, out_w](BackwardContext& c) {
    const Tensor& g = c.grad_output();
    Tensor dx = raw::adaptive_avg_pool2d_backward(g, x_shape);
    record_derivative(OpId::AdaptiveAvgPool2d, {g}, {dx}, {}, [out_h, out_w](BackwardContext& c2) {
      c2.accumulate(0, adaptive_avg_pool2d(c2.grad_output(), out_h, out_w));
    });
    c.accumulate(0, dx);
  });
  return out;
}

namespace {
// Batch norm's x-hat and invstd as recorded ops of the (attached) x: with batch statistics they
// are recomputed, so that their dependence on x is differentiated; with fixed ones they are the
// saved statistics (constants). channel_shape is (1, C, 1, ...), dims the reduced dims.
struct BatchNormTerms {
  std::vector<int64_t> dims;
  Shape channel_shape;
  Tensor xhat, invstd;
  double M = 0;  // values per channel
};
BatchNormTerms batch_norm_terms(const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd, bool batch_stats,
                                double eps) {
  BatchNormTerms t;
  t.dims = {0};
  t.channel_shape.assign(static_cast<size_t>(x.dim()), 1);
  t.channel_shape[1] = x.size(1);
  for (int64_t d = 2; d < x.dim(); ++d) t.dims.push_back(d);
  t.M = double(x.numel()) / double(x.size(1));
  if (batch_stats) {
    Tensor centred = sub(x, mean(x, t.dims, true));
    t.invstd = pow(add(mean(mul(centred, centred), t.dims, true), eps), -0.5);
    t.xhat = mul(centred, t.invstd);
  } else {
    t.invstd = raw::reshape(save_invstd, t.channel_shape);
    t.xhat = mul(sub(x, raw::reshape(save_mean, t.channel_shape)), t.invstd);
  }
  return t;
}

// The double backward in recorded ops, for a third derivative: the formulas of
// kernels/cpu/batchnorm.h's batch_norm_double_coefficients on tensors of the attached x, weight
// and gy. gg holds the gradients of (dx, dweight, dbias); undefined ones are zero.
void batch_norm_double_backward_recorded(BackwardContext& c, const Tensor (&gg)[3], bool batch_stats, double eps) {
  const Tensor &x = c.saved(0), &w = c.saved(1), &gy = c.saved(2);
  BatchNormTerms t = batch_norm_terms(x, c.saved(3), c.saved(4), batch_stats, eps);
  const Tensor &xhat = t.xhat, &r = t.invstd;
  auto channel = [&](const Tensor& v) { return v.defined() ? reshape(v, t.channel_shape) : zeros_like(r); };
  auto times_w = [&](const Tensor& v) { return w.defined() ? mul(v, reshape(w, t.channel_shape)) : v; };
  auto sum_c = [&](const Tensor& v) { return sum(v, t.dims, true); };
  const Tensor ggx = gg[0].defined() ? gg[0] : zeros_like(x), G = channel(gg[1]), B = channel(gg[2]);
  const double M = t.M;
  Tensor S_ggx = sum_c(ggx), S_ggx_xhat = sum_c(mul(ggx, xhat)), S_ggx_gy = sum_c(mul(ggx, gy));
  Tensor S_gy, S_gy_xhat;
  if (batch_stats) {
    S_gy = sum_c(gy);
    S_gy_xhat = sum_c(mul(gy, xhat));
  }
  if (c.needs_grad(0)) {
    Tensor dx;
    if (batch_stats) {
      Tensor r2w = times_w(mul(r, r)), rG = mul(r, G);
      Tensor k_ggx = mul(r2w, mul(S_gy_xhat, -1.0 / M));
      Tensor k_gy = sub(rG, mul(r2w, mul(S_ggx_xhat, 1.0 / M)));
      Tensor k_xhat = sub(mul(r2w, add(sub(mul(mul(S_gy_xhat, S_ggx_xhat), 3.0 / (M * M)), mul(S_ggx_gy, 1.0 / M)),
                                       mul(mul(S_gy, S_ggx), 1.0 / (M * M)))),
                          mul(rG, mul(S_gy_xhat, 1.0 / M)));
      Tensor k_one = sub(mul(r2w, mul(add(mul(S_gy_xhat, S_ggx), mul(S_ggx_xhat, S_gy)), 1.0 / (M * M))),
                         mul(rG, mul(S_gy, 1.0 / M)));
      dx = add(add(add(mul(k_ggx, ggx), mul(k_gy, gy)), mul(k_xhat, xhat)), k_one);
    } else {
      dx = mul(mul(r, G), gy);
    }
    c.accumulate(0, dx);
  }
  if (c.needs_grad(1)) {
    Tensor dw =
        batch_stats
            ? mul(r, sub(sub(S_ggx_gy, mul(mul(S_gy, S_ggx), 1.0 / M)), mul(mul(S_ggx_xhat, S_gy_xhat), 1.0 / M)))
            : mul(r, S_ggx_gy);
    c.accumulate(1, reshape(dw, {x.size(1)}));
  }
  if (c.needs_grad(2)) {
    Tensor centred_ggx = batch_stats ? sub(sub(ggx, mul(S_ggx, 1.0 / M)), mul(xhat, mul(S_ggx_xhat, 1.0 / M))) : ggx;
    c.accumulate(2, add(add(times_w(mul(r, centred_ggx)), mul(G, xhat)), B));
  }
}

// The backward under create_graph: the fused kernel, recorded as one derivative entry of
// (x, weight, gy) whose backward is the fused double backward (or, recording once more, its
// recorded form).
void batch_norm_backward_differentiable(BackwardContext& c, bool batch_stats, double eps) {
  const Tensor &x = c.saved(0), &w = c.saved(1), &gy = c.grad_output();
  const Tensor &save_mean = c.saved(2), &save_invstd = c.saved(3);
  raw::BatchNormGrads r = raw::batch_norm_backward(x, gy, w, save_mean, save_invstd, batch_stats, c.needs_grad(0),
                                                   c.needs_grad(1), c.needs_grad(2));
  std::vector<Tensor> outputs;
  std::vector<int> slot;  // which of (dx, dweight, dbias) each recorded output is
  const Tensor* grads[3] = {&r.input, &r.weight, &r.bias};
  for (int i = 0; i < 3; ++i) {
    if (grads[i]->defined()) {
      slot.push_back(i);
      outputs.push_back(*grads[i]);
    }
  }
  record_derivative(OpId::BatchNorm, {x, w, gy}, outputs, {x, w, gy, save_mean, save_invstd},
                    [batch_stats, eps, slot](BackwardContext& c2) {
                      Tensor gg[3];
                      for (size_t i = 0; i < slot.size(); ++i) gg[slot[i]] = c2.grad_output(i);
                      if (c2.create_graph()) return batch_norm_double_backward_recorded(c2, gg, batch_stats, eps);
                      raw::BatchNormDoubleGrads d = raw::batch_norm_double_backward(
                          c2.saved(0), c2.saved(2), c2.saved(1), c2.saved(3), c2.saved(4), gg[0], gg[1], gg[2],
                          batch_stats, c2.needs_grad(0), c2.needs_grad(1), c2.needs_grad(2));
                      if (d.x.defined()) c2.accumulate(0, d.x);
                      if (d.weight.defined()) c2.accumulate(1, d.weight);
                      if (d.gy.defined()) c2.accumulate(2, d.gy);
                    });
  if (r.input.defined()) c.accumulate(0, r.input);
  if (r.weight.defined()) c.accumulate(1, r.weight);
  if (r.bias.defined()) c.accumulate(2, r.bias);
}
}  // namespace

// y = (x - mean) * invstd * gamma + beta, statistics per channel over (N, H, W).
// With batch statistics the mean and variance depend on x:
//   dx += gamma invstd (g - mean(g) - xhat mean(g xhat));  with running statistics dx += gamma invstd g.
//   dgamma += sum(g xhat),  dbeta += sum(g)
// Under create_graph the same fused backward is a derivative entry with a fused double backward.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  // A checkpoint's second run normalises as the first did but must not update the running statistics twice.
  const bool keep_running = training && is_recomputing();
  raw::BatchNormResult r = raw::batch_norm(x, weight, bias, keep_running ? Tensor() : running_mean,
                                           keep_running ? Tensor() : running_var, training, momentum, eps);
  bool batch_stats = r.used_batch_stats;
  record(OpId::BatchNorm, {x, weight, bias}, {r.out}, {x, weight, r.save_mean, r.save_invstd},
         [batch_stats, eps](BackwardContext& c) {
           if (c.create_graph()) return batch_norm_backward_differentiable(c, batch_stats, eps);
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
  if (training && p > 0) checkpoint_random_draw(gen ? *gen : default_generator());  // replayed when recomputed
  raw::DropoutResult r = raw::dropout(x, p, training, gen);
  if (!r.mask.defined()) return r.out;
  record(OpId::Dropout, {x}, {r.out}, {r.mask},
         [](BackwardContext& c) { c.accumulate(0, mul(c.grad_output(), c.saved(0))); });
  return r.out;
}

}  // namespace gs
