// Reduction kernels: ref (one accumulator per output, in order) and omp (parallel over rows,
// over chunks of one long row, or over (row, column block) tasks; SIMD-friendly inner loops).
// Sums accumulate in double in every path.
#include "kernels/cpu/reduce.h"

#include <algorithm>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/parallel.h"

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

// One (outer) row of inner==1 data: sum in double, or max/min, over [begin, end).
template <class T> double reduce_span(ReduceOp op, const T* row, int64_t begin, int64_t end) {
  if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t k = begin; k < end; ++k) acc += row[k];
    return acc;
  }
  T acc = reduce_init<T>(op);
  for (int64_t k = begin; k < end; ++k) acc = combine<T>(op, acc, row[k]);
  return acc;
}

template <class T> void reduce_omp(ReduceOp op, const T* in, T* out, int64_t outer, int64_t r, int64_t inner) {
  const double scale = op == ReduceOp::Mean ? (r ? 1.0 / double(r) : std::numeric_limits<double>::quiet_NaN()) : 1.0;
  if (inner == 1 && outer >= 8) {  // many rows: one thread per block of rows
    parallel_for(outer, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, r)), [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) out[o] = static_cast<T>(reduce_span(op, in + o * r, 0, r) * scale);
    });
    return;
  }
  if (inner == 1) {  // few long rows (a whole-tensor sum): split each row across threads
    for (int64_t o = 0; o < outer; ++o) {
      const T* row = in + o * r;
      std::vector<double> partial(64, reduce_init<double>(op));
      int64_t chunks = std::min<int64_t>(64, std::max<int64_t>(1, r / 16384));
      parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) partial[c] = reduce_span(op, row, r * c / chunks, r * (c + 1) / chunks);
      });
      double acc = reduce_init<double>(op);
      for (int64_t c = 0; c < chunks; ++c) acc = combine<double>(op, acc, partial[c]);
      out[o] = static_cast<T>(acc * scale);
    }
    return;
  }
  // inner > 1: tasks are (outer row, block of inner columns); each accumulates whole rows of its
  // block at a time (contiguous, vectorisable adds), so a batch-axis sum with outer == 1 is parallel too.
  constexpr int64_t kBlock = 1024;
  int64_t blocks = (inner + kBlock - 1) / kBlock;
  parallel_for(outer * blocks, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, r * std::min(inner, kBlock))),
               [&](int64_t begin, int64_t end) {
                 std::vector<double> acc(kBlock);
                 for (int64_t task = begin; task < end; ++task) {
                   int64_t o = task / blocks, i0 = (task % blocks) * kBlock, width = std::min(kBlock, inner - i0);
                   std::fill_n(acc.begin(), width, reduce_init<double>(op));
                   for (int64_t k = 0; k < r; ++k) {
                     const T* src = in + (o * r + k) * inner + i0;
                     if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
#pragma omp simd
                       for (int64_t i = 0; i < width; ++i) acc[i] += src[i];
                     } else {
                       for (int64_t i = 0; i < width; ++i) acc[i] = combine<double>(op, acc[i], src[i]);
                     }
                   }
                   T* dst = out + o * inner + i0;
                   for (int64_t i = 0; i < width; ++i) dst[i] = static_cast<T>(acc[i] * scale);
                 }
               });
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
