// Conv2d kernels: direct reference loops and im2col + gemm. The im2col variant keeps its
// column buffers in thread-local storage that only grows, so a steady training loop does no
// heap allocation here; OpenMP splits the batch and the gemm runs single-threaded per sample.
#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu/conv2d_variants.h"
#include "kernels/cpu/gemm.h"

#ifdef GS_OPENMP
#include <omp.h>
#endif

namespace gs::kernels {

namespace {

inline int thread_count() {
#ifdef GS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
inline int thread_id() {
#ifdef GS_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// ---------------- ref: direct loops, double accumulation ----------------

template <class T>
void conv2d_ref(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t Cg = s.C / s.groups, Kg = s.K / s.groups;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.K; ++k) {
      const int64_t g = k / Kg;
      for (int64_t p = 0; p < s.P; ++p)
        for (int64_t q = 0; q < s.Q; ++q) {
          double acc = bias ? double(bias[k]) : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < s.R; ++r) {
              const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
              if (h < 0 || h >= s.H) continue;
              for (int64_t t = 0; t < s.S; ++t) {
                const int64_t ww = q * s.stride_w - s.pad_w + t * s.dilation_w;
                if (ww < 0 || ww >= s.W) continue;
                acc += double(x[((n * s.C + g * Cg + c) * s.H + h) * s.W + ww]) *
                       double(w[((k * Cg + c) * s.R + r) * s.S + t]);
              }
            }
          y[((n * s.K + k) * s.P + p) * s.Q + q] = T(acc);
        }
    }
}

// gx[n,c,h,w] = sum over (k in c's group, r, s) with h = p*stride - pad + r*dil (same for w) of gy * w
template <class T>
void conv2d_backward_data_ref(const Conv2dShape& s, const T* gy, const T* w, T* gx) {
  const int64_t Cg = s.C / s.groups, Kg = s.K / s.groups;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t ci = 0; ci < s.C; ++ci) {
      const int64_t g = ci / Cg, c = ci % Cg;
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t ww = 0; ww < s.W; ++ww) {
          double acc = 0;
          for (int64_t r = 0; r < s.R; ++r) {
            const int64_t ph = h + s.pad_h - r * s.dilation_h;
            if (ph < 0 || ph % s.stride_h != 0 || ph / s.stride_h >= s.P) continue;
            for (int64_t t = 0; t < s.S; ++t) {
              const int64_t qw = ww + s.pad_w - t * s.dilation_w;
              if (qw < 0 || qw % s.stride_w != 0 || qw / s.stride_w >= s.Q) continue;
              const int64_t p = ph / s.stride_h, q = qw / s.stride_w;
              for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k)
                acc += double(gy[((n * s.K + k) * s.P + p) * s.Q + q]) * double(w[((k * Cg + c) * s.R + r) * s.S + t]);
            }
          }
          gx[((n * s.C + ci) * s.H + h) * s.W + ww] = T(acc);
        }
    }
}

template <class T>
void conv2d_bias_grad(const Conv2dShape& s, const T* gy, T* gbias) {
  const int64_t PQ = s.P * s.Q;
  for (int64_t k = 0; k < s.K; ++k) {
    double acc = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* g = gy + (n * s.K + k) * PQ;
      for (int64_t i = 0; i < PQ; ++i) acc += g[i];
    }
    gbias[k] = T(acc);
  }
}

template <class T>
void conv2d_backward_weight_ref(const Conv2dShape& s, const T* x, const T* gy, T* gw, T* gbias) {
  const int64_t Cg = s.C / s.groups, Kg = s.K / s.groups;
  if (gw) {
    for (int64_t k = 0; k < s.K; ++k) {
      const int64_t g = k / Kg;
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t r = 0; r < s.R; ++r)
          for (int64_t t = 0; t < s.S; ++t) {
            double acc = 0;
            for (int64_t n = 0; n < s.N; ++n)
              for (int64_t p = 0; p < s.P; ++p) {
                const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
                if (h < 0 || h >= s.H) continue;
                for (int64_t q = 0; q < s.Q; ++q) {
                  const int64_t ww = q * s.stride_w - s.pad_w + t * s.dilation_w;
                  if (ww < 0 || ww >= s.W) continue;
                  acc += double(gy[((n * s.K + k) * s.P + p) * s.Q + q]) *
                         double(x[((n * s.C + g * Cg + c) * s.H + h) * s.W + ww]);
                }
              }
            gw[((k * Cg + c) * s.R + r) * s.S + t] = T(acc);
          }
    }
  }
  if (gbias) conv2d_bias_grad(s, gy, gbias);
}

// ---------------- im2col + gemm ----------------

// Splitting the batch over threads pays only above some work: each parallel region costs a
// fork/join (microseconds when idle, a scheduler time slice on an oversubscribed box).
inline bool batch_parallel(const Conv2dShape& s) {
  const int64_t macs = s.N * s.K * (s.C / s.groups) * s.R * s.S * s.P * s.Q;
  return s.N > 1 && macs >= (int64_t(1) << 18);
}

// A 1x1, stride-1, unpadded convolution needs no column matrix: x itself is (C, H*W).
inline bool is_pointwise(const Conv2dShape& s) {
  return s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}

// Grows-only per-thread scratch; one per element type and purpose (slot).
template <class T, int Slot>
T* scratch(size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// col (Cg*R*S, P*Q) from one group of one sample xg (Cg, H, W); padding reads as 0
template <class T>
void im2col(const Conv2dShape& s, int64_t Cg, const T* xg, T* col) {
  const int64_t PQ = s.P * s.Q;
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t t = 0; t < s.S; ++t) {
        T* row = col + ((c * s.R + r) * s.S + t) * PQ;
        const T* plane = xg + c * s.H * s.W;
        for (int64_t p = 0; p < s.P; ++p) {
          T* out = row + p * s.Q;
          const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
          if (h < 0 || h >= s.H) {
            std::fill(out, out + s.Q, T(0));
            continue;
          }
          const T* in = plane + h * s.W;
          const int64_t w0 = t * s.dilation_w - s.pad_w;
          if (s.stride_w == 1) {
            // The valid q range [q_lo, q_hi) is one contiguous copy.
            const int64_t q_lo = std::clamp<int64_t>(-w0, 0, s.Q), q_hi = std::clamp<int64_t>(s.W - w0, q_lo, s.Q);
            std::fill(out, out + q_lo, T(0));
            std::copy(in + w0 + q_lo, in + w0 + q_hi, out + q_lo);
            std::fill(out + q_hi, out + s.Q, T(0));
          } else {
            for (int64_t q = 0; q < s.Q; ++q) {
              const int64_t ww = w0 + q * s.stride_w;
              out[q] = (ww >= 0 && ww < s.W) ? in[ww] : T(0);
            }
          }
        }
      }
}

// gxg (Cg, H, W) += scatter of col (Cg*R*S, P*Q): the adjoint of im2col
template <class T>
void col2im(const Conv2dShape& s, int64_t Cg, const T* col, T* gxg) {
  const int64_t PQ = s.P * s.Q;
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t t = 0; t < s.S; ++t) {
        const T* row = col + ((c * s.R + r) * s.S + t) * PQ;
        T* plane = gxg + c * s.H * s.W;
        for (int64_t p = 0; p < s.P; ++p) {
          const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
          if (h < 0 || h >= s.H) continue;
          const T* in = row + p * s.Q;
          T* out = plane + h * s.W;
          const int64_t w0 = t * s.dilation_w - s.pad_w;
          for (int64_t q = 0; q < s.Q; ++q) {
            const int64_t ww = w0 + q * s.stride_w;
            if (ww >= 0 && ww < s.W) out[ww] += in[q];
          }
        }
      }
}

template <class T>
void conv2d_im2col(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t Cg = s.C / s.groups, Kg = s.K / s.groups, PQ = s.P * s.Q, CRS = Cg * s.R * s.S;
  const auto gemm = gemm_table<T>().get();
  const bool pointwise = is_pointwise(s);
#pragma omp parallel for schedule(static) if (batch_parallel(s))
  for (int64_t n = 0; n < s.N; ++n) {
    T* col = pointwise ? nullptr : scratch<T, 0>(size_t(CRS * PQ));
    for (int64_t g = 0; g < s.groups; ++g) {
      const T* xg = x + (n * s.C + g * Cg) * s.H * s.W;
      if (!pointwise) im2col(s, Cg, xg, col);
      T* yg = y + (n * s.K + g * Kg) * PQ;
      // yg (Kg, PQ) = wg (Kg, CRS) @ col (CRS, PQ)
      gemm(false, false, Kg, PQ, CRS, T(1), w + g * Kg * CRS, CRS, pointwise ? xg : col, PQ, T(0), yg, PQ);
      if (bias) {
        for (int64_t k = 0; k < Kg; ++k) {
          const T b = bias[g * Kg + k];
          T* row = yg + k * PQ;
          for (int64_t i = 0; i < PQ; ++i) row[i] += b;
        }
      }
    }
  }
}

template <class T>
void conv2d_backward_data_im2col(const Conv2dShape& s, const T* gy, const T* w, T* gx) {
  const int64_t Cg = s.C / s.groups, Kg = s.K / s.groups, PQ = s.P * s.Q, CRS = Cg * s.R * s.S, HW = s.H * s.W;
  const auto gemm = gemm_table<T>().get();
  const bool pointwise = is_pointwise(s);
#pragma omp parallel for schedule(static) if (batch_parallel(s))
  for (int64_t n = 0; n < s.N; ++n) {
    T* col = pointwise ? nullptr : scratch<T, 0>(size_t(CRS * PQ));
    T* gxn = gx + n * s.C * HW;
    if (!pointwise) std::fill(gxn, gxn + s.C * HW, T(0));
    for (int64_t g = 0; g < s.groups; ++g) {
      const T* gyg = gy + (n * s.K + g * Kg) * PQ;
      T* gxg = gxn + g * Cg * HW;
      // col (CRS, PQ) = wg^T (CRS, Kg) @ gyg (Kg, PQ), then scattered back onto the image
      gemm(true, false, CRS, PQ, Kg, T(1), w + g * Kg * CRS, CRS, gyg, PQ, T(0), pointwise ? gxg : col, PQ);
      if (!pointwise) col2im(s, Cg, col, gxg);
    }
  }
}

template <class T>
void conv2d_backward_weight_im2col(const Conv2dShape& s, const T* x, const T* gy, T* gw, T* gbias) {
  const int64_t Cg = s.C / s.groups, Kg = s.K / s.groups, PQ = s.P * s.Q, CRS = Cg * s.R * s.S;
  const int64_t weight_size = s.K * CRS;
  if (gw) {
    const auto gemm = gemm_table<T>().get();
    const bool pointwise = is_pointwise(s);
    // One partial gw per thread, summed in thread order afterwards (deterministic for a
    // fixed thread count). The partials live in the calling thread's scratch.
    const int threads = batch_parallel(s) ? std::max(1, std::min<int>(thread_count(), int(s.N))) : 1;
    T* partials = scratch<T, 1>(size_t(threads * weight_size));
    std::fill(partials, partials + threads * weight_size, T(0));
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      T* mine = partials + thread_id() * weight_size;
      T* col = pointwise ? nullptr : scratch<T, 0>(size_t(CRS * PQ));
#pragma omp for schedule(static)
      for (int64_t n = 0; n < s.N; ++n) {
        for (int64_t g = 0; g < s.groups; ++g) {
          const T* xg = x + (n * s.C + g * Cg) * s.H * s.W;
          if (!pointwise) im2col(s, Cg, xg, col);
          // mine_g (Kg, CRS) += gyg (Kg, PQ) @ col^T (PQ, CRS)
          gemm(false, true, Kg, CRS, PQ, T(1), gy + (n * s.K + g * Kg) * PQ, PQ, pointwise ? xg : col, PQ, T(1),
               mine + g * Kg * CRS, CRS);
        }
      }
    }
    std::copy(partials, partials + weight_size, gw);
    for (int t = 1; t < threads; ++t) {
      const T* part = partials + t * weight_size;
      for (int64_t i = 0; i < weight_size; ++i) gw[i] += part[i];
    }
  }
  if (gbias) {
    const int64_t PQn = PQ;
#pragma omp parallel for schedule(static) if (s.K * s.N * PQn > 32768)
    for (int64_t k = 0; k < s.K; ++k) {
      double acc = 0;
      for (int64_t n = 0; n < s.N; ++n) {
        const T* g = gy + (n * s.K + k) * PQn;
        T row = 0;
        for (int64_t i = 0; i < PQn; ++i) row += g[i];
        acc += row;
      }
      gbias[k] = T(acc);
    }
  }
}

}  // namespace

template <class T>
const VariantTable<Conv2dFn<T>>& conv2d_table() {
  static const VariantTable<Conv2dFn<T>> table = [] {
    VariantTable<Conv2dFn<T>> t("conv2d");
    t.add("ref", &conv2d_ref<T>).add("im2col", &conv2d_im2col<T>);
    t.add("direct", &conv2d_direct<T>, true);  // beats im2col forward (e.g. 80 vs 58 GF/s, fashionnet conv2)
#ifdef GS_DNNL
    if constexpr (std::is_same_v<T, float>) t.add("onednn", &conv2d_onednn, true);  // the fastest where linked
#endif
    return t;
  }();
  return table;
}
template <class T>
const VariantTable<Conv2dBackwardDataFn<T>>& conv2d_backward_data_table() {
  static const VariantTable<Conv2dBackwardDataFn<T>> table = [] {
    VariantTable<Conv2dBackwardDataFn<T>> t("conv2d_backward_data");
    t.add("ref", &conv2d_backward_data_ref<T>).add("im2col", &conv2d_backward_data_im2col<T>, true);
    t.add("direct", &conv2d_backward_data_direct<T>);
#ifdef GS_DNNL
    if constexpr (std::is_same_v<T, float>) t.add("onednn", &conv2d_backward_data_onednn, true);
#endif
    return t;
  }();
  return table;
}
template <class T>
const VariantTable<Conv2dBackwardWeightFn<T>>& conv2d_backward_weight_table() {
  static const VariantTable<Conv2dBackwardWeightFn<T>> table = [] {
    VariantTable<Conv2dBackwardWeightFn<T>> t("conv2d_backward_weight");
    t.add("ref", &conv2d_backward_weight_ref<T>).add("im2col", &conv2d_backward_weight_im2col<T>, true);
    t.add("direct", &conv2d_backward_weight_direct<T>);
#ifdef GS_DNNL
    if constexpr (std::is_same_v<T, float>) t.add("onednn", &conv2d_backward_weight_onednn, true);
#endif
    return t;
  }();
  return table;
}

template const VariantTable<Conv2dFn<float>>& conv2d_table<float>();
template const VariantTable<Conv2dFn<double>>& conv2d_table<double>();
template const VariantTable<Conv2dBackwardDataFn<float>>& conv2d_backward_data_table<float>();
template const VariantTable<Conv2dBackwardDataFn<double>>& conv2d_backward_data_table<double>();
template const VariantTable<Conv2dBackwardWeightFn<float>>& conv2d_backward_weight_table<float>();
template const VariantTable<Conv2dBackwardWeightFn<double>>& conv2d_backward_weight_table<double>();

}  // namespace gs::kernels
