// f64 gradcheck through every layer and loss module, w.r.t. the input and every parameter.
#include "tests/layers/layers_test_helpers.h"

#include "tensor/random.h"
#include "tensor/raw_ops.h"

namespace gs::nn {
namespace {

using test::module_gradcheck;
using test::rand64;

template <class M, class... Args>
std::shared_ptr<M> make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

TEST(LayerGradcheck, Linear) {
  EXPECT_TRUE(module_gradcheck(make<Linear>(3, 4), rand64({2, 3}, 1)));
  EXPECT_TRUE(module_gradcheck(make<Linear>(3, 2, false), rand64({2, 5, 3}, 2)));  // batched, no bias
}

TEST(LayerGradcheck, Conv2d) {
  EXPECT_TRUE(module_gradcheck(make<Conv2d>(2, 3, 3, 1, 1), rand64({2, 2, 5, 5}, 3)));
  Conv2dOptions o{.in_channels = 4,
                  .out_channels = 2,
                  .kernel_h = 3,
                  .kernel_w = 2,
                  .stride = 2,
                  .padding = 1,
                  .dilation = 1,
                  .groups = 2,
                  .bias = true,
                  .stride_h = 1,
                  .dilation_w = 2};
  EXPECT_TRUE(module_gradcheck(make<Conv2d>(o), rand64({1, 4, 6, 7}, 4)));
}

TEST(LayerGradcheck, BatchNorm) {
  EXPECT_TRUE(module_gradcheck(make<BatchNorm2d>(3), rand64({2, 3, 3, 2}, 5)));
  EXPECT_TRUE(module_gradcheck(make<BatchNorm1d>(4), rand64({5, 4}, 6)));
  EXPECT_TRUE(module_gradcheck(make<BatchNorm1d>(2), rand64({3, 2, 4}, 7)));
  EXPECT_TRUE(module_gradcheck(make<BatchNorm2d>(2, 1e-5, 0.1, /*affine=*/false), rand64({2, 2, 2, 2}, 8)));
  auto eval_bn = make<BatchNorm2d>(3);
  eval_bn->eval();
  eval_bn->to(DType::F64);
  raw::copy_(eval_bn->running_mean(), rand64({3}, 9).detach());
  raw::copy_(eval_bn->running_var(), rand64({3}, 10, 0.5, 2).detach());
  EXPECT_TRUE(module_gradcheck(eval_bn, rand64({2, 3, 2, 2}, 11)));
}

TEST(LayerGradcheck, Pooling) {
  EXPECT_TRUE(module_gradcheck(make<MaxPool2d>(2), rand64({2, 2, 4, 6}, 12)));
  EXPECT_TRUE(module_gradcheck(make<MaxPool2d>(3, 2, 1), rand64({1, 2, 5, 5}, 13)));
  EXPECT_TRUE(module_gradcheck(make<AvgPool2d>(2), rand64({2, 2, 4, 4}, 14)));
  EXPECT_TRUE(module_gradcheck(make<AvgPool2d>(3, 2, 1, false), rand64({1, 2, 5, 5}, 15)));
  EXPECT_TRUE(module_gradcheck(make<AdaptiveAvgPool2d>(2, 3), rand64({2, 2, 5, 7}, 16)));
}

TEST(LayerGradcheck, Activations) {
  EXPECT_TRUE(module_gradcheck(make<ReLU>(), rand64({3, 4}, 17, -2, 2, 0.1)));
  EXPECT_TRUE(module_gradcheck(make<LeakyReLU>(0.2), rand64({3, 4}, 18, -2, 2, 0.1)));
  EXPECT_TRUE(module_gradcheck(make<GELU>(), rand64({3, 4}, 19)));
  EXPECT_TRUE(module_gradcheck(make<Sigmoid>(), rand64({3, 4}, 20)));
  EXPECT_TRUE(module_gradcheck(make<Tanh>(), rand64({3, 4}, 21)));
  EXPECT_TRUE(module_gradcheck(make<Identity>(), rand64({3, 4}, 22)));
  EXPECT_TRUE(module_gradcheck(make<Flatten>(), rand64({2, 3, 2, 2}, 23)));
  EXPECT_TRUE(module_gradcheck(make<Flatten>(0, 1), rand64({2, 3, 2}, 24)));
}

TEST(LayerGradcheck, DropoutWithAFixedMask) {
  auto drop = make<Dropout>(0.3);
  Generator gen(99);
  drop->set_generator(&gen);
  Tensor x = rand64({4, 5}, 25);
  // Reseeding per call gives every evaluation the same mask.
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        gen.manual_seed(99);
        return (*drop)(in[0]);
      },
      {x});
  drop->eval();
  EXPECT_TRUE(module_gradcheck(drop, x));
}

TEST(LayerGradcheck, SequentialAndBasicBlock) {
  auto net = std::make_shared<Sequential>(
      std::initializer_list<ModulePtr>{make<Conv2d>(1, 2, 3, 1, 1), make<BatchNorm2d>(2), make<Tanh>(),
                                       make<AvgPool2d>(2), make<Flatten>(), make<Linear>(8, 3)});
  EXPECT_TRUE(module_gradcheck(net, rand64({2, 1, 4, 4}, 26)));
  EXPECT_TRUE(module_gradcheck(make<BasicBlock>(2, 3, 2), rand64({2, 2, 4, 4}, 27)));  // downsample shortcut
  auto identity_block = make<BasicBlock>(2, 2, 1);
  EXPECT_EQ(identity_block->downsample(), nullptr);
  EXPECT_TRUE(module_gradcheck(identity_block, rand64({2, 2, 3, 3}, 28)));
}

// Loss modules: gradient w.r.t. the input (and a float target where it is differentiable).
TEST(LossGradcheck, Modules) {
  Tensor labels = from_vector<int64_t>({0, 2, 1, 2}, {4});
  auto ce = make<CrossEntropyLoss>(0.1);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return (*ce)(in[0], labels); }, {rand64({4, 3}, 30)});
  auto mse = make<MSELoss>();
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return (*mse)(in[0], in[1]); },
                   {rand64({3, 4}, 31), rand64({3, 4}, 32)});
  auto bce = make<BCEWithLogitsLoss>(Reduction::Sum);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return (*bce)(in[0], in[1]); },
                   {rand64({3, 4}, 33, -4, 4, 0.01), rand64({3, 4}, 34, 0, 1)});
  auto dice = make<DiceLoss>();
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return (*dice)(in[0], in[1]); },
                   {rand64({2, 3, 3, 3}, 35), rand64({2, 3, 3, 3}, 36, 0, 1)});
  auto dice_binary = make<DiceLoss>(0.5);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return (*dice_binary)(in[0], in[1]); },
                   {rand64({2, 1, 3, 3}, 37), rand64({2, 1, 3, 3}, 38, 0, 1)});
  auto dice_probs = make<DiceLoss>(1.0, /*from_logits=*/false);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return (*dice_probs)(in[0], in[1]); },
                   {rand64({2, 2, 2, 2}, 39, 0.05, 1), rand64({2, 2, 2, 2}, 40, 0, 1)});
}

}  // namespace
}  // namespace gs::nn
