// gradcheck (f64) of matmul (2-d, batched, broadcasting, 1-d rules), softmax, log_softmax,
// cross_entropy (label smoothing, ignore_index, every reduction) and mse_loss.
#include "tests/autograd/gradcheck_registry.h"

using namespace gs;
using namespace gs::test;
using V = std::vector<Tensor>;

namespace {
Tensor mm_fn(const V& in) { return matmul(in[0], in[1]); }
}  // namespace

GS_GRADCHECK_TEST(Matmul, TwoD) {
  EXPECT_GRADCHECK(mm_fn, {rand64({3, 4}, 1), rand64({4, 5}, 2)});
  EXPECT_GRADCHECK(mm_fn, {transposed64({3, 4}, 3), transposed64({4, 2}, 4)});
  EXPECT_GRADCHECK(mm_fn, {strided64({3, 4}, 5), rand64({4, 1}, 6)});
}

GS_GRADCHECK_TEST(Matmul, BatchedAndBroadcast) {
  EXPECT_GRADCHECK(mm_fn, {rand64({2, 3, 4}, 1), rand64({2, 4, 5}, 2)});
  EXPECT_GRADCHECK(mm_fn, {rand64({3, 4}, 3), rand64({2, 4, 5}, 4)});
  EXPECT_GRADCHECK(mm_fn, {rand64({2, 1, 3, 4}, 5), rand64({3, 4, 2}, 6)});
  // A batch against one matrix: the forward and the matrix's gradient are one GEMM over all rows.
  EXPECT_GRADCHECK(mm_fn, {rand64({2, 3, 4}, 7), rand64({4, 5}, 8)});
  EXPECT_GRADCHECK(mm_fn, {rand64({2, 2, 3, 4}, 9), transposed64({4, 2}, 10)});
  EXPECT_GRADCHECK(mm_fn, {strided64({2, 3, 4}, 11), rand64({4, 3}, 12)});
}

GS_GRADCHECK_TEST(Matmul, OneD) {
  EXPECT_GRADCHECK(mm_fn, {rand64({4}, 1), rand64({4, 3}, 2)});
  EXPECT_GRADCHECK(mm_fn, {rand64({3, 4}, 3), rand64({4}, 4)});
  EXPECT_GRADCHECK(mm_fn, {rand64({4}, 5), rand64({4}, 6)});
  EXPECT_GRADCHECK(mm_fn, {rand64({4}, 7), rand64({2, 4, 3}, 8)});
  EXPECT_GRADCHECK(mm_fn, {rand64({2, 3, 4}, 9), rand64({4}, 10)});
}

TEST(Matmul, ShapesAndValues) {
  Tensor a = from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3}), v = from_vector<double>({1, 0, -1}, {3});
  EXPECT_EQ(matmul(a, v).to_vector<double>(), (std::vector<double>{-2, -2}));
  EXPECT_EQ(matmul(v, raw::transpose(a, 0, 1)).to_vector<double>(), (std::vector<double>{-2, -2}));
  EXPECT_EQ(matmul(v, v).dim(), 0);
  EXPECT_EQ(matmul(v, v).item(), 2);
  EXPECT_EQ(matmul(zeros({5, 1, 2, 3}), zeros({4, 3, 7})).shape(), (Shape{5, 4, 2, 7}));
  EXPECT_EQ(matmul(zeros({3}), zeros({2, 3, 7})).shape(), (Shape{2, 7}));
  EXPECT_THROW_MSG(matmul(zeros({2, 3}), zeros({2, 3})), "matmul: inner dimensions differ, [2,3] @ [2,3] (3 vs 2)");
  EXPECT_THROW_MSG(matmul(zeros({2, 2, 3}), zeros({3, 3, 1})), "matmul: shapes [2] and [3] cannot be broadcast");
}

GS_GRADCHECK_TEST(Softmax, Dims) {
  EXPECT_GRADCHECK([](const V& in) { return softmax(in[0], -1); }, {rand64({3, 5}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return softmax(in[0], 0); }, {transposed64({3, 4}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return softmax(in[0], 1); }, {rand64({2, 3, 4}, 3)});
}

GS_GRADCHECK_TEST(LogSoftmax, Dims) {
  EXPECT_GRADCHECK([](const V& in) { return log_softmax(in[0], -1); }, {strided64({3, 5}, 1)});
  EXPECT_GRADCHECK([](const V& in) { return log_softmax(in[0], 1); }, {rand64({2, 3, 4}, 2)});
  EXPECT_GRADCHECK([](const V& in) { return log_softmax(in[0], 0); }, {rand64({4}, 3)});
}

TEST(Softmax, ValuesAndZeroD) {
  Tensor x = from_vector<double>({0, std::log(3.0), 1000, 1000}, {2, 2});
  expect_close(softmax(x), from_vector<double>({0.25, 0.75, 0.5, 0.5}, {2, 2}), 1e-12);
  expect_close(exp(log_softmax(x, 1)), softmax(x, 1), 1e-12);
  Tensor s = rand64({}, 1);
  EXPECT_EQ(softmax(s).item(), 1.0);
  EXPECT_EQ(grad(softmax(s), {s})[0].item(), 0.0);
}

namespace {
// cross_entropy from primitives, as torch.nn.functional.cross_entropy defines it.
Tensor cross_entropy_composite(const Tensor& logits, const std::vector<int64_t>& target, const CrossEntropyOptions& o) {
  int64_t N = logits.shape()[0], C = logits.shape()[1];
  Tensor lp = log_softmax(logits, 1);
  std::vector<Tensor> rows;
  int64_t counted = 0;
  for (int64_t n = 0; n < N; ++n) {
    Tensor row = reshape(slice(lp, 0, n, n + 1), {C});
    if (target[n] == o.ignore_index) {
      rows.push_back(mul(sum(row), 0.0));
      continue;
    }
    counted++;
    Tensor nll = neg(reshape(slice(row, 0, target[n], target[n] + 1), {}));
    Tensor smooth = div(neg(sum(row)), double(C));
    rows.push_back(add(mul(nll, 1 - o.label_smoothing), mul(smooth, o.label_smoothing)));
  }
  Tensor per = stack(rows);
  if (o.reduction == Reduction::None) return per;
  return o.reduction == Reduction::Sum ? sum(per) : div(sum(per), double(counted));
}
}  // namespace

GS_GRADCHECK_TEST(CrossEntropy, SmoothingIgnoreAndReductions) {
  std::vector<int64_t> labels = {2, -100, 0, 3, 1};
  Tensor target = from_vector<int64_t>(labels, {5});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    for (double eps : {0.0, 0.1}) {
      CrossEntropyOptions o{eps, -100, r};
      EXPECT_GRADCHECK([&](const V& in) { return cross_entropy(in[0], target, o); }, {rand64({5, 4}, 1, -3, 3)});
      Tensor logits = transposed64({5, 4}, 2, -3, 3);
      expect_close(cross_entropy(logits, target, o), cross_entropy_composite(logits, labels, o), 1e-12);
      // The fused backward equals the composite's.
      auto g_fused = grad(sum(mul(cross_entropy(logits, target, o), 1.7)), {logits});
      auto g_comp = grad(sum(mul(cross_entropy_composite(logits, labels, o), 1.7)), {logits});
      expect_close(g_fused[0], g_comp[0], 1e-12);
    }
  }
  CrossEntropyOptions other_ignore{0.1, 3, Reduction::Mean};
  Tensor target3 = from_vector<int64_t>({3, 1, 0, 3, 2}, {5});
  EXPECT_GRADCHECK([&](const V& in) { return cross_entropy(in[0], target3, other_ignore); }, {rand64({5, 4}, 3)});
}

TEST(CrossEntropy, KnownValuesAndErrors) {
  // Uniform logits: loss = log C whatever the target; torch gives 1.3862943611198906 for C = 4.
  Tensor logits = zeros({2, 4}, {DType::F64});
  EXPECT_NEAR(cross_entropy(logits, from_vector<int64_t>({0, 3}, {2})).item(), std::log(4.0), 1e-12);
  // All rows ignored: the mean is nan, as PyTorch.
  EXPECT_TRUE(std::isnan(cross_entropy(logits, from_vector<int64_t>({-100, -100}, {2})).item()));
  EXPECT_THROW_MSG(cross_entropy(logits, from_vector<int64_t>({0, 4}, {2})),
                   "cross_entropy: target 4 is out of range for 4 classes");
  EXPECT_THROW_MSG(cross_entropy(logits, from_vector<double>({0, 1}, {2})),
                   "cross_entropy: target must have dtype i64");
  EXPECT_THROW_MSG(cross_entropy(zeros({2, 4, 1}), from_vector<int64_t>({0, 1}, {2})),
                   "cross_entropy: logits must be (N, C)");
  EXPECT_THROW_MSG(cross_entropy(logits, from_vector<int64_t>({0}, {1})), "cross_entropy: target [1] must be (N)");
}

GS_GRADCHECK_TEST(MseLoss, Reductions) {
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    EXPECT_GRADCHECK([r](const V& in) { return mse_loss(in[0], in[1], r); },
                     {rand64({3, 4}, 1), transposed64({3, 4}, 2)});
  }
  Tensor a = from_vector<double>({1, 2}, {2}), b = from_vector<double>({3, 2}, {2});
  EXPECT_EQ(mse_loss(a, b).item(), 2.0);
  EXPECT_EQ(mse_loss(a, b, Reduction::Sum).item(), 4.0);
  EXPECT_THROW_MSG(mse_loss(a, zeros({3}, {DType::F64})), "mse_loss: input [2] and target [3] must have one shape");
}
