// Gradchecks (f64) of the nn ops: conv2d, max/avg/adaptive-avg pooling, batch norm, dropout;
// plus their semantics (running statistics, dropout masks) and their argument errors.
#include <algorithm>
#include <numeric>

#include "autograd/nn_ops.h"
#include "kernels/cpu/all_tables.h"
#include "kernels/registry.h"
#include "tests/autograd/gradcheck_registry.h"

using namespace gs;
using gs::test::rand64;

namespace {

// Distinct values (a shuffled grid 0.05 apart) so no max-pool window has a tie within eps.
Tensor distinct64(const Shape& shape, uint64_t seed) {
  Tensor t = empty(shape, {DType::F64});
  std::vector<int64_t> order(static_cast<size_t>(t.numel()));
  std::iota(order.begin(), order.end(), 0);
  Generator g(seed);
  for (size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[static_cast<size_t>(g.randint(0, int64_t(i)))]);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = 0.05 * double(order[size_t(i)]) - 1.0;
  return t.set_requires_grad(true);
}

Conv2dParams conv_params(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t groups) {
  Conv2dParams p;
  p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw, p.dilation_h = dh, p.dilation_w = dw;
  p.groups = groups;
  return p;
}

Pool2dParams pool_params(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph = 0, int64_t pw = 0) {
  Pool2dParams p;
  p.kernel_h = kh, p.kernel_w = kw, p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw;
  return p;
}

// Puts the default variant of the three conv passes back when a test that selects them ends.
struct RestoreConvVariants {
  ~RestoreConvVariants() {
    for (const char* op : {"conv2d", "conv2d_backward_data", "conv2d_backward_weight"}) kernels::select_variant(op, "");
  }
};

}  // namespace

// ---------------- conv2d ----------------

GS_GRADCHECK_TEST(Conv2d, Padding1WithBias) {
  Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1, 1);
  auto fn = [p](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); };
  EXPECT_GRADCHECK(fn, {rand64({2, 3, 5, 6}, 1), rand64({4, 3, 3, 3}, 2), rand64({4}, 3)});
}

GS_GRADCHECK_TEST(Conv2d, Stride2NonSquareKernelNoBias) {
  Conv2dParams p = conv_params(2, 2, 1, 0, 1, 1, 1);
  auto fn = [p](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), p); };
  EXPECT_GRADCHECK(fn, {rand64({2, 2, 7, 6}, 4), rand64({3, 2, 3, 2}, 5)});
}

GS_GRADCHECK_TEST(Conv2d, DilationAndAsymmetricPadding) {
  Conv2dParams p = conv_params(1, 2, 2, 1, 2, 1, 1);
  auto fn = [p](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); };
  EXPECT_GRADCHECK(fn, {rand64({1, 2, 6, 7}, 6), rand64({2, 2, 3, 3}, 7), rand64({2}, 8)});
}

GS_GRADCHECK_TEST(Conv2d, Groups2) {
  Conv2dParams p = conv_params(2, 1, 1, 1, 1, 1, 2);
  auto fn = [p](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); };
  EXPECT_GRADCHECK(fn, {rand64({2, 4, 5, 5}, 9), rand64({6, 2, 2, 3}, 10), rand64({6}, 11)});
}

GS_GRADCHECK_TEST(Conv2d, Pointwise1x1) {
  auto fn = [](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2]); };
  EXPECT_GRADCHECK(fn, {rand64({2, 3, 3, 4}, 12), rand64({5, 3, 1, 1}, 13), rand64({5}, 14)});
}

GS_GRADCHECK_TEST(Conv2d, OnlyWeightNeedsGrad) {
  Tensor x = rand64({2, 2, 4, 4}, 15).set_requires_grad(false);
  auto fn = [x](const std::vector<Tensor>& in) { return conv2d(x, in[0], Tensor(), conv_params(1, 1, 1, 1, 1, 1, 1)); };
  EXPECT_GRADCHECK(fn, {rand64({3, 2, 3, 3}, 16)});
}

GS_GRADCHECK_TEST(Conv2d, EveryKernelVariant) {
  // The selected variant of all three conv passes, restored afterwards.
  RestoreConvVariants restore;
  Conv2dParams p = conv_params(2, 1, 1, 2, 1, 2, 2);
  auto fn = [p](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); };
  for (const char* variant : {"ref", "im2col"}) {
    for (const char* op : {"conv2d", "conv2d_backward_data", "conv2d_backward_weight"}) {
      kernels::select_variant(op, variant);
    }
    EXPECT_GRADCHECK(fn, {rand64({3, 4, 6, 7}, 17), rand64({4, 2, 3, 2}, 18), rand64({4}, 19)}) << variant;
  }
}

TEST(Conv2d, MatchesHandComputedValue) {
  // 1 channel 3x3 input of ones, 2x2 kernel of [1,2;3,4], bias 0.5 -> every output is 10.5
  Tensor x = ones({1, 1, 3, 3}, {DType::F64});
  Tensor w = from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}, {DType::F64});
  Tensor b = from_vector(std::vector<double>{0.5}, {1}, {DType::F64});
  Tensor y = conv2d(x, w, b);
  ASSERT_EQ(shape_str(y.shape()), "[1,1,2,2]");
  for (double v : y.to_vector<double>()) EXPECT_DOUBLE_EQ(v, 10.5);
}

// Empty shapes, as PyTorch gives them: no images, no output channels, or no input channels (the
// output is then the bias alone). Values and gradients from the definition: y = bias broadcast,
// dx = 0, dw = 0, dbias = the sum of dy. Every CPU variant of the three passes, f32 and f64.
TEST(Conv2d, EmptyShapesOnEveryVariant) {
  RestoreConvVariants restore;
  struct Case {
    Shape x, w;
  };
  const std::vector<Case> cases{{{0, 3, 5, 5}, {4, 3, 3, 3}}, {{2, 3, 5, 5}, {0, 3, 3, 3}}, {{2, 0, 5, 5}, {4, 0, 3, 3}}};
  kernels::register_all_cpu_tables();
  const auto all = kernels::list_variants();
  for (DType dtype : {DType::F32, DType::F64}) {
    for (const std::string& variant : all.at("conv2d")) {
      if (variant == "onednn" && dtype == DType::F64) continue;  // oneDNN's variant is f32 only
      for (const char* op : {"conv2d", "conv2d_backward_data", "conv2d_backward_weight"}) {
        const auto& names = all.at(op);
        kernels::select_variant(op, std::find(names.begin(), names.end(), variant) != names.end() ? variant : "");
      }
      for (const Case& c : cases) {
        const std::string what =
            variant + " " + dtype_name(dtype) + " x " + shape_str(c.x) + " w " + shape_str(c.w);
        auto leaf = [dtype](const Shape& shape, uint64_t seed) {
          return raw::to_dtype(rand64(shape, seed).detach(), dtype).set_requires_grad(true);
        };
        Tensor x = leaf(c.x, 1), w = leaf(c.w, 2), b = leaf({c.w[0]}, 3);
        Tensor y = conv2d(x, w, b, conv_params(1, 1, 1, 1, 1, 1, 1));
        ASSERT_EQ(shape_str(y.shape()), shape_str({c.x[0], c.w[0], 5, 5})) << what;
        const std::vector<double> yv = y.to_vector<double>(), bv = b.to_vector<double>();
        for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(yv[size_t(i)], bv[size_t((i / 25) % c.w[0])]) << what;
        Tensor gy = raw::to_dtype(rand64(y.shape(), 4).detach(), dtype);
        backward(sum(mul(y, gy)));
        for (double v : x.grad().to_vector<double>()) ASSERT_EQ(v, 0.0) << what;
        for (double v : w.grad().to_vector<double>()) ASSERT_EQ(v, 0.0) << what;
        const std::vector<double> gyv = gy.to_vector<double>(), gb = b.grad().to_vector<double>();
        for (int64_t k = 0; k < c.w[0]; ++k) {
          double want = 0;
          for (int64_t i = 0; i < gy.numel(); ++i) want += (i / 25) % c.w[0] == k ? gyv[size_t(i)] : 0.0;
          EXPECT_NEAR(gb[size_t(k)], want, 1e-4) << what << " bias " << k;
        }
      }
    }
  }
}

// ---------------- pooling ----------------

GS_GRADCHECK_TEST(MaxPool2d, Kernel2Stride2) {
  auto fn = [](const std::vector<Tensor>& in) { return max_pool2d(in[0], pool_params(2, 2, 2, 2)); };
  EXPECT_GRADCHECK(fn, {distinct64({2, 3, 4, 6}, 20)});
}

GS_GRADCHECK_TEST(MaxPool2d, OverlappingPaddedNonSquare) {
  auto fn = [](const std::vector<Tensor>& in) { return max_pool2d(in[0], pool_params(3, 2, 2, 1, 1, 1)); };
  EXPECT_GRADCHECK(fn, {distinct64({2, 2, 5, 5}, 21)});
}

TEST(MaxPool2d, GradientGoesToTheMaximum) {
  Tensor x = from_vector(std::vector<double>{1, 5, 2, 3}, {1, 1, 2, 2}, {DType::F64}).set_requires_grad(true);
  Tensor y = max_pool2d(x, pool_params(2, 2, 2, 2));
  EXPECT_DOUBLE_EQ(y.item(), 5);
  backward(sum(y));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1, 0, 0}));
}

GS_GRADCHECK_TEST(AvgPool2d, CountIncludePad) {
  auto fn = [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], pool_params(3, 2, 2, 2, 1, 1), true); };
  EXPECT_GRADCHECK(fn, {rand64({2, 2, 5, 6}, 22)});
}

GS_GRADCHECK_TEST(AvgPool2d, ExcludePad) {
  auto fn = [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], pool_params(3, 3, 1, 2, 1, 1), false); };
  EXPECT_GRADCHECK(fn, {rand64({1, 3, 5, 5}, 23)});
}

TEST(AvgPool2d, PaddingCountsOnlyWhenAsked) {
  // 2x2 ones, kernel 2, stride 2, pad 1: each window sees one real 1 and three zeros.
  Tensor x = ones({1, 1, 2, 2}, {DType::F64});
  Pool2dParams p = pool_params(2, 2, 2, 2, 1, 1);
  for (double v : avg_pool2d(x, p, true).to_vector<double>()) EXPECT_DOUBLE_EQ(v, 0.25);
  for (double v : avg_pool2d(x, p, false).to_vector<double>()) EXPECT_DOUBLE_EQ(v, 1.0);
}

GS_GRADCHECK_TEST(AdaptiveAvgPool2d, OverlappingWindows) {
  auto fn = [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], 3, 4); };
  EXPECT_GRADCHECK(fn, {rand64({2, 2, 5, 7}, 24)});
}

GS_GRADCHECK_TEST(AdaptiveAvgPool2d, GlobalAverage) {
  auto fn = [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], 1, 1); };
  EXPECT_GRADCHECK(fn, {rand64({2, 3, 4, 3}, 25)});
}

// ---------------- batch norm ----------------

GS_GRADCHECK_TEST(BatchNorm, TrainingAffine4d) {
  Tensor rm = zeros({3}, {DType::F64}), rv = ones({3}, {DType::F64});
  auto fn = [rm, rv](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, true); };
  EXPECT_GRADCHECK(fn, {rand64({4, 3, 2, 3}, 30), rand64({3}, 31), rand64({3}, 32)});
}

GS_GRADCHECK_TEST(BatchNorm, TrainingNoAffine2d) {
  Tensor rm = zeros({5}, {DType::F64}), rv = ones({5}, {DType::F64});
  auto fn = [rm, rv](const std::vector<Tensor>& in) { return batch_norm(in[0], Tensor(), Tensor(), rm, rv, true); };
  EXPECT_GRADCHECK(fn, {rand64({6, 5}, 33)});
}

GS_GRADCHECK_TEST(BatchNorm, EvalAffine) {
  Tensor rm = rand64({3}, 34).detach(), rv = rand64({3}, 35, 0.5, 2.0).detach();
  auto fn = [rm, rv](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, false); };
  EXPECT_GRADCHECK(fn, {rand64({2, 3, 2, 2}, 36), rand64({3}, 37), rand64({3}, 38)});
}

GS_GRADCHECK_TEST(BatchNorm, EvalNoAffine) {
  Tensor rm = rand64({4}, 39).detach(), rv = rand64({4}, 40, 0.5, 2.0).detach();
  auto fn = [rm, rv](const std::vector<Tensor>& in) { return batch_norm(in[0], Tensor(), Tensor(), rm, rv, false); };
  EXPECT_GRADCHECK(fn, {rand64({3, 4}, 41)});
}

TEST(BatchNorm, RunningStatisticsFollowPyTorch) {
  // Channel 0 holds {1,2,3,4}, channel 1 holds {0,0,2,2}: means 2.5 and 1, unbiased vars 5/3 and 4/3.
  Tensor x = from_vector(std::vector<double>{1, 2, 0, 0, 3, 4, 2, 2}, {2, 2, 2}, {DType::F64});
  Tensor rm = zeros({2}, {DType::F64}), rv = ones({2}, {DType::F64});
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  auto m = rm.to_vector<double>(), v = rv.to_vector<double>();
  EXPECT_NEAR(m[0], 0.25, 1e-12);
  EXPECT_NEAR(m[1], 0.1, 1e-12);
  EXPECT_NEAR(v[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-12);
  EXPECT_NEAR(v[1], 0.9 + 0.1 * 4.0 / 3.0, 1e-12);
  // Training output uses the biased variance: channel 1 normalises to +-1 (up to eps).
  EXPECT_NEAR(y.to_vector<double>()[2], -1.0 / std::sqrt(1.0 + 1e-5), 1e-12);
  // Eval leaves the running statistics alone and uses them.
  Tensor y_eval = batch_norm(x, Tensor(), Tensor(), rm, rv, false);
  EXPECT_EQ(rm.to_vector<double>(), m);
  EXPECT_NEAR(y_eval.to_vector<double>()[0], (1 - m[0]) / std::sqrt(v[0] + 1e-5), 1e-12);
}

// ---------------- dropout ----------------

GS_GRADCHECK_TEST(Dropout, FixedMask) {
  auto gen = std::make_shared<Generator>(7);
  auto fn = [gen](const std::vector<Tensor>& in) {
    gen->manual_seed(7);  // the same mask on every evaluation
    return dropout(in[0], 0.4, true, gen.get());
  };
  EXPECT_GRADCHECK(fn, {rand64({3, 5, 4}, 50)});
}

TEST(Dropout, InvertedScalingAndEdgeCases) {
  Tensor x = ones({4000}, {DType::F64});
  Generator gen(3);
  auto y = dropout(x, 0.25, true, &gen).to_vector<double>();
  int64_t zeros_count = std::count(y.begin(), y.end(), 0.0);
  for (double v : y) EXPECT_TRUE(v == 0.0 || std::abs(v - 4.0 / 3.0) < 1e-12) << v;
  EXPECT_NEAR(double(zeros_count) / 4000.0, 0.25, 0.03);
  EXPECT_TRUE(dropout(x, 0.0, true, &gen).is_same(x));
  EXPECT_TRUE(dropout(x, 0.5, false, &gen).is_same(x));
  for (double v : dropout(x, 1.0, true, &gen).to_vector<double>()) EXPECT_EQ(v, 0.0);
  // Same seed, same mask; the default generator is used when none is given.
  Generator a(11), b(11);
  EXPECT_EQ(dropout(x, 0.5, true, &a).to_vector<double>(), dropout(x, 0.5, true, &b).to_vector<double>());
  manual_seed(5);
  auto d1 = dropout(x, 0.5, true).to_vector<double>();
  manual_seed(5);
  EXPECT_EQ(dropout(x, 0.5, true).to_vector<double>(), d1);
}

// ---------------- argument errors ----------------

TEST(NnOpErrors, Conv2dNamesShapes) {
  EXPECT_THROW_MSG(conv2d(zeros({64, 16, 14, 14}), zeros({32, 32, 3, 3}), Tensor()),
                   "conv2d: input [64,16,14,14] has 16 channels, weight [32,32,3,3] expects 32");
  EXPECT_THROW_MSG(conv2d(zeros({16, 14, 14}), zeros({32, 16, 3, 3}), Tensor()),
                   "conv2d: input must be 4-d (N,C,H,W), got [16,14,14]");
  EXPECT_THROW_MSG(conv2d(zeros({1, 1, 2, 2}), zeros({1, 1, 3, 3}), Tensor()),
                   "conv2d: kernel 3x3 (dilated 3x3) is bigger than the padded input 2x2");
  EXPECT_THROW_MSG(conv2d(zeros({1, 1, 2, 2}), zeros({1, 1, 2, 2}), Tensor(), conv_params(1, 1, 0, 0, 2, 2, 1)),
                   "is bigger than the padded input");
  Conv2dParams g4 = conv_params(1, 1, 0, 0, 1, 1, 4);
  EXPECT_THROW_MSG(conv2d(zeros({1, 6, 5, 5}), zeros({4, 3, 3, 3}), Tensor(), g4),
                   "conv2d: groups=4 does not divide the 6 input channels of [1,6,5,5]");
  EXPECT_THROW_MSG(conv2d(zeros({1, 8, 5, 5}), zeros({6, 2, 3, 3}), Tensor(), g4),
                   "groups=4 does not divide the 6 output channels");
  EXPECT_THROW_MSG(conv2d(zeros({1, 3, 5, 5}), zeros({4, 3, 3, 3}), zeros({3})), "conv2d: bias [3] must be (4)");
  EXPECT_THROW_MSG(conv2d(zeros({1, 3, 5, 5}), zeros({4, 3, 3, 3}, {DType::F64}), Tensor()), "conv2d");
}

TEST(NnOpErrors, PoolingAndBatchNormAndDropout) {
  EXPECT_THROW_MSG(max_pool2d(zeros({1, 1, 3, 3}), pool_params(4, 4, 1, 1)),
                   "max_pool2d: kernel 4x4 is bigger than the padded input 3x3");
  EXPECT_THROW_MSG(avg_pool2d(zeros({3, 3}), pool_params(2, 2, 2, 2)), "avg_pool2d: input must be 4-d");
  EXPECT_THROW_MSG(max_pool2d(zeros({1, 1, 6, 6}), pool_params(2, 2, 2, 2, 2, 2)), "at most half the kernel");
  EXPECT_THROW_MSG(adaptive_avg_pool2d(zeros({1, 1, 4, 4}), 0, 2), "adaptive_avg_pool2d: output size must be >= 1");
  EXPECT_THROW_MSG(batch_norm(zeros({4, 3, 2, 2}), ones({4}), Tensor(), Tensor(), Tensor(), true),
                   "batch_norm: weight [4] must be (3) for input [4,3,2,2] with 3 channels");
  EXPECT_THROW_MSG(batch_norm(zeros({1, 3}), Tensor(), Tensor(), zeros({3}), ones({3}), true),
                   "expected more than 1 value per channel");
  EXPECT_THROW_MSG(batch_norm(zeros({4}), Tensor(), Tensor(), Tensor(), Tensor(), true), "batch_norm: input must be");
  EXPECT_THROW_MSG(dropout(zeros({4}), 1.5, true), "dropout: p must be in [0, 1], got 1.5");
}
