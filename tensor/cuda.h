// gs::cuda: the user-facing side of the CUDA backend (kernels/cuda/).
//
//   if (gs::cuda::is_available()) model.to(gs::Device::cuda());
//   gs::Tensor x = gs::randn({64, 1, 28, 28}).to(gs::Device::cuda());
//   gs::cuda::synchronize();                          // wait for queued kernels (timing)
//   auto st = gs::cuda::memory_stats();                // bytes in use / peak / cached
//
// Without a CUDA build or without a GPU, is_available() is false and unavailable_reason() says
// why; anything that needs a device throws gs::Error with that reason.
#pragma once
#include <cstdint>
#include <string>

namespace gs::cuda {

struct MemoryStats {
  int64_t bytes_in_use = 0, peak_bytes_in_use = 0, bytes_cached = 0, device_allocs = 0, cache_hits = 0;
};

bool is_built();                   // this build has the CUDA backend (GS_CUDA)
bool is_emulated();                // ... on the CPU's CUDA emulator (GS_CUDA=EMULATE: a test build)
bool is_available();               // built, a driver, and at least one device
int device_count();                // 0 when not available
std::string unavailable_reason();  // "" when available
void synchronize(int device = 0);
MemoryStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
void empty_cache(int device = 0);  // gives the allocator's cached blocks back to the driver

}  // namespace gs::cuda
