// BatchNorm modules: batch statistics and running-stat updates in training, running statistics
// in eval, num_batches_tracked, affine / track_running_stats off, 1d shapes, errors with paths,
// and which forward a synchronised batch norm takes.
#include "tests/layers/layers_test_helpers.h"

#include <cmath>

#include "tensor/raw_ops.h"

namespace gs::nn {
namespace {

// Per-channel mean and biased/unbiased variance of x (N, C, H, W) computed by hand.
struct ChannelStats {
  std::vector<double> mean, var_biased, var_unbiased;
};
ChannelStats channel_stats(const Tensor& x) {
  auto v = x.to_vector<double>();
  int64_t n = x.size(0), c = x.size(1), l = x.numel() / (n * c);
  ChannelStats s{std::vector<double>(c, 0), std::vector<double>(c, 0), std::vector<double>(c, 0)};
  for (int64_t ci = 0; ci < c; ++ci) {
    double sum = 0, sq = 0;
    for (int64_t ni = 0; ni < n; ++ni)
      for (int64_t li = 0; li < l; ++li) sum += v[(ni * c + ci) * l + li];
    double mean = sum / (n * l);
    for (int64_t ni = 0; ni < n; ++ni)
      for (int64_t li = 0; li < l; ++li) sq += std::pow(v[(ni * c + ci) * l + li] - mean, 2);
    s.mean[ci] = mean;
    s.var_biased[ci] = sq / (n * l);
    s.var_unbiased[ci] = sq / (n * l - 1);
  }
  return s;
}

TEST(BatchNorm, TrainUsesBatchStatsAndUpdatesRunningOnes) {
  BatchNorm2d bn(3);
  Tensor x = randn({4, 3, 5, 5}) * 3.0 + 2.0;
  ChannelStats in = channel_stats(x);
  Tensor y = bn(x);
  ChannelStats out = channel_stats(y);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(out.mean[c], 0, 1e-5);
    EXPECT_NEAR(out.var_biased[c], 1, 1e-3);
  }
  auto rm = bn.running_mean().to_vector<double>(), rv = bn.running_var().to_vector<double>();
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(rm[c], 0.1 * in.mean[c], 1e-5);
    EXPECT_NEAR(rv[c], 0.9 + 0.1 * in.var_unbiased[c], 1e-4);  // unbiased, as PyTorch
  }
  EXPECT_EQ(bn.num_batches_tracked().item(), 1);
  bn(x);
  EXPECT_EQ(bn.num_batches_tracked().item(), 2);
}

TEST(BatchNorm, EvalUsesRunningStatsAndChangesNothing) {
  BatchNorm2d bn(2);
  raw::copy_(bn.running_mean(), from_vector<float>({1, -2}, {2}));
  raw::copy_(bn.running_var(), from_vector<float>({4, 0.25}, {2}));
  raw::copy_(bn.weight(), from_vector<float>({2, 1}, {2}));
  raw::copy_(bn.bias(), from_vector<float>({0.5, 0}, {2}));
  bn.eval();
  Tensor x = randn({2, 2, 3, 3});
  Tensor y = bn(x);
  auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  double mean[2] = {1, -2}, var[2] = {4, 0.25}, w[2] = {2, 1}, b[2] = {0.5, 0};
  for (size_t i = 0; i < xv.size(); ++i) {
    int c = static_cast<int>((i / 9) % 2);
    EXPECT_NEAR(yv[i], (xv[i] - mean[c]) / std::sqrt(var[c] + 1e-5) * w[c] + b[c], 1e-5);
  }
  EXPECT_EQ(bn.running_mean().to_vector<float>(), (std::vector<float>{1, -2}));
  EXPECT_EQ(bn.num_batches_tracked().item(), 0);
}

TEST(BatchNorm, WithoutRunningStatsEvalStillUsesTheBatch) {
  BatchNorm2d bn(2, 1e-5, 0.1, /*affine=*/true, /*track_running_stats=*/false);
  EXPECT_EQ(test::keys_of(bn.state_dict()), (std::vector<std::string>{"weight", "bias"}));
  bn.eval();
  ChannelStats out = channel_stats(bn(randn({3, 2, 2, 2}) + 5.0));
  EXPECT_NEAR(out.mean[0], 0, 1e-5);
  EXPECT_NEAR(out.mean[1], 0, 1e-5);
  BatchNorm2d plain(2, 1e-5, 0.1, /*affine=*/false);
  EXPECT_EQ(plain.num_parameters(), 0);
  EXPECT_EQ(test::keys_of(plain.state_dict()),
            (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
}

TEST(BatchNorm, OneDimensionalShapes) {
  BatchNorm1d bn(3);
  EXPECT_EQ(shape_str(bn(randn({4, 3})).shape()), shape_str({4, 3}));
  Tensor x = randn({4, 3, 6}) * 2.0;
  Tensor y = bn(x);
  EXPECT_EQ(shape_str(y.shape()), shape_str({4, 3, 6}));
  ChannelStats out = channel_stats(y);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(out.var_biased[c], 1, 1e-3);
  EXPECT_EQ(bn.extra_repr(), "3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True");
}

TEST(BatchNorm, ErrorsNameTheModulePath) {
  auto net = std::make_shared<Sequential>(
      std::initializer_list<ModulePtr>{std::make_shared<Conv2d>(1, 3, 3), std::make_shared<BatchNorm2d>(4)});
  EXPECT_THROW_MSG((*net)(randn({2, 1, 6, 6})),
                   "batch_norm (1): input [2,3,4,4] has 3 channels, BatchNorm2d expects 4");
  EXPECT_THROW_MSG(BatchNorm2d(3)(randn({2, 3})), "BatchNorm2d expects input (N, C, H, W), got [2,3]");
  EXPECT_THROW_MSG(BatchNorm1d(0), "num_features must be positive");
}

// convert_sync_batchnorm reaches every batch norm of the tree; the forward synchronises in
// training with more than one process, and is the one-process batch norm otherwise.
TEST(BatchNorm, SyncGroupIsUsedInTrainingWithMoreThanOneProcess) {
  ModulePtr net = make_model("fashionnet", 1, 10, 28);
  test::MirrorGroup two(2), one(1);
  EXPECT_EQ(convert_sync_batchnorm(*net, &two), 2);
  auto& bn = dynamic_cast<BatchNormBase&>(*net->child("1"));
  EXPECT_EQ(bn.sync_group(), &two);
  EXPECT_EQ(dynamic_cast<BatchNormBase&>(*net->child("5")).sync_group(), &two);

  Tensor x = randn({3, 1, 28, 28});
  Tensor h = (*net->child("0"))(x);
  BatchNorm2d plain(32);
  Tensor expected = plain(h);
  Tensor y = bn(h);
  EXPECT_EQ(two.calls, 2);  // the counts and means, then the squared deviations
  // The mirrored batch has this batch's statistics; the unbiased variance counts both processes.
  test::expect_close(y, expected, 1e-4, "output");
  test::expect_close(bn.running_mean(), plain.running_mean(), 1e-6, "running_mean");
  EXPECT_EQ(bn.num_batches_tracked().item(), 1);
  const double n = 3 * 28 * 28;
  auto rv = bn.running_var().to_vector<double>(), rv1 = plain.running_var().to_vector<double>();
  for (size_t c = 0; c < rv.size(); ++c) {
    const double biased = (rv1[c] - 0.9) / 0.1 * (n - 1) / n;
    EXPECT_NEAR(rv[c], 0.9 + 0.1 * biased * 2 * n / (2 * n - 1), 1e-5) << c;
  }
  EXPECT_EQ(shape_str((*net)(x).shape()), "[3,10]");
  EXPECT_EQ(two.calls, 2 + 2 * 2);

  net->eval();
  (*net)(x);
  EXPECT_EQ(two.calls, 2 + 2 * 2);  // eval uses the running statistics
  net->train();
  convert_sync_batchnorm(*net, &one);
  (*net)(x);
  EXPECT_EQ(one.calls, 0);  // one process: the fused one-process kernel
  EXPECT_EQ(convert_sync_batchnorm(*net, nullptr), 2);
  EXPECT_EQ(bn.sync_group(), nullptr);
  EXPECT_EQ(convert_sync_batchnorm(*make_model("mlp", 1, 10, 28), &two), 0);
}

}  // namespace
}  // namespace gs::nn
