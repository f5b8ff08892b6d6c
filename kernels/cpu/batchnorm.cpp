// Batch-norm kernels: one channel at a time (all of its N*L values), so "ref" and "omp"
// share the per-channel code and differ only in how channels are scheduled.
#include "kernels/cpu/batchnorm.h"

#include <cmath>

namespace gs::kernels {

// batchnorm_vec.cpp: the vector-lane variant
template <class T>
void batch_norm_vec(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T* running_mean,
                    T* running_var, T* y, T* save_mean, T* save_invstd, bool use_batch_stats, double momentum,
                    double eps);
template <class T>
void batch_norm_backward_vec(const BatchNormShape& s, const T* x, const T* gy, const T* gamma, const T* save_mean,
                             const T* save_invstd, T* gx, T* ggamma, T* gbeta, bool use_batch_stats);
template <class T>
void batch_norm_double_backward_vec(const BatchNormShape& s, const T* x, const T* gy, const T* gamma,
                                    const T* save_mean, const T* save_invstd, const T* ggx, const T* gggamma,
                                    const T* ggbeta, T* dx, T* dgamma, T* dgy, bool use_batch_stats);

namespace {

template <class T>
void batch_norm_channel(const BatchNormShape& s, int64_t c, const T* x, const T* gamma, const T* beta, T* running_mean,
                        T* running_var, T* y, T* save_mean, T* save_invstd, bool use_batch_stats, double momentum,
                        double eps) {
  const int64_t M = s.N * s.L, stride_n = s.C * s.L;
  double mean, var;
  if (use_batch_stats) {
    double sum = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* xc = x + n * stride_n + c * s.L;
      for (int64_t l = 0; l < s.L; ++l) sum += xc[l];
    }
    mean = sum / double(M);
    double sq = 0;  // two-pass variance: no cancellation
    for (int64_t n = 0; n < s.N; ++n) {
      const T* xc = x + n * stride_n + c * s.L;
      for (int64_t l = 0; l < s.L; ++l) {
        const double d = double(xc[l]) - mean;
        sq += d * d;
      }
    }
    var = sq / double(M);
    if (running_mean) running_mean[c] = T((1 - momentum) * double(running_mean[c]) + momentum * mean);
    if (running_var) {
      const double unbiased = M > 1 ? sq / double(M - 1) : var;
      running_var[c] = T((1 - momentum) * double(running_var[c]) + momentum * unbiased);
    }
  } else {
    mean = double(running_mean[c]);
    var = double(running_var[c]);
  }
  const double invstd = 1.0 / std::sqrt(var + eps);
  save_mean[c] = T(mean);
  save_invstd[c] = T(invstd);
  const double scale = (gamma ? double(gamma[c]) : 1.0) * invstd;
  const double shift = (beta ? double(beta[c]) : 0.0) - mean * scale;
  for (int64_t n = 0; n < s.N; ++n) {
    const T* xc = x + n * stride_n + c * s.L;
    T* yc = y + n * stride_n + c * s.L;
    for (int64_t l = 0; l < s.L; ++l) yc[l] = T(double(xc[l]) * scale + shift);
  }
}

template <class T>
void batch_norm_backward_channel(const BatchNormShape& s, int64_t c, const T* x, const T* gy, const T* gamma,
                                 const T* save_mean, const T* save_invstd, T* gx, T* ggamma, T* gbeta,
                                 bool use_batch_stats) {
  const int64_t M = s.N * s.L, stride_n = s.C * s.L;
  const double mean = save_mean[c], invstd = save_invstd[c];
  double sum_gy = 0, sum_gy_xhat = 0;
  for (int64_t n = 0; n < s.N; ++n) {
    const T* xc = x + n * stride_n + c * s.L;
    const T* gc = gy + n * stride_n + c * s.L;
    for (int64_t l = 0; l < s.L; ++l) {
      sum_gy += gc[l];
      sum_gy_xhat += double(gc[l]) * (double(xc[l]) - mean) * invstd;
    }
  }
  if (ggamma) ggamma[c] = T(sum_gy_xhat);
  if (gbeta) gbeta[c] = T(sum_gy);
  if (!gx) return;
  const double scale = (gamma ? double(gamma[c]) : 1.0) * invstd;
  // gx = scale * (gy - mean(gy) - xhat * mean(gy xhat)) with batch stats; scale * gy otherwise
  const double mean_gy = use_batch_stats ? sum_gy / double(M) : 0.0;
  const double mean_gy_xhat = use_batch_stats ? sum_gy_xhat / double(M) : 0.0;
  for (int64_t n = 0; n < s.N; ++n) {
    const T* xc = x + n * stride_n + c * s.L;
    const T* gc = gy + n * stride_n + c * s.L;
    T* out = gx + n * stride_n + c * s.L;
    for (int64_t l = 0; l < s.L; ++l) {
      const double xhat = (double(xc[l]) - mean) * invstd;
      out[l] = T(scale * (double(gc[l]) - mean_gy - xhat * mean_gy_xhat));
    }
  }
}

template <class T>
void batch_norm_double_backward_channel(const BatchNormShape& s, int64_t c, const T* x, const T* gy, const T* gamma,
                                        const T* save_mean, const T* save_invstd, const T* ggx, const T* gggamma,
                                        const T* ggbeta, T* dx, T* dgamma, T* dgy, bool use_batch_stats) {
  const int64_t M = s.N * s.L, stride_n = s.C * s.L;
  const double mean = save_mean[c], invstd = save_invstd[c];
  BatchNormDoubleSums S;
  for (int64_t n = 0; n < s.N; ++n) {
    const int64_t base = n * stride_n + c * s.L;
    for (int64_t l = 0; l < s.L; ++l) {
      const double xhat = (double(x[base + l]) - mean) * invstd, g = gy[base + l];
      S.gy += g;
      S.gy_xhat += g * xhat;
      if (ggx) {
        const double gg = ggx[base + l];
        S.ggx += gg;
        S.ggx_xhat += gg * xhat;
        S.ggx_gy += gg * g;
      }
    }
  }
  const BatchNormDoubleCoefficients k = batch_norm_double_coefficients(
      S, double(M), invstd, gamma ? double(gamma[c]) : 1.0, gggamma ? double(gggamma[c]) : 0.0,
      ggbeta ? double(ggbeta[c]) : 0.0, use_batch_stats);
  if (dgamma) dgamma[c] = T(k.dgamma);
  if (!dx && !dgy) return;
  for (int64_t n = 0; n < s.N; ++n) {
    const int64_t base = n * stride_n + c * s.L;
    for (int64_t l = 0; l < s.L; ++l) {
      const double xhat = (double(x[base + l]) - mean) * invstd, gg = ggx ? double(ggx[base + l]) : 0.0;
      if (dx) dx[base + l] = T(k.dx_ggx * gg + k.dx_gy * double(gy[base + l]) + k.dx_xhat * xhat + k.dx_one);
      if (dgy) dgy[base + l] = T(k.dgy_ggx * gg + k.dgy_xhat * xhat + k.dgy_one);
    }
  }
}

template <bool Parallel, class T>
void batch_norm_impl(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T* running_mean,
                     T* running_var, T* y, T* save_mean, T* save_invstd, bool use_batch_stats, double momentum,
                     double eps) {
#pragma omp parallel for schedule(static) if (Parallel && s.N * s.C * s.L > 16384)
  for (int64_t c = 0; c < s.C; ++c)
    batch_norm_channel(s, c, x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd, use_batch_stats,
                       momentum, eps);
}

template <bool Parallel, class T>
void batch_norm_backward_impl(const BatchNormShape& s, const T* x, const T* gy, const T* gamma, const T* save_mean,
                              const T* save_invstd, T* gx, T* ggamma, T* gbeta, bool use_batch_stats) {
#pragma omp parallel for schedule(static) if (Parallel && s.N * s.C * s.L > 16384)
  for (int64_t c = 0; c < s.C; ++c)
    batch_norm_backward_channel(s, c, x, gy, gamma, save_mean, save_invstd, gx, ggamma, gbeta, use_batch_stats);
}

template <bool Parallel, class T>
void batch_norm_double_backward_impl(const BatchNormShape& s, const T* x, const T* gy, const T* gamma,
                                     const T* save_mean, const T* save_invstd, const T* ggx, const T* gggamma,
                                     const T* ggbeta, T* dx, T* dgamma, T* dgy, bool use_batch_stats) {
#pragma omp parallel for schedule(static) if (Parallel && s.N * s.C * s.L > 16384)
  for (int64_t c = 0; c < s.C; ++c)
    batch_norm_double_backward_channel(s, c, x, gy, gamma, save_mean, save_invstd, ggx, gggamma, ggbeta, dx, dgamma,
                                       dgy, use_batch_stats);
}

}  // namespace

template <class T>
const VariantTable<BatchNormFn<T>>& batch_norm_table() {
  static const VariantTable<BatchNormFn<T>> table = [] {
    VariantTable<BatchNormFn<T>> t("batch_norm");
    t.add("ref", &batch_norm_impl<false, T>).add("omp", &batch_norm_impl<true, T>).add("vec", &batch_norm_vec<T>, true);
    return t;
  }();
  return table;
}
template <class T>
const VariantTable<BatchNormBackwardFn<T>>& batch_norm_backward_table() {
  static const VariantTable<BatchNormBackwardFn<T>> table = [] {
    VariantTable<BatchNormBackwardFn<T>> t("batch_norm_backward");
    t.add("ref", &batch_norm_backward_impl<false, T>).add("omp", &batch_norm_backward_impl<true, T>);
    t.add("vec", &batch_norm_backward_vec<T>, true);
    return t;
  }();
  return table;
}
template <class T>
const VariantTable<BatchNormDoubleBackwardFn<T>>& batch_norm_double_backward_table() {
  static const VariantTable<BatchNormDoubleBackwardFn<T>> table = [] {
    VariantTable<BatchNormDoubleBackwardFn<T>> t("batch_norm_double_backward");
    t.add("ref", &batch_norm_double_backward_impl<false, T>).add("omp", &batch_norm_double_backward_impl<true, T>);
    t.add("vec", &batch_norm_double_backward_vec<T>, true);
    return t;
  }();
  return table;
}
template const VariantTable<BatchNormFn<float>>& batch_norm_table<float>();
template const VariantTable<BatchNormFn<double>>& batch_norm_table<double>();
template const VariantTable<BatchNormBackwardFn<float>>& batch_norm_backward_table<float>();
template const VariantTable<BatchNormBackwardFn<double>>& batch_norm_backward_table<double>();
template const VariantTable<BatchNormDoubleBackwardFn<float>>& batch_norm_double_backward_table<float>();
template const VariantTable<BatchNormDoubleBackwardFn<double>>& batch_norm_double_backward_table<double>();

}  // namespace gs::kernels
