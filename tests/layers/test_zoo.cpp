// Zoo models: parameter counts equal the torch equivalents (counted by hand here; the interop
// test checks them against torch), output shapes, size handling and the unknown-name error.
#include "tests/layers/layers_test_helpers.h"

namespace gs::nn {
namespace {

int64_t conv(int64_t in, int64_t out, int64_t k, bool bias = true) { return in * out * k * k + (bias ? out : 0); }
int64_t linear(int64_t in, int64_t out) { return in * out + out; }
int64_t bn(int64_t c) { return 2 * c; }
int64_t block(int64_t in, int64_t out, bool down) {
  return conv(in, out, 3, false) + bn(out) + conv(out, out, 3, false) + bn(out) +
         (down ? conv(in, out, 1, false) + bn(out) : 0);
}

TEST(Zoo, ParameterCountsMatchTorch) {
  EXPECT_EQ(make_model("mlp")->num_parameters(), linear(784, 256) + linear(256, 128) + linear(128, 10));
  EXPECT_EQ(make_model("mlp")->num_parameters(), 235146);
  EXPECT_EQ(make_model("lenet5")->num_parameters(),
            conv(1, 6, 5) + conv(6, 16, 5) + linear(400, 120) + linear(120, 84) + linear(84, 10));
  EXPECT_EQ(make_model("lenet5")->num_parameters(), 61706);
  EXPECT_EQ(make_model("fashionnet")->num_parameters(),
            conv(1, 32, 3) + bn(32) + conv(32, 64, 3) + bn(64) + linear(3136, 128) + linear(128, 10));
  EXPECT_EQ(make_model("fashionnet")->num_parameters(), 421834);
  EXPECT_EQ(make_model("resnet8", 3, 10, 32)->num_parameters(), conv(3, 16, 3, false) + bn(16) + block(16, 16, false) +
                                                                    block(16, 32, true) + block(32, 64, true) +
                                                                    linear(64, 10));
  EXPECT_EQ(make_model("resnet8", 3, 10, 32)->num_parameters(), 78042);
}

TEST(Zoo, SizesFollowTheArguments) {
  EXPECT_EQ(make_model("mlp", 3, 5, 32)->num_parameters(),
            linear(3 * 32 * 32, 256) + linear(256, 128) + linear(128, 5));
  EXPECT_EQ(make_model("lenet5", 3, 10, 32)->num_parameters(),
            conv(3, 6, 5) + conv(6, 16, 5) + linear(16 * 6 * 6, 120) + linear(120, 84) + linear(84, 10));
  EXPECT_EQ(make_model("fashionnet", 3, 100, 32)->num_parameters(),
            conv(3, 32, 3) + bn(32) + conv(32, 64, 3) + bn(64) + linear(64 * 8 * 8, 128) + linear(128, 100));
}

TEST(Zoo, ForwardShapes) {
  for (const std::string& name : model_names()) {
    bool cifar = name == "resnet8";
    int64_t c = cifar ? 3 : 1, s = cifar ? 32 : 28;
    auto net = make_model(name, c, 10, s);
    Tensor y = (*net)(randn({2, c, s, s}));
    EXPECT_EQ(shape_str(y.shape()), shape_str({2, 10})) << name;
  }
  // resnet8 takes 1x28x28 too (adaptive pooling).
  Tensor y = (*make_model("resnet8", 1, 7, 28))(randn({2, 1, 28, 28}));
  EXPECT_EQ(shape_str(y.shape()), shape_str({2, 7}));
}

TEST(Zoo, Names) {
  EXPECT_EQ(model_names(), (std::vector<std::string>{"mlp", "lenet5", "fashionnet", "resnet8"}));
  EXPECT_THROW_MSG(make_model("vgg16"), "unknown model 'vgg16' (known: mlp, lenet5, fashionnet, resnet8)");
  EXPECT_THROW_MSG(make_model("lenet5", 1, 10, 8), "too small");
  EXPECT_THROW_MSG(make_model("mlp", 0), "must be positive");
}

TEST(Zoo, ResnetStateDictFollowsTorchvisionNames) {
  auto keys = test::keys_of(make_model("resnet8", 3, 10, 32)->state_dict());
  auto has = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) != keys.end(); };
  EXPECT_EQ(keys.front(), "0.weight");  // the stem conv has no bias
  EXPECT_TRUE(has("3.conv1.weight"));
  EXPECT_TRUE(has("3.bn2.num_batches_tracked"));
  EXPECT_FALSE(has("3.downsample.0.weight"));  // 16 -> 16, stride 1: identity shortcut
  EXPECT_TRUE(has("4.downsample.0.weight"));
  EXPECT_TRUE(has("5.downsample.1.running_var"));
  EXPECT_EQ(keys.back(), "8.bias");
}

}  // namespace
}  // namespace gs::nn
