// Conv2d and the pooling layers, over the functional ops of autograd/nn_ops.h. Layouts and
// state_dict names as torch.nn: x (N,C,H,W), weight (K, C/groups, R, S), bias (K).
#pragma once
#include "autograd/nn_ops.h"
#include "layers/module.h"

namespace gs::nn {

// Square values by default; the *_h/*_w fields, when set, override one axis
// (kernel_w 0, stride_h/w 0, pad_h/w -1, dilation_h/w 0 mean "same as the square value").
struct Conv2dOptions {
  int64_t in_channels = 0, out_channels = 0, kernel_h = 0, kernel_w = 0;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
  int64_t stride_h = 0, stride_w = 0, pad_h = -1, pad_w = -1, dilation_h = 0, dilation_w = 0;

  int64_t kernel_height() const { return kernel_h; }
  int64_t kernel_width() const { return kernel_w > 0 ? kernel_w : kernel_h; }
  Conv2dParams params() const;  // resolved per-axis values for gs::conv2d
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
         bool bias = true)
      : Conv2d(Conv2dOptions{.in_channels = in_channels,
                             .out_channels = out_channels,
                             .kernel_h = kernel,
                             .kernel_w = kernel,
                             .stride = stride,
                             .padding = padding,
                             .bias = bias}) {}
  // PyTorch's defaults: kaiming_uniform_(a=sqrt(5)) weight, bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  void reset(Generator* gen = nullptr);
  // x (N, C, H, W) -> (N, K, P, Q)
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  const Conv2dOptions& options() const { return options_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  Conv2dOptions options_;
  Tensor weight_, bias_;
};

class MaxPool2d : public Module {
 public:
  // stride 0 means stride = kernel (PyTorch's default).
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0);
  explicit MaxPool2d(const Pool2dParams& params);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  const Pool2dParams& params() const { return params_; }

 private:
  Pool2dParams params_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0, bool count_include_pad = true);
  explicit AvgPool2d(const Pool2dParams& params, bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  const Pool2dParams& params() const { return params_; }
  bool count_include_pad() const { return count_include_pad_; }

 private:
  Pool2dParams params_;
  bool count_include_pad_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w);
  explicit AdaptiveAvgPool2d(int64_t out) : AdaptiveAvgPool2d(out, out) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  int64_t out_h() const { return out_h_; }
  int64_t out_w() const { return out_w_; }

 private:
  int64_t out_h_, out_w_;
};

}  // namespace gs::nn
