// GS_LAUNCH(grid, block, stream, kernel)(args...) is kernel<<<grid, block, 0, stream>>>(args...);
// in the emulated build (GS_CUDA=EMULATE: the .cu files compiled as C++) it is the same launch
// through the CUDA emulator (kernels/cuda/emulator/cuda_emulator.h), on the emulated device.
// The kernel comes last so a template's commas (copy_kernel<Tin, Tout>) need no parentheses.
#pragma once

#include "kernels/cuda/device_code.h"

#if GS_CUDA_EMULATED
#define GS_LAUNCH(grid, block, stream, ...) \
  ((void)(stream), ::gs::kernels::cuda::emu::Launcher(grid, block, __VA_ARGS__))
#else
#define GS_LAUNCH(grid, block, stream, ...) __VA_ARGS__<<<grid, block, 0, stream>>>
#endif

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/index_math.h"
#include "kernels/cuda/runtime.h"

namespace gs::kernels::cuda {

// The 1-d launch most kernels take: blocks_for(n) blocks of kBlockThreads threads on the current
// device's compute stream, nothing for n <= 0, launch errors thrown at the caller's line.
template <class Kernel, class... Args> void launch_1d(int64_t n, Kernel kernel, Args... args) {
  if (n <= 0) return;
  GS_LAUNCH(blocks_for(n, kBlockThreads), kBlockThreads, compute_stream(current_device()), kernel)(args...);
  CUDA_CHECK_LAUNCH();
}

}  // namespace gs::kernels::cuda
