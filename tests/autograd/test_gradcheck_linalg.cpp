// gradcheck (f64) of matmul (2-d, batched, broadcasting, 1-d rules), softmax, log_softmax,
// cross_entropy (label smoothing, ignore_index, class weights, spatial and unbatched inputs,
// probability targets, every reduction) and mse_loss.
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
  EXPECT_THROW_MSG(matmul(zeros({2, 2, 3}), zeros({3, 3, 1})),
                   "matmul: the batch dimensions of [2,2,3] and [3,3,1] cannot be broadcast");
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
// cross_entropy from primitives, as torch.nn.functional.cross_entropy defines it (its
// nll_loss and the label-smoothing term, each weighted by class; the mean divides by the
// weights of the rows not ignored).
Tensor cross_entropy_composite(const Tensor& logits, const std::vector<int64_t>& target, const CrossEntropyOptions& o) {
  int64_t N = logits.shape()[0], C = logits.shape()[1];
  Tensor lp = log_softmax(logits, 1);
  std::vector<double> w = o.weight.defined() ? o.weight.to_vector<double>() : std::vector<double>(size_t(C), 1.0);
  std::vector<Tensor> rows;
  double counted = 0;
  for (int64_t n = 0; n < N; ++n) {
    Tensor row = reshape(slice(lp, 0, n, n + 1), {C});
    if (target[n] == o.ignore_index) {
      rows.push_back(mul(sum(row), 0.0));
      continue;
    }
    const double w_t = w[size_t(target[n])];
    counted += w_t;
    Tensor nll = mul(neg(reshape(slice(row, 0, target[n], target[n] + 1), {})), w_t);
    Tensor weighted_row = o.weight.defined() ? mul(row, o.weight) : row;
    Tensor smooth = div(neg(sum(weighted_row)), double(C));
    rows.push_back(add(mul(nll, 1 - o.label_smoothing), mul(smooth, o.label_smoothing)));
  }
  Tensor per = stack(rows);
  if (o.reduction == Reduction::None) return per;
  return o.reduction == Reduction::Sum ? sum(per) : div(sum(per), counted);
}

// The same for class probabilities q (N, C): -sum_c w_c ((1-eps) q_c + eps/C) lp_c per row,
// the mean over rows.
Tensor cross_entropy_probabilities_composite(const Tensor& logits, const Tensor& q, const CrossEntropyOptions& o) {
  int64_t N = logits.shape()[0], C = logits.shape()[1];
  Tensor lp = log_softmax(logits, 1);
  std::vector<double> w = o.weight.defined() ? o.weight.to_vector<double>() : std::vector<double>(size_t(C), 1.0);
  std::vector<Tensor> rows;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<Tensor> terms;
    for (int64_t c = 0; c < C; ++c) {
      Tensor q_nc = reshape(slice(slice(q, 0, n, n + 1), 1, c, c + 1), {});
      Tensor target = add(mul(q_nc, 1 - o.label_smoothing), o.label_smoothing / double(C));
      terms.push_back(mul(mul(target, reshape(slice(slice(lp, 0, n, n + 1), 1, c, c + 1), {})), -w[size_t(c)]));
    }
    rows.push_back(sum(stack(terms)));
  }
  Tensor per = stack(rows);
  if (o.reduction == Reduction::None) return per;
  return o.reduction == Reduction::Sum ? sum(per) : div(sum(per), double(N));
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

GS_GRADCHECK_TEST(CrossEntropy, ClassWeights) {
  std::vector<int64_t> labels = {2, -100, 0, 3, 1, 2};
  Tensor target = from_vector<int64_t>(labels, {6});
  Tensor weight = from_vector<double>({0.5, 2.0, 1.25, 3.0}, {4});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    for (double eps : {0.0, 0.2}) {
      CrossEntropyOptions o{eps, -100, r, weight};
      EXPECT_GRADCHECK([&](const V& in) { return cross_entropy(in[0], target, o); }, {rand64({6, 4}, 4, -3, 3)});
      Tensor logits = transposed64({6, 4}, 5, -3, 3);
      expect_close(cross_entropy(logits, target, o), cross_entropy_composite(logits, labels, o), 1e-12);
      auto g_fused = grad(sum(mul(cross_entropy(logits, target, o), 1.7)), {logits});
      auto g_comp = grad(sum(mul(cross_entropy_composite(logits, labels, o), 1.7)), {logits});
      expect_close(g_fused[0], g_comp[0], 1e-12);
    }
  }
  // Mean with weights: sum of w_t (-log p_t) over the sum of w_t. Uniform logits give log C for
  // any weights; a zero weight for every present class is 0/0 = nan, as PyTorch.
  Tensor uniform = zeros({3, 4}, {DType::F64});
  EXPECT_NEAR(cross_entropy(uniform, from_vector<int64_t>({0, 1, 1}, {3}), {.weight = weight}).item(), std::log(4.0),
              1e-12);
  Tensor zero_for_0 = from_vector<double>({0, 1, 1, 1}, {4});
  EXPECT_TRUE(std::isnan(cross_entropy(uniform, from_vector<int64_t>({0, 0, 0}, {3}), {.weight = zero_for_0}).item()));
  EXPECT_THROW_MSG(cross_entropy(uniform, from_vector<int64_t>({0, 1, 1}, {3}), {.weight = zeros({3}, {DType::F64})}),
                   "cross_entropy: weight [3] must be (C) = [4] for logits [3,4]");
  EXPECT_THROW_MSG(cross_entropy(uniform, from_vector<int64_t>({0, 1, 1}, {3}), {.weight = zeros({4})}),
                   "cross_entropy: weight is f32 but logits are f64");
}

// (N, C, d1, ..., dk) logits with (N, d1, ..., dk) targets, and unbatched (C) with (): the
// (N*d, C) rows of the moved class dim, per element for Reduction::None.
GS_GRADCHECK_TEST(CrossEntropy, SpatialAndUnbatched) {
  std::vector<int64_t> labels = {0, 2, -100, 1, 1, 0, 2, 2, 0, 1, 1, 0};  // (2, 3, 2): n, h, w
  Tensor target = from_vector<int64_t>(labels, {2, 3, 2});
  Tensor weight = from_vector<double>({1.5, 0.5, 2.0}, {3});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    CrossEntropyOptions o{0.1, -100, r, weight};
    EXPECT_GRADCHECK([&](const V& in) { return cross_entropy(in[0], target, o); }, {rand64({2, 3, 3, 2}, 6, -2, 2)});
    // The truth: the rows of logits[n, :, h, w], in target order.
    Tensor logits = rand64({2, 3, 3, 2}, 7, -2, 2);
    Tensor rows = reshape(permute(logits, {0, 2, 3, 1}), {12, 3});
    Tensor expected = cross_entropy_composite(rows, labels, o);
    Tensor got = cross_entropy(logits, target, o);
    if (r == Reduction::None) {
      EXPECT_EQ(got.shape(), (Shape{2, 3, 2}));
      got = reshape(got, {12});
    }
    expect_close(got, expected, 1e-12);
  }
  Tensor one = rand64({5}, 8);
  EXPECT_GRADCHECK([](const V& in) { return cross_entropy(in[0], from_vector<int64_t>({3}, {})); }, {one});
  Tensor unbatched = cross_entropy(one, from_vector<int64_t>({3}, {}), {.reduction = Reduction::None});
  EXPECT_EQ(unbatched.dim(), 0);
  EXPECT_NEAR(unbatched.item(), -log_softmax(one, 0).to_vector<double>()[3], 1e-12);
  EXPECT_THROW_MSG(cross_entropy(zeros({2, 3, 4}), from_vector<int64_t>({0, 1}, {2})),
                   "cross_entropy: target [2] must be [2,4] for logits [2,3,4]");
}

GS_GRADCHECK_TEST(CrossEntropy, ProbabilityTargets) {
  Tensor q = softmax(rand64({4, 3}, 9, -2, 2), 1).detach();
  Tensor weight = from_vector<double>({0.5, 2.0, 1.25}, {3});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    for (double eps : {0.0, 0.3}) {
      for (bool weighted : {false, true}) {
        CrossEntropyOptions o{eps, -100, r, weighted ? weight : Tensor()};
        // Differentiable in both the logits and the probabilities.
        EXPECT_GRADCHECK([&](const V& in) { return cross_entropy(in[0], in[1], o); },
                         {rand64({4, 3}, 10, -2, 2), q.detach()});
        Tensor logits = rand64({4, 3}, 11, -2, 2);
        expect_close(cross_entropy(logits, q, o), cross_entropy_probabilities_composite(logits, q, o), 1e-12);
      }
    }
  }
  // A one-hot probability target is the class-index loss.
  Tensor logits = rand64({3, 4}, 12);
  Tensor onehot = from_vector<double>({0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1}, {3, 4});
  EXPECT_NEAR(cross_entropy(logits, onehot).item(), cross_entropy(logits, from_vector<int64_t>({2, 0, 3}, {3})).item(),
              1e-12);
  // Soft labels over a spatial map: C is dim 1.
  Tensor maps = rand64({2, 3, 2, 2}, 13);
  Tensor soft = softmax(rand64({2, 3, 2, 2}, 14), 1).detach();
  EXPECT_GRADCHECK([&](const V& in) { return cross_entropy(in[0], soft, {.weight = weight}); }, {maps});
  EXPECT_THROW_MSG(cross_entropy(logits, zeros({3, 3}, {DType::F64})),
                   "cross_entropy: probability target [3,3] must have the logits' shape [3,4]");
  // torch: "ignore_index is not supported for floating point target"; it was silently unused.
  EXPECT_THROW_MSG(cross_entropy(logits, softmax(logits, 1).detach(), {.ignore_index = 0}),
                   "cross_entropy: ignore_index (0) is for class-index targets, not probabilities");
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
                   "cross_entropy: probability target [2] must have the logits' shape [2,4] (class indices are i64)");
  EXPECT_THROW_MSG(cross_entropy(zeros({}), from_vector<int64_t>({0}, {})), "cross_entropy: logits must be (N, C)");
  EXPECT_THROW_MSG(cross_entropy(logits, from_vector<int64_t>({0}, {1})), "cross_entropy: target [1] must be [2]");
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
