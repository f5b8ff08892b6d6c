// The conv2d "im2col" variant's kernels, each over a chunk of images: im2col, col2im (a gather:
// no atomics), the copies between the image-major (N, K, PQ) and the GEMMs' channel-major
// (K, N*PQ) layouts (with the bias add), and the bias gradient (a block per channel).
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

// col (groups*Cg*R*S, nb*P*Q) of a chunk of nb images: index maths in im2col_chunk_element.
__global__ void im2col_kernel(ConvGeom g, int64_t groups, int64_t nb, const float* x, float* col) {
  const int64_t n = groups * g.C * g.R * g.S * nb * g.P * g.Q;
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    col[i] = im2col_chunk_element(g, groups, nb, x, i);
}
// gx (nb, groups*Cg, H, W) of a chunk, gathered from its col matrix.
__global__ void col2im_kernel(ConvGeom g, int64_t groups, int64_t nb, const float* col, float* gx) {
  const int64_t n = nb * groups * g.C * g.H * g.W;
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    gx[i] = col2im_chunk_element(g, groups, nb, col, i);
}
// y (nb, K, PQ) = the GEMMs' channel-major yt (K, nb*PQ) + bias[k] (bias may be null).
__global__ void from_channel_major_kernel(const float* yt, const float* bias, float* y, int64_t K, int64_t nb,
                                          int64_t PQ) {
  const int64_t n = nb * K * PQ;
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    y[i] = yt[channel_major_offset(i, K, nb, PQ)] + (bias ? bias[(i / PQ) % K] : 0.0f);
}
// gyt (K, nb*PQ), the channel-major copy of a chunk's gy (nb, K, PQ), for the GEMMs.
__global__ void to_channel_major_kernel(const float* gy, float* gyt, int64_t K, int64_t nb, int64_t PQ) {
  const int64_t n = nb * K * PQ;
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    gyt[i] = gy[image_major_offset(i, K, nb, PQ)];
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
