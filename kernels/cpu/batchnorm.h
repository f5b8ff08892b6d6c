// Fused batch-norm kernels over x viewed as (N, C, L) with L = H*W (1 for (N,C) input).
// Variants: "ref" (serial), "omp" (channels in parallel) and "vec" (batchnorm_vec.cpp: sums in
// vector lanes, rows added in double, channels in parallel; the default). ref/omp accumulate in double.
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

template <class T>
const VariantTable<BatchNormFn<T>>& batch_norm_table();
template <class T>
const VariantTable<BatchNormBackwardFn<T>>& batch_norm_backward_table();

}  // namespace gs::kernels
