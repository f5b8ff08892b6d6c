// 2-d pooling kernels over (N,C,H,W) planes: max (with argmax for backward), average
// (count_include_pad as PyTorch) and adaptive average. Variants: "ref" (serial) and "omp"
// (planes in parallel, the default); max_pool2d also "fast" (2x2/stride-2 path, its default).
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace gs::kernels {

// x (N,C,H,W) -> y (N,C,P,Q); the kernel/stride/pad fields are unused by adaptive pooling.
struct Pool2dShape {
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t P = 0, Q = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
};

// Output size along one axis (floor mode): (in + 2 pad - k) / stride + 1.
inline int64_t pool_out_size(int64_t in, int64_t pad, int64_t k, int64_t stride) {
  return (in + 2 * pad - k) / stride + 1;
}

// y (N,C,P,Q) = max over each window of x (N,C,H,W); argmax (N,C,P,Q) = h*W + w of the max
// within its plane (first one on ties; NaN wins, the last NaN of a window, as PyTorch)
template <class T>
using MaxPool2dFn = void (*)(const Pool2dShape& s, const T* x, T* y, int64_t* argmax);
// gx (N,C,H,W) = scatter-add of gy (N,C,P,Q) at argmax (N,C,P,Q); gx is overwritten
template <class T>
using MaxPool2dBackwardFn = void (*)(const Pool2dShape& s, const T* gy, const int64_t* argmax, T* gx);
// y (N,C,P,Q) = window mean of x (N,C,H,W); padding counts in the divisor iff count_include_pad
template <class T>
using AvgPool2dFn = void (*)(const Pool2dShape& s, const T* x, T* y, bool count_include_pad);
// gx (N,C,H,W) = backward of avg pool from gy (N,C,P,Q); gx is overwritten
template <class T>
using AvgPool2dBackwardFn = void (*)(const Pool2dShape& s, const T* gy, T* gx, bool count_include_pad);
// y (N,C,P,Q) = mean of x (N,C,H,W) over [floor(i H/P), ceil((i+1) H/P)) (same for W)
template <class T>
using AdaptiveAvgPool2dFn = void (*)(const Pool2dShape& s, const T* x, T* y);
// gx (N,C,H,W) = backward of adaptive avg pool from gy (N,C,P,Q); gx is overwritten
template <class T>
using AdaptiveAvgPool2dBackwardFn = void (*)(const Pool2dShape& s, const T* gy, T* gx);

template <class T>
const VariantTable<MaxPool2dFn<T>>& max_pool2d_table();
template <class T>
const VariantTable<MaxPool2dBackwardFn<T>>& max_pool2d_backward_table();
template <class T>
const VariantTable<AvgPool2dFn<T>>& avg_pool2d_table();
template <class T>
const VariantTable<AvgPool2dBackwardFn<T>>& avg_pool2d_backward_table();
template <class T>
const VariantTable<AdaptiveAvgPool2dFn<T>>& adaptive_avg_pool2d_table();
template <class T>
const VariantTable<AdaptiveAvgPool2dBackwardFn<T>>& adaptive_avg_pool2d_backward_table();

}  // namespace gs::kernels
