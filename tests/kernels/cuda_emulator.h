// Runs the CUDA kernels' __host__ __device__ pieces (kernels/cuda/*.h) on the CPU the way the
// GPU would: every thread of an emulated grid in turn for kernels without barriers; for block
// reductions the per-thread partials, the warp-shuffle tree lane by lane and the shared-memory
// step, each phase finished by all threads before the next (as __syncthreads orders them).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cuda/index_math.h"
#include "kernels/cuda/reduce_math.h"

namespace gs::test {

// body(i) for every i a grid-stride loop of `grid` blocks x `block` threads visits, in the
// order thread by thread; returns how often each index was visited (each must be once).
template <class F> std::vector<int> emulate_grid_stride(int64_t n, int64_t grid, int block, F body) {
  namespace kc = kernels::cuda;
  std::vector<int> visits(static_cast<size_t>(n), 0);
  for (int64_t b = 0; b < grid; ++b)
    for (int t = 0; t < block; ++t)
      for (int64_t i = kc::grid_first(b, block, t); i < n; i += kc::grid_step(grid, block)) {
        visits[static_cast<size_t>(i)]++;
        body(i);
      }
  return visits;
}

// One warp's shuffle-down tree: lane l combines with lane l+offset (its own value when that
// lane is out of range, as __shfl_down_sync); returns lane 0's result.
template <class T> T emulate_warp_reduce(kernels::ReduceOp op, std::vector<T> lanes) {
  namespace kc = kernels::cuda;
  for (int offset = kc::warp_first_offset(); offset > 0; offset >>= 1) {
    std::vector<T> next(lanes.size());
    for (size_t l = 0; l < lanes.size(); ++l) {
      T other = l + offset < lanes.size() ? lanes[l + offset] : lanes[l];
      next[l] = kc::reduce_merge(op, lanes[l], other);
    }
    lanes = next;
  }
  return lanes[0];
}

// block_reduce (kernels/cuda/block_reduce.cuh) over the threads' partials (a multiple of 32).
template <class T> T emulate_block_reduce(kernels::ReduceOp op, const std::vector<T>& partials) {
  namespace kc = kernels::cuda;
  const size_t nwarps = partials.size() / kc::kWarpSize;
  std::vector<T> shared(kc::kWarpSize);
  for (size_t w = 0; w < nwarps; ++w)  // phase 1: each warp's tree, lane 0 writes shared[w]
    shared[w] = emulate_warp_reduce(
        op, std::vector<T>(partials.begin() + w * kc::kWarpSize, partials.begin() + (w + 1) * kc::kWarpSize));
  std::vector<T> lanes(kc::kWarpSize);  // phase 2 (after the barrier): warp 0 reduces shared
  for (size_t l = 0; l < lanes.size(); ++l) lanes[l] = l < nwarps ? shared[l] : kc::reduce_identity<T>(op);
  return emulate_warp_reduce(op, lanes);
}

}  // namespace gs::test
