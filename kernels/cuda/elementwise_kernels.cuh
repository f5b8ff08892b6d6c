// Elementwise CUDA kernels: unary and binary maps (broadcast through Layout), where, strided
// copies with dtype casts, axpy and fill; grid-stride loops.
// Device code only: elementwise.cu and runtime.cu launches these. The CUDA emulator
// (kernels/cuda/emulator/cuda_emulator.h) runs the very same kernels on the CPU: against the
// CPU ref kernels in tests/kernels/test_cuda_emulated.cpp, and as the device of the emulated
// build (GS_CUDA=EMULATE). Kernels have internal linkage: each includer gets its own copy.
#pragma once
#include "kernels/cuda/device_code.h"
#include "kernels/cuda/elementwise_ops.h"
#include "kernels/cuda/index_math.h"

namespace gs::kernels::cuda {
namespace {

__global__ void unary_kernel(UnaryOp op, const float* in, float* out, int64_t n, float alpha, float beta) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    out[i] = unary_apply(op, in[i], alpha, beta);
}
// out is contiguous; operand 0 is a, 1 is b.
__global__ void binary_kernel(BinaryOp op, const float* a, const float* b, float* out, Layout l, int64_t n, float alpha,
                              float beta) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    out[i] = binary_apply(op, a[layout_offset(l, 0, i)], b[layout_offset(l, 1, i)], alpha, beta);
}
__global__ void where_kernel(const float* c, const float* a, const float* b, float* out, Layout l, int64_t n) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    out[i] = c[layout_offset(l, 0, i)] != 0.0f ? a[layout_offset(l, 1, i)] : b[layout_offset(l, 2, i)];
}

// Operand 0 is the source, 1 the destination.
template <class Tin, class Tout> __global__ void copy_kernel(const Tin* src, Tout* dst, Layout l, int64_t n) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    dst[layout_offset(l, 1, i)] = static_cast<Tout>(src[layout_offset(l, 0, i)]);
}

__global__ void axpy_kernel(float* dst, const float* src, float alpha, int64_t n) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    dst[i] += alpha * src[i];
}
template <class T> __global__ void fill_kernel(T* dst, int64_t n, T value) {
  for (int64_t i = grid_first(blockIdx.x, blockDim.x, threadIdx.x); i < n; i += grid_step(gridDim.x, blockDim.x))
    dst[i] = value;
}
}  // namespace
}  // namespace gs::kernels::cuda
