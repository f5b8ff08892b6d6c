// Fused optimizer step kernels: one thread per element runs optim_math.h's whole update.
// Device code only: optim.cu launches these. The CUDA emulator
// (kernels/cuda/emulator/cuda_emulator.h) runs the very same kernels on the CPU: against the
// CPU ref kernels in tests/kernels/test_cuda_emulated.cpp, and as the device of the emulated
// build (GS_CUDA=EMULATE). Kernels have internal linkage: each includer gets its own copy.
#pragma once
#include "kernels/cuda/device_code.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/optim_math.h"

namespace gs::kernels::cuda {
namespace {

__global__ void sgd_kernel(SgdConsts s, float* p, const float* g, float* buf, int64_t n) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    sgd_element(s, p[i], g[i], buf ? buf + i : nullptr);
}
__global__ void adam_kernel(AdamConsts s, float* p, const float* g, float* m, float* v, float* vmax, int64_t n) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    adam_element(s, p[i], g[i], m[i], v[i], vmax ? vmax + i : nullptr);
}
__global__ void rmsprop_kernel(RmspropConsts s, float* p, const float* g, float* square_avg, float* grad_avg,
                               float* buf, int64_t n) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    rmsprop_element(s, p[i], g[i], square_avg[i], grad_avg ? grad_avg + i : nullptr, buf ? buf + i : nullptr);
}
__global__ void rprop_kernel(RpropConsts s, float* p, const float* g, float* prev, float* step_size, int64_t n) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    rprop_element(s, p[i], g[i], prev[i], step_size[i]);
}
}  // namespace
}  // namespace gs::kernels::cuda
