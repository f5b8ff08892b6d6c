// Included by every header of device code (kernels/cuda/*_kernels.cuh, block_reduce.cuh). Under
// nvcc it adds nothing. In the emulated build (GS_CUDA=EMULATE, the .cu files compiled as C++)
// it brings the CUDA emulator, which gives __global__, threadIdx, __syncthreads and the rest
// their CPU meaning (kernels/cuda/emulator/cuda_emulator.h).
#pragma once

#if GS_CUDA_EMULATED && !defined(__CUDACC__)
#include "kernels/cuda/emulator/cuda_emulator.h"
#endif
