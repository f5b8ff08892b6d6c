// Pooling kernels. Each op is written once for one (H,W) plane; "ref" loops the N*C planes
// serially and "omp" spreads them over threads, so the two differ only in scheduling;
// max_pool2d's "fast" adds a bounds-free 2x2 stride-2 plane.
#include "kernels/cpu/pool.h"
#include "kernels/cpu/simd.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gs::kernels {

namespace {

// Runs plane_fn(i) for every plane i in [0, N*C), serially or in parallel.
template <bool Parallel, class F>
void for_each_plane(const Pool2dShape& s, F&& plane_fn) {
  const int64_t planes = s.N * s.C;
  if constexpr (Parallel) {
#pragma omp parallel for schedule(static) if (planes * s.H * s.W > 16384)
    for (int64_t i = 0; i < planes; ++i) plane_fn(i);
  } else {
    for (int64_t i = 0; i < planes; ++i) plane_fn(i);
  }
}

// ---- max pool ----
template <class T>
void max_pool_plane(const Pool2dShape& s, const T* x, T* y, int64_t* argmax) {
  for (int64_t p = 0; p < s.P; ++p) {
    const int64_t h0 = p * s.stride_h - s.pad_h;
    const int64_t h_lo = std::max<int64_t>(h0, 0), h_hi = std::min(h0 + s.kernel_h, s.H);
    for (int64_t q = 0; q < s.Q; ++q) {
      const int64_t w0 = q * s.stride_w - s.pad_w;
      const int64_t w_lo = std::max<int64_t>(w0, 0), w_hi = std::min(w0 + s.kernel_w, s.W);
      T best = -std::numeric_limits<T>::infinity();
      int64_t best_at = h_lo * s.W + w_lo;
      // NaN propagates and the last NaN of the window takes the gradient, as PyTorch's
      // `val > maxval || isnan(val)` (CPU and CUDA) has it.
      for (int64_t h = h_lo; h < h_hi; ++h)
        for (int64_t w = w_lo; w < w_hi; ++w) {
          const T v = x[h * s.W + w];
          if (v > best || std::isnan(v)) {
            best = v;
            best_at = h * s.W + w;
          }
        }
      y[p * s.Q + q] = best;
      argmax[p * s.Q + q] = best_at;
    }
  }
}

template <bool Parallel, class T>
void max_pool2d_impl(const Pool2dShape& s, const T* x, T* y, int64_t* argmax) {
  const int64_t HW = s.H * s.W, PQ = s.P * s.Q;
  for_each_plane<Parallel>(s, [&](int64_t i) { max_pool_plane(s, x + i * HW, y + i * PQ, argmax + i * PQ); });
}

// 2x2 windows, stride 2, no padding (every zoo model's pooling), branch-free: 16 (f32) or 8
// (f64) outputs at a time from two 64-byte vectors per input row, split into even and odd
// columns, then three vector compare-and-selects (first of ties wins, as max_pool_plane). A
// chunk with a NaN, and the columns left over, go through max_pool_plane's per-window code.
template <class T>
void max_pool_window(const Pool2dShape& s, const T* x, int64_t p, int64_t q, T* y, int64_t* argmax) {
  const int64_t at0 = 2 * p * s.W + 2 * q, at2 = at0 + s.W;
  const T a = x[at0], b = x[at0 + 1], c = x[at2], d = x[at2 + 1];
  if (std::isnan(a) || std::isnan(b) || std::isnan(c) || std::isnan(d)) {  // the last NaN wins
    const T vals[4] = {a, b, c, d};
    const int64_t ats[4] = {at0, at0 + 1, at2, at2 + 1};
    int j = 3;
    while (!std::isnan(vals[j])) --j;
    y[p * s.Q + q] = vals[j];
    argmax[p * s.Q + q] = ats[j];
    return;
  }
  // selects, not branches: on post-ReLU data the comparisons are coin flips
  T best = a;
  int64_t at = at0;
  at = b > best ? at0 + 1 : at;
  best = b > best ? b : best;
  at = c > best ? at2 : at;
  best = c > best ? c : best;
  at = d > best ? at2 + 1 : at;
  best = d > best ? d : best;
  y[p * s.Q + q] = best;
  argmax[p * s.Q + q] = at;
}

template <class T>
void max_pool_plane_2x2(const Pool2dShape& s, const T* x, T* y, int64_t* argmax) {
  using V = simd::Vec<T>;
  using I = simd::Mask<T>;  // integer lanes of T's width
  constexpr int L = simd::lanes<T>();
  const I even = simd::even_lanes<T>(), odd = even + 1;
  for (int64_t p = 0; p < s.P; ++p) {
    const T* r0 = x + 2 * p * s.W;
    const T* r1 = r0 + s.W;
    int64_t q = 0;
    for (; q + L <= s.Q; q += L) {
      const V top0 = simd::load(r0 + 2 * q), top1 = simd::load(r0 + 2 * q + L);
      const V bot0 = simd::load(r1 + 2 * q), bot1 = simd::load(r1 + 2 * q + L);
      const V a = __builtin_shuffle(top0, top1, even), b = __builtin_shuffle(top0, top1, odd);
      const V c = __builtin_shuffle(bot0, bot1, even), d = __builtin_shuffle(bot0, bot1, odd);
      const I nan = (a != a) | (b != b) | (c != c) | (d != d);
      bool any_nan = false;
      for (int l = 0; l < L; ++l) any_nan |= nan[l] != 0;
      if (any_nan) {
        for (int64_t j = q; j < q + L; ++j) max_pool_window(s, x, p, j, y, argmax);
        continue;
      }
      V best = a;
      I which = I{};  // 0 a, 1 b, 2 c, 3 d
      I m = b > best;
      best = m ? b : best;
      which = m ? I{} + 1 : which;
      m = c > best;
      best = m ? c : best;
      which = m ? I{} + 2 : which;
      m = d > best;
      best = m ? d : best;
      which = m ? I{} + 3 : which;
      simd::store(y + p * s.Q + q, best);
      int64_t* out = argmax + p * s.Q + q;
      const int64_t base = 2 * p * s.W + 2 * q;
      for (int l = 0; l < L; ++l) out[l] = base + 2 * l + (which[l] & 1) + (which[l] >> 1) * s.W;
    }
    for (; q < s.Q; ++q) max_pool_window(s, x, p, q, y, argmax);
  }
}

template <class T>
void max_pool2d_fast(const Pool2dShape& s, const T* x, T* y, int64_t* argmax) {
  const int64_t HW = s.H * s.W, PQ = s.P * s.Q;
  const bool k2 = s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 &&
                  s.pad_w == 0;
  const int64_t planes = s.N * s.C;
#pragma omp parallel for schedule(static) if (planes * HW > 65536)
  for (int64_t i = 0; i < planes; ++i) {
    if (k2)
      max_pool_plane_2x2(s, x + i * HW, y + i * PQ, argmax + i * PQ);
    else
      max_pool_plane(s, x + i * HW, y + i * PQ, argmax + i * PQ);
  }
}

template <bool Parallel, class T>
void max_pool2d_backward_impl(const Pool2dShape& s, const T* gy, const int64_t* argmax, T* gx) {
  const int64_t HW = s.H * s.W, PQ = s.P * s.Q;
  for_each_plane<Parallel>(s, [&](int64_t i) {
    T* g = gx + i * HW;
    std::fill(g, g + HW, T(0));
    for (int64_t j = 0; j < PQ; ++j) g[argmax[i * PQ + j]] += gy[i * PQ + j];
  });
}

// ---- avg pool ----
// Window [h_lo, h_hi) x [w_lo, w_hi) clipped to the image, and its divisor (PyTorch's rule:
// with count_include_pad the window is clipped to the padded image, else to the image).
struct Window {
  int64_t h_lo, h_hi, w_lo, w_hi, divisor;
};
inline Window avg_window(const Pool2dShape& s, int64_t p, int64_t q, bool count_include_pad) {
  int64_t h0 = p * s.stride_h - s.pad_h, w0 = q * s.stride_w - s.pad_w;
  int64_t h1 = std::min(h0 + s.kernel_h, s.H + s.pad_h), w1 = std::min(w0 + s.kernel_w, s.W + s.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, s.H);
  w1 = std::min(w1, s.W);
  return {h0, h1, w0, w1, count_include_pad ? padded_size : (h1 - h0) * (w1 - w0)};
}

template <bool Parallel, class T>
void avg_pool2d_impl(const Pool2dShape& s, const T* x, T* y, bool include_pad) {
  const int64_t HW = s.H * s.W, PQ = s.P * s.Q;
  for_each_plane<Parallel>(s, [&](int64_t i) {
    const T* xi = x + i * HW;
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q) {
        const Window win = avg_window(s, p, q, include_pad);
        double acc = 0;
        for (int64_t h = win.h_lo; h < win.h_hi; ++h)
          for (int64_t w = win.w_lo; w < win.w_hi; ++w) acc += xi[h * s.W + w];
        y[i * PQ + p * s.Q + q] = T(acc / double(win.divisor));
      }
  });
}

template <bool Parallel, class T>
void avg_pool2d_backward_impl(const Pool2dShape& s, const T* gy, T* gx, bool include_pad) {
  const int64_t HW = s.H * s.W, PQ = s.P * s.Q;
  for_each_plane<Parallel>(s, [&](int64_t i) {
    T* g = gx + i * HW;
    std::fill(g, g + HW, T(0));
    for (int64_t p = 0; p < s.P; ++p)
      for (int64_t q = 0; q < s.Q; ++q) {
        const Window win = avg_window(s, p, q, include_pad);
        const T share = T(double(gy[i * PQ + p * s.Q + q]) / double(win.divisor));
        for (int64_t h = win.h_lo; h < win.h_hi; ++h)
          for (int64_t w = win.w_lo; w < win.w_hi; ++w) g[h * s.W + w] += share;
      }
  });
}

// ---- adaptive avg pool ----
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

template <bool Parallel, class T>
void adaptive_avg_pool2d_impl(const Pool2dShape& s, const T* x, T* y) {
  const int64_t HW = s.H * s.W, PQ = s.P * s.Q;
  for_each_plane<Parallel>(s, [&](int64_t i) {
    const T* xi = x + i * HW;
    for (int64_t p = 0; p < s.P; ++p) {
      const int64_t h0 = adaptive_start(p, s.H, s.P), h1 = adaptive_end(p, s.H, s.P);
      for (int64_t q = 0; q < s.Q; ++q) {
        const int64_t w0 = adaptive_start(q, s.W, s.Q), w1 = adaptive_end(q, s.W, s.Q);
        double acc = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) acc += xi[h * s.W + w];
        y[i * PQ + p * s.Q + q] = T(acc / double((h1 - h0) * (w1 - w0)));
      }
    }
  });
}

template <bool Parallel, class T>
void adaptive_avg_pool2d_backward_impl(const Pool2dShape& s, const T* gy, T* gx) {
  const int64_t HW = s.H * s.W, PQ = s.P * s.Q;
  for_each_plane<Parallel>(s, [&](int64_t i) {
    T* g = gx + i * HW;
    std::fill(g, g + HW, T(0));
    for (int64_t p = 0; p < s.P; ++p) {
      const int64_t h0 = adaptive_start(p, s.H, s.P), h1 = adaptive_end(p, s.H, s.P);
      for (int64_t q = 0; q < s.Q; ++q) {
        const int64_t w0 = adaptive_start(q, s.W, s.Q), w1 = adaptive_end(q, s.W, s.Q);
        const T share = T(double(gy[i * PQ + p * s.Q + q]) / double((h1 - h0) * (w1 - w0)));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) g[h * s.W + w] += share;
      }
    }
  });
}

}  // namespace

// Each table: "ref" = serial planes, "omp" = parallel planes (default).
#define GS_POOL_TABLE(FN_TYPE, NAME, IMPL)                            \
  template <class T>                                                  \
  const VariantTable<FN_TYPE<T>>& NAME##_table() {                    \
    static const VariantTable<FN_TYPE<T>> table = [] {                \
      VariantTable<FN_TYPE<T>> t(#NAME);                              \
      t.add("ref", &IMPL<false, T>).add("omp", &IMPL<true, T>, true); \
      return t;                                                       \
    }();                                                              \
    return table;                                                     \
  }                                                                   \
  template const VariantTable<FN_TYPE<float>>& NAME##_table<float>(); \
  template const VariantTable<FN_TYPE<double>>& NAME##_table<double>();

// max_pool2d also has "fast" (2x2 stride-2 windows without bounds tests; the default).
template <class T>
const VariantTable<MaxPool2dFn<T>>& max_pool2d_table() {
  static const VariantTable<MaxPool2dFn<T>> table = [] {
    VariantTable<MaxPool2dFn<T>> t("max_pool2d");
    t.add("ref", &max_pool2d_impl<false, T>).add("omp", &max_pool2d_impl<true, T>);
    t.add("fast", &max_pool2d_fast<T>, true);
    return t;
  }();
  return table;
}
template const VariantTable<MaxPool2dFn<float>>& max_pool2d_table<float>();
template const VariantTable<MaxPool2dFn<double>>& max_pool2d_table<double>();

GS_POOL_TABLE(MaxPool2dBackwardFn, max_pool2d_backward, max_pool2d_backward_impl)
GS_POOL_TABLE(AvgPool2dFn, avg_pool2d, avg_pool2d_impl)
GS_POOL_TABLE(AvgPool2dBackwardFn, avg_pool2d_backward, avg_pool2d_backward_impl)
GS_POOL_TABLE(AdaptiveAvgPool2dFn, adaptive_avg_pool2d, adaptive_avg_pool2d_impl)
GS_POOL_TABLE(AdaptiveAvgPool2dBackwardFn, adaptive_avg_pool2d_backward, adaptive_avg_pool2d_backward_impl)
#undef GS_POOL_TABLE

}  // namespace gs::kernels
