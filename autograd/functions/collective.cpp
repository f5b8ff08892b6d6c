// Ops across processes: the all-reduce, whose backward is another all-reduce, and the batch norm
// over every process's batch (a fused op on the batch-norm kernels; tests/autograd checks it
// against the same maths composed of all_reduce_sum and elementwise ops). The group does the
// talking (autograd/collective.h).
#include "autograd/collective.h"

#include <cmath>

#include "autograd/checkpoint.h"
#include "autograd/ops.h"
#include "tensor/error.h"
#include "tensor/raw_nn.h"
#include "tensor/raw_ops.h"

namespace gs {

// y = sum_p x_p;  dx_p += sum_q dy_q  (each process's y feeds its own loss, and all of them are y)
Tensor all_reduce_sum(const Tensor& x, Collective& group) {
  Tensor out = raw::clone(x);
  group.all_reduce_sum({out});
  Collective* g = &group;  // the group outlives the tape (train::ProcessGroup::world() does)
  record(OpId::AllReduceSum, {x}, {out}, {}, [g](BackwardContext& c) {
    if (c.create_graph()) return c.accumulate(0, all_reduce_sum(c.grad_output(), *g));
    Tensor total = raw::clone(c.grad_output());
    g->all_reduce_sum({total});
    c.accumulate(0, total);
  });
  return out;
}

namespace {
// The backward in recorded ops, for a create_graph backward: the statistics of every process's
// values recomputed from the attached x through all_reduce_sum (whose backward all-reduces
// again), so a double backward differentiates them across the processes too. Every process runs
// the same four all-reduces, and in a second backward their backwards in the same order.
void sync_batch_norm_backward_recorded(BackwardContext& c, Collective& group, double n, double eps) {
  const Tensor &x = c.saved(0), &w = c.saved(1), &g = c.grad_output();
  std::vector<int64_t> dims = {0};
  Shape channel_shape(static_cast<size_t>(x.dim()), 1);  // (1, C, 1, ...)
  channel_shape[1] = x.size(1);
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  auto global_mean = [&](const Tensor& t) { return div(all_reduce_sum(sum(t, dims, true), group), n); };
  Tensor centred = sub(x, global_mean(x));
  Tensor invstd = pow(add(global_mean(mul(centred, centred)), eps), -0.5);
  Tensor xhat = mul(centred, invstd);
  Tensor gw = w.defined() ? mul(g, reshape(w, channel_shape)) : g;
  Tensor dx = mul(invstd, sub(sub(gw, global_mean(gw)), mul(xhat, global_mean(mul(gw, xhat)))));
  c.accumulate(0, dx);
  if (c.needs_grad(1)) c.accumulate(1, sum(mul(g, xhat), dims));  // this process's share, as the first order
  if (c.needs_grad(2)) c.accumulate(2, sum(g, dims));
}

void check_channels(const Tensor& x, const Tensor& t, const char* what) {
  GS_CHECK(!t.defined() || (t.dim() == 1 && t.size(0) == x.size(1)),
           "sync_batch_norm: %s %s must be (%lld) for input %s", what, shape_str(t.shape()).c_str(),
           (long long)x.size(1), shape_str(x.shape()).c_str());
}
}  // namespace

// Per channel, over every process: count n = sum_p n_p, mean = sum_p n_p m_p / n,
// var = sum_p n_p (v_p + (m_p - mean)^2) / n (biased);  y = (x - mean) invstd w + b.
// Backward, with A = sum_p sum dy and B = sum_p sum dy xhat:
//   dx = w invstd (dy - A / n - xhat B / n),  dw += sum dy xhat,  db += sum dy  (this process's sums)
// in two kernel passes (dy w invstd with the sums, then the correction) and an add.
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, double momentum, double eps, Collective& group) {
  GS_CHECK(x.dim() >= 2, "sync_batch_norm: input must be (N, C, ...), got %s", shape_str(x.shape()).c_str());
  GS_CHECK(eps > 0, "sync_batch_norm: eps must be > 0, got %g", eps);
  check_channels(x, weight, "weight");
  check_channels(x, bias, "bias");
  check_channels(x, running_mean, "running_mean");
  check_channels(x, running_var, "running_var");
  GS_CHECK(running_mean.defined() == running_var.defined(),
           "sync_batch_norm: running_mean and running_var must both be given or both be undefined");
  const int64_t channels = x.size(1);
  const size_t C = size_t(channels);
  const TensorOptions opt{x.dtype(), x.device()};

  // This process's mean and biased variance: the kernel's running-statistics update at momentum 1
  // leaves the batch mean and unbiased variance (one value per channel: the value, variance 0).
  const double own_count = double(x.numel() / channels);
  std::vector<double> own_mean(C, 0.0), own_var(C, 0.0);
  if (own_count > 1) {
    Tensor m = zeros({channels}, opt), v = zeros({channels}, opt);
    raw::batch_norm(x, Tensor(), Tensor(), m, v, true, 1.0, eps);
    own_mean = m.to_vector<double>(), own_var = v.to_vector<double>();
    for (double& var : own_var) var *= (own_count - 1) / own_count;
  } else if (own_count == 1) {
    own_mean = raw::reshape(raw::contiguous(x), {channels}).to_vector<double>();
  }  // no values here (N = 0): this process adds nothing to the sums and the count
  std::vector<double> sums(C + 1);
  for (size_t i = 0; i < C; ++i) sums[i] = own_count * own_mean[i];
  sums[C] = own_count;
  group.all_reduce_sum(sums);
  const double n = sums[C];
  GS_CHECK(n > 1,
           "sync_batch_norm: expected more than 1 value per channel over the %d processes, got %g (input %s here)",
           group.size(), n, shape_str(x.shape()).c_str());
  std::vector<double> mean(C), m2(C);
  for (size_t i = 0; i < C; ++i) {
    mean[i] = sums[i] / n;
    m2[i] = own_count * (own_var[i] + (own_mean[i] - mean[i]) * (own_mean[i] - mean[i]));
  }
  group.all_reduce_sum(m2);
  std::vector<double> var(C), unbiased(C);
  for (size_t i = 0; i < C; ++i) var[i] = m2[i] / n, unbiased[i] = m2[i] / (n - 1);

  // The output: the kernel in eval mode, normalising with the global statistics.
  raw::BatchNormResult r;
  const Tensor var_t = from_vector(var, {channels}, opt);
  if (own_count > 0) {
    r = raw::batch_norm(x, weight, bias, from_vector(mean, {channels}, opt), var_t, false, 0.0, eps);
  } else {
    std::vector<double> invstd(C);
    for (size_t i = 0; i < C; ++i) invstd[i] = 1.0 / std::sqrt(var[i] + eps);
    r.out = empty(x.shape(), opt);
    r.save_mean = from_vector(mean, {channels}, opt);
    r.save_invstd = from_vector(invstd, {channels}, opt);
  }
  // As the one-process kernel: the unbiased variance; not again in a checkpoint's second run.
  if (running_mean.defined() && !is_recomputing()) {
    auto blend = [momentum](const Tensor& running, const Tensor& batch) {
      Tensor kept = raw::binary_scalar(raw::BinaryOp::Mul, running, 1 - momentum);
      Tensor taken = raw::binary_scalar(raw::BinaryOp::Mul, batch, momentum);
      raw::copy_(running, raw::binary(raw::BinaryOp::Add, kept, taken));
    };
    blend(running_mean, from_vector(mean, {channels}, {running_mean.dtype(), running_mean.device()}));
    blend(running_var, from_vector(unbiased, {channels}, {running_var.dtype(), running_var.device()}));
  }

  Collective* g = &group;  // the group outlives the tape (train::ProcessGroup::world() does)
  record(OpId::SyncBatchNorm, {x, weight, bias}, {r.out}, {x, weight, r.save_mean, r.save_invstd, var_t},
         [g, n, C, eps](BackwardContext& c) {
           if (c.create_graph()) return sync_batch_norm_backward_recorded(c, *g, n, eps);
           const Tensor &X = c.saved(0), &W = c.saved(1);
           // One pass: dy w invstd (the statistics held fixed) and this process's sums of dy xhat, dy.
           raw::BatchNormGrads local;
           if (X.numel() > 0) {
             local = raw::batch_norm_backward(X, c.grad_output(), W, c.saved(2), c.saved(3), false, c.needs_grad(0),
                                              true, true);
           } else {  // no values here: zero sums, still all-reduced below with the other processes'
             const TensorOptions opt{X.dtype(), X.device()};
             local = {empty(X.shape(), opt), zeros({int64_t(C)}, opt), zeros({int64_t(C)}, opt)};
           }
           if (c.needs_grad(1)) c.accumulate(1, local.weight);
           if (c.needs_grad(2)) c.accumulate(2, local.bias);
           if (!c.needs_grad(0)) return;
           std::vector<double> sums = local.bias.to_vector<double>(), dy_xhat = local.weight.to_vector<double>();
           sums.insert(sums.end(), dy_xhat.begin(), dy_xhat.end());  // [A | B]
           g->all_reduce_sum(sums);
           if (X.numel() == 0) {
             c.accumulate(0, local.input);
             return;
           }
           // dx = w invstd dy - w invstd (A / n + xhat B / n). The second term is the eval-mode kernel
           // with the forward's statistics, weight -w invstd B / n and bias -w invstd A / n: one pass.
           const std::vector<double> invstd = c.saved(3).to_vector<double>();
           const std::vector<double> w = W.defined() ? W.to_vector<double>() : std::vector<double>(C, 1.0);
           std::vector<double> slope(C), offset(C);
           for (size_t i = 0; i < C; ++i) {
             const double scale = w[i] * invstd[i];
             offset[i] = -scale * sums[i] / n;
             slope[i] = -scale * sums[C + i] / n;
           }
           const TensorOptions opt{X.dtype(), X.device()};
           const int64_t channels = int64_t(C);
           Tensor correction =
               raw::batch_norm(X, from_vector(slope, {channels}, opt), from_vector(offset, {channels}, opt), c.saved(2),
                               c.saved(4), false, 0.0, eps)
                   .out;
           c.accumulate(0, raw::binary(raw::BinaryOp::Add, local.input, correction));
         });
  return r.out;
}

}  // namespace gs
