// Ops across the processes of a data-parallel run: the interface of a group of processes that
// sum tensors together (train::ProcessGroup implements it over MPI; declared here so that
// autograd and layers use a group without knowing how it talks), the differentiable all-reduce,
// and batch norm over the statistics of every process's batch (torch.nn.SyncBatchNorm).
//
//   Tensor total = gs::all_reduce_sum(gs::sum(x, {0}), group);  // the sum over every process's x
//
// The gradients are those of the sum of the processes' losses, as in torch's DDP (which then
// averages the parameter gradients): every process's output of an all-reduce is the sum of its
// inputs, so the gradient of an input is the sum of the output gradients over the processes, and
// the backward of an all-reduce-sum is an all-reduce-sum. Every process must run the same ops in
// the same order, forward and backward, or the collectives wait for each other for ever.
#pragma once
#include <vector>

#include "autograd/tape.h"

namespace gs {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int size() const = 0;  // the number of processes
  // In place: each tensor (f32 or f64, any device; the same shapes on every process) becomes the
  // element-wise sum of its values over the processes.
  virtual void all_reduce_sum(const std::vector<Tensor>& tensors) = 0;
  // The same for host values, in place.
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
};

// y = sum over the processes of x;  dx += sum over the processes of dy.
Tensor all_reduce_sum(const Tensor& x, Collective& group);

// Training-mode batch norm whose statistics are those of the union of every process's batch,
// as torch.nn.SyncBatchNorm: with each of P processes holding B images, the outputs and
// gradients are those of one process normalising all P x B. x (N, C, ...), the same C
// everywhere; N may differ between processes and be 0 on some (the count over all processes
// must exceed 1 per channel). weight and bias (C) or undefined; running_mean and running_var
// (C), both or neither, updated in place from the global mean and unbiased variance. A fused op
// on the batch-norm kernels: forward, two all-reduces of C values combine each process's count,
// mean and variance (Chan et al.'s pairwise formula, no E[x^2] - E[x]^2 cancellation); backward,
// one all-reduce of the sums of dy and dy xhat, from which dx = w invstd (dy - sum dy / count -
// xhat sum(dy xhat) / count). The weight and bias gradients are this process's share (summed
// over the processes they are the whole batch's; DDP's average then divides by P, as for every
// other parameter).
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, double momentum, double eps, Collective& group);

}  // namespace gs
