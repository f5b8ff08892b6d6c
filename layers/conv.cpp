// Conv2d and pooling modules: option checks, PyTorch's initialisation and repr; the maths is in
// the functional ops (autograd/functions/nn.cpp).
#include "layers/conv.h"

#include <cmath>
#include <cstdio>

#include "layers/init.h"

namespace gs::nn {

namespace {
std::string pair_str(int64_t h, int64_t w) {
  char buf[64];  // snprintf: GCC 12 warns falsely (-Wrestrict) on "(" + std::to_string(h) + ...
  std::snprintf(buf, sizeof buf, "(%lld, %lld)", (long long)h, (long long)w);
  return buf;
}
// PyTorch prints what it was given: an int for square values, a tuple otherwise.
std::string int_or_pair(int64_t h, int64_t w) { return h == w ? std::to_string(h) : pair_str(h, w); }

void check_image(const char* op, const Tensor& x) {
  GS_CHECK(x.dim() == 4, "%s: expects input (N, C, H, W), got %s", op, shape_str(x.shape()).c_str());
}

Pool2dParams pool_params(const char* op, int64_t kernel, int64_t stride, int64_t padding) {
  GS_CHECK(kernel > 0 && stride >= 0 && padding >= 0,
           "%s: kernel %lld must be positive, stride %lld and padding %lld non-negative", op, (long long)kernel,
           (long long)stride, (long long)padding);
  if (stride == 0) stride = kernel;
  GS_CHECK(2 * padding <= kernel, "%s: padding %lld should be at most half the kernel size %lld", op,
           (long long)padding, (long long)kernel);
  return Pool2dParams{kernel, kernel, stride, stride, padding, padding};
}
}  // namespace

Conv2dParams Conv2dOptions::params() const {
  Conv2dParams p;
  p.stride_h = stride_h > 0 ? stride_h : stride;
  p.stride_w = stride_w > 0 ? stride_w : stride;
  p.pad_h = pad_h >= 0 ? pad_h : padding;
  p.pad_w = pad_w >= 0 ? pad_w : padding;
  p.dilation_h = dilation_h > 0 ? dilation_h : dilation;
  p.dilation_w = dilation_w > 0 ? dilation_w : dilation;
  p.groups = groups;
  return p;
}

Conv2d::Conv2d(const Conv2dOptions& options) : options_(options) {
  Conv2dParams p = options.params();
  GS_CHECK(
      options.in_channels > 0 && options.out_channels > 0 && options.kernel_height() > 0 && options.kernel_width() > 0,
      "Conv2d: channels (%lld, %lld) and kernel (%lld, %lld) must be positive", (long long)options.in_channels,
      (long long)options.out_channels, (long long)options.kernel_height(), (long long)options.kernel_width());
  GS_CHECK(p.stride_h > 0 && p.stride_w > 0 && p.dilation_h > 0 && p.dilation_w > 0 && p.pad_h >= 0 && p.pad_w >= 0,
           "Conv2d: stride and dilation must be positive and padding non-negative");
  GS_CHECK(
      options.groups > 0 && options.in_channels % options.groups == 0 && options.out_channels % options.groups == 0,
      "Conv2d: groups %lld must divide in_channels %lld and out_channels %lld", (long long)options.groups,
      (long long)options.in_channels, (long long)options.out_channels);
  weight_ = register_parameter("weight", empty({options.out_channels, options.in_channels / options.groups,
                                                options.kernel_height(), options.kernel_width()}));
  if (options.bias) bias_ = register_parameter("bias", empty({options.out_channels}));
  reset();
}

void Conv2d::reset(Generator* gen) {
  kaiming_uniform_(weight_, std::sqrt(5.0), FanMode::FanIn, Nonlinearity::LeakyRelu, gen);
  if (bias_.defined()) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in_and_fan_out(weight_).first));
    uniform_(bias_, -bound, bound, gen);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  check_image("conv2d", x);
  GS_CHECK(x.size(1) == options_.in_channels, "conv2d: input %s has %lld channels, weight expects %lld",
           shape_str(x.shape()).c_str(), (long long)x.size(1), (long long)options_.in_channels);
  return gs::conv2d(x, weight_, bias_, options_.params());
}

std::string Conv2d::extra_repr() const {
  Conv2dParams p = options_.params();
  std::string s = std::to_string(options_.in_channels) + ", " + std::to_string(options_.out_channels) +
                  ", kernel_size=" + pair_str(options_.kernel_height(), options_.kernel_width()) +
                  ", stride=" + pair_str(p.stride_h, p.stride_w);
  if (p.pad_h != 0 || p.pad_w != 0) s += ", padding=" + pair_str(p.pad_h, p.pad_w);
  if (p.dilation_h != 1 || p.dilation_w != 1) s += ", dilation=" + pair_str(p.dilation_h, p.dilation_w);
  if (p.groups != 1) s += ", groups=" + std::to_string(p.groups);
  if (!options_.bias) s += ", bias=False";
  return s;
}

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding)
    : params_(pool_params("MaxPool2d", kernel, stride, padding)) {}
MaxPool2d::MaxPool2d(const Pool2dParams& params) : params_(params) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_image("max_pool2d", x);
  return gs::max_pool2d(x, params_);
}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + int_or_pair(params_.kernel_h, params_.kernel_w) +
         ", stride=" + int_or_pair(params_.stride_h, params_.stride_w) +
         ", padding=" + int_or_pair(params_.pad_h, params_.pad_w) + ", dilation=1, ceil_mode=False";
}

AvgPool2d::AvgPool2d(int64_t kernel, int64_t stride, int64_t padding, bool count_include_pad)
    : params_(pool_params("AvgPool2d", kernel, stride, padding)), count_include_pad_(count_include_pad) {}
AvgPool2d::AvgPool2d(const Pool2dParams& params, bool count_include_pad)
    : params_(params), count_include_pad_(count_include_pad) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_image("avg_pool2d", x);
  return gs::avg_pool2d(x, params_, count_include_pad_);
}

std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + int_or_pair(params_.kernel_h, params_.kernel_w) +
         ", stride=" + int_or_pair(params_.stride_h, params_.stride_w) +
         ", padding=" + int_or_pair(params_.pad_h, params_.pad_w);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : out_h_(out_h), out_w_(out_w) {
  GS_CHECK(out_h > 0 && out_w > 0, "AdaptiveAvgPool2d: output size (%lld, %lld) must be positive", (long long)out_h,
           (long long)out_w);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  check_image("adaptive_avg_pool2d", x);
  return gs::adaptive_avg_pool2d(x, out_h_, out_w_);
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + pair_str(out_h_, out_w_); }

}  // namespace gs::nn
