// Block-wide reductions for the .cu files: a warp-shuffle tree per warp, then one value per
// warp through shared memory and a last shuffle tree in warp 0. The CUDA emulator runs this very
// code on the CPU (tests/kernels/test_cuda_emulated.cpp), in three thread orders.
#pragma once
#include "kernels/cuda/device_code.h"
#include "kernels/cuda/reduce_math.h"

namespace gs::kernels::cuda {

template <class T> __device__ T warp_reduce(ReduceOp op, T v) {
  for (int offset = warp_first_offset(); offset > 0; offset >>= 1)
    v = reduce_merge(op, v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}

// Every thread of the block calls this; all get the block's result. blockDim.x is a multiple
// of 32 and at most 1024. `shared` holds 32 values of T.
template <class T> __device__ T block_reduce(ReduceOp op, T v, T* shared) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int nwarps = blockDim.x / kWarpSize;
  v = warp_reduce(op, v);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nwarps ? shared[lane] : reduce_identity<T>(op);
    v = warp_reduce(op, v);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

}  // namespace gs::kernels::cuda
