// BasicBlock: the two-conv residual block of ResNet-18/34, named as torchvision's BasicBlock so
// state_dicts move between the two: conv1, bn1, relu, conv2, bn2, downsample.0 (1x1 conv), downsample.1 (BN).
//
//   out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
//   shortcut = identity, or downsample = conv1x1(in, out, stride, bias=False) + BN when the shape changes.
#pragma once
#include "layers/batchnorm.h"
#include "layers/container.h"
#include "layers/conv.h"

namespace gs::nn {

class ReLU;

class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1);
  // x (N, in, H, W) -> (N, out, H/stride, W/stride)
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }
  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  int64_t stride() const { return stride_; }
  const std::shared_ptr<Conv2d>& conv1() const { return conv1_; }
  const std::shared_ptr<BatchNorm2d>& bn1() const { return bn1_; }
  const std::shared_ptr<Conv2d>& conv2() const { return conv2_; }
  const std::shared_ptr<BatchNorm2d>& bn2() const { return bn2_; }
  const std::shared_ptr<Sequential>& downsample() const { return downsample_; }  // null: identity shortcut

 private:
  int64_t in_channels_, out_channels_, stride_;
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<Sequential> downsample_;
};

}  // namespace gs::nn
