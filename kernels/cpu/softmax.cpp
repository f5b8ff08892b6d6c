// Softmax family kernels. Max-subtraction keeps exp() in range; accumulation is in double.
#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/parallel.h"

namespace gs::kernels {

namespace {

// One row: max-subtract, exponentiate once (in T: expf for f32), sum in double.
template <class T> void softmax_row(const T* x, T* y, int64_t cols, bool log) {
  T mx = -INFINITY;
  for (int64_t c = 0; c < cols; ++c) mx = x[c] > mx ? x[c] : mx;
  double sum = 0;
  if (log) {
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(x[c] - mx);
    T lse = mx + T(std::log(sum));
    for (int64_t c = 0; c < cols; ++c) y[c] = x[c] - lse;
  } else {
    for (int64_t c = 0; c < cols; ++c) {
      y[c] = std::exp(x[c] - mx);
      sum += y[c];
    }
    T inv = T(1.0 / sum);
    for (int64_t c = 0; c < cols; ++c) y[c] *= inv;
  }
}

template <class T> void softmax_backward_row(const T* y, const T* gy, T* gx, int64_t cols, bool log) {
  double s = 0;
  if (log) {  // gx = gy - softmax * sum(gy)
    for (int64_t c = 0; c < cols; ++c) s += gy[c];
    for (int64_t c = 0; c < cols; ++c) gx[c] = gy[c] - std::exp(y[c]) * T(s);
  } else {  // gx = y * (gy - sum(gy * y))
    for (int64_t c = 0; c < cols; ++c) s += double(gy[c]) * y[c];
    for (int64_t c = 0; c < cols; ++c) gx[c] = y[c] * (gy[c] - T(s));
  }
}

template <class T> void softmax_ref(const T* in, T* out, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; ++r) softmax_row(in + r * cols, out + r * cols, cols, log);
}
template <class T> void softmax_omp(const T* in, T* out, int64_t rows, int64_t cols, bool log) {
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) softmax_row(in + r * cols, out + r * cols, cols, log);
  });
}
template <class T> void softmax_backward_ref(const T* y, const T* gy, T* gx, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; ++r) softmax_backward_row(y + r * cols, gy + r * cols, gx + r * cols, cols, log);
}
template <class T> void softmax_backward_omp(const T* y, const T* gy, T* gx, int64_t rows, int64_t cols, bool log) {
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) softmax_backward_row(y + r * cols, gy + r * cols, gx + r * cols, cols, log);
  });
}

}  // namespace

template <class T> const VariantTable<SoftmaxFn<T>>& softmax_table() {
  static const VariantTable<SoftmaxFn<T>> table = [] {
    VariantTable<SoftmaxFn<T>> t("softmax");
    t.add("ref", &softmax_ref<T>).add("omp", &softmax_omp<T>, true);
    return t;
  }();
  return table;
}
template <class T> const VariantTable<SoftmaxBackwardFn<T>>& softmax_backward_table() {
  static const VariantTable<SoftmaxBackwardFn<T>> table = [] {
    VariantTable<SoftmaxBackwardFn<T>> t("softmax_backward");
    t.add("ref", &softmax_backward_ref<T>).add("omp", &softmax_backward_omp<T>, true);
    return t;
  }();
  return table;
}

template <class T>
void cross_entropy_forward(const T* logits, const int64_t* target, const T* weight, T* loss, T* log_probs, int64_t rows,
                           int64_t cols, double smoothing, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const T* lp = log_probs + r * cols;
    softmax_row(logits + r * cols, log_probs + r * cols, cols, true);
    int64_t t = target[r];
    if (t == ignore_index) {
      loss[r] = T(0);
      continue;
    }
    double l = -(1.0 - smoothing) * (weight ? double(weight[t]) : 1.0) * lp[t];
    if (smoothing != 0) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) s += (weight ? double(weight[c]) : 1.0) * lp[c];
      l -= smoothing / double(cols) * s;
    }
    loss[r] = T(l);
  }
}

template <class T>
void cross_entropy_backward(const T* log_probs, const int64_t* target, const T* weight, double weight_sum,
                            const T* grad_loss, T* grad_logits, int64_t rows, int64_t cols, double smoothing,
                            int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    T* g = grad_logits + r * cols;
    const T* lp = log_probs + r * cols;
    int64_t t = target[r];
    if (t == ignore_index) {
      for (int64_t c = 0; c < cols; ++c) g[c] = T(0);
      continue;
    }
    T gl = grad_loss[r];
    T uniform = T(smoothing / double(cols));
    if (!weight) {
      for (int64_t c = 0; c < cols; ++c) g[c] = (std::exp(lp[c]) - uniform) * gl;
      g[t] -= T(1.0 - smoothing) * gl;
      continue;
    }
    const T w_t = T(1.0 - smoothing) * weight[t];
    const T total = w_t + T(smoothing / double(cols) * weight_sum);
    for (int64_t c = 0; c < cols; ++c) g[c] = (std::exp(lp[c]) * total - uniform * weight[c]) * gl;
    g[t] -= w_t * gl;
  }
}

#define GS_INSTANTIATE(T)                                                                                             \
  template const VariantTable<SoftmaxFn<T>>& softmax_table<T>();                                                      \
  template const VariantTable<SoftmaxBackwardFn<T>>& softmax_backward_table<T>();                                     \
  template void cross_entropy_forward<T>(const T*, const int64_t*, const T*, T*, T*, int64_t, int64_t, double,        \
                                         int64_t);                                                                    \
  template void cross_entropy_backward<T>(const T*, const int64_t*, const T*, double, const T*, T*, int64_t, int64_t, \
                                          double, int64_t);
GS_INSTANTIATE(float)
GS_INSTANTIATE(double)
#undef GS_INSTANTIATE

}  // namespace gs::kernels
