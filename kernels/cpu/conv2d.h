// 2-d convolution kernels (cross-correlation, as PyTorch): forward, backward-data and
// backward-weight (+ bias). Variants: "ref" (direct loops, double accumulation, the truth),
// "im2col" (im2col + the selected gemm, OpenMP over the batch; the backward default without
// oneDNN and for f64), "direct" (conv2d_direct.cpp: padded planes, vector register tiles; the
// forward default without oneDNN and for f64) and, f32 only where oneDNN is linked (GS_DNNL),
// "onednn" (conv2d_dnnl.cpp; then the f32 default of all three passes).
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace gs::kernels {

// Geometry of one convolution. Shape letters: x (N,C,H,W), w (K, C/groups, R, S), y (N,K,P,Q).
struct Conv2dShape {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, R = 0, S = 0;         // weight: K out channels, R x S kernel
  int64_t P = 0, Q = 0;                // output spatial size
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// Output size along one axis: floor((in + 2 pad - dilation (k-1) - 1) / stride) + 1.
inline int64_t conv_out_size(int64_t in, int64_t pad, int64_t dilation, int64_t k, int64_t stride) {
  return (in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
}

// y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C/g,R,S)) + bias (K) (bias may be null)
template <class T>
using Conv2dFn = void (*)(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);
// gx (N,C,H,W) = backward of conv w.r.t. x, from gy (N,K,P,Q) and w (K,C/g,R,S); gx is overwritten
template <class T>
using Conv2dBackwardDataFn = void (*)(const Conv2dShape& s, const T* gy, const T* w, T* gx);
// gw (K,C/g,R,S) = sum_n gy (N,K,P,Q) (x) x (N,C,H,W);  gbias (K) = sum over N,P,Q of gy.
// Either output may be null (not needed); both are overwritten.
template <class T>
using Conv2dBackwardWeightFn = void (*)(const Conv2dShape& s, const T* x, const T* gy, T* gw, T* gbias);

template <class T>
const VariantTable<Conv2dFn<T>>& conv2d_table();
template <class T>
const VariantTable<Conv2dBackwardDataFn<T>>& conv2d_backward_data_table();
template <class T>
const VariantTable<Conv2dBackwardWeightFn<T>>& conv2d_backward_weight_table();

}  // namespace gs::kernels
