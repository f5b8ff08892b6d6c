// repr(): PyTorch's print(model) text, for fashionnet (flat) and a BasicBlock (nested).
#include "tests/layers/layers_test_helpers.h"

namespace gs::nn {
namespace {

TEST(Repr, Fashionnet) {
  const char* expected =
      "Sequential(\n"
      "  (0): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
      "  (1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
      "  (2): ReLU()\n"
      "  (3): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
      "  (4): Conv2d(32, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
      "  (5): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
      "  (6): ReLU()\n"
      "  (7): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
      "  (8): Flatten(start_dim=1, end_dim=-1)\n"
      "  (9): Linear(in_features=3136, out_features=128, bias=True)\n"
      "  (10): ReLU()\n"
      "  (11): Linear(in_features=128, out_features=10, bias=True)\n"
      ")";
  EXPECT_EQ(make_model("fashionnet")->repr(), expected);
}

TEST(Repr, NestedBlockIndents) {
  const char* expected =
      "BasicBlock(\n"
      "  (conv1): Conv2d(16, 32, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)\n"
      "  (bn1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
      "  (relu): ReLU()\n"
      "  (conv2): Conv2d(32, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
      "  (bn2): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
      "  (downsample): Sequential(\n"
      "    (0): Conv2d(16, 32, kernel_size=(1, 1), stride=(2, 2), bias=False)\n"
      "    (1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
      "  )\n"
      ")";
  EXPECT_EQ(BasicBlock(16, 32, 2).repr(), expected);
}

TEST(Repr, LeavesAndLosses) {
  EXPECT_EQ(Sequential().repr(), "Sequential()");
  EXPECT_EQ(LeakyReLU(0.2).repr(), "LeakyReLU(negative_slope=0.2)");
  EXPECT_EQ(GELU().repr(), "GELU(approximate='none')");
  EXPECT_EQ(AdaptiveAvgPool2d(1, 1).repr(), "AdaptiveAvgPool2d(output_size=(1, 1))");
  EXPECT_EQ(AvgPool2d(2).repr(), "AvgPool2d(kernel_size=2, stride=2, padding=0)");
  EXPECT_EQ(Linear(3, 2, false).repr(), "Linear(in_features=3, out_features=2, bias=False)");
  EXPECT_EQ(CrossEntropyLoss().repr(), "CrossEntropyLoss()");
  EXPECT_EQ(CrossEntropyLoss(0.1).repr(), "CrossEntropyLoss(label_smoothing=0.1)");
  EXPECT_EQ(MSELoss().repr(), "MSELoss()");
  Conv2dOptions o{.in_channels = 4, .out_channels = 8, .kernel_h = 3, .dilation = 2, .groups = 2};
  EXPECT_EQ(Conv2d(o).repr(), "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), dilation=(2, 2), groups=2)");
}

}  // namespace
}  // namespace gs::nn
