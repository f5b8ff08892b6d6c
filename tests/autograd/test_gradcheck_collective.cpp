// gradcheck (f64) of the ops across processes, in one process: a mirror group stands for P
// processes that all hold this process's values, so its all-reduce multiplies by P. Perturbing
// an input then perturbs it on every process at once, and by that symmetry the finite difference
// of this process's loss equals the gradient of the sum of all the losses, which is what the
// backward computes. A backward that did not all-reduce the gradients would be P times too small.
// The fused op is also checked against its maths composed of all_reduce_sum and elementwise ops.
// The real thing, across two processes with finite differences, is in tests/distributed.
#include "autograd/collective.h"
#include "autograd/nn_ops.h"
#include "tests/autograd/gradcheck_registry.h"

using namespace gs;
using namespace gs::test;
using V = std::vector<Tensor>;

namespace {
// The reference: sync_batch_norm's maths composed of all_reduce_sum and elementwise ops, whose
// backward is autograd's (two passes for the variance, as the kernels).
Tensor composed_sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                                Collective& group) {
  std::vector<int64_t> dims{0};
  Shape per_channel(size_t(x.dim()), 1);
  per_channel[1] = x.size(1);
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  std::vector<double> count{double(x.numel() / x.size(1))};
  group.all_reduce_sum(count);
  Tensor mean = all_reduce_sum(sum(x, dims, true), group) / count[0];
  Tensor centred = x - mean;
  Tensor var = all_reduce_sum(sum(centred * centred, dims, true), group) / count[0];
  Tensor y = centred / sqrt(var + eps);
  if (weight.defined()) y = y * reshape(weight, per_channel);
  if (bias.defined()) y = y + reshape(bias, per_channel);
  return y;
}
}  // namespace

GS_GRADCHECK_TEST(AllReduceSum, MirroredProcesses) {
  for (int processes : {1, 3}) {
    auto group = std::make_shared<MirrorGroup>(processes);
    EXPECT_GRADCHECK([group](const V& in) { return tanh(all_reduce_sum(in[0] * in[1], *group)); },
                     {rand64({3, 4}, 1, -0.5, 0.5), rand64({4}, 2)});
  }
}

TEST(AllReduceSum, ForwardSumsAndBackwardSumsTheGradients) {
  MirrorGroup group(3);
  Tensor x = from_vector<double>({1, 2}, {2});
  x.set_requires_grad(true);
  Tensor y = all_reduce_sum(x, group);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{3, 6}));
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>{1, 2}));  // the input is left alone
  EXPECT_EQ(group.calls, 1);
  backward(sum(y * from_vector<double>({10, 20}, {2})));
  EXPECT_EQ(group.calls, 2);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{30, 60}));
}

GS_GRADCHECK_TEST(SyncBatchNorm, MirroredProcesses) {
  auto group = std::make_shared<MirrorGroup>(2);
  auto affine = [group](const V& in) {
    return sync_batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), 0.1, 1e-5, *group);
  };
  EXPECT_GRADCHECK(affine, {rand64({3, 2, 2, 3}, 3), rand64({2}, 4), rand64({2}, 5)});
  auto plain = [group](const V& in) {
    return sync_batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, *group);
  };
  EXPECT_GRADCHECK(plain, {transposed64({4, 3}, 6)});
  EXPECT_GRADCHECK(plain, {rand64({2, 3, 5}, 7)});
  EXPECT_GRADCHECK(plain, {rand64({1, 3}, 12)});  // one value per channel here, two over the group
}

// The create_graph gradients equal the plain ones (the recorded formula is the same maths), on
// P = 3 mirrored processes.
TEST(SyncBatchNorm, CreateGraphGivesThePlainGradients) {
  MirrorGroup group(3);
  Tensor x = rand64({4, 3, 2}, 1), w = rand64({3}, 2), b = rand64({3}, 3);
  Tensor y = sync_batch_norm(x, w, b, Tensor(), Tensor(), 0.1, 1e-5, group);
  Tensor loss = sum(mul(mul(y, y), rand64({4, 3, 2}, 4).detach()));
  auto plain = grad(loss, {x, w, b}, Tensor(), true);
  auto recorded = grad(loss, {x, w, b}, Tensor(), false, true);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(recorded[i].requires_grad());
    expect_close(recorded[i].detach(), plain[i], 1e-12, "gradient " + std::to_string(i));
  }
}
// The fused op against the same maths composed of primitives: outputs and every gradient, with
// a weighted loss so that each output element counts differently.
TEST(SyncBatchNorm, FusedEqualsTheComposedReference) {
  for (int processes : {2, 5}) {
    MirrorGroup group(processes);
    Tensor x = rand64({3, 4, 2, 5}, 13, -3, 5), w = rand64({4}, 14), b = rand64({4}, 15);
    Tensor g = rand64({3, 4, 2, 5}, 16).detach();
    Tensor y = sync_batch_norm(x, w, b, Tensor(), Tensor(), 0.1, 1e-5, group);
    std::vector<Tensor> fused = grad(sum(y * g), {x, w, b});
    Tensor y_ref = composed_sync_batch_norm(x, w, b, 1e-5, group);
    std::vector<Tensor> ref = grad(sum(y_ref * g), {x, w, b});
    expect_close(y, y_ref, 1e-12, "output");
    expect_close(fused[0], ref[0], 1e-11, "input gradient");
    expect_close(fused[1], ref[1], 1e-11, "weight gradient");
    expect_close(fused[2], ref[2], 1e-11, "bias gradient");
  }
}

// The mirrored batch is this one repeated: the same mean and biased variance, so the output is
// the one-process batch norm's; the unbiased running variance counts every process's values.
TEST(SyncBatchNorm, MirroredBatchNormalisesAsOneProcessAndCountsEveryValue) {
  MirrorGroup group(3);
  Tensor x = rand64({4, 3, 2, 2}, 8).detach(), w = rand64({3}, 9).detach(), b = rand64({3}, 10).detach();
  Tensor rm = zeros({3}, {DType::F64}), rv = ones({3}, {DType::F64});
  Tensor rm1 = zeros({3}, {DType::F64}), rv1 = ones({3}, {DType::F64});
  Tensor y = sync_batch_norm(x, w, b, rm, rv, 0.1, 1e-5, group);
  expect_close(y, batch_norm(x, w, b, rm1, rv1, true, 0.1, 1e-5), 1e-12, "output");
  expect_close(rm, rm1, 1e-12, "running_mean");
  const double n = 4 * 2 * 2;  // values per channel here; 3 n over the group
  Tensor biased = raw::binary_scalar(raw::BinaryOp::Mul, raw::binary_scalar(raw::BinaryOp::Sub, rv1, 0.9), (n - 1) / n);
  Tensor expected_rv =
      raw::binary_scalar(raw::BinaryOp::Add, raw::binary_scalar(raw::BinaryOp::Mul, biased, 3 * n / (3 * n - 1)), 0.9);
  expect_close(rv, expected_rv, 1e-12, "running_var");
  EXPECT_EQ(group.calls, 2);  // the counts and means, then the squared deviations
}

TEST(SyncBatchNorm, ErrorsNameTheOpAndShapes) {
  MirrorGroup one(1), two(2);
  EXPECT_THROW_MSG(sync_batch_norm(zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, one),
                   "sync_batch_norm: expected more than 1 value per channel over the 1 processes, got 1 (input [1,3]");
  // One value per channel here, two over the group: that is enough.
  EXPECT_NO_THROW(sync_batch_norm(rand64({1, 3}, 11), Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, two));
  EXPECT_THROW_MSG(sync_batch_norm(zeros({2, 3}), zeros({4}), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, two),
                   "sync_batch_norm: weight [4] must be (3) for input [2,3]");
  EXPECT_THROW_MSG(sync_batch_norm(zeros({2}), Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, two),
                   "sync_batch_norm: input must be (N, C, ...), got [2]");
  // No values anywhere: every process's N is 0.
  EXPECT_THROW_MSG(sync_batch_norm(zeros({0, 3}), Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, two),
                   "over the 2 processes, got 0 (input [0,3] here)");
  EXPECT_THROW_MSG(sync_batch_norm(zeros({2, 3}), Tensor(), Tensor(), zeros({3}), Tensor(), 0.1, 1e-5, two),
                   "sync_batch_norm: running_mean and running_var must both be given or both be undefined");
}
