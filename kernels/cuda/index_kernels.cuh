// Index CUDA kernels over tensors viewed as (outer, d, inner), as kernels/cpu/index.h: gather
// and index_select (a thread per output element), scatter_add and index_add (a thread per
// source element, atomicAdd into the destination: duplicate indices add up, in any order).
// Device code only: index.cu launches these. The CUDA emulator
// (kernels/cuda/emulator/cuda_emulator.h) runs the very same kernels on the CPU: against the
// CPU ref kernels in tests/kernels/test_cuda_emulated.cpp, and as the device of the emulated
// build (GS_CUDA=EMULATE). Kernels have internal linkage: each includer gets its own copy.
#pragma once
#include "kernels/cuda/device_code.h"
#include "kernels/cuda/index_math.h"

namespace gs::kernels::cuda {
namespace {

__device__ inline void atomic_add(float* dst, float v) { atomicAdd(dst, v); }
__device__ inline void atomic_add(int64_t* dst, int64_t v) {  // two's complement: unsigned adds are the same bits
  atomicAdd(reinterpret_cast<unsigned long long*>(dst), static_cast<unsigned long long>(v));
}

// out (outer, k, inner) = in (outer, d, inner) at [o, index[o, j, i], i]
template <class T>
__global__ void gather_kernel(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k,
                              int64_t inner) {
  for (int64_t e = grid_first(blockIdx.x, blockDim.x, threadIdx.x); e < outer * k * inner;
       e += grid_step(gridDim.x, blockDim.x)) {
    const int64_t o = e / (k * inner), i = e % inner;
    out[e] = in[(o * d + index[e]) * inner + i];
  }
}
// out (outer, k, inner) = in (outer, d, inner) at [o, index[j], i]
template <class T>
__global__ void index_select_kernel(const T* in, const int64_t* index, T* out, int64_t outer, int64_t d, int64_t k,
                                    int64_t inner) {
  for (int64_t e = grid_first(blockIdx.x, blockDim.x, threadIdx.x); e < outer * k * inner;
       e += grid_step(gridDim.x, blockDim.x)) {
    const int64_t o = e / (k * inner), j = (e / inner) % k, i = e % inner;
    out[e] = in[(o * d + index[j]) * inner + i];
  }
}
// acc (outer, d, inner) += src (outer, k, inner) scattered by index (outer, k, inner)
template <class T>
__global__ void scatter_add_kernel(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k,
                                   int64_t inner) {
  for (int64_t e = grid_first(blockIdx.x, blockDim.x, threadIdx.x); e < outer * k * inner;
       e += grid_step(gridDim.x, blockDim.x)) {
    const int64_t o = e / (k * inner), i = e % inner;
    atomic_add(acc + (o * d + index[e]) * inner + i, src[e]);
  }
}
// acc (outer, d, inner) += src (outer, k, inner) at [o, index[j], i]
template <class T>
__global__ void index_add_kernel(T* acc, const int64_t* index, const T* src, int64_t outer, int64_t d, int64_t k,
                                 int64_t inner) {
  for (int64_t e = grid_first(blockIdx.x, blockDim.x, threadIdx.x); e < outer * k * inner;
       e += grid_step(gridDim.x, blockDim.x)) {
    const int64_t o = e / (k * inner), j = (e / inner) % k, i = e % inner;
    atomic_add(acc + (o * d + index[j]) * inner + i, src[e]);
  }
}

}  // namespace
}  // namespace gs::kernels::cuda
