// Ops across processes: the all-reduce, whose backward is another all-reduce, and the batch norm
// built on it. The group does the talking (autograd/collective.h).
#include "autograd/collective.h"

#include "autograd/ops.h"
#include "tensor/error.h"
#include "tensor/raw_ops.h"

namespace gs {

// y = sum_p x_p;  dx_p += sum_q dy_q  (each process's y feeds its own loss, and all of them are y)
Tensor all_reduce_sum(const Tensor& x, Collective& group) {
  Tensor out = raw::clone(x);
  group.all_reduce_sum({out});
  Collective* g = &group;  // the group outlives the tape (train::ProcessGroup::world() does)
  record(OpId::AllReduceSum, {x}, {out}, {}, [g](BackwardContext& c) {
    Tensor total = raw::clone(c.grad_output());
    g->all_reduce_sum({total});
    c.accumulate(0, total);
  });
  return out;
}

namespace {
void check_channels(const Tensor& x, const Tensor& t, const char* what) {
  GS_CHECK(!t.defined() || (t.dim() == 1 && t.size(0) == x.size(1)),
           "sync_batch_norm: %s %s must be (%lld) for input %s", what, shape_str(t.shape()).c_str(),
           (long long)x.size(1), shape_str(x.shape()).c_str());
}
}  // namespace

// mean = sum_p sum_{n,l} x / count,  var = sum_p sum_{n,l} (x - mean)^2 / count (two passes, as
// accurate as the one-process kernel), y = (x - mean) / sqrt(var + eps) * weight + bias.
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, double momentum, double eps, Collective& group) {
  GS_CHECK(x.dim() >= 2, "sync_batch_norm: input must be (N, C, ...), got %s", shape_str(x.shape()).c_str());
  GS_CHECK(eps > 0, "sync_batch_norm: eps must be > 0, got %g", eps);
  check_channels(x, weight, "weight");
  check_channels(x, bias, "bias");
  check_channels(x, running_mean, "running_mean");
  check_channels(x, running_var, "running_var");
  const int64_t channels = x.size(1);
  std::vector<int64_t> dims{0};           // every dim but the channels'
  Shape per_channel(size_t(x.dim()), 1);  // (1, C, 1, ...): broadcasts against x
  per_channel[1] = channels;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);

  Tensor count = from_vector<double>({double(x.numel() / channels)}, {1});
  group.all_reduce_sum({count});
  const double n = count.to_vector<double>()[0];
  GS_CHECK(n > 1,
           "sync_batch_norm: expected more than 1 value per channel over the %d processes, got %g (input %s here)",
           group.size(), n, shape_str(x.shape()).c_str());

  Tensor mean = all_reduce_sum(sum(x, dims, true), group) / n;
  Tensor centred = x - mean;
  Tensor var = all_reduce_sum(sum(centred * centred, dims, true), group) / n;
  Tensor y = centred / sqrt(var + eps);
  if (weight.defined()) y = y * reshape(weight, per_channel);
  if (bias.defined()) y = y + reshape(bias, per_channel);

  if (running_mean.defined()) {  // as the one-process kernel: the unbiased variance
    auto blend = [momentum](const Tensor& running, const Tensor& batch) {
      Tensor kept = raw::binary_scalar(raw::BinaryOp::Mul, running, 1 - momentum);
      Tensor taken = raw::binary_scalar(raw::BinaryOp::Mul, raw::reshape(batch, running.shape()), momentum);
      raw::copy_(running, raw::binary(raw::BinaryOp::Add, kept, taken));
    };
    blend(running_mean, mean.detach());
    blend(running_var, raw::binary_scalar(raw::BinaryOp::Mul, var.detach(), n / (n - 1)));
  }
  return y;
}

}  // namespace gs
