// Reduction kernels: ref (one accumulator per output, in order) and omp (parallel over
// outputs; inner==1 rows reduced with a SIMD-friendly loop, wider blocks row by row).
// Sums accumulate in double for f32 in ref and in the row (inner==1) path of omp.
#include "kernels/cpu/reduce.h"

#include <cmath>
#include <limits>
#include <vector>

namespace gs::kernels {

namespace {

template <class T> T reduce_init(ReduceOp op) {
  if (op == ReduceOp::Max) return -std::numeric_limits<T>::infinity();
  if (op == ReduceOp::Min) return std::numeric_limits<T>::infinity();
  return T(0);
}

// NaN propagates through max/min as in PyTorch.
template <class T> T combine(ReduceOp op, T acc, T x) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Mean: return acc + x;
    case ReduceOp::Max: return (x > acc || x != x) ? x : acc;
    case ReduceOp::Min: return (x < acc || x != x) ? x : acc;
  }
  return acc;
}

template <class T> void reduce_ref(ReduceOp op, const T* in, T* out, int64_t outer, int64_t r, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      double acc = reduce_init<double>(op);
      for (int64_t k = 0; k < r; ++k) acc = combine<double>(op, acc, in[(o * r + k) * inner + i]);
      if (op == ReduceOp::Mean) acc = r ? acc / double(r) : std::numeric_limits<double>::quiet_NaN();
      out[o * inner + i] = static_cast<T>(acc);
    }
  }
}

template <class T> void reduce_omp(ReduceOp op, const T* in, T* out, int64_t outer, int64_t r, int64_t inner) {
  const double scale = op == ReduceOp::Mean ? (r ? 1.0 / double(r) : std::numeric_limits<double>::quiet_NaN()) : 1.0;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * r > 32768)
    for (int64_t o = 0; o < outer; ++o) {
      const T* row = in + o * r;
      if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
        double acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t k = 0; k < r; ++k) acc += row[k];
        out[o] = static_cast<T>(acc * scale);
      } else {
        T acc = reduce_init<T>(op);
        for (int64_t k = 0; k < r; ++k) acc = combine<T>(op, acc, row[k]);
        out[o] = acc;
      }
    }
    return;
  }
  // Accumulate whole rows of `inner` at a time: contiguous, vectorisable adds.
#pragma omp parallel for schedule(static) if (outer * r * inner > 32768)
  for (int64_t o = 0; o < outer; ++o) {
    T* dst = out + o * inner;
    std::vector<double> acc(inner, reduce_init<double>(op));
    for (int64_t k = 0; k < r; ++k) {
      const T* src = in + (o * r + k) * inner;
      if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
        for (int64_t i = 0; i < inner; ++i) acc[i] += src[i];
      } else {
        for (int64_t i = 0; i < inner; ++i) acc[i] = combine<double>(op, acc[i], src[i]);
      }
    }
    for (int64_t i = 0; i < inner; ++i) dst[i] = static_cast<T>(acc[i] * scale);
  }
}

}  // namespace

template <class T> const VariantTable<ReduceFn<T>>& reduce_table() {
  static const VariantTable<ReduceFn<T>> table = [] {
    VariantTable<ReduceFn<T>> t("reduce");
    t.add("ref", &reduce_ref<T>).add("omp", &reduce_omp<T>, true);
    return t;
  }();
  return table;
}
template const VariantTable<ReduceFn<float>>& reduce_table<float>();
template const VariantTable<ReduceFn<double>>& reduce_table<double>();

}  // namespace gs::kernels
