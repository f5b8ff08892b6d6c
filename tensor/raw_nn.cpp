// Front-ends of conv2d, pooling, batch norm and dropout: argument checks with errors that
// name the op and the shapes, contiguous operands, then the selected kernel variant.
#include "tensor/raw_nn.h"

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/softmax.h"
#include "tensor/random.h"
#include "tensor/raw_common.h"
#include "tensor/raw_ops.h"

namespace gs::raw {

namespace {

using ll = long long;
std::string str(const Shape& s) { return shape_str(s); }

void check_4d(const char* op, const Tensor& t, const char* what) {
  GS_CHECK(t.dim() == 4, "%s: %s must be 4-d (N,C,H,W), got %s", op, what, str(t.shape()).c_str());
}

// ---------------- conv2d ----------------

kernels::Conv2dShape conv_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  kernels::Conv2dShape s;
  s.N = x[0], s.C = x[1], s.H = x[2], s.W = x[3];
  s.K = w[0], s.R = w[2], s.S = w[3];
  s.stride_h = p.stride_h, s.stride_w = p.stride_w, s.pad_h = p.pad_h, s.pad_w = p.pad_w;
  s.dilation_h = p.dilation_h, s.dilation_w = p.dilation_w, s.groups = p.groups;
  s.P = kernels::conv_out_size(s.H, s.pad_h, s.dilation_h, s.R, s.stride_h);
  s.Q = kernels::conv_out_size(s.W, s.pad_w, s.dilation_w, s.S, s.stride_w);
  return s;
}

// Checks x (N,C,H,W) against w (K,C/groups,R,S) and the parameters; returns the geometry.
kernels::Conv2dShape check_conv(const char* op, const Shape& x, const Shape& w, const Conv2dParams& p) {
  GS_CHECK(x.size() == 4, "%s: input must be 4-d (N,C,H,W), got %s", op, str(x).c_str());
  GS_CHECK(w.size() == 4, "%s: weight must be 4-d (K,C/groups,R,S), got %s", op, str(w).c_str());
  GS_CHECK(p.stride_h >= 1 && p.stride_w >= 1, "%s: stride must be >= 1, got (%lld,%lld)", op, (ll)p.stride_h,
           (ll)p.stride_w);
  GS_CHECK(p.dilation_h >= 1 && p.dilation_w >= 1, "%s: dilation must be >= 1, got (%lld,%lld)", op, (ll)p.dilation_h,
           (ll)p.dilation_w);
  GS_CHECK(p.pad_h >= 0 && p.pad_w >= 0, "%s: padding must be >= 0, got (%lld,%lld)", op, (ll)p.pad_h, (ll)p.pad_w);
  GS_CHECK(p.groups >= 1, "%s: groups must be >= 1, got %lld", op, (ll)p.groups);
  GS_CHECK(x[1] % p.groups == 0, "%s: groups=%lld does not divide the %lld input channels of %s", op, (ll)p.groups,
           (ll)x[1], str(x).c_str());
  GS_CHECK(w[0] % p.groups == 0, "%s: groups=%lld does not divide the %lld output channels of weight %s", op,
           (ll)p.groups, (ll)w[0], str(w).c_str());
  GS_CHECK(x[1] == w[1] * p.groups, "%s: input %s has %lld channels, weight %s expects %lld%s", op, str(x).c_str(),
           (ll)x[1], str(w).c_str(), (ll)(w[1] * p.groups),
           p.groups > 1 ? format(" (%lld per group x %lld groups)", (ll)w[1], (ll)p.groups).c_str() : "");
  const int64_t eff_r = p.dilation_h * (w[2] - 1) + 1, eff_s = p.dilation_w * (w[3] - 1) + 1;
  GS_CHECK(w[2] >= 1 && w[3] >= 1 && eff_r <= x[2] + 2 * p.pad_h && eff_s <= x[3] + 2 * p.pad_w,
           "%s: kernel %lldx%lld (dilated %lldx%lld) is bigger than the padded input %lldx%lld of %s", op, (ll)w[2],
           (ll)w[3], (ll)eff_r, (ll)eff_s, (ll)(x[2] + 2 * p.pad_h), (ll)(x[3] + 2 * p.pad_w), str(x).c_str());
  return conv_shape(x, w, p);
}

// ---------------- pooling ----------------

kernels::Pool2dShape check_pool(const char* op, const Tensor& x, const Pool2dParams& p) {
  check_4d(op, x, "input");
  GS_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1, "%s: kernel size must be >= 1, got %lldx%lld", op, (ll)p.kernel_h,
           (ll)p.kernel_w);
  GS_CHECK(p.stride_h >= 1 && p.stride_w >= 1, "%s: stride must be >= 1, got (%lld,%lld)", op, (ll)p.stride_h,
           (ll)p.stride_w);
  GS_CHECK(p.pad_h >= 0 && p.pad_w >= 0 && 2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w,
           "%s: padding (%lld,%lld) must be >= 0 and at most half the kernel %lldx%lld", op, (ll)p.pad_h, (ll)p.pad_w,
           (ll)p.kernel_h, (ll)p.kernel_w);
  const Shape& xs = x.shape();
  GS_CHECK(p.kernel_h <= xs[2] + 2 * p.pad_h && p.kernel_w <= xs[3] + 2 * p.pad_w,
           "%s: kernel %lldx%lld is bigger than the padded input %lldx%lld of %s", op, (ll)p.kernel_h, (ll)p.kernel_w,
           (ll)(xs[2] + 2 * p.pad_h), (ll)(xs[3] + 2 * p.pad_w), str(xs).c_str());
  kernels::Pool2dShape s;
  s.N = xs[0], s.C = xs[1], s.H = xs[2], s.W = xs[3];
  s.kernel_h = p.kernel_h, s.kernel_w = p.kernel_w, s.stride_h = p.stride_h, s.stride_w = p.stride_w;
  s.pad_h = p.pad_h, s.pad_w = p.pad_w;
  s.P = kernels::pool_out_size(s.H, s.pad_h, s.kernel_h, s.stride_h);
  s.Q = kernels::pool_out_size(s.W, s.pad_w, s.kernel_w, s.stride_w);
  return s;
}

void check_grad_shape(const char* op, const Tensor& gy, const Shape& expected) {
  GS_CHECK(gy.shape() == expected, "%s: gradient %s does not match the output shape %s", op, str(gy.shape()).c_str(),
           str(expected).c_str());
}

Tensor like(const Shape& shape, const Tensor& t) { return empty(shape, {t.dtype(), t.device()}); }

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, const Conv2dParams& p) {
  const char* op = "conv2d";
  Device device = detail::op_device(op, {&x_in, &w_in, &bias_in});
  kernels::Conv2dShape s = check_conv(op, x_in.shape(), w_in.shape(), p);
  check_same_dtype(op, x_in, w_in);
  Tensor bias;
  if (bias_in.defined()) {
    check_same_dtype(op, x_in, bias_in);
    GS_CHECK(bias_in.dim() == 1 && bias_in.shape()[0] == s.K, "%s: bias %s must be (%lld) for weight %s", op,
             str(bias_in.shape()).c_str(), (ll)s.K, str(w_in.shape()).c_str());
    bias = contiguous(bias_in);
  }
  Tensor x = contiguous(x_in), w = contiguous(w_in);
  Tensor y = like({s.N, s.K, s.P, s.Q}, x);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, x);
    GS_ON_CUDA(kernels::cuda::conv2d_table().get()(s, x.data<float>(), w.data<float>(),
                                            bias.defined() ? bias.data<float>() : nullptr, y.data<float>()));
  } else {
    GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kernels::conv2d_table<scalar_t>().get()(s, x.data<scalar_t>(), w.data<scalar_t>(),
                                            bias.defined() ? bias.data<scalar_t>() : nullptr, y.data<scalar_t>());
    });
  }
  return y;
}

Tensor conv2d_backward_data(const Tensor& gy_in, const Tensor& w_in, const Shape& x_shape, const Conv2dParams& p) {
  const char* op = "conv2d_backward_data";
  Device device = detail::op_device(op, {&gy_in, &w_in});
  kernels::Conv2dShape s = check_conv(op, x_shape, w_in.shape(), p);
  check_same_dtype(op, gy_in, w_in);
  check_grad_shape(op, gy_in, {s.N, s.K, s.P, s.Q});
  Tensor gy = contiguous(gy_in), w = contiguous(w_in);
  Tensor gx = like(x_shape, gy);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, gy);
    GS_ON_CUDA(kernels::cuda::conv2d_backward_data_table().get()(s, gy.data<float>(), w.data<float>(),
                                                          gx.data<float>()));
  } else {
    GS_DISPATCH_FLOAT(gy.dtype(), op, [&] {
    kernels::conv2d_backward_data_table<scalar_t>().get()(s, gy.data<scalar_t>(), w.data<scalar_t>(),
                                                          gx.data<scalar_t>());
    });
  }
  return gx;
}

Conv2dParamGrads conv2d_backward_params(const Tensor& x_in, const Tensor& gy_in, const Shape& w_shape,
                                        const Conv2dParams& p, bool need_weight, bool need_bias) {
  const char* op = "conv2d_backward_weight";
  Device device = detail::op_device(op, {&x_in, &gy_in});
  kernels::Conv2dShape s = check_conv(op, x_in.shape(), w_shape, p);
  check_same_dtype(op, x_in, gy_in);
  check_grad_shape(op, gy_in, {s.N, s.K, s.P, s.Q});
  Conv2dParamGrads grads;
  if (!need_weight && !need_bias) return grads;
  Tensor x = contiguous(x_in), gy = contiguous(gy_in);
  if (need_weight) grads.weight = like(w_shape, x);
  if (need_bias) grads.bias = like({s.K}, x);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, x);
    GS_ON_CUDA(kernels::cuda::conv2d_backward_weight_table().get()(s, x.data<float>(), gy.data<float>(),
                                                            need_weight ? grads.weight.data<float>() : nullptr,
                                                            need_bias ? grads.bias.data<float>() : nullptr));
  } else {
    GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kernels::conv2d_backward_weight_table<scalar_t>().get()(s, x.data<scalar_t>(), gy.data<scalar_t>(),
                                                            need_weight ? grads.weight.data<scalar_t>() : nullptr,
                                                            need_bias ? grads.bias.data<scalar_t>() : nullptr);
    });
  }
  return grads;
}

MaxPool2dResult max_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  const char* op = "max_pool2d";
  Device device = detail::op_device(op, {&x_in});
  kernels::Pool2dShape s = check_pool(op, x_in, p);
  Tensor x = contiguous(x_in);
  MaxPool2dResult r{like({s.N, s.C, s.P, s.Q}, x), empty({s.N, s.C, s.P, s.Q}, {DType::I64, x.device()})};
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, x);
    GS_ON_CUDA(kernels::cuda::max_pool2d_table().get()(s, x.data<float>(), r.out.data<float>(),
                                                r.argmax.data<int64_t>()));
  } else {
    GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kernels::max_pool2d_table<scalar_t>().get()(s, x.data<scalar_t>(), r.out.data<scalar_t>(),
                                                r.argmax.data<int64_t>());
    });
  }
  return r;
}

Tensor max_pool2d_backward(const Tensor& gy_in, const Tensor& argmax_in, const Shape& x_shape, const Pool2dParams& p) {
  const char* op = "max_pool2d_backward";
  Device device = detail::op_device(op, {&gy_in, &argmax_in});
  kernels::Pool2dShape s = check_pool(op, empty(x_shape, {gy_in.dtype()}), p);
  check_grad_shape(op, gy_in, {s.N, s.C, s.P, s.Q});
  check_dtype(op, argmax_in, DType::I64, "argmax");
  check_grad_shape(op, argmax_in, {s.N, s.C, s.P, s.Q});
  Tensor gy = contiguous(gy_in), argmax = contiguous(argmax_in);
  Tensor gx = like(x_shape, gy);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, gy);
    GS_ON_CUDA(kernels::cuda::max_pool2d_backward_table().get()(s, gy.data<float>(), argmax.data<int64_t>(),
                                                         gx.data<float>()));
  } else {
    GS_DISPATCH_FLOAT(gy.dtype(), op, [&] {
    kernels::max_pool2d_backward_table<scalar_t>().get()(s, gy.data<scalar_t>(), argmax.data<int64_t>(),
                                                         gx.data<scalar_t>());
    });
  }
  return gx;
}

Tensor avg_pool2d(const Tensor& x_in, const Pool2dParams& p, bool count_include_pad) {
  const char* op = "avg_pool2d";
  Device device = detail::op_device(op, {&x_in});
  kernels::Pool2dShape s = check_pool(op, x_in, p);
  Tensor x = contiguous(x_in);
  Tensor y = like({s.N, s.C, s.P, s.Q}, x);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, x);
    GS_ON_CUDA(kernels::cuda::avg_pool2d_table().get()(s, x.data<float>(), y.data<float>(), count_include_pad));
  } else {
    GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kernels::avg_pool2d_table<scalar_t>().get()(s, x.data<scalar_t>(), y.data<scalar_t>(), count_include_pad);
    });
  }
  return y;
}

Tensor avg_pool2d_backward(const Tensor& gy_in, const Shape& x_shape, const Pool2dParams& p, bool count_include_pad) {
  const char* op = "avg_pool2d_backward";
  Device device = detail::op_device(op, {&gy_in});
  kernels::Pool2dShape s = check_pool(op, empty(x_shape, {gy_in.dtype()}), p);
  check_grad_shape(op, gy_in, {s.N, s.C, s.P, s.Q});
  Tensor gy = contiguous(gy_in);
  Tensor gx = like(x_shape, gy);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, gy);
    GS_ON_CUDA(kernels::cuda::avg_pool2d_backward_table().get()(s, gy.data<float>(), gx.data<float>(),
                                                         count_include_pad));
  } else {
    GS_DISPATCH_FLOAT(gy.dtype(), op, [&] {
    kernels::avg_pool2d_backward_table<scalar_t>().get()(s, gy.data<scalar_t>(), gx.data<scalar_t>(),
                                                         count_include_pad);
    });
  }
  return gx;
}

namespace {
kernels::Pool2dShape adaptive_shape(const char* op, const Shape& xs, int64_t out_h, int64_t out_w) {
  GS_CHECK(xs.size() == 4, "%s: input must be 4-d (N,C,H,W), got %s", op, str(xs).c_str());
  GS_CHECK(out_h >= 1 && out_w >= 1, "%s: output size must be >= 1, got %lldx%lld", op, (ll)out_h, (ll)out_w);
  GS_CHECK(xs[2] >= 1 && xs[3] >= 1, "%s: input %s has an empty plane", op, str(xs).c_str());
  kernels::Pool2dShape s;
  s.N = xs[0], s.C = xs[1], s.H = xs[2], s.W = xs[3], s.P = out_h, s.Q = out_w;
  return s;
}
}  // namespace

Tensor adaptive_avg_pool2d(const Tensor& x_in, int64_t out_h, int64_t out_w) {
  const char* op = "adaptive_avg_pool2d";
  Device device = detail::op_device(op, {&x_in});
  kernels::Pool2dShape s = adaptive_shape(op, x_in.shape(), out_h, out_w);
  Tensor x = contiguous(x_in);
  Tensor y = like({s.N, s.C, s.P, s.Q}, x);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, x);
    GS_ON_CUDA(kernels::cuda::adaptive_avg_pool2d_table().get()(s, x.data<float>(), y.data<float>()));
  } else {
    GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kernels::adaptive_avg_pool2d_table<scalar_t>().get()(s, x.data<scalar_t>(), y.data<scalar_t>());
    });
  }
  return y;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& gy_in, const Shape& x_shape) {
  const char* op = "adaptive_avg_pool2d_backward";
  Device device = detail::op_device(op, {&gy_in});
  GS_CHECK(gy_in.dim() == 4, "%s: gradient must be 4-d, got %s", op, str(gy_in.shape()).c_str());
  kernels::Pool2dShape s = adaptive_shape(op, x_shape, gy_in.shape()[2], gy_in.shape()[3]);
  check_grad_shape(op, gy_in, {s.N, s.C, s.P, s.Q});
  Tensor gy = contiguous(gy_in);
  Tensor gx = like(x_shape, gy);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, gy);
    GS_ON_CUDA(kernels::cuda::adaptive_avg_pool2d_backward_table().get()(s, gy.data<float>(), gx.data<float>()));
  } else {
    GS_DISPATCH_FLOAT(gy.dtype(), op, [&] {
    kernels::adaptive_avg_pool2d_backward_table<scalar_t>().get()(s, gy.data<scalar_t>(), gx.data<scalar_t>());
    });
  }
  return gx;
}

// ---------------- batch norm ----------------

namespace {
kernels::BatchNormShape bn_shape(const Tensor& x) {
  kernels::BatchNormShape s;
  s.N = x.shape()[0], s.C = x.shape()[1], s.L = 1;
  for (int64_t d = 2; d < x.dim(); ++d) s.L *= x.shape()[d];
  return s;
}
void check_channel_vector(const char* op, const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  check_same_dtype(op, x, t);
  GS_CHECK(t.dim() == 1 && t.shape()[0] == x.shape()[1], "%s: %s %s must be (%lld) for input %s with %lld channels", op,
           what, str(t.shape()).c_str(), (ll)x.shape()[1], str(x.shape()).c_str(), (ll)x.shape()[1]);
}
template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}
}  // namespace

BatchNormResult batch_norm(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in,
                           const Tensor& running_mean, const Tensor& running_var, bool training, double momentum,
                           double eps) {
  const char* op = "batch_norm";
  Device device = detail::op_device(op, {&x_in, &weight_in, &bias_in, &running_mean, &running_var});
  GS_CHECK(x_in.dim() >= 2, "%s: input must be (N,C) or (N,C,H,W), got %s", op, str(x_in.shape()).c_str());
  check_channel_vector(op, x_in, weight_in, "weight");
  check_channel_vector(op, x_in, bias_in, "bias");
  check_channel_vector(op, x_in, running_mean, "running_mean");
  check_channel_vector(op, x_in, running_var, "running_var");
  GS_CHECK(running_mean.defined() == running_var.defined(),
           "%s: running_mean and running_var must both be given or both be undefined", op);
  GS_CHECK(eps > 0, "%s: eps must be > 0, got %g", op, eps);
  kernels::BatchNormShape s = bn_shape(x_in);
  BatchNormResult r;
  r.used_batch_stats = training || !running_mean.defined();
  GS_CHECK(!r.used_batch_stats || s.N * s.L > 1,
           "%s: expected more than 1 value per channel when using batch statistics, got input %s", op,
           str(x_in.shape()).c_str());
  Tensor x = contiguous(x_in), weight, bias;
  if (weight_in.defined()) weight = contiguous(weight_in);
  if (bias_in.defined()) bias = contiguous(bias_in);
  // The running statistics are updated in place; a non-contiguous one goes through a copy.
  Tensor rm = running_mean.defined() ? contiguous(running_mean) : Tensor();
  Tensor rv = running_var.defined() ? contiguous(running_var) : Tensor();
  r.out = like(x.shape(), x);
  r.save_mean = like({s.C}, x);
  r.save_invstd = like({s.C}, x);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, x);
    GS_ON_CUDA(kernels::cuda::batch_norm_table().get()(
        s, x.data<float>(), ptr_or_null<float>(weight), ptr_or_null<float>(bias), ptr_or_null<float>(rm),
        ptr_or_null<float>(rv), r.out.data<float>(), r.save_mean.data<float>(), r.save_invstd.data<float>(),
        r.used_batch_stats, momentum, eps));
  } else {
    GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kernels::batch_norm_table<scalar_t>().get()(
        s, x.data<scalar_t>(), ptr_or_null<scalar_t>(weight), ptr_or_null<scalar_t>(bias), ptr_or_null<scalar_t>(rm),
        ptr_or_null<scalar_t>(rv), r.out.data<scalar_t>(), r.save_mean.data<scalar_t>(), r.save_invstd.data<scalar_t>(),
        r.used_batch_stats, momentum, eps);
    });
  }
  if (training && rm.defined() && !rm.is_same(running_mean)) copy_(running_mean, rm);
  if (training && rv.defined() && !rv.is_same(running_var)) copy_(running_var, rv);
  return r;
}

BatchNormGrads batch_norm_backward(const Tensor& x_in, const Tensor& gy_in, const Tensor& weight_in,
                                   const Tensor& save_mean, const Tensor& save_invstd, bool used_batch_stats,
                                   bool need_input, bool need_weight, bool need_bias) {
  const char* op = "batch_norm_backward";
  Device device = detail::op_device(op, {&x_in, &gy_in, &weight_in, &save_mean, &save_invstd});
  check_grad_shape(op, gy_in, x_in.shape());
  check_same_dtype(op, x_in, gy_in);
  check_channel_vector(op, x_in, weight_in, "weight");
  check_channel_vector(op, x_in, save_mean, "save_mean");
  check_channel_vector(op, x_in, save_invstd, "save_invstd");
  kernels::BatchNormShape s = bn_shape(x_in);
  Tensor x = contiguous(x_in), gy = contiguous(gy_in), mean = contiguous(save_mean), invstd = contiguous(save_invstd);
  Tensor weight = weight_in.defined() ? contiguous(weight_in) : Tensor();
  BatchNormGrads g;
  if (need_input) g.input = like(x.shape(), x);
  if (need_weight) g.weight = like({s.C}, x);
  if (need_bias) g.bias = like({s.C}, x);
  if (!need_input && !need_weight && !need_bias) return g;
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, x);
    GS_ON_CUDA(kernels::cuda::batch_norm_backward_table().get()(
        s, x.data<float>(), gy.data<float>(), ptr_or_null<float>(weight), mean.data<float>(),
        invstd.data<float>(), ptr_or_null<float>(g.input), ptr_or_null<float>(g.weight),
        ptr_or_null<float>(g.bias), used_batch_stats));
  } else {
    GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kernels::batch_norm_backward_table<scalar_t>().get()(
        s, x.data<scalar_t>(), gy.data<scalar_t>(), ptr_or_null<scalar_t>(weight), mean.data<scalar_t>(),
        invstd.data<scalar_t>(), ptr_or_null<scalar_t>(g.input), ptr_or_null<scalar_t>(g.weight),
        ptr_or_null<scalar_t>(g.bias), used_batch_stats);
    });
  }
  return g;
}

BatchNormDoubleGrads batch_norm_double_backward(const Tensor& x_in, const Tensor& gy_in, const Tensor& weight_in,
                                                const Tensor& save_mean, const Tensor& save_invstd,
                                                const Tensor& ggx_in, const Tensor& ggw_in, const Tensor& ggb_in,
                                                bool used_batch_stats, bool need_x, bool need_weight, bool need_gy) {
  const char* op = "batch_norm_double_backward";
  Device device =
      detail::op_device(op, {&x_in, &gy_in, &weight_in, &save_mean, &save_invstd, &ggx_in, &ggw_in, &ggb_in});
  check_grad_shape(op, gy_in, x_in.shape());
  check_same_dtype(op, x_in, gy_in);
  if (ggx_in.defined()) {
    check_grad_shape(op, ggx_in, x_in.shape());
    check_same_dtype(op, x_in, ggx_in);
  }
  check_channel_vector(op, x_in, weight_in, "weight");
  check_channel_vector(op, x_in, save_mean, "save_mean");
  check_channel_vector(op, x_in, save_invstd, "save_invstd");
  check_channel_vector(op, x_in, ggw_in, "weight gradient's gradient");
  check_channel_vector(op, x_in, ggb_in, "bias gradient's gradient");
  kernels::BatchNormShape s = bn_shape(x_in);
  Tensor x = contiguous(x_in), gy = contiguous(gy_in), mean = contiguous(save_mean), invstd = contiguous(save_invstd);
  auto optional = [](const Tensor& t) { return t.defined() ? contiguous(t) : Tensor(); };
  Tensor weight = optional(weight_in), ggx = optional(ggx_in), ggw = optional(ggw_in), ggb = optional(ggb_in);
  BatchNormDoubleGrads g;
  if (need_x) g.x = like(x.shape(), x);
  if (need_weight) g.weight = like({s.C}, x);
  if (need_gy) g.gy = like(x.shape(), x);
  if (!need_x && !need_weight && !need_gy) return g;
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, x);
    GS_ON_CUDA(kernels::cuda::batch_norm_double_backward_table().get()(
        s, x.data<float>(), gy.data<float>(), ptr_or_null<float>(weight), mean.data<float>(), invstd.data<float>(),
        ptr_or_null<float>(ggx), ptr_or_null<float>(ggw), ptr_or_null<float>(ggb), ptr_or_null<float>(g.x),
        ptr_or_null<float>(g.weight), ptr_or_null<float>(g.gy), used_batch_stats));
  } else {
    GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
      kernels::batch_norm_double_backward_table<scalar_t>().get()(
          s, x.data<scalar_t>(), gy.data<scalar_t>(), ptr_or_null<scalar_t>(weight), mean.data<scalar_t>(),
          invstd.data<scalar_t>(), ptr_or_null<scalar_t>(ggx), ptr_or_null<scalar_t>(ggw), ptr_or_null<scalar_t>(ggb),
          ptr_or_null<scalar_t>(g.x), ptr_or_null<scalar_t>(g.weight), ptr_or_null<scalar_t>(g.gy), used_batch_stats);
    });
  }
  return g;
}

// ---------------- cross-entropy rows ----------------

CrossEntropyRows cross_entropy_rows(const Tensor& logits, const Tensor& target, const Tensor& weight, double smoothing,
                                    int64_t ignore_index) {
  const char* op = "cross_entropy";
  Device device =
      weight.defined() ? detail::op_device(op, {&logits, &target, &weight}) : detail::op_device(op, {&logits, &target});
  Tensor x = contiguous(logits), t = contiguous(target), w = weight.defined() ? contiguous(weight) : Tensor();
  const int64_t N = x.shape()[0], C = x.shape()[1];
  CrossEntropyRows r{like({N}, x), like({N, C}, x)};
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, x);
    GS_ON_CUDA(kernels::cuda::cross_entropy_forward(x.data<float>(), t.data<int64_t>(),
                                                    w.defined() ? w.data<float>() : nullptr, r.loss.data<float>(),
                                                    r.log_probs.data<float>(), N, C, smoothing, ignore_index));
    return r;
  }
  GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
    kernels::cross_entropy_forward<scalar_t>(x.data<scalar_t>(), t.data<int64_t>(),
                                             w.defined() ? w.data<scalar_t>() : nullptr, r.loss.data<scalar_t>(),
                                             r.log_probs.data<scalar_t>(), N, C, smoothing, ignore_index);
  });
  return r;
}

Tensor cross_entropy_rows_backward(const Tensor& log_probs, const Tensor& target, const Tensor& weight,
                                   double weight_sum, const Tensor& grad_rows, double smoothing, int64_t ignore_index) {
  const char* op = "cross_entropy_backward";
  Device device = weight.defined() ? detail::op_device(op, {&log_probs, &target, &grad_rows, &weight})
                                   : detail::op_device(op, {&log_probs, &target, &grad_rows});
  Tensor lp = contiguous(log_probs), t = contiguous(target), g = contiguous(grad_rows);
  Tensor w = weight.defined() ? contiguous(weight) : Tensor();
  const int64_t N = lp.shape()[0], C = lp.shape()[1];
  Tensor dx = like({N, C}, lp);
  if (device.is_cuda()) {
    detail::require_cuda_f32(op, lp);
    GS_ON_CUDA(kernels::cuda::cross_entropy_backward(lp.data<float>(), t.data<int64_t>(),
                                                     w.defined() ? w.data<float>() : nullptr, weight_sum,
                                                     g.data<float>(), dx.data<float>(), N, C, smoothing, ignore_index));
    return dx;
  }
  GS_DISPATCH_FLOAT(lp.dtype(), op, [&] {
    kernels::cross_entropy_backward<scalar_t>(lp.data<scalar_t>(), t.data<int64_t>(),
                                              w.defined() ? w.data<scalar_t>() : nullptr, weight_sum,
                                              g.data<scalar_t>(), dx.data<scalar_t>(), N, C, smoothing, ignore_index);
  });
  return dx;
}

// ---------------- dropout ----------------

DropoutResult dropout(const Tensor& x, double p, bool training, Generator* gen) {
  const char* op = "dropout";
  Device device = detail::op_device(op, {&x});
  GS_CHECK(p >= 0 && p <= 1, "%s: p must be in [0, 1], got %g", op, p);
  GS_CHECK(is_floating(x.dtype()), "%s: input must be f32 or f64, got %s", op, dtype_name(x.dtype()));
  if (!training || p == 0) return {x, Tensor()};
  Generator& g = gen ? *gen : default_generator();
  const uint64_t stream = gen ? 0 : rng_stream();  // a caller's own generator is used as given
  Tensor mask = like(x.shape(), x);
  if (device.is_cuda()) {
    // A Philox counter-based mask (kernels/cuda/philox.h): element i is a function of (seed, i),
    // the seed one draw of the generator, so a seeded run is reproducible on the GPU too.
    detail::require_cuda_f32(op, x);
    const uint64_t draw = g.next_u64();
    [[maybe_unused]] const uint64_t seed = stream ? stream_seed(draw, stream) : draw;
    GS_ON_CUDA(kernels::cuda::dropout_mask(mask.data<float>(), mask.numel(), static_cast<float>(p),
                                           static_cast<float>(p < 1 ? 1.0 / (1.0 - p) : 0.0), seed, 0));
    return {binary(BinaryOp::Mul, x, mask), mask};
  }
  // One uniform draw per element in logical order: the same seed gives the same mask. On another
  // stream (data-parallel rank r > 0) the draws come from a generator keyed by the first draw and
  // r, and `g` skips as many, so it stays in step with stream 0's.
  const double keep_scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
  const int64_t n = mask.numel();
  Generator stream_gen(0);
  Generator* draws = &g;
  if (stream != 0 && n > 0) {
    stream_gen.manual_seed(stream_seed(g.next_u64(), stream));
    for (int64_t i = 1; i < n; ++i) g.next_u64();
    draws = &stream_gen;
  }
  GS_DISPATCH_FLOAT(x.dtype(), op, [&] {
    scalar_t* m = mask.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) m[i] = draws->uniform() < p ? scalar_t(0) : scalar_t(keep_scale);
  });
  return {binary(BinaryOp::Mul, x, mask), mask};
}

}  // namespace gs::raw
