// GS_LAUNCH(grid, block, stream, kernel)(args...) is kernel<<<grid, block, 0, stream>>>(args...);
// in the emulated build (GS_CUDA=EMULATE: the .cu files compiled as C++) it is the same launch
// through the CUDA emulator (kernels/cuda/emulator/cuda_emulator.h), on the emulated device.
// The kernel comes last so a template's commas (copy_kernel<Tin, Tout>) need no parentheses.
#pragma once

#include "kernels/cuda/device_code.h"

#if GS_CUDA_EMULATED
#define GS_LAUNCH(grid, block, stream, ...) ((void)(stream), ::gs::kernels::cuda::emu::Launcher(grid, block, __VA_ARGS__))
#else
#define GS_LAUNCH(grid, block, stream, ...) __VA_ARGS__<<<grid, block, 0, stream>>>
#endif
