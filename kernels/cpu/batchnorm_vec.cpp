// The "vec" batch-norm variant: the same per-channel maths as batchnorm.cpp's ref/omp, with the
// channel sums taken in vector lanes (each row of L values summed in T lanes, rows added in
// double) instead of one serial double chain, and the elementwise passes as vector FMAs.
// Channels are spread over OpenMP threads when the tensor is big enough.
#include <cmath>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/simd.h"

namespace gs::kernels {

namespace {

using simd::Vec;

// sum of p[0..n) in lanes, returned in double
template <class T> double lane_sum(const T* p, int64_t n) {
  constexpr int L = simd::lanes<T>();
  Vec<T> a0{}, a1{};
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    a0 += simd::load(p + i);
    a1 += simd::load(p + i + L);
  }
  for (; i + L <= n; i += L) a0 += simd::load(p + i);
  double s = double(simd::sum<T>(a0 + a1));
  for (; i < n; ++i) s += double(p[i]);
  return s;
}

// sum of (p[i] - mean)^2
template <class T> double centered_square_sum(const T* p, int64_t n, T mean) {
  constexpr int L = simd::lanes<T>();
  Vec<T> a0{}, a1{};
  const Vec<T> m = simd::splat(mean);
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    const Vec<T> d0 = simd::load(p + i) - m, d1 = simd::load(p + i + L) - m;
    a0 += d0 * d0;
    a1 += d1 * d1;
  }
  for (; i + L <= n; i += L) {
    const Vec<T> d = simd::load(p + i) - m;
    a0 += d * d;
  }
  double s = double(simd::sum<T>(a0 + a1));
  for (; i < n; ++i) s += (double(p[i]) - double(mean)) * (double(p[i]) - double(mean));
  return s;
}

// one pass: sum of g[i] and of g[i] * (x[i] - mean)
template <class T> void grad_sums(const T* x, const T* g, int64_t n, T mean, double* sum_g, double* sum_g_dx) {
  constexpr int L = simd::lanes<T>();
  Vec<T> sg{}, sgx{};
  const Vec<T> m = simd::splat(mean);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const Vec<T> gv = simd::load(g + i);
    sg += gv;
    sgx += gv * (simd::load(x + i) - m);
  }
  double a = double(simd::sum<T>(sg)), b = double(simd::sum<T>(sgx));
  for (; i < n; ++i) {
    a += double(g[i]);
    b += double(g[i]) * (double(x[i]) - double(mean));
  }
  *sum_g += a;
  *sum_g_dx += b;
}

// one pass for the double backward: the sums of g, g d, gg, gg d and gg g, with d = x - mean
template <class T> void double_sums(const T* x, const T* g, const T* gg, int64_t n, T mean, BatchNormDoubleSums* S) {
  constexpr int L = simd::lanes<T>();
  Vec<T> sg{}, sgd{}, sgg{}, sggd{}, sggg{};
  const Vec<T> m = simd::splat(mean);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const Vec<T> gv = simd::load(g + i), ggv = simd::load(gg + i), d = simd::load(x + i) - m;
    sg += gv;
    sgd += gv * d;
    sgg += ggv;
    sggd += ggv * d;
    sggg += ggv * gv;
  }
  double a = double(simd::sum<T>(sg)), b = double(simd::sum<T>(sgd)), c = double(simd::sum<T>(sgg)),
         e = double(simd::sum<T>(sggd)), f = double(simd::sum<T>(sggg));
  for (; i < n; ++i) {
    const double d = double(x[i]) - double(mean);
    a += double(g[i]);
    b += double(g[i]) * d;
    c += double(gg[i]);
    e += double(gg[i]) * d;
    f += double(gg[i]) * double(g[i]);
  }
  S->gy += a, S->gy_xhat += b, S->ggx += c, S->ggx_xhat += e, S->ggx_gy += f;  // xhat sums: times invstd later
}

// out[i] = a * x[i] + b * y[i] + c * z[i] + d  (y, z may be null)
template <class T> void affine(const T* x, const T* y, const T* z, T* out, int64_t n, T a, T b, T c, T d) {
  constexpr int L = simd::lanes<T>();
  const Vec<T> va = simd::splat(a), vb = simd::splat(b), vc = simd::splat(c), vd = simd::splat(d);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    Vec<T> v = simd::load(x + i) * va + vd;
    if (y) v += simd::load(y + i) * vb;
    if (z) v += simd::load(z + i) * vc;
    simd::store(out + i, v);
  }
  for (; i < n; ++i) out[i] = a * x[i] + (y ? b * y[i] : T(0)) + (z ? c * z[i] : T(0)) + d;
}

template <class T>
void bn_forward_channel(const BatchNormShape& s, int64_t c, const T* x, const T* gamma, const T* beta, T* running_mean,
                        T* running_var, T* y, T* save_mean, T* save_invstd, bool use_batch_stats, double momentum,
                        double eps) {
  const int64_t M = s.N * s.L, stride_n = s.C * s.L;
  double mean, var;
  if (use_batch_stats) {
    double sum = 0;
    for (int64_t n = 0; n < s.N; ++n) sum += lane_sum(x + n * stride_n + c * s.L, s.L);
    mean = sum / double(M);
    double sq = 0;  // two-pass variance: no cancellation
    for (int64_t n = 0; n < s.N; ++n) sq += centered_square_sum<T>(x + n * stride_n + c * s.L, s.L, T(mean));
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
  for (int64_t n = 0; n < s.N; ++n)
    affine<T>(x + n * stride_n + c * s.L, nullptr, nullptr, y + n * stride_n + c * s.L, s.L, T(scale), T(0), T(0),
              T(shift));
}

template <class T>
void bn_backward_channel(const BatchNormShape& s, int64_t c, const T* x, const T* gy, const T* gamma,
                         const T* save_mean, const T* save_invstd, T* gx, T* ggamma, T* gbeta, bool use_batch_stats) {
  const int64_t M = s.N * s.L, stride_n = s.C * s.L;
  const double mean = save_mean[c], invstd = save_invstd[c];
  double sum_gy = 0, sum_gy_dx = 0;  // dx = x - mean
  for (int64_t n = 0; n < s.N; ++n) {
    const int64_t at = n * stride_n + c * s.L;
    grad_sums<T>(x + at, gy + at, s.L, T(mean), &sum_gy, &sum_gy_dx);
  }
  const double sum_gy_xhat = sum_gy_dx * invstd;
  if (ggamma) ggamma[c] = T(sum_gy_xhat);
  if (gbeta) gbeta[c] = T(sum_gy);
  if (!gx) return;
  const double scale = (gamma ? double(gamma[c]) : 1.0) * invstd;
  // gx = scale (gy - mean(gy) - xhat mean(gy xhat)) = scale gy - k x + (k mean - scale mean(gy))
  const double mean_gy = use_batch_stats ? sum_gy / double(M) : 0.0;
  const double k = use_batch_stats ? scale * invstd * sum_gy_xhat / double(M) : 0.0;
  for (int64_t n = 0; n < s.N; ++n) {
    const int64_t at = n * stride_n + c * s.L;
    affine<T>(gy + at, x + at, nullptr, gx + at, s.L, T(scale), T(-k), T(0), T(k * mean - scale * mean_gy));
  }
}

// The channel's double backward: its sums in lanes, then dx and dgy as one affine pass each, with
// xhat = invstd (x - mean) folded into the coefficients.
template <class T>
void bn_double_backward_channel(const BatchNormShape& s, int64_t c, const T* x, const T* gy, const T* gamma,
                                const T* save_mean, const T* save_invstd, const T* ggx, const T* gggamma,
                                const T* ggbeta, T* dx, T* dgamma, T* dgy, bool use_batch_stats) {
  const int64_t M = s.N * s.L, stride_n = s.C * s.L;
  const double mean = save_mean[c], invstd = save_invstd[c];
  BatchNormDoubleSums S;
  for (int64_t n = 0; n < s.N; ++n) {
    const int64_t at = n * stride_n + c * s.L;
    if (ggx) {
      double_sums<T>(x + at, gy + at, ggx + at, s.L, T(mean), &S);
    } else {
      grad_sums<T>(x + at, gy + at, s.L, T(mean), &S.gy, &S.gy_xhat);
    }
  }
  S.gy_xhat *= invstd;
  S.ggx_xhat *= invstd;
  const BatchNormDoubleCoefficients k = batch_norm_double_coefficients(
      S, double(M), invstd, gamma ? double(gamma[c]) : 1.0, gggamma ? double(gggamma[c]) : 0.0,
      ggbeta ? double(ggbeta[c]) : 0.0, use_batch_stats);
  if (dgamma) dgamma[c] = T(k.dgamma);
  // c xhat + d = (c invstd) x + (d - c invstd mean)
  const double dx_x = k.dx_xhat * invstd, dgy_x = k.dgy_xhat * invstd;
  for (int64_t n = 0; n < s.N; ++n) {
    const int64_t at = n * stride_n + c * s.L;
    if (dx)
      affine<T>(x + at, gy + at, ggx ? ggx + at : nullptr, dx + at, s.L, T(dx_x), T(k.dx_gy), T(k.dx_ggx),
                T(k.dx_one - dx_x * mean));
    if (dgy)
      affine<T>(x + at, ggx ? ggx + at : nullptr, nullptr, dgy + at, s.L, T(dgy_x), T(k.dgy_ggx), T(0),
                T(k.dgy_one - dgy_x * mean));
  }
}

inline bool parallel_channels(const BatchNormShape& s) { return s.C > 1 && s.N * s.C * s.L > 32768; }

}  // namespace

template <class T>
void batch_norm_vec(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var,
                    T* y, T* save_mean, T* save_invstd, bool use_batch_stats, double momentum, double eps) {
#pragma omp parallel for schedule(static) if (parallel_channels(s))
  for (int64_t c = 0; c < s.C; ++c)
    bn_forward_channel(s, c, x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd, use_batch_stats,
                       momentum, eps);
}

template <class T>
void batch_norm_backward_vec(const BatchNormShape& s, const T* x, const T* gy, const T* gamma, const T* save_mean,
                             const T* save_invstd, T* gx, T* ggamma, T* gbeta, bool use_batch_stats) {
#pragma omp parallel for schedule(static) if (parallel_channels(s))
  for (int64_t c = 0; c < s.C; ++c)
    bn_backward_channel(s, c, x, gy, gamma, save_mean, save_invstd, gx, ggamma, gbeta, use_batch_stats);
}

template <class T>
void batch_norm_double_backward_vec(const BatchNormShape& s, const T* x, const T* gy, const T* gamma,
                                    const T* save_mean, const T* save_invstd, const T* ggx, const T* gggamma,
                                    const T* ggbeta, T* dx, T* dgamma, T* dgy, bool use_batch_stats) {
#pragma omp parallel for schedule(static) if (parallel_channels(s))
  for (int64_t c = 0; c < s.C; ++c)
    bn_double_backward_channel(s, c, x, gy, gamma, save_mean, save_invstd, ggx, gggamma, ggbeta, dx, dgamma, dgy,
                               use_batch_stats);
}

template void batch_norm_vec<float>(const BatchNormShape&, const float*, const float*, const float*, float*, float*,
                                    float*, float*, float*, bool, double, double);
template void batch_norm_vec<double>(const BatchNormShape&, const double*, const double*, const double*, double*,
                                     double*, double*, double*, double*, bool, double, double);
template void batch_norm_backward_vec<float>(const BatchNormShape&, const float*, const float*, const float*,
                                             const float*, const float*, float*, float*, float*, bool);
template void batch_norm_backward_vec<double>(const BatchNormShape&, const double*, const double*, const double*,
                                              const double*, const double*, double*, double*, double*, bool);

template void batch_norm_double_backward_vec<float>(const BatchNormShape&, const float*, const float*, const float*,
                                                    const float*, const float*, const float*, const float*,
                                                    const float*, float*, float*, float*, bool);
template void batch_norm_double_backward_vec<double>(const BatchNormShape&, const double*, const double*, const double*,
                                                     const double*, const double*, const double*, const double*,
                                                     const double*, double*, double*, double*, bool);

}  // namespace gs::kernels
