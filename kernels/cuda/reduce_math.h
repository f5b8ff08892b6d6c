// The arithmetic of the CUDA reductions as __host__ __device__ functions: identity, combine and
// finish of each ReduceOp, the per-thread partial of a block reduction and the warp-shuffle
// tree's offsets. kernels/cuda/reduce.cu runs them on the GPU; tests/kernels emulate the block
// (per-thread partials, the shuffle tree lane by lane, the shared-memory step between barriers).
#pragma once
#include <limits>

#include "kernels/cpu/reduce.h"
#include "kernels/cuda/hd.h"

namespace gs::kernels::cuda {

template <class T> GS_HD T reduce_identity(ReduceOp op) {
  if (op == ReduceOp::Max) return -std::numeric_limits<T>::infinity();
  if (op == ReduceOp::Min) return std::numeric_limits<T>::infinity();
  return T(0);
}
// NaN is sticky for max/min, as the CPU kernels.
template <class T> GS_HD T reduce_combine(ReduceOp op, T acc, T x) {
  switch (op) {
    case ReduceOp::Max: return (x > acc || x != x) ? x : acc;
    case ReduceOp::Min: return (x < acc || x != x) ? x : acc;
    default: return acc + x;
  }
}
// Tree combine of two partials: a NaN on either side wins.
template <class T> GS_HD T reduce_merge(ReduceOp op, T a, T b) {
  if (op == ReduceOp::Sum || op == ReduceOp::Mean) return a + b;
  if (a != a) return a;
  return reduce_combine(op, a, b);
}
template <class T> GS_HD T reduce_finish(ReduceOp op, T acc, int64_t r) {
  return op == ReduceOp::Mean ? acc / static_cast<T>(r) : acc;
}
// Partial of thread tid (of nthreads) for output (o, i) of in (outer, r, inner): k = tid, tid+nthreads, ...
// It accumulates in double, as the CPU kernels do: a float sum of 2^25 ones stops at 2^24 (a
// mean of 0.5), and a block's float partials drift by 1e-3 on long axes. Max and min are exact
// in double, so the result cast back to T is the CPU's.
template <class T>
GS_HD double reduce_thread_partial(ReduceOp op, const T* in, int64_t r, int64_t inner, int64_t o, int64_t i, int tid,
                                   int nthreads) {
  double acc = reduce_identity<double>(op);
  for (int64_t k = tid; k < r; k += nthreads)
    acc = reduce_combine(op, acc, static_cast<double>(in[(o * r + k) * inner + i]));
  return acc;
}
// Shuffle-down offsets of the warp tree: 16, 8, 4, 2, 1.
GS_HD int warp_first_offset() { return kWarpSize / 2; }

}  // namespace gs::kernels::cuda
