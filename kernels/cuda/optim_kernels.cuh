// Fused optimizer step kernel: one launch for all the parameters of a step, each element's whole
// update (optim_math.h) done by one thread.
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

// Every parameter of the list in one launch (optim_math.h's StepList): each block finds its
// tensor and chunk, each thread walks the chunk at the block's stride.
template <class T, int Capacity> __global__ void multi_tensor_step_kernel(StepList<T, Capacity> list) {
  const int64_t block = blockIdx.x;
  const int k = step_list_entry(list.first_block, list.count, block);
  const T& t = list.tensors[k];
  const int64_t begin = (block - list.first_block[k]) * kStepChunk;
  const int64_t end = begin + kStepChunk < t.n ? begin + kStepChunk : t.n;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) step_element(t, i);
}
}  // namespace
}  // namespace gs::kernels::cuda
