// No-grad front-ends of the neural-network ops (conv2d, pooling, batch norm, dropout): they
// check shapes and dtypes with errors that name the op and the shapes, then dispatch to the
// selected kernel variant (kernels/cpu/{conv2d,pool,batchnorm}.h). The differentiable ops
// built on them are in autograd/nn_ops.h. Layouts follow PyTorch: x (N,C,H,W), w (K,C/g,R,S).
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace gs {

class Generator;

// Parameters shared by raw:: and the differentiable ops in autograd/nn_ops.h.
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

struct Pool2dParams {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;  // PyTorch's default stride = kernel size
  int64_t pad_h = 0, pad_w = 0;
};

namespace raw {

// ---- conv2d ----
// y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C/groups,R,S)) + bias (K) (bias may be undefined)
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
// gx (x_shape) from gy (N,K,P,Q) and w
Tensor conv2d_backward_data(const Tensor& gy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p);
// Weight gradient (w_shape) and bias gradient (K); each computed only when asked for.
struct Conv2dParamGrads {
  Tensor weight, bias;
};
Conv2dParamGrads conv2d_backward_params(const Tensor& x, const Tensor& gy, const Shape& w_shape, const Conv2dParams& p,
                                        bool need_weight, bool need_bias);

// ---- pooling (x is (N,C,H,W)) ----
struct MaxPool2dResult {
  Tensor out;     // (N,C,P,Q)
  Tensor argmax;  // (N,C,P,Q) i64: h*W + w of each max within its plane
};
MaxPool2dResult max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor max_pool2d_backward(const Tensor& gy, const Tensor& argmax, const Shape& x_shape, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p, bool count_include_pad);
Tensor avg_pool2d_backward(const Tensor& gy, const Shape& x_shape, const Pool2dParams& p, bool count_include_pad);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor adaptive_avg_pool2d_backward(const Tensor& gy, const Shape& x_shape);

// ---- batch norm over dim 1 of (N,C) or (N,C,H,W) ----
struct BatchNormResult {
  Tensor out;
  Tensor save_mean, save_invstd;  // (C): the statistics used, for backward
  bool used_batch_stats = true;   // training, or no running statistics to use
};
// Batch statistics when training or when running_mean/running_var are undefined; running
// statistics (updated in place when training) otherwise. weight/bias (C) may be undefined.
BatchNormResult batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                           const Tensor& running_var, bool training, double momentum, double eps);
struct BatchNormGrads {
  Tensor input, weight, bias;
};
BatchNormGrads batch_norm_backward(const Tensor& x, const Tensor& gy, const Tensor& weight, const Tensor& save_mean,
                                   const Tensor& save_invstd, bool used_batch_stats, bool need_input, bool need_weight,
                                   bool need_bias);
// The backward of batch_norm_backward: given the gradients ggx, ggw, ggb arriving at its outputs
// (input, weight, bias grads; any may be undefined: zero), the gradients w.r.t. its inputs x,
// weight and gy (kernels/cpu/batchnorm.h has the formulas), each only if asked for.
struct BatchNormDoubleGrads {
  Tensor x, weight, gy;
};
BatchNormDoubleGrads batch_norm_double_backward(const Tensor& x, const Tensor& gy, const Tensor& weight,
                                                const Tensor& save_mean, const Tensor& save_invstd, const Tensor& ggx,
                                                const Tensor& ggw, const Tensor& ggb, bool used_batch_stats,
                                                bool need_x, bool need_weight, bool need_gy);

// ---- softmax cross-entropy over rows of (N, C) logits, i64 targets (N) ----
// weight: class weights (C), logits' dtype and device, or undefined (all 1); the formulas are
// kernels/cpu/softmax.h's.
struct CrossEntropyRows {
  Tensor loss;       // (N): per-row loss, 0 for ignored rows
  Tensor log_probs;  // (N, C): saved for backward
};
CrossEntropyRows cross_entropy_rows(const Tensor& logits, const Tensor& target, const Tensor& weight, double smoothing,
                                    int64_t ignore_index);
// (N, C) gradient of the rows' losses given grad_rows (N); 0 for ignored rows. weight_sum: the
// sum of weight (unused without one).
Tensor cross_entropy_rows_backward(const Tensor& log_probs, const Tensor& target, const Tensor& weight,
                                   double weight_sum, const Tensor& grad_rows, double smoothing, int64_t ignore_index);

// ---- dropout ----
struct DropoutResult {
  Tensor out;
  Tensor mask;  // x's shape and dtype: 0 or 1/(1-p); undefined when dropout is the identity
};
// Inverted dropout with a mask drawn from gen (default generator when null). p = 0 or
// !training returns x itself; p = 1 gives zeros.
DropoutResult dropout(const Tensor& x, double p, bool training, Generator* gen);

}  // namespace raw
}  // namespace gs
