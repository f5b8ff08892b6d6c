// GS_HD marks functions that run on both sides: the CUDA kernels call them on the device and the
// host-side tests (tests/kernels/test_cuda_*.cpp) call the very same code on the CPU, so the
// index arithmetic of every kernel is checked on machines without a GPU.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define GS_HD __host__ __device__ inline
#else
#define GS_HD inline
#endif

namespace gs::kernels::cuda {

constexpr int kMaxDims = 8;  // elementwise kernels take shapes/strides by value up to this rank
constexpr int kWarpSize = 32;
constexpr int kBlockThreads = 256;         // threads per block of the 1-d kernels
constexpr int64_t kMaxBlocks = 65535 * 8;  // grid cap; grid-stride loops cover the rest

// Shape and per-operand element strides of an elementwise launch, passed to kernels by value.
struct Layout {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[4][kMaxDims] = {};  // up to 4 operands (0 where broadcast)
};

}  // namespace gs::kernels::cuda
