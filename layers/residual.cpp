// BasicBlock (torchvision layout).
#include "layers/residual.h"

#include "layers/activation.h"

namespace gs::nn {

namespace {
Conv2dOptions conv_options(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return Conv2dOptions{.in_channels = in,
                       .out_channels = out,
                       .kernel_h = kernel,
                       .kernel_w = kernel,
                       .stride = stride,
                       .padding = padding,
                       .bias = false};
}
}  // namespace

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride)
    : in_channels_(in_channels), out_channels_(out_channels), stride_(stride) {
  GS_CHECK(in_channels > 0 && out_channels > 0 && stride > 0,
           "BasicBlock: channels (%lld, %lld) and stride %lld must be positive", (long long)in_channels,
           (long long)out_channels, (long long)stride);
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(conv_options(in_channels, out_channels, 3, stride, 1)));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out_channels));
  relu_ = register_module("relu", std::make_shared<ReLU>());
  conv2_ = register_module("conv2", std::make_shared<Conv2d>(conv_options(out_channels, out_channels, 3, 1, 1)));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    auto shortcut = std::make_shared<Sequential>();
    shortcut->push_back(std::make_shared<Conv2d>(conv_options(in_channels, out_channels, 1, stride, 0)));
    shortcut->push_back(std::make_shared<BatchNorm2d>(out_channels));
    downsample_ = register_module("downsample", shortcut);
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = (*relu_)((*bn1_)((*conv1_)(x)));
  out = (*bn2_)((*conv2_)(out));
  Tensor shortcut = downsample_ ? (*downsample_)(x) : x;
  return (*relu_)(out + shortcut);
}

}  // namespace gs::nn
