// A CPU model of CUDA's execution, enough to run the project's real kernels: include this, then
// kernels/cuda/*_kernels.cuh, and `emu::launch(grid, block, kernel, args...)` runs the kernel as
// `kernel<<<grid, block>>>(args...)` would, on host memory. Every thread of a block is a fiber
// (ucontext) on one OS thread; __syncthreads() parks it until every thread of the block has
// arrived, __shfl_down_sync() until all 32 lanes of its warp have. `__shared__` variables are
// function statics, which the threads of a block share as they share shared memory (blocks run
// one after another, launches one at a time). A kernel whose first thread ends without reaching
// a barrier or shuffle runs its other threads as plain calls. What a GPU leaves undefined the
// emulator reports as an error: a barrier some threads of the block never reach, a shuffle in a
// partial warp, a launch over CUDA's limits.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

namespace gs::kernels::cuda::emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr Dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}  // NOLINT: as dim3
};

// The builtins of the thread running now (the scheduler sets them at every switch).
inline Dim3 thread_idx, block_idx, block_dim, grid_dim;

// What the last launch did, for tests that a kernel really went through its barriers.
struct LaunchStats {
  int64_t blocks = 0, threads = 0, barriers = 0, shuffles = 0;
};
const LaunchStats& last_launch();
// Launches since the program started (tests count the launches of an operation with it).
int64_t launch_count();

// The order in which the scheduler runs a block's threads. A GPU promises none, so a kernel must
// give the same result in each: Forward and Reverse take the runnable threads first to last and
// last to first; WarpAhead takes each warp through all its shuffles up to its next barrier (or
// its end) before the next warp starts, as a warp that races ahead on the GPU may. Threads switch
// only at barriers and shuffles, so a race inside such a stretch is not found; one that needs a
// barrier where a kernel has none shows as a wrong result in one of the orders.
enum class Order { Forward, Reverse, WarpAhead };
void set_order(Order order);

void syncthreads();
// One __shfl_down_sync of `bytes` bytes (full mask only, as every kernel here uses).
void shuffle_down(unsigned mask, const void* value, void* out, unsigned bytes, unsigned delta);
// Called around every launch (the emulated runtime opens device memory to the kernel with them).
struct LaunchHooks {
  std::function<void()> begin, end;
};
void set_launch_hooks(LaunchHooks hooks);

// Runs body once per thread of grid x block, as described above; throws on the errors named there.
void run_grid(Dim3 grid, Dim3 block, const std::function<void()>& body);

// kernel<<<grid, block>>>(args...): every thread gets its own copy of the arguments.
template <class Kernel, class... Args> void launch(Dim3 grid, Dim3 block, Kernel kernel, Args... args) {
  run_grid(grid, block, [&] { kernel(args...); });
}

// GS_LAUNCH's emulated form (kernels/cuda/launch.h): Launcher(grid, block, kernel)(args...).
template <class Kernel> struct Launcher {
  Dim3 grid, block;
  Kernel kernel;
  Launcher(Dim3 g, Dim3 b, Kernel k) : grid(g), block(b), kernel(k) {}
  template <class... Args> void operator()(Args... args) const { launch(grid, block, kernel, args...); }
};

}  // namespace gs::kernels::cuda::emu

// The CUDA spellings the kernels use, mapped onto the emulator.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define threadIdx (::gs::kernels::cuda::emu::thread_idx)
#define blockIdx (::gs::kernels::cuda::emu::block_idx)
#define blockDim (::gs::kernels::cuda::emu::block_dim)
#define gridDim (::gs::kernels::cuda::emu::grid_dim)

inline void __syncthreads() { ::gs::kernels::cuda::emu::syncthreads(); }  // NOLINT: CUDA's name
// Threads switch only at barriers and shuffles, so a read-modify-write is atomic here as it is.
inline float atomicAdd(float* address, float value) {  // NOLINT: CUDA's name
  const float old = *address;
  *address = old + value;
  return old;
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {  // NOLINT
  const unsigned long long old = *address;
  *address = old + value;
  return old;
}
template <class T> T __shfl_down_sync(unsigned mask, T value, unsigned delta) {  // NOLINT: CUDA's name
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move 4 or 8 bytes");
  T out;
  ::gs::kernels::cuda::emu::shuffle_down(mask, &value, &out, sizeof(T), delta);
  return out;
}
