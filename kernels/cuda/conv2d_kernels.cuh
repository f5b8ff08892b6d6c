// The conv2d "im2col" variant's kernels: im2col, col2im (a gather: no atomics), bias add and
// the bias gradient (a block per channel).
// Device code only: conv2d.cu launches these. The CUDA emulator
// (kernels/cuda/emulator/cuda_emulator.h) runs the very same kernels on the CPU: against the
// CPU ref kernels in tests/kernels/test_cuda_emulated.cpp, and as the device of the emulated
// build (GS_CUDA=EMULATE). Kernels have internal linkage: each includer gets its own copy.
#pragma once
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/device_code.h"
#include "kernels/cuda/index_math.h"

namespace gs::kernels::cuda {
namespace {

__global__ void im2col_kernel(ConvGeom g, const float* x, float* col) {
  const int64_t PQ = g.P * g.Q, n = g.C * g.R * g.S * PQ;
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    col[i] = im2col_element(g, x, i / PQ, i % PQ);
}
__global__ void col2im_kernel(ConvGeom g, const float* col, float* gx) {
  const int64_t n = g.C * g.H * g.W;
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    gx[i] = col2im_element(g, col, i / (g.H * g.W), (i / g.W) % g.H, i % g.W);
}
// y (N,K,PQ) += bias[k]
__global__ void add_bias_kernel(float* y, const float* bias, int64_t n, int64_t K, int64_t PQ) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    y[i] += bias[(i / PQ) % K];
}
// gbias[k] = sum over n, pq of gy (N,K,PQ): a block per channel.
__global__ void bias_grad_kernel(const float* gy, float* gbias, int64_t N, int64_t K, int64_t PQ) {
  __shared__ float shared[kWarpSize];
  for (int64_t k = blockIdx.x; k < K; k += gridDim.x) {
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < N * PQ; j += blockDim.x) s += gy[((j / PQ) * K + k) * PQ + j % PQ];
    s = block_reduce(ReduceOp::Sum, s, shared);
    if (threadIdx.x == 0) gbias[k] = s;
  }
}
}  // namespace
}  // namespace gs::kernels::cuda
