// Fused batch-norm kernels over x viewed as (N, C, L) with L = H*W (1 for (N,C) input).
// Variants: "ref" (serial), "omp" (channels in parallel) and "vec" (batchnorm_vec.cpp: sums in
// vector lanes, rows added in double, channels in parallel; the default). ref/omp accumulate in double.
// The double backward has the same three, "vec" the default.
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace gs::kernels {

struct BatchNormShape {
  int64_t N = 0, C = 0, L = 1;  // x (N, C, L)
};

// y (N,C,L) = (x - mean) * invstd * gamma + beta.  gamma/beta (C) may be null (1 and 0).
// use_batch_stats: mean/var come from x (biased var for normalising); when running_mean/var (C)
//   are non-null they are updated in place: r = (1 - momentum) r + momentum stat, with the
//   unbiased variance, as PyTorch. Otherwise mean/var are read from running_mean/var.
// save_mean/save_invstd (C) receive the statistics used, for backward.
template <class T>
using BatchNormFn = void (*)(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T* running_mean,
                             T* running_var, T* y, T* save_mean, T* save_invstd, bool use_batch_stats, double momentum,
                             double eps);
// From gy (N,C,L), x, gamma (C, may be null) and the saved statistics:
//   batch stats:  gx = gamma invstd / M (M gy - sum(gy) - xhat sum(gy xhat)),  M = N*L
//   fixed stats:  gx = gamma invstd gy
//   ggamma = sum(gy xhat), gbeta = sum(gy)   (sums over N and L)
// gx (N,C,L), ggamma (C), gbeta (C) may each be null; those given are overwritten.
template <class T>
using BatchNormBackwardFn = void (*)(const BatchNormShape& s, const T* x, const T* gy, const T* gamma,
                                     const T* save_mean, const T* save_invstd, T* gx, T* ggamma, T* gbeta,
                                     bool use_batch_stats);

// The backward of the backward (a create_graph backward differentiated again). Given the
// backward's inputs x, gy, gamma and the saved statistics, and the gradients ggx (N,C,L),
// gggamma (C), ggbeta (C) arriving at its outputs gx, ggamma, gbeta (any may be null: zero),
// writes the gradients of <gx, ggx> + <ggamma, gggamma> + <gbeta, ggbeta> w.r.t. x (dx),
// gamma (dgamma) and gy (dgy); each output may be null (not needed). Per channel that is five
// sums (BatchNormDoubleSums) and, per element, dx = a ggx + b gy + c xhat + d and
// dgy = a' ggx + c' xhat + d' with the coefficients of batch_norm_double_coefficients.
template <class T>
using BatchNormDoubleBackwardFn = void (*)(const BatchNormShape& s, const T* x, const T* gy, const T* gamma,
                                           const T* save_mean, const T* save_invstd, const T* ggx, const T* gggamma,
                                           const T* ggbeta, T* dx, T* dgamma, T* dgy, bool use_batch_stats);

// One channel's sums over its M = N*L values: of gy, gy xhat, ggx, ggx xhat and ggx gy.
struct BatchNormDoubleSums {
  double gy = 0, gy_xhat = 0, ggx = 0, ggx_xhat = 0, ggx_gy = 0;
};
struct BatchNormDoubleCoefficients {
  double dx_ggx = 0, dx_gy = 0, dx_xhat = 0, dx_one = 0;  // dx = dx_ggx ggx + dx_gy gy + dx_xhat xhat + dx_one
  double dgy_ggx = 0, dgy_xhat = 0, dgy_one = 0;          // dgy = dgy_ggx ggx + dgy_xhat xhat + dgy_one
  double dgamma = 0;
};
// With batch statistics (xhat = (x - mean) invstd, both of x), for one channel with weight w,
// invstd r and incoming gamma/beta gradients G, B (S = the sums, M values):
//   dx    = -r^2 w S.gy_xhat/M ggx + (r G - r^2 w S.ggx_xhat/M) gy
//           + (r^2 w (3 S.gy_xhat S.ggx_xhat/M^2 - S.ggx_gy/M + S.gy S.ggx/M^2) - r G S.gy_xhat/M) xhat
//           + r^2 w (S.gy_xhat S.ggx + S.ggx_xhat S.gy)/M^2 - r G S.gy/M
//   dgy   = w r (ggx - S.ggx/M - xhat S.ggx_xhat/M) + G xhat + B
//   dgamma = r (S.ggx_gy - S.gy S.ggx/M - S.ggx_xhat S.gy_xhat/M)
// With fixed statistics (gx = w r gy, ggamma = sum gy xhat): dx = r G gy, dgy = w r ggx + G xhat
// + B, dgamma = r S.ggx_gy. constexpr, so the CUDA kernel calls the same code.
constexpr BatchNormDoubleCoefficients batch_norm_double_coefficients(const BatchNormDoubleSums& S, double M, double r,
                                                                     double w, double G, double B,
                                                                     bool use_batch_stats) {
  BatchNormDoubleCoefficients k;
  k.dgy_ggx = w * r;
  k.dgy_xhat = G;
  k.dgy_one = B;
  if (!use_batch_stats) {
    k.dx_gy = r * G;
    k.dgamma = r * S.ggx_gy;
    return k;
  }
  const double r2w = r * r * w, M2 = M * M;
  k.dx_ggx = -r2w * S.gy_xhat / M;
  k.dx_gy = r * G - r2w * S.ggx_xhat / M;
  k.dx_xhat = r2w * (3 * S.gy_xhat * S.ggx_xhat / M2 - S.ggx_gy / M + S.gy * S.ggx / M2) - r * G * S.gy_xhat / M;
  k.dx_one = r2w * (S.gy_xhat * S.ggx + S.ggx_xhat * S.gy) / M2 - r * G * S.gy / M;
  k.dgy_xhat -= w * r * S.ggx_xhat / M;
  k.dgy_one -= w * r * S.ggx / M;
  k.dgamma = r * (S.ggx_gy - S.gy * S.ggx / M - S.ggx_xhat * S.gy_xhat / M);
  return k;
}

template <class T>
const VariantTable<BatchNormFn<T>>& batch_norm_table();
template <class T>
const VariantTable<BatchNormBackwardFn<T>>& batch_norm_backward_table();
template <class T>
const VariantTable<BatchNormDoubleBackwardFn<T>>& batch_norm_double_backward_table();

}  // namespace gs::kernels
