// The tiled shared-memory GEMM kernel: a 16x16 block per tile of C, K walked through shared
// memory in tiles, blockIdx.z the entry of a batch; the phases are index_math.h's gemm_* functions.
// Device code only: gemm.cu launches these. The CUDA emulator
// (kernels/cuda/emulator/cuda_emulator.h) runs the very same kernels on the CPU: against the
// CPU ref kernels in tests/kernels/test_cuda_emulated.cpp, and as the device of the emulated
// build (GS_CUDA=EMULATE). Kernels have internal linkage: each includer gets its own copy.
#pragma once
#include "kernels/cuda/device_code.h"
#include "kernels/cuda/index_math.h"

namespace gs::kernels::cuda {
namespace {

__global__ void gemm_tiled_kernel(GemmArgs batch) {
  const GemmArgs a = gemm_batch_entry(batch, blockIdx.z);
  __shared__ float tile_a[kGemmTile][kGemmTile];
  __shared__ float tile_b[kGemmTile][kGemmTile];
  const int ty = threadIdx.y, tx = threadIdx.x;
  const int64_t by = blockIdx.y, bx = blockIdx.x;
  float acc = 0.0f;
  for (int64_t t = 0; t < gemm_k_steps(a.K); ++t) {
    gemm_load_tiles(a, by, bx, t, ty, tx, tile_a, tile_b);
    __syncthreads();
    acc = gemm_tile_dot(tile_a, tile_b, ty, tx, acc);
    __syncthreads();
  }
  gemm_store(a, by, bx, ty, tx, acc);
}
}  // namespace
}  // namespace gs::kernels::cuda
