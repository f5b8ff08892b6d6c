// The eval-mode Conv2d + BatchNorm2d (+ ReLU) fusion against the three layers run one by one:
// folded weights on random running statistics, affine and not, with and without conv bias, f32
// and f64; Sequential takes the fused path only under no_grad and steps aside for hooks.
#include <gtest/gtest.h>

#include "autograd/tape.h"
#include "layers/activation.h"
#include "layers/container.h"
#include "layers/fused.h"
#include "layers/zoo.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"
#include "tests/helpers.h"

using namespace gs;

namespace {

// Random running statistics and affine parameters, so the fold is not the identity.
void randomize(nn::BatchNormBase& bn, uint64_t seed) {
  Generator g(seed);
  NoGradGuard no_grad;
  for (auto& [name, t] : bn.state_dict()) {
    if (!is_floating(t.dtype())) continue;
    const bool var = name.find("running_var") != std::string::npos;
    Tensor r = raw::contiguous(rand({t.numel()}, {t.dtype()}, &g));
    Tensor v = var ? r * 2.0 + 0.2 : r * 2.0 - 1.0;
    raw::copy_(t, raw::reshape(v, t.shape()));
  }
}

Tensor unfused(nn::Conv2d& conv, nn::BatchNormBase& bn, bool relu, const Tensor& x) {
  Tensor y = bn(conv(x));
  return relu ? gs::relu(y) : y;
}

TEST(FusedConvBn, MatchesTheLayersOneByOne) {
  for (DType dtype : {DType::F32, DType::F64}) {
    for (bool conv_bias : {true, false})
      for (bool affine : {true, false})
        for (bool relu : {true, false}) {
          manual_seed(3);
          nn::Conv2d conv(
              nn::Conv2dOptions{.in_channels = 4, .out_channels = 6, .kernel_h = 3, .padding = 1, .bias = conv_bias});
          nn::BatchNorm2d bn(nn::BatchNormOptions{.num_features = 6, .affine = affine});
          conv.to(dtype);
          bn.to(dtype);
          randomize(bn, 11);
          bn.eval();
          Tensor x = randn({3, 4, 9, 7}, {dtype});
          Tensor want = unfused(conv, bn, relu, x);
          NoGradGuard no_grad;
          ASSERT_TRUE(nn::can_fuse_conv_bn(conv, bn));
          Tensor got = nn::fused_conv_bn(conv, bn, relu, x);
          test::expect_close(got, want, dtype == DType::F32 ? 1e-5 : 1e-12);
        }
  }
}

TEST(FusedConvBn, OnlyInEvalUnderNoGradWithoutHooks) {
  nn::Conv2d conv(2, 3, 3);
  nn::BatchNorm2d bn(3);
  EXPECT_FALSE(nn::can_fuse_conv_bn(conv, bn));  // grad mode on, bn training
  NoGradGuard no_grad;
  EXPECT_FALSE(nn::can_fuse_conv_bn(conv, bn));  // bn training: batch statistics
  bn.eval();
  EXPECT_TRUE(nn::can_fuse_conv_bn(conv, bn));
  int id = bn.register_forward_hook([](nn::Module&, const Tensor&, const Tensor&) {});
  EXPECT_FALSE(nn::can_fuse_conv_bn(conv, bn));
  bn.remove_forward_hook(id);
  nn::BatchNorm2d untracked(nn::BatchNormOptions{.num_features = 3, .track_running_stats = false});
  untracked.eval();
  EXPECT_FALSE(nn::can_fuse_conv_bn(conv, untracked));
}

TEST(FusedConvBn, FashionnetEvalOutputIsUnchangedAndHooksStillSeeEveryLayer) {
  manual_seed(5);
  auto model = nn::make_model("fashionnet");
  auto& seq = dynamic_cast<nn::Sequential&>(*model);
  randomize(dynamic_cast<nn::BatchNormBase&>(*seq[1]), 21);
  randomize(dynamic_cast<nn::BatchNormBase&>(*seq[5]), 22);
  model->eval();
  Tensor x = randn({5, 1, 28, 28});
  Tensor layer_by_layer = (*model)(x).detach();  // grad mode on: no fusion
  Tensor fused;
  {
    NoGradGuard no_grad;
    fused = (*model)(x);
  }
  test::expect_close(fused, layer_by_layer, 1e-5);
  int calls = 0;
  int id = seq[2]->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor&) { ++calls; });
  NoGradGuard no_grad;
  test::expect_close((*model)(x), layer_by_layer, 1e-5);
  EXPECT_EQ(calls, 1);  // the ReLU after the first BN still ran as itself
  seq[2]->remove_forward_hook(id);
}

}  // namespace
